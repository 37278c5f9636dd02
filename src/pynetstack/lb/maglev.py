"""Maglev hashing (Eisenbud et al., NSDI 2016; IPVS's ``mh``): a lookup table of prime size M
in which every destination owns close to M x weight / total entries, and a change of one
destination moves close to 1/N of the flows.

Each destination has a permutation of the table (offset + j x skip mod M) from two hashes of
its address and port; the table fills by turns, each destination taking the next free entry of
its permutation (``weight / gcd`` entries per turn, as IPVS gives weights).  The table is built
off the packet path and swapped in whole.  The hashes are fixed functions, not keyed by a
secret: two balancers with the same destinations build the same table and pick the same
destination for the same flow, which is what lets several sit behind ECMP.
"""

from __future__ import annotations

from math import gcd
from typing import List

from .schedulers import Scheduler

DEFAULT_TABLE_SIZE = 65537
_M64 = 0xFFFFFFFFFFFFFFFF


def mix64(x: int) -> int:
    """SplitMix64's finaliser: a fixed, well-mixed 64-bit hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    i = 2
    while i * i <= n:
        if n % i == 0:
            return False
        i += 1
    return True


def build_table(dests: List, size: int = DEFAULT_TABLE_SIZE) -> List:
    """The Maglev table for ``dests`` (objects with ``addr``, ``port``, ``weight``); weight-0
    destinations take no entry.  Returns a list of ``size`` destinations (or Nones if none)."""
    live = [d for d in dests if d.weight > 0]
    if not live:
        return [None] * size
    g = 0
    for d in live:
        g = gcd(g, d.weight)
    turns = [d.weight // g for d in live]
    offsets, skips = [], []
    for d in live:
        key = (d.addr << 16) | d.port
        offsets.append(mix64(key) % size)
        skips.append(mix64(key ^ 0x5BD1E9955BD1E995) % (size - 1) + 1)
    table: List = [None] * size
    nexts = [0] * len(live)
    filled = 0
    while True:
        for i, d in enumerate(live):
            offset, skip, j = offsets[i], skips[i], nexts[i]
            for _ in range(turns[i]):
                c = (offset + j * skip) % size
                while table[c] is not None:
                    j += 1
                    c = (offset + j * skip) % size
                table[c] = d
                j += 1
                filled += 1
                if filled == size:
                    return table
            nexts[i] = j


class MaglevHashing(Scheduler):
    """mh: the Maglev table by source address (``mh-port``: and port); ``mh-fallback`` walks
    on to other entries (a fixed sequence per flow) past an unavailable destination."""

    name = "mh"

    def __init__(self, flags=(), size: int = DEFAULT_TABLE_SIZE):
        super().__init__(flags)
        if not is_prime(size):
            from .service import LbError
            raise LbError(f"the Maglev table size must be a prime, not {size}")
        self.size = size
        self.table: List = [None] * size

    def update(self, dests) -> None:
        self.table = build_table(dests, self.size)  # built aside, swapped in whole

    def key(self, src: int, sport: int) -> int:
        return (src << 16) | sport if "mh-port" in self.flags else src << 16

    def pick(self, dests, src, sport, dst, dport):
        table, size = self.table, self.size
        h = mix64(self.key(src, sport))
        dest = table[h % size]
        if dest is None:
            return None
        if not dest.overloaded and dest.weight > 0:
            return dest
        if "mh-fallback" not in self.flags:
            return None
        for offset in range(1, size):
            dest = table[mix64(h + offset) % size]
            if not dest.overloaded and dest.weight > 0:
                return dest
        return None
