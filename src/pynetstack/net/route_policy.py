"""Policy routing (``ip rule``) over several tables, ECMP next-hop choice, and ``ip route get``.

``RoutingPolicy`` is the set of tables plus the rules that choose among them, with the same
``add``/``remove``/``lookup``/``routes``/``generation`` surface as one ``RoutingTable`` so the
host can hold either. Rules are tried in priority order; a ``lookup`` rule whose table has no
route, or only a ``throw`` route, for the destination passes on to the next rule, as in Linux.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

from ..wire.addr import ip_to_str, prefix_mask
from .route import FORWARDING, TABLE_IDS, NextHop, Route, RouteError, RoutingTable
from .route_ecmp import flow_hash as _flow_hash
from .route_ecmp import random_seed

RULE_ACTIONS = ("lookup", "blackhole", "unreachable", "prohibit")
IP_PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51, "sctp": 132}
_PROTOCOL_NAMES = {v: k for k, v in IP_PROTOCOLS.items()}
# what `ip route get` says when the answer is not a route (Linux's errno for each case)
ERRORS = {
    None: "Network is unreachable",  # ENETUNREACH: no route
    "unreachable": "No route to host",  # EHOSTUNREACH: an `unreachable` route
    "prohibit": "Permission denied",  # EACCES
    "blackhole": "Invalid argument",  # EINVAL
    "rule unreachable": "Network is unreachable",  # a rule's action: ENETUNREACH
}


def _port_range(value, what: str) -> Optional[Tuple[int, int]]:
    if value is None:
        return None
    lo, hi = (value, value) if isinstance(value, int) else tuple(value)
    if not 0 <= lo <= hi <= 65535:
        raise RouteError(f"bad {what} {value!r}: a port or a (low, high) range within 0..65535")
    return lo, hi


class Rule:
    """One ``ip rule``. Selectors left None match anything; ``invert`` is ``not``."""

    __slots__ = ("priority", "action", "table", "src", "dst", "iif", "fwmark", "fwmask", "ipproto",
                 "sport", "dport", "invert", "wildcard", "_src_mask", "_dst_mask")

    def __init__(self, priority: int, action: str = "lookup", table: Optional[int] = 254, src=None,
                 dst=None, iif: Optional[str] = None, fwmark: Optional[int] = None,
                 fwmask: int = 0xFFFFFFFF, ipproto=None, sport=None, dport=None, invert: bool = False):
        if action not in RULE_ACTIONS:
            raise RouteError(f"unknown rule action {action!r}: one of {', '.join(RULE_ACTIONS)}")
        if not 0 <= priority <= 0xFFFFFFFF:
            raise RouteError(f"bad rule priority {priority}")
        self.priority = priority
        self.action = action
        self.table = table if action == "lookup" else None
        self.src = self._prefix(src, "from")
        self.dst = self._prefix(dst, "to")
        self._src_mask = prefix_mask(self.src[1]) if self.src else 0
        self._dst_mask = prefix_mask(self.dst[1]) if self.dst else 0
        self.iif = iif
        self.fwmark = fwmark
        self.fwmask = fwmask
        if isinstance(ipproto, str):
            if ipproto not in IP_PROTOCOLS:
                raise RouteError(f"unknown ipproto {ipproto!r}")
            ipproto = IP_PROTOCOLS[ipproto]
        self.ipproto = ipproto
        self.sport = _port_range(sport, "sport")
        self.dport = _port_range(dport, "dport")
        self.invert = invert
        self.wildcard = (not invert and src is None and dst is None and iif is None and fwmark is None
                         and ipproto is None and sport is None and dport is None)

    @staticmethod
    def _prefix(value, what: str) -> Optional[Tuple[int, int]]:
        if value is None:
            return None
        prefix, length = value
        if not 0 <= length <= 32:
            raise RouteError(f"bad {what} prefix length {length}")
        return prefix & prefix_mask(length), length

    def matches(self, src: int, dst: int, iif: Optional[str], mark: int, proto: int, sport: int,
                dport: int) -> bool:
        if self.wildcard:
            return True
        hit = ((self.src is None or src & self._src_mask == self.src[0])
               and (self.dst is None or dst & self._dst_mask == self.dst[0])
               and (self.iif is None or self.iif == (iif or "lo"))  # no iif: sent by this host
               and (self.fwmark is None or mark & self.fwmask == self.fwmark)
               and (self.ipproto is None or proto == self.ipproto)
               and (self.sport is None or self.sport[0] <= sport <= self.sport[1])
               and (self.dport is None or self.dport[0] <= dport <= self.dport[1]))
        return hit != self.invert

    def show(self, table_name: Callable[[int], str] = str) -> str:
        parts = ["not"] if self.invert else []
        parts.append("from " + (_prefix_text(self.src) if self.src else "all"))
        if self.dst:
            parts.append("to " + _prefix_text(self.dst))
        if self.fwmark is not None:
            mask = "" if self.fwmask == 0xFFFFFFFF else f"/{self.fwmask:#x}"
            parts.append(f"fwmark {self.fwmark:#x}{mask}")
        if self.iif:
            parts.append(f"iif {self.iif}")
        if self.ipproto is not None:
            parts.append(f"ipproto {_PROTOCOL_NAMES.get(self.ipproto, self.ipproto)}")
        for name, ports in (("sport", self.sport), ("dport", self.dport)):
            if ports:
                parts.append(f"{name} {ports[0]}" if ports[0] == ports[1] else f"{name} {ports[0]}-{ports[1]}")
        parts.append(f"lookup {table_name(self.table)}" if self.action == "lookup" else self.action)
        return f"{self.priority}:\t" + " ".join(parts)

    def __repr__(self) -> str:
        return self.show()


def _prefix_text(value: Tuple[int, int]) -> str:
    prefix, length = value
    return ip_to_str(prefix) if length == 32 else f"{ip_to_str(prefix)}/{length}"


class Decision:
    """The outcome of a policy lookup: where a packet goes (``type`` unicast or local, with the
    ``nexthop`` chosen for its flow), or why it does not (blackhole, unreachable, prohibit; then
    ``interface``, ``gateway``, ``next_hop`` and ``nexthop`` are None, and ``route`` is None when
    a rule, not a route, said so)."""

    __slots__ = ("route", "type", "interface", "gateway", "next_hop", "table", "rule", "nexthop")

    def __init__(self, route, type, nexthop, dst, table, rule):
        self.route = route
        self.type = type
        self.nexthop = nexthop
        self.table = table
        self.rule = rule
        if nexthop is None:
            self.interface = self.gateway = self.next_hop = None
        else:
            self.interface = nexthop.interface
            self.gateway = nexthop.gateway
            self.next_hop = nexthop.gateway if nexthop.gateway is not None else dst

    def __repr__(self) -> str:
        where = f" {self.nexthop!r}" if self.nexthop is not None else ""
        return f"<Decision {self.type}{where} table {self.table} rule {self.rule}>"


def _default_rules() -> List[Rule]:
    return [Rule(0, table=255), Rule(32766, table=254), Rule(32767, table=253)]


class RoutingPolicy:
    """Tables by number (and name, as /etc/iproute2/rt_tables), rules, the ECMP flow hash."""

    def __init__(self, hash_seed: Optional[int] = None, hash_policy: int = 0, cache_size: int = 4096):
        if hash_policy not in (0, 1):
            raise RouteError(f"hash policy must be 0 (L3) or 1 (L4), not {hash_policy}")
        self.hash_seed = random_seed() if hash_seed is None else hash_seed
        self.hash_policy = hash_policy
        self.cache_size = cache_size
        self.generation = 0
        self.table_ids: Dict[str, int] = dict(TABLE_IDS)
        self.tables: Dict[int, RoutingTable] = {}
        self.rules: List[Rule] = _default_rules()
        self._default_rules = True
        for number in (255, 254, 253):
            self.table(number)
        self.main = self.tables[254]
        self._relink()

    # ------------------------------------------------------------------ tables
    def table_id(self, ref) -> int:
        if isinstance(ref, int):
            if not 1 <= ref <= 0xFFFFFFFF:
                raise RouteError(f"bad table number {ref}")
            return ref
        if isinstance(ref, str) and ref.isdigit():
            return self.table_id(int(ref))
        if ref not in self.table_ids:
            raise RouteError(f"unknown table {ref!r} (name it with name_table first)")
        return self.table_ids[ref]

    def table_name(self, number: int) -> str:
        for name, value in self.table_ids.items():
            if value == number:
                return name
        return str(number)

    def name_table(self, name: str, number: int) -> None:
        """Give a table a name (a line of /etc/iproute2/rt_tables)."""
        if name.isdigit() or name in ("all", "unspec"):
            raise RouteError(f"{name!r} cannot name a table")
        self.table_ids[name] = self.table_id(number)

    def table(self, ref="main", create: bool = True) -> RoutingTable:
        number = self.table_id(ref)
        table = self.tables.get(number)
        if table is None:
            if not create:
                raise RouteError(f"no table {ref!r}")
            table = self.tables[number] = RoutingTable(number, self.cache_size)
            table.on_change = self._table_changed
        return table

    # ------------------------------------------------------------------ the RoutingTable surface
    def add(self, route: Route) -> Route:
        return self.table(route.table).add(route)

    def append(self, route: Route) -> Route:
        return self.table(route.table).append(route)

    def replace(self, route: Route) -> Route:
        return self.table(route.table).replace(route)

    def delete(self, prefix: int, length: int, table="main", **selectors) -> Route:
        return self.table(table, create=False).delete(prefix, length, **selectors)

    def remove(self, prefix: int, length: int, table="main") -> bool:
        return self.table(table).remove(prefix, length)

    def routes(self, table="main") -> List[Route]:
        return self.table(table).routes()

    def show(self, table="main") -> List[str]:
        """``ip route show [table T]``; table "all" lists every table, naming the others."""
        if table == "all":
            return [line for number in sorted(self.tables, reverse=True)
                    for line in self.tables[number].show(None if number == 254 else self.table_name(number))]
        return self.table(table).show()

    def lookup(self, dst: int) -> Optional[Route]:  # replaced per instance by _relink
        raise AssertionError("unreachable: _relink binds lookup")

    # ------------------------------------------------------------------ rules
    def add_rule(self, priority: Optional[int] = None, action: str = "lookup", table="main",
                 **selectors) -> Rule:
        """``ip rule add``; without a priority, one below the first rule after priority 0."""
        if priority is None:
            later = [r.priority for r in self.rules if r.priority > 0]
            priority = max(min(later) - 1, 0) if later else 0
        rule = Rule(priority, action, self.table_id(table) if action == "lookup" else None, **selectors)
        if action == "lookup":
            self.table(rule.table)
        at = len(self.rules)
        while at and self.rules[at - 1].priority > priority:
            at -= 1
        self.rules.insert(at, rule)
        self._rules_changed()
        return rule

    def delete_rule(self, priority: Optional[int] = None, table=None) -> Rule:
        """``ip rule del``: the first rule with that priority (and table, if given)."""
        number = self.table_id(table) if table is not None else None
        for i, rule in enumerate(self.rules):
            if (priority is None or rule.priority == priority) and (number is None or rule.table == number):
                del self.rules[i]
                self._rules_changed()
                return rule
        raise RouteError("no such rule (RTNETLINK answers: No such file or directory)")

    def show_rules(self) -> List[str]:
        return [rule.show(self.table_name) for rule in self.rules]

    # ------------------------------------------------------------------ device state
    def set_interface_state(self, iface, up: bool) -> None:
        for table in list(self.tables.values()):
            table.set_interface_state(iface, up)

    def invalidate(self) -> None:
        for table in list(self.tables.values()):
            table.invalidate()

    # ------------------------------------------------------------------ decisions
    def flow_hash(self, src: int, dst: int, proto: int = 0, sport: int = 0, dport: int = 0) -> int:
        """The 31-bit multipath hash of a flow under this table set's seed and policy. For an ICMP
        error, pass the fields of the header it carries (see route_ecmp)."""
        return _flow_hash(self.hash_seed, self.hash_policy, src, dst, proto, sport, dport)

    def decide(self, dst: int, src: int = 0, iif: Optional[str] = None, mark: int = 0, proto: int = 0,
               sport: int = 0, dport: int = 0, flow_hash: Optional[int] = None,
               now: float = 0.0) -> Optional[Decision]:
        """Where a packet goes, rules first (``ip rule``), then the chosen table; None when no rule
        finds a route (Network is unreachable)."""
        if self._main_only:  # default rules and only main has routes: no rule can differ
            route = self.tables[254].lookup(dst)
            return None if route is None else self._decide(route, dst, src, proto, sport, dport,
                                                               flow_hash, now, 32766)
        tables = self.tables
        for rule in self.rules:
            if not rule.matches(src, dst, iif, mark, proto, sport, dport):
                continue
            if rule.action != "lookup":
                return Decision(None, rule.action, None, dst, None, rule.priority)
            table = tables.get(rule.table)
            route = table.lookup(dst) if table is not None else None
            if route is None or route.type == "throw":
                continue
            return self._decide(route, dst, src, proto, sport, dport, flow_hash, now, rule.priority)
        return None

    def _decide(self, route: Route, dst: int, src: int, proto: int, sport: int, dport: int,
                flow_hash: Optional[int], now: float, priority: int) -> Decision:
        nexthop = None
        if route.type in FORWARDING:
            if route.multipath:
                if flow_hash is None:
                    flow_hash = _flow_hash(self.hash_seed, self.hash_policy, src, dst, proto, sport, dport)
                nexthop = route.select(flow_hash, now)
            else:
                nexthop = route.nexthop
        return Decision(route, route.type, nexthop, dst, route.table, priority)

    def explain(self, dst: int, src: Optional[int] = None, iif: Optional[str] = None, mark: int = 0,
                proto: int = 0, sport: int = 0, dport: int = 0,
                source_for: Optional[Callable[[object, int], Optional[int]]] = None,
                now: float = 0.0) -> str:
        """What ``ip route get`` prints for this packet (its first line), or its error text.
        ``source_for(interface, next_hop)`` chooses the source address shown as ``src``."""
        d = self.decide(dst, src or 0, iif, mark, proto, sport, dport, now=now)
        if d is None or d.nexthop is None:
            kind = None if d is None else d.type
            if d is not None and d.route is None and kind == "unreachable":
                kind = "rule unreachable"
            return f"RTNETLINK answers: {ERRORS[kind]}"
        parts = [] if d.type == "unicast" else [d.type]
        parts.append(ip_to_str(dst))
        if src is not None:
            parts.append(f"from {ip_to_str(src)}")
        if d.gateway is not None:
            parts.append(f"via {ip_to_str(d.gateway)}")
        parts.append(f"dev {d.interface.name}")
        if d.table != 254:  # iproute2 names the table unless it is main
            parts.append(f"table {self.table_name(d.table)}")
        chosen = d.route.src if d.route.src is not None else (
            source_for(d.interface, d.next_hop) if source_for is not None and src is None else None)
        if chosen is not None and src is None:
            parts.append(f"src {ip_to_str(chosen)}")
        if mark:
            parts.append(f"mark {mark:#x}")
        parts.append(f"iif {iif}" if iif else "uid 0")
        return " ".join(parts)

    # ------------------------------------------------------------------ internals
    def _table_changed(self, table: RoutingTable) -> None:
        self.generation += 1
        self._relink()

    def _rules_changed(self) -> None:
        self.generation += 1
        self._default_rules = [(r.priority, r.table, r.wildcard, r.action) for r in self.rules] == [
            (0, 255, True, "lookup"), (32766, 254, True, "lookup"), (32767, 253, True, "lookup")]
        self._relink()

    def _relink(self) -> None:
        """Bind ``lookup`` to the cheapest path that gives the rules' answer: the main table's own
        lookup while the rules are the defaults and the local and default tables are empty."""
        tables = self.tables
        if (self._default_rules and tables[255].is_empty() and tables[253].is_empty()
                and not tables[254].throw_routes):
            self.lookup = tables[254].lookup
            self._main_only = True
        else:
            self.lookup = self._lookup_by_rules
            self._main_only = False

    def _lookup_by_rules(self, dst: int) -> Optional[Route]:
        decision = self.decide(dst)
        return decision.route if decision is not None else None


__all__ = ["Decision", "NextHop", "Route", "RouteError", "Rule", "RoutingPolicy", "RoutingTable"]
