"""Match expressions (``ip saddr 10.0.0.0/8``, ``tcp dport { 22, 80 }``, ``ct state new``...):
their fields, how nft prints them, and how they compile to one closure per match."""

from __future__ import annotations

from typing import Callable, List, Optional, Tuple

from . import datatypes as T
from .errors import Location

TCP, UDP, ICMP = 6, 17, 1
_CT_STATE_BITS = {"invalid": 1, "established": 2, "related": 4, "new": 8, "untracked": 64}
_CT_STATUS_BITS = T.CT_STATUS.symbols
_DIRECTIONS = {"original": 0, "reply": 1, 0: 0, 1: 1}
_PKTTYPES = {"host": 0, "broadcast": 1, "multicast": 2, "other": 3}


def _addr(value) -> int:
    """An IPv4 address as a host-order int, from an int, 4 bytes, an ipaddress object or text."""
    if value.__class__ is int:
        return value
    if isinstance(value, (bytes, bytearray, memoryview)) and len(value) == 4:
        return int.from_bytes(value, "big")
    if isinstance(value, str):
        return T.parse_ipv4(value) or 0
    try:
        return int(value)  # ipaddress.IPv4Address
    except (TypeError, ValueError):
        return 0


def _status_bits(status) -> int:
    bits = 0
    for name in status or ():
        bits |= _CT_STATUS_BITS.get(name, 0)
    return bits


class Field:
    """One thing a rule can look at: its nft spelling, datatype, the transport protocol it needs
    (its dependency, printed away by nft when implied) and how to read it from a packet."""

    __slots__ = ("name", "dtype", "proto", "source", "is_l4proto", "ipv4_only")

    def __init__(self, name: str, dtype, source: str, proto: Optional[int] = None, is_l4proto=False):
        self.ipv4_only = name.startswith("ip ")  # puts an inet rule in IPv4 context
        self.name = name
        self.dtype = dtype
        self.proto = proto
        self.source = source  # a Python expression reading the field from packet ``p``
        self.is_l4proto = is_l4proto


FIELDS = {f.name: f for f in [
    Field("ip saddr", T.IPV4, "_addr(p.ip.src)"),
    Field("ip daddr", T.IPV4, "_addr(p.ip.dst)"),
    Field("ip protocol", T.PROTOCOL, "p.ip.protocol", is_l4proto=True),
    Field("ip length", T.U16, "p.ip.total_length"),
    Field("ip ttl", T.U8, "p.ip.ttl"),
    Field("ip dscp", T.DSCP, "(p.ip.tos >> 2)"),
    Field("meta l4proto", T.PROTOCOL, "p.proto", is_l4proto=True),
    Field("meta mark", T.MARK, "p.mark"),
    Field("meta nfproto", T.NFPROTO, "2"),  # the evaluator sees IPv4 packets only
    Field("meta pkttype", T.PKTTYPE, "_PKTTYPES.get(p.pkttype, 3)"),
    Field("tcp sport", T.SERVICE, "p.sport", TCP),
    Field("tcp dport", T.SERVICE, "p.dport", TCP),
    Field("udp sport", T.SERVICE, "p.sport", UDP),
    Field("udp dport", T.SERVICE, "p.dport", UDP),
    Field("tcp flags", T.TCP_FLAGS, "p.tcp_flags", TCP),
    # th: the transport header's ports whatever the protocol (only TCP and UDP carry them here)
    Field("th sport", T.SERVICE, "(p.sport if p.proto == 6 or p.proto == 17 else -1)"),
    Field("th dport", T.SERVICE, "(p.dport if p.proto == 6 or p.proto == 17 else -1)"),
    Field("icmp type", T.ICMP_TYPE, "p.icmp_type", ICMP),
    Field("icmp code", T.ICMP_CODE, "p.icmp_code", ICMP),
    Field("ct state", T.CT_STATE, "_CT_STATE_BITS.get(p.ct_state, 0)"),
    Field("ct direction", T.CT_DIR, "_DIRECTIONS.get(p.ct_direction, 0)"),
    Field("ct status", T.CT_STATUS, "_status_bits(p.ct_status)"),
    Field("iifname", T.IFNAME, "(p.iifname or '')"),
    # iif/oif name an interface by index in the kernel; here the name stands for it (no wildcard)
    Field("iif", T.IFINDEX, "(p.iifname or '')"),
    Field("oif", T.IFINDEX, "(p.oifname or '')"),
    Field("oifname", T.IFNAME, "(p.oifname or '')"),
]}
# aliases nft accepts for the same field
FIELDS["meta iifname"] = FIELDS["iifname"]
FIELDS["meta oifname"] = FIELDS["oifname"]
FIELDS["meta iif"] = FIELDS["iif"]
FIELDS["meta oif"] = FIELDS["oif"]
FIELDS["mark"] = FIELDS["meta mark"]
FIELDS["l4proto"] = FIELDS["meta l4proto"]
FIELDS["pkttype"] = FIELDS["meta pkttype"]


class Match:
    """``FIELD [OP] VALUE``.  ``values`` is a list of (lo, hi) intervals (strings for interface
    names); ``is_set`` when written as an anonymous set ``{ ... }``; ``flags`` for a comma list of
    bitmask flags; ``mask`` for ``tcp flags syn / syn,ack`` (value under mask)."""

    __slots__ = ("field", "op", "values", "is_set", "flags", "mask", "loc", "as_range", "exact", "implicit",
                 "set_ref")

    def __init__(self, field: Field, op: str, values: List, is_set: bool = False,
                 flags: Optional[int] = None, mask: Optional[int] = None,
                 loc: Optional[Location] = None, as_range: bool = False, exact: bool = False):
        self.as_range = as_range
        self.exact = exact  # flags compared for equality though listed without "==" ({ syn })
        self.implicit = False  # a dependency nft added itself (not written in the rule)
        self.set_ref = None  # the NamedSet of "@name" (its name until the ruleset is complete)
        self.field = field
        self.op = op
        self.values = values
        self.is_set = is_set
        self.flags = flags
        self.mask = mask
        self.loc = loc

    # -- listing -----------------------------------------------------------------------------
    def format(self) -> str:
        dtype = self.field.dtype
        if self.set_ref is not None:
            name = self.set_ref if isinstance(self.set_ref, str) else self.set_ref.name
            return f"{self.field.name} {'!= ' if self.op == '!=' else ''}@{name}"
        if self.mask is not None and self.op == "!=" and self.mask == self.flags \
                and self.mask & (self.mask - 1) == 0:
            return (f"{self.field.name} & {_flag_expr(dtype, self.mask)} != "
                    f"{_flag_expr(dtype, self.flags)}")
        if self.mask is not None:
            body = f"{dtype.format(self.flags)} / {dtype.format(self.mask)}"
        elif self.flags is not None and self.op == "==" and self.flags & (self.flags - 1):
            body = f"0x{self.flags:x}"  # nft lists an exact multi-flag value in hex
        elif self.flags is not None:
            body = dtype.format(self.flags)
        elif self.is_set:
            body = "{ " + ", ".join(self._format_value(v) for v in self._sorted()) + " }"
        elif self.as_range:
            lo, hi = self.values[0]
            body = f"{dtype.format(lo)}-{dtype.format(hi)}"
        else:
            body = self._format_value(self.values[0])
        op = self.op
        if op == "==" and not dtype.bitmask:
            op = ""
        return f"{self.field.name} {op + ' ' if op else ''}{body}"

    def _sorted(self) -> List:
        return sorted(self.values)

    def _format_value(self, v) -> str:
        if self.field.dtype is T.IFNAME or self.field.dtype is T.IFINDEX:
            return '"' + v + '"'
        return self.field.dtype.format_interval(v[0], v[1])

    def implies_proto(self) -> Optional[int]:
        """The transport protocol this match pins down (``ip protocol tcp``), for dependency printing."""
        if self.field.is_l4proto and self.op in ("", "==") and not self.is_set and self.values:
            lo, hi = self.values[0]
            return lo if lo == hi else None
        return None

    # -- evaluation --------------------------------------------------------------------------
    # A match compiles to a Python expression over the packet ``p``; a rule's matches are joined
    # into one lambda at load time, so a rule costs one call per packet, not one per match.
    def source(self, env: dict) -> str:
        """A Python expression that is true when ``p`` matches.  The values it compares with go
        in ``env`` as ``_k0, _k1...``, so rules of one shape share one compiled function."""
        x = self.field.source
        op = self.op
        if self.mask is not None:
            expr = f"(({x}) & {_const(env, self.mask)}) {'!=' if op == '!=' else '=='} {_const(env, self.flags)}"
        elif self.flags is not None and self.set_ref is None:
            flags = _const(env, self.flags)
            if op == "==" or self.exact:
                expr = f"{x} == {flags}"
            elif op == "!=" or op == "!":
                expr = f"(({x}) & {flags}) == 0"
            else:
                expr = f"(({x}) & {flags}) != 0"
        else:
            expr = self._value_source(x, env)
            if op == "!=":
                expr = f"not ({expr})"
        if self.field.proto is not None:
            expr = f"p.proto == {self.field.proto} and ({expr})"
        return expr

    def _value_source(self, x: str, env: dict) -> str:
        values = self.values if self.set_ref is None else self.set_ref.elements
        if self.field.dtype is T.IFINDEX:
            if len(values) == 1:
                return f"{x} == {_const(env, values[0])}"
            return f"{x} in {_const(env, frozenset(values))}"
        if self.field.dtype is T.IFNAME:
            if self.set_ref is None and len(values) == 1 and not values[0].endswith("*"):
                return f"{x} == {_const(env, values[0])}"
            return f"{_const(env, _ifname_test(values))}({x})"
        if self.set_ref is not None:
            return f"{_const(env, _interval_test(values))}({x})"
        if self.op in ("<", ">", "<=", ">="):
            return f"{x} {self.op} {_const(env, values[0][0])}"
        if len(values) == 1:
            lo, hi = values[0]
            if lo == hi:
                return f"{x} == {_const(env, lo)}"
            return f"{_const(env, lo)} <= {x} <= {_const(env, hi)}"
        if all(lo == hi for lo, hi in values):
            return f"{x} in {_const(env, frozenset(lo for lo, _ in values))}"
        return f"{_const(env, _interval_test(values))}({x})"

    def compile(self) -> Callable:
        return compile_conjunction([self])




def _const(env: dict, value) -> str:
    name = f"_k{len(env)}"
    env[name] = value
    return name


_HELPERS = {"_addr": _addr, "_PKTTYPES": _PKTTYPES, "_CT_STATE_BITS": _CT_STATE_BITS,
            "_DIRECTIONS": _DIRECTIONS, "_status_bits": _status_bits}
# compiled function factories by source shape; bounded (shapes are few, this is a safety net)
_FACTORIES: dict = {}
MAX_FACTORIES = 4096


def _build(body: str, env: dict) -> Callable:
    """``lambda p: body`` with ``env``'s values bound.  One code object per shape of body keeps the
    per-packet calls monomorphic, which PyPy's JIT needs when a chain has hundreds of rules."""
    names = list(env)
    factory = _FACTORIES.get(body)
    if factory is None:
        namespace = dict(_HELPERS)
        exec(f"def _factory({', '.join(names)}):\n    return lambda p: {body}\n", namespace)  # noqa: S102
        factory = namespace["_factory"]
        if len(_FACTORIES) < MAX_FACTORIES:
            _FACTORIES[body] = factory
    return factory(*[env[n] for n in names])


def compile_conjunction(matches: List[Match]) -> Callable:
    """One function ``p -> bool`` that is true when every match is (built once, at load time)."""
    env: dict = {}
    # a protocol match that a later header match of this conjunction checks again is redundant
    needed = [m for i, m in enumerate(matches)
              if not (m.op == "" and m.implies_proto() is not None
                      and any(later.field.proto == m.implies_proto() for later in matches[i + 1:]))]
    body = " and ".join(f"({m.source(env)})" for m in needed) or "True"
    return _build(body, env)


def _flag_expr(dtype, value: int) -> str:
    names = dtype.format(value).split(",")
    return names[0] if len(names) == 1 else "(" + " | ".join(names) + ")"


def _interval_test(values: List[Tuple[int, int]]) -> Callable:
    singles = frozenset(lo for lo, hi in values if lo == hi)
    ranges = tuple((lo, hi) for lo, hi in values if lo != hi)
    def test(v) -> bool:
        if v in singles:
            return True
        for lo, hi in ranges:
            if lo <= v <= hi:
                return True
        return False
    return test


def _ifname_test(names: List[str]) -> Callable:
    exact = frozenset(n for n in names if not n.endswith("*"))
    prefixes = tuple(n[:-1] for n in names if n.endswith("*"))
    if not prefixes:
        return exact.__contains__
    return lambda v: v in exact or v.startswith(prefixes)


def compile_verdict_map(vmap, chains: dict) -> Callable:
    """``p -> (verdict kind, target chain) or None`` for a verdict map."""
    field = vmap.match_field
    get = _build(field.source, {})
    resolved = [(key, (v.kind, chains.get(v.target) if v.target else None)) for key, v in vmap.entries]
    if field.dtype is T.IFNAME or field.dtype is T.IFINDEX:
        wildcard = field.dtype is T.IFNAME
        exact = {k: out for k, out in resolved if not (wildcard and k.endswith("*"))}
        prefixes = [(k[:-1], out) for k, out in resolved if wildcard and k.endswith("*")]
        singles: dict = {}
        ranges: list = []
    else:
        exact, prefixes = {}, []
        singles = {k[0]: out for k, out in resolved if k[0] == k[1]}
        ranges = [(k[0], k[1], out) for k, out in resolved if k[0] != k[1]]
    proto = field.proto

    def lookup(p):
        if proto is not None and p.proto != proto:
            return None
        key = get(p)
        if exact or prefixes:
            out = exact.get(key)
            if out is None:
                for prefix, hit in prefixes:
                    if key.startswith(prefix):
                        return hit
            return out
        out = singles.get(key)
        if out is None:
            for lo, hi, hit in ranges:
                if lo <= key <= hi:
                    return hit
        return out
    return lookup
