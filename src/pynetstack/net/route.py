"""IPv4 routes and one routing table, with ``ip route`` semantics.

The table keeps every route it is given (several per prefix: other metrics, other devices) in a
RIB, the source of truth. For each prefix the first route, lowest metric first, whose next hops
are not all down is installed in the compiled FIB (route_fib.py); a prefix with no live route is
not installed, so its traffic falls back to the next shorter prefix, as Linux skips dead routes.
In front of the FIB sits a bounded per-destination cache, emptied on every change.

Devices are objects with ``.name`` and optionally ``.up`` (missing means up). A device going
down must be told to the table: ``set_interface_state(iface, up)``, or flip ``iface.up`` and call
``invalidate()``; both bump ``generation``.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Dict, List, Optional, Set, Tuple

from ..wire.addr import ip_to_str, prefix_mask
from .route_ecmp import upper_bounds
from .route_fib import Fib

ROUTE_TYPES = ("unicast", "local", "blackhole", "unreachable", "prohibit", "throw")
FORWARDING = ("unicast", "local")  # the types that have next hops
TABLE_IDS = {"local": 255, "main": 254, "default": 253}
TABLE_NAMES = {v: k for k, v in TABLE_IDS.items()}
_MISS = object()


class RouteError(ValueError):
    """A route operation that ``ip route`` would refuse; the message says why."""


def dst_text(prefix: int, length: int) -> str:
    """A destination as ``ip route`` prints it: 'default', a bare host address, or a/len."""
    if length == 0:
        return "default"
    return ip_to_str(prefix) if length == 32 else f"{ip_to_str(prefix)}/{length}"


def _dev_name(dev) -> Optional[str]:
    return dev if dev is None or isinstance(dev, str) else dev.name


class NextHop:
    __slots__ = ("interface", "gateway", "weight")

    def __init__(self, interface, gateway: Optional[int] = None, weight: int = 1):
        if interface is None:
            raise RouteError("a next hop needs a device (dev)")
        if not 1 <= weight <= 256:
            raise RouteError(f"next hop weight must be 1..256, not {weight}")
        self.interface = interface
        self.gateway = gateway
        self.weight = weight

    @property
    def up(self) -> bool:
        return getattr(self.interface, "up", True)

    def same(self, other: "NextHop") -> bool:
        return (self.interface is other.interface and self.gateway == other.gateway
                and self.weight == other.weight)

    def __repr__(self) -> str:
        via = f"via {ip_to_str(self.gateway)} " if self.gateway is not None else ""
        return f"{via}dev {self.interface.name}"


class Route:
    """One route. ``nexthop`` is the first next hop that is up (the first one when none is) and
    ``interface``/``gateway`` are its; all None for types without next hops. The table keeps them
    current as devices go up and down."""

    __slots__ = ("prefix", "length", "type", "metric", "table", "nexthops", "nhgroup", "proto",
                 "scope", "src", "interface", "gateway", "live", "nexthop", "_live", "_bounds")

    def __init__(self, prefix: int, length: int, interface=None, gateway: Optional[int] = None,
                 metric: int = 0, type: str = "unicast", nexthops=None, table=254, nhgroup=None,
                 proto: Optional[str] = None, scope: Optional[str] = None, src: Optional[int] = None):
        if not isinstance(length, int) or not 0 <= length <= 32:
            raise RouteError(f"bad prefix length {length!r}: must be 0..32")
        if type not in ROUTE_TYPES:
            raise RouteError(f"unknown route type {type!r}: one of {', '.join(ROUTE_TYPES)}")
        if not 0 <= metric <= 0xFFFFFFFF:
            raise RouteError(f"bad metric {metric}: must be 0..4294967295")
        self.prefix = prefix & prefix_mask(length)
        self.length = length
        self.type = type
        self.metric = metric
        self.table = TABLE_IDS.get(table, table)
        self.nhgroup = nhgroup
        self.proto = proto
        self.scope = scope
        self.src = src
        if type in FORWARDING:
            if nhgroup is not None:
                if nexthops or interface is not None:
                    raise RouteError("a route takes a next-hop group (nhid) or next hops, not both")
                nexthops = nhgroup.nexthops
            elif nexthops:
                if interface is not None:
                    raise RouteError("a route takes either one device or a list of next hops")
            elif interface is not None:
                nexthops = (NextHop(interface, gateway),)
            else:
                raise RouteError(f"a {type} route to {dst_text(self.prefix, length)} needs a device "
                                 f"(dev), next hops or a next-hop group")
            self.nexthops = tuple(nexthops)
        else:
            if interface is not None or gateway is not None or nexthops or nhgroup is not None:
                raise RouteError(f"a {type} route has no next hop (no dev, via or nexthop)")
            self.nexthops = ()
        self.refresh()

    def refresh(self) -> None:
        """Re-read the devices' state: which next hops are live, and the hash regions."""
        if self.type not in FORWARDING:
            self.interface = self.gateway = self.nexthop = None
            self._live = ()
            self._bounds = None
            self.live = True
            return
        if self.nhgroup is not None:
            self.nhgroup.refresh()
            self.nexthops = tuple(self.nhgroup.nexthops)
        live = tuple(nh for nh in self.nexthops if getattr(nh.interface, "up", True))
        self.live = bool(live)
        self._live = live
        first = live[0] if live else self.nexthops[0]
        self.nexthop = first
        self.interface = first.interface
        self.gateway = first.gateway
        self._bounds = upper_bounds([nh.weight for nh in live]) if len(live) > 1 else None

    @property
    def multipath(self) -> bool:
        return len(self.nexthops) > 1 or self.nhgroup is not None

    def next_hop(self, dst: int) -> int:
        return self.gateway if self.gateway is not None else dst

    def select(self, flow_hash: int, now: float = 0.0) -> Optional[NextHop]:
        """The next hop for a flow: the resilient group's bucket, or the hash-threshold region
        (RFC 2992) among the live next hops. None for types without next hops."""
        if self.nhgroup is not None:
            return self.nhgroup.select(flow_hash, now)
        bounds = self._bounds
        if bounds is None:
            return self.nexthop
        return self._live[bisect_left(bounds, flow_hash & 0x7FFFFFFF)]

    def same(self, other: "Route") -> bool:
        """Identical as far as ``ip route append`` cares (it refuses exact duplicates)."""
        return (self.type == other.type and self.metric == other.metric and self.nhgroup is other.nhgroup
                and len(self.nexthops) == len(other.nexthops)
                and all(a.same(b) for a, b in zip(self.nexthops, other.nexthops)))

    def matches(self, metric=None, gateway=None, dev=None, type=None) -> bool:
        """The ``ip route del`` selectors: only those given must match."""
        if metric is not None and self.metric != metric:
            return False
        if type is not None and self.type != type:
            return False
        if gateway is not None and not any(nh.gateway == gateway for nh in self.nexthops):
            return False
        name = _dev_name(dev)
        return name is None or any(nh.interface.name == name for nh in self.nexthops)

    def show_lines(self, table_name: Optional[str] = None) -> List[str]:
        """The route as ``ip route show`` prints it: one line, plus one per next hop of a
        multipath route (those start with a tab)."""
        parts = [] if self.type == "unicast" else [self.type]
        parts.append(dst_text(self.prefix, self.length))
        single = len(self.nexthops) == 1 and self.nhgroup is None
        if single:
            nh = self.nexthops[0]
            if nh.gateway is not None:
                parts.append(f"via {ip_to_str(nh.gateway)}")
            parts.append(f"dev {nh.interface.name}")
        if table_name:
            parts.append(f"table {table_name}")
        if self.nhgroup is not None:
            parts.append(f"nhid {self.nhgroup.id}")
        if self.proto:
            parts.append(f"proto {self.proto}")
        scope = self.scope
        if scope is None:
            if self.type == "local":
                scope = "host"
            elif single and self.type == "unicast" and self.nexthops[0].gateway is None:
                scope = "link"
        if scope and scope != "global":
            parts.append(f"scope {scope}")
        if self.src is not None:
            parts.append(f"src {ip_to_str(self.src)}")
        if self.metric:
            parts.append(f"metric {self.metric}")
        if single and not self.live:
            parts.append("linkdown")
        lines = [" ".join(parts)]
        if not single:
            for nh in self.nexthops:
                flags = "" if getattr(nh.interface, "up", True) else " dead linkdown"
                lines.append(f"\tnexthop {nh!r} weight {nh.weight}{flags}")
        return lines

    def __repr__(self) -> str:
        lines = self.show_lines()
        return " ".join(line.strip() for line in lines)


class RoutingTable:
    """One table (``ip route ... table N``): a RIB of all routes, the FIB, a lookup cache."""

    def __init__(self, id: int = 254, cache_size: int = 4096):
        self.id = id
        self.cache_size = cache_size
        self.generation = 0
        self.on_change = None  # a callable() the table set uses to follow its tables
        self._rib: Dict[Tuple[int, int], List[Route]] = {}
        self._fib = Fib()
        self._l1, self._l2, self._l3 = self._fib.levels  # mutated in place, never replaced
        self._base2, self._base3 = self._fib.bases[1:]
        self._leaves = self._fib.leaves
        self._cache: Dict[int, Optional[Route]] = {}  # emptied, never replaced: _cache_get stays bound
        self._cache_get = self._cache.get
        self._keys_by_dev: Dict[str, Set[Tuple[int, int]]] = {}  # device name -> prefixes using it
        self._devs: Dict[str, list] = {}  # device name -> [device, up as last seen]
        self.throw_routes = 0  # a table set may skip its rule walk only while this is 0
        self._group_keys: Set[Tuple[int, int]] = set()  # prefixes with a route through a group

    def is_empty(self) -> bool:
        return not self._rib

    def __len__(self) -> int:
        return sum(len(routes) for routes in self._rib.values())

    # ------------------------------------------------------------------ the hot path
    def lookup(self, dst: int) -> Optional[Route]:
        """The route the longest live prefix covering ``dst`` resolves to, or None."""
        route = self._cache_get(dst, _MISS)
        if route is not _MISS:
            return route
        v = self._l1[dst >> 16]
        if v < 0:  # the FIB walk of route_fib.Fib.lookup, inlined
            chunk = ~v
            w = self._l2[(chunk << 8) | ((dst >> 8) & 255)]
            if w < 0:
                x = self._l3[(~w << 8) | (dst & 255)]
                w = x if x else self._base3[~w]
            v = w if w else self._base2[chunk]
        route = self._leaves[v]
        cache = self._cache
        if len(cache) >= self.cache_size:
            # the eviction rule: start over. A small cache stays in the CPU's caches and is cheap
            # to refill; a big one costs more to fill than the FIB walk it saves
            cache.clear()
        cache[dst] = route
        return route

    # ------------------------------------------------------------------ ip route add/append/replace/del
    def add(self, route: Route) -> Route:
        """``ip route add``: refused (File exists) if the prefix has a route of that metric."""
        routes = self._rib.get((route.prefix, route.length), ())
        for other in routes:
            if other.metric == route.metric:
                raise RouteError(f"route {dst_text(route.prefix, route.length)} metric {route.metric} "
                                 f"exists already in table {self._name()} (RTNETLINK answers: File exists)")
        return self._insert(route)

    def append(self, route: Route) -> Route:
        """``ip route append``: another route for the same prefix and metric, used when those
        before it are dead; refused only for an exact duplicate."""
        for other in self._rib.get((route.prefix, route.length), ()):
            if other.same(route):
                raise RouteError(f"route {route!r} exists already in table {self._name()} "
                                 f"(RTNETLINK answers: File exists)")
        return self._insert(route)

    def replace(self, route: Route) -> Route:
        """``ip route replace``: take the place of the first route of that prefix and metric,
        or add."""
        key = (route.prefix, route.length)
        routes = self._rib.get(key, [])
        for i, other in enumerate(routes):
            if other.metric == route.metric:
                routes[i] = route
                self.throw_routes += (route.type == "throw") - (other.type == "throw")
                self._track(route, key)
                self._untrack(other, key)
                self._resync(key)
                self._changed()
                return route
        return self._insert(route)

    def delete(self, prefix: int, length: int, metric: Optional[int] = None, gateway: Optional[int] = None,
               dev=None, type: Optional[str] = None) -> Route:
        """``ip route del``: remove the first route of the prefix matching the selectors given."""
        key = (prefix & prefix_mask(length), length)
        routes = self._rib.get(key, [])
        for i, route in enumerate(routes):
            if route.matches(metric, gateway, dev, type):
                del routes[i]
                self.throw_routes -= route.type == "throw"
                if not routes:
                    del self._rib[key]
                self._untrack(route, key)
                self._resync(key)
                self._changed()
                return route
        raise RouteError(f"no route {dst_text(*key)} matching that in table {self._name()} "
                         f"(RTNETLINK answers: No such process)")

    def remove(self, prefix: int, length: int) -> bool:
        """Delete the first (lowest metric) route of the prefix; False if there is none."""
        try:
            self.delete(prefix, length)
        except RouteError:
            return False
        return True

    def flush(self) -> None:
        for key in list(self._rib):
            for route in list(self._rib.get(key, ())):
                self.delete(key[0], key[1], metric=route.metric)

    # ------------------------------------------------------------------ reading
    def get(self, prefix: int, length: int) -> List[Route]:
        """Every route of exactly this prefix, in the order lookups try them."""
        return list(self._rib.get((prefix & prefix_mask(length), length), ()))

    def routes(self) -> List[Route]:
        """Every route, in ``ip route show`` order (by address, shorter prefix first)."""
        return [route for key in sorted(self._rib) for route in self._rib[key]]

    def show(self, table_name: Optional[str] = None) -> List[str]:
        return [line for route in self.routes() for line in route.show_lines(table_name)]

    def stats(self) -> Dict[str, int]:
        chunks2, chunks3 = self._fib.chunks()
        return {"routes": len(self), "prefixes": len(self._rib), "installed": len(self._fib),
                "chunks_l2": chunks2, "chunks_l3": chunks3, "cached": len(self._cache)}

    # ------------------------------------------------------------------ device state
    def set_interface_state(self, iface, up: bool) -> None:
        """A device went up or down: fail over to the next live route of each prefix using it."""
        try:
            iface.up = up
        except AttributeError:  # a device object without a writable .up: nothing to record
            pass
        self._device_changed(iface.name, up)

    def invalidate(self) -> None:
        """Re-read every device's ``.up`` (call it after flipping one) and every next-hop group's
        members (call it after changing one), and empty the cache."""
        for name, seen in list(self._devs.items()):
            up = getattr(seen[0], "up", True)
            if up != seen[1]:
                self._device_changed(name, up)
        for key in list(self._group_keys):
            for route in self._rib[key]:
                self._untrack(route, key)
                route.refresh()
                self._track(route, key)
            self._resync(key, refresh=False)
        self._changed()

    # ------------------------------------------------------------------ internals
    def _name(self) -> str:
        return TABLE_NAMES.get(self.id, str(self.id))

    def _insert(self, route: Route) -> Route:
        if route.table != self.id:
            route.table = self.id
        key = (route.prefix, route.length)
        routes = self._rib.setdefault(key, [])
        at = len(routes)
        while at and routes[at - 1].metric > route.metric:
            at -= 1
        routes.insert(at, route)
        self.throw_routes += route.type == "throw"
        self._track(route, key)
        self._resync(key)
        self._changed()
        return route

    def _track(self, route: Route, key) -> None:
        if route.nhgroup is not None:
            self._group_keys.add(key)
        for nh in route.nexthops:
            name = nh.interface.name
            self._keys_by_dev.setdefault(name, set()).add(key)
            if name not in self._devs:
                self._devs[name] = [nh.interface, getattr(nh.interface, "up", True)]

    def _untrack(self, route: Route, key) -> None:
        routes = self._rib.get(key, ())
        if route.nhgroup is not None and not any(r.nhgroup is not None for r in routes if r is not route):
            self._group_keys.discard(key)
        remaining = {nh.interface.name for r in routes if r is not route for nh in r.nexthops}
        for nh in route.nexthops:
            name = nh.interface.name
            if name not in remaining:
                keys = self._keys_by_dev.get(name)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._keys_by_dev[name]
                        self._devs.pop(name, None)

    def _device_changed(self, name: str, up: bool) -> None:
        seen = self._devs.get(name)
        if seen is not None:
            seen[1] = up
        for key in self._keys_by_dev.get(name, ()):
            for route in self._rib[key]:
                route.refresh()
            self._resync(key, refresh=False)
        self._changed()

    def _resync(self, key, refresh: bool = True) -> None:
        """Install the prefix's winning route in the FIB (or take the prefix out)."""
        winner = None
        for route in self._rib.get(key, ()):
            if refresh:
                route.refresh()
            if route.live:
                winner = route
                break
        if winner is None:
            self._fib.uninstall(*key)
        else:
            self._fib.install(key[0], key[1], winner)

    def _changed(self) -> None:
        self._cache.clear()
        self.generation += 1
        if self.on_change is not None:
            self.on_change(self)
