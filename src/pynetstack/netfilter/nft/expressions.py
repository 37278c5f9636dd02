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
    if value.__class__ is int:
        return value
    return T.parse_ipv4(str(value)) or 0


def _status_bits(status) -> int:
    bits = 0
    for name in status or ():
        bits |= _CT_STATUS_BITS.get(name, 0)
    return bits


class Field:
    """One thing a rule can look at: its nft spelling, datatype, the transport protocol it needs
    (its dependency, printed away by nft when implied) and how to read it from a packet."""

    __slots__ = ("name", "dtype", "proto", "get", "is_l4proto")

    def __init__(self, name: str, dtype, get: Callable, proto: Optional[int] = None, is_l4proto=False):
        self.name = name
        self.dtype = dtype
        self.proto = proto
        self.get = get
        self.is_l4proto = is_l4proto


FIELDS = {f.name: f for f in [
    Field("ip saddr", T.IPV4, lambda p: _addr(p.ip.src)),
    Field("ip daddr", T.IPV4, lambda p: _addr(p.ip.dst)),
    Field("ip protocol", T.PROTOCOL, lambda p: p.ip.protocol, is_l4proto=True),
    Field("ip length", T.U16, lambda p: p.ip.total_length),
    Field("ip ttl", T.U8, lambda p: p.ip.ttl),
    Field("ip dscp", T.DSCP, lambda p: p.ip.tos >> 2),
    Field("meta l4proto", T.PROTOCOL, lambda p: p.proto, is_l4proto=True),
    Field("meta mark", T.MARK, lambda p: p.mark),
    Field("meta pkttype", T.PKTTYPE, lambda p: _PKTTYPES.get(p.pkttype, 3)),
    Field("tcp sport", T.SERVICE, lambda p: p.sport, TCP),
    Field("tcp dport", T.SERVICE, lambda p: p.dport, TCP),
    Field("udp sport", T.SERVICE, lambda p: p.sport, UDP),
    Field("udp dport", T.SERVICE, lambda p: p.dport, UDP),
    Field("tcp flags", T.TCP_FLAGS, lambda p: p.tcp_flags, TCP),
    Field("icmp type", T.ICMP_TYPE, lambda p: p.icmp_type, ICMP),
    Field("icmp code", T.ICMP_CODE, lambda p: p.icmp_code, ICMP),
    Field("ct state", T.CT_STATE, lambda p: _CT_STATE_BITS.get(p.ct_state, 0)),
    Field("ct direction", T.CT_DIR, lambda p: _DIRECTIONS.get(p.ct_direction, 0)),
    Field("ct status", T.CT_STATUS, lambda p: _status_bits(p.ct_status)),
    Field("iifname", T.IFNAME, lambda p: p.iifname or ""),
    Field("oifname", T.IFNAME, lambda p: p.oifname or ""),
]}
# aliases nft accepts for the same field
FIELDS["meta iifname"] = FIELDS["iifname"]
FIELDS["meta oifname"] = FIELDS["oifname"]
FIELDS["mark"] = FIELDS["meta mark"]
FIELDS["l4proto"] = FIELDS["meta l4proto"]
FIELDS["pkttype"] = FIELDS["meta pkttype"]


class Match:
    """``FIELD [OP] VALUE``.  ``values`` is a list of (lo, hi) intervals (strings for interface
    names); ``is_set`` when written as an anonymous set ``{ ... }``; ``flags`` for a comma list of
    bitmask flags; ``mask`` for ``tcp flags syn / syn,ack`` (value under mask)."""

    __slots__ = ("field", "op", "values", "is_set", "flags", "mask", "loc", "as_range")

    def __init__(self, field: Field, op: str, values: List, is_set: bool = False,
                 flags: Optional[int] = None, mask: Optional[int] = None,
                 loc: Optional[Location] = None, as_range: bool = False):
        self.as_range = as_range
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
        if self.mask is not None and self.op == "!=" and self.mask == self.flags \
                and self.mask & (self.mask - 1) == 0:
            return (f"{self.field.name} & {_flag_expr(dtype, self.mask)} != "
                    f"{_flag_expr(dtype, self.flags)}")
        if self.mask is not None:
            body = f"{dtype.format(self.flags)} / {dtype.format(self.mask)}"
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
        if self.field.dtype is T.IFNAME:
            return '"' + v + '"'
        return self.field.dtype.format_interval(v[0], v[1])

    def implies_proto(self) -> Optional[int]:
        """The transport protocol this match pins down (``ip protocol tcp``), for dependency printing."""
        if self.field.is_l4proto and self.op in ("", "==") and not self.is_set and self.values:
            lo, hi = self.values[0]
            return lo if lo == hi else None
        return None

    # -- evaluation --------------------------------------------------------------------------
    def compile(self) -> Callable:
        test = self._compile_value_test()
        get = self.field.get
        proto = self.field.proto
        if proto is None:
            return lambda p: test(get(p))
        return lambda p: p.proto == proto and test(get(p))

    def _compile_value_test(self) -> Callable:
        op = self.op
        dtype = self.field.dtype
        if self.mask is not None:
            mask, want = self.mask, self.flags
            if op == "!=":
                return lambda v: (v & mask) != want
            return lambda v: (v & mask) == want
        if self.flags is not None:
            flags = self.flags
            if op == "==":
                return lambda v: v == flags
            if op == "!=":
                return lambda v: (v & flags) == 0
            return lambda v: (v & flags) != 0
        if dtype is T.IFNAME:
            inside = _ifname_test(self.values)
        else:
            inside = _interval_test(self.values, op)
        if op == "!=":
            return lambda v: not inside(v)
        return inside


def _flag_expr(dtype, value: int) -> str:
    names = dtype.format(value).split(",")
    return names[0] if len(names) == 1 else "(" + " | ".join(names) + ")"


def _interval_test(values: List[Tuple[int, int]], op: str) -> Callable:
    if op in ("<", ">", "<=", ">="):
        bound = values[0][0]
        return {"<": lambda v: v < bound, ">": lambda v: v > bound,
                "<=": lambda v: v <= bound, ">=": lambda v: v >= bound}[op]
    singles = frozenset(lo for lo, hi in values if lo == hi)
    ranges = tuple((lo, hi) for lo, hi in values if lo != hi)
    if not ranges:
        if len(singles) == 1:
            (one,) = singles
            return lambda v: v == one
        return singles.__contains__
    if not singles and len(ranges) == 1:
        ((lo, hi),) = ranges
        return lambda v: lo <= v <= hi

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
