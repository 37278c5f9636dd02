"""The ruleset model: tables -> chains -> rules, its ``nft list ruleset`` listing, and the compiled
form the evaluator runs (one closure per match, built when the ruleset is loaded)."""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from .expressions import Match, compile_conjunction, compile_verdict_map
from .statements import Counter, Limit, Log, MarkSet, Nat, Reject, TraceSet, Verdict, VerdictMap
from .symbols import priority_name

HOOKS = ("prerouting", "input", "forward", "output", "postrouting")
# step kinds of a compiled rule
STEP_MATCH, STEP_LIMIT, STEP_COUNTER, STEP_LOG, STEP_MARK, STEP_VERDICT, STEP_NAT, STEP_REJECT, STEP_VMAP, \
    STEP_STMT, STEP_TRACE = range(11)


class Rule:
    __slots__ = ("items", "handle", "chain", "loc", "steps", "test", "comment", "_text")

    def __init__(self, items: List, loc=None):
        self.items = items
        self.handle = 0
        self.chain: Optional[Chain] = None
        self.loc = loc
        self.steps: Tuple = ()
        self.test = None  # the leading matches as one closure (None: no leading match)
        self.comment: Optional[str] = None
        self._text: Optional[str] = None

    @property
    def counter(self) -> Optional[Counter]:
        for item in self.items:
            if isinstance(item, Counter):
                return item
        return None

    def format(self) -> str:
        """The rule as ``nft list ruleset`` prints it (implied protocol matches left out)."""
        items = self.items
        inet = self.chain is not None and self.chain.table.family == "inet"
        parts = []
        for i, item in enumerate(items):
            if isinstance(item, Match) and _implied_by_later(items, i, inet):
                continue
            parts.append(item.format())
        if self.comment is not None:
            parts.append(f'comment "{self.comment}"')
        return " ".join(parts)

    def compile(self) -> None:
        items = self.items
        lead = 0
        while lead < len(items) and isinstance(items[lead], Match):
            lead += 1
        self.test = compile_conjunction(items[:lead]) if lead else None
        steps = []
        for item in items[lead:]:
            if isinstance(item, Match):
                steps.append((STEP_MATCH, item.compile(), item))
            elif isinstance(item, Limit):
                steps.append((STEP_LIMIT, None, item))
            elif isinstance(item, Counter):
                steps.append((STEP_COUNTER, None, item))
            elif isinstance(item, Log):
                steps.append((STEP_LOG, None, item))
            elif isinstance(item, MarkSet):
                steps.append((STEP_MARK, None, item))
            elif isinstance(item, TraceSet):
                steps.append((STEP_TRACE, None, item))
            elif isinstance(item, Verdict):
                target = self.chain.table.chains.get(item.target) if item.target else None
                steps.append((STEP_VERDICT, target, item))
            elif isinstance(item, Nat):
                steps.append((STEP_NAT, None, item))
            elif isinstance(item, Reject):
                steps.append((STEP_REJECT, item.decision(), item))
            elif isinstance(item, VerdictMap):
                steps.append((STEP_VMAP, compile_verdict_map(item, self.chain.table.chains), item))
            elif hasattr(item, "step"):  # stateful statements (dynamic.py): step(pkt) -> go on?
                steps.append((STEP_STMT, item.step(), item))
        self.steps = tuple(steps)


def _implied_by_later(items: List, i: int, inet: bool) -> bool:
    """nft drops ``ip protocol tcp`` / ``meta l4proto tcp`` from a listing when a later tcp header
    match (with only matches between) implies it.  In inet tables only ``meta l4proto`` is the
    dependency nft itself would add, so only that one is dropped."""
    if items[i].field.name == "meta nfproto":  # the dependency of an inet "reject with icmp"
        for later in items[i + 1:]:
            if isinstance(later, Reject):
                return later.how == "icmp"
            if not isinstance(later, Match):
                return False
        return False
    proto = items[i].implies_proto()
    if proto is None or (inet and items[i].field.name != "meta l4proto"):
        return False
    for later in items[i + 1:]:
        if isinstance(later, Reject) and later.how == "tcp reset":
            return proto == 6 and not inet
        if isinstance(later, VerdictMap) and later.match_field.proto is not None:
            return later.match_field.proto == proto
        if not isinstance(later, Match) or later.field.is_l4proto:
            return False
        if later.field.proto is not None:
            return later.field.proto == proto
    return False


class Chain:
    __slots__ = ("name", "table", "type", "hook", "priority", "policy", "rules", "handle", "loc")

    def __init__(self, name: str, table: "Table", loc=None):
        self.name = name
        self.table = table
        self.type: Optional[str] = None
        self.hook: Optional[str] = None
        self.priority = 0
        self.policy = "accept"
        self.rules: List[Rule] = []
        self.handle = 0
        self.loc = loc

    @property
    def is_base(self) -> bool:
        return self.hook is not None

    def format(self, handles: bool = False) -> str:
        head = f"\tchain {self.name} {{" + (f" # handle {self.handle}" if handles else "")
        lines = [head]
        if self.is_base:
            lines.append(f"\t\ttype {self.type} hook {self.hook} priority "
                         f"{priority_name(self.priority, self.hook)}; policy {self.policy};")
        for rule in self.rules:
            lines.append("\t\t" + rule.format() + (f" # handle {rule.handle}" if handles else ""))
        lines.append("\t}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Chain({self.table.family} {self.table.name} {self.name})"


class Table:
    __slots__ = ("family", "name", "chains", "sets", "handle", "next_handle", "loc")

    def __init__(self, family: str, name: str, handle: int, loc=None):
        self.family = family
        self.name = name
        self.chains: Dict[str, Chain] = {}
        self.sets: Dict = {}  # name -> NamedSet
        self.handle = handle
        self.next_handle = 1
        self.loc = loc

    def new_handle(self) -> int:
        h = self.next_handle
        self.next_handle += 1
        return h

    def format(self, handles: bool = False, now: Optional[float] = None) -> str:
        head = f"table {self.family} {self.name} {{" + (f" # handle {self.handle}" if handles else "")
        parts = [s.format(handles, now) for s in self.sets.values()] + [c.format(handles) for c in self.chains.values()]
        body = "\n\n".join(parts)
        return head + ("\n" + body if body else "") + "\n}"


class Ruleset:
    """Everything one nft file (and its includes) declares.  Build it with ``load``/``loads``."""

    def __init__(self):
        self.tables: Dict[Tuple[str, str], Table] = {}
        self.next_table_handle = 1
        self._hooks: Dict[str, List[Chain]] = {}

    def list_ruleset(self, handles: bool = False, now: Optional[float] = None) -> str:
        """Exactly what ``nft list ruleset`` (``nft -a list ruleset`` with handles) prints; with
        ``now`` (the stack's clock) also the elements rules added to dynamic sets."""
        return "".join(t.format(handles, now) + "\n" for t in self.tables.values())

    def base_chains(self, hook: str) -> List[Chain]:
        """The IPv4 base chains (families ip and inet) on ``hook``, by priority, stable."""
        chains = self._hooks.get(hook)
        if chains is None:
            found = [c for t in self.tables.values() if t.family in ("ip", "inet")
                     for c in t.chains.values() if c.hook == hook]
            chains = sorted(found, key=lambda c: c.priority)
            self._hooks[hook] = chains
        return list(chains)

    def chains(self) -> List[Chain]:
        return [c for t in self.tables.values() for c in t.chains.values()]

    def rules(self) -> List[Rule]:
        return [r for c in self.chains() for r in c.rules]

    def compile(self) -> None:
        self._hooks = {}
        for rule in self.rules():
            rule.compile()

    def evaluate(self, hook: str, pkt):
        """Run ``pkt`` through the base chains of ``hook`` with the kernel's semantics; see
        :func:`pynetstack.netfilter.nft.evaluate.evaluate`."""
        return _evaluation.evaluate(self, hook, pkt)


# at the end, as a module: evaluate.py imports the names above
from . import evaluate as _evaluation  # noqa: E402
