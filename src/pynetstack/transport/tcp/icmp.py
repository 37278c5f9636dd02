"""ICMP errors about a connection: path MTU discovery (RFC 1191, fragmentation needed), hard and
soft errors (RFC 1122 4.2.3.9, RFC 5461), and RFC 5927 4.1's check that the error quotes data
in flight.  The layer (``TcpLayer.icmp_error``) finds the connection from the quoted ports.

Which errors are fatal follows Linux (tcp_v4_err in net/ipv4/tcp_ipv4.c), as RFC 5461 section 4
describes it: a connection still opening (SYN-SENT, or SYN-RECEIVED by simultaneous open) is
aborted by any error it accepts, host and net unreachable included, so that ``connect()`` to a
host nobody can reach fails in seconds instead of after minutes of retransmitted SYNs; once
synchronized, every error is soft (kept in ``soft_error``, reported only if the connection then
times out).  A listener's half-open connection is dropped silently (no error reaches
``accept()``) by net or host unreachable, time exceeded or a parameter problem, and only when
the error quotes its SYN-ACK (Linux's tcp_req_err).

A mixin of ``TcpConnection``: the fields live in the connection's ``__slots__``.
"""

from __future__ import annotations

from ...wire.icmp import (CODE_FRAG_NEEDED, CODE_HOST, CODE_NET, DEST_UNREACHABLE, PARAMETER_PROBLEM,
                          TIME_EXCEEDED, UNREACH_CODES)
from .options import TS_OPTION_LEN
from .seq import unwrap
from .state import CAN_SEND_DATA, SYN_RECEIVED, SYN_SENT

MIN_IPV4_MTU = 68        # RFC 791: every link carries 68 bytes; a smaller "MTU" is forged
MIN_PMTU_MSS = 88        # the smallest MSS we lower to (as Linux's tcp_min_snd_mss)

# the errno of each destination-unreachable code, as Linux's icmp_err_convert (net/ipv4/icmp.c);
# code 4, fragmentation needed, is path MTU discovery, not an error
ENETUNREACH, EHOSTUNREACH, EPROTO = 101, 113, 71
UNREACH_ERRNO = {0: ENETUNREACH, 1: EHOSTUNREACH, 2: 92, 3: 111, 5: 95, 6: ENETUNREACH,
                 7: 112, 8: 64, 9: ENETUNREACH, 10: EHOSTUNREACH, 11: ENETUNREACH,
                 12: EHOSTUNREACH, 13: EHOSTUNREACH, 14: EHOSTUNREACH, 15: EHOSTUNREACH}
ERRNO_TEXT = {ENETUNREACH: "Network is unreachable", EHOSTUNREACH: "No route to host",
              92: "Protocol not available", 111: "Connection refused", 95: "Operation not supported",
              112: "Host is down", 64: "Machine is not on the network", EPROTO: "Protocol error"}
# the errors that drop a listener's half-open connection (Linux's tcp_req_err callers)
EMBRYONIC_UNREACH_CODES = frozenset((CODE_NET, CODE_HOST))


def icmp_os_error(icmp_type: int, code: int):
    """The OSError an ICMP error means to a connection (``OSError`` picks the subclass, such as
    ConnectionRefusedError for port unreachable), or None for an ICMP error TCP ignores."""
    if icmp_type == DEST_UNREACHABLE:
        errno = UNREACH_ERRNO.get(code)
        if errno is None:
            return None
        return OSError(errno, f"{ERRNO_TEXT[errno]} (ICMP {UNREACH_CODES[code]})")
    if icmp_type == TIME_EXCEEDED:
        return OSError(EHOSTUNREACH, "No route to host (ICMP time exceeded)")
    if icmp_type == PARAMETER_PROBLEM:
        return OSError(EPROTO, "Protocol error (ICMP parameter problem)")
    return None  # source quench, redirect


class IcmpMixin:
    __slots__ = ()

    def icmp_error(self, icmp_type: int, code: int, info: int, wire_seq: int, now: float) -> None:
        seq = unwrap(wire_seq, self.snd_una)
        if not (self.snd_una <= seq <= self.snd_max) and self.state != SYN_SENT:
            self.layer.count("icmp-bad-seq")  # RFC 5927 4.1: must quote data in flight
            return
        if icmp_type == DEST_UNREACHABLE and code == CODE_FRAG_NEEDED:
            self._path_mtu_lowered(info & 0xFFFF, now)
            return
        err = icmp_os_error(icmp_type, code)
        if err is None:
            return
        if self.state == SYN_RECEIVED and self.passive:
            self._embryonic_icmp_error(icmp_type, code, seq, now)
        elif self.state == SYN_SENT or self.state == SYN_RECEIVED:
            self._close_now(now, f"ICMP {icmp_type}/{code}", err)
        else:
            self.soft_error = err  # RFC 1122 4.2.3.9: soft errors are reported, not fatal

    def _embryonic_icmp_error(self, icmp_type: int, code: int, seq: int, now: float) -> None:
        """A listener's half-open connection: nobody can be told (POSIX wants no network errors
        from accept()), so an error that says the peer is unreachable just drops it."""
        if seq != self.iss:
            self.layer.count("icmp-bad-seq")  # it must quote our SYN-ACK
            return
        if (icmp_type == TIME_EXCEEDED or icmp_type == PARAMETER_PROBLEM
                or (icmp_type == DEST_UNREACHABLE and code in EMBRYONIC_UNREACH_CODES)):
            self.layer.count("icmp-embryonic-dropped")
            self._close_now(now, f"ICMP {icmp_type}/{code}", None)

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
