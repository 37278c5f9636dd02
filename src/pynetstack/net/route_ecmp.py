"""Multipath next-hop choice: the flow hash, hash-threshold regions (RFC 2992) and resilient
next-hop groups (Linux ``ip nexthop ... type resilient``).

The flow hash is 31 bits wide, like Linux's (``fib_multipath_hash`` >> 1), so the hash space is
[0, 2**31). Hash policy 0 hashes (src, dst); policy 1 adds (proto, sport, dport), as the sysctl
``net.ipv4.fib_multipath_hash_policy`` 0 and 1. A seed (``fib_multipath_hash_seed``) keeps
routers in a chain from all splitting flows the same way (polarisation).

ICMP errors: to keep an error on the path of the flow it reports, hash the header embedded in the
error (its src, dst and, for policy 1, its proto and ports) as they appear there -- what Linux's
``ip_multipath_l3_keys`` does for policy 0.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from typing import Dict, List, Optional, Sequence

HASH_SPACE = 1 << 31
_M64 = (1 << 64) - 1


def random_seed() -> int:
    return int.from_bytes(os.urandom(8), "big")


def flow_hash(seed: int, policy: int, src: int, dst: int, proto: int = 0, sport: int = 0,
              dport: int = 0) -> int:
    """A 31-bit hash of the flow; two rounds of the murmur3 64-bit finaliser (a full avalanche
    for the cost of a few big-int multiplies, the cheapest good mixer in pure Python)."""
    x = (((src << 32) | dst) ^ seed) & _M64
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & _M64
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & _M64
    x ^= x >> 33
    if policy:
        x ^= (proto << 32) | (sport << 16) | dport
        x = (x * 0xFF51AFD7ED558CCD) & _M64
        x ^= x >> 33
        x = (x * 0xC4CEB9FE1A85EC53) & _M64
        x ^= x >> 33
    return x >> 33


def upper_bounds(weights: Sequence[int]) -> List[int]:
    """Hash-threshold regions (RFC 2992 section 2): next hop i owns the hashes up to and
    including bounds[i]; region sizes are in proportion to the weights. The rounding is Linux's
    ``fib_rebalance``: bound = round(cumulative weight * 2**31 / total) - 1."""
    total = sum(weights)
    bounds = []
    cumulative = 0
    for weight in weights:
        cumulative += weight
        bounds.append((cumulative * HASH_SPACE * 2 + total) // (2 * total) - 1)
    return bounds


def hash_threshold(bounds: List[int], flow: int) -> int:
    """Index of the region (next hop) that owns ``flow``."""
    return bisect_left(bounds, flow & (HASH_SPACE - 1))


def _is_up(nexthop) -> bool:
    return getattr(nexthop.interface, "up", True)


class ResilientGroup:
    """A resilient next-hop group: ``buckets`` hash buckets, each owned by one next hop, in
    proportion to the weights. A change moves as few flows as possible: buckets of a next hop that
    goes away (removed, or its device down) are reassigned at once and no other bucket moves; a new
    next hop gets buckets only from over-served next hops, and only buckets idle for
    ``idle_timer`` seconds (so flows in progress stay put), unless the group has been unbalanced
    for ``unbalanced_timer`` seconds (0: wait for idleness forever), as in Linux.

    A bucket counts as used when a flow hashes to it (``select(flow_hash, now)``). Buckets move
    on ``select`` (the bucket about to be used, if it may move) and on ``poll(now)``."""

    __slots__ = ("id", "nexthops", "buckets", "idle_timer", "unbalanced_timer", "_owner", "_used",
                 "_wants", "_count", "_balanced", "_unbalanced_since")

    def __init__(self, id: int, nexthops: Sequence, buckets: int = 128, idle_timer: float = 120.0,
                 unbalanced_timer: float = 0.0):
        from .route import RouteError
        if not nexthops:
            raise RouteError("a resilient group needs at least one next hop")
        if not 1 <= buckets <= 65535:
            raise RouteError(f"resilient group {id}: buckets must be 1..65535, not {buckets}")
        self.id = id
        self.nexthops: List = list(nexthops)
        self.buckets = buckets
        self.idle_timer = idle_timer
        self.unbalanced_timer = unbalanced_timer
        self._owner: List[Optional[object]] = [None] * buckets  # bucket -> NextHop (None: orphan)
        self._used = [float("-inf")] * buckets  # bucket -> when a flow last hashed to it
        self._wants: Dict[int, int] = {}
        self._count: Dict[int, int] = {}
        self._balanced = True
        self._unbalanced_since: Optional[float] = None  # None also when no clock was seen yet
        self.refresh()

    # ------------------------------------------------------------------ membership
    def add(self, nexthop, now: float = 0.0) -> None:
        self.nexthops.append(nexthop)
        self.refresh(now)

    def remove(self, nexthop, now: float = 0.0) -> None:
        from .route import RouteError
        if nexthop not in self.nexthops:
            raise RouteError(f"next hop {nexthop!r} is not in resilient group {self.id}")
        if len(self.nexthops) == 1:
            raise RouteError(f"resilient group {self.id} cannot lose its last next hop")
        self.nexthops.remove(nexthop)
        self.refresh(now)

    def refresh(self, now: Optional[float] = None) -> None:
        """Recompute each next hop's share after a membership or device-state change; orphaned
        buckets (of a next hop gone or down) get an owner at once."""
        live = [nh for nh in self.nexthops if _is_up(nh)]
        ids = {id(nh) for nh in live}
        wants: Dict[int, int] = {}
        if live:
            total = sum(nh.weight for nh in live)
            cumulative = previous = 0
            for nh in live:
                cumulative += nh.weight
                upper = (cumulative * self.buckets * 2 + total) // (2 * total)
                wants[id(nh)] = upper - previous
                previous = upper
        self._wants = wants
        count = dict.fromkeys(wants, 0)
        owner = self._owner
        for b, nh in enumerate(owner):
            if nh is not None and id(nh) in ids:
                count[id(nh)] += 1
            else:
                owner[b] = None
        self._count = count
        by_id = {id(nh): nh for nh in live}
        for b, nh in enumerate(owner):
            if nh is None and live:
                owner[b] = by_id[self._neediest()]
                count[id(owner[b])] += 1
                if now is not None:
                    self._used[b] = now
        self._note_balance(now)

    # ------------------------------------------------------------------ the packet path
    def select(self, flow: int, now: float):
        b = flow % self.buckets
        nh = self._owner[b]
        if not self._balanced:
            self._maybe_move(b, now, self._forced(now))
            nh = self._owner[b]
        self._used[b] = now
        return nh

    def poll(self, now: float) -> None:
        """Move every bucket that may move now (idle ones, or all over-served ones once the group
        has been unbalanced for ``unbalanced_timer``)."""
        if self._balanced:
            return
        forced = self._forced(now)
        for b in range(self.buckets):
            self._maybe_move(b, now, forced)
            if self._balanced:
                break

    def bucket_counts(self) -> Dict[object, int]:
        """NextHop -> buckets it owns (``ip nexthop bucket show``, summed)."""
        counts: Dict[object, int] = {}
        for nh in self._owner:
            counts[nh] = counts.get(nh, 0) + 1
        return counts

    def owner(self, bucket: int):
        return self._owner[bucket]

    # ------------------------------------------------------------------ internals
    def _neediest(self) -> int:
        """Id of the next hop furthest below its share (first one on ties)."""
        count = self._count
        return max(self._wants, key=lambda k: self._wants[k] - count[k])

    def _forced(self, now: float) -> bool:
        if self._unbalanced_since is None:
            self._unbalanced_since = now
        return bool(self.unbalanced_timer) and now - self._unbalanced_since >= self.unbalanced_timer

    def _maybe_move(self, b: int, now: float, forced: bool) -> None:
        nh = self._owner[b]
        key = id(nh)
        if self._count[key] <= self._wants[key]:
            return
        if not forced and now - self._used[b] < self.idle_timer:
            return
        target = self._neediest()
        self._count[key] -= 1
        self._count[target] += 1
        self._owner[b] = next(n for n in self.nexthops if id(n) == target)
        self._used[b] = now
        self._note_balance(now)

    def _note_balance(self, now: Optional[float]) -> None:
        self._balanced = all(self._count[k] <= w for k, w in self._wants.items())
        if self._balanced:
            self._unbalanced_since = None
        elif self._unbalanced_since is None:
            self._unbalanced_since = now

    def __repr__(self) -> str:
        members = "/".join(f"{nh!r},{nh.weight}" for nh in self.nexthops)
        return (f"id {self.id} group {members} type resilient buckets {self.buckets} "
                f"idle_timer {self.idle_timer:g} unbalanced_timer {self.unbalanced_timer:g}")
