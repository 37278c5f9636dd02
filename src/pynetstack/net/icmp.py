"""ICMP on the host: echo, errors in (with path MTU discovery, RFC 1191) and errors out (RFC 1122 3.2.2)."""

from __future__ import annotations

import struct

from ..wire import icmp as icmpw
from ..wire.addr import ip_to_str
from ..wire.checksum import word_value as _from_bytes  # int.from_bytes on CPython
from ..wire.errors import MalformedPacket
from ..wire.ipv4 import PROTO_ICMP, IPv4, bad_option_offset
from .drops import DropReason

_ECHO_WORDS = struct.Struct("!HH").unpack_from  # type and code, checksum
_REPLY_WORDS = struct.Struct("!HH").pack

LIMITED_BROADCAST = 0xFFFFFFFF
MIN_PMTU = 552  # Linux's net.ipv4.route.min_pmtu: the floor a path MTU message may push us to
PMTU_PLATEAUS = (65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68)  # RFC 1191 section 7
PMTU_LIFETIME = 600.0
PMTU_ENTRIES = 1024
ECHO_PATHS = 64  # pingers whose replies take a cached way out


def bad_source(src: int) -> bool:
    """Sources no host may use (RFC 1122 3.2.1.3): broadcast, multicast, class E, loopback."""
    top = src >> 24
    return src == LIMITED_BROADCAST or top >= 224 or top == 127


class IcmpMixin:
    """The ICMP half of ``IPv4Host``."""

    def _parameter_problem(self, datagram, now: float) -> None:
        """RFC 1122 3.2.2.5: answer a datagram with an impossible option (its header checksum
        held: the parser checks that first) with ICMP parameter problem pointing at the option."""
        ip = IPv4.parse_quoted(datagram)
        offset = bad_option_offset(ip.options)
        if offset is not None and ip.dst in self.local_addresses:
            self.send_icmp_error(ip, icmpw.PARAMETER_PROBLEM, 0, now,
                                 rest=icmpw.parameter_problem_rest(20 + offset))

    def _icmp_fast(self, src: int, dst: int, message, now: float, check: bool = True) -> None:
        """ICMP on the receive fast path (``IPv4Host._receive_frame``: an unfragmented datagram
        without options to one of our addresses, its header and source checked, no PREROUTING or
        INPUT stage).  An echo request is answered here without header objects: the reply is
        the request with type and code 0 and its checksum derived from the request's, which
        holds because the request's checksum was verified.  Anything else, and everything when
        tracing, takes ``_icmp_input``.  ``message`` is a view into the received frame."""
        if message[0] != icmpw.ECHO_REQUEST or not self.echo_reply or len(message) < icmpw.HEADER_LEN:
            self._icmp_input(IPv4.parse(message.obj[14:]), now)  # (the frame's IPv4 datagram)
            return
        if check:  # checksum.verify inlined: the sum of a valid message is 0xFFFF, never 0
            value = _from_bytes(message, "big")
            if len(message) & 1:
                value <<= 8
            if not value or value % 0xFFFF:
                raise MalformedPacket("icmp-bad-checksum")
        counters = self.counters
        counters["icmp_in"] += 1
        first, csum = _ECHO_WORDS(message)
        # The request sums to 0 modulo 0xFFFF, so the rest of it (identifier, sequence number,
        # data), which the reply keeps, sums to -(first + csum); the reply's checksum is that
        # sum's complement, as internet_checksum gives it: 0xFFFF for an all-zero rest, 0 for
        # another rest whose sum is 0xFFFF (RFC 1624's update would give 0 for both).
        rest = -(first + csum) % 0xFFFF
        if rest:
            reply_csum = ~rest & 0xFFFF
        else:
            reply_csum = 0 if any(message[4:]) else 0xFFFF
        reply = _REPLY_WORDS(0, reply_csum) + message[4:]  # type 0, code 0
        tos = message.obj[15]  # the request's TOS byte, kept as Linux does
        # A pinger gets its replies through a cached way out (route, next-hop MAC, header
        # template: net/egress.py), 1 us instead of ip_send's 3; the identification comes from
        # the host's one counter either way (DF clear, as Linux's replies: it must be unique).
        key = (src, dst, tos)
        path = self._echo_paths.get(key)
        if path is not None:
            path.ident = self._ident
            if path.transmit(b"", reply, now):
                self._ident = path.ident
                counters["icmp_echo_replies"] += 1
                return
        self.ip_send(dst, src, PROTO_ICMP, reply, now, df=False, tos=tos)
        counters["icmp_echo_replies"] += 1
        path = self.output_path(dst, src, PROTO_ICMP, now, tos=tos, df=False)
        if path is None:
            self._echo_paths.pop(key, None)
        else:
            if len(self._echo_paths) >= ECHO_PATHS:
                self._echo_paths.clear()  # many pingers: start again (a bound, not an LRU)
            self._echo_paths[key] = path

    def _icmp_input(self, ip: IPv4, now: float) -> None:
        msg = icmpw.Icmp.parse(ip.payload)
        self.counters["icmp_in"] += 1
        kind = msg.type
        self.note(f"icmp: {icmpw.TYPE_NAMES.get(kind, f'type {kind}')} code {msg.code}")
        if kind == icmpw.ECHO_REQUEST:
            # Like Linux (icmp_echo_ignore_broadcasts=1), answer only echoes to our unicast addresses.
            if self.echo_reply and ip.dst in self.local_addresses:
                reply = icmpw.build_icmp(icmpw.ECHO_REPLY, 0, msg.rest, bytes(msg.payload))
                self.note(f"icmp: answering with an echo reply, id {msg.ident} seq {msg.seq}")
                self.ip_send(ip.dst, ip.src, PROTO_ICMP, reply, now, df=False, tos=ip.tos)
                self.counters["icmp_echo_replies"] += 1
            else:
                self.drops.drop(DropReason.ICMP_UNHANDLED)
        elif kind == icmpw.ECHO_REPLY:
            for listener in self.echo_listeners:
                listener(ip, msg, now)
        elif msg.is_error:
            self._icmp_error_input(msg, now)
        else:
            self.drops.drop(DropReason.ICMP_UNHANDLED)

    def _icmp_error_input(self, msg, now: float) -> None:
        inner = IPv4.parse_quoted(msg.payload)
        if inner.src not in self.local_addresses:
            self.drops.drop(DropReason.ICMP_NOT_OURS)  # it quotes a datagram we never sent
            return
        transport = self.transports.get(inner.protocol)
        acceptable = getattr(transport, "icmp_error_acceptable", None)
        if acceptable is not None and not acceptable(inner, inner.payload):
            self.drops.drop(DropReason.ICMP_NOT_OURS)  # it quotes no flow of ours (RFC 5927)
            return
        info = msg.rest
        if msg.type == icmpw.DEST_UNREACHABLE and msg.code == icmpw.CODE_FRAG_NEEDED:
            info = self._learn_path_mtu(inner.dst, msg.mtu, inner.total_length, now)
        if transport is not None:
            transport.icmp_error(msg.type, msg.code, info, inner, bytes(inner.payload), now)
        self.counters["icmp_errors_in"] += 1

    def _learn_path_mtu(self, dst: int, mtu: int, quoted_length: int, now: float) -> int:
        """RFC 1191: lower the estimate towards ``dst``; never raise it on an ICMP message (section 3),
        and never below MIN_PMTU, so a forged message cannot make us send confetti."""
        if mtu == 0:  # RFC 1191 section 5: a router of RFC 792 vintage; take the next plateau down
            mtu = next((p for p in PMTU_PLATEAUS if p < quoted_length), MIN_PMTU)
        current = self.path_mtu(dst)
        mtu = max(MIN_PMTU, min(mtu, current))
        self.pmtu[dst] = (mtu, now + PMTU_LIFETIME)
        self.pmtu_generation += 1
        self.pmtu.move_to_end(dst)
        while len(self.pmtu) > PMTU_ENTRIES:
            self.pmtu.popitem(last=False)
        return mtu

    def _interface_mtu(self, dst: int) -> int:
        route = self.routes.lookup(dst)
        return route.interface.mtu if route is not None and route.interface is not None else 1500

    def _reassembly_timed_out(self, first: IPv4, now: float) -> None:
        self.send_icmp_error(first, icmpw.TIME_EXCEEDED, icmpw.REASSEMBLY_TIME_EXCEEDED, now)

    def send_icmp_error(self, ip: IPv4, icmp_type: int, code: int, now: float, rest: int = 0) -> bool:
        """Send an ICMP error about ``ip`` unless RFC 1122 3.2.2 forbids it or the rate limit bites."""
        src = ip.src
        if (ip.frag_offset or bad_source(src) or src == 0 or src in self.broadcasts or self._link_broadcast
                or ip.dst == LIMITED_BROADCAST or ip.dst in self.broadcasts or ip.dst >> 28 == 14):
            return False
        if ip.protocol == PROTO_ICMP:
            payload = ip.payload
            if len(payload) < 1 or payload[0] in icmpw.ERROR_TYPES:
                return False
        self._icmp_tokens = min(self._icmp_rate, self._icmp_tokens + (now - self._icmp_stamp) * self._icmp_rate)
        self._icmp_stamp = now
        if self._icmp_tokens < 1:
            self.drops.drop(DropReason.ICMP_RATE_LIMITED)
            return False
        self._icmp_tokens -= 1
        quoted = IPv4(ip.src, ip.dst, ip.protocol, ip.payload, ttl=ip.ttl, tos=ip.tos, ident=ip.ident,
                      df=ip.df, mf=ip.mf, frag_offset=ip.frag_offset, options=ip.options)
        payload = bytes(ip.payload)
        original = quoted.build_header(len(payload)) + payload
        source = ip.dst if ip.dst in self.local_addresses else self.source_address_for(src)
        if source is None:
            return False
        self.counters["icmp_errors_out"] += 1
        self.note(f"icmp: sending {icmpw.TYPE_NAMES.get(icmp_type, icmp_type)} (code {code}) to {ip_to_str(src)}")
        return self.ip_send(source, src, PROTO_ICMP, icmpw.build_error(icmp_type, code, original, rest), now,
                            df=False, tos=0xC0 | (ip.tos & 0x1E))  # as Linux: precedence 6, the TOS bits kept

    # ------------------------------------------------------------------ IpOutput helpers
    def path_mtu(self, dst: int) -> int:
        route = self.routes.lookup(dst)
        if route is None or route.interface is None:
            return 576
        learned = self.pmtu.get(dst)
        return min(learned[0], route.interface.mtu) if learned else route.interface.mtu

    # ------------------------------------------------------------------ timers
