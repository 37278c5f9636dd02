"""IPv4 fragment reassembly (RFC 791, RFC 815 hole tracking) with bounds on time and memory.

Overlapping fragments drop the whole datagram, as Linux does since 2018: overlaps serve only
to evade inspection.  Memory is bounded in bytes (data plus a per-fragment overhead) and in
datagrams; the oldest go first.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import OrderedDict
from typing import Callable, Optional

from ..wire.ipv4 import IPv4
from .drops import DropReason

MAX_DATAGRAM = 65535
MAX_FRAGMENTS = MAX_DATAGRAM // 8 + 1  # every 8-byte slot of the largest datagram, as Linux allows
FRAGMENT_OVERHEAD = 64  # bytes charged per fragment on top of its data, so tiny fragments cost too


class _Partial:
    __slots__ = ("pieces", "offsets", "total", "first", "size", "held", "deadline")

    def __init__(self, deadline: float):
        self.pieces = {}  # offset -> bytes
        self.offsets = []  # the pieces' offsets, sorted
        self.held = 0  # bytes charged to the memory bound: data plus per-fragment overhead
        self.total: Optional[int] = None  # payload length, known once the last fragment arrives
        self.first: Optional[IPv4] = None  # the offset-0 fragment, whose header the datagram keeps
        self.size = 0
        self.deadline = deadline


class Reassembler:
    def __init__(self, drop: Callable[[str], None], on_timeout: Callable[[IPv4, float], None],
                 timeout: float = 30.0, max_bytes: int = 4 * 1024 * 1024, max_datagrams: int = 1024):
        self._drop = drop
        self._on_timeout = on_timeout
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_datagrams = max_datagrams
        self.partials: "OrderedDict[tuple, _Partial]" = OrderedDict()
        self.bytes_held = 0
        self.completed = 0

    def add(self, ip: IPv4, now: float) -> Optional[IPv4]:
        """Add one fragment; return the whole datagram when this fragment completes it."""
        data = bytes(ip.payload)
        offset = ip.frag_offset
        end = offset + len(data)
        if ip.mf and (len(data) & 7 or not data):
            self._drop(DropReason.FRAG_BAD_LENGTH)
            return None
        if end + ip.header_length > MAX_DATAGRAM:
            self._drop(DropReason.FRAG_TOO_BIG)
            return None
        cost = len(data) + FRAGMENT_OVERHEAD
        key = (ip.src, ip.dst, ip.protocol, ip.ident)
        partial = self.partials.get(key)
        if partial is None:
            while len(self.partials) >= self.max_datagrams or self.bytes_held + cost > self.max_bytes:
                if not self.partials:
                    self._drop(DropReason.FRAG_MEMORY)
                    return None
                self._discard(next(iter(self.partials)), DropReason.FRAG_MEMORY)
            partial = self.partials[key] = _Partial(now + self.timeout)
        elif self.bytes_held + cost > self.max_bytes:
            self._discard(key, DropReason.FRAG_MEMORY)
            return None
        offsets = partial.offsets
        pieces = partial.pieces
        if not ip.mf:
            last_end = offsets[-1] + len(pieces[offsets[-1]]) if offsets else 0
            if (partial.total is not None and partial.total != end) or last_end > end:
                self._discard(key, DropReason.FRAG_OVERLAP)
                return None
            partial.total = end
        elif partial.total is not None and end > partial.total:
            self._discard(key, DropReason.FRAG_OVERLAP)
            return None
        existing = pieces.get(offset)
        if existing is not None and existing == data:
            self._drop(DropReason.FRAG_DUPLICATE)
            return None
        if len(offsets) >= MAX_FRAGMENTS:
            self._discard(key, DropReason.FRAG_TOO_MANY)
            return None
        # Offsets are kept sorted, so only the neighbours on either side can overlap.
        index = bisect_left(offsets, offset)
        if (index < len(offsets) and offsets[index] < end) or \
                (index > 0 and offsets[index - 1] + len(pieces[offsets[index - 1]]) > offset):
            self._discard(key, DropReason.FRAG_OVERLAP)
            return None
        offsets.insert(index, offset)
        pieces[offset] = data
        partial.size += len(data)
        partial.held += cost
        self.bytes_held += cost
        if offset == 0:
            partial.first = ip
        if partial.total is None or partial.size != partial.total:
            return None
        del self.partials[key]
        self.bytes_held -= partial.held
        self.completed += 1
        payload = b"".join([pieces[o] for o in offsets])
        first = partial.first
        whole = IPv4(first.src, first.dst, first.protocol, payload, ttl=first.ttl, tos=first.tos,
                     ident=first.ident, df=first.df, options=first.options)
        whole.total_length = first.header_length + len(payload)
        return whole

    def _discard(self, key: tuple, reason: str) -> None:
        partial = self.partials.pop(key)
        self.bytes_held -= partial.held
        self._drop(reason)

    def poll(self, now: float) -> None:
        while self.partials:
            key, partial = next(iter(self.partials.items()))
            if partial.deadline > now:
                break
            self._discard(key, DropReason.FRAG_TIMEOUT)
            if partial.first is not None:
                self._on_timeout(partial.first, now)

    def next_deadline(self) -> Optional[float]:
        if not self.partials:
            return None
        return next(iter(self.partials.values())).deadline
