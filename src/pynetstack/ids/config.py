"""The [ids] section of the stack's TOML, checked and built here.

    [ids]
    rules = ["local.rules", "emerging.rules"]   # Suricata rule files (relative to the config file)
    inline = false          # true: drop/reject rules drop packets (IPS); false: alert only
    eve = "eve.json"        # EVE JSON alerts (appended); fast = "fast.log" too if given
    stream_depth = 65536    # stream bytes inspected per flow direction
    max_flows = 65536
    home_net = "[10.0.0.0/8,192.168.0.0/16,172.16.0.0/12]"
    scan = true             # port-scan detection; syn_flood = true; baseline = false
    scan_ports = 15         # distinct ports in scan_window seconds make a scan
    scan_window = 10.0
    syn_flood_rate = 200.0  # SYN/s to one target, with few completed handshakes
    baseline_warmup = 30    # intervals before a baseline may alert
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict

from ..configcheck import check_keys

_KEYS = {"rules": list, "inline": bool, "eve": str, "fast": str, "stream_depth": int, "max_flows": int,
         "home_net": str, "external_net": str, "scan": bool, "syn_flood": bool, "baseline": bool,
         "scan_ports": int, "scan_window": float, "syn_flood_rate": float, "baseline_warmup": int}


class IdsConfigError(ValueError):
    """A bad [ids] section; the message names the key."""


def validate(section: Any, source: str = "config") -> Dict[str, Any]:
    where = f"{source}: [ids]"
    check_keys(section, _KEYS, where, IdsConfigError)
    for key, value in section.items():
        kind = _KEYS[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            raise IdsConfigError(f"{where}: {key} must be {kind.__name__}, not {value!r}")
        if kind in (int, float) and value <= 0:
            raise IdsConfigError(f"{where}: {key} must be positive, not {value!r}")
    for path in section.get("rules", []):
        if not isinstance(path, str):
            raise IdsConfigError(f"{where}: rules must be a list of file names, not {path!r}")
    return section


def build(stack, section: Dict[str, Any], base_dir: str = ".", source: str = "config"):
    """Load the rules, make the detector and register it on ``stack``; return the IdsFunction."""
    from .addresses import DEFAULT_ADDRESS_VARS, DEFAULT_PORT_VARS
    from .baseline import BaselineDetector
    from .engine import Detector
    from .eve import EveWriter
    from .flood import SynFloodDetector
    from .function import IdsFunction
    from .rules import load_rule_files
    from .scan import ScanDetector

    validate(section, source)
    avars = dict(DEFAULT_ADDRESS_VARS)
    if "home_net" in section:
        avars["HOME_NET"] = section["home_net"]
    if "external_net" in section:
        avars["EXTERNAL_NET"] = section["external_net"]
    paths = [os.path.join(base_dir, p) for p in section.get("rules", [])]
    ruleset = load_rule_files(paths, variables=(avars, dict(DEFAULT_PORT_VARS)))
    if ruleset.failed:  # a configuration is checked before anything runs: a broken rule stops it
        raise IdsConfigError(f"{source}: [ids] rules: {ruleset.failed[0]}")
    detectors = []
    if section.get("scan", True):
        detectors.append(ScanDetector(ports=section.get("scan_ports", 15), window=section.get("scan_window", 10.0)))
    if section.get("syn_flood", True):
        detectors.append(SynFloodDetector(syn_rate=section.get("syn_flood_rate", 200.0)))
    if section.get("baseline", False):
        detectors.append(BaselineDetector(warmup=section.get("baseline_warmup", 30)))
    detector = Detector(ruleset, inline=section.get("inline", False), stream_depth=section.get("stream_depth", 65536),
                        max_flows=section.get("max_flows", 65536), detectors=detectors)
    on_alerts = None
    if section.get("eve"):
        # the engine's clock is monotonic: EVE wants wall time
        eve = open(os.path.join(base_dir, section["eve"]), "a", buffering=1)
        fast = open(os.path.join(base_dir, section["fast"]), "a", buffering=1) if section.get("fast") else None
        writer = EveWriter(eve, fast, clock_offset=time.time() - time.monotonic())
        on_alerts = writer.write
    function = IdsFunction(detector, on_alerts)
    stack.register(function)
    return function
