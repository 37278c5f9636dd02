"""IPVS's schedulers with IPVS's exact selection rules (net/netfilter/ipvs/ip_vs_*.c).

A scheduler sees the service's destinations in IPVS's list order (the most recently added
first, as ``list_add`` puts them) and picks one for a new connection, or None.  Each keeps the
little state IPVS keeps (rr's last pick, wrr's current weight, the hash tables of sh and dh)
and is told when the destinations change (``update``), as IPVS calls its add/del/upd_dest.

Counters the rules read live on the destination: ``active`` and ``inactive`` connections (a
new connection counts as inactive until the protocol's state makes it active), ``weight``,
``overloaded`` (the -x upper threshold was reached).
"""

from __future__ import annotations

from math import gcd
from typing import List

_M32 = 0xFFFFFFFF
GOLDEN_RATIO_32 = 0x61C88647  # include/linux/hash.h: hash_32(v, bits) = (v * this) >> (32 - bits)
HASH_TAB_BITS = 8  # CONFIG_IP_VS_SH_TAB_BITS / CONFIG_IP_VS_DH_TAB_BITS
HASH_TAB_SIZE = 1 << HASH_TAB_BITS


def hash_32(value: int, bits: int) -> int:
    return ((value * GOLDEN_RATIO_32) & _M32) >> (32 - bits)


def conn_overhead(dest) -> int:
    """ip_vs_dest_conn_overhead: an active connection costs 256 times an inactive one."""
    return (dest.active << 8) + dest.inactive


class Scheduler:
    name = "?"

    def __init__(self, flags=()):
        self.flags = frozenset(flags)

    def update(self, dests: List) -> None:
        """The destinations, their order or their weights changed."""

    def pick(self, dests: List, src: int, sport: int, dst: int, dport: int):
        raise NotImplementedError


class RoundRobin(Scheduler):
    """rr: the next destination after the last one picked that has weight and is not overloaded."""

    name = "rr"

    def __init__(self, flags=()):
        super().__init__(flags)
        self.last = None
        self.order: List = []

    def update(self, dests) -> None:
        last = self.last
        while last is not None and last not in dests:
            # ip_vs_rr_del_dest: the mark steps back to the previous entry (the head at the front)
            i = self.order.index(last)
            last = self.order[i - 1] if i > 0 else None
        self.last = last
        self.order = list(dests)

    def pick(self, dests, src, sport, dst, dport):
        n = len(dests)
        start = dests.index(self.last) + 1 if self.last is not None else 0
        for i in range(n):
            dest = dests[(start + i) % n]
            if not dest.overloaded and dest.weight > 0:
                self.last = dest
                return dest
        return None


class WeightedRoundRobin(Scheduler):
    """wrr: passes over the list with a current weight ``cw`` falling from the largest weight by
    the weights' gcd ``di``; a destination is picked when its weight is at least ``cw``."""

    name = "wrr"

    def __init__(self, flags=()):
        super().__init__(flags)
        self.position = -1  # index of the last pick; -1 is the list head
        self.cw = self.mw = 0
        self.di = 1

    def update(self, dests) -> None:
        weights = [d.weight for d in dests if d.weight > 0]
        g = 0
        for w in weights:
            g = gcd(g, w) if g else w
        self.di = g or 1
        self.mw = max([d.weight for d in dests] + [0]) - (self.di - 1)
        self.position = -1
        if self.cw > self.mw or not self.cw:
            self.cw = self.mw
        elif self.di > 1:
            self.cw = (self.cw // self.di) * self.di + 1

    def pick(self, dests, src, sport, dst, dport):
        if self.mw <= 0:
            return None
        n = len(dests)
        last = self.position
        pos = last
        stop = None
        last_pass = restarted = False
        while True:
            for i in range(pos + 1, n):
                dest = dests[i]
                if not dest.overloaded and dest.weight >= self.cw:
                    self.position = i
                    return dest
                if i == stop:
                    self.position = i
                    return None
            pos = -1  # back at the head
            self.cw -= self.di
            if self.cw <= 0:
                self.cw = self.mw
                if last_pass or last == -1:
                    self.position = -1
                    return None
                restarted = True
            last_pass = self.cw <= self.di
            if last_pass and restarted and last != -1:
                stop = last


class LeastConnection(Scheduler):
    """lc: the least overhead (256 x active + inactive); the first of equals wins."""

    name = "lc"

    def pick(self, dests, src, sport, dst, dport):
        least = None
        loh = 0
        for dest in dests:
            if dest.overloaded or dest.weight == 0:
                continue
            doh = (dest.active << 8) + dest.inactive
            if least is None or doh < loh:
                least, loh = dest, doh
        return least


class WeightedLeastConnection(Scheduler):
    """wlc (the default): the least overhead per weight, compared without division as IPVS
    does: ``loh * dest.weight > doh * least.weight`` makes ``dest`` the new least."""

    name = "wlc"

    @staticmethod
    def overhead(dest) -> int:
        return (dest.active << 8) + dest.inactive

    def pick(self, dests, src, sport, dst, dport):
        overhead = self.overhead
        n = len(dests)
        for first in range(n):
            least = dests[first]
            if not least.overloaded and least.weight > 0:
                break
        else:
            return None
        loh = overhead(least)
        for i in range(first + 1, n):
            dest = dests[i]
            if dest.overloaded:
                continue
            doh = overhead(dest)
            if loh * dest.weight > doh * least.weight:
                least, loh = dest, doh
        return least


class ShortestExpectedDelay(WeightedLeastConnection):
    """sed: as wlc with overhead = active + 1 (inactive connections cost nothing)."""

    name = "sed"

    @staticmethod
    def overhead(dest) -> int:
        return dest.active + 1


class NeverQueue(Scheduler):
    """nq: an idle destination (no active connection) at once, else as sed."""

    name = "nq"

    def pick(self, dests, src, sport, dst, dport):
        least = None
        loh = 0
        for dest in dests:
            if dest.overloaded or not dest.weight:
                continue
            doh = dest.active + 1
            if dest.active == 0:
                return dest
            if least is None or loh * dest.weight > doh * least.weight:
                least, loh = dest, doh
        return least


def _unavailable(dest) -> bool:
    return dest is None or dest.weight <= 0 or dest.overloaded


class SourceHashing(Scheduler):
    """sh: a 256-bucket table filled in list order, each destination taking ``weight``
    consecutive buckets; the bucket is hash_32(source address [+ source port]).  Flags:
    ``sh-port`` hashes the port too, ``sh-fallback`` walks on from an unavailable bucket."""

    name = "sh"

    def __init__(self, flags=()):
        super().__init__(flags)
        self.buckets: List = [None] * HASH_TAB_SIZE

    def update(self, dests) -> None:
        buckets = [None] * HASH_TAB_SIZE
        if dests:
            index = count = 0
            for i in range(HASH_TAB_SIZE):
                dest = dests[index]
                buckets[i] = dest
                count += 1
                if count >= dest.weight:  # do not move on until the weight is filled
                    index = (index + 1) % len(dests)
                    count = 0
        self.buckets = buckets  # swapped whole

    def key(self, src: int, sport: int, dst: int) -> int:
        port = sport if "sh-port" in self.flags else 0
        return (port + src) & _M32

    def pick(self, dests, src, sport, dst, dport):
        buckets = self.buckets
        ihash = hash_32(self.key(src, sport, dst), HASH_TAB_BITS)
        dest = buckets[ihash]
        if dest is None:
            return None
        if not _unavailable(dest):
            return dest
        if "sh-fallback" not in self.flags:
            return None
        for offset in range(HASH_TAB_SIZE):  # from the original bucket on, deterministically
            dest = buckets[(((offset + ihash) % HASH_TAB_SIZE) + ihash) % HASH_TAB_SIZE]
            if dest is None:
                return None
            if not _unavailable(dest):
                return dest
        return None


class DestinationHashing(SourceHashing):
    """dh: the same table by destination address, one bucket per destination in turn."""

    name = "dh"

    def update(self, dests) -> None:
        self.buckets = [dests[i % len(dests)] if dests else None for i in range(HASH_TAB_SIZE)]

    def key(self, src: int, sport: int, dst: int) -> int:
        return dst

    def pick(self, dests, src, sport, dst, dport):
        dest = self.buckets[hash_32(dst, HASH_TAB_BITS)]
        return None if _unavailable(dest) else dest


SCHEDULERS = {cls.name: cls for cls in (RoundRobin, WeightedRoundRobin, LeastConnection, WeightedLeastConnection,
                                        ShortestExpectedDelay, NeverQueue, SourceHashing, DestinationHashing)}
FLAGS = ("sh-port", "sh-fallback", "mh-port", "mh-fallback")


def make_scheduler(name: str, flags=()) -> Scheduler:
    """A scheduler by its ipvsadm name (-s)."""
    if name == "mh":
        from .maglev import MaglevHashing
        return MaglevHashing(flags)
    cls = SCHEDULERS.get(name)
    if cls is None:
        from .service import LbError
        raise LbError(f"unknown scheduler {name!r} (use one of {', '.join(sorted(list(SCHEDULERS) + ['mh']))})")
    return cls(flags)

