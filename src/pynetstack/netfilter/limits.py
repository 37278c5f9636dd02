"""Per-source rate limits for DDoS defence, sans-I/O (time is an argument), every table bounded.

- :class:`SlidingWindowLimiter` -- the seed's "rate limiting with sliding window algorithms": a
  sliding-window counter per key.  The estimate of the last ``window`` seconds is the current
  fixed window's count plus the previous window's count weighted by how much of it still lies in
  the sliding window (the usual approximation: O(1) state per key, no per-packet timestamps).
- :class:`TokenBucketLimiter` -- a token bucket per key (``rate`` per second, ``burst`` deep), as
  nft's ``add @set { ip saddr limit rate ... }`` keeps one per element.
- :class:`RateLimitFunction` -- either of them on the packet path, per source address, for all
  packets or for one protocol (ICMP and UDP floods), counted as drops ``ddos-rate-limit``.

Tables hold at most ``max_keys`` keys; when full, the least recently seen key is evicted (its
state is the oldest, so the least informative); evictions are counted.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Optional

from ..net import hooks as hk


class SlidingWindowLimiter:
    """At most ``limit`` events per ``window`` seconds per key (estimated, see the module doc)."""

    __slots__ = ("limit", "window", "max_keys", "keys", "counters")

    def __init__(self, limit: float, window: float = 1.0, max_keys: int = 65536):
        if limit <= 0 or window <= 0 or max_keys <= 0:
            raise ValueError("limit, window and max_keys must be positive")
        self.limit = float(limit)
        self.window = float(window)
        self.max_keys = max_keys
        self.keys: "OrderedDict" = OrderedDict()  # key -> [window start, count, previous count]
        self.counters = {"allowed": 0, "limited": 0, "evicted": 0}

    def allow(self, key, now: float) -> bool:
        keys = self.keys
        state = keys.get(key)
        window = self.window
        start = now - (now % window)
        if state is None:
            if len(keys) >= self.max_keys:
                keys.popitem(last=False)
                self.counters["evicted"] += 1
            state = keys[key] = [start, 0, 0]
        else:
            keys.move_to_end(key)
            if start != state[0]:
                # the previous window is the one just before this, or empty after a longer gap
                state[2] = state[1] if start - state[0] <= window * 1.5 else 0
                state[0], state[1] = start, 0
        weight = 1.0 - (now - start) / window
        if state[1] + state[2] * weight + 1 > self.limit:
            self.counters["limited"] += 1
            return False
        state[1] += 1
        self.counters["allowed"] += 1
        return True

    def estimate(self, key, now: float) -> float:
        state = self.keys.get(key)
        if state is None:
            return 0.0
        start = now - (now % self.window)
        if start != state[0]:
            previous = state[1] if start - state[0] <= self.window * 1.5 else 0
            return previous * (1.0 - (now - start) / self.window)
        return state[1] + state[2] * (1.0 - (now - start) / self.window)


class TokenBucketLimiter:
    """``rate`` events per second with bursts of ``burst``, per key."""

    __slots__ = ("rate", "burst", "max_keys", "keys", "counters")

    def __init__(self, rate: float, burst: float = 5, max_keys: int = 65536):
        if rate <= 0 or burst < 1 or max_keys <= 0:
            raise ValueError("rate must be positive, burst at least 1, max_keys positive")
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_keys = max_keys
        self.keys: "OrderedDict" = OrderedDict()  # key -> [tokens, last time]
        self.counters = {"allowed": 0, "limited": 0, "evicted": 0}

    def allow(self, key, now: float) -> bool:
        keys = self.keys
        state = keys.get(key)
        if state is None:
            if len(keys) >= self.max_keys:
                keys.popitem(last=False)
                self.counters["evicted"] += 1
            state = keys[key] = [self.burst, now]
        else:
            keys.move_to_end(key)
            if now > state[1]:
                state[0] = min(self.burst, state[0] + (now - state[1]) * self.rate)
                state[1] = now
        if state[0] >= 1.0:
            state[0] -= 1.0
            self.counters["allowed"] += 1
            return True
        self.counters["limited"] += 1
        return False


class RateLimitFunction(hk.NetworkFunction):
    """Drop what a source sends beyond its limit, early (PREROUTING, before conntrack at -200, so
    a flood costs no conntrack entry).  ``protocol``: 1 (ICMP), 6, 17, or None for every packet."""

    name = "ddos-rate-limit"
    hooks = ((hk.PREROUTING, -300),)  # nft's "raw" priority

    def __init__(self, limiter, protocol: Optional[int] = None, name: Optional[str] = None):
        self.limiter = limiter
        self.protocol = protocol
        if name:
            self.name = name

    def process(self, ctx: hk.PacketContext) -> str:
        if self.protocol is not None and ctx.proto != self.protocol:
            return hk.ACCEPT
        if self.limiter.allow(ctx.ip.src, ctx.now):
            return hk.ACCEPT
        return ctx.drop(self.name)

    def stats(self) -> dict:
        out = dict(self.limiter.counters)
        out["sources"] = len(self.limiter.keys)
        return out
