"""A multi-pattern prefilter: which rules' fast patterns occur in a buffer, at a cost that grows
with the buffer and the patterns present, not with the rule count.

The patterns are lower-cased (and so is the buffer, once). Read the buffer as 32-bit words
starting at offset k, k+4, k+8, ... (``array``, at C speed). A pattern of L >= 4 bytes, wherever it
occurs, covers a whole word starting at a multiple of ``step`` as soon as L >= 3 + step, and that
word is one of the pattern's own 4-grams at offsets j .. j+step-1, for any j <= L - 3 - step (the
window of the rarest grams is taken). So patterns of 7 bytes or more
are indexed under 4 of their 4-grams and found from the words at offsets 0 mod 4 alone (n/4
words); 5-6 bytes need the words at 0 and 2 mod 4; 4 bytes all four offsets. The set of words is
intersected with each index and every pattern behind a hit is confirmed with ``in``. Patterns of
1-3 bytes, and any class with few patterns, are looked for one by one, or, past a dozen, with
one regex shaped like their trie. Exact: no pattern present
is missed and none absent is reported."""

from __future__ import annotations

import re
import sys
from array import array
from typing import Dict, List, Set, Tuple

_ORDER = sys.byteorder
_WORD = "I" if array("I").itemsize == 4 else "L"
DIRECT_MAX = 48  # up to this many patterns in a class, each is looked for directly
SCAN_MIN = 100000  # more direct patterns than this: one regex pass instead

Entry = Tuple[bytes, list]


def _trie_regex(patterns) -> bytes:
    """The patterns as one regex shaped like their trie, longer alternatives first."""
    root: dict = {}
    for pattern in patterns:
        node = root
        for byte in pattern:
            node = node.setdefault(byte, {})
        node[None] = True
    return _node_regex(root)


def _node_regex(node: dict) -> bytes:
    parts: List[bytes] = []
    while True:  # single-child chains iteratively: long patterns do not recurse deeply
        children = [k for k in node if k is not None]
        if len(children) == 1 and None not in node:
            parts.append(re.escape(bytes((children[0],))))
            node = node[children[0]]
            continue
        break
    if not children:
        return b"".join(parts)
    group = b"(?:" + b"|".join(re.escape(bytes((c,))) + _node_regex(node[c]) for c in sorted(children)) + b")"
    return b"".join(parts) + (group + b"?" if None in node else group)


class _Scan:
    """Few short patterns: one regex search pass over the buffer (searched again one byte after
    each match, so overlapping patterns are found); at a position the regex reports the longest
    pattern, and the shorter ones there are its prefixes: each pattern carries those."""

    def __init__(self, entries: List[Entry]):
        table = dict(entries)
        self.closure = {p: [k for n in range(1, len(p) + 1) for k in table.get(p[:n], ())] for p in table}
        self.regex = re.compile(_trie_regex(sorted(table)), re.DOTALL)

    def find(self, lower: bytes, found: Set[object]) -> None:
        search = self.regex.search
        closure = self.closure
        seen = set()
        m = search(lower)
        while m is not None:
            pattern = m.group()
            if pattern not in seen:
                seen.add(pattern)
                found.update(closure[pattern])
            m = search(lower, m.start() + 1)


def _words(buf: bytes, offset: int) -> array:
    return array(_WORD, buf[offset:offset + ((len(buf) - offset) & ~3)])


class Prefilter:
    """``candidates(lower_buffer)`` -> the set of keys (rules) whose pattern occurs in it."""

    def __init__(self, table: Dict[bytes, List[object]], direct_max: int = DIRECT_MAX):
        self.table = {pattern: list(keys) for pattern, keys in table.items() if pattern}
        entries = list(self.table.items())
        self.direct: List[Entry] = []
        self.indexes: List[Tuple[Tuple[int, ...], Dict[int, List[Entry]], frozenset]] = []
        self.scan = None
        if len(entries) <= direct_max:
            self.direct = entries
            self._short_scan()
            return
        self.direct = [e for e in entries if len(e[0]) < 4]
        for step, low, high in ((4, 7, 1 << 30), (2, 5, 6), (1, 4, 4)):
            group = [e for e in entries if low <= len(e[0]) <= high]
            if len(group) <= direct_max:
                self.direct.extend(group)
                continue
            # Any ``step`` consecutive 4-grams starting at j <= L - 3 - step will do: take the
            # window whose grams are rarest among the patterns, so that a common gram ("http",
            # ".php") of a buffer leads to few patterns to confirm.
            freq: Dict[int, int] = {}
            grams_of = []
            for entry in group:
                pattern = entry[0]
                grams = [int.from_bytes(pattern[j:j + 4], _ORDER) for j in range(len(pattern) - 3)]
                grams_of.append(grams)
                for gram in set(grams):
                    freq[gram] = freq.get(gram, 0) + 1
            index: Dict[int, List[Entry]] = {}
            for entry, grams in zip(group, grams_of):
                last = len(entry[0]) - 3 - step
                best = min(range(last + 1), key=lambda j: sum(freq[g] for g in grams[j:j + step]))
                for gram in set(grams[best:best + step]):
                    index.setdefault(gram, []).append(entry)
            offsets = tuple(range(0, 4, step))
            self.indexes.append((offsets, index, frozenset(index)))
        self._short_scan()

    def _short_scan(self) -> None:
        # past a handful, one regex pass costs less than an ``in`` per pattern
        if len(self.direct) > SCAN_MIN:
            self.scan = _Scan(self.direct)
            self.direct = []

    def __len__(self) -> int:
        return len(self.table)

    def candidates(self, lower: bytes) -> Set[object]:
        found: Set[object] = set()
        if self.scan is not None:
            self.scan.find(lower, found)
        for pattern, keys in self.direct:
            if pattern in lower:
                found.update(keys)
        if not self.indexes or len(lower) < 4:
            return found
        words: Set[int] = set()
        have: Set[int] = set()
        checked: Set[bytes] = set()
        for offsets, index, keys in self.indexes:
            for k in offsets:
                if k not in have:
                    have.add(k)
                    words.update(_words(lower, k))
            for gram in words & keys:
                for pattern, rules in index[gram]:
                    if pattern not in checked:
                        checked.add(pattern)
                        if pattern in lower:
                            found.update(rules)
        return found
