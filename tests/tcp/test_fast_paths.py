"""The throughput work must not change behaviour: the chunked send and receive buffers against a
bytearray as the reference, and the in-order data fast path (``_predicted_data``) against the
full RFC 9293 steps, segment for segment on the wire."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pynetstack.transport.tcp import TcpConfig
from pynetstack.transport.tcp.buffers import CHUNK, COMPACT, ReceiveBuffer, SendBuffer
from pynetstack.transport.tcp.connection import TcpConnection

from .tcp_harness import B_IP, BulkApp, Net, digest

SIZES = st.sampled_from([1, 7, 1448, CHUNK - 1, CHUNK + 3, 3 * CHUNK])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), SIZES, st.integers(0, 3), st.floats(0, 1), st.floats(0, 1)),
                max_size=40))
def test_send_buffer_is_a_bytearray(ops):
    buf, ref = SendBuffer(), bytearray()
    for op, size, kind, x, y in ops:
        if op <= 1:
            data = bytes((size + i) & 0xFF for i in range(size))
            given_data = [data, memoryview(data)[1:], bytearray(data), memoryview(bytearray(data))][kind]
            buf.append(given_data)
            ref += given_data
            if kind >= 2 and len(given_data):
                given_data[0] ^= 0xFF  # the caller reuses its buffer: what was sent must not change
        elif op == 2:
            n = int(x * len(ref))
            buf.drop(n)
            del ref[:n]
        else:
            a = int(x * len(ref))
            b = a + int(y * (len(ref) - a))
            assert bytes(buf.slice(a, b)) == ref[a:b]
            assert b"".join(bytes(v) for v in buf.views(a, b)) == ref[a:b]
        assert len(buf) == len(ref) and bool(buf) == bool(ref)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), SIZES, st.integers(1, 1 << 20)), max_size=40))
def test_receive_buffer_is_a_bytearray(ops):
    buf, ref = ReceiveBuffer(), bytearray()
    for op, size, limit in ops:
        if op == 0:
            frame = bytes(range(66)) + bytes((size + i) & 0xFF for i in range(size))
            buf.append(memoryview(frame)[66:])
            ref += frame[66:]
        else:
            got = buf.take(limit) if op == 1 else buf.take_chunk(limit)
            assert type(got) is bytes and len(got) <= limit
            assert bool(got) == bool(ref)  # something comes out whenever something is there
            assert got == ref[:len(got)]
            del ref[:len(got)]
        assert len(buf) == len(ref)


def test_buffers_cut_their_consumed_front():
    send, recv = SendBuffer(), ReceiveBuffer()
    for _ in range(4 * COMPACT):
        send.append(b"x" * 100)
        recv.append(b"y" * 100)
    for _ in range(3 * COMPACT):
        send.drop(100)
        assert recv.take_chunk(100) == b"y" * 100
    assert len(send.chunks) <= COMPACT + 1 + COMPACT and len(recv.chunks) <= 2 * COMPACT + 1
    assert bytes(send.slice(0, len(send))) == b"x" * 100 * COMPACT
    assert recv.take(1 << 30) == b"y" * 100 * COMPACT


class _Receiver:
    """Reads to EOF and only then closes: it stays ESTABLISHED, a pure receiver, throughout."""

    def __init__(self, conn):
        self.conn, self.received, self.eof = conn, bytearray(), False

    def pump(self, now):
        conn = self.conn
        if conn.state == "CLOSED":
            return
        while True:
            got = conn.recv(1 << 20, now)
            if not got:
                break
            self.received += got
        if conn.at_eof() and not self.eof:
            self.eof = True
            conn.shutdown(now)


def _transfer(seed, **faults):
    net = Net(seed=seed, capture=True, config_a=TcpConfig(), config_b=TcpConfig(rcvbuf=200_000), **faults)
    listener = net.b.layer.listen(80)
    client = net.a.layer.connect(B_IP, 80, net.now)
    assert net.run(duration=60, stop=lambda: listener.accept_queue)
    server = listener.accept()
    rng = random.Random(seed)
    data = rng.randbytes(600_000)
    app_a, app_b = BulkApp(client, data), _Receiver(server)
    net.apps += [app_a, app_b]
    assert net.run(duration=3000, stop=lambda: app_a.eof and app_b.eof)
    assert digest(app_b.received) == digest(data)
    wire = [(now, src, seg.seq, seg.ack, seg.flags, seg.window, seg.ts_val, seg.ts_ecr, seg.sack_blocks,
             bytes(seg.payload)) for now, src, _, seg in net.capture]
    return wire, client.info(), server.info()


@pytest.mark.parametrize("faults", [dict(), dict(loss=0.03, reorder=0.1, dup=0.02)], ids=["clean", "faulty"])
def test_data_fast_path_changes_nothing_on_the_wire(monkeypatch, faults):
    taken = []
    original = TcpConnection._predicted_data

    def counting(self, seg, seq, payload, now):
        result = original(self, seg, seq, payload, now)
        taken.append(result)
        return result

    monkeypatch.setattr(TcpConnection, "_predicted_data", counting)
    fast = _transfer(5, **faults)
    assert sum(taken) > 100  # the fast path did take the bulk of the data
    monkeypatch.setattr(TcpConnection, "_predicted_data", lambda self, seg, seq, payload, now: False)
    full = _transfer(5, **faults)
    assert fast[1:] == full[1:]
    assert len(fast[0]) == len(full[0])
    assert fast[0] == full[0]
