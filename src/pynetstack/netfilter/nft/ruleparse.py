"""Parsing one rule: its matches, statements and verdict, into the model objects."""

from __future__ import annotations

from typing import List, Optional, Tuple

from . import datatypes as T
from . import symbols as S
from .cursor import Cursor
from .errors import Location, NftError, unsupported
from .expressions import FIELDS, Field, Match
from .lexer import Token
from .statements import Counter, Log, MarkSet, TraceSet, Verdict
from .concat import concat_field, parse_concat_element
from .dynamic import DscpSet
from .stmtparse import (NAT_HOOKS, parse_ct_count, parse_limit, parse_nat, parse_quota, parse_reject, parse_set_update,
                        parse_vmap)
from .values import int_value, merge_elements, one_element_set, parse_element, parse_flag_list, plain_int

RULE_END = ("nl", ";", "}", "eof")
LOG_LEVELS = ("emerg", "alert", "crit", "err", "warn", "notice", "info", "debug", "audit")
MATCH_OPS = ("==", "!=", "<", ">", "<=", ">=")
# keys of the supported payload/meta/ct expressions, by their first word
SUBKEYS = {
    "ip": ("saddr", "daddr", "protocol", "length", "ttl", "dscp"),
    "tcp": ("sport", "dport", "flags"),
    "udp": ("sport", "dport"),
    "icmp": ("type", "code"),
    "meta": ("l4proto", "mark", "pkttype", "iifname", "oifname", "nfproto", "iif", "oif"),
    "ct": ("state", "direction", "status"),
}
# words nft knows as the start of an expression or statement that pynetstack does not implement
KNOWN_UNSUPPORTED = {
    "ip6", "ether", "arp", "vlan", "sctp", "dccp", "icmpv6", "igmp", "fib", "rt",
    "notrack", "queue", "set", "update", "add", "delete", "dup", "fwd", "tproxy", "synproxy",
    "numgen", "jhash", "symhash", "osf", "socket", "exthdr", "tcpopt", "ipsec", "hbh", "rt0",
    "frag", "dst", "mh", "ah", "esp", "comp", "udplite", "gre", "geneve", "vxlan", "ip6ext",
    "comment", "flow", "secmark", "objref", "iiftype", "oiftype", "skuid", "skgid",
    "nfproto", "priority", "length", "protocol", "cpu", "cgroup", "rtclassid", "ibrname", "obrname",
    "time", "day", "hour", "sdif", "sdifname", "random", "iifgroup", "oifgroup",
    "xt", "last",
}
class RuleContext:
    """What the rule parser needs to know about where the rule goes."""

    def __init__(self, family: str, chain_type: Optional[str], hook: Optional[str]):
        self.family = family
        self.chain_type = chain_type
        self.hook = hook
        self.sets = 0  # anonymous sets used (each takes a handle in the kernel)
        self.set_refs: List[Match] = []  # "@name" matches to resolve
        self.comment: Optional[str] = None  # the rule's trailing comment "..."


def parse_rule(cur: Cursor, ctx: RuleContext) -> Tuple[List, Location]:
    first = cur.peek()
    items: List = []
    comment = None
    while not cur.at_kind(*RULE_END):
        if cur.at("comment") and items:
            cur.next()
            text = cur.peek()
            if text.kind != "string":
                raise cur.unexpected("quoted string")
            cur.next()
            if len(text.value) > 128:
                raise NftError("comment too long, 128 characters maximum allowed", text.loc)
            comment = text.value
            if not cur.at_kind(*RULE_END):
                raise cur.unexpected("newline or semicolon")
            break
        items.append(_parse_item(cur, ctx, items))
    if not items:
        raise cur.unexpected()
    _merge_payloads(items)
    ctx.comment = comment
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
    after = cur.peek(1)
    if w == "ct" and after.kind == "word" and after.value == "count":
        cur.next(), cur.next()
        return parse_ct_count(cur, tok)
    if w == "ip" and after.kind == "word" and after.value == "dscp" and cur.peek(2).kind == "word" \
            and cur.peek(2).value == "set":
        cur.next(), cur.next(), cur.next()
        return DscpSet(int_value(cur, T.DSCP), cur.span(tok))
    if w in ("add", "update") and after.kind == "@":
        return parse_set_update(cur, ctx, tok)
    if w == "meter":
        return parse_set_update(cur, ctx, tok)
    if w in SUBKEYS:
        if w == "meta" and cur.peek(1).kind == "word" and cur.peek(1).value == "mark" \
                and cur.peek(2).kind == "word" and cur.peek(2).value == "set":
            cur.next(), cur.next(), cur.next()
            return MarkSet(int_value(cur, T.MARK), cur.span(tok))
        if w == "meta" and cur.peek(1).kind == "word" and cur.peek(1).value == "nftrace" \
                and cur.peek(2).kind == "word" and cur.peek(2).value == "set":
            cur.next(), cur.next(), cur.next()
            value = cur.peek()
            if value.value not in ("0", "1"):
                raise cur.unexpected("0 or 1")
            cur.next()
            return TraceSet(value.value == "1", cur.span(tok))
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
        if cur.at("."):
            return _parse_concat_match(cur, ctx, field, tok, items)
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
    if w in ("iifname", "oifname", "iif", "oif"):
        cur.next()
        return _parse_match(cur, ctx, FIELDS[w], tok)
    if w == "counter":
        cur.next()
        packets = nbytes = 0
        if cur.accept("packets"):
            packets = plain_int(cur)
            cur.expect("bytes")
            nbytes = plain_int(cur)
        return Counter(packets, nbytes, cur.span(tok))
    if w == "log":
        cur.next()
        prefix = None
        level = "warn"
        while cur.at("prefix", "level", "group", "snaplen", "queue-threshold", "flags"):
            opt = cur.next()
            if opt.value == "level":
                lvl = cur.word("log level")
                if lvl.value not in LOG_LEVELS:
                    raise NftError(f"invalid log level: {lvl.value}", lvl.loc)
                level = lvl.value
                continue
            if opt.value != "prefix":
                raise unsupported(f"log {opt.value}", opt.loc)
            s = cur.peek()
            if s.kind != "string":
                raise cur.unexpected("quoted string")
            cur.next()
            prefix = s.value
        return Log(prefix, cur.span(tok), level)
    if w == "limit":
        return parse_limit(cur)
    if w == "quota":
        return parse_quota(cur)
    if w in ("accept", "drop", "continue", "return"):
        cur.next()
        return Verdict(w, None, tok.loc)
    if w in ("jump", "goto"):
        cur.next()
        target = cur.name("chain name")
        return Verdict(w, target.value, target.loc)
    if w == "reject":
        stmt = parse_reject(cur, ctx)
        if stmt.how == "tcp reset":
            # nft ignores an "ip protocol" it has no header description for (gre, 47...)
            known = [i for i in items if isinstance(i, Match) and not (
                i.field.name == "ip protocol" and i.implies_proto() not in S.KNOWN_L4 and not i.is_set)]
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
        return parse_nat(cur, ctx, items)
    if w in KNOWN_UNSUPPORTED or w in ("mark",):
        raise unsupported(w, tok.loc)
    raise cur.unexpected()


# -- matches -------------------------------------------------------------------------------------

def _parse_match(cur: Cursor, ctx: RuleContext, field: Field, first: Token):
    dtype = field.dtype
    if cur.at("vmap"):
        return parse_vmap(cur, ctx, field, first)
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
        if op in ("<", ">", "<=", ">=") and (dtype.bitmask or dtype in (T.IFNAME, T.IFINDEX) or cur.at_kind("{")):
            raise NftError(f"Relational expression {op} is not supported here", cur.peek().loc)
    if dtype.bitmask:
        return _parse_bitmask_match(cur, ctx, field, op, first)
    if cur.at_kind("{") and not one_element_set(cur):
        values = merge_elements(_parse_set(cur, ctx, dtype), dtype)
        return Match(field, op, values, True, loc=cur.span(first))
    braced = bool(cur.accept("{"))  # nft turns a one-element set into a plain comparison
    if braced:
        cur.skip_separators()
    before = cur.pos
    value = parse_element(cur, dtype)
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
        values.append(parse_element(cur, dtype))
        cur.skip_separators()
        if cur.accept("}"):
            break
        cur.expect(",", "comma or '}'")
    if not values:
        raise cur.unexpected()
    return values


def _parse_bitmask_match(cur: Cursor, ctx: RuleContext, field: Field, op: str, first: Token) -> Match:
    dtype = field.dtype
    if not op and cur.accept("!"):
        op = "!"  # "tcp flags ! syn": none of these flags set
    if cur.accept("&"):  # tcp flags & (syn|ack) == syn
        if op:
            raise cur.unexpected()
        paren = cur.accept("(")
        mask = parse_flag_list(cur, dtype, "|")
        if paren:
            cur.expect(")")
        op_tok = cur.peek()
        if op_tok.kind not in ("==", "!="):
            raise cur.unexpected("'==' or '!='")
        cur.next()
        value = parse_flag_list(cur, dtype, "|") if not cur.at_kind("(") else _paren_flags(cur, dtype)
        if value == 0:  # "& (fin|syn) != 0" is the flag test "fin,syn"; "== 0" is "! fin,syn"
            return Match(field, "!" if op_tok.kind == "==" else "", [], flags=mask, loc=cur.span(first))
        return Match(field, "" if op_tok.kind == "==" else "!=", [], flags=value, mask=mask, loc=cur.span(first))
    if cur.at_kind("{"):
        one = one_element_set(cur)
        values = merge_elements(_parse_set(cur, ctx, dtype), dtype)
        if one:  # a one-element set is a plain comparison, listed without "=="
            return Match(field, op, [], flags=values[0][0], loc=cur.span(first), exact=op != "!=")
        return Match(field, op, values, True, loc=cur.span(first))
    value = parse_flag_list(cur, dtype)
    if cur.accept("/"):
        mask = parse_flag_list(cur, dtype)
        return Match(field, op, [], flags=value, mask=mask, loc=cur.span(first))
    return Match(field, op, [], flags=value, loc=cur.span(first))


def _paren_flags(cur: Cursor, dtype) -> int:
    cur.expect("(")
    value = parse_flag_list(cur, dtype, "|")
    cur.expect(")")
    return value


# -- protocol context ----------------------------------------------------------------------------

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
            if item.field.name == "ip protocol" and not item.is_set and protos[0] not in S.KNOWN_L4:
                continue  # nft has no header description for it and ignores it here
        else:
            continue
        others = [p for p in protos if p != field.proto]
        if others:
            name = S.PROTOCOL_NAMES.get(others[0], "unknown") if others[0] in S.KNOWN_L4 else "unknown"
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
                if item.is_set or protos[0] in S.KNOWN_L4:
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


def _parse_concat_match(cur: Cursor, ctx: RuleContext, first_field: Field, first: Token, items: List) -> Match:
    """``ip saddr . tcp dport [==|!=] (VALUE | { VALUE, ... } | @set)``, VALUE ``a . b``."""
    fields = [first_field]
    while cur.at("."):
        cur.next()
        word = cur.word("expression")
        if word.value in ("iifname", "oifname"):
            fields.append(FIELDS[word.value])
            continue
        key = cur.word("field")
        name = f"{word.value} {key.value}"
        if word.value not in SUBKEYS or key.value not in SUBKEYS[word.value] or name not in FIELDS \
                or FIELDS[name].dtype.bitmask:
            raise unsupported(f"{name} in a concatenation", cur.span(word))
        part = FIELDS[name]
        if part.proto is not None:
            _check_protocol_conflict(items + [Match(f, "", [], loc=first.loc) for f in fields], part, word.value,
                                     word.loc.span(key.loc))
            if not any(isinstance(i, Match) and (i.field.proto is not None or i.field.is_l4proto) for i in items) \
                    and not any(f.proto is not None for f in fields):
                dep = Match(FIELDS["meta l4proto"], "", [(part.proto, part.proto)], loc=word.loc)
                dep.implicit = True
                items.append(dep)
        fields.append(part)
    field = concat_field(fields)
    concat_loc = cur.span(first)
    dtype = field.dtype
    op = ""
    if cur.peek().kind in ("==", "!="):
        op = cur.next().kind
    if cur.at_kind("@"):
        at = cur.next()
        name_tok = cur.word("set name")
        m = Match(field, op, [], loc=at.loc.span(name_tok.loc))
        m.set_ref = name_tok.value
        ctx.set_refs.append(m)
        return m
    if cur.accept("{"):
        ctx.sets += 1
        values: List = []
        while True:
            cur.skip_separators()
            if cur.accept("}"):
                break
            value = parse_concat_element(cur, dtype, parse_element)
            if value not in values:
                values.append(value)
            cur.skip_separators()
            if cur.accept("}"):
                break
            cur.expect(",", "comma or '}'")
        if not values:
            raise cur.unexpected()
        return Match(field, op, values, True, loc=cur.span(first))
    raise NftError("Use concatenations with sets and maps, not singleton values", concat_loc)

