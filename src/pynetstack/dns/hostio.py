"""Host-socket I/O for DNS: the resolver's transport and a UDP+TCP server loop (selectors).

Only this module touches sockets. Recursive queries run in a small bounded worker pool so one
slow upstream cannot stall answers that come from zones or the cache.
"""
from __future__ import annotations

import errno
import queue
import random
import selectors
import socket
import struct
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from .server import DEFER, DnsServer

MAX_TCP_CONNECTIONS = 128
TCP_IDLE_TIMEOUT = 10.0        # RFC 7766 section 6.2.3 suggests seconds, not minutes
MAX_PENDING_RECURSIONS = 256
WORKERS = 8


OUTBUF_HIGH_WATER = 256 * 1024  # replies buffered per TCP client before its queries wait


def _family(address: str):
    return socket.AF_INET6 if ":" in address else socket.AF_INET


class SocketTransport:
    """``exchange(wire, (addr, port), tcp, timeout)`` over host sockets; None on any failure.

    UDP queries come from a fresh socket on a random source port (RFC 5452 section 9.2),
    connected to the server so the kernel drops datagrams from anyone else.
    """

    def __init__(self, rng: random.Random | None = None):
        self.rng = rng or random.SystemRandom()

    def exchange(self, wire: bytes, server, tcp: bool, timeout: float):
        try:
            if tcp:
                return self._tcp(wire, server, timeout)
            return self._udp(wire, server, timeout)
        except OSError:
            return None

    def _udp(self, wire, server, timeout):
        family = _family(server[0])
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            self._bind_random_port(sock, family)
            sock.connect(server)
            sock.send(wire)
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                sock.settimeout(left)
                try:
                    data = sock.recv(65535)
                except socket.timeout:
                    return None
                if len(data) >= 2 and data[:2] == wire[:2]:
                    return data  # otherwise: a stray datagram with the wrong ID, keep waiting

    def _bind_random_port(self, sock, family):
        host = "::" if family == socket.AF_INET6 else "0.0.0.0"
        for _ in range(16):
            try:
                sock.bind((host, self.rng.randrange(1024, 65536)))
                return
            except OSError as e:
                if e.errno != errno.EADDRINUSE:
                    raise
        sock.bind((host, 0))

    def _tcp(self, wire, server, timeout):
        with socket.create_connection(server, timeout=timeout) as sock:
            sock.sendall(struct.pack("!H", len(wire)) + wire)
            length = struct.unpack("!H", recv_exactly(sock, 2))[0]
            return recv_exactly(sock, length)


def recv_exactly(sock, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise OSError("connection closed")
        buf += chunk
    return bytes(buf)


class _TcpConnection:
    __slots__ = ("sock", "inbuf", "outbuf", "last_active", "peer")

    def __init__(self, sock, peer):
        self.sock, self.peer = sock, peer
        self.inbuf, self.outbuf = bytearray(), bytearray()
        self.last_active = time.monotonic()


class HostServer:
    """Serve a DnsServer on a host address over UDP and TCP (length-framed, pipelined)."""

    def __init__(self, server: DnsServer, host: str = "127.0.0.1", port: int = 53, tcp: bool = True):
        self.server = server
        family = _family(host)
        self.udp = socket.socket(family, socket.SOCK_DGRAM)
        self.udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.udp.bind((host, port))
        self.address = self.udp.getsockname()[:2]
        self.tcp = None
        if tcp:
            self.tcp = socket.socket(family, socket.SOCK_STREAM)
            self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.tcp.bind((host, self.address[1]))
            self.tcp.listen(64)
            self.tcp.setblocking(False)
        self.udp.setblocking(False)
        self.stats = Counter()
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._done = queue.SimpleQueue()  # (connection or None, peer, reply) from workers
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="dns-recursion")
        self._pending = 0
        self._conns = {}
        self._stop = threading.Event()
        self._thread = None

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> HostServer:
        """Serve in a background thread; returns self."""
        self._thread = threading.Thread(target=self.serve_forever, name="dns-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake_w.send(b"x")
        if self._thread is not None:
            self._thread.join(5)
        self._pool.shutdown(wait=False)
        for sock in [self.udp, self.tcp, self._wake_r, self._wake_w] + [c.sock for c in self._conns.values()]:
            if sock is not None:
                sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def serve_forever(self) -> None:
        sel = self._sel
        sel.register(self.udp, selectors.EVENT_READ, "udp")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        if self.tcp is not None:
            sel.register(self.tcp, selectors.EVENT_READ, "listen")
        while not self._stop.is_set():
            for key, events in sel.select(timeout=1.0):
                what = key.data
                if what == "udp":
                    self._read_udp()
                elif what == "wake":
                    self._drain_done()
                elif what == "listen":
                    self._accept()
                else:
                    self._service_tcp(what, events)
            self._expire_idle()

    # -- UDP --------------------------------------------------------------------------------

    def _read_udp(self) -> None:
        for _ in range(64):  # bounded batch, then let other sockets have a turn
            try:
                data, peer = self.udp.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.stats["udp-recv-error"] += 1
                return
            self.stats["udp-queries"] += 1
            reply = self.server.handle(data, "udp", time.monotonic(), blocking=False)
            if reply is DEFER:
                self._defer(data, "udp", None, peer)
            elif reply is not None:
                self._send_udp(reply, peer)

    def _send_udp(self, reply: bytes, peer) -> None:
        try:
            self.udp.sendto(reply, peer)
        except OSError:
            self.stats["udp-send-error"] += 1

    def _defer(self, data: bytes, transport: str, conn, peer) -> None:
        if self._pending >= MAX_PENDING_RECURSIONS:
            self.stats["recursion-overload-drop"] += 1
            return
        self._pending += 1
        self._pool.submit(self._work, data, transport, conn, peer)

    def _work(self, data, transport, conn, peer) -> None:
        try:
            reply = self.server.handle(data, transport, time.monotonic())
        except Exception:  # noqa: BLE001 - a bug must not kill the worker; count it
            reply = None
            self.stats["recursion-error"] += 1
        self._done.put((conn, peer, reply))
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _drain_done(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError, OSError):
            pass
        while True:
            try:
                conn, peer, reply = self._done.get_nowait()
            except queue.Empty:
                return
            self._pending -= 1
            if reply is None:
                continue
            if conn is None:
                self._send_udp(reply, peer)
            elif conn.sock.fileno() in self._conns:
                self._queue_tcp(conn, reply)

    # -- TCP --------------------------------------------------------------------------------

    def _accept(self) -> None:
        try:
            sock, peer = self.tcp.accept()
        except (BlockingIOError, InterruptedError, OSError):
            return
        if len(self._conns) >= MAX_TCP_CONNECTIONS:
            self.stats["tcp-refused"] += 1
            sock.close()
            return
        sock.setblocking(False)
        conn = _TcpConnection(sock, peer)
        self._conns[sock.fileno()] = conn
        self._sel.register(sock, selectors.EVENT_READ, conn)

    def _service_tcp(self, conn: _TcpConnection, events) -> None:
        if events & selectors.EVENT_WRITE:
            self._flush(conn)
        if events & selectors.EVENT_READ and conn.sock.fileno() in self._conns:
            try:
                data = conn.sock.recv(65537)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                return self._close(conn)
            conn.last_active = time.monotonic()
            conn.inbuf += data
            self._frames(conn)

    def _frames(self, conn: _TcpConnection) -> None:
        buf = conn.inbuf
        while len(buf) >= 2 and len(conn.outbuf) < OUTBUF_HIGH_WATER:
            length = (buf[0] << 8) | buf[1]
            if len(buf) < 2 + length:
                return
            query = bytes(buf[2:2 + length])
            del buf[:2 + length]
            self.stats["tcp-queries"] += 1
            reply = self.server.handle(query, "tcp", time.monotonic(), blocking=False)
            if reply is DEFER:
                self._defer(query, "tcp", conn, conn.peer)
            elif reply is not None:
                self._queue_tcp(conn, reply)
            else:
                return self._close(conn)  # unparseable: RFC 7766 lets us close

    def _queue_tcp(self, conn: _TcpConnection, reply: bytes) -> None:
        conn.outbuf += struct.pack("!H", len(reply)) + reply
        self._flush(conn)

    def _flush(self, conn: _TcpConnection) -> None:
        try:
            sent = conn.sock.send(conn.outbuf)
            del conn.outbuf[:sent]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            return self._close(conn)
        # Backpressure: while replies wait for a client that does not read, read no more queries.
        reading = selectors.EVENT_READ if len(conn.outbuf) < OUTBUF_HIGH_WATER else 0
        want = reading | (selectors.EVENT_WRITE if conn.outbuf else 0)
        self._sel.modify(conn.sock, want, conn)

    def _close(self, conn: _TcpConnection) -> None:
        if self._conns.pop(conn.sock.fileno(), None) is not None:
            self._sel.unregister(conn.sock)
            conn.sock.close()

    def _expire_idle(self) -> None:
        now = time.monotonic()
        for conn in [c for c in self._conns.values() if now - c.last_active > TCP_IDLE_TIMEOUT]:
            self._close(conn)
