"""``qos show [dev IFACE]`` on a running stack's control socket, answered like ``tc -s class
show``: per class its rates, what it sent, dropped (by reason), backlog, borrowing, tokens, and
the SLA monitor's delay percentiles, jitter, loss and violations."""

from __future__ import annotations

import json
from typing import List


class QosCommandError(ValueError):
    pass


def _rate(bytes_per_second: float) -> str:
    bits = bytes_per_second * 8
    for unit, scale in (("Gbit", 1e9), ("Mbit", 1e6), ("Kbit", 1e3)):
        if bits >= scale:
            return f"{bits / scale:.4g}{unit}"
    return f"{bits:.0f}bit"


def gather(stack) -> dict:
    with stack.lock:
        return {iface.name: iface.qdisc.stats() for iface in stack.interfaces.values() if iface.qdisc is not None}


def show(stats: dict) -> str:
    """tc -s class show, for the stats of every shaped interface."""
    lines = []
    for ifname, qdisc in stats.items():
        lines.append(f"qdisc htb 1: dev {ifname} root refcnt 2 default bulk")
        lines.append(f" Sent {qdisc['sent_bytes']} bytes {qdisc['sent_packets']} pkt "
                     f"backlog {qdisc['backlog_bytes']}b {qdisc['backlog_packets']}p")
        lines.append(f" departures on a timer {qdisc['departures_timed']}: late by {qdisc['departure_late_avg_us']:.0f}us "
                     f"on average, {qdisc['departure_late_max_us']:.0f}us at most, "
                     f"{qdisc['departures_late_over_1ms']} over 1 ms")
        sla = qdisc["sla"]
        for name, cls in qdisc["classes"].items():
            leaf = "flows" in cls
            head = (f"class htb {cls['classid']} {'parent ' + cls['parent'] if cls['parent'] != 'root' else 'root'} "
                    f"{'leaf ' if leaf else ''}prio {cls['prio']} rate {_rate(cls['rate'])} ceil {_rate(cls['ceil'])} "
                    f"burst {cls['burst']:.0f}b cburst {cls['cburst']:.0f}b  ({name})")
            if "police_rate" in cls:
                head += f" police {_rate(cls['police_rate'])}"
            lines.append(head)
            drops = ", ".join(f"{reason} {n}" for reason, n in sorted(cls["drops"].items()))
            lines.append(f" Sent {cls['sent_bytes']} bytes {cls['sent_packets']} pkt (dropped {cls['dropped']}"
                         f"{' [' + drops + ']' if drops else ''}, overlimits {cls['overlimits']} requeues 0)")
            figures = sla.get(name, {})
            if leaf:
                throughput = figures.get("throughput_mbit", 0.0)
                lines.append(f" rate {_rate(throughput * 1e6 / 8)} {figures.get('pps', 0):.0f}pps "
                             f"backlog {cls['backlog_bytes']}b {cls['backlog_packets']}p requeues 0 "
                             f"flows {cls['flows']} ecn_mark {cls['ecn_marks']}")
            lines.append(f" lended: {cls['lent']} borrowed: {cls['borrowed']} giants: 0")
            lines.append(f" tokens: {cls['tokens']} ctokens: {cls['ctokens']}")
            if leaf and figures:
                targets = figures.get("targets", {})
                violations = figures.get("violations", {})
                state = ", ".join(f"{k} {v:g}" for k, v in targets.items()) or "none"
                lines.append(f" delay p50 {figures.get('delay_p50_ms', 0):.2f}ms p95 {figures.get('delay_p95_ms', 0):.2f}"
                             f"ms p99 {figures.get('delay_p99_ms', 0):.2f}ms jitter {figures.get('jitter_ms', 0):.2f}ms "
                             f"loss {figures.get('loss_percent', 0):.2f}%")
                lines.append(f" sla targets: {state}; violations: "
                             + (", ".join(f"{k} {v}" for k, v in violations.items()) or "none"))
            lines.append("")
        for alert in qdisc.get("alerts", [])[-5:]:
            lines.append(f"alert: {alert['class']} {alert['metric']} {alert['value']} over target {alert['target']}")
    return "\n".join(lines) + ("\n" if lines else "")


def answer(stack, words: List[str]) -> str:
    """``qos show [dev IFACE]`` | ``qos json``."""
    what = words[0] if words else "show"
    stats = gather(stack)
    if not stats:
        raise QosCommandError("this stack shapes no interface (add a [qos] section)")
    if what == "json":
        return json.dumps(stats, sort_keys=True) + "\n"
    if what != "show":
        raise QosCommandError("qos: show [dev IFACE] | json")
    rest = words[1:]
    if rest:
        if len(rest) != 2 or rest[0] != "dev":
            raise QosCommandError("qos show: [dev IFACE]")
        if rest[1] not in stats:
            raise QosCommandError(f"qos show: {rest[1]!r} has no qdisc (shaped: {', '.join(stats)})")
        stats = {rest[1]: stats[rest[1]]}
    return show(stats)


def register() -> None:
    """Put ``qos`` among the commands the control socket answers."""
    from .. import router_control
    router_control.HANDLERS["qos"] = answer
