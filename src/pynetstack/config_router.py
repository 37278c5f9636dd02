"""The router's part of the TOML configuration: routes (types, metrics, ECMP next hops, tables),
policy rules, the multipath hash, and netfilter (the nft ruleset file, conntrack, NAT, flow table).

    [stack]
    forwarding = true

    [routing]
    hash_policy = 1                 # 0: L3 (addresses), 1: L4 (addresses, protocol, ports)
    hash_seed = 12345               # default: random per stack

    [[route]]
    destination = "0.0.0.0/0"
    nexthops = [{ gateway = "10.1.0.1", weight = 2 }, { gateway = "10.2.0.1", interface = "wan1" }]
    [[route]]
    destination = "192.0.2.0/24"
    type = "prohibit"               # unicast, blackhole, unreachable, prohibit, throw
    table = 100                     # a number, or main / local / default

    [[rule]]                        # ip rule
    priority = 100
    from = "192.168.2.0/24"         # also: to, iif, fwmark ("0x1" or "0x1/0xff"), ipproto, sport, dport, not
    table = 100                     # or action = "blackhole" | "unreachable" | "prohibit"

    [netfilter]
    ruleset = "router.nft"          # the file `nft -f` loads, relative to this file
    conntrack_max = 65536
    conntrack_timeouts = "rfc"      # or "linux"; then overrides in [netfilter.timeouts]: udp = 120, ...
    tcp_liberal = false
    conntrack_checksum = true       # nf_conntrack_checksum: a bad TCP/UDP/ICMP checksum arriving is invalid
    nat_filtering = "address-and-port"   # or "address", "endpoint-independent"
    flowtable = true                # default: on while no filter chain sits on a forwarding hook
"""

from __future__ import annotations

import os
from typing import Any, Dict

from .configcheck import check_keys
from .wire.addr import ip_to_int, ip_to_str, parse_cidr, prefix_mask

ROUTE_KEYS = {"destination", "gateway", "interface", "metric", "type", "table", "nexthops"}
NEXTHOP_KEYS = {"gateway", "interface", "weight"}
RULE_KEYS = {"priority", "from", "to", "iif", "fwmark", "ipproto", "sport", "dport", "not", "table", "action"}
ROUTING_KEYS = {"hash_policy", "hash_seed"}
NETFILTER_KEYS = {"ruleset", "conntrack_max", "conntrack_timeouts", "timeouts", "tcp_liberal", "nat_filtering",
                  "flowtable", "conntrack_checksum"}
ROUTE_TYPES = ("unicast", "blackhole", "unreachable", "prohibit", "throw")
RULE_ACTIONS = ("lookup", "blackhole", "unreachable", "prohibit")
NAT_FILTERINGS = ("address-and-port", "address", "endpoint-independent")


class _Fail(ValueError):
    pass


def _keys(table, allowed: set, where: str) -> None:
    check_keys(table, allowed, where, _Fail)


def _int(table: dict, key: str, where: str, low: int, high: int):
    value = table.get(key)
    if key in table and (not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high):
        raise _Fail(f"{where}: {key} must be an integer within {low}..{high}, not {value!r}")
    return value


def _address(value, where: str) -> int:
    try:
        return ip_to_int(value if isinstance(value, str) else "")
    except ValueError:
        raise _Fail(f"{where}: {value!r} is not an IPv4 address") from None


def _prefix(value, where: str):
    if not isinstance(value, str):
        raise _Fail(f"{where} must be a prefix string like '10.1.0.0/16', not {value!r}")
    try:
        return parse_cidr(value)
    except ValueError as exc:
        raise _Fail(f"{where}: {exc}") from None


def _table_ref(value, where: str):
    if isinstance(value, bool) or not isinstance(value, (int, str)) or (isinstance(value, int)
                                                                         and not 1 <= value <= 0xFFFFFFFF):
        raise _Fail(f"{where}: table must be a number (1..4294967295) or a name (main, local, default), not {value!r}")
    if isinstance(value, str) and value not in ("main", "local", "default") and not value.isdigit():
        raise _Fail(f"{where}: unknown table {value!r}: use a number, or main, local, default")
    return int(value) if isinstance(value, str) and value.isdigit() else value


def _ports(value, where: str, key: str):
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535:
        return value
    if isinstance(value, str):
        low, _, high = value.partition("-")
        if low.isdigit() and (not high or high.isdigit()):
            lo, hi = int(low), int(high or low)
            if 0 <= lo <= hi <= 65535:
                return (lo, hi)
    raise _Fail(f"{where}: {key} must be a port or a range 'LOW-HIGH', not {value!r}")


def validate(config: Dict[str, Any], source: str, interfaces: Dict[str, str]) -> None:
    """Check [routing], [[route]], [[rule]] and [netfilter]; raise ValueError naming the key."""
    try:
        _validate(config, source, interfaces)
    except _Fail as exc:
        raise ValueError(str(exc)) from None


def _validate(config, source, interfaces) -> None:
    routing = config.get("routing", {})
    _keys(routing, ROUTING_KEYS, f"{source}: [routing]")
    _int(routing, "hash_policy", f"{source}: [routing]", 0, 1)
    _int(routing, "hash_seed", f"{source}: [routing]", 0, 2 ** 63)
    routes = config.get("route", [])
    if not isinstance(routes, list):
        raise _Fail(f"{source}: 'route' must be an array of tables ([[route]])")
    for i, table in enumerate(routes):
        where = f"{source}: route #{i + 1}"
        _keys(table, ROUTE_KEYS, where)
        if "destination" not in table:
            raise _Fail(f"{where}: 'destination' is required")
        address, length = _prefix(table["destination"], f"{where}: destination")
        if address & ~prefix_mask(length) & 0xFFFFFFFF:  # Linux refuses it too, rather than guess
            network = f"{ip_to_str(address & prefix_mask(length))}/{length}"
            raise _Fail(f"{where}: destination {table['destination']} has host bits set: an invalid prefix "
                        f"for its length (as ip route says); the network is {network}")
        kind = table.get("type", "unicast")
        if kind not in ROUTE_TYPES:
            raise _Fail(f"{where}: type must be one of {', '.join(ROUTE_TYPES)}, not {kind!r}")
        _int(table, "metric", where, 0, 0xFFFFFFFF)
        if "table" in table:
            _table_ref(table["table"], where)
        hops = table.get("nexthops")
        if kind != "unicast":
            if hops is not None or "gateway" in table or "interface" in table:
                raise _Fail(f"{where}: a {kind} route has no gateway, interface or nexthops")
            continue
        if hops is not None:
            if "gateway" in table or "interface" in table:
                raise _Fail(f"{where}: give either gateway/interface or nexthops, not both")
            if not isinstance(hops, list) or not hops:
                raise _Fail(f"{where}: nexthops must be a non-empty array of tables")
            for j, hop in enumerate(hops):
                _next_hop(hop, f"{where}: nexthop #{j + 1}", interfaces)
                _int(hop, "weight", f"{where}: nexthop #{j + 1}", 1, 256)
        else:
            _next_hop(table, where, interfaces)
    rules = config.get("rule", [])
    if not isinstance(rules, list):
        raise _Fail(f"{source}: 'rule' must be an array of tables ([[rule]])")
    for i, table in enumerate(rules):
        where = f"{source}: rule #{i + 1}"
        _keys(table, RULE_KEYS, where)
        _int(table, "priority", where, 0, 0xFFFFFFFF)
        action = table.get("action", "lookup")
        if action not in RULE_ACTIONS:
            raise _Fail(f"{where}: action must be one of {', '.join(RULE_ACTIONS)}, not {action!r}")
        if action == "lookup" and "table" not in table:
            raise _Fail(f"{where}: a lookup rule needs a table")
        if "table" in table:
            _table_ref(table["table"], where)
        for key in ("from", "to"):
            if key in table:
                _prefix(table[key], f"{where}: {key}")
        if "iif" in table and table["iif"] not in interfaces:
            raise _Fail(f"{where}: no interface named {table['iif']!r} (have {', '.join(interfaces)})")
        if "fwmark" in table:
            _fwmark(table["fwmark"], where)
        if "ipproto" in table and not (table["ipproto"] in ("tcp", "udp", "icmp")
                                       or isinstance(table["ipproto"], int) and 0 <= table["ipproto"] <= 255):
            raise _Fail(f"{where}: ipproto must be tcp, udp, icmp or a number, not {table['ipproto']!r}")
        for key in ("sport", "dport"):
            _ports(table.get(key), where, key)
        if "not" in table and not isinstance(table["not"], bool):
            raise _Fail(f"{where}: not must be true or false")
    nf = config.get("netfilter", {})
    _keys(nf, NETFILTER_KEYS, f"{source}: [netfilter]")
    where = f"{source}: [netfilter]"
    if "ruleset" in nf and not isinstance(nf["ruleset"], str):
        raise _Fail(f"{where}: ruleset must be the path of an nft file")
    _int(nf, "conntrack_max", where, 1, 10_000_000)
    if nf.get("conntrack_timeouts", "rfc") not in ("rfc", "linux"):
        raise _Fail(f"{where}: conntrack_timeouts must be 'rfc' or 'linux', not {nf['conntrack_timeouts']!r}")
    if "timeouts" in nf and not isinstance(nf["timeouts"], dict):
        raise _Fail(f"{where}: timeouts must be a table of seconds by name ([netfilter.timeouts])")
    for key in ("tcp_liberal", "flowtable", "conntrack_checksum"):
        if key in nf and not isinstance(nf[key], bool):
            raise _Fail(f"{where}: {key} must be true or false")
    if nf.get("nat_filtering", "address-and-port") not in NAT_FILTERINGS:
        raise _Fail(f"{where}: nat_filtering must be one of {', '.join(NAT_FILTERINGS)}")


def _next_hop(table: dict, where: str, interfaces) -> None:
    if "gateway" not in table and "interface" not in table:
        raise _Fail(f"{where}: give a gateway, an interface, or both")
    if "gateway" in table:
        _address(table["gateway"], f"{where}: gateway")
    if "interface" in table and (not isinstance(table["interface"], str) or table["interface"] not in interfaces):
        raise _Fail(f"{where}: no interface named {table.get('interface')!r} (have {', '.join(interfaces)})")


def _fwmark(value, where: str):
    if isinstance(value, int) and not isinstance(value, bool):
        return value, 0xFFFFFFFF
    if isinstance(value, str):
        mark, _, mask = value.partition("/")
        try:
            return int(mark, 0), int(mask, 0) if mask else 0xFFFFFFFF
        except ValueError:
            pass
    raise _Fail(f"{where}: fwmark must be a number or 'MARK/MASK', not {value!r}")


def build(stack, config: Dict[str, Any], base_dir: str) -> None:
    """Add the configured routes and rules to ``stack``, and the router's functions."""
    from .net.route import NextHop, Route
    host = stack.host
    routing = config.get("routing", {})
    if "hash_policy" in routing:
        host.routes.hash_policy = routing["hash_policy"]
    if "hash_seed" in routing:
        host.routes.hash_seed = routing["hash_seed"]
    for number, table in enumerate(config.get("route", []), 1):
        prefix, length = parse_cidr(table["destination"])
        kind = table.get("type", "unicast")
        extra = {"metric": table.get("metric", 0), "type": kind}
        if "table" in table:
            extra["table"] = host.routes.table_id(table["table"])
        try:  # a gateway is checked against the connected networks only once the devices exist
            if kind != "unicast":
                host.routes.add(Route(prefix, length, **extra))
            elif "nexthops" in table:
                hops = [NextHop(_hop_interface(host, hop), _hop_gateway(hop), hop.get("weight", 1))
                        for hop in table["nexthops"]]
                host.routes.add(Route(prefix, length, nexthops=hops, **extra))
            else:
                host.routes.add(Route(prefix, length, _hop_interface(host, table), _hop_gateway(table), **extra))
        except ValueError as exc:
            raise ValueError(f"route #{number}: {exc}") from None
    for table in config.get("rule", []):
        selectors = {}
        for key, name in (("from", "src"), ("to", "dst")):
            if key in table:
                selectors[name] = parse_cidr(table[key])
        if "iif" in table:
            selectors["iif"] = table["iif"]
        if "fwmark" in table:
            selectors["fwmark"], selectors["fwmask"] = _fwmark(table["fwmark"], "")
        if "ipproto" in table:
            selectors["ipproto"] = table["ipproto"]
        for key in ("sport", "dport"):
            if key in table:
                selectors[key] = table[key]
        if table.get("not"):
            selectors["invert"] = True
        host.routes.add_rule(table.get("priority"), table.get("action", "lookup"), table.get("table", "main"),
                             **selectors)
    nf = config.get("netfilter")
    if nf is not None:
        from .netfilter.conntrack import Timeouts
        from .netfilter.router import install_router
        overrides = nf.get("timeouts")
        timeouts = (Timeouts.linux(overrides) if nf.get("conntrack_timeouts") == "linux" else Timeouts(overrides))
        path = nf.get("ruleset")
        install_router(stack, ruleset_path=os.path.join(base_dir, path) if path else None,
                       max_entries=nf.get("conntrack_max", 65536), timeouts=timeouts,
                       liberal=nf.get("tcp_liberal", False), nat_filtering=nf.get("nat_filtering", "address-and-port"),
                       flowtable=nf.get("flowtable"), checksum=nf.get("conntrack_checksum", True))


def _hop_interface(host, table: dict):
    if "interface" in table:
        return host.interfaces[table["interface"]]
    gateway = ip_to_int(table["gateway"])
    route = host.routes.lookup(gateway)
    if route is None or route.interface is None:
        raise ValueError(f"gateway {table['gateway']} is not on a connected network")
    return route.interface


def _hop_gateway(table: dict):
    return ip_to_int(table["gateway"]) if "gateway" in table else None
