"""Offline inspection of a capture, like ``suricata -r FILE -S RULES -l DIR``: eve.json and
fast.log in DIR, and the counters.

As Suricata: the log directory must exist (it is not created: a mistyped -l fails at once
rather than leaving the alerts somewhere unexpected), eve.json and fast.log are appended to
(outputs' ``append: yes`` default: one directory can collect several runs), and a capture that
ends inside a packet is reported, naming the file and how many packets were read before the
damage; the alerts of those packets are still written."""

from __future__ import annotations

import itertools
import os
from typing import List, Optional

from ..link.pcap import TruncatedCapture, read_pcap
from .capture import ip_datagram
from .engine import Detector
from .eve import EveWriter
from .rules import Ruleset


class LogDirError(ValueError):
    """The log directory given with -l does not exist or cannot be written."""


def check_log_dir(path: str) -> None:
    """Refuse a log directory that is missing, not a directory or not writable."""
    if not os.path.exists(path):
        raise LogDirError(f'the log directory "{path}" given with -l does not exist (create it first)')
    if not os.path.isdir(path):
        raise LogDirError(f'the log directory "{path}" given with -l is not a directory')
    if not os.access(path, os.W_OK | os.X_OK):
        raise LogDirError(f'the log directory "{path}" given with -l is not writable')


def replay(path: str, detector: Detector, writer: Optional[EveWriter] = None, records=None) -> dict:
    """Run every IPv4 packet of ``path`` through ``detector``; return the counters.
    ``records``: the capture's records when the caller has started reading them. A truncated
    capture ends the inspection there: ``capture_error`` in the counters says where."""
    packets = skipped = 0
    last = 0.0
    error = None
    try:
        for ts, linktype, frame in (records if records is not None else read_pcap(path)):
            packets += 1
            datagram = ip_datagram(linktype, frame)
            if datagram is None:
                skipped += 1
                continue
            last = ts
            alerts = detector.inspect_bytes(datagram, ts)
            if alerts and writer is not None:
                writer.write(alerts)
    except TruncatedCapture as exc:
        error = str(exc)
    tail = detector.poll(last + 1e9)  # end of capture: detectors report what is pending
    if tail and writer is not None:
        writer.write(tail)
    stats = detector.stats()
    stats.update({"capture_packets": packets, "not_ipv4": skipped})
    if error is not None:
        stats["capture_error"] = error
    return stats


def run(pcap: str, ruleset: Ruleset, log_dir: str = ".", detectors=(), stream_depth: int = 1 << 16) -> dict:
    check_log_dir(log_dir)
    records = read_pcap(pcap)
    try:  # a missing, unreadable or foreign file is named before any output is touched
        first = list(itertools.islice(records, 1))
    except TruncatedCapture:
        first = []
        records = read_pcap(pcap)  # damaged at its first packet: replay reports it
    else:
        records = itertools.chain(first, records)
    detector = Detector(ruleset, stream_depth=stream_depth, detectors=detectors)
    with open(os.path.join(log_dir, "eve.json"), "a") as eve, open(os.path.join(log_dir, "fast.log"), "a") as fast:
        writer = EveWriter(eve, fast)
        stats = replay(pcap, detector, writer, records)
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
