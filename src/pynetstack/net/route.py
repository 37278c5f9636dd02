"""The IPv4 routing table: longest-prefix match."""

from __future__ import annotations

from typing import Dict, List, Optional

from ..wire.addr import ip_to_str, prefix_mask


_MASKS = [prefix_mask(length) for length in range(33)]


class Route:
    __slots__ = ("prefix", "length", "gateway", "interface", "metric")

    def __init__(self, prefix: int, length: int, interface, gateway: Optional[int] = None, metric: int = 0):
        self.prefix = prefix & prefix_mask(length)
        self.length = length
        self.gateway = gateway
        self.interface = interface
        self.metric = metric

    def next_hop(self, dst: int) -> int:
        return self.gateway if self.gateway is not None else dst

    def __repr__(self) -> str:
        via = f" via {ip_to_str(self.gateway)}" if self.gateway is not None else ""
        return f"{ip_to_str(self.prefix)}/{self.length}{via} dev {self.interface.name} metric {self.metric}"


class RoutingTable:
    def __init__(self):
        self._by_length: Dict[int, Dict[int, Route]] = {}
        self._lengths: List[int] = []  # present prefix lengths, longest first
        self.generation = 0

    def add(self, route: Route) -> None:
        table = self._by_length.setdefault(route.length, {})
        current = table.get(route.prefix)
        if current is None or route.metric <= current.metric:
            table[route.prefix] = route
        self._lengths = sorted(self._by_length, reverse=True)
        self.generation += 1

    def remove(self, prefix: int, length: int) -> bool:
        table = self._by_length.get(length, {})
        removed = table.pop(prefix & prefix_mask(length), None) is not None
        if not table:
            self._by_length.pop(length, None)
        self._lengths = sorted(self._by_length, reverse=True)
        self.generation += 1
        return removed

    def lookup(self, dst: int) -> Optional[Route]:
        by_length = self._by_length
        for length in self._lengths:
            route = by_length[length].get(dst & _MASKS[length])
            if route is not None:
                return route
        return None

    def routes(self) -> List[Route]:
        return [route for length in self._lengths for route in self._by_length[length].values()]

