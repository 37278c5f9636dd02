"""Intrusion detection: Suricata-compatible signatures, stream inspection, EVE JSON output,
anomaly baselines, and port-scan and SYN-flood detection.

    from pynetstack.ids import load_rules, Detector
    ruleset = load_rules(open("local.rules").read(), source="local.rules")
    detector = Detector(ruleset)
    for event in detector.inspect_frame(frame, now):   # or IdsFunction on a stack
        ...
"""

from __future__ import annotations

from .engine import Detector
from .rules import RuleError, Ruleset, load_rules, load_rule_files

__all__ = ["Detector", "RuleError", "Ruleset", "load_rules", "load_rule_files"]
