"""DNS on a pynetstack stack: the server answers on the stack's UDP and TCP port 53, and the
resolver sends its own queries through the stack, so a recursive server needs nothing of the host.

Everything runs in the stack's loop on the stack's clock (virtual under ``Simulation``): the
resolver is a sans-I/O state machine, and ``StackResolverIO`` is a network function that carries
its queries (a UDP endpoint on a random port per query, or a TCP connection after truncation),
hands replies back, and runs its time-outs from ``poll``. No threads, no wall clock.
"""

from __future__ import annotations

import random

from ..net.hooks import NetworkFunction
from ..transport.udp import REFLECTING_PORTS
from ..wire.addr import ip_to_int
from .hostio import MAX_TCP_CONNECTIONS, TCP_IDLE_TIMEOUT
from .resolver import Exchange, Resolver
from .server import DnsServer
from .stacksocket import StackTransport  # noqa: F401 - the blocking one-shot exchange, for scripts

PORT_TRIES = 16


class StackResolverIO(NetworkFunction):
    """Carries a Resolver's exchanges over the stack (registered with ``stack.register``)."""

    name = "dns-resolver"
    hooks = ()

    def __init__(self, stack, resolver: Resolver, rng: random.Random | None = None):
        self.stack, self.resolver = stack, resolver
        self.rng = rng or random.SystemRandom()
        self.counts = {"udp-sent": 0, "tcp-sent": 0, "send-failed": 0, "icmp-unreachable": 0}

    # -- the loop's side ------------------------------------------------------------------------

    def poll(self, now: float) -> None:
        self.resolver.poll(now)
        self.flush(now)

    def next_deadline(self):
        return self.resolver.next_deadline()

    def stats(self) -> dict:
        stats = dict(self.counts)
        stats.update(self.resolver.stats)
        stats["in-progress"] = len(self.resolver.active)
        stats["cache-entries"] = len(self.resolver.cache)
        return stats

    def start(self, qname: str, qtype: int, now: float, callback):
        """Begin a resolution from within the loop (under the stack's lock)."""
        task = self.resolver.start(qname, qtype, now, callback)
        self.flush(now)
        return task

    def flush(self, now: float) -> None:
        """Send what the resolver queued; release the sockets of exchanges that ended."""
        resolver = self.resolver
        while resolver.finished:
            self._release(resolver.finished.popleft())
        while resolver.outgoing:
            exchange = resolver.outgoing.popleft()
            if exchange.closed:
                continue
            if exchange.tcp:
                self._send_tcp(exchange, now)
            else:
                self._send_udp(exchange, now)
        while resolver.finished:  # failures reported while sending
            self._release(resolver.finished.popleft())

    # -- UDP: a fresh random port per query (RFC 5452 section 9.2) ----------------------------

    def _send_udp(self, exchange: Exchange, now: float) -> None:
        udp = self.stack.udp
        try:
            server_ip, server_port = ip_to_int(exchange.server[0]), exchange.server[1]
        except ValueError:  # an IPv6 server: the stack speaks IPv4 only
            return self._failed(exchange, now)

        def on_reply(payload, src, src_port, dst, when) -> None:
            if src != server_ip or src_port != server_port:
                self.stack.drops.drop("dns-reply-from-elsewhere")
                return
            self.resolver.receive(exchange, payload, when)
            self.flush(when)

        def on_icmp_error(icmp_type, code, dst, dst_port) -> None:
            if dst == server_ip and dst_port == server_port and icmp_type == 3:
                self.counts["icmp-unreachable"] += 1
                when = self.stack.now()
                self.resolver.receive(exchange, None, when)
                self.flush(when)

        for _ in range(PORT_TRIES):
            port = self.rng.randrange(1024, 65536)
            if port in REFLECTING_PORTS or (0, port) in udp.endpoints:
                continue
            try:
                udp.bind(port, on_reply)
            except OSError:
                continue
            break
        else:
            return self._failed(exchange, now)
        exchange.io = port
        udp.error_listeners[port] = on_icmp_error
        self.counts["udp-sent"] += 1
        if not udp.sendto(exchange.wire, port, server_ip, server_port, now):
            self._failed(exchange, now)

    # -- TCP after truncation (RFC 7766) ------------------------------------------------------

    def _send_tcp(self, exchange: Exchange, now: float) -> None:
        from ..api.tcp import TcpTransport, tcp_layer
        try:
            conn = tcp_layer(self.stack).connect(ip_to_int(exchange.server[0]), exchange.server[1], now)
        except (OSError, ValueError):
            return self._failed(exchange, now)
        handler = _TcpExchange(self, exchange)
        transport = TcpTransport(self.stack, conn, handler)
        exchange.io = transport
        handler.connection_made(transport)
        transport.write(len(exchange.wire).to_bytes(2, "big") + exchange.wire)
        self.counts["tcp-sent"] += 1

    def _failed(self, exchange: Exchange, now: float) -> None:
        self.counts["send-failed"] += 1
        self.resolver.receive(exchange, None, now)

    def _release(self, exchange: Exchange) -> None:
        io, exchange.io = exchange.io, None
        if io is None:
            return
        if isinstance(io, int):
            self.stack.udp.unbind(io)
        elif not io.is_closing():
            io.abort()


class _TcpExchange:
    """Reads one length-framed reply on a TCP connection and gives it to the resolver."""

    __slots__ = ("io", "exchange", "buffer", "transport")

    def __init__(self, io: StackResolverIO, exchange: Exchange):
        self.io, self.exchange, self.buffer, self.transport = io, exchange, bytearray(), None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if len(buffer) >= 2 and len(buffer) >= 2 + int.from_bytes(buffer[:2], "big"):
            reply = bytes(buffer[2:2 + int.from_bytes(buffer[:2], "big")])
            self._done(reply)

    def eof_received(self) -> None:
        self._done(None)

    def writable(self) -> None:
        pass

    def connection_lost(self, error) -> None:
        self._done(None)

    def _done(self, reply) -> None:
        exchange, io = self.exchange, self.io
        if exchange.closed:
            return
        exchange.io = None
        self.transport.close()
        now = io.stack.now()
        io.resolver.receive(exchange, reply, now)
        io.flush(now)


# ---------------------------------------------------------------------------------------------
# The server


class _DnsOverTcp:
    """RFC 7766 on the stack's TCP: length-framed queries, several per connection, answered in
    order of completion (each reply carries its query's ID)."""

    MAX_BUFFER = 65535 + 2

    def __init__(self, stack, server: DnsServer, io):
        from ..api.tcp import TcpHandler

        class Handler(TcpHandler):
            def __init__(handler):
                handler.buffer = bytearray()

            def data_received(handler, data: bytes) -> None:
                buffer = handler.buffer
                buffer += data
                while len(buffer) >= 2:
                    length = int.from_bytes(buffer[:2], "big")
                    if len(buffer) < 2 + length:
                        break
                    query = bytes(buffer[2:2 + length])
                    del buffer[:2 + length]
                    reply = server.handle(query, "tcp", stack.now(), handler.reply)
                    if reply is not None:
                        handler.reply(reply)
                    if io is not None:
                        io.flush(stack.now())
                # What is left is part of one message, which is at most 2 + 65535 bytes; the
                # transport itself stops reading while replies wait for a slow reader.
                if len(buffer) > self.MAX_BUFFER:
                    server.drops["tcp-bad-framing"] += 1
                    handler.transport.abort()

            def reply(handler, reply: bytes) -> None:
                if not handler.transport.is_closing():
                    handler.transport.write(len(reply).to_bytes(2, "big") + reply)

        self.factory = Handler


def serve_on_stack(stack, server: DnsServer, port: int = 53, tcp: bool = True, host: str = "0.0.0.0") -> int:
    """Answer DNS on the stack's UDP ``port`` (and TCP ``port``) at ``host`` (every local address
    by default); returns the bound port.
    A recursive server's resolver is driven by a ``StackResolverIO`` registered on the stack
    (kept as ``server.stack_io``).

    Over TCP, as ``dns serve`` on host sockets: at most MAX_TCP_CONNECTIONS at once, and a
    connection silent for TCP_IDLE_TIMEOUT seconds is closed (RFC 7766 section 6.2.3)."""
    io = None
    if server.resolver is not None:
        io = stack.register(StackResolverIO(stack, server.resolver))
    server.stack_io = io
    udp = stack.udp
    ipv4 = stack.host

    def endpoint(payload, src, src_port, dst, now) -> None:
        if src_port in REFLECTING_PORTS:
            # an answer to chargen, echo or time would be answered in turn, a FORMERR to that
            # answer again...: a loop between two hosts (responses, QR=1, are never answered)
            server.drops["reflecting-source-port"] += 1
            return
        source = dst if ipv4.is_local_address(dst) else None
        deliver = None
        if io is not None:
            def deliver(reply: bytes) -> None:
                udp.sendto(reply, bound, src, src_port, stack.now(), src=source)
        reply = server.handle(payload, "udp", now, deliver)
        if reply is not None:
            udp.sendto(reply, bound, src, src_port, now, src=source)
        elif io is not None:
            io.flush(now)

    with stack.lock:
        bound = udp.bind(port, endpoint, 0 if host == "0.0.0.0" else ip_to_int(host))
        # what /metrics shows: answers by how they were made, queries dropped by reason
        stack.counters.add("dns_server", lambda: {"answered": dict(server.answered), "drops": dict(server.drops)})
    if tcp:
        from ..services.guard import ServiceLimits, serve_guarded
        limits = ServiceLimits(max_connections=MAX_TCP_CONNECTIONS, idle_timeout=TCP_IDLE_TIMEOUT)
        serve_guarded(stack, bound, _DnsOverTcp(stack, server, io).factory, host=host, limits=limits,
                      name="dns-tcp")
    return bound


def resolve_on_stack(stack, qname: str, qtype: int, callback):
    """Start resolving with the resolver of a server served on ``stack`` (from any thread)."""
    io = next((f for f in stack.host.hooks.functions if isinstance(f, StackResolverIO)), None)
    if io is None:
        raise ValueError("no DNS resolver runs on this stack")
    with stack.lock:
        task = io.start(qname, qtype, stack.now(), callback)
    stack.wake()
    return task

