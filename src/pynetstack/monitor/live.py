"""The live view shared by the dashboard's events, ``/api/snapshot`` and ``pynetstack top``:
the registry read now, rates against the previous read, the top flows and the firing alerts.
One snapshot is made at most every ``min_period`` seconds whoever asks, so ten open dashboards
cost the stack what one does."""

from __future__ import annotations

import heapq
import threading
import time
from typing import Callable, Optional

from ..netfilter.ct_list import format_tuple
from ..wire.addr import ip_to_str
from . import metrics

TOP_FLOWS = 10
_PROTO = {1: "icmp", 6: "tcp", 17: "udp"}


class Live:
    def __init__(self, stack, alerts: Optional[Callable[[], list]] = None, min_period: float = 0.5,
                 clock: Callable[[], float] = time.monotonic):
        self.stack = stack
        self.alerts = alerts
        self.min_period = min_period
        self.clock = clock
        self._lock = threading.Lock()
        self._previous = None  # (t, flat)
        self._cached = None

    def snapshot(self) -> dict:
        with self._lock:
            t = self.clock()
            if self._cached is not None and t - self._cached["_t"] < self.min_period:
                return self._cached["data"]
            flat = metrics.flatten(metrics.collect(self.stack))
            flows = top_flows(self.stack)
            previous = self._previous
            self._previous = (t, flat)
            data = build_snapshot(flat, previous[1] if previous else None, t - previous[0] if previous else 0.0)
            data["time"] = time.time()
            data["flows"] = flows
            data["alerts"] = self.alerts() if self.alerts else []
            self._cached = {"_t": t, "data": data}
            return data


def build_snapshot(flat: dict, previous: Optional[dict], elapsed: float) -> dict:
    """Numbers for the dashboard from two flattened reads ``elapsed`` seconds apart."""
    def rate(key: str) -> float:
        if not previous or elapsed <= 0 or key not in previous:
            return 0.0
        delta = flat.get(key, 0.0) - previous[key]
        return max(0.0, delta) / elapsed

    interfaces = {}
    drops = {}
    states = {}
    conntrack = {}
    for key, value in flat.items():
        name, labels = metrics.parse_key(key)
        if name.startswith("pynetstack_network_") and "device" in labels:
            row = interfaces.setdefault(labels["device"], {})
            short = name[len("pynetstack_network_"):]
            row[short] = value
            if short.endswith("_total"):
                row[short[:-6] + "_per_second"] = rate(key)
        elif name == "pynetstack_drops_total":
            drops[labels.get("reason", "")] = {"total": value, "per_second": rate(key)}
        elif name == "pynetstack_tcp_connections":
            states[labels.get("state", "")] = value
        elif name.startswith("pynetstack_conntrack_"):
            conntrack[name[len("pynetstack_conntrack_"):]] = value
    return {
        "interfaces": interfaces,
        "drops": drops,
        "tcp_states": states,
        "connections": sum(v for s, v in states.items() if s != "LISTEN"),
        "conntrack": conntrack,
        "forwarded_per_second": rate("pynetstack_nstat_ip_forw_datagrams_total"),
        "received_per_second": rate("pynetstack_nstat_ip_in_receives_total"),
        "drops_per_second": sum(d["per_second"] for d in drops.values()),
        "srtt_mean_ms": flat.get("pynetstack_tcp_srtt_mean_seconds", 0.0) * 1000,
    }


def top_flows(stack, n: int = TOP_FLOWS) -> list:
    """The ``n`` biggest flows by bytes: conntrack's entries on a router, else the TCP connections."""
    with stack.lock:
        router = getattr(stack, "router", None)
        ct = getattr(router, "conntrack", None) if router is not None else None
        if ct is not None:
            entries = {id(e): e for e in ct.table.values()}.values()
            best = heapq.nlargest(n, entries, key=lambda e: e.counters[1] + e.counters[3])
            return [{"flow": f"{_PROTO.get(e.original[0], e.original[0])} {format_tuple(e.original)}",
                     "bytes": e.counters[1] + e.counters[3], "packets": e.counters[0] + e.counters[2],
                     "state": e.tcp_state or ""} for e in best]
        tcp = getattr(stack, "tcp", None)
        if tcp is None:
            return []
        best = heapq.nlargest(n, tcp.connections.values(), key=lambda c: c.bytes_acked + c.bytes_received)
        return [{"flow": f"tcp {ip_to_str(c.local_ip)}:{c.local_port} -> {ip_to_str(c.remote_ip)}:{c.remote_port}",
                 "bytes": c.bytes_acked + c.bytes_received, "packets": 0, "state": c.state} for c in best]
