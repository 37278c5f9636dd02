"""A seeded fault injector: loss, duplication, reordering, corruption, delay and a rate limit.

It wraps the sending side of any device.  Frames are scheduled on a heap by release time, so
delay, reordering and a bottleneck rate all come from one mechanism; ``poll(now)`` releases the
frames that are due.  The same seed gives the same faults, so a failing run can be replayed.
"""

from __future__ import annotations

import heapq
import random
from typing import Optional

from .base import DeviceWrapper


class FaultInjector(DeviceWrapper):
    def __init__(self, inner, seed: int = 0, loss: float = 0.0, duplicate: float = 0.0,
                 reorder: float = 0.0, corrupt: float = 0.0, delay: float = 0.0, jitter: float = 0.0,
                 rate_bps: Optional[float] = None, queue_limit: int = 1000):
        super().__init__(inner)
        self.gso_max = 0  # faults act on wire-sized frames: the stack must not hand down 64 KB ones
        for name, p in (("loss", loss), ("duplicate", duplicate), ("reorder", reorder), ("corrupt", corrupt)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} probability must be within 0..1, not {p}")
        if delay < 0 or jitter < 0 or (rate_bps is not None and rate_bps <= 0):
            raise ValueError("delay and jitter must be >= 0 and rate_bps > 0")
        self.random = random.Random(seed)
        self.loss, self.duplicate, self.reorder, self.corrupt = loss, duplicate, reorder, corrupt
        self.delay, self.jitter, self.rate_bps = delay, jitter, rate_bps
        self.queue_limit = queue_limit
        self._heap: list = []
        self._seq = 0
        self._link_free_at = 0.0
        self.stats = {"sent": 0, "lost": 0, "duplicated": 0, "reordered": 0, "corrupted": 0,
                      "queue_drops": 0}

    def send_parts(self, parts, now: float) -> None:
        self.send(b"".join(parts), now)  # every frame goes through the faults

    def send(self, frame: bytes, now: float) -> None:
        rnd = self.random.random
        if self.loss and rnd() < self.loss:
            self.stats["lost"] += 1
            return
        copies = 2 if self.duplicate and rnd() < self.duplicate else 1
        if copies == 2:
            self.stats["duplicated"] += 1
        for _ in range(copies):
            self._schedule(self._maybe_corrupt(frame), now)

    def _maybe_corrupt(self, frame: bytes) -> bytes:
        if not (self.corrupt and self.random.random() < self.corrupt) or not frame:
            return frame
        self.stats["corrupted"] += 1
        damaged = bytearray(frame)
        position = self.random.randrange(len(damaged))
        damaged[position] ^= 1 << self.random.randrange(8)
        return bytes(damaged)

    def _schedule(self, frame: bytes, now: float) -> None:
        if len(self._heap) >= self.queue_limit:
            self.stats["queue_drops"] += 1
            return
        release = now
        if self.rate_bps:
            # A bottleneck link: each frame waits for the ones before it to be serialized.
            start = max(now, self._link_free_at)
            self._link_free_at = start + len(frame) * 8 / self.rate_bps
            release = self._link_free_at
        release += self.delay
        if self.jitter:
            release += self.random.uniform(0, self.jitter)
        if self.reorder and self.random.random() < self.reorder:
            self.stats["reordered"] += 1
            release += max(self.delay, 0.001) * (1 + self.random.random())
        self._seq += 1
        heapq.heappush(self._heap, (release, self._seq, frame))
        if release <= now:
            self.poll(now)

    def poll(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, frame = heapq.heappop(heap)
            self.stats["sent"] += 1
            self.inner.send(frame, now)
        self.inner.poll(now)

    def next_deadline(self) -> Optional[float]:
        inner = self.inner.next_deadline()
        if not self._heap:
            return inner
        mine = self._heap[0][0]
        return mine if inner is None else min(mine, inner)
