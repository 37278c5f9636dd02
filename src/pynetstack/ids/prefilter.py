"""A multi-pattern prefilter: every rule's fast pattern in one compiled regex, so that the cost of
a packet grows with the patterns present, not with the rule count.

The patterns (lower-cased: the prefilter may over-select, the rule's own match decides) go into a
trie written as a regex (searched again one byte after each match, so overlaps are found).
At one position the regex reports the longest pattern; every shorter one that matches there is a
prefix of it, so each pattern carries the list of its prefixes in the set ("prefix closure") and
nothing is missed."""

from __future__ import annotations

import re
from typing import Dict, Iterable, List, Set


def _trie_regex(patterns: Iterable[bytes]) -> bytes:
    root: dict = {}
    for pattern in patterns:
        node = root
        for byte in pattern:
            node = node.setdefault(byte, {})
        node[None] = True
    return _node_regex(root)


def _node_regex(node: dict) -> bytes:
    # iterative over single-child chains so that long patterns do not recurse deeply
    parts: List[bytes] = []
    while True:
        terminal = None in node
        children = [k for k in node if k is not None]
        if len(children) == 1 and not terminal:
            byte = children[0]
            parts.append(re.escape(bytes((byte,))))
            node = node[byte]
            continue
        break
    if not children:
        return b"".join(parts)
    alternatives = [re.escape(bytes((byte,))) + _node_regex(node[byte]) for byte in sorted(children)]
    group = b"(?:" + b"|".join(alternatives) + b")"
    if terminal:
        group += b"?"  # greedy: the longer pattern is tried first
    return b"".join(parts) + group


class Prefilter:
    """``candidates(lower_buffer)`` -> the set of keys (rules) whose pattern occurs in it."""

    def __init__(self, table: Dict[bytes, List[object]]):
        self.table = {pattern: list(keys) for pattern, keys in table.items() if pattern}
        patterns = sorted(self.table)
        self.closure: Dict[bytes, List[object]] = {}
        for pattern in patterns:
            keys: List[object] = []
            for n in range(1, len(pattern) + 1):
                keys.extend(self.table.get(pattern[:n], ()))
            self.closure[pattern] = keys
        self.regex = re.compile(_trie_regex(patterns), re.DOTALL) if patterns else None

    def __len__(self) -> int:
        return len(self.table)

    def candidates(self, lower: bytes) -> Set[object]:
        found: Set[object] = set()
        if self.regex is None:
            return found
        seen: Set[bytes] = set()
        closure = self.closure
        search = self.regex.search
        m = search(lower)
        while m is not None:  # search again one byte on: patterns may overlap
            pattern = m.group()
            if pattern not in seen:
                seen.add(pattern)
                found.update(closure[pattern])
            m = search(lower, m.start() + 1)
        return found
