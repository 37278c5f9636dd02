"""ARP for IPv4 over Ethernet (RFC 826)."""

from __future__ import annotations

import struct

from .errors import MalformedPacket

REQUEST = 1
REPLY = 2
LENGTH = 28
_arp = struct.Struct("!HHBBH6sI6sI")


class Arp:
    __slots__ = ("op", "sha", "spa", "tha", "tpa")

    def __init__(self, op: int, sha: bytes, spa: int, tha: bytes, tpa: int):
        self.op = op
        self.sha = sha
        self.spa = spa
        self.tha = tha
        self.tpa = tpa

    @classmethod
    def parse(cls, data) -> Arp:
        if len(data) < LENGTH:
            raise MalformedPacket("arp-truncated", f"{len(data)} bytes")
        htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _arp.unpack_from(data)
        if htype != 1 or ptype != 0x0800 or hlen != 6 or plen != 4:
            raise MalformedPacket("arp-unsupported", f"htype={htype} ptype={ptype:#x} hlen={hlen} plen={plen}")
        if op not in (REQUEST, REPLY):
            raise MalformedPacket("arp-bad-op", str(op))
        self = cls.__new__(cls)
        self.op, self.sha, self.spa, self.tha, self.tpa = op, sha, spa, tha, tpa
        return self

    def build(self) -> bytes:
        return _arp.pack(1, 0x0800, 6, 4, self.op, self.sha, self.spa, self.tha, self.tpa)
