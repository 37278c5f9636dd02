"""One blocking DNS exchange through a stack's socket API, for scripts in other threads than the
stack's loop (a ``dig`` of their own). The resolver does not use it: on a stack it is driven in
the loop by ``stackio.StackResolverIO``, with no blocking and no wall clock.
"""

from __future__ import annotations

import random
import time

from ..api.udp import UdpSocket
from .hostio import recv_exactly


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
