"""UDP (RFC 768), including the zero-checksum rules."""

from __future__ import annotations

import struct

from .checksum import transport_checksum
from .checksum import word_value as _word_value  # int.from_bytes on CPython
from .errors import MalformedPacket

_new = object.__new__  # a parsed header skips __init__ (and object.__new__ is found faster)

HEADER_LEN = 8
PROTO = 17
_hdr = struct.Struct("!HHHH")
_unpack = _hdr.unpack_from


class Udp:
    __slots__ = ("src_port", "dst_port", "checksum", "payload")

    def __init__(self, src_port: int, dst_port: int, payload=b""):
        self.src_port = src_port
        self.dst_port = dst_port
        self.payload = payload
        self.checksum = 0

    @staticmethod  # (not a classmethod: no bound method is made per call)
    def parse(data, src: int = 0, dst: int = 0, check: bool = True) -> Udp:
        """Parse a datagram; with ``check`` the checksum is verified against the pseudo-header.

        A zero checksum means the sender computed none (RFC 768) and is accepted.
        """
        n = len(data)
        if n < HEADER_LEN:
            raise MalformedPacket("udp-truncated", f"{n} bytes")
        sport, dport, length, csum = _unpack(data)
        if length < HEADER_LEN or length > n:
            raise MalformedPacket("udp-bad-length", f"length {length}, have {n}")
        view = data if type(data) is memoryview else memoryview(data)
        if length != n:
            view = view[:length]
        if check and csum:
            # Inline transport_verify: the segment's value plus the pseudo-header's, modulo 0xFFFF.
            value = _word_value(view, "big")
            if length & 1:
                value <<= 8
            # (reduced before the pseudo-header is added: no big-int addition, no second big int)
            if (value % 0xFFFF + src + dst + PROTO + length) % 0xFFFF:
                raise MalformedPacket("udp-bad-checksum")
        self = _new(Udp)
        self.src_port, self.dst_port, self.checksum = sport, dport, csum
        self.payload = view[HEADER_LEN:]
        return self

    def build(self, src: int, dst: int) -> bytes:
        return build_udp(src, dst, self.src_port, self.dst_port, bytes(self.payload))


def build_udp(src: int, dst: int, src_port: int, dst_port: int, payload: bytes) -> bytes:
    length = HEADER_LEN + len(payload)
    if length > 0xFFFF:
        raise ValueError(f"UDP datagram of {length} bytes is too long")
    segment = _hdr.pack(src_port, dst_port, length, 0) + payload
    csum = transport_checksum(src, dst, PROTO, segment) or 0xFFFF  # 0 would mean "no checksum"
    return segment[:6] + csum.to_bytes(2, "big") + segment[8:]
