"""ICMPv4 (RFC 792, RFC 1812 for error sizes): echo, unreachable, time exceeded, parameter problem."""

from __future__ import annotations

import struct

from .checksum import internet_checksum
from .checksum import word_value as _word_value  # int.from_bytes on CPython
from .errors import MalformedPacket

_new = object.__new__  # a parsed header skips __init__ (and object.__new__ is found faster)

ECHO_REPLY = 0
DEST_UNREACHABLE = 3
SOURCE_QUENCH = 4
REDIRECT = 5
ECHO_REQUEST = 8
TIME_EXCEEDED = 11
PARAMETER_PROBLEM = 12
ERROR_TYPES = frozenset((DEST_UNREACHABLE, SOURCE_QUENCH, REDIRECT, TIME_EXCEEDED, PARAMETER_PROBLEM))

# Destination unreachable codes (RFC 792, RFC 1122, RFC 1812)
UNREACH_CODES = {
    0: "net unreachable", 1: "host unreachable", 2: "protocol unreachable", 3: "port unreachable",
    4: "fragmentation needed", 5: "source route failed", 6: "destination network unknown",
    7: "destination host unknown", 8: "source host isolated", 9: "network administratively prohibited",
    10: "host administratively prohibited", 11: "network unreachable for TOS",
    12: "host unreachable for TOS", 13: "communication administratively prohibited",
    14: "host precedence violation", 15: "precedence cutoff in effect",
}
CODE_NET, CODE_HOST, CODE_PROTOCOL, CODE_PORT, CODE_FRAG_NEEDED = 0, 1, 2, 3, 4
CODE_ADMIN_PROHIBITED = 13
TTL_EXCEEDED, REASSEMBLY_TIME_EXCEEDED = 0, 1
TYPE_NAMES = {
    ECHO_REPLY: "echo reply", DEST_UNREACHABLE: "destination unreachable", SOURCE_QUENCH: "source quench",
    REDIRECT: "redirect", ECHO_REQUEST: "echo request", TIME_EXCEEDED: "time exceeded",
    PARAMETER_PROBLEM: "parameter problem",
}
MAX_ERROR_DATAGRAM = 576  # RFC 1812 4.3.2.3: quote as much as fits in 576 bytes
HEADER_LEN = 8

_hdr = struct.Struct("!BBHI")
_unpack = struct.Struct("!BBHHH").unpack_from


class Icmp:
    """An ICMP message. The 32-bit word after the checksum is kept as its two 16-bit halves,
    ``ident`` and ``seq`` (an echo's identifier and sequence number, RFC 792); ``rest`` is the
    whole word, and the properties name it per type (next-hop MTU, parameter-problem pointer,
    redirect gateway)."""

    __slots__ = ("type", "code", "checksum", "ident", "seq", "payload")

    def __init__(self, type: int, code: int = 0, rest: int = 0, payload=b""):
        self.type = type
        self.code = code
        self.ident = rest >> 16  # (not masked: a word too wide still fails to build, as it did)
        self.seq = rest & 0xFFFF
        self.payload = payload
        self.checksum = 0

    @staticmethod  # (not a classmethod: no bound method is made per call)
    def parse(data, check: bool = True) -> Icmp:
        try:  # (a try costs nothing until it catches: cheaper than a length test first)
            kind, code, csum, ident, seq = _unpack(data)
        except struct.error:
            raise MalformedPacket("icmp-truncated", f"{len(data)} bytes") from None
        if check:  # checksum.verify inlined: the sum of a valid message is 0xFFFF, never 0
            value = _word_value(data, "big")
            if len(data) & 1:
                value <<= 8
            if not value or value % 0xFFFF:
                raise MalformedPacket("icmp-bad-checksum")
        self = _new(Icmp)
        self.type = kind
        self.code = code
        self.checksum = csum
        self.ident = ident
        self.seq = seq
        self.payload = (data if type(data) is memoryview else memoryview(data))[HEADER_LEN:]
        return self

    @property
    def rest(self) -> int:
        """The whole word after the checksum (a redirect's gateway, for one)."""
        return (self.ident << 16) | self.seq

    @rest.setter
    def rest(self, value: int) -> None:
        self.ident = value >> 16
        self.seq = value & 0xFFFF

    @property
    def mtu(self) -> int:
        return self.seq  # (the low half: RFC 1191's next-hop MTU)

    @property
    def pointer(self) -> int:
        return self.ident >> 8  # (the top byte: RFC 792's parameter-problem pointer)

    @property
    def is_error(self) -> bool:
        return self.type in ERROR_TYPES

    def build(self) -> bytes:
        return build_icmp(self.type, self.code, self.rest, bytes(self.payload))


def build_icmp(type: int, code: int, rest: int, payload: bytes) -> bytes:
    message = _hdr.pack(type, code, 0, rest) + payload
    csum = internet_checksum(message)
    return message[:2] + csum.to_bytes(2, "big") + message[4:]


def build_echo(request: bool, ident: int, seq: int, payload: bytes) -> bytes:
    return build_icmp(ECHO_REQUEST if request else ECHO_REPLY, 0, (ident << 16) | seq, payload)


def build_error(type: int, code: int, offending_datagram: bytes, rest: int = 0) -> bytes:
    """An ICMP error quoting the offending datagram: its IP header and as much of its data as
    keeps the whole error datagram (20 bytes of IP header + 8 of ICMP) within 576 bytes."""
    quote = bytes(offending_datagram[:MAX_ERROR_DATAGRAM - 20 - HEADER_LEN])
    return build_icmp(type, code, rest, quote)


def frag_needed_rest(mtu: int) -> int:
    """The rest-of-header word of a fragmentation-needed error (RFC 1191: next-hop MTU)."""
    return mtu & 0xFFFF


def parameter_problem_rest(pointer: int) -> int:
    return (pointer & 0xFF) << 24
