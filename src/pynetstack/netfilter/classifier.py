"""A classifier whose cost does not grow with the rule count: each chain is compiled, once, into
lookups that name the few rules a packet could match; only those are evaluated, in rule order.

How it stays exact: a rule's leading matches (``Rule.test``) are pure and read fields the chain
cannot change (addresses, protocol, ports, ICMP type, interface names; never the mark, which a
rule may set).  For each rule one of those matches is chosen as its *key* (the most selective:
the smallest share of its field's space), and the rule is filed under the key's values:

- a field whose keys are all single values gets a hash table ``value -> rule numbers``;
- a field with ranges or prefixes gets an interval index: sorted boundaries of elementary
  segments, each segment holding the rules whose key covers it (one bisect per packet);
- a rule without a usable key (no leading match, ``!=``, flags, ``@set``, wide ranges) goes to
  the chain's *wildcard* list, checked for every packet.

For a packet, the candidates are the union of the hits of every field index and the wildcard
list, in rule order; a rule left out is one whose ``test`` is certainly false, so skipping it
changes nothing (it would be skipped by the linear evaluator too, with no side effect).  The
evaluation of the candidates is then the linear evaluator's, statement for statement, so
verdicts, counters, limits, traces, jumps and gotos are the same.  The property test
tests/netfilter/test_classifier.py compares the two on random rulesets and packets.

This is tuple-space search with one tuple per field (an interval index covers every prefix
length at once); its cost per packet is one lookup per indexed field of the chain (a dozen at
most; the port and ICMP fields only for their protocol), plus the candidates.  Each chain's
lookups are one generated ``walk(p)`` returning (rules, candidates); the evaluator finds it with
one dict probe (``walks[chain]``), so a packet costs a handful of Python calls whatever the rules.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Dict, List, Optional, Tuple

from .nft import datatypes as T
from .nft.evaluate import Decision, evaluate, evaluate_chain
from .nft.expressions import _HELPERS, Match, _build
from .nft.statements import MarkSet

# fields that can key a rule: read-only for the whole chain, with the size of their value space
_SPACE = {T.IPV4: 1 << 32, T.SERVICE: 1 << 16, T.PROTOCOL: 256, T.U8: 256, T.U16: 1 << 16,
          T.ICMP_TYPE: 256, T.ICMP_CODE: 256}
_INDEXABLE = {"ip saddr", "ip daddr", "ip protocol", "meta l4proto", "tcp sport", "tcp dport", "udp sport",
              "udp dport", "th sport", "th dport", "icmp type", "icmp code", "ip ttl", "ip length",
              "iifname", "oifname", "iif", "oif"}
CT_STATE_SHARE = 0.01  # five states: a weak key, taken when the rule has no better one
MAX_SHARE = 1.0 / 16  # a key covering more of its field than this selects too little to index
# bound on segment entries of one interval index (per keyed rule): nested wide ranges are moved
# to the wildcard list until the index fits
MAX_ENTRIES_PER_RULE = 24
# an interval index with more boundaries than this gets a radix table over its field (see _radix)
RADIX_MIN_BOUNDS = 256
RADIX_BITS = 16


def _key_of(match: Match, mark_fixed: bool) -> Optional[Tuple[float, list]]:
    """(share of the field's space, the values) when ``match`` can key its rule, else None.
    ``mark_fixed``: no rule of the ruleset sets the mark, so it cannot change within a chain."""
    field = match.field
    if match.set_ref is not None or match.mask is not None or match.op not in ("", "=="):
        return None
    if field.name == "ct state" and match.flags is not None:
        # a packet has one state, one bit: "ct state a,b" matches exactly the values a and b
        if match.op == "==" or match.exact:
            values = [match.flags]
        else:
            values = [1 << b for b in range(32) if match.flags >> b & 1]
        return CT_STATE_SHARE * len(values), [(v, v) for v in values]
    if field.name == "meta mark" and mark_fixed and match.values:
        return sum(hi - lo + 1 for lo, hi in match.values) / float(1 << 32), list(match.values)
    if field.name not in _INDEXABLE or match.flags is not None or not match.values:
        return None
    dtype = field.dtype
    if dtype is T.IFNAME or dtype is T.IFINDEX:
        if any(name.endswith("*") for name in match.values):
            return None
        return len(match.values) / 65536.0, [(name, name) for name in match.values]
    space = _SPACE.get(dtype)
    if space is None:
        return None
    share = sum(hi - lo + 1 for lo, hi in match.values) / float(space)
    return share, list(match.values)


def _leading_matches(rule) -> List[Match]:
    out = []
    for item in rule.items:
        if not isinstance(item, Match):
            break
        out.append(item)
    return out


def _getter_source(field) -> str:
    """The field read from packet ``p``; -1 when the packet lacks the field's protocol (so a
    ``tcp dport 53`` rule is no candidate for UDP)."""
    if field.proto is not None:
        return f"({field.source} if p.proto == {field.proto} else -1)"
    return field.source


class _FieldIndex:
    """The rules keyed on one field: a hash table, or segments of an interval index."""

    __slots__ = ("name", "field", "get", "table", "bounds", "segments", "items")

    def __init__(self, field):
        self.name = field.name
        self.field = field
        self.get = _build(_getter_source(field), {})
        self.items: List[Tuple[object, object, int]] = []  # (lo, hi, rule number)
        self.table: Optional[Dict] = None
        self.bounds: List = []
        self.segments: List[Tuple[int, ...]] = []

    def build(self) -> List[int]:
        """Build the lookup; returns the rule numbers it could not hold (for the wildcard list)."""
        items = self.items
        if all(lo == hi for lo, hi, _ in items):
            table: Dict = {}
            for lo, _, n in items:
                table.setdefault(lo, []).append(n)
            self.table = {k: tuple(sorted(set(v))) for k, v in table.items()}
            return []
        evicted: List[int] = []
        rules = {n for _, _, n in items}
        budget = MAX_ENTRIES_PER_RULE * len(rules) + 1024
        while True:
            total = self._build_segments(items)
            if total <= budget:
                return evicted
            # the widest quarter of the keys go to the wildcard list
            width: Dict[int, int] = {}
            for lo, hi, n in items:
                width[n] = width.get(n, 0) + hi - lo + 1
            order = sorted(width, key=lambda n: -width[n])
            out = set(order[:max(1, len(order) // 4)])
            evicted.extend(out)
            items = [it for it in items if it[2] not in out]
            self.items = items

    def _build_segments(self, items) -> int:
        events: Dict = {}
        for lo, hi, n in items:
            events.setdefault(lo, []).append((1, n))
            events.setdefault(hi + 1, []).append((-1, n))
        active: Dict[int, int] = {}
        bounds, segments = [], []
        total = 0
        last: Tuple[int, ...] = ()
        for point in sorted(events):
            for delta, n in events[point]:
                count = active.get(n, 0) + delta
                if count:
                    active[n] = count
                else:
                    active.pop(n, None)
            current = tuple(sorted(active))
            if current != last or not bounds:
                bounds.append(point)
                segments.append(current)
                total += len(current)
                last = current
        self.bounds, self.segments = bounds, segments
        return total


class CompiledChain:
    """One chain's rules behind its field indexes.  ``candidates(p)`` -> rule numbers, in order;
    ``walk(p)`` -> (the rules, those numbers), as the evaluator asks."""

    __slots__ = ("chain", "rules", "lookups", "wildcard", "indexed", "walk", "candidates")

    def __init__(self, chain, mark_fixed: bool = False):
        self.chain = chain
        self.rules = tuple(chain.rules)
        keys: List[Optional[Tuple[object, list]]] = []
        for rule in self.rules:
            best = None
            if rule.test is not None:
                for match in _leading_matches(rule):
                    key = _key_of(match, mark_fixed)
                    if key is not None and key[0] <= MAX_SHARE and (best is None or key[0] < best[0]):
                        best = (key[0], match.field, key[1])
            keys.append(None if best is None else (best[1], best[2]))
        indexes: Dict[str, _FieldIndex] = {}
        wildcard = []
        for n, key in enumerate(keys):
            if key is None:
                wildcard.append(n)
                continue
            field, values = key
            index = indexes.get(field.name)
            if index is None:
                index = indexes[field.name] = _FieldIndex(field)
            for lo, hi in values:
                index.items.append((lo, hi, n))
        for index in indexes.values():
            wildcard.extend(index.build())
        self.wildcard = tuple(sorted(wildcard))
        self.indexed = len(self.rules) - len(self.wildcard)
        self.lookups = tuple((ix.get, ix.table, ix.bounds, ix.segments) for ix in indexes.values())
        self._generate(list(indexes.values()))

    def _generate(self, indexes) -> None:
        """``walk(p)`` as one generated function: every field read inline (no call per
        field), then the hits merged in rule order with the wildcard list.  Fields of one
        transport protocol (tcp/udp ports, icmp type) are read under one test of ``p.proto``:
        for a packet of another protocol they would read -1, which no index holds, so skipping
        them gives the same hits for less work."""
        env = {"_bisect": bisect_right, "_wild": self.wildcard, "_merge": _merge, "_rules": self.rules}
        env.update(_HELPERS)
        lines = ["def walk(p):", "    hits = []"]
        by_proto: Dict[int, List[str]] = {}
        for k, ix in enumerate(indexes):
            proto = ix.field.proto
            if proto is None:
                lines += ["    " + line for line in _lookup_lines(k, ix, _getter_source(ix.field), env)]
            else:
                by_proto.setdefault(proto, []).extend(_lookup_lines(k, ix, ix.field.source, env))
        if by_proto:
            lines.append("    proto = p.proto")
            for n, (proto, body) in enumerate(sorted(by_proto.items())):
                lines.append(f"    {'if' if n == 0 else 'elif'} proto == {proto}:")
                lines += ["        " + line for line in body]
        lines += ["    if not hits:", "        return _rules, _wild", "    if len(hits) == 1 and not _wild:",
                  "        return _rules, hits[0]", "    return _rules, _merge(hits, _wild)"]
        exec("\n".join(lines), env)  # noqa: S102 - our own source, built from field definitions
        walk = self.walk = env["walk"]
        self.candidates = lambda p: walk(p)[1]


class _Walks(dict):
    """chain -> its ``walk(pkt)``; a chain not seen yet (a jump's target) is compiled on first use."""

    __slots__ = ("classifier",)

    def __init__(self, classifier: "Classifier"):
        super().__init__()
        self.classifier = classifier

    def __missing__(self, chain):
        return self.classifier.chain(chain).walk


def _radix(bounds: List[int], segments: List[Tuple[int, ...]], space: int):
    """(shift, blocks): the field's space cut into 2**RADIX_BITS blocks, ``blocks[v >> shift]``
    the segment of every value of a block that lies in one segment, else [its boundaries, their
    segments] for a bisect within the block.  One list index replaces most of a bisect over
    thousands of boundaries (each step of which compares Python ints); the answer is the same:
    the segment in effect at v."""
    shift = max(0, space.bit_length() - 1 - RADIX_BITS)
    count = ((space - 1) >> shift) + 1
    blocks: List = [()] * count
    current: Tuple[int, ...] = ()
    b = i = 0
    n = len(bounds)
    while b < count:
        start, end = b << shift, (b + 1) << shift
        while i < n and bounds[i] <= start:
            current = segments[i]
            i += 1
        if i < n and bounds[i] < end:  # boundaries inside the block: a small bisect there
            j = i
            while j < n and bounds[j] < end:
                j += 1
            blocks[b] = [[start] + bounds[i:j], [current] + segments[i:j]]
            current = segments[j - 1]
            i = j
            b += 1
        else:  # every block up to the next boundary's lies in one segment
            following = min(bounds[i] >> shift, count) if i < n else count
            blocks[b:following] = [current] * (following - b)
            b = following
    return shift, blocks


def _lookup_lines(k: int, ix: _FieldIndex, source: str, env: dict) -> List[str]:
    """Source lines (unindented) that add index ``k``'s hit for the field read by ``source``."""
    lines = []
    if source.startswith("_addr(") and source.endswith(")"):
        # addresses are ints on the packet path: convert only what is not (a test stub's text)
        lines += [f"v = {source[6:-1]}", "if v.__class__ is not int:", "    v = _addr(v)"]
        source = "v"
    if ix.table is not None:
        env[f"_t{k}"] = ix.table
        return lines + [f"h = _t{k}.get({source})", "if h:", "    hits.append(h)"]
    env[f"_b{k}"], env[f"_s{k}"] = ix.bounds, ix.segments
    space = _SPACE.get(ix.field.dtype)
    if space is None or len(ix.bounds) <= RADIX_MIN_BOUNDS:
        return lines + [f"i = _bisect(_b{k}, {source}) - 1", "if i >= 0:", f"    h = _s{k}[i]", "    if h:",
                        "        hits.append(h)"]
    shift, env[f"_r{k}"] = _radix(ix.bounds, ix.segments, space)
    if source != "v":
        lines.append(f"v = {source}")
    # a value outside the field's space (-1: no such header) takes the plain bisect
    return lines + [f"if 0 <= v < {space}:", f"    h = _r{k}[v >> {shift}]", "    if h.__class__ is list:",
                    "        h = h[1][_bisect(h[0], v) - 1]", "else:", f"    i = _bisect(_b{k}, v) - 1",
                    f"    h = _s{k}[i] if i >= 0 else ()", "if h:", "    hits.append(h)"]


def _merge(hits: List[Tuple[int, ...]], wildcard: Tuple[int, ...]) -> Tuple[int, ...]:
    merged = set(wildcard)
    for hit in hits:
        merged.update(hit)
    return tuple(sorted(merged))


class Classifier:
    """Compiled chains of a ruleset (compiled on first use; a new ruleset gets a new Classifier)."""

    __slots__ = ("compiled", "mark_fixed", "walks")

    def __init__(self, ruleset=None):
        self.mark_fixed = ruleset is not None and not any(
            isinstance(item, MarkSet) for rule in ruleset.rules() for item in rule.items)
        # keyed by the chain itself (identity: Chain defines no __eq__)
        self.compiled: Dict[object, CompiledChain] = {}
        # the evaluator's ``walks[chain](pkt)``: a dict probe in C, then the generated lookup
        self.walks = _Walks(self)
        if ruleset is not None:
            for chain in ruleset.chains():
                self.chain(chain)

    def chain(self, chain) -> CompiledChain:
        compiled = self.compiled.get(chain)
        if compiled is None:
            compiled = self.compiled[chain] = CompiledChain(chain, self.mark_fixed)
            self.walks[chain] = compiled.walk
        return compiled

    def evaluate_chain(self, base, pkt, monitor=None) -> Decision:
        """As :func:`nft.evaluate.evaluate_chain`, over the candidates only."""
        return evaluate_chain(base, pkt, self.walks, monitor)

    def evaluate(self, ruleset, hook: str, pkt, monitor=None) -> Decision:
        """As :func:`nft.evaluate.evaluate`: every base chain of ``hook`` in priority order."""
        return evaluate(ruleset, hook, pkt, self.walks, monitor)

    def stats(self) -> dict:
        rules = sum(len(c.rules) for c in self.compiled.values())
        wildcard = sum(len(c.wildcard) for c in self.compiled.values())
        return {"rules": rules, "rules-indexed": rules - wildcard, "rules-wildcard": wildcard,
                "field-indexes": sum(len(c.lookups) for c in self.compiled.values())}
