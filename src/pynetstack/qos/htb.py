"""An HTB-like class tree (after Linux's sch_htb): each class has a guaranteed ``rate`` and a
``ceil`` it may reach by borrowing what its parent does not use, each a token bucket with its
own burst (``burst``, ``cburst``).  Packets queue only in leaves (each with FQ-CoDel inside).

Scheduling, as HTB's: a leaf may send when its ceil bucket, and that of every class up to its
lender, is not in debt; its lender is the nearest class, itself included, whose rate bucket is
not in debt.  Leaves that send on their own rate go first (level 0), then those borrowing from
their parent (level 1), and so on; at one level the lower ``prio`` goes first; leaves of equal
level and prio share by deficit round robin with ``quantum`` bytes per round (a deficit per
level, as HTB keeps) (HTB's default is
rate / r2q, so spare bandwidth is shared in proportion to the rates).  After a packet leaves,
the ceil buckets of the leaf and every ancestor are charged, and the rate buckets from the
lender up (a borrower does not run into debt on its own rate, as in HTB).

Voice is meant to be a prio 0 leaf with a policer (``police``): packets over the policer's
rate are dropped on arrival, so strict priority cannot starve the others.
"""

from __future__ import annotations

from typing import Dict, List, Optional

from .bucket import SLACK, TokenBucket
from .codel import FqCodel

EPSILON = 1e-9  # a timer a hair after the debt is paid, so float rounding cannot leave it unpaid


class HtbClass:
    __slots__ = ("name", "parent", "children", "rate", "ceil", "bucket", "cbucket", "prio", "quantum", "queue",
                 "policer", "deficits", "active", "depth", "sent_bytes", "sent_packets", "drops", "borrows",
                 "lends", "overlimits", "classid")

    def __init__(self, name: str, rate: float, ceil: Optional[float] = None, burst: int = 1600,
                 cburst: Optional[int] = None, prio: int = 1, quantum: Optional[int] = None,
                 queue: Optional[FqCodel] = None, policer: Optional[TokenBucket] = None, now: float = 0.0):
        self.name = name
        self.parent: Optional[HtbClass] = None
        self.children: List[HtbClass] = []
        self.rate = rate
        self.ceil = ceil if ceil is not None else rate
        self.bucket = TokenBucket(rate, burst, now)
        self.cbucket = TokenBucket(self.ceil, cburst if cburst is not None else burst, now)
        self.prio = prio
        # HTB: rate / r2q (r2q 10), kept between one MTU and 200000 bytes
        self.quantum = quantum if quantum is not None else int(min(200000, max(1514, rate / 10)))
        self.queue = queue
        self.policer = policer
        self.deficits = [0]  # DRR deficit per level it sends at (own rate, borrowed from parent, ...)
        self.active = False
        self.depth = 0
        self.sent_bytes = self.sent_packets = 0
        self.drops: Dict[str, int] = {}
        self.borrows = self.lends = self.overlimits = 0
        self.classid = ""

    def add(self, child: "HtbClass") -> "HtbClass":
        child.parent = self
        child.depth = self.depth + 1
        child.deficits = [0] * (child.depth + 1)
        self.children.append(child)
        return child

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()

    @property
    def is_leaf(self) -> bool:
        return not self.children


class HtbTree:
    """The tree under ``root``; ``enqueue(leaf, frame, now)`` and ``dequeue(now)``."""

    def __init__(self, root: HtbClass, on_drop=None):
        self.root = root
        self.leaves: Dict[str, HtbClass] = {}
        self.on_drop = on_drop or (lambda leaf, packet, reason: None)
        number = 1
        for cls in root.walk():
            cls.classid = f"1:{number}"
            number += 1
            if cls.is_leaf:
                if cls.queue is None:
                    cls.queue = FqCodel()
                cls.queue.on_drop = self._dropper(cls)
                self.leaves[cls.name] = cls
        self.prios = sorted({leaf.prio for leaf in self.leaves.values()})
        # the leaves of each prio in class order, and where each (level, prio) round is: as HTB's
        # feeds, a leaf that goes idle and comes back keeps its place and its deficit
        self.order: Dict[int, List[HtbClass]] = {prio: [leaf for leaf in self.leaves.values() if leaf.prio == prio]
                                                 for prio in self.prios}
        self.pointer: Dict[tuple, int] = {}
        self.packets = 0
        self.backlog = 0

    def _dropper(self, leaf: HtbClass):
        def dropped(packet, reason):
            self.packets -= 1
            self.backlog -= packet[2]
            self._count_drop(leaf, packet, reason)
        return dropped

    def _count_drop(self, leaf: HtbClass, packet, reason: str) -> None:
        leaf.drops[reason] = leaf.drops.get(reason, 0) + 1
        self.on_drop(leaf, packet, reason)

    def enqueue(self, leaf: HtbClass, frame, now: float, key: Optional[int] = None) -> bool:
        size = len(frame)
        policer = leaf.policer
        if policer is not None and not policer.conform(size, now):
            self._count_drop(leaf, [frame, now, size], "policed")
            return False
        self.packets += 1
        self.backlog += size
        ok = leaf.queue.enqueue(frame, now, key)  # an overlimit drop is counted by the callback
        if leaf.queue.packets:
            leaf.active = True
        return ok

    @staticmethod
    def _level(leaf: HtbClass, now: float) -> int:
        """How far up the lender is (0: the leaf's own rate), or -1 when the leaf may not send."""
        cls = leaf
        level = 0
        while cls is not None:
            if cls.cbucket.refill(now) < -SLACK:
                return -1
            if cls.bucket.refill(now) >= -SLACK:
                return level
            cls = cls.parent
            level += 1
        return -1

    def dequeue(self, now: float):
        """``(packet, leaf)`` for the next packet allowed to leave now, or None."""
        while self.packets:
            best = None  # (level, prio)
            levels = {}
            for prio in self.prios:
                for leaf in self.order[prio]:
                    if not leaf.active:
                        continue
                    level = self._level(leaf, now)
                    levels[leaf] = level
                    if level >= 0 and (best is None or level < best[0]):
                        best = (level, prio)
            if best is None:
                for leaf in levels:
                    leaf.overlimits += 1
                return None
            level, prio = best
            ring = self.order[prio]
            key = (level, prio)
            i = self.pointer.get(key, 0)
            while True:  # DRR among the leaves sending at this level, in class order
                leaf = ring[i % len(ring)]
                if levels.get(leaf) == level:
                    if leaf.deficits[level] > 0:
                        break
                    leaf.deficits[level] += leaf.quantum
                i += 1
            self.pointer[key] = i % len(ring)
            packet = leaf.queue.dequeue(now)
            if packet is not None:
                self.packets -= 1
                self.backlog -= packet[2]
            if not leaf.queue.packets:
                leaf.active = False
            if packet is None:
                continue  # CoDel dropped what the leaf had: choose again
            size = packet[2]
            leaf.deficits[level] -= size
            self._charge(leaf, level, size)
            leaf.sent_bytes += size
            leaf.sent_packets += 1
            return packet, leaf
        return None

    @staticmethod
    def _charge(leaf: HtbClass, level: int, size: int) -> None:
        cls = leaf
        depth = 0
        if level:
            leaf.borrows += 1
        while cls is not None:
            cls.cbucket.tokens -= size
            if depth >= level:
                cls.bucket.tokens -= size
                if depth == level and level:
                    cls.lends += 1
            if cls is not leaf:
                cls.sent_bytes += size
                cls.sent_packets += 1
            cls = cls.parent
            depth += 1

    def next_deadline(self) -> Optional[float]:
        """When the first waiting leaf may send (None when nothing waits): the soonest time at
        which some class on its way up has rate tokens and every class below it ceil tokens."""
        if not self.packets:
            return None
        soonest = None
        for ring in self.order.values():
            for leaf in ring:
                if not leaf.active:
                    continue
                ceil_ready = float("-inf")
                cls = leaf
                while cls is not None:
                    ceil_ready = max(ceil_ready, cls.cbucket.ready_at())
                    ready = max(ceil_ready, cls.bucket.ready_at())
                    if soonest is None or ready < soonest:
                        soonest = ready
                    cls = cls.parent
        return None if soonest is None else soonest + EPSILON
