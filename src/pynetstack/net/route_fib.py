"""The compiled FIB: a leaf-pushed 16-8-8 multibit trie (a DIR-16-8-8 variant) for IPv4 LPM.

Why this shape: on CPython the cost of a lookup is the number of bytecodes, not cache lines. A
16-8-8 trie answers any address in at most three array indexings, whatever the number of prefixes
or of distinct prefix lengths (the per-length dict walk it replaces costs one dict probe per
length present). Memory stays bounded because the levels are flat ``array('i')`` of 4-byte slots:
level 1 has 65,536 slots (256 KiB); a level-2 or level-3 chunk of 256 slots (1 KiB) exists only
under a /16 (or /24) that holds a longer prefix. 100,000 random prefixes cost ~60 MB at worst,
a BGP-like table far less.

A slot holds a leaf id >= 0 (an index into ``leaves``; 0 means no route) or ~chunk (< 0) naming
the chunk of the next level. Leaves are pushed down: every slot holds the longest prefix covering
it, so a lookup never backtracks. Each installed prefix owns one leaf; changing which route a
prefix resolves to (metric, a device going down) only rewrites ``leaves[id]``, not the slots.
"""

from __future__ import annotations

from array import array
from typing import Dict, List, Tuple

_CHUNK = array("i", [0]) * 256


def _level_of(length: int) -> int:
    return 0 if length <= 16 else (1 if length <= 24 else 2)


class Fib:
    __slots__ = ("levels", "leaves", "leaf_length", "leaf_of", "_free_leaves", "_free_chunks")

    def __init__(self):
        self.levels = (array("i", [0]) * 65536, array("i"), array("i"))
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
            v = l2[(~v << 8) | ((dst >> 8) & 255)]
            if v < 0:
                v = l3[(~v << 8) | (dst & 255)]
        return self.leaves[v]

    def chunks(self) -> Tuple[int, int]:
        """(level-2 chunks, level-3 chunks) in use."""
        return tuple(len(self.levels[n]) // 256 - len(self._free_chunks[n]) for n in (1, 2))

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
        level, base, start, count = self._descend(prefix, length, create=True)
        self._fill(level, base + start, count, leaf, length)

    def uninstall(self, prefix: int, length: int) -> bool:
        leaf = self.leaf_of.pop((prefix, length), None)
        if leaf is None:
            return False
        heir = 0  # the longest shorter prefix covering this one takes its slots back
        for shorter in range(length - 1, -1, -1):
            mask = (0xFFFFFFFF << (32 - shorter)) & 0xFFFFFFFF
            heir = self.leaf_of.get((prefix & mask, shorter), 0)
            if heir:
                break
        level, base, start, count = self._descend(prefix, length, create=False)
        self._swap(level, base + start, count, leaf, heir)
        self.leaves[leaf] = None
        self.leaf_length[leaf] = -1
        self._free_leaves.append(leaf)
        # chunks that became uniform fold back into their parent slot
        if length > 24:
            v = self.levels[0][prefix >> 16]
            if v < 0:
                self._fold_slot(1, (~v << 8) + ((prefix >> 8) & 255))
        if length > 16:
            self._fold_slot(0, prefix >> 16)
        return True

    # ------------------------------------------------------------------ internals
    def _descend(self, prefix: int, length: int, create: bool):
        """(level, chunk base, first slot, slot count) of the range ``prefix/length`` covers."""
        level = _level_of(length)
        base = 0
        if level >= 1:
            base = self._child(0, prefix >> 16, create)
            if level == 2:
                base = self._child(1, base + ((prefix >> 8) & 255), create)
        if level == 0:
            return 0, 0, prefix >> 16, 1 << (16 - length)
        if level == 1:
            return 1, base, (prefix >> 8) & 255, 1 << (24 - length)
        return 2, base, prefix & 255, 1 << (32 - length)

    def _child(self, level: int, slot: int, create: bool) -> int:
        """Base index of the chunk under ``levels[level][slot]``; make it when asked."""
        table = self.levels[level]
        v = table[slot]
        if v < 0:
            return ~v << 8
        if not create:
            raise AssertionError("FIB: missing chunk for an installed prefix")
        below = self.levels[level + 1]
        free = self._free_chunks[level + 1]
        chunk = array("i", [v]) * 256  # the new chunk inherits the covering leaf
        if free:
            index = free.pop()
            below[index << 8:(index + 1) << 8] = chunk
        else:
            index = len(below) >> 8
            below.extend(chunk)
        table[slot] = ~index
        return index << 8

    def _fill(self, level: int, first: int, count: int, leaf: int, length: int) -> None:
        table = self.levels[level]
        leaf_length = self.leaf_length
        for i in range(first, first + count):
            v = table[i]
            if v < 0:
                self._fill(level + 1, ~v << 8, 256, leaf, length)
            elif leaf_length[v] <= length:
                table[i] = leaf

    def _swap(self, level: int, first: int, count: int, old: int, new: int) -> None:
        table = self.levels[level]
        for i in range(first, first + count):
            v = table[i]
            if v == old:
                table[i] = new
            elif v < 0:
                self._swap(level + 1, ~v << 8, 256, old, new)
                self._fold_slot(level, i)

    def _fold_slot(self, level: int, slot: int) -> None:
        table = self.levels[level]
        v = table[slot]
        if v >= 0:
            return
        base = ~v << 8
        chunk = self.levels[level + 1][base:base + 256]
        first = chunk[0]
        if first >= 0 and chunk.count(first) == 256:
            table[slot] = first
            self._free_chunks[level + 1].append(~v)
