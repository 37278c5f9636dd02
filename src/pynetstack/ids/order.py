"""The order rules are evaluated in, and which rules are "IP-only", as Suricata decides both.

Suricata sorts its rules once, at load time, and every packet's candidate rules are tested (and
their alerts logged) in that order:

1. action, in the configured ``action-order`` (default pass, drop, reject, alert);
2. flowbits use: rules that only set/unset flowbits, then rules that read and set them, then rules
   that only read them (isset/isnotset), then rules without flowbits; so that a bit set by one rule
   is seen by a rule that reads it on the same packet;
3. priority, lower value first (the ``priority`` keyword, else the classtype's, else 3);
4. sid, lower first.

An "IP-only" rule looks at addresses, ports and protocol alone (no payload, no flow direction,
no header keyword other than flowbits:set, threshold and detection_filter; no negated address).
Suricata evaluates those in a separate engine, before the other rules, on the first packet of
each direction of a flow only."""

from __future__ import annotations

from typing import Dict, Iterable, List, Sequence

DEFAULT_ACTION_ORDER = ("pass", "drop", "reject", "alert")
_ACTION_CLASS = {"pass": "pass", "drop": "drop", "alert": "alert", "reject": "reject", "rejectsrc": "reject",
                 "rejectdst": "reject", "rejectboth": "reject"}
# flowbits use, in evaluation order
_SETS, _SETS_AND_READS, _READS, _NO_FLOWBITS = range(4)


class OrderError(ValueError):
    """A bad action-order list."""


def check_action_order(action_order: Sequence[str]) -> Dict[str, int]:
    """{action: position} from a list such as suricata.yaml's action-order."""
    names = [str(a).strip().lower() for a in action_order]
    if sorted(names) != sorted(DEFAULT_ACTION_ORDER):
        raise OrderError(f"action-order must name pass, drop, reject and alert once each, not {list(action_order)}")
    return {name: i for i, name in enumerate(names)}


def flowbits_use(rule) -> int:
    # as Suricata counts them: isset/isnotset read, set/unset write (toggle is neither)
    reads = any(op.startswith("is") for op, _ in rule.flowbits)
    writes = any(op in ("set", "unset") for op, _ in rule.flowbits)
    if writes:
        return _SETS_AND_READS if reads else _SETS
    return _READS if reads else _NO_FLOWBITS


def priority_of(rule) -> int:
    return rule.priority if rule.priority is not None else rule.severity


def evaluation_order(rules: Iterable, action_order: Sequence[str] = DEFAULT_ACTION_ORDER) -> List:
    """The rules in Suricata's evaluation (and alert logging) order."""
    position = check_action_order(action_order)
    return sorted(rules, key=lambda r: (position[_ACTION_CLASS[r.action]], flowbits_use(r), priority_of(r), r.sid,
                                        r.gid, r.order))


def is_app_packet_rule(rule) -> bool:
    """An HTTP rule that inspects no HTTP buffer and no payload (``alert http ... (dsize:0;)``):
    Suricata tests it on every packet of the flow once the flow's protocol is known to be HTTP."""
    return rule.app == "http" and not rule.buffers and not rule.items


def acts_on_flow(rule, on_stream: bool) -> bool:
    """Whether a matching pass or drop rule passes or drops the rest of the flow (else only the
    packet): IP-only rules, app-layer rules and stream matches do; rules on a packet's own
    properties (dsize, flags, ttl, a tcp-pkt payload) do not."""
    if rule.app == "http":
        return not rule.checks and not rule.flow or not is_app_packet_rule(rule)
    if rule.items:
        return on_stream
    return (not rule.checks and not rule.flow and not rule.buffers
            and all(op == "set" for op, _ in rule.flowbits))


def is_ip_only(rule) -> bool:
    return (rule.app is None and not rule.items and not rule.buffers and not rule.checks and not rule.flow
            and all(op == "set" for op, _ in rule.flowbits) and not rule.addr_negated
            and rule.packet_ok and rule.stream_ok)
