"""UDP endpoints over the IPv4 layer: demultiplexing by port, ICMP port unreachable, sending.

An endpoint is a callable ``handler(payload, src_ip, src_port, dst_ip, now)``; sockets and
services are built on that one shape.
"""

from __future__ import annotations

import os
from typing import Callable, Dict, Optional, Tuple

from ..net.drops import DropReason
from ..wire import icmp as icmpw
from ..wire.errors import MalformedPacket
from ..wire.udp import PROTO, Udp, build_udp

EPHEMERAL_FIRST, EPHEMERAL_LAST = 32768, 60999  # Linux's default ip_local_port_range
# Services that answer whatever arrives (echo, daytime, quote of the day, chargen, time: RFC 862,
# 867, 865, 864, 868), and port 0, which asks for no answer.  A service that answers a datagram
# from one of these to a spoofed source starts a loop between two hosts that never ends; so
# services must not answer them (the classic inetd rule; DNS servers drop them too).
REFLECTING_PORTS = frozenset((0, 7, 13, 17, 19, 37))
Handler = Callable[[bytes, int, int, int, float], None]


class UdpLayer:
    def __init__(self, ip, drops=None):
        self.ip = ip
        self.drops = drops if drops is not None else getattr(ip, "drops", None)
        self.endpoints: Dict[Tuple[int, int], Handler] = {}  # (local address or 0, port) -> handler
        self.error_listeners: Dict[int, Callable] = {}  # local port -> callable(type, code, dst, dst_port)
        self.received = self.sent = 0
        self._next_port = EPHEMERAL_FIRST + int.from_bytes(os.urandom(2), "big") % (EPHEMERAL_LAST - EPHEMERAL_FIRST)

    def bind(self, port: int, handler: Handler, address: int = 0) -> int:
        """Attach ``handler`` to ``port`` (0 picks an ephemeral port); returns the port."""
        if port == 0:
            port = self._ephemeral_port(address)
        if not 0 < port < 65536:
            raise ValueError(f"port {port} out of range")
        if (address, port) in self.endpoints or (0, port) in self.endpoints:
            raise OSError(98, f"UDP port {port} is in use")
        self.endpoints[(address, port)] = handler
        return port

    def unbind(self, port: int, address: int = 0) -> None:
        self.endpoints.pop((address, port), None)
        self.error_listeners.pop(port, None)

    def _ephemeral_port(self, address: int) -> int:
        span = EPHEMERAL_LAST - EPHEMERAL_FIRST + 1
        for _ in range(span):
            self._next_port = EPHEMERAL_FIRST + (self._next_port - EPHEMERAL_FIRST + 1) % span
            if (address, self._next_port) not in self.endpoints and (0, self._next_port) not in self.endpoints:
                return self._next_port
        raise OSError(98, "no free UDP port")

    def sendto(self, payload: bytes, src_port: int, dst: int, dst_port: int, now: float,
               src: Optional[int] = None) -> bool:
        if src is None or src == 0:
            src = self.ip.source_address_for(dst)
            if src is None:
                return False
        self.sent += 1
        return self.ip.ip_send(src, dst, PROTO, build_udp(src, dst, src_port, dst_port, payload), now, df=False)

    def receive(self, ip, now: float) -> None:
        try:
            datagram = Udp.parse(ip.payload, ip.src, ip.dst)
        except MalformedPacket as exc:
            self.drops.drop(exc.reason)
            return
        port = datagram.dst_port
        handler = self.endpoints.get((ip.dst, port)) or self.endpoints.get((0, port))
        if handler is None:
            self.drops.drop(DropReason.UDP_NO_SOCKET)
            self.ip.send_icmp_error(ip, icmpw.DEST_UNREACHABLE, icmpw.CODE_PORT, now)
            return
        self.received += 1
        if getattr(self.ip, "_steps", None) is not None:
            self.ip.note(f"udp: {datagram.src_port} > {port}, {len(datagram.payload)} bytes to its endpoint")
        handler(bytes(datagram.payload), ip.src, datagram.src_port, ip.dst, now)

    def icmp_error_acceptable(self, inner_ip, inner_payload) -> bool:
        """An ICMP error is believed (a path MTU learned from it) only if it quotes a datagram
        from a port bound here, as Linux looks up the socket before it acts."""
        if len(inner_payload) < 8:
            return False
        port = int.from_bytes(inner_payload[0:2], "big")
        if (inner_ip.src, port) in self.endpoints or (0, port) in self.endpoints:
            return True
        self.drops.drop("udp-icmp-no-socket")
        return False

    def icmp_error(self, icmp_type, code, info, inner_ip, inner_payload, now) -> None:
        if len(inner_payload) < 4:
            return
        src_port = int.from_bytes(inner_payload[0:2], "big")
        dst_port = int.from_bytes(inner_payload[2:4], "big")
        listener = self.error_listeners.get(src_port)
        if listener is not None:
            listener(icmp_type, code, inner_ip.dst, dst_port)

    def poll(self, now: float) -> None:
        """UDP keeps no timers."""

    def next_deadline(self):
        return None
