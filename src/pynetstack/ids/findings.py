"""Signatures for what the detectors (scan, flood, baseline) find, so that their alerts are EVE
alert records like any rule's: gid 1, sids in 9100000-9100999 (outside the ranges ET and
Suricata's own decoder events use)."""

from __future__ import annotations

from typing import Dict

from .rules import Rule

_CACHE: Dict[int, Rule] = {}


def signature(sid: int, msg: str, classtype: str, category: str, severity: int) -> Rule:
    rule = _CACHE.get(sid)
    if rule is None:
        rule = _CACHE[sid] = Rule()
        rule.sid, rule.rev, rule.msg = sid, 1, msg
        rule.classtype, rule.category, rule.severity = classtype, category, severity
    return rule


SCAN_SIDS = {"TCP SYN": 9100001, "TCP connect": 9100002, "TCP FIN": 9100003, "TCP Xmas": 9100004,
             "TCP NULL": 9100005, "TCP ACK": 9100006, "UDP": 9100007}
SLOW_SCAN_OFFSET = 10  # a slow scan of a kind: its sid + 10
SYN_FLOOD_SID = 9100100
BASELINE_SIDS = {"packets": 9100201, "bytes": 9100202, "new_flows": 9100203, "syn_synack_ratio": 9100204,
                 "icmp_errors": 9100205, "dns_nxdomain": 9100206}


def scan_rule(kind: str, slow: bool) -> Rule:
    sid = SCAN_SIDS[kind] + (SLOW_SCAN_OFFSET if slow else 0)
    return signature(sid, f"PYNETSTACK SCAN {'slow ' if slow else ''}{kind} scan", "attempted-recon",
                     "Detection of a Network Scan", 2)


def flood_rule() -> Rule:
    return signature(SYN_FLOOD_SID, "PYNETSTACK DOS TCP SYN flood", "attempted-dos", "Attempted Denial of Service", 2)


def baseline_rule(metric: str) -> Rule:
    return signature(BASELINE_SIDS[metric], f"PYNETSTACK ANOMALY {metric} deviates from its baseline",
                     "bad-unknown", "Potentially Bad Traffic", 2)
