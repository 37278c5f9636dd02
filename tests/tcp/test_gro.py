"""Receive segment coalescing (transport/tcp/gro.py): within a batch, in-order data segments of
one connection reach it as one segment, by Linux's GRO rules, and nothing an application or
the peer can see changes but how many segments the work took: the same data, in the same
order, the same sequence state, and ACKs that never cover more than STRETCH_ACK_SEGMENTS."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pynetstack.transport.tcp import TcpConfig, TcpLayer
from pynetstack.transport.tcp.receiver import STRETCH_ACK_SEGMENTS
from pynetstack.wire import tcp as T
from pynetstack.wire.ipv4 import IPv4

from .rig import LOCAL, LPORT, PEER, PEER_ISN, PPORT, Rig, segment_fields

P = PEER_ISN + 1
TS = (5000, 0)
MSS = 1448


class BatchRig(Rig):
    """A rig whose IP layer delivers in batches, as IPv4Host does: ``batch`` injects segments
    and polls once after them (the end of a batch)."""

    def __init__(self, merge: bool = True, **cfg):
        super().__init__(**cfg)
        self.ip.delivers_in_batches = True
        self.layer = TcpLayer(self.ip, TcpConfig(coalesce=merge, **cfg), secret=b"rig-secret")

    def open(self):
        conn, iss = self.passive_open(ts=TS, sack_permitted=True)
        self.sent()
        return conn, iss

    def batch(self, conn, iss, segments):
        """``segments``: (offset into the stream, payload, flags, ts_val, window[, bytes of ours
        the segment acknowledges])."""
        for offset, payload, flags, ts_val, window, *acked in segments:
            self.inject(flags, P + offset, iss + 1 + (acked[0] if acked else 0), payload, win=window,
                        ts=(ts_val, conn.ts_recent_age and 0))
        self.layer.poll(self.now)


def _stream(n: int) -> bytes:
    return bytes((i * 7 + (i >> 8)) & 0xFF for i in range(n))


def test_a_batch_of_in_order_segments_reaches_the_connection_as_one():
    rig = BatchRig()
    conn, iss = rig.open()
    data = _stream(8 * MSS)
    segs_in = conn.segs_in
    rig.batch(conn, iss, [(i * MSS, data[i * MSS:(i + 1) * MSS], T.ACK, TS[0] + 1, 65535) for i in range(8)])
    assert rig.layer.merge.merged == 7
    assert conn.segs_in == segs_in + 8  # counted as the segments they were, as Linux's segs_in
    assert [a.ack for a in rig.sent()] == [(P + len(data)) & 0xFFFFFFFF]  # one ACK for the eight
    assert conn.recv(1 << 20, rig.now) == data


def test_what_does_not_merge_keeps_its_place_in_the_stream():
    rig = BatchRig()
    conn, iss = rig.open()
    data = _stream(12 * MSS)
    seg = [(i * MSS, data[i * MSS:(i + 1) * MSS]) for i in range(12)]
    rig.batch(conn, iss, [
        seg[0] + (T.ACK, 5001, 65535),
        seg[1] + (T.ACK | T.PSH, 5001, 65535),   # PSH: joins, and ends the merge
        seg[2] + (T.ACK, 5001, 65535),
        seg[3] + (T.ACK, 5002, 65535),            # another timestamp: a new merge
        seg[5] + (T.ACK, 5002, 65535),            # a hole: out of order, SACKed at once
        seg[4] + (T.ACK, 5002, 65535),            # fills it
        seg[6] + (T.ACK, 5002, 60000),            # another window: not merged with the next
        seg[7] + (T.ACK, 5002, 65535),
        (8 * MSS, data[8 * MSS:8 * MSS + 100], T.ACK, 5002, 65535),  # a short one ends a merge
        (8 * MSS + 100, data[8 * MSS + 100:9 * MSS], T.ACK, 5002, 65535),
    ])
    assert conn.recv(1 << 20, rig.now) == data[:9 * MSS]
    assert conn.rcv_nxt == P + 9 * MSS
    assert any(a.sack_blocks for a in rig.sent())  # the hole was answered with SACK


def test_a_continuation_with_a_bad_checksum_is_dropped_and_counted_not_merged():
    rig = BatchRig()
    conn, iss = rig.open()
    data = _stream(4 * MSS)
    opts = T.build_options(ts=(5001, 0))
    raw = [bytearray(T.build_tcp(PEER, LOCAL, PPORT, LPORT, (P + i * MSS) & 0xFFFFFFFF, iss + 1, T.ACK, 65535,
                                 data[i * MSS:(i + 1) * MSS], opts)) for i in range(4)]
    raw[1][-1] ^= 0x01  # the second segment's last payload byte: its checksum no longer holds
    for segment in raw:
        rig.layer.receive(IPv4(PEER, LOCAL, 6, memoryview(bytes(segment))), rig.now)
    rig.layer.poll(rig.now)
    assert rig.layer.drops["tcp-bad-checksum"] == 1
    assert conn.recv(1 << 20, rig.now) == data[:MSS]  # the rest waits for the lost segment
    assert conn.reorder is not None and conn.reorder.sack_blocks(4)


def test_segments_of_receive_offload_are_not_merged_again():
    rig = BatchRig()
    conn, iss = rig.open()
    data = _stream(4 * 16000)  # as the TAP's offload hands them: several segments' worth each
    rig.batch(conn, iss, [(i * 16000, data[i * 16000:(i + 1) * 16000], T.ACK, 5001, 65535) for i in range(4)])
    assert rig.layer.merge.merged == 0
    assert conn.recv(1 << 20, rig.now) == data


def test_acks_cover_at_most_the_stretch_bound_with_merging():
    rig = BatchRig()
    conn, iss = rig.open()
    data = _stream(64 * MSS)
    rig.batch(conn, iss, [(i * MSS, data[i * MSS:(i + 1) * MSS], T.ACK, 5001, 65535) for i in range(64)])
    acked = [P] + [a.ack for a in rig.sent()]
    assert acked[-1] == P + len(data)
    assert max(b - a for a, b in zip(acked, acked[1:])) <= STRETCH_ACK_SEGMENTS * MSS
    assert conn.recv(1 << 20, rig.now) == data


SEGMENTS = st.lists(st.tuples(st.integers(1, MSS), st.booleans(), st.integers(0, 2), st.booleans(),
                              st.integers(0, 2)), min_size=1, max_size=40)
OURS = 2000  # bytes the connection sends first: the peer's segments acknowledge them in steps


@settings(max_examples=300, deadline=None)
@given(SEGMENTS, st.data())
def test_merging_changes_nothing_the_peer_or_the_application_sees(cuts, draw):
    """The same segments (cut from one stream, PSH, timestamps and windows at random, then
    reordered, duplicated and dropped) in the same batches, with receive buffers that the data
    fits in or overflows, to a layer that merges and to one
    that does not: the same segments sent back, field for field (the same ACKs, after the same
    data), the same data read, the same RCV.NXT, Last.ACK.sent, out-of-order queue, send window
    (SND.WND, SND.WL2), TS.Recent, RCV.MSS and counters, the layer's too.  (SND.WL1 is the sequence number of
    the first merged segment, as with Linux's GRO, not of the last: the window they carry is
    the same, by rule.)"""
    data = _stream(sum(n for n, *_ in cuts))
    segments, offset, ts, acked = [], 0, 5001, 0
    for n, psh, ts_step, narrow, ack_step in cuts:
        ts += ts_step
        acked = min(OURS, acked + 250 * ack_step)
        segments.append((offset, data[offset:offset + n], T.ACK | (T.PSH if psh else 0), ts,
                         60000 if narrow else 65535, acked))
        offset += n
    order = draw.draw(st.permutations(range(len(segments)))) if draw.draw(st.booleans()) else range(len(segments))
    arrivals = [segments[i] for i in order]
    arrivals += draw.draw(st.lists(st.sampled_from(segments), max_size=5))  # duplicates
    drop = draw.draw(st.sets(st.integers(0, len(arrivals) - 1), max_size=3))
    arrivals = [s for i, s in enumerate(arrivals) if i not in drop]
    splits = sorted(draw.draw(st.sets(st.integers(1, max(1, len(arrivals) - 1)), max_size=4)))
    batches = [arrivals[a:b] for a, b in zip([0] + splits, splits + [len(arrivals)])]
    rcvbuf = draw.draw(st.sampled_from([1 << 20, 16384, 6000]))  # small: the window cuts merges short
    results = []
    for merge in (True, False):
        rig = BatchRig(merge=merge, rcvbuf=rcvbuf)
        conn, iss = rig.open()
        conn.send(bytes(OURS), rig.now)
        sent = [segment_fields(seg) for seg in rig.sent()]
        for batch in batches:
            rig.batch(conn, iss, batch)
            sent += [segment_fields(seg) for seg in rig.sent()]
        reorder = conn.reorder
        results.append((sent, conn.recv(1 << 20, rig.now), conn.rcv_nxt, conn.last_ack_sent, conn.segs_in,
                        conn.state, conn.snd_wnd, conn.snd_wl2, conn.ts_recent, conn.rcv_mss, conn.ack_pending,
                        conn.dup_segments, conn.ooo_segments, reorder.sack_blocks(4) if reorder is not None else None,
                        dict(rig.layer.counters), dict(rig.layer.drops)))
        assert not any(seg["flags"] & T.RST for seg in sent)
    assert results[0] == results[1]
    assert data.startswith(results[0][1])


def test_coalescing_is_switched_on_the_layer_between_batches():
    rig = BatchRig(merge=True)
    assert rig.layer.coalescing
    rig.layer.coalescing = False
    assert not rig.layer.coalescing and rig.layer.merge is None
    rig.layer.coalescing = True
    assert rig.layer.coalescing
    plain = Rig()  # an IP layer that does not deliver in batches: nothing to merge across
    assert not plain.layer.coalescing
    with pytest.raises(ValueError):
        plain.layer.coalescing = True
