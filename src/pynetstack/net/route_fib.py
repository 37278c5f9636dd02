"""The compiled FIB: a 16-8-8 multibit trie (a DIR-16-8-8 variant) for IPv4 LPM.

Why this shape: on CPython a lookup costs its bytecodes (and, in big tables, its cache misses). A
16-8-8 trie answers any address in at most three array indexings, whatever the number of prefixes
or of distinct prefix lengths (the per-length dict walk it replaces costs one dict probe per
length present). Memory stays bounded because the levels are flat ``array('i')`` of 4-byte slots:
level 1 has 65,536 slots (256 KiB); a level-2 or level-3 chunk of 256 slots (1 KiB) exists only
under a /16 (or /24) that holds a longer prefix: ~50 MB for 100,000 BGP-like prefixes.

A slot holds a leaf id >= 0 (an index into ``leaves``) or ~chunk (< 0) naming a chunk of the next
level. Within a level, prefixes are pushed down to every slot they cover (the longest wins), so a
lookup never backtracks. Across levels they are not: a chunk slot holding 0 means "what covers this
whole chunk from above", kept once per chunk in ``bases``. So adding or removing a short prefix
(a default route under a full table) touches the slots of its own level only, not every chunk
beneath it. At level 1, leaf 0 is "no route".

Each installed prefix owns one leaf; changing which route a prefix resolves to (metric, a device
going down) only rewrites ``leaves[id]``, not the slots.
"""

from __future__ import annotations

from array import array
from typing import Dict, List, Tuple

_EMPTY = array("i", [0]) * 256  # a new chunk: every slot inherits


class Fib:
    __slots__ = ("levels", "bases", "leaves", "leaf_length", "leaf_of", "_free_leaves", "_free_chunks")

    def __init__(self):
        self.levels = (array("i", [0]) * 65536, array("i"), array("i"))
        self.bases = (None, array("i"), array("i"))  # chunk -> leaf covering it from above (0: inherit)
        self.leaves: List[object] = [None]  # leaf id -> value (a Route); id 0 is "no route"
        self.leaf_length: List[int] = [-1]  # leaf id -> prefix length, -1 for id 0
        self.leaf_of: Dict[Tuple[int, int], int] = {}  # (prefix, length) -> leaf id
        self._free_leaves: List[int] = []
        self._free_chunks = ([], [], [])

    def __len__(self) -> int:
        return len(self.leaf_of)

    def lookup(self, dst: int):
        l1, l2, l3 = self.levels
        v = l1[dst >> 16]
        if v < 0:
            chunk = ~v
            w = l2[(chunk << 8) | ((dst >> 8) & 255)]
            if w < 0:
                x = l3[(~w << 8) | (dst & 255)]
                w = x if x else self.bases[2][~w]
            v = w if w else self.bases[1][chunk]
        return self.leaves[v]

    def chunks(self) -> Tuple[int, int]:
        """(level-2 chunks, level-3 chunks) in use."""
        return tuple(len(self.bases[n]) - len(self._free_chunks[n]) for n in (1, 2))

    # ------------------------------------------------------------------ updates
    def install(self, prefix: int, length: int, value) -> None:
        """Make ``prefix/length`` resolve to ``value`` (insert, or update in place)."""
        leaf = self.leaf_of.get((prefix, length))
        if leaf is not None:
            self.leaves[leaf] = value
            return
        if self._free_leaves:
            leaf = self._free_leaves.pop()
            self.leaves[leaf] = value
            self.leaf_length[leaf] = length
        else:
            leaf = len(self.leaves)
            self.leaves.append(value)
            self.leaf_length.append(length)
        self.leaf_of[(prefix, length)] = leaf
        level, first, count = self._range(prefix, length, create=True)
        table = self.levels[level]
        leaf_length = self.leaf_length
        bases = self.bases[level + 1] if level < 2 else None
        for i in range(first, first + count):
            v = table[i]
            if v >= 0:
                if leaf_length[v] <= length:
                    table[i] = leaf
            elif leaf_length[bases[~v]] <= length:
                bases[~v] = leaf  # the chunk below now inherits this prefix where it has nothing longer

    def uninstall(self, prefix: int, length: int) -> bool:
        leaf = self.leaf_of.pop((prefix, length), None)
        if leaf is None:
            return False
        level, first, count = self._range(prefix, length, create=False)
        heir = 0  # the longest shorter prefix of the same level takes the slots back (0: inherit)
        for shorter in range(length - 1, (-1, 16, 24)[level], -1):
            mask = (0xFFFFFFFF << (32 - shorter)) & 0xFFFFFFFF
            heir = self.leaf_of.get((prefix & mask, shorter), 0)
            if heir:
                break
        table = self.levels[level]
        bases = self.bases[level + 1] if level < 2 else None
        for i in range(first, first + count):
            v = table[i]
            if v == leaf:
                table[i] = heir
            elif v < 0 and bases[~v] == leaf:
                bases[~v] = heir
        self.leaves[leaf] = None
        self.leaf_length[leaf] = -1
        self._free_leaves.append(leaf)
        # chunks left with nothing of their own fold back into their parent slot
        if level == 2:
            self._fold(1, (~self.levels[0][prefix >> 16] << 8) + ((prefix >> 8) & 255))
        if level >= 1:
            self._fold(0, prefix >> 16)
        return True

    # ------------------------------------------------------------------ internals
    def _range(self, prefix: int, length: int, create: bool):
        """(level, first slot, slot count) that ``prefix/length`` covers, making chunks when asked."""
        if length <= 16:
            return 0, prefix >> 16, 1 << (16 - length)
        base = self._child(0, prefix >> 16, create)
        if length <= 24:
            return 1, base + ((prefix >> 8) & 255), 1 << (24 - length)
        base = self._child(1, base + ((prefix >> 8) & 255), create)
        return 2, base + (prefix & 255), 1 << (32 - length)

    def _child(self, level: int, slot: int, create: bool) -> int:
        """Index of the first slot of the chunk under ``levels[level][slot]``; made when asked."""
        table = self.levels[level]
        v = table[slot]
        if v < 0:
            return ~v << 8
        if not create:
            raise AssertionError("FIB: missing chunk for an installed prefix")
        below, bases, free = self.levels[level + 1], self.bases[level + 1], self._free_chunks[level + 1]
        if free:
            index = free.pop()
            below[index << 8:(index + 1) << 8] = _EMPTY
            bases[index] = v
        else:
            index = len(bases)
            below.extend(_EMPTY)
            bases.append(v)
        table[slot] = ~index  # the new chunk inherits what the slot held
        return index << 8

    def _fold(self, level: int, slot: int) -> None:
        table = self.levels[level]
        v = table[slot]
        if v >= 0:
            return
        first = ~v << 8
        if self.levels[level + 1][first:first + 256].count(0) == 256:
            table[slot] = self.bases[level + 1][~v]
            self._free_chunks[level + 1].append(~v)
