"""Parsing one rule: its matches, statements and verdict, into the model objects."""

from __future__ import annotations

from typing import List, Optional, Tuple

from .. import types
from . import datatypes as T
from . import symbols as S
from .cursor import Cursor
from .errors import Location, NftError, unsupported
from .expressions import FIELDS, Field, Match
from .lexer import Token
from .statements import Counter, Limit, Log, MarkSet, Nat, Reject, Verdict, VerdictMap

RULE_END = ("nl", ";", "}", "eof")
MATCH_OPS = ("==", "!=", "<", ">", "<=", ">=")
# keys of the supported payload/meta/ct expressions, by their first word
SUBKEYS = {
    "ip": ("saddr", "daddr", "protocol", "length", "ttl", "dscp"),
    "tcp": ("sport", "dport", "flags"),
    "udp": ("sport", "dport"),
    "icmp": ("type", "code"),
    "meta": ("l4proto", "mark", "pkttype", "iifname", "oifname", "nfproto"),
    "ct": ("state", "direction", "status"),
}
# words nft knows as the start of an expression or statement that pynetstack does not implement
KNOWN_UNSUPPORTED = {
    "ip6", "ether", "arp", "vlan", "sctp", "dccp", "icmpv6", "igmp", "fib", "rt", "quota",
    "notrack", "queue", "set", "update", "add", "delete", "dup", "fwd", "tproxy", "synproxy",
    "numgen", "jhash", "symhash", "osf", "socket", "exthdr", "tcpopt", "ipsec", "hbh", "rt0",
    "frag", "dst", "mh", "ah", "esp", "comp", "udplite", "gre", "geneve", "vxlan", "ip6ext",
    "comment", "flow", "secmark", "objref", "iif", "oif", "iiftype", "oiftype", "skuid", "skgid",
    "nfproto", "priority", "length", "protocol", "cpu", "cgroup", "rtclassid", "ibrname", "obrname",
    "time", "day", "hour", "sdif", "sdifname", "random", "nftrace", "iifgroup", "oifgroup",
    "xt", "last",
}
NAT_HOOKS = {"snat": ("postrouting", "input"), "masquerade": ("postrouting",),
             "dnat": ("prerouting", "output"), "redirect": ("prerouting", "output")}


class RuleContext:
    """What the rule parser needs to know about where the rule goes."""

    def __init__(self, family: str, chain_type: Optional[str], hook: Optional[str]):
        self.family = family
        self.chain_type = chain_type
        self.hook = hook
        self.sets = 0  # anonymous sets used (each takes a handle in the kernel)
        self.set_refs: List[Match] = []  # "@name" matches to resolve


def parse_rule(cur: Cursor, ctx: RuleContext) -> Tuple[List, Location]:
    first = cur.peek()
    items: List = []
    while not cur.at_kind(*RULE_END):
        items.append(_parse_item(cur, ctx, items))
    if not items:
        raise cur.unexpected()
    _merge_payloads(items)
    return items, cur.span(first)


# pairs of adjacent header fields nft merges into one comparison when both are compared for
# equality with one value; the pair then sits where the anchor (first name) was in the rule
MERGED_PAIRS = (("tcp sport", "tcp dport"), ("udp sport", "udp dport"), ("icmp type", "icmp code"),
                ("ip protocol", "ip ttl"))
OFFSET_ORDER = {"ip ttl": 0, "ip protocol": 1}


def _merge_payloads(items: List) -> None:
    """Reorder like nft's payload merging, which moves the pair (in header order) to the anchor."""
    for anchor, other in MERGED_PAIRS:
        where = {}
        for i, item in enumerate(items):
            if isinstance(item, Match) and item.field.name in (anchor, other):
                where.setdefault(item.field.name, []).append(i)
        if len(where.get(anchor, ())) != 1 or len(where.get(other, ())) != 1:
            continue
        a, b = items[where[anchor][0]], items[where[other][0]]
        if not (_mergeable(a) and _mergeable(b)):
            continue
        pair = sorted((a, b), key=lambda m: OFFSET_ORDER.get(m.field.name, m.field.name != anchor))
        pos = where[anchor][0] - (1 if where[other][0] < where[anchor][0] else 0)
        rest = [i for i in items if i is not a and i is not b]
        items[:] = rest[:pos] + pair + rest[pos:]


def _mergeable(m: Match) -> bool:
    return (m.op in ("", "==") and not m.is_set and m.mask is None and m.flags is None and len(m.values) == 1
            and m.values[0][0] == m.values[0][1])


def _parse_item(cur: Cursor, ctx: RuleContext, items: List):
    tok = cur.peek()
    if tok.kind != "word":
        raise cur.unexpected()
    w = tok.value
    if w in SUBKEYS:
        if w == "meta" and cur.peek(1).kind == "word" and cur.peek(1).value == "mark" \
                and cur.peek(2).kind == "word" and cur.peek(2).value == "set":
            cur.next(), cur.next(), cur.next()
            return MarkSet(_int_value(cur, T.MARK), cur.span(tok))
        cur.next()
        key = cur.peek()
        if key.kind != "word":
            raise cur.unexpected()
        if key.value not in SUBKEYS[w]:
            if w == "ip" and key.value in ("saddr", "daddr", "protocol", "length", "ttl", "dscp",
                                            "version", "hdrlength", "ecn", "id", "frag-off", "checksum"):
                raise unsupported(f"ip {key.value}", key.loc)
            raise unsupported(f"{w} {key.value}", key.loc)
        cur.next()
        field = FIELDS[f"{w} {key.value}"]
        if field.proto is not None:
            _check_protocol_conflict(items, field, w, tok.loc.span(key.loc))
            if not any(isinstance(i, Match) and (i.field.proto is not None or i.field.is_l4proto)
                       for i in items):
                # nft puts the header's dependency in the rule; the listing drops it again
                # unless a statement ends up between the two (see _merge_payloads)
                dep = Match(FIELDS["meta l4proto"], "", [(field.proto, field.proto)], loc=tok.loc)
                dep.implicit = True
                items.append(dep)
        return _parse_match(cur, ctx, field, tok)
    if w == "th":
        cur.next()
        key = cur.word("sport or dport")
        if key.value not in ("sport", "dport"):
            raise unsupported(f"th {key.value}", key.loc)
        context = _protocol_context(items)
        if context is not None and len(context) == 1 and context[0] in (6, 17):
            # with the protocol known, nft treats (and lists) th as that protocol's header
            name = S.PROTOCOL_NAMES[context[0]]
            return _parse_match(cur, ctx, FIELDS[f"{name} {key.value}"], tok)
        return _parse_match(cur, ctx, FIELDS[f"th {key.value}"], tok)
    if w in ("iifname", "oifname"):
        cur.next()
        return _parse_match(cur, ctx, FIELDS[w], tok)
    if w == "counter":
        cur.next()
        packets = nbytes = 0
        if cur.accept("packets"):
            packets = _plain_int(cur)
            cur.expect("bytes")
            nbytes = _plain_int(cur)
        return Counter(packets, nbytes, cur.span(tok))
    if w == "log":
        cur.next()
        prefix = None
        while cur.at("prefix", "level", "group", "snaplen", "queue-threshold", "flags"):
            opt = cur.next()
            if opt.value != "prefix":
                raise unsupported(f"log {opt.value}", opt.loc)
            s = cur.peek()
            if s.kind != "string":
                raise cur.unexpected("quoted string")
            cur.next()
            prefix = s.value
        return Log(prefix, cur.span(tok))
    if w == "limit":
        return _parse_limit(cur)
    if w in ("accept", "drop", "continue", "return"):
        cur.next()
        return Verdict(w, None, tok.loc)
    if w in ("jump", "goto"):
        cur.next()
        target = cur.name("chain name")
        return Verdict(w, target.value, target.loc)
    if w == "reject":
        stmt = _parse_reject(cur, ctx)
        if stmt.how == "tcp reset":
            # nft ignores an "ip protocol" it has no header description for (gre, 47...)
            known = [i for i in items if isinstance(i, Match) and not (
                i.field.name == "ip protocol" and i.implies_proto() not in KNOWN_L4 and not i.is_set)]
            last = [i for i in known if i.field.proto is not None or i.field.is_l4proto][-1:]
            if any((i.field.proto or 6) != 6 or (i.field.is_l4proto and i.implies_proto() != 6)
                   for i in last):
                raise NftError("you cannot use tcp reset with this protocol", tok.loc)
            if _rule_proto(known) is None:
                # nft adds the dependency itself, first in the rule (the listing may drop it again)
                items.insert(0, Match(FIELDS["meta l4proto"], "", [(6, 6)], loc=stmt.loc))
        elif ctx.family == "inet":
            # IPv4 context: an ip match, or an icmp match whose dependencies nft added itself
            ipv4_only = any(isinstance(i, Match) and (i.field.ipv4_only or (i.implicit and i.values == [(1, 1)]))
                            for i in items)
            icmp_l4 = any(isinstance(i, Match) and ((i.field.is_l4proto and i.implies_proto() == 1)
                                                    or i.field.name == "meta nfproto") for i in items)
            if stmt.how == "icmp" and not ipv4_only and not icmp_l4:
                # an icmp reject is IPv4-only: nft adds "meta nfproto ipv4" first in the rule
                items.insert(0, Match(FIELDS["meta nfproto"], "", [(2, 2)], loc=stmt.loc))
            elif stmt.how == "icmpx" and stmt.code == 1 and ipv4_only:
                stmt.how, stmt.code = "icmp", 3  # after an IPv4 match nft rejects with plain icmp
        return stmt
    if w in NAT_HOOKS:
        return _parse_nat(cur, ctx, items)
    if w in KNOWN_UNSUPPORTED or w in ("mark",):
        raise unsupported(w, tok.loc)
    raise cur.unexpected()


# -- matches -------------------------------------------------------------------------------------

def _parse_match(cur: Cursor, ctx: RuleContext, field: Field, first: Token):
    dtype = field.dtype
    if cur.at("vmap"):
        return _parse_vmap(cur, ctx, field, first)
    if cur.at("set"):
        raise unsupported(f"{field.name} set", cur.span(first).span(cur.peek().loc))
    op = ""
    if cur.peek().kind in MATCH_OPS:
        op = cur.next().kind
    if cur.at_kind("@"):  # a named set, resolved once the whole ruleset is read
        at = cur.next()
        name = cur.word("set name")
        if op not in ("", "==", "!="):
            raise NftError(f"Relational expression {op} is not supported here", at.loc)
        m = Match(field, op, [], loc=at.loc.span(name.loc))
        m.set_ref = name.value
        ctx.set_refs.append(m)
        return m
    if cur.peek().kind in MATCH_OPS:
        raise cur.unexpected()
    if op:
        if op in ("<", ">", "<=", ">=") and (dtype.bitmask or dtype is T.IFNAME or cur.at_kind("{")):
            raise NftError(f"Relational expression {op} is not supported here", cur.peek().loc)
    if dtype.bitmask:
        return _parse_bitmask_match(cur, ctx, field, op, first)
    if cur.at_kind("{") and not _one_element_set(cur):
        values = _merge(_parse_set(cur, ctx, dtype), dtype)
        return Match(field, op, values, True, loc=cur.span(first))
    braced = bool(cur.accept("{"))  # nft turns a one-element set into a plain comparison
    if braced:
        cur.skip_separators()
    before = cur.pos
    value = _parse_element(cur, dtype)
    if op in ("<", ">", "<=", ">=") and value[0] != value[1]:
        raise NftError(f"Relational expression {op} needs a single value", cur.span(first))
    as_range = dtype is T.IPV4 and any(t.kind == "-" for t in cur.tokens[before:cur.pos])
    if braced:
        cur.skip_separators()
        cur.accept(",")
        cur.skip_separators()
        cur.expect("}", "comma or '}'")
    return Match(field, op, [value], False, loc=cur.span(first), as_range=as_range)


def _parse_set(cur: Cursor, ctx: RuleContext, dtype) -> List:
    cur.expect("{")
    ctx.sets += 1
    values = []
    while True:
        cur.skip_separators()
        if cur.accept("}"):
            break
        values.append(_parse_element(cur, dtype))
        cur.skip_separators()
        if cur.accept("}"):
            break
        cur.expect(",", "comma or '}'")
    if not values:
        raise cur.unexpected()
    return values


def _one_element_set(cur: Cursor) -> bool:
    """Whether the ``{`` at the cursor opens a set written with exactly one element."""
    depth, commas, i = 0, 0, 0
    while True:
        tok = cur.peek(i)
        if tok.kind == "eof":
            return False
        if tok.kind == "{":
            depth += 1
        elif tok.kind == "}":
            depth -= 1
            if depth == 0:
                nonsep = [cur.peek(j) for j in range(1, i) if cur.peek(j).kind not in ("nl", ";")]
                return commas == 0 or (commas == 1 and nonsep and nonsep[-1].kind == ",")
        elif tok.kind == "," and depth == 1:
            commas += 1
        i += 1


def _merge(values: List, dtype) -> List:
    """nft merges the elements of an interval set that touch or overlap ({ 1-2, 3 } is { 1-3 })."""
    if dtype is T.IFNAME or all(lo == hi for lo, hi in values):
        return list(dict.fromkeys(values))  # the kernel keeps one of each element
    out: List = []
    for lo, hi in sorted(values):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return out


def parse_element(cur: Cursor, dtype):
    """One value, range or prefix of ``dtype`` (shared with named set declarations)."""
    return _parse_element(cur, dtype)


def _parse_element(cur: Cursor, dtype):
    tok = cur.peek()
    if dtype is T.IFNAME:
        if tok.kind not in ("string", "word"):
            raise cur.unexpected("string")
        cur.next()
        if len(tok.value) >= 16:
            raise NftError("Interface name too long", tok.loc)
        return tok.value
    lo = _int_value(cur, dtype)
    if dtype is T.IPV4 and cur.accept("/"):
        plen_tok = cur.peek()
        plen = T.parse_int(plen_tok.value) if plen_tok.kind == "word" else None
        if plen is None:
            raise cur.unexpected("number")
        cur.next()
        if plen > 32:
            raise NftError(f"Prefix length {plen} is invalid for type of 32 bits width", tok.loc.span(plen_tok.loc))
        host = (1 << (32 - plen)) - 1
        return (lo & ~host, (lo & ~host) | host)
    if cur.accept("-"):
        hi_tok = cur.peek()
        hi = _int_value(cur, dtype)
        if hi < lo:
            raise NftError("Range has zero or negative size", tok.loc.span(hi_tok.loc))
        return (lo, hi)
    return (lo, lo)


def _int_value(cur: Cursor, dtype) -> int:
    tok = cur.peek()
    if tok.kind != "word":
        raise cur.unexpected()
    cur.next()
    return dtype.parse(tok.value, tok.loc)


def _plain_int(cur: Cursor) -> int:
    tok = cur.peek()
    value = T.parse_int(tok.value) if tok.kind == "word" else None
    if value is None:
        raise cur.unexpected("number")
    cur.next()
    return value


def _parse_flag_list(cur: Cursor, dtype, sep: str = ",") -> int:
    """``syn,ack`` or ``syn|ack`` (nft takes either between flags)."""
    value = _int_value(cur, dtype)
    while cur.accept(sep) or cur.accept("|"):
        value |= _int_value(cur, dtype)
    return value


def _parse_bitmask_match(cur: Cursor, ctx: RuleContext, field: Field, op: str, first: Token) -> Match:
    dtype = field.dtype
    if not op and cur.accept("!"):
        op = "!"  # "tcp flags ! syn": none of these flags set
    if cur.accept("&"):  # tcp flags & (syn|ack) == syn
        if op:
            raise cur.unexpected()
        paren = cur.accept("(")
        mask = _parse_flag_list(cur, dtype, "|")
        if paren:
            cur.expect(")")
        op_tok = cur.peek()
        if op_tok.kind not in ("==", "!="):
            raise cur.unexpected("'==' or '!='")
        cur.next()
        value = _parse_flag_list(cur, dtype, "|") if not cur.at_kind("(") else _paren_flags(cur, dtype)
        if value == 0:  # "& (fin|syn) != 0" is the flag test "fin,syn"; "== 0" is "! fin,syn"
            return Match(field, "!" if op_tok.kind == "==" else "", [], flags=mask, loc=cur.span(first))
        return Match(field, "" if op_tok.kind == "==" else "!=", [], flags=value, mask=mask, loc=cur.span(first))
    if cur.at_kind("{"):
        one = _one_element_set(cur)
        values = _merge(_parse_set(cur, ctx, dtype), dtype)
        if one:  # a one-element set is a plain comparison, listed without "=="
            return Match(field, op, [], flags=values[0][0], loc=cur.span(first), exact=op != "!=")
        return Match(field, op, values, True, loc=cur.span(first))
    value = _parse_flag_list(cur, dtype)
    if cur.accept("/"):
        mask = _parse_flag_list(cur, dtype)
        return Match(field, op, [], flags=value, mask=mask, loc=cur.span(first))
    return Match(field, op, [], flags=value, loc=cur.span(first))


def _paren_flags(cur: Cursor, dtype) -> int:
    cur.expect("(")
    value = _parse_flag_list(cur, dtype, "|")
    cur.expect(")")
    return value


def _parse_vmap(cur: Cursor, ctx: RuleContext, field: Field, first: Token) -> VerdictMap:
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
            value = _int_value(cur, field.dtype)
            key = (value, value)
        else:
            key = _parse_element(cur, field.dtype)
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


# -- statements ----------------------------------------------------------------------------------

def _parse_limit(cur: Cursor) -> Limit:
    first = cur.next()
    cur.expect("rate")
    over = bool(cur.accept("over"))
    rate = _plain_int(cur)
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
        burst = _plain_int(cur)
        if burst == 0:
            raise NftError("packet limit burst must be > 0", cur.span(first).span(burst_tok.loc))
        unit = cur.word("packets")
        if unit.value != "packets":
            raise unsupported("byte burst", unit.loc)
    return Limit(rate, unit_tok.value, S.LIMIT_UNITS[unit_tok.value], over, burst, cur.span(first))


def _parse_reject(cur: Cursor, ctx: RuleContext) -> Reject:
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


# transport protocols nft 1.0 knows the headers of (its protocol descriptions)
KNOWN_L4 = {1, 2, 6, 17, 33, 50, 51, 108, 132, 136}


def _check_protocol_conflict(items: List, field: Field, word: str, loc: Location) -> None:
    """nft refuses a header match when any earlier protocol match in the rule names another
    transport protocol (it names the first such one)."""
    for item in items:
        if not isinstance(item, Match):
            continue
        if item.field.proto is not None:
            protos = [item.field.proto]
        elif item.field.is_l4proto and item.op in ("", "=="):
            protos = [lo for lo, hi in sorted(item.values) if lo == hi]
            if item.field.name == "ip protocol" and not item.is_set and protos[0] not in KNOWN_L4:
                continue  # nft has no header description for it and ignores it here
        else:
            continue
        others = [p for p in protos if p != field.proto]
        if others:
            name = S.PROTOCOL_NAMES.get(others[0], "unknown") if others[0] in KNOWN_L4 else "unknown"
            raise NftError(f"conflicting protocols specified: {name} vs. {word}", loc)


def _protocol_context(items: List) -> Optional[List[int]]:
    """The transport protocols nft believes the rule is on: set by header matches and
    ``ip protocol`` (the latest wins), by ``meta l4proto`` only while nothing else set it."""
    context = None  # a list of protocol numbers
    for item in items:
        if not isinstance(item, Match):
            continue
        if item.field.proto is not None:
            context = [item.field.proto]
        elif item.field.is_l4proto and item.op in ("", "=="):
            protos = [lo for lo, hi in sorted(item.values) if lo == hi]
            if item.field.name == "ip protocol":
                if item.is_set or protos[0] in KNOWN_L4:
                    context = protos
            elif context is None:
                context = protos
    return context


def _rule_proto(items: List) -> Optional[int]:
    """The transport protocol the rule's earlier matches pin down, if any."""
    for item in items:
        if isinstance(item, Match):
            if item.field.proto is not None:
                return item.field.proto
            proto = item.implies_proto()
            if proto is not None:
                return proto
    return None


def _has_l4_match(items: List) -> bool:
    return any(isinstance(i, Match) and (i.field.proto is not None or i.field.is_l4proto) for i in items)


def _parse_nat(cur: Cursor, ctx: RuleContext, items: List) -> Nat:
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
        addr_min = _int_value(cur, T.IPV4)
        addr_max = addr_min
        if cur.accept("-"):
            hi_tok = cur.peek()
            addr_max = _int_value(cur, T.IPV4)
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
    lo = _int_value(cur, T.SERVICE)
    hi = lo
    if cur.accept("-"):
        hi = _int_value(cur, T.SERVICE)
        if hi < lo:
            raise NftError("Range has zero or negative size", cur.span(first))
    return lo, hi
