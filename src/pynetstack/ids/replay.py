"""Offline inspection of a capture, like ``suricata -r FILE -S RULES -l DIR``: eve.json and
fast.log in DIR, and the counters."""

from __future__ import annotations

import os
from typing import List, Optional

from ..link.pcap import read_pcap
from .capture import ip_datagram
from .engine import Detector
from .eve import EveWriter
from .rules import Ruleset


def replay(path: str, detector: Detector, writer: Optional[EveWriter] = None) -> dict:
    """Run every IPv4 packet of ``path`` through ``detector``; return the counters."""
    packets = skipped = 0
    last = 0.0
    for ts, linktype, frame in read_pcap(path):
        packets += 1
        datagram = ip_datagram(linktype, frame)
        if datagram is None:
            skipped += 1
            continue
        last = ts
        alerts = detector.inspect_bytes(datagram, ts)
        if alerts and writer is not None:
            writer.write(alerts)
    tail = detector.poll(last + 1e9)  # end of capture: detectors report what is pending
    if tail and writer is not None:
        writer.write(tail)
    stats = detector.stats()
    stats.update({"capture_packets": packets, "not_ipv4": skipped})
    return stats


def run(pcap: str, ruleset: Ruleset, log_dir: str = ".", detectors=(), stream_depth: int = 1 << 16) -> dict:
    with open(pcap, "rb"):          # a missing or unreadable capture is named before any output is touched
        pass
    os.makedirs(log_dir, exist_ok=True)
    detector = Detector(ruleset, stream_depth=stream_depth, detectors=detectors)
    with open(os.path.join(log_dir, "eve.json"), "w") as eve, open(os.path.join(log_dir, "fast.log"), "w") as fast:
        writer = EveWriter(eve, fast)
        stats = replay(pcap, detector, writer)
    stats["alerts_written"] = writer.written
    return stats


def alerts_of(pcap: str, ruleset: Ruleset, **kwargs) -> List:
    """Every alert of a capture, in order (for tests and comparisons)."""
    detector = Detector(ruleset, **kwargs)
    out: List = []
    last = 0.0
    for ts, linktype, frame in read_pcap(pcap):
        datagram = ip_datagram(linktype, frame)
        if datagram is not None:
            last = ts
            out.extend(detector.inspect_bytes(datagram, ts))
    out.extend(detector.poll(last + 1e9))
    return out
