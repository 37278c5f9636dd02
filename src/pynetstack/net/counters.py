"""The stack's one registry of counters, read when asked (no per-packet cost of its own).

Every layer keeps plain counters where it counts; the registry knows where they are and
gathers them under the names people know: ``nstat``'s for the IP and ICMP MIBs, node_exporter's
``netdev`` names for interfaces, drop reasons as Linux names skb drop reasons, and each network
function's ``stats()`` under its name.  The monitoring work exposes exactly this.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, Dict

# the host's counter names -> nstat's (RFC 4293 IP-MIB names, as `nstat -az` prints them)
NSTAT_NAMES = {
    "ip_in_receives": "IpInReceives",
    "ip_in_delivers": "IpInDelivers",
    "ip_forwarded": "IpForwDatagrams",
    "ip_out_requests": "IpOutRequests",
    "ip_fragments_created": "IpFragCreates",
    "icmp_in": "IcmpInMsgs",
    "icmp_errors_out": "IcmpOutErrors",
    "icmp_echo_replies": "IcmpOutEchoReps",
}


class DropView:
    """A layer's view of the one drop counter: its reasons land there under a prefix
    (``tcp-``), so they show in traces, status and metrics with everyone else's."""

    def __init__(self, drops: Counter, prefix: str):
        self._drops = drops
        self._prefix = prefix

    def _key(self, reason: str) -> str:
        return reason if reason.startswith(self._prefix) else self._prefix + reason

    def __getitem__(self, reason: str) -> int:
        return self._drops[self._key(reason)]

    def __setitem__(self, reason: str, value: int) -> None:
        key = self._key(reason)
        grew = value > self._drops[key]
        self._drops[key] = value
        observer = getattr(self._drops, "observer", None)
        if grew and observer is not None:
            observer(key)

    def drop(self, reason: str) -> None:
        self[reason] += 1

    def items(self):
        n = len(self._prefix)
        return [(key[n:], value) for key, value in self._drops.items() if key.startswith(self._prefix)]

    def __iter__(self):
        return iter(dict(self.items()))

    def __len__(self) -> int:
        return len(self.items())

    def __bool__(self) -> bool:
        return any(value for _, value in self.items())

    def keys(self):
        return [key for key, _ in self.items()]

    def values(self):
        return [value for _, value in self.items()]

    def get(self, reason: str, default=0):
        key = self._key(reason)
        return self._drops[key] if key in self._drops else default


class CounterRegistry:
    """Named sources of counters; ``gather()`` reads them all at once."""

    def __init__(self):
        self._sources: Dict[str, Callable[[], dict]] = {}

    def add(self, name: str, source: Callable[[], dict]) -> None:
        self._sources[name] = source

    def remove(self, name: str) -> None:
        self._sources.pop(name, None)

    def gather(self) -> Dict[str, dict]:
        return {name: source() for name, source in self._sources.items()}


def host_sources(registry: CounterRegistry, host) -> None:
    """Register an IPv4Host's counters: nstat's MIB, drops by reason, interfaces, functions."""
    def nstat() -> dict:
        counters = host.counters
        out = {name: counters.get(key, 0) for key, name in NSTAT_NAMES.items()}
        out["IpInDiscards"] = sum(host.drops.values())
        return out

    def netdev() -> dict:
        return {iface.name: {"receive_packets_total": iface.rx_frames, "receive_bytes_total": iface.rx_bytes,
                             "transmit_packets_total": iface.tx_frames, "transmit_bytes_total": iface.tx_bytes}
                for iface in host.interfaces.values()}

    def functions() -> dict:
        return {function.name: function.stats() for function in host.hooks.functions}

    registry.add("nstat", nstat)
    registry.add("drops", lambda: dict(host.drops))
    registry.add("netdev", netdev)
    registry.add("host", lambda: dict(host.counters))
    registry.add("functions", functions)
    registry.add("flowtable", host.flowtable.stats)
