"""Ethernet II frames with 802.1Q / 802.1ad VLAN tags."""

from __future__ import annotations

import struct

from .errors import MalformedPacket

ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
ETH_VLAN = 0x8100
ETH_QINQ = 0x88A8
ETH_IPV6 = 0x86DD
HEADER_LEN = 14
MIN_FRAME = 60  # without FCS: short frames are padded on output

_hdr = struct.Struct("!6s6sH")
_tag = struct.Struct("!HH")


class Ethernet:
    """An Ethernet II frame. ``vlans`` holds the 802.1Q TCI values, outermost first."""

    __slots__ = ("dst", "src", "ethertype", "vlans", "payload")

    def __init__(self, dst: bytes, src: bytes, ethertype: int, payload=b"", vlans: tuple = ()):
        self.dst = dst
        self.src = src
        self.ethertype = ethertype
        self.payload = payload
        self.vlans = vlans

    @classmethod
    def parse(cls, frame) -> Ethernet:
        if len(frame) < HEADER_LEN:
            raise MalformedPacket("eth-truncated", f"{len(frame)} bytes")
        view = memoryview(frame)
        self = cls.__new__(cls)
        self.dst, self.src, ethertype = _hdr.unpack_from(view)
        offset = HEADER_LEN
        vlans = ()
        while ethertype == ETH_VLAN or ethertype == ETH_QINQ:
            if len(view) < offset + 4:
                raise MalformedPacket("eth-vlan-truncated")
            if len(vlans) >= 2:
                raise MalformedPacket("eth-too-many-vlan-tags")
            tci, ethertype = _tag.unpack_from(view, offset)
            vlans += (tci,)
            offset += 4
        if ethertype < 0x0600:
            raise MalformedPacket("eth-not-ethernet-ii", f"length field {ethertype}")
        self.ethertype = ethertype
        self.vlans = vlans
        self.payload = view[offset:]
        return self

    def build(self) -> bytes:
        if self.vlans:
            tags = b"".join(_tag.pack(ETH_VLAN, tci) for tci in self.vlans)
            head = self.dst + self.src + tags + struct.pack("!H", self.ethertype)
        else:
            head = _hdr.pack(self.dst, self.src, self.ethertype)
        frame = head + bytes(self.payload)
        if len(frame) < MIN_FRAME:
            frame += bytes(MIN_FRAME - len(frame))
        return frame


def build_frame(dst: bytes, src: bytes, ethertype: int, payload) -> bytes:
    """Fast path for untagged frames: header + payload, padded to the Ethernet minimum."""
    frame = _hdr.pack(dst, src, ethertype) + payload
    if len(frame) < MIN_FRAME:
        frame += bytes(MIN_FRAME - len(frame))
    return frame
