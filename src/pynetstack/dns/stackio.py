"""DNS on a pynetstack stack: the server answers on the stack's UDP port 53, and the resolver
sends its own queries through the stack, so a recursive server needs nothing of the host.

Answers the authority or the cache can give are computed in the stack's loop; a query that
needs resolution (which waits on the network) goes to a small pool of workers and is answered
when it finishes, so the loop never blocks.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ..api.udp import UdpSocket
from ..transport.udp import REFLECTING_PORTS
from .hostio import MAX_TCP_CONNECTIONS, TCP_IDLE_TIMEOUT, recv_exactly
from .server import DEFER, DnsServer

WORKERS = 8
MAX_PENDING = 256


class StackTransport:
    """``exchange(wire, (addr, port), tcp, timeout)`` over the stack's UDP; None on failure.

    Every query uses a fresh socket on a random port (RFC 5452 section 9.2) and accepts only
    a reply from the server it asked, with the query's ID.
    """

    def __init__(self, stack, rng: random.Random = None):
        self.stack = stack
        self.rng = rng or random.SystemRandom()

    def exchange(self, wire: bytes, server, tcp: bool, timeout: float):
        if tcp:
            return self._tcp(wire, server, timeout)
        with UdpSocket(self.stack) as sock:
            for _ in range(16):
                try:
                    sock.bind(("0.0.0.0", self.rng.randrange(1024, 65536)))
                    break
                except OSError:
                    continue
            else:
                return None
            try:
                sock.sendto(wire, server)
            except OSError:
                return None
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                sock.settimeout(left)
                try:
                    data, peer = sock.recvfrom(65535)
                except (TimeoutError, OSError):
                    return None
                if peer == tuple(server) and data[:2] == wire[:2]:
                    return data

    def _tcp(self, wire: bytes, server, timeout: float):
        try:
            from ..api.tcp import create_connection
        except ImportError:
            return None
        try:
            with create_connection(self.stack, tuple(server), timeout=timeout) as sock:
                sock.sendall(len(wire).to_bytes(2, "big") + wire)
                head = recv_exactly(sock, 2)
                return recv_exactly(sock, int.from_bytes(head, "big"))
        except OSError:
            return None


class _DnsOverTcp:
    """RFC 7766 on the stack's TCP: length-framed queries, several per connection, answered in
    order of completion (each reply carries its query's ID)."""

    MAX_BUFFER = 65535 + 2

    def __init__(self, stack, server: DnsServer, defer):
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
                    reply = server.handle(query, "tcp", time.monotonic(), blocking=False)
                    if reply is DEFER:
                        defer(query, "tcp", handler.reply_later)
                    elif reply is not None:
                        handler.transport.write(len(reply).to_bytes(2, "big") + reply)
                # What is left is part of one message, which is at most 2 + 65535 bytes; the
                # transport itself stops reading while replies wait for a slow reader.
                if len(buffer) > self.MAX_BUFFER:
                    server.drops["tcp-bad-framing"] += 1
                    handler.transport.abort()

            def reply_later(handler, reply: bytes) -> None:  # from a worker thread
                with stack.lock:
                    if not handler.transport.is_closing():
                        handler.transport.write(len(reply).to_bytes(2, "big") + reply)
                stack.wake()

        self.factory = Handler


def serve_on_stack(stack, server: DnsServer, port: int = 53, tcp: bool = True) -> int:
    """Answer DNS on the stack's UDP ``port`` (and TCP ``port``); returns the bound port.

    Over TCP, as ``dns serve`` on host sockets: at most MAX_TCP_CONNECTIONS at once, and a
    connection silent for TCP_IDLE_TIMEOUT seconds is closed (RFC 7766 section 6.2.3)."""
    pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="dns-stack")
    slots = threading.BoundedSemaphore(MAX_PENDING)  # resolutions waiting or running

    def resolve_later(data: bytes, transport: str, deliver) -> None:
        try:
            reply = server.handle(data, transport, time.monotonic())
        except Exception:  # noqa: BLE001 - a bug costs one query, never the worker
            server.drops["internal-error"] += 1
            reply = None
        finally:
            slots.release()
        if reply is not None:
            deliver(reply)

    def defer(data: bytes, transport: str, deliver) -> None:
        if not slots.acquire(blocking=False):
            server.drops["recursion-overload"] += 1
            return
        pool.submit(resolve_later, data, transport, deliver)

    def udp(data: bytes, peer):
        if peer[1] in REFLECTING_PORTS:
            # an answer to chargen, echo or time would be answered in turn, a FORMERR to that
            # answer again...: a loop between two hosts (responses, QR=1, are never answered)
            server.drops["reflecting-source-port"] += 1
            return None
        reply = server.handle(bytes(data), "udp", time.monotonic(), blocking=False)
        if reply is DEFER:
            defer(bytes(data), "udp", lambda answer: stack.send_udp(bound, answer, peer))
            return None
        return reply

    bound = stack.add_udp_service(port, udp)
    if tcp:
        from ..services.guard import ServiceLimits, serve_guarded
        limits = ServiceLimits(max_connections=MAX_TCP_CONNECTIONS, idle_timeout=TCP_IDLE_TIMEOUT)
        serve_guarded(stack, bound, _DnsOverTcp(stack, server, defer).factory, limits=limits, name="dns-tcp")
    stack.on_close(lambda: pool.shutdown(wait=False))
    return bound
