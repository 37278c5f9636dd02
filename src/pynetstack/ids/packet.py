"""The fields rules test, read once per packet from a parsed IPv4 datagram."""

from __future__ import annotations

import struct
from typing import Optional

from ..wire.dns import read_name

_TCP = struct.Struct("!HHIIBB H")
_UDP = struct.Struct("!HH")
_ICMP_QUERY_TYPES = (0, 8, 13, 14, 15, 16, 17, 18)


class Packet:
    __slots__ = ("ts", "src", "dst", "proto", "sport", "dport", "ttl", "tos", "ipid", "flags", "seq", "ack",
                 "window", "payload", "icmp_type", "icmp_code", "icmp_id", "icmp_seq", "tcp_hlen", "length",
                 "dns_query", "dns_rcode", "dns_qr", "ip")

    @property
    def dsize(self) -> int:
        return len(self.payload)


def decode(ip, ts: float) -> Optional[Packet]:
    """A Packet from an IPv4 object (wire.ipv4.IPv4), or None when its L4 header is cut short."""
    p = Packet()
    p.ip = ip
    p.ts = ts
    p.src = ip.src
    p.dst = ip.dst
    p.proto = proto = ip.protocol
    p.ttl = ip.ttl
    p.tos = ip.tos
    p.ipid = ip.ident
    p.length = ip.header_length + len(ip.payload)
    p.sport = p.dport = p.flags = p.seq = p.ack = p.window = p.tcp_hlen = 0
    p.icmp_type = p.icmp_code = p.icmp_id = p.icmp_seq = -1
    p.dns_query = None
    p.dns_rcode = p.dns_qr = -1
    data = ip.payload
    if ip.frag_offset:  # a later fragment: no L4 header (the stack reassembles before the hooks)
        p.payload = bytes(data)
        return p
    if proto == 6:
        if len(data) < 20:
            return None
        p.sport, p.dport, p.seq, p.ack, off, p.flags, p.window = _TCP.unpack_from(data)
        hlen = p.tcp_hlen = (off >> 4) * 4
        if hlen < 20 or hlen > len(data):
            return None
        p.payload = bytes(data[hlen:])
    elif proto == 17:
        if len(data) < 8:
            return None
        p.sport, p.dport = _UDP.unpack_from(data)
        p.payload = bytes(data[8:])
        if p.sport == 53 or p.dport == 53:
            _read_dns(p)
    elif proto == 1:
        if len(data) < 4:
            return None
        p.icmp_type, p.icmp_code = data[0], data[1]
        if p.icmp_type in _ICMP_QUERY_TYPES and len(data) >= 8:
            p.icmp_id = (data[4] << 8) | data[5]
            p.icmp_seq = (data[6] << 8) | data[7]
        p.payload = bytes(data[8:])
    else:
        p.payload = bytes(data)
    return p


def _read_dns(p: Packet) -> None:
    """The first question's name (dotted, no trailing dot), the QR bit and the RCODE."""
    buf = p.payload
    if len(buf) < 12:
        return
    qdcount = (buf[4] << 8) | buf[5]
    p.dns_qr = buf[2] >> 7
    p.dns_rcode = buf[3] & 0x0F
    if not qdcount:
        return
    try:
        name, _ = read_name(buf, 12)
    except Exception:  # noqa: BLE001 - a malformed name: no query buffer for this packet
        return
    name = str(name).rstrip(".")
    p.dns_query = name.encode("latin-1", "replace")


def header_buffer(p: Packet, name: str) -> Optional[bytes]:
    """The raw header a sticky buffer names (ipv4.hdr, tcp.hdr, udp.hdr, icmpv4.hdr), or None."""
    ip = p.ip
    if name == "ipv4.hdr":
        return bytes(ip.build_header(len(ip.payload)))
    if name == "tcp.hdr" and p.proto == 6:
        return bytes(ip.payload[:p.tcp_hlen])
    if name == "udp.hdr" and p.proto == 17:
        return bytes(ip.payload[:8])
    if name == "icmpv4.hdr" and p.proto == 1:
        return bytes(ip.payload[:8])
    return None


def tcp_fast_open(p: Packet) -> bool:
    """The TCP header carries the Fast Open option (kind 34, RFC 7413; or the experimental
    kind 254 with magic 0xF989 that came before it)."""
    opts = p.ip.payload[20:p.tcp_hlen]
    i, n = 0, len(opts)
    while i < n:
        kind = opts[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= n or opts[i + 1] < 2:
            break
        size = opts[i + 1]
        if kind == 34 or kind == 254 and size >= 4 and opts[i + 2] == 0xF9 and opts[i + 3] == 0x89:
            return True
        i += size
    return False


def gre_inner(payload) -> Optional[bytes]:
    """The IPv4 datagram a GRE packet (RFC 2784/2890) carries: IPv4 directly (0x0800), or in an
    Ethernet frame (transparent bridging 0x6558, or ERSPAN type II 0x88BE); else None. Suricata
    decodes such tunnels and inspects the inner packet."""
    data = bytes(payload)
    if len(data) < 4 or data[1] & 0x07:  # version 0 only (1 is PPTP's enhanced GRE)
        return None
    flags, proto = data[0], (data[2] << 8) | data[3]
    off = 4 + 4 * (bool(flags & 0x80) + bool(flags & 0x20) + bool(flags & 0x10))  # checksum, key, sequence
    if proto == 0x0800:
        return data[off:] or None
    if proto == 0x88BE:  # ERSPAN II: an 8-byte header, then the mirrored frame
        off += 8
    elif proto != 0x6558:
        return None
    off += 12  # the Ethernet addresses, then the type (after any VLAN tags)
    while off + 2 <= len(data) and data[off:off + 2] in (b"\x81\x00", b"\x88\xa8", b"\x91\x00"):
        off += 4
    if data[off:off + 2] != b"\x08\x00":
        return None
    return data[off + 2:] or None
