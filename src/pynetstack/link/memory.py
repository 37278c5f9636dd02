"""An in-memory Ethernet cable between two devices, for tests and simulation."""

from __future__ import annotations

from collections import deque
from typing import List, Optional, Tuple

from .base import DEFAULT_BATCH, Device


class MemoryDevice(Device):
    """One end of a :func:`memory_pair`. Frames sent here are received by the peer end."""

    def __init__(self, name: str, mtu: int = 1500, queue_limit: int = 100_000):
        self.name = name
        self.mtu = mtu
        self.peer: Optional[MemoryDevice] = None
        self.inbox: deque = deque()
        self.queue_limit = queue_limit
        self.dropped = 0
        self.sent = 0

    def receive(self, now: float, batch: int = DEFAULT_BATCH) -> List[bytes]:
        inbox = self.inbox
        if not inbox:
            return []
        count = min(batch, len(inbox))
        return [inbox.popleft() for _ in range(count)]

    def send(self, frame: bytes, now: float) -> None:
        peer = self.peer
        if peer is None:
            return
        if len(peer.inbox) >= peer.queue_limit:
            self.dropped += 1
            return
        self.sent += 1
        peer.inbox.append(bytes(frame))

    @property
    def pending(self) -> int:
        return len(self.inbox)


def memory_pair(mtu: int = 1500, names: Tuple[str, str] = ("mem0", "mem1")) -> Tuple[MemoryDevice, MemoryDevice]:
    a = MemoryDevice(names[0], mtu)
    b = MemoryDevice(names[1], mtu)
    a.peer, b.peer = b, a
    return a, b
