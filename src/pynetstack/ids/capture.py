"""Reading captures for offline inspection: classic pcap and pcapng, with the link types that
carry IPv4 (Ethernet with VLAN tags, raw IP, Linux cooked SLL/SLL2, BSD loopback)."""

from __future__ import annotations

import struct
from typing import Iterator, Optional, Tuple

LINK_NULL, LINK_ETHERNET, LINK_RAW, LINK_LOOP, LINK_SLL, LINK_IPV4, LINK_SLL2 = 0, 1, 101, 108, 113, 228, 276
_RAW_ALIASES = {12: LINK_RAW, 14: LINK_RAW}


class CaptureError(ValueError):
    """A capture file that cannot be read."""


class TruncatedCapture(CaptureError):
    """A capture that ends inside a packet (a copy cut short, a damaged length): the packets
    before the damage were read; ``packets`` says how many."""

    def __init__(self, path: str, packets: int, detail: str):
        super().__init__(f"{path}: truncated or damaged after {packets} packets: {detail}")
        self.packets = packets


def ip_datagram(linktype: int, frame: bytes) -> Optional[bytes]:
    """The IPv4 datagram a frame carries, or None (ARP, IPv6, other)."""
    linktype = _RAW_ALIASES.get(linktype, linktype)
    if linktype == LINK_ETHERNET:
        off, etype = 12, 0
        while off + 2 <= len(frame):
            etype = (frame[off] << 8) | frame[off + 1]
            if etype in (0x8100, 0x88A8, 0x9100):
                off += 4
                continue
            break
        return frame[off + 2:] if etype == 0x0800 else None
    if linktype in (LINK_RAW, LINK_IPV4):
        return frame if frame and frame[0] >> 4 == 4 else None
    if linktype == LINK_SLL:
        return frame[16:] if len(frame) > 16 and frame[14:16] == b"\x08\x00" else None
    if linktype == LINK_SLL2:
        return frame[20:] if len(frame) > 20 and frame[0:2] == b"\x08\x00" else None
    if linktype in (LINK_NULL, LINK_LOOP):
        if len(frame) > 4 and 2 in (frame[0], frame[3]):
            return frame[4:]
        return None
    return None


def read_capture(path: str) -> Iterator[Tuple[float, int, bytes]]:
    """(timestamp, linktype, frame) for every packet of a pcap or pcapng file."""
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise CaptureError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        head = handle.read(24)
        if len(head) < 24:
            raise CaptureError(f"{path}: not a capture file (too short)")
        if head[:4] == b"\x0a\x0d\x0d\x0a":
            handle.seek(0)
            yield from _pcapng(handle, path)
            return
        magic = head[:4]
        if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            order = "<"
        elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            order = ">"
        else:
            raise CaptureError(f"{path}: not a pcap or pcapng file (magic {magic.hex()})")
        scale = 1e9 if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1e6
        linktype = struct.unpack(order + "I", head[20:24])[0] & 0xFFFF
        record = struct.Struct(order + "IIII")
        count = 0
        while True:
            raw = handle.read(16)
            if len(raw) < 16:
                if raw:
                    raise TruncatedCapture(path, count, f"a packet header of 16 bytes has only {len(raw)}")
                return
            seconds, frac, caplen, _ = record.unpack(raw)
            data = handle.read(caplen)
            if len(data) < caplen:
                raise TruncatedCapture(path, count, f"a packet of {caplen} bytes has only {len(data)}")
            count += 1
            yield seconds + frac / scale, linktype, data


def _pcapng(handle, path: str) -> Iterator[Tuple[float, int, bytes]]:
    order = "<"
    interfaces = []  # (linktype, ticks per second)
    count = 0
    while True:
        head = handle.read(8)
        if len(head) < 8:
            if head:
                raise TruncatedCapture(path, count, f"a block header of 8 bytes has only {len(head)}")
            return
        btype = struct.unpack(order + "I", head[:4])[0]
        if head[:4] == b"\x0a\x0d\x0d\x0a":
            bom = handle.read(4)
            order = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            length = struct.unpack(order + "I", head[4:8])[0]
            handle.read(length - 12)
            interfaces = []
            continue
        length = struct.unpack(order + "I", head[4:8])[0]
        if length < 12:
            raise CaptureError(f"{path}: bad pcapng block length {length}")
        body = handle.read(length - 8)
        if len(body) < length - 8:
            raise TruncatedCapture(path, count, f"a block of {length} bytes has only {len(body) + 8}")
        if btype == 1:  # interface description
            linktype = struct.unpack(order + "H", body[:2])[0]
            interfaces.append([linktype, _tsresol(body[8:-4], order)])
        elif btype == 6 and len(body) >= 20:  # enhanced packet
            iface, high, low, caplen = struct.unpack(order + "IIII", body[:16])
            if iface < len(interfaces):
                linktype, resolution = interfaces[iface]
                count += 1
                yield ((high << 32) | low) / resolution, linktype, body[20:20 + caplen]
        elif btype == 3 and interfaces:  # simple packet
            count += 1
            yield 0.0, interfaces[0][0], body[4:-4]


def _tsresol(options: bytes, order: str) -> float:
    off = 0
    while off + 4 <= len(options):
        code, size = struct.unpack(order + "HH", options[off:off + 4])
        if code == 0:
            break
        if code == 9 and size >= 1:
            value = options[off + 4]
            return float(2 ** (value & 0x7F)) if value & 0x80 else float(10 ** value)
        off += 4 + ((size + 3) & ~3)
    return 1e6
