"""Frames captured from the Linux kernel (see make_fixtures.sh) and a full-stack parse helper."""

from __future__ import annotations

import re
from pathlib import Path

from pynetstack.wire import arp, ethernet, icmp, ipv4, tcp, udp

FIXTURES = Path(__file__).parent / "fixtures"


class Captured:
    """One captured frame and tcpdump's one-line rendering of it."""

    __slots__ = ("scenario", "index", "frame", "tcpdump")

    def __init__(self, scenario: str, index: int, frame: bytes, tcpdump: str):
        self.scenario = scenario
        self.index = index
        self.frame = frame
        self.tcpdump = tcpdump

    def __repr__(self) -> str:
        return f"{self.scenario}[{self.index}]"


def load(scenario: str) -> list:
    frames = []
    comment = ""
    for line in (FIXTURES / f"{scenario}.hex").read_text().splitlines():
        if line.startswith("# "):
            comment = line[2:]
        elif line.strip():
            frames.append(Captured(scenario, len(frames), bytes.fromhex(line), comment))
    return frames


def scenarios() -> list:
    return sorted(p.stem for p in FIXTURES.glob("*.hex"))


def all_frames() -> list:
    return [c for name in scenarios() for c in load(name)]


def tcpdump_fields(rendering: str) -> dict:
    """The numbers tcpdump printed, as an independent oracle for our parsers."""
    out = {}
    m = re.match(r"(\S+) > (\S+), ethertype \S+ \((0x[0-9a-f]+)\), length (\d+): (.*)", rendering)
    out["src_mac"], out["dst_mac"], out["ethertype"], out["frame_len"], rest = m.groups()
    out["rest"] = rest
    m = re.search(r"Flags \[([^\]]*)\]", rest)
    if m:
        out["tcp_flags"] = m.group(1)
    for key, pattern in (("seq", r"seq (\d+)"), ("ack", r"ack (\d+)"), ("win", r"win (\d+)"),
                         ("mss", r"mss (\d+)"), ("wscale", r"wscale (\d+)"), ("ts_val", r"TS val (\d+)"),
                         ("ts_ecr", r"ecr (\d+)"), ("icmp_id", r"id (\d+)"), ("mtu", r"mtu (\d+)"),
                         ("length", r"length (\d+)$")):
        m = re.search(pattern, rest)
        if m:
            out[key] = int(m.group(1))
    m = re.match(r"(\d+\.\d+\.\d+\.\d+)(?:\.(\d+))? > (\d+\.\d+\.\d+\.\d+)(?:\.(\d+))?:", rest)
    if m:
        out["src_ip"], sport, out["dst_ip"], dport = m.groups()
        if sport:
            out["sport"], out["dport"] = int(sport), int(dport)
    return out


def parse_all(frame, check: bool = True) -> list:
    """Parse every layer we have a codec for; raises only what the codecs raise."""
    eth = ethernet.Ethernet.parse(frame)
    layers = [eth]
    if eth.ethertype == ethernet.ETH_ARP:
        layers.append(arp.Arp.parse(eth.payload))
    elif eth.ethertype == ethernet.ETH_IPV4:
        ip = ipv4.IPv4.parse(eth.payload, check=check)
        layers.append(ip)
        if ip.is_fragment:
            return layers
        if ip.protocol == ipv4.PROTO_ICMP:
            layers.append(icmp.Icmp.parse(ip.payload, check=check))
        elif ip.protocol == ipv4.PROTO_UDP:
            layers.append(udp.Udp.parse(ip.payload, ip.src, ip.dst, check=check))
        elif ip.protocol == ipv4.PROTO_TCP:
            layers.append(tcp.Tcp.parse(ip.payload, ip.src, ip.dst, check=check))
    return layers
