"""The stack's one registry, read once and named as Prometheus users know it.

``read(stack)`` takes the stack's lock for as long as ``counters.gather()`` and a count of TCP
connections by state take (no per-packet cost: nothing here runs unless someone asks), then
``families(...)`` turns the numbers into metric families without the lock:

* interfaces as node_exporter's netdev collector names them (``receive_bytes_total`` ...) under
  ``pynetstack_network_*{device=...}``;
* the IP/ICMP MIB as ``nstat`` names it, in snake case (``IpInReceives`` ->
  ``pynetstack_nstat_ip_in_receives_total``; promtool rejects camelCase), the nstat name in the help;
* drops by reason (``pynetstack_drops_total{reason=...}``), TCP connections by state, the
  transports' counters, the flow table, the nft rules' ``counter`` statements, and every network
  function's ``stats()`` (conntrack, NAT, nft, and whatever registers later) as
  ``pynetstack_<function>_<stat>``; any other source added to the registry (``counters.add``),
  such as a DNS server's, the same way.

``flatten(families)`` gives ``{series_key: value}`` with keys such as
``pynetstack_drops_total{reason="ttl-exceeded"}``: what the store, alerts and dashboard use.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Dict, Iterable, List, Optional, Tuple

PREFIX = "pynetstack"
TCP_STATES = ("LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT",
              "CLOSING", "LAST-ACK", "TIME-WAIT", "CLOSED")
_NOT_NAME = re.compile(r"[^a-zA-Z0-9_]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# gather() sources with their own naming below; any other source is flattened generically
_KNOWN = {"nstat", "drops", "netdev", "host", "functions", "flowtable", "tcp", "qos", "dns_server"}
# flow table stats that are levels, not counts
_FLOWTABLE_GAUGES = {"flows"}
_RESERVED = ("_count", "_sum", "_bucket", "_created", "_info")
_COUNTS = re.compile(r"\bcounter packets \d+ bytes \d+")


class Family:
    """One metric family: ``kind`` is "counter" (name without ``_total``) or "gauge"."""

    __slots__ = ("name", "kind", "help", "labels", "samples")

    def __init__(self, name: str, kind: str, help: str, labels: Tuple[str, ...] = ()):
        self.name = name
        self.kind = kind
        self.help = help
        self.labels = labels
        self.samples: List[Tuple[Tuple[str, ...], float]] = []

    def add(self, value, *label_values: str) -> None:
        self.samples.append((tuple(str(v) for v in label_values), float(value)))

    @property
    def sample_name(self) -> str:
        return self.name + "_total" if self.kind == "counter" else self.name

    def __repr__(self) -> str:
        return f"<Family {self.sample_name} {self.kind} {len(self.samples)} samples>"


def snake(text: str) -> str:
    """A metric-name fragment: ``IpInReceives`` -> ``ip_in_receives``, ``nat-failed`` -> ``nat_failed``."""
    return _NOT_NAME.sub("_", _CAMEL.sub("_", str(text))).strip("_").lower()


def read(stack) -> dict:
    """Everything the families are made of, read under the stack's lock in one go."""
    with stack.lock:
        data = stack.counters.gather()
        now = stack.now()
        tcp = getattr(stack, "tcp", None)
        states: Counter = Counter()
        srtt = []
        if tcp is not None:
            for conn in tcp.connections.values():
                states[conn.state] += 1
                if conn.srtt is not None:
                    srtt.append(conn.srtt)
            states["LISTEN"] += len(tcp.listeners)
        return {"gather": data, "tcp_states": states, "srtt": srtt, "uptime": now - stack.started_at,
                "rules": rule_counters(stack)}


def rule_counters(stack) -> list:
    """(family, table, chain, handle, rule text, packets, bytes) of every nft rule with a counter."""
    function = getattr(getattr(stack, "router", None), "ruleset_function", None)
    if function is None:
        return []
    out = []
    for chain in function.ruleset.chains():
        for rule in chain.rules:
            counter = rule.counter
            if counter is not None:  # the label is the rule without its counts: one series per rule
                text = _COUNTS.sub("counter", rule.format())
                out.append((chain.table.family, chain.table.name, chain.name, str(rule.handle), text,
                            counter.packets, counter.bytes))
    return out


def families(snapshot: dict) -> List[Family]:
    data = snapshot.get("gather", {})
    out: List[Family] = []
    up = Family(f"{PREFIX}_uptime_seconds", "gauge", "Seconds since the stack was built")
    up.add(snapshot.get("uptime", 0.0))
    out.append(up)
    out.extend(_netdev(data.get("netdev", {})))
    for mib, value in sorted(data.get("nstat", {}).items()):
        family = Family(f"{PREFIX}_nstat_{snake(mib)}", "counter", f"nstat {mib}")
        family.add(value)
        out.append(family)
    drops = Family(f"{PREFIX}_drops", "counter", "Packets dropped, by reason (as Linux names skb drop reasons)",
                   ("reason",))
    for reason, value in sorted(data.get("drops", {}).items()):
        drops.add(value, reason)
    out.append(drops)
    out.extend(_plain_counters(data.get("host", {}), f"{PREFIX}_host", "IPv4 host counter"))
    out.extend(_plain_counters(data.get("tcp", {}), f"{PREFIX}_tcp", "TCP counter"))
    states = Family(f"{PREFIX}_tcp_connections", "gauge", "TCP connections by state (like ss -s)", ("state",))
    counted = snapshot.get("tcp_states", {})
    for state in TCP_STATES + tuple(sorted(set(counted) - set(TCP_STATES))):
        states.add(counted.get(state, 0), state)
    out.append(states)
    srtt = snapshot.get("srtt") or []
    for what, value in (("max", max(srtt) if srtt else 0.0), ("mean", sum(srtt) / len(srtt) if srtt else 0.0)):
        family = Family(f"{PREFIX}_tcp_srtt_{what}_seconds", "gauge", f"TCP smoothed RTT, {what} over connections")
        family.add(value)
        out.append(family)
    for key, value in sorted(data.get("flowtable", {}).items()):
        kind = "gauge" if key in _FLOWTABLE_GAUGES else "counter"
        family = Family(f"{PREFIX}_flowtable_{snake(key)}", kind, f"flow table {key}")
        family.add(value)
        out.append(family)
    rules = snapshot.get("rules") or []
    if rules:
        labels = ("family", "table", "chain", "handle", "rule")
        packets = Family(f"{PREFIX}_nft_rule_packets", "counter", "nft rule counter, packets", labels)
        octets = Family(f"{PREFIX}_nft_rule_bytes", "counter", "nft rule counter, bytes", labels)
        for *names, n_packets, n_bytes in rules:
            packets.add(n_packets, *names)
            octets.add(n_bytes, *names)
        out.extend((packets, octets))
    out.extend(_qos(data.get("qos") or {}))
    dns = data.get("dns_server")
    if dns:
        for what, label, help_text in (("answered", "how", "DNS queries answered, by how (authoritative, "
                                                               "recursive, memo, refused, ...)"),
                                       ("drops", "reason", "DNS queries dropped unanswered, by reason")):
            family = Family(f"{PREFIX}_dns_{'answers' if what == 'answered' else 'drops'}", "counter", help_text,
                            (label,))
            for key, value in sorted(dns.get(what, {}).items()):
                family.add(value, key)
            out.append(family)
    taken = {f.sample_name for f in out} | {f.name for f in out}
    for name, stats in sorted(data.get("functions", {}).items()):
        out.extend(_generic(stats, f"{PREFIX}_{snake(name)}", f"network function {name}", taken))
    for source in sorted(set(data) - _KNOWN):
        out.extend(_generic(data[source], f"{PREFIX}_{snake(source)}", f"counter source {source}", taken))
    return out


def _netdev(netdev: dict) -> Iterable[Family]:
    by_name: Dict[str, Family] = {}
    for device in sorted(netdev):
        for key, value in sorted(netdev[device].items()):
            base = snake(key)
            kind = "counter" if base.endswith("_total") else "gauge"
            name = f"{PREFIX}_network_{base[:-6] if kind == 'counter' else base}"
            family = by_name.get(name)
            if family is None:
                family = by_name[name] = Family(name, kind, f"Network device statistic {key} (node_exporter netdev)",
                                                ("device",))
            family.add(value, device)
    return by_name.values()


# QoS figures that only grow (the rest are levels); base units in names, as promtool wants them
_QOS_COUNTERS = {"sent_bytes", "sent_packets", "dropped", "overlimits", "lent", "borrowed", "ecn_marks",
                 "departures_timed", "departures_late_over_1ms", "packets"}
_QOS_UNITS = (("_ms", "_seconds", 1e-3), ("_us", "_seconds", 1e-6), ("_mbit", "_bytes_per_second", 1e6 / 8))


def _qos(qos: dict) -> Iterable[Family]:
    """The egress qdiscs, with the interface and the class as labels (not in the metric's name,
    so one query or alert covers every interface and class): ``pynetstack_qos_*{device}``,
    ``pynetstack_qos_class_*{device,class}``, ``pynetstack_qos_sla_*{device,class}``."""
    by_name: Dict[str, Family] = {}

    def add(stem: str, key: str, value, labels: Tuple[str, ...], values: Tuple[str, ...]) -> None:
        if not _is_number(value):
            return
        base = snake(key)
        for suffix, unit, scale in _QOS_UNITS:
            if base.endswith(suffix):
                base, value = base[:-len(suffix)] + unit, value * scale
        kind = "counter" if key in _QOS_COUNTERS else "gauge"
        name = f"{PREFIX}_qos_{stem}{base}"
        family = by_name.get(name)
        if family is None:
            family = by_name[name] = Family(name, kind, f"QoS {stem.replace('_', ' ')}{key}", labels)
        family.add(value, *values)

    for device, qdisc in sorted(qos.items()):
        if not isinstance(qdisc, dict):
            continue
        for key, value in sorted(qdisc.items()):
            add("", key, value, ("device",), (device,))
        for by, value in sorted((qdisc.get("classifier") or {}).items()):
            add("", "classified", value, ("device", "by"), (device, by))
        for klass, stats in sorted((qdisc.get("classes") or {}).items()):
            for key, value in sorted(stats.items()):
                add("class_", key, value, ("device", "class"), (device, klass))
        for klass, stats in sorted((qdisc.get("sla") or {}).items()):
            for key, value in sorted(stats.items()):
                add("sla_", key, value, ("device", "class"), (device, klass))
            for key, value in sorted((stats.get("targets") or {}).items()):
                add("sla_target_", key, value, ("device", "class"), (device, klass))
    return by_name.values()


def _plain_counters(counters: dict, prefix: str, what: str) -> Iterable[Family]:
    merged: Dict[str, Family] = {}
    for key, value in sorted(counters.items()):
        if not _is_number(value):
            continue
        name = f"{prefix}_{snake(key)}"
        if name.endswith("_total"):
            name = name[:-6]
        family = merged.get(name)
        if family is None:
            family = merged[name] = Family(name, "counter", f"{what} {key}")
            family.add(value)
        else:  # two spellings that snake to one name: add them up
            family.samples[0] = ((), family.samples[0][1] + float(value))
    return merged.values()


def _generic(stats, prefix: str, what: str, taken: set) -> List[Family]:
    """Numeric leaves of a nested dict: counters when named ``*_total``, else gauges (a value of
    unknown kind is never wrong as a gauge, and Prometheus' rate() still reads it)."""
    out = []
    for path, value in _leaves(stats, ()):
        name = prefix + "".join("_" + snake(p) for p in path)
        kind = "gauge"
        if name.endswith("_total"):  # a counter by its name (promtool: only counters end in _total)
            name, kind = name[:-6], "counter"
        elif name.endswith(_RESERVED):  # promtool: these suffixes belong to histograms and summaries
            name += "_value"
        if name in taken or name + "_total" in taken or not name[len(PREFIX) + 1:]:
            continue
        taken.add(name)
        family = Family(name, kind, f"{what} {'.'.join(str(p) for p in path)}".strip())
        family.add(value)
        out.append(family)
    return out


def _leaves(value, path: tuple):
    if isinstance(value, dict):
        for key in sorted(value, key=str):
            yield from _leaves(value[key], path + (key,))
    elif _is_number(value):
        yield path, value


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and value == value  # bool is an int; NaN is skipped


def series_key(name: str, labels: Tuple[str, ...] = (), values: Tuple[str, ...] = ()) -> str:
    if not labels:
        return name
    inner = ",".join(f'{label}="{_escape(value)}"' for label, value in zip(labels, values))
    return f"{name}{{{inner}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def flatten(fams: Iterable[Family]) -> Dict[str, float]:
    """``{series key: value}`` for every sample, keyed as Prometheus prints them."""
    out: Dict[str, float] = {}
    for family in fams:
        name = family.sample_name
        for values, value in family.samples:
            out[series_key(name, family.labels, values)] = value
    return out


_KEY = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_key(key: str) -> Tuple[str, Dict[str, str]]:
    """``name{a="b"}`` -> ("name", {"a": "b"}); raises ValueError on anything else."""
    match = _KEY.match(key.strip())
    if not match:
        raise ValueError(f"not a series name: {key!r}")
    labels: Dict[str, str] = {}
    inner: Optional[str] = match.group(2)
    pos = 0
    while inner and pos < len(inner):
        label = _LABEL.match(inner, pos)
        if not label or label.end() == pos:
            raise ValueError(f"bad label list in {key!r}")
        labels[label.group(1)] = label.group(2).replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        pos = label.end()
    return match.group(1), labels


def collect(stack) -> List[Family]:
    return families(read(stack))
