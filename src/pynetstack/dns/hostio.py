"""Host-socket I/O for DNS: a UDP+TCP server loop (selectors) that also carries the sans-I/O
resolver's queries on non-blocking sockets, so one thread serves zones, the cache and any number
of resolutions in progress; ``resolve_on_host`` for a single resolution (``dns resolve``); and
``SocketTransport``, one blocking exchange (``dns query``).

Only this module (and stackio on the stack) touches sockets or the wall clock for DNS.
"""
from __future__ import annotations

import errno
import random
import selectors
import socket
import struct
import threading
import time
from collections import Counter

from .server import DnsServer

MAX_TCP_CONNECTIONS = 128
TCP_IDLE_TIMEOUT = 10.0        # RFC 7766 section 6.2.3 suggests seconds, not minutes
RESOLVE_DEADLINE = 30.0       # resolve_on_host gives up after this long


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
            _bind_random_port(sock, family, self.rng)
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


class HostResolverIO:
    """Carries a Resolver's exchanges on non-blocking host sockets registered in ``selector``:
    UDP from a random port, connected to the server (RFC 5452 section 9.2), or TCP after
    truncation. The owner of the selector calls ``ready(exchange, events)`` for their events and
    ``poll(now)`` at ``next_deadline()``."""

    def __init__(self, resolver, selector, clock=time.monotonic, rng: random.Random | None = None):
        self.resolver, self.selector, self.clock = resolver, selector, clock
        self.rng = rng or random.SystemRandom()
        self.stats = Counter()

    def poll(self, now: float) -> None:
        self.resolver.poll(now)
        self.flush(now)

    def next_deadline(self):
        return self.resolver.next_deadline()

    def flush(self, now: float) -> None:
        resolver = self.resolver
        while resolver.outgoing or resolver.finished:
            while resolver.finished:
                self._release(resolver.finished.popleft())
            if resolver.outgoing:
                exchange = resolver.outgoing.popleft()
                if not exchange.closed:
                    self._send(exchange, now)

    def _send(self, exchange, now: float) -> None:
        family = _family(exchange.server[0])
        try:
            if exchange.tcp:
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.setblocking(False)
                exchange.io = [sock, bytearray(struct.pack("!H", len(exchange.wire)) + exchange.wire), bytearray()]
                err = sock.connect_ex(exchange.server)
                if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
                    raise OSError(err, "connect failed")
                self.selector.register(sock, selectors.EVENT_WRITE, exchange)
            else:
                sock = socket.socket(family, socket.SOCK_DGRAM)
                exchange.io = [sock]
                sock.setblocking(False)
                _bind_random_port(sock, family, self.rng)
                sock.connect(exchange.server)
                sock.send(exchange.wire)
                self.selector.register(sock, selectors.EVENT_READ, exchange)
            self.stats["tcp-sent" if exchange.tcp else "udp-sent"] += 1
        except OSError:
            self.stats["send-failed"] += 1
            self.resolver.receive(exchange, None, now)

    def ready(self, exchange, events) -> None:
        """Socket events of ``exchange``."""
        if exchange.closed or exchange.io is None:
            return
        sock, now = exchange.io[0], self.clock()
        reply = None
        try:
            if not exchange.tcp:
                reply = sock.recv(65535)
            elif events & selectors.EVENT_WRITE and exchange.io[1]:
                out = exchange.io[1]
                del out[:sock.send(out)]
                if not out:
                    self.selector.modify(sock, selectors.EVENT_READ, exchange)
                return
            else:
                chunk = sock.recv(65537)
                if not chunk:
                    raise OSError("connection closed")
                buf = exchange.io[2]
                buf += chunk
                if len(buf) < 2 or len(buf) < 2 + ((buf[0] << 8) | buf[1]):
                    return
                reply = bytes(buf[2:2 + ((buf[0] << 8) | buf[1])])
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # ICMP port unreachable, reset: this server will not answer
            reply = None
        self.resolver.receive(exchange, reply, now)
        self.flush(now)

    def _release(self, exchange) -> None:
        io, exchange.io = exchange.io, None
        if io is not None:
            try:
                self.selector.unregister(io[0])
            except (KeyError, ValueError):
                pass
            io[0].close()


def resolve_on_host(resolver, qname: str, qtype: int, clock=time.monotonic,
                    deadline: float = RESOLVE_DEADLINE):
    """Resolve one question over host sockets, blocking; the Result (SERVFAIL after ``deadline``)."""
    from .resolver import Result
    from ..wire import dns as w
    if not qname.endswith("."):
        qname += "."
    if isinstance(qtype, str):
        qtype = w.type_code(qtype)
    done = []
    with selectors.DefaultSelector() as selector:
        io = HostResolverIO(resolver, selector, clock)
        now = clock()
        give_up = now + deadline
        if resolver.start(qname, qtype, now, done.append) is None:
            return Result(w.SERVFAIL)
        io.flush(now)
        while not done and clock() < give_up:
            wake = io.next_deadline()
            timeout = 1.0 if wake is None else min(1.0, max(0.0, wake - clock()))
            for key, events in selector.select(timeout):
                io.ready(key.data, events)
            io.poll(clock())
        for exchange in [key.data for key in selector.get_map().values()]:
            io._release(exchange)
    return done[0] if done else Result(w.SERVFAIL)


def _bind_random_port(sock, family, rng) -> None:
    host = "::" if family == socket.AF_INET6 else "0.0.0.0"
    for _ in range(16):
        try:
            sock.bind((host, rng.randrange(1024, 65536)))
            return
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise
    sock.bind((host, 0))


class _TcpConnection:
    __slots__ = ("sock", "inbuf", "outbuf", "last_active", "peer")

    def __init__(self, sock, peer):
        self.sock, self.peer = sock, peer
        self.inbuf, self.outbuf = bytearray(), bytearray()
        self.last_active = time.monotonic()


class HostServer:
    """Serve a DnsServer on a host address over UDP and TCP (length-framed, pipelined), in one
    thread: a recursive server's resolver runs in the same selector loop (``resolver_io``)."""

    def __init__(self, server: DnsServer, host: str = "127.0.0.1", port: int = 53, tcp: bool = True):
        self.server = server
        family = _family(host)
        for attempt in range(20):  # port 0: a free UDP port whose TCP twin is free too
            self.udp = socket.socket(family, socket.SOCK_DGRAM)
            self.udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            self.udp.bind((host, port))
            self.address = self.udp.getsockname()[:2]
            self.tcp = None
            if not tcp:
                break
            self.tcp = socket.socket(family, socket.SOCK_STREAM)
            self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                self.tcp.bind((host, self.address[1]))
                break
            except OSError as exc:
                self.tcp.close()
                self.udp.close()
                if port != 0 or exc.errno != errno.EADDRINUSE or attempt == 19:
                    raise
        if self.tcp is not None:
            self.tcp.listen(64)
            self.tcp.setblocking(False)
        self.udp.setblocking(False)
        self.stats = Counter()
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self.resolver_io = None
        if server.resolver is not None:
            self.resolver_io = HostResolverIO(server.resolver, self._sel)
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
        if self.resolver_io is not None:
            for key in list(self._sel.get_map().values()):
                if not isinstance(key.data, (str, _TcpConnection)):
                    self.resolver_io._release(key.data)
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
        resolver_io = self.resolver_io
        while not self._stop.is_set():
            timeout = 1.0
            if resolver_io is not None:
                wake = resolver_io.next_deadline()
                if wake is not None:
                    timeout = min(timeout, max(0.0, wake - time.monotonic()))
            for key, events in sel.select(timeout):
                what = key.data
                if what == "udp":
                    self._read_udp()
                elif what == "wake":
                    self._drain_wake()
                elif what == "listen":
                    self._accept()
                elif isinstance(what, _TcpConnection):
                    self._service_tcp(what, events)
                else:
                    resolver_io.ready(what, events)
            if resolver_io is not None:
                resolver_io.poll(time.monotonic())
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
            deliver = None
            if self.resolver_io is not None:
                deliver = lambda answer, peer=peer: self._send_udp(answer, peer)  # noqa: E731
            reply = self.server.handle(data, "udp", time.monotonic(), deliver)
            if reply is not None:
                self._send_udp(reply, peer)
            elif self.resolver_io is not None:
                self.resolver_io.flush(time.monotonic())

    def _send_udp(self, reply: bytes, peer) -> None:
        try:
            self.udp.sendto(reply, peer)
        except OSError:
            self.stats["udp-send-error"] += 1

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError, OSError):
            pass

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
            deliver = lambda answer, conn=conn: self._deliver_tcp(conn, answer)  # noqa: E731
            reply = self.server.handle(query, "tcp", time.monotonic(), deliver)
            if reply is not None:
                self._queue_tcp(conn, reply)
            elif len(query) < 12 or query[2] & 0x80:
                return self._close(conn)  # no header, or not a query: RFC 7766 lets us close
            elif self.resolver_io is not None:
                self.resolver_io.flush(time.monotonic())  # a resolution started: send its queries

    def _deliver_tcp(self, conn: _TcpConnection, reply: bytes) -> None:
        if conn.sock.fileno() in self._conns:
            self._queue_tcp(conn, reply)

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
