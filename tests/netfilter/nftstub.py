"""A small stand-in for the stack's PacketContext: just the attributes the nft evaluator reads."""

from __future__ import annotations

import os

from pynetstack.netfilter.nft.datatypes import parse_ipv4

DATA = os.path.join(os.path.dirname(__file__), "data")
EXAMPLES = sorted(f for f in os.listdir(DATA) if f.endswith(".nft"))


class IpStub:
    def __init__(self, src, dst, protocol, ttl=64, tos=0, total_length=60):
        self.src = parse_ipv4(src) if isinstance(src, str) else src
        self.dst = parse_ipv4(dst) if isinstance(dst, str) else dst
        self.protocol = protocol
        self.ttl = ttl
        self.tos = tos
        self.total_length = total_length


class Pkt:
    def __init__(self, src="10.0.0.1", dst="10.0.0.2", proto=6, sport=40000, dport=80, tcp_flags=0x02,
                 icmp_type=-1, icmp_code=-1, iifname="", oifname="", mark=0, ct_state="new",
                 ct_direction="original", ct_status=(), pkttype="host", ttl=64, tos=0, length=60,
                 trace=None, now=0.0):
        self.ip = IpStub(src, dst, proto, ttl, tos, length)
        self.proto = proto
        self.sport = sport if proto in (6, 17) else 0
        self.dport = dport if proto in (6, 17) else 0
        self.tcp_flags = tcp_flags if proto == 6 else 0
        self.icmp_type = icmp_type if proto == 1 else -1
        self.icmp_code = icmp_code if proto == 1 else -1
        self.iifname = iifname
        self.oifname = oifname
        self.mark = mark
        self.ct_state = ct_state
        self.ct_direction = ct_direction
        self.ct_status = set(ct_status)
        self.pkttype = pkttype
        self.length = length
        self.trace = trace
        self.now = now


def icmp(type_, code=0, **kw) -> Pkt:
    return Pkt(proto=1, icmp_type=type_, icmp_code=code, **kw)
