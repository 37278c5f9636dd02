"""Fragmentation of outgoing datagrams by MTU (RFC 791 section 3.2)."""

from __future__ import annotations

from typing import List

from ..wire.ipv4 import IPv4, copied_options


def fragment(ip: IPv4, payload: bytes, mtu: int) -> List[bytes]:
    """Split ``ip`` carrying ``payload`` into datagrams of at most ``mtu`` bytes.

    The first fragment keeps every option, later ones only those with the copy flag.
    Every fragment but the last carries a multiple of 8 data bytes.
    """
    first_header = 20 + ((len(ip.options) + 3) & ~3)
    later_options = copied_options(ip.options)
    later_header = 20 + len(later_options)
    fragments = []
    offset = 0
    base_offset = ip.frag_offset  # re-fragmenting a fragment keeps its place in the original
    last_mf = ip.mf
    while offset < len(payload):
        header_len = first_header if offset == 0 else later_header
        room = (mtu - header_len) & ~7
        if room <= 0:
            raise ValueError(f"MTU {mtu} too small to fragment")
        chunk = payload[offset:offset + room]
        more = offset + len(chunk) < len(payload)
        piece = IPv4(ip.src, ip.dst, ip.protocol, chunk, ttl=ip.ttl, tos=ip.tos, ident=ip.ident,
                     df=False, mf=more or last_mf, frag_offset=base_offset + offset,
                     options=ip.options if offset == 0 else later_options)
        fragments.append(piece.build_header(len(chunk)) + chunk)
        offset += len(chunk)
    return fragments
