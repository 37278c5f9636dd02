"""Crafted IPv4 datagrams for the IDS tests (checksums zero: the engine does not check them)."""

from __future__ import annotations

import struct

from pynetstack.wire.addr import ip_to_int

SYN, FIN, RST, PSH, ACK, URG = 0x02, 0x01, 0x04, 0x08, 0x10, 0x20


def ip(src: str, dst: str, proto: int, payload: bytes, ttl: int = 64, ident: int = 1) -> bytes:
    return struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(payload), ident, 0, ttl, proto, 0,
                       ip_to_int(src), ip_to_int(dst)) + payload


def tcp(src, sport, dst, dport, flags=ACK, seq=0, ack=0, data=b"", options=b"", window=65535, ttl=64) -> bytes:
    options += b"\x00" * (-len(options) % 4)
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, (5 + len(options) // 4) << 4, flags, window, 0, 0)
    return ip(src, dst, 6, hdr + options + data, ttl)


def udp(src, sport, dst, dport, data=b"") -> bytes:
    return ip(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data)


def icmp(src, dst, itype=8, code=0, ident=1, seq=1, data=b"") -> bytes:
    return ip(src, dst, 1, struct.pack("!BBHHH", itype, code, 0, ident, seq) + data)


def dns_query(name: str, ident: int = 1) -> bytes:
    out = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00\x00\x01\x00\x01"


def handshake(detector, client=("10.0.0.1", 40000), server=("10.0.0.2", 80), now=0.0, isn=(1000, 5000)):
    """Run a three-way handshake through ``detector``; return the next (client seq, server seq)."""
    (c, cp), (s, sp) = client, server
    detector.inspect_bytes(tcp(c, cp, s, sp, SYN, isn[0]), now)
    detector.inspect_bytes(tcp(s, sp, c, cp, SYN | ACK, isn[1], isn[0] + 1), now)
    detector.inspect_bytes(tcp(c, cp, s, sp, ACK, isn[0] + 1, isn[1] + 1), now)
    return isn[0] + 1, isn[1] + 1
