"""The blocking socket API over a real Stack (loop thread, real clock), through the stack's
own loopback path: connect/accept/sendall/recv/shutdown/close and the error cases."""

import hashlib
import os
import socket
import threading

import pytest

from pynetstack.api.tcp import TcpSocket, create_connection, create_server, tcp_layer
from pynetstack.transport.tcp import CLOSED, ESTABLISHED, TIME_WAIT

from tests.interop.waiting import settled, wait_for
from tests.stacks import running_stack

ADDR = "10.77.0.1"


@pytest.fixture
def stack():
    with running_stack(ADDR, "tcpapi") as st:
        yield st


def serve_once(server, handler):
    def run():
        conn, peer = server.accept()
        try:
            handler(conn)
        finally:
            conn.close()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_echo_one_megabyte(stack):
    server = create_server(stack, ("0.0.0.0", 7007))

    def echo(conn):
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
    t = serve_once(server, echo)
    payload = os.urandom(1 << 20)
    client = create_connection(stack, (ADDR, 7007), timeout=20)
    assert client.getpeername() == (ADDR, 7007)
    assert client.getsockname()[0] == ADDR
    received = bytearray()

    def reader():
        while True:
            chunk = client.recv(65536)
            if not chunk:
                break
            received.extend(chunk)
    r = threading.Thread(target=reader, daemon=True)
    r.start()
    client.sendall(payload)
    client.shutdown(socket.SHUT_WR)
    r.join(30)
    t.join(30)
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
    client.close()
    server.close()


def test_connection_refused(stack):
    sock = TcpSocket(stack)
    sock.settimeout(5)
    with pytest.raises(ConnectionRefusedError):
        sock.connect((ADDR, 9))


def test_reset_mid_stream(stack):
    server = create_server(stack, (ADDR, 7008))
    ready = threading.Event()

    def handler(conn):
        conn.recv(10)
        conn.abort()
        ready.set()
    serve_once(server, handler)
    client = create_connection(stack, (ADDR, 7008), timeout=5)
    client.sendall(b"hello")
    assert ready.wait(5)
    with pytest.raises(ConnectionResetError):
        client.recv(10)
    server.close()


def test_half_close_then_reply(stack):
    server = create_server(stack, (ADDR, 7009))

    def handler(conn):
        data = b""
        while True:
            chunk = conn.recv(100)
            if not chunk:
                break
            data += chunk
        conn.sendall(b"got " + data)
    t = serve_once(server, handler)
    client = create_connection(stack, (ADDR, 7009), timeout=5)
    client.sendall(b"question")
    client.shutdown(socket.SHUT_WR)
    with pytest.raises(BrokenPipeError):
        client.send(b"more")
    reply = b""
    while True:
        chunk = client.recv(100)
        if not chunk:
            break
        reply += chunk
    assert reply == b"got question"
    t.join(5)
    client.close()
    server.close()


def test_timeouts_and_nonblocking(stack):
    server = create_server(stack, (ADDR, 7010))
    server.settimeout(0.2)
    with pytest.raises(TimeoutError):
        server.accept()
    server.setblocking(False)
    with pytest.raises(BlockingIOError):
        server.accept()
    server.setblocking(True)
    client = create_connection(stack, (ADDR, 7010), timeout=5)
    conn, peer = server.accept()
    assert peer == client.getsockname()
    client.settimeout(0.2)
    with pytest.raises(TimeoutError):
        client.recv(10)
    client.close()
    conn.close()
    server.close()


def test_socket_options(stack):
    server = create_server(stack, (ADDR, 7011))
    client = TcpSocket(stack)
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 60000)
    assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    client.settimeout(5)
    client.connect((ADDR, 7011))
    conn = client.connection
    assert conn.config.nodelay and conn.config.keepalive and conn.timers.keepalive is not None
    assert conn.rcv_wscale == 0  # a 60 KB buffer needs no window scaling
    with pytest.raises(OSError):
        client.setsockopt(socket.SOL_SOCKET, 12345, 1)
    info = client.info()
    assert info["state"] == "ESTABLISHED" and "ts" in info["options"]
    client.close()
    server.close()


def test_bind_conflict_and_double_listen(stack):
    a = create_server(stack, (ADDR, 7012))
    b = TcpSocket(stack)
    b.bind((ADDR, 7012))
    with pytest.raises(OSError):
        b.listen()
    a.close()
    b.listen()
    b.close()


def test_makefile_reads_lines_and_writes(stack):
    server = create_server(stack, ("0.0.0.0", 7011))

    def greet(conn):
        with conn.makefile("rw", encoding="ascii", newline="\r\n") as stream:
            name = stream.readline().strip()
            stream.write(f"hello {name}\nbye\n")  # newline="\r\n" turns each \n into CRLF
            stream.flush()
        conn.shutdown(socket.SHUT_WR)
    t = serve_once(server, greet)
    client = create_connection(stack, (ADDR, 7011), timeout=10)
    with client.makefile("wb") as out:
        out.write(b"world\r\n")
    reader = client.makefile("rb")
    assert reader.readline() == b"hello world\r\n"
    assert reader.read() == b"bye\r\n"
    client.close()
    t.join(5)
    server.close()


def test_a_client_that_never_reads_cannot_make_the_server_buffer_without_bound(stack):
    """Pipelined requests whose answers are never read: the HTTP service stops reading (the
    window closes) instead of piling up answers."""

    from pynetstack.api.tcp import WRITE_HIGH_WATER
    from pynetstack.services import http
    http.install(stack, 8080)
    client = create_connection(stack, (ADDR, 8080), timeout=10)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    client.settimeout(0.2)
    sent = 0
    try:
        for _ in range(20000):  # bounded: stops when the server's window closes
            client.sendall(request * 50)
            sent += 50
    except (TimeoutError, OSError):
        pass

    def pending_writes():
        with stack.lock:
            transports = [c.on_event.__self__ for c in stack.tcp.connections.values()
                          if c.key[1] == 8080 and hasattr(c.on_event, "__self__")]
            return [t.get_write_buffer_size() for t in transports]
    wait_for(settled(pending_writes), timeout=5)  # the server has answered what it read
    transports = pending = pending_writes()
    assert transports and max(pending) <= WRITE_HIGH_WATER + 64 * 1024, (pending, sent)
    client.close()


def test_recv_rejects_negative_sizes(stack):
    server = create_server(stack, (ADDR, 7013))
    t = serve_once(server, lambda conn: conn.sendall(b"abcdef"))
    client = create_connection(stack, (ADDR, 7013), timeout=5)
    with pytest.raises(ValueError):
        client.recv(-1)
    with pytest.raises(ValueError):
        client.recv_into(bytearray(4), -1)
    with pytest.raises(ValueError):
        client.recv_into(bytearray(4), 5)
    assert client.recv(0) == b""
    data = b""
    while len(data) < 6:
        chunk = client.recv(100)
        assert chunk
        data += chunk
    assert data == b"abcdef"  # nothing was lost to the rejected calls
    t.join(5)
    client.close()
    server.close()


def test_accepted_socket_does_not_inherit_the_listener_timeout(stack):
    server = create_server(stack, (ADDR, 7014))
    server.settimeout(5)
    clients = []
    try:
        clients.append(create_connection(stack, (ADDR, 7014), timeout=5))
        conn, _ = server.accept()
        assert conn.gettimeout() is None  # blocking, as socket.accept() gives
        conn.close()
        socket.setdefaulttimeout(2.5)
        clients.append(create_connection(stack, (ADDR, 7014), timeout=5))
        conn, _ = server.accept()
        assert conn.gettimeout() == 2.5  # ...unless a default timeout is set
        conn.close()
    finally:
        socket.setdefaulttimeout(None)
        for client in clients:
            client.close()
        server.close()


def test_a_socket_dropped_without_close_releases_its_connection(stack):
    import gc
    import weakref
    server = create_server(stack, (ADDR, 7015))
    client = create_connection(stack, (ADDR, 7015), timeout=5)
    conn, _ = server.accept()
    client_conn = client.connection
    ref = weakref.ref(client)
    del client
    gc.collect()
    assert ref() is None, "the stack must hold no reference to the socket"
    assert wait_for(lambda: client_conn.state == CLOSED)
    conn.settimeout(5)
    with pytest.raises(ConnectionResetError):  # the peer sees the abort
        conn.recv(10)
    conn.close()

    # a dropped listener stops listening: its port can be bound again
    del server
    gc.collect()
    again = TcpSocket(stack)
    again.bind((ADDR, 7015))
    assert wait_for(lambda: _listens(again))
    again.close()


def _listens(sock):
    try:
        sock.listen()
        return True
    except OSError:
        return False


def test_a_closed_socket_is_not_released_again(stack):
    import gc
    server = create_server(stack, (ADDR, 7016))
    client = create_connection(stack, (ADDR, 7016), timeout=5)
    conn, _ = server.accept()
    client.shutdown(socket.SHUT_WR)
    client.close()
    client_conn = client.connection
    del client
    gc.collect()
    conn.settimeout(5)
    assert conn.recv(10) == b""  # an orderly FIN, no reset from a finalizer
    conn.close()
    assert wait_for(lambda: client_conn.state in (TIME_WAIT, CLOSED))
    assert client_conn.error is None
    server.close()


def test_a_socket_dropped_under_the_stack_lock_is_released_after_it(stack):
    """A finalizer can run anywhere, even inside protocol work under the lock: it must not
    change connections there, but later, from another thread."""
    import gc
    server = create_server(stack, (ADDR, 7017))
    client = create_connection(stack, (ADDR, 7017), timeout=5)
    conn, _ = server.accept()
    client_conn = client.connection
    with stack.lock:
        del client
        gc.collect()
        assert client_conn.state == ESTABLISHED
    assert wait_for(lambda: client_conn.state == CLOSED)
    conn.close()
    server.close()


def test_an_api_call_wakes_the_sleeping_loop_only_for_a_deadline_before_its_planned_wake(stack):
    """Stack.wake_needed (what the socket API's send and recv ask before waking the loop): a
    change that leaves every deadline at or after the time the sleeping loop planned to wake
    needs no wake-up (the loop plans under the lock, with every change made before); one that
    brings a deadline sooner does, and the loop then runs it on time."""
    layer = tcp_layer(stack)
    fired = threading.Event()
    checked = False
    for _ in range(500):
        with stack.lock:
            planned = stack._planned
            # the loop sleeps (nothing is due) until ``planned``, far enough ahead for the check
            if planned is not None and planned > stack.now() + 0.1:
                assert not stack.wake_needed()
                layer.call_at(planned + 10.0, lambda now: None)
                assert not stack.wake_needed()  # due after the loop wakes anyway
                layer.call_at(stack.now() + 0.05, lambda now: fired.set())
                assert stack.wake_needed()
                checked = True
        if checked:
            break
        threading.Event().wait(0.01)
    assert checked, "the loop never slept"
    stack.wake()
    assert fired.wait(0.5)


def test_sendall_takes_any_buffer_and_sends_its_bytes(stack):
    """bytes, a memoryview slice, a bytearray and an array of 32-bit items all arrive as their
    bytes; a view of bytes is sliced as it is (``_byte_view``: PyPy copies slices of a cast view
    a byte at a time), another shape is flattened."""
    import array

    from pynetstack.api.tcp import _byte_view
    raw = os.urandom(200_000)
    assert _byte_view(memoryview(raw)[5:]).obj is raw
    numbers = array.array("I", range(30_000))
    assert _byte_view(numbers).tobytes() == numbers.tobytes() and len(_byte_view(numbers)) == 120_000
    for strided in (memoryview(raw)[::3], memoryview(raw)[::-1]):
        with pytest.raises(BufferError):  # as socket.send refuses them (PyPy would slice them wrongly)
            _byte_view(strided)
    server = create_server(stack, ("0.0.0.0", 7011))
    chunks = []
    t = serve_once(server, lambda conn: chunks.extend(iter(lambda: conn.recv(65536), b"")))
    client = create_connection(stack, (ADDR, 7011), timeout=20)
    pieces = [raw, memoryview(raw)[1000:150_000], bytearray(raw[:70_000]), numbers]
    for piece in pieces:
        client.sendall(piece)
    client.close()
    t.join(20)
    assert b"".join(chunks) == b"".join(bytes(memoryview(p).cast("B")) for p in pieces)
