"""ICMP errors about a connection: path MTU discovery (RFC 1191, fragmentation needed), hard and
soft errors (RFC 1122 4.2.3.9, RFC 5461), and RFC 5927 4.1's check that the error quotes data
in flight.  The layer (``TcpLayer.icmp_error``) finds the connection from the quoted ports.

A mixin of ``TcpConnection``: the fields live in the connection's ``__slots__``.
"""

from __future__ import annotations

from ...wire.icmp import (CODE_FRAG_NEEDED, CODE_HOST, CODE_NET, CODE_PORT, CODE_PROTOCOL,
                          DEST_UNREACHABLE, TIME_EXCEEDED)
from .options import TS_OPTION_LEN
from .seq import unwrap
from .state import CAN_SEND_DATA, SYN_SENT

MIN_IPV4_MTU = 68        # RFC 791: every link carries 68 bytes; a smaller "MTU" is forged
MIN_PMTU_MSS = 88        # the smallest MSS we lower to (as Linux's tcp_min_snd_mss)
# destination-unreachable codes that abort a connection still in SYN-SENT (RFC 1122 4.2.3.9:
# protocol and port unreachable; fragmentation needed is handled by lowering the MSS)
HARD_CODES = frozenset((CODE_PROTOCOL, CODE_PORT, CODE_FRAG_NEEDED))
# the codes reported as "no route to host" (wire.icmp.UNREACH_CODES names them): net, host,
# source route failed, unknown network/host, administratively prohibited, unreachable for TOS
NO_ROUTE_CODES = frozenset((CODE_NET, CODE_HOST, 5, 6, 7, 9, 10, 11, 12, 13))


class IcmpMixin:
    __slots__ = ()

    def icmp_error(self, icmp_type: int, code: int, info: int, wire_seq: int, now: float) -> None:
        seq = unwrap(wire_seq, self.snd_una)
        if not (self.snd_una <= seq <= self.snd_max) and self.state != SYN_SENT:
            self.layer.count("icmp-bad-seq")  # RFC 5927 4.1: must quote data in flight
            return
        unreachable = icmp_type == DEST_UNREACHABLE
        if unreachable and code == CODE_FRAG_NEEDED:
            self._path_mtu_lowered(info & 0xFFFF, now)
            return
        if unreachable and code == CODE_PORT:
            err = ConnectionRefusedError(111, "TCP connection refused (ICMP port unreachable)")
        elif unreachable and code in NO_ROUTE_CODES:
            err = OSError(113, "No route to host (ICMP unreachable)")
        elif icmp_type == TIME_EXCEEDED:
            err = OSError(113, "No route to host (ICMP time exceeded)")
        else:
            return
        if self.state == SYN_SENT and unreachable and code in HARD_CODES:
            self._close_now(now, f"ICMP {icmp_type}/{code}", err)
        else:
            self.soft_error = err  # RFC 1122 4.2.3.9: soft errors are reported, not fatal

    def _path_mtu_lowered(self, mtu: int, now: float) -> None:
        """RFC 1191: fragmentation needed with the next hop's MTU: a smaller MSS from now on."""
        if mtu < MIN_IPV4_MTU:
            self.layer.count("icmp-bad-mtu")
            return
        new_mss = mtu - 40 - (TS_OPTION_LEN if self.ts_ok else 0)
        if new_mss < MIN_PMTU_MSS:
            new_mss = MIN_PMTU_MSS
        if new_mss < self.mss:
            self.mss = new_mss
            if self.cc is not None:
                self.cc.set_mss(new_mss)
            # resend what was in flight in smaller segments (no congestion response)
            if self.state in CAN_SEND_DATA and self.snd_max > self.snd_una:
                self.snd_nxt = self.snd_una
                self.rtt_seq = None
                self._output(now)
                self._update_deadline()
