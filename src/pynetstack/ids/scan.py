"""Port-scan detection that names the scan.

A probe is a packet that opens nothing: a SYN (a raw SYN scan's carries at most an MSS option;
the kernel's connect() sends the full option set, so a long SYN header means a connect scan),
FIN, Xmas (FIN+PSH+URG), NULL (no flag), a lone ACK on no known connection, or a UDP datagram
opening a flow. Per (scanner, target) the distinct ports probed are counted in a short window
(fast scans) and a long one (slow scans spread over minutes). Many connections to one port (a
busy client, a load test) are one port: no scan.

Bounded: ``max_pairs`` (scanner, target) pairs, each holding at most ``max_ports`` ports."""

from __future__ import annotations

from typing import Dict, List, Optional

from .engine import Alert
from .findings import scan_rule

SYN, FIN, RST, PSH, ACK, URG = 0x02, 0x01, 0x04, 0x08, 0x10, 0x20


def probe_kind(p, flow) -> Optional[str]:
    if p.proto == 6:
        flags = p.flags & 0x3F
        if flags == SYN:
            return "TCP connect" if p.tcp_hlen >= 32 else "TCP SYN"
        if flags == FIN:
            return "TCP FIN"
        if flags == FIN | PSH | URG:
            return "TCP Xmas"
        if flags == 0:
            return "TCP NULL"
        if flags == ACK and not p.payload and flow.tcp_state == 0 and flow.pkts == [1, 0]:
            return "TCP ACK"
        return None
    if p.proto == 17 and flow.pkts == [1, 0] and p.dns_qr != 1:
        return "UDP"
    return None


class _Pair:
    __slots__ = ("ports", "alerted")

    def __init__(self):
        self.ports: Dict[tuple, float] = {}  # (port, kind) -> last seen
        self.alerted: Dict[tuple, float] = {}  # ("fast"/"slow", kind) -> when


class ScanDetector:
    name = "scan"

    def __init__(self, ports: int = 15, window: float = 10.0, slow_ports: int = 25, slow_window: float = 900.0,
                 max_pairs: int = 8192, max_ports: int = 256):
        self.ports = ports
        self.window = window
        self.slow_ports = slow_ports
        self.slow_window = slow_window
        self.max_pairs = max_pairs
        self.max_ports = max_ports
        self.pairs: Dict[tuple, _Pair] = {}
        self.detected = 0
        self.evicted = 0

    def observe(self, p, flow, direction: int, now: float) -> List[Alert]:
        kind = probe_kind(p, flow)
        if kind is None:
            return []
        key = (p.src, p.dst, p.proto)
        pair = self.pairs.get(key)
        if pair is None:
            if len(self.pairs) >= self.max_pairs:
                del self.pairs[next(iter(self.pairs))]
                self.evicted += 1
            pair = self.pairs[key] = _Pair()
        probe = (p.dport, kind)  # one scan after another of a new kind is a new scan
        new = probe not in pair.ports
        if new and len(pair.ports) >= self.max_ports:
            self._forget(pair, now)
            if len(pair.ports) >= self.max_ports:  # still full: the oldest probe goes
                del pair.ports[next(iter(pair.ports))]
        pair.ports[probe] = now
        if not new:
            return []
        recent = sum(1 for (_, k), t in pair.ports.items() if k == kind and now - t <= self.window)
        fast, slow = ("fast", kind), ("slow", kind)
        found = None
        if recent >= self.ports and now - pair.alerted.get(fast, -1e18) > self.slow_window:
            pair.alerted[fast] = now
            found = (recent, False, self.window)
        else:
            if len(pair.ports) > self.slow_ports:
                self._forget(pair, now)
            count = sum(1 for (_, k) in pair.ports if k == kind)
            if count >= self.slow_ports and now - pair.alerted.get(slow, -1e18) > self.slow_window \
                    and now - pair.alerted.get(fast, -1e18) > self.slow_window:
                pair.alerted[slow] = now
                found = (count, True, self.slow_window)
        if found is None:
            return []
        ports, is_slow, span = found
        self.detected += 1
        extra = {"detector": "scan", "scan_type": kind, "ports": ports, "window_seconds": span}
        return [Alert(scan_rule(kind, is_slow), p, flow, direction, "allowed", extra)]

    def _forget(self, pair: _Pair, now: float) -> None:
        cutoff = now - self.slow_window
        for probe in [probe for probe, t in pair.ports.items() if t < cutoff]:
            del pair.ports[probe]

    def poll(self, now: float) -> List[Alert]:
        cutoff = now - self.slow_window
        for key in [k for k, pair in self.pairs.items() if all(t < cutoff for t in pair.ports.values())][:4096]:
            del self.pairs[key]
        return []

    def stats(self) -> dict:
        return {"scans_detected": self.detected, "scan_pairs": len(self.pairs), "scan_pairs_evicted": self.evicted}
