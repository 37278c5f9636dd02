"""Software segmentation of forwarded TCP (Linux's GSO on the forwarding path).

A datagram larger than the interface it came in on cannot have crossed that wire: the kernel
behind a TAP or a veth coalesced it (GRO) or let a sender hand it over unsegmented (TSO/GSO).
Linux forwards such a packet whole and cuts it on output when its segments fit the egress MTU;
so does this module: one segment per MSS-sized piece, each with its own sequence number,
identification and checksum, FIN and PSH on the last piece only, CWR on the first only
(RFC 3168 6.1.2), every other header field and option as the original carried them.
"""

from __future__ import annotations

from typing import List

from ..wire.checksum import transport_checksum
from ..wire.ipv4 import IPv4

_FIN, _PSH, _CWR = 0x01, 0x08, 0x80


def segment_tcp(ip: IPv4, mtu: int) -> List[IPv4]:
    """``ip`` (a TCP datagram) cut into datagrams of at most ``mtu`` bytes; [] if it cannot be."""
    segment = bytes(ip.payload)
    if len(segment) < 20:
        return []
    header_length = (segment[12] >> 4) * 4
    mss = mtu - ip.header_length - header_length
    if header_length < 20 or len(segment) < header_length or mss < 8:
        return []
    header, data = segment[:header_length], segment[header_length:]
    seq = int.from_bytes(segment[4:8], "big")
    flags = segment[13]
    pieces = []
    for index, offset in enumerate(range(0, len(data), mss)):
        chunk = data[offset:offset + mss]
        last = offset + mss >= len(data)
        piece_flags = flags if last else flags & ~(_FIN | _PSH)
        if offset:
            piece_flags &= ~_CWR
        head = bytearray(header)
        head[4:8] = ((seq + offset) & 0xFFFFFFFF).to_bytes(4, "big")
        head[13] = piece_flags
        head[16:18] = b"\0\0"
        body = bytes(head) + chunk
        csum = transport_checksum(ip.src, ip.dst, 6, body)
        body = body[:16] + csum.to_bytes(2, "big") + body[18:]
        pieces.append(IPv4(ip.src, ip.dst, 6, body, ttl=ip.ttl, tos=ip.tos, ident=(ip.ident + index) & 0xFFFF,
                           df=ip.df, options=ip.options))
    return pieces
