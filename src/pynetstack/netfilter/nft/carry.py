"""What survives an ``nft -f`` on a running ruleset: the state of every object the file leaves alone.

The kernel applies a file as one transaction of add/flush commands on the live ruleset, so a rule
that was there before keeps its counter, its limit's tokens, its quota's consumption and its
``ct count`` connections; a named set keeps the elements rules added from the packet path, with
their expiry times and their own statements; a meter keeps its elements.  Only what the file
flushes or deletes starts again (a flushed chain's rules are gone, and the rules added after the
flush are new ones, with new handles; a flushed set has no elements).

pynetstack builds the new ruleset from all its sources again (the old ones, then the file), which
gives every surviving object the very handles it had: handles come from per-table counters, and
the same commands in the same order draw the same numbers.  So an object of the new ruleset is
the old one when its table has the same handle (a table flushed away by ``flush ruleset ip`` and
declared again gets a new one) and, for a rule, the same chain and rule handle; for a set, the
same name, handle, type and number of ``flush set`` commands.  Its state is then moved into the
new objects in place (the compiled rules hold them), once, with the stack's lock held: the cost
is one pass over the rules.
"""

from __future__ import annotations

from .dynamic import CtCount, Quota, SetUpdate
from .statements import Counter, Limit


def carry_state(old, new) -> int:
    """Move the state of ``old``'s objects into their survivors in ``new`` (both Rulesets, ``new``
    built from ``old``'s sources and more); the number of objects carried."""
    carried = 0
    for key, table in new.tables.items():
        before = old.tables.get(key)
        if before is None or before.handle != table.handle:
            continue
        for name, nset in table.sets.items():
            prev = before.sets.get(name)
            if (prev is not None and prev.handle == nset.handle and prev.type_name == nset.type_name
                    and prev.flushes == nset.flushes):
                carried += _carry_table(prev._runtime, nset)
        rules = {rule.handle: rule for chain in before.chains.values() for rule in chain.rules}
        for chain in table.chains.values():
            for rule in chain.rules:
                prev = rules.get(rule.handle)
                if prev is not None and prev.chain.name == chain.name and _carry_rule(prev, rule):
                    carried += 1
    return carried


def _carry_table(runtime, nset) -> int:
    """A named set's elements (those rules added; the declared ones are declared again)."""
    if runtime is None or not runtime.entries:
        return 0
    target = nset.runtime()  # the object the compiled rules of ``new`` hold
    _adopt(runtime, target)
    return 1


def _adopt(source, target) -> None:
    entries = source.entries
    while len(entries) > target.size:  # only if the size shrank: the least recently used go
        entries.popitem(last=False)
    target.entries = entries
    target.counters = source.counters


def _carry_rule(old, new) -> bool:
    """A rule's statements' state, statement by statement (the same text parses to the same
    statements; any difference means it is not the same rule, and nothing is taken)."""
    pairs = list(zip(old.items, new.items))
    if len(old.items) != len(new.items) or any(a.__class__ is not b.__class__ for a, b in pairs):
        return False
    for a, b in pairs:
        cls = a.__class__
        if cls is Counter:
            b.packets, b.bytes = a.packets, a.bytes
        elif cls is Limit:
            b.tokens, b.last = a.tokens, a.last
        elif cls is CtCount:
            b.conns = a.conns
        elif cls is Quota:
            b.used = a.used
        elif cls is SetUpdate and a.op == "meter" and a._table is not None:
            _adopt(a._table, b.table())
    return True
