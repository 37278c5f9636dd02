"""Parsing the statements of a rule that take arguments: limit, reject, NAT, verdict maps."""

from __future__ import annotations

from typing import TYPE_CHECKING, List

from .. import types
from . import datatypes as T
from . import symbols as S
from .cursor import Cursor
from .errors import NftError, unsupported
from .expressions import FIELDS, Field, Match
from .lexer import Token
from .dynamic import BYTE_UNITS, CtCount, Quota, SetUpdate, parse_time
from .statements import Counter, Limit, Nat, Reject, Verdict, VerdictMap
from .values import int_value, parse_element, plain_int

if TYPE_CHECKING:
    from .ruleparse import RuleContext

NAT_HOOKS = {"snat": ("postrouting", "input"), "masquerade": ("postrouting",),
             "dnat": ("prerouting", "output"), "redirect": ("prerouting", "output")}


def parse_vmap(cur: Cursor, ctx: RuleContext, field: Field, first: Token) -> VerdictMap:
    cur.next()
    cur.expect("{")
    ctx.sets += 1
    entries: List = []
    while True:
        cur.skip_separators()
        if cur.accept("}"):
            break
        key_tok = cur.peek()
        if field.dtype.bitmask:
            value = int_value(cur, field.dtype)
            key = (value, value)
        else:
            key = parse_element(cur, field.dtype)
        if not isinstance(key, str) and any(k[0] <= key[1] and key[0] <= k[1] for k, _ in entries):
            raise NftError("conflicting intervals specified", cur.span(key_tok))
        if any(k == key for k, _ in entries):
            raise NftError("duplicate element in verdict map", cur.span(key_tok))
        cur.expect(":", "colon")
        vtok = cur.word("verdict")
        if vtok.value in ("accept", "drop", "continue", "return"):
            verdict = Verdict(vtok.value, None, vtok.loc)
        elif vtok.value in ("jump", "goto"):
            target = cur.name("chain name")
            verdict = Verdict(vtok.value, target.value, target.loc)
        else:
            raise cur.unexpected("verdict", vtok)
        entries.append((key, verdict))
        cur.skip_separators()
        if cur.accept("}"):
            break
        cur.expect(",", "comma or '}'")
    if not entries:
        raise cur.unexpected()
    return VerdictMap(field, entries, cur.span(first))

def parse_limit(cur: Cursor) -> Limit:
    first = cur.next()
    cur.expect("rate")
    over = bool(cur.accept("over"))
    rate = plain_int(cur)
    if cur.at("bytes", "kbytes", "mbytes"):
        raise unsupported("byte rate limits", cur.peek().loc)
    cur.expect("/")
    unit_tok = cur.word("time unit")
    if unit_tok.value not in S.LIMIT_UNITS:
        raise NftError(f"Wrong rate format, unknown unit {unit_tok.value}", unit_tok.loc)
    if rate == 0:
        raise NftError("invalid limit rate 0", first.loc)
    burst = 0
    if cur.accept("burst"):
        burst_tok = cur.peek()
        burst = plain_int(cur)
        if burst == 0:
            raise NftError("packet limit burst must be > 0", cur.span(first).span(burst_tok.loc))
        unit = cur.word("packets")
        if unit.value != "packets":
            raise unsupported("byte burst", unit.loc)
    return Limit(rate, unit_tok.value, S.LIMIT_UNITS[unit_tok.value], over, burst, cur.span(first))

def parse_quota(cur: Cursor) -> Quota:
    """``quota [over|until] N UNIT [used N UNIT]``."""
    first = cur.next()
    over = bool(cur.accept("over"))
    if not over:
        cur.accept("until")
    limit = _bytes(cur)
    used = _bytes(cur) if cur.accept("used") else 0
    return Quota(limit, over, used, cur.span(first))


def _bytes(cur: Cursor) -> int:
    number = plain_int(cur)
    unit = cur.word("bytes, kbytes or mbytes")
    sizes = dict(BYTE_UNITS)
    if unit.value not in sizes:
        raise cur.unexpected("bytes, kbytes or mbytes", unit)
    return number * sizes[unit.value]


def parse_reject(cur: Cursor, ctx: RuleContext) -> Reject:
    first = cur.next()
    if ctx.chain_type == "nat":
        raise NftError("Could not process rule: Operation not supported", first.loc)
    if not cur.accept("with"):
        return Reject(None, 3 if ctx.family == "ip" else 1, "port-unreachable", first.loc,
                      "icmp" if ctx.family == "ip" else "icmpx")
    kind = cur.word("icmp, icmpx or tcp")
    if kind.value == "tcp":
        cur.expect("reset")
        return Reject("tcp reset", 0, "", cur.span(first))
    if kind.value not in ("icmp", "icmpx"):
        if kind.value == "icmpv6":
            raise unsupported("reject with icmpv6", kind.loc)
        raise cur.unexpected("icmp, icmpx or tcp", kind)
    if kind.value == "icmpx" and ctx.family != "inet":
        raise NftError("icmpx is only supported in inet/bridge/netdev families", kind.loc)
    cur.accept("type")
    code_tok = cur.word("reject code")
    table = S.ICMPX_CODES if kind.value == "icmpx" else S.REJECT_ICMP_CODES
    if code_tok.value not in table:
        raise NftError(f"Could not parse {kind.value} code expression", code_tok.loc)
    return Reject(kind.value, table[code_tok.value], code_tok.value, cur.span(first),
                  "icmp" if ctx.family == "ip" else "icmpx")


def _has_l4_match(items: List) -> bool:
    return any(isinstance(i, Match) and (i.field.proto is not None or i.field.is_l4proto) for i in items)

def parse_nat(cur: Cursor, ctx: RuleContext, items: List) -> Nat:
    first = cur.next()
    kind = first.value
    ip_kw = False
    if kind in ("snat", "dnat"):
        if cur.at("ip6"):
            raise unsupported(f"{kind} ip6", cur.peek().loc)
        ip_kw = bool(cur.accept("ip"))
        if ctx.family == "inet" and not ip_kw:
            if not any(isinstance(i, Match) and i.field.name.startswith("ip ") for i in items):
                raise NftError("ip or ip6 must be specified with address for inet tables.", first.loc)
            ip_kw = True  # nft lists it as "snat ip to"
        cur.expect("to")
    addr_min = addr_max = port_min = port_max = None
    ports_tok = None
    if kind in ("snat", "dnat"):
        if cur.at_kind(":"):
            raise cur.unexpected()
        addr_min = int_value(cur, T.IPV4)
        addr_max = addr_min
        if cur.accept("-"):
            hi_tok = cur.peek()
            addr_max = int_value(cur, T.IPV4)
            if addr_max < addr_min:
                raise NftError("Range has zero or negative size", hi_tok.loc)
        if cur.accept(":"):
            ports_tok = cur.peek()
            port_min, port_max = _port_range(cur, ports_tok)
    elif cur.accept("to"):
        cur.expect(":")
        ports_tok = cur.peek()
        port_min, port_max = _port_range(cur, ports_tok)
    flags = set()
    while cur.at("random", "fully-random", "persistent"):
        flags.add(cur.next().value)
        if not cur.accept(","):
            break
    if ports_tok is not None and not _has_l4_match(items):
        raise NftError("transport protocol mapping is only valid after transport protocol match",
                       cur.span(ports_tok))
    if ctx.hook is not None and (ctx.chain_type != "nat" or ctx.hook not in NAT_HOOKS[kind]):
        raise NftError("Could not process rule: Operation not supported", cur.span(first))
    spec = types.NatSpec(kind, addr_min, addr_max, port_min, port_max, frozenset(flags))
    return Nat(spec, ip_kw, cur.span(first))

def _port_range(cur: Cursor, first: Token):
    lo = int_value(cur, T.SERVICE)
    hi = lo
    if cur.accept("-"):
        hi = int_value(cur, T.SERVICE)
        if hi < lo:
            raise NftError("Range has zero or negative size", cur.span(first))
    return lo, hi


# -- stateful statements (dynamic.py) ------------------------------------------------------------

def parse_ct_count(cur: Cursor, first: Token) -> CtCount:
    over = bool(cur.accept("over"))
    limit = plain_int(cur)
    return CtCount(limit, over, cur.span(first))


def parse_set_update(cur: Cursor, ctx: RuleContext, first: Token) -> SetUpdate:
    """``add|update @SET { KEY [timeout T] [limit ...|ct count ...|counter] }``,
    ``meter NAME [size N] { ... }``."""
    cur.next()
    size = None
    if first.value == "meter":
        name = cur.name("meter name")
        if cur.accept("size"):
            size = plain_int(cur)
    else:
        at = cur.expect("@")
        name = cur.word("set name")
        at_loc = at.loc.span(name.loc)
    cur.expect("{")
    key_tok = cur.word("expression")
    key = key_tok.value
    if key in ("ip", "tcp", "udp", "icmp", "meta", "ct", "th"):
        sub = cur.word("field")
        if f"{key} {sub.value}" not in FIELDS:
            raise unsupported(f"{key} {sub.value} as a set key", sub.loc)
        key = f"{key} {sub.value}"
    if key not in FIELDS or FIELDS[key].dtype.bitmask:
        raise unsupported(f"{key} as a set key", key_tok.loc)
    if cur.at("."):
        raise unsupported("concatenated set keys", cur.peek().loc)
    timeout = None
    if cur.accept("timeout"):
        t = cur.word("time")
        timeout = parse_time(t.value, t.loc)
    stmt = None
    if cur.at("limit"):
        stmt = parse_limit(cur)
    elif cur.at("ct"):
        ct = cur.next()
        cur.expect("count")
        stmt = parse_ct_count(cur, ct)
    elif cur.at("counter"):
        cur.next()
        stmt = Counter()
    cur.expect("}", "'}'")
    update = SetUpdate("meter" if first.value == "meter" else first.value, name.value, FIELDS[key], timeout, stmt,
                       cur.span(first), size)
    if first.value != "meter":
        update.loc = at_loc  # where nft points when the set is missing
        ctx.set_refs.append(update)
    return update
