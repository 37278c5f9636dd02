"""Ethernet II frames with 802.1Q / 802.1ad VLAN tags."""

from __future__ import annotations

import struct

from .errors import MalformedPacket

_new = object.__new__  # a parsed header skips __init__ (and object.__new__ is found faster)

ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
ETH_VLAN = 0x8100
ETH_QINQ = 0x88A8
ETH_IPV6 = 0x86DD
HEADER_LEN = 14
MIN_FRAME = 60  # without FCS: short frames are padded on output

_hdr = struct.Struct("!6s6sH")
_tag = struct.Struct("!HH")
_unpack = _hdr.unpack_from


class Ethernet:
    """An Ethernet II frame. ``vlans`` holds the VLAN tags' TCI values, outermost first, and
    ``vlan_tpids`` their tag types. Without ``vlan_tpids`` a frame is built as IEEE 802.1ad
    says: a single tag is 0x8100, a double tag is 0x88a8 (service) outside 0x8100 (customer)."""

    __slots__ = ("dst", "src", "ethertype", "vlans", "vlan_tpids", "payload")

    def __init__(self, dst: bytes, src: bytes, ethertype: int, payload=b"", vlans: tuple = (),
                 vlan_tpids: tuple = ()):
        self.dst = dst
        self.src = src
        self.ethertype = ethertype
        self.payload = payload
        self.vlans = vlans
        self.vlan_tpids = vlan_tpids

    @staticmethod  # (not a classmethod: no bound method is made per call)
    def parse(frame) -> Ethernet:
        try:  # (a try costs nothing until it catches: cheaper than a length test first)
            dst, src, ethertype = _unpack(frame)
        except struct.error:
            raise MalformedPacket("eth-truncated", f"{len(frame)} bytes") from None
        view = memoryview(frame)
        self = _new(Ethernet)
        self.dst = dst
        self.src = src
        self.ethertype = ethertype
        if ethertype == ETH_IPV4:  # untagged IPv4, the usual frame: one comparison
            self.vlans = self.vlan_tpids = ()
            self.payload = view[HEADER_LEN:]
            return self
        offset = HEADER_LEN
        vlans = tpids = ()
        while ethertype == ETH_VLAN or ethertype == ETH_QINQ:
            if len(view) < offset + 4:
                raise MalformedPacket("eth-vlan-truncated")
            if len(vlans) >= 2:
                raise MalformedPacket("eth-too-many-vlan-tags")
            tpids += (ethertype,)
            tci, ethertype = _tag.unpack_from(view, offset)
            vlans += (tci,)
            offset += 4
        if ethertype < 0x0600:
            raise MalformedPacket("eth-not-ethernet-ii", f"length field {ethertype}")
        self.ethertype = ethertype
        self.vlans = vlans
        self.vlan_tpids = tpids
        self.payload = view[offset:]
        return self

    def build(self) -> bytes:
        if self.vlans:
            tpids = self.vlan_tpids or ((ETH_QINQ,) * (len(self.vlans) - 1) + (ETH_VLAN,))
            if len(tpids) != len(self.vlans):
                raise ValueError(f"{len(self.vlans)} VLAN tags but {len(tpids)} tag types")
            tags = b"".join(_tag.pack(tpid, tci) for tpid, tci in zip(tpids, self.vlans))
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
