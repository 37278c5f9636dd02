"""The IPv4 datagram a captured frame carries, for each link type that carries IPv4 (Ethernet
with VLAN tags, raw IP, Linux cooked SLL/SLL2, BSD loopback). Reading capture files is
``pynetstack.link.pcap.read_pcap``."""

from __future__ import annotations

from typing import Optional

from ..link.pcap import (LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_LOOP,
                         LINKTYPE_NULL, LINKTYPE_RAW)

_RAW_ALIASES = {12: LINKTYPE_RAW, 14: LINKTYPE_RAW}  # DLT_RAW as some BSDs number it


def ip_datagram(linktype: int, frame: bytes) -> Optional[bytes]:
    """The IPv4 datagram a frame carries, or None (ARP, IPv6, other)."""
    linktype = _RAW_ALIASES.get(linktype, linktype)
    if linktype == LINKTYPE_ETHERNET:
        off, etype = 12, 0
        while off + 2 <= len(frame):
            etype = (frame[off] << 8) | frame[off + 1]
            if etype in (0x8100, 0x88A8, 0x9100):
                off += 4
                continue
            break
        return frame[off + 2:] if etype == 0x0800 else None
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4):
        return frame if frame and frame[0] >> 4 == 4 else None
    if linktype == LINKTYPE_LINUX_SLL:
        return frame[16:] if len(frame) > 16 and frame[14:16] == b"\x08\x00" else None
    if linktype == LINKTYPE_LINUX_SLL2:
        return frame[20:] if len(frame) > 20 and frame[0:2] == b"\x08\x00" else None
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if len(frame) > 4 and 2 in (frame[0], frame[3]):
            return frame[4:]
        return None
    return None
