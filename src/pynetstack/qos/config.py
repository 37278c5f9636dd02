"""The ``[qos]`` section: checked whole before anything is built, then built on a stack.

    [qos]
    interface = "wan0"            # or a list: each gets its own queue with these settings
    rate = "50mbit"               # what the link carries (the root class: rate = ceil)
    burst = "15k"                 # optional, tc's default otherwise (rate / 1000 + MTU)
    trust_dscp = true             # classify marked traffic by its DSCP (RFC 4594)
    auto = true                   # guess the class of unmarked traffic
    remark = false                # rewrite the DSCP to the class's on the way out
    ecn = true                    # CoDel marks ECN-capable packets instead of dropping them
    sla_window = "1s"

    [qos.class.voice]             # any of the five classes: fields override the defaults
    rate = "5mbit"                # guaranteed; ceil (default: the link rate) by borrowing
    police = "5mbit"              # drop what comes faster (voice's default)
    prio = 0                      # 0 goes first; burst, cburst, quantum, limit, target, interval

    [[qos.rule]]                  # first match wins; fields as classify.Rule
    class = "video"
    protocol = "udp"
    dport = "5004-5010"

    [qos.sla.voice]               # per-class targets (defaults: voice p99 10 ms, loss 1 %)
    delay_p99_ms = 10
    loss_percent = 1
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ..configcheck import check_keys
from .bucket import RateError, parse_rate, parse_size
from .classify import CLASSES, Classifier, ClassifyError, Rule
from .codel import INTERVAL, TARGET
from .control import _rate
from .qdisc import EgressQdisc
from .sla import TARGET_KEYS, SlaMonitor
from .tree import ClassSpec, build_tree, default_specs

_KEYS = {"interface", "rate", "burst", "trust_dscp", "auto", "remark", "ecn", "sla_window", "class", "rule", "sla",
         "sparse_bytes"}
_CLASS_KEYS = {"rate", "ceil", "burst", "cburst", "prio", "quantum", "police", "police_burst", "limit", "target",
               "interval", "flows"}


class QosConfigError(ValueError):
    """A [qos] problem, named by file and key."""


def _duration(value, where: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower()
        for unit, scale in (("ms", 1e-3), ("us", 1e-6), ("s", 1.0)):
            if text.endswith(unit):
                try:
                    number = float(text[:-len(unit)])
                except ValueError:
                    break
                if number > 0:
                    return number * scale
                break
    raise QosConfigError(f"{where} must be a duration like \"5ms\" or seconds as a number, not {value!r}")


def _int(table: dict, key: str, where: str, low: int, high: int) -> Optional[int]:
    if key not in table:
        return None
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise QosConfigError(f"{where}: {key} must be an integer within {low}..{high}, not {value!r}")
    return value


class QosConfig:
    """What [qos] asks for, checked: interfaces, the root rate, leaf specs, rules, targets."""

    def __init__(self):
        self.interfaces: List[str] = []
        self.rate = 0.0
        self.burst: Optional[int] = None
        self.specs: Dict[str, ClassSpec] = {}
        self.rules: List[Rule] = []
        self.targets: Dict[str, dict] = {}
        self.trust_dscp = True
        self.auto = True
        self.remark = False
        self.sla_window = 1.0
        self.sparse_bytes = 65536


def parse(table: Dict[str, Any], where: str = "[qos]", interfaces=None) -> QosConfig:
    """Check ``table``; ``interfaces`` (names), when given, are those the stack will have."""
    check_keys(table, _KEYS, where, QosConfigError)
    config = QosConfig()
    names = table.get("interface")
    if names is None:
        raise QosConfigError(f"{where}: 'interface' is required (the interface, or a list, to shape)")
    names = names if isinstance(names, list) else [names]
    if not names or not all(isinstance(n, str) and n for n in names):
        raise QosConfigError(f"{where}: interface must be a name or a list of names, not {table['interface']!r}")
    if interfaces is not None:
        for name in names:
            if name not in interfaces:
                raise QosConfigError(f"{where}: no interface {name!r} (interfaces: {', '.join(interfaces)})")
    config.interfaces = names
    if "rate" not in table:
        raise QosConfigError(f"{where}: 'rate' is required (the link's rate, like \"50mbit\")")
    try:
        config.rate = parse_rate(table["rate"], f"{where}: rate")
        if "burst" in table:
            config.burst = parse_size(table["burst"], f"{where}: burst")
    except RateError as exc:
        raise QosConfigError(str(exc)) from None
    for key in ("trust_dscp", "auto", "remark", "ecn"):
        if key in table and not isinstance(table[key], bool):
            raise QosConfigError(f"{where}: {key} must be true or false, not {table[key]!r}")
    config.trust_dscp = table.get("trust_dscp", True)
    config.auto = table.get("auto", True)
    config.remark = table.get("remark", False)
    if "sla_window" in table:
        config.sla_window = _duration(table["sla_window"], f"{where}: sla_window")
    sparse = _int(table, "sparse_bytes", where, 0, 1 << 30)
    if sparse is not None:
        config.sparse_bytes = sparse
    config.specs = _classes(table.get("class", {}), config.rate, f"{where}: class")
    for spec in config.specs.values():
        spec.ecn = table.get("ecn", True)
    config.rules = _rules(table.get("rule", []), f"{where}: rule")
    config.targets = _targets(table.get("sla", {}), f"{where}: sla")
    return config


def _classes(table, rate: float, where: str) -> Dict[str, ClassSpec]:
    if not isinstance(table, dict):
        raise QosConfigError(f"{where} must be tables like [qos.class.voice]")
    specs = default_specs(rate)
    for name, fields in table.items():
        here = f"{where}.{name}"
        if name not in CLASSES:
            raise QosConfigError(f"{here}: unknown class (classes: {', '.join(CLASSES)})")
        check_keys(fields, _CLASS_KEYS, here, QosConfigError)
        spec = specs[name]
        try:
            for key in ("rate", "ceil", "police"):
                if key in fields:
                    setattr(spec, key, parse_rate(fields[key], f"{here}: {key}"))
            for key in ("burst", "cburst", "quantum", "police_burst"):
                if key in fields:
                    setattr(spec, key, parse_size(fields[key], f"{here}: {key}"))
        except RateError as exc:
            raise QosConfigError(str(exc)) from None
        if "rate" in fields and "ceil" not in fields and spec.ceil is not None and spec.ceil < spec.rate:
            spec.ceil = spec.rate
        for key, low, high in (("prio", 0, 7), ("limit", 1, 100000), ("flows", 1, 65536)):
            value = _int(fields, key, here, low, high)
            if value is not None:
                setattr(spec, key, value)
        spec.target = _duration(fields["target"], f"{here}: target") if "target" in fields else TARGET
        spec.interval = _duration(fields["interval"], f"{here}: interval") if "interval" in fields else INTERVAL
        if spec.ceil is not None and spec.ceil > rate * 1.0000001:
            given = "ceil" if "ceil" in fields else "rate"  # a rate alone raised the ceil to itself
            raise QosConfigError(f"{here}: {given} {fields[given]} is more than the link's rate "
                                 f"({_rate(rate)})")
        if spec.ceil is not None and spec.ceil < spec.rate:
            raise QosConfigError(f"{here}: ceil is less than rate")
    total = sum(spec.rate for spec in specs.values())
    if total > rate * 1.0000001:
        raise QosConfigError(f"{where}: the classes' rates add up to {total * 8 / 1e6:.3f} mbit, more than the "
                             f"link's {rate * 8 / 1e6:.3f} mbit (lower some, as HTB needs)")
    return specs


def _rules(rules, where: str) -> List[Rule]:
    if not isinstance(rules, list):
        raise QosConfigError(f"{where} must be an array of tables ([[qos.rule]])")
    out = []
    for i, fields in enumerate(rules):
        here = f"{where} #{i + 1}"
        if not isinstance(fields, dict) or "class" not in fields:
            raise QosConfigError(f"{here}: a rule needs 'class' (one of {', '.join(CLASSES)})")
        klass = fields["class"]
        if klass not in CLASSES:
            raise QosConfigError(f"{here}: unknown class {klass!r} (classes: {', '.join(CLASSES)})")
        try:
            out.append(Rule(klass, here, **{k: v for k, v in fields.items() if k != "class"}))
        except ClassifyError as exc:
            raise QosConfigError(str(exc)) from None
    return out


def _targets(table, where: str) -> Dict[str, dict]:
    if not isinstance(table, dict):
        raise QosConfigError(f"{where} must be tables like [qos.sla.voice]")
    out = {}
    for name, fields in table.items():
        here = f"{where}.{name}"
        if name not in CLASSES:
            raise QosConfigError(f"{here}: unknown class (classes: {', '.join(CLASSES)})")
        if not isinstance(fields, dict):
            raise QosConfigError(f"{here} must be a table")
        for key, value in fields.items():
            if key not in TARGET_KEYS:
                raise QosConfigError(f"{here}: unknown target {key!r} (targets: {', '.join(TARGET_KEYS)})")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise QosConfigError(f"{here}: {key} must be a number, not {value!r}")
        out[name] = {key: float(value) for key, value in fields.items()}
    return out


def make_qdisc(config: QosConfig, now: float) -> EgressQdisc:
    tree = build_tree(config.rate, config.specs.values(), now, config.burst)
    classifier = Classifier(config.rules, trust_dscp=config.trust_dscp, auto=config.auto,
                            sparse_bytes=config.sparse_bytes)
    sla = SlaMonitor(list(tree.leaves), config.targets, config.sla_window, now=now)
    return EgressQdisc(tree, classifier, sla, remark_dscp=config.remark)


def build(stack, table: Dict[str, Any], where: str = "[qos]") -> List[EgressQdisc]:
    """Attach a qdisc to each interface [qos] names; register ``qos show`` and the counters."""
    config = parse(table, where, list(stack.interfaces))
    qdiscs = []
    with stack.lock:
        for name in config.interfaces:
            qdiscs.append(make_qdisc(config, stack.now()).attach(stack.interfaces[name]))
    install(stack)
    return qdiscs


def install(stack) -> None:
    """``qos show`` on the control socket, ``qos`` in the stack's counters, and the qdiscs'
    drops among the stack's drops by reason (idempotent)."""
    from . import control
    control.register()
    stack.counters.add("qos", lambda: control.gather(stack))
    for iface in stack.interfaces.values():
        if iface.qdisc is not None:
            iface.qdisc.count_drop = stack.host.drops.drop
