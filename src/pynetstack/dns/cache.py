"""The resolver's cache: RRsets and negative answers, TTL expiry, LRU bounded in entries and bytes.

Time is passed in (``now``, monotonic seconds), so expiry is tested on a virtual clock.
Trust ranks follow RFC 2181 section 5.4.1: data of a lower rank never replaces live data of a
higher one (glue cannot overwrite an authoritative answer).
"""
from __future__ import annotations

from collections import OrderedDict

from ..wire import dns as w

RANK_GLUE, RANK_AUTHORITY, RANK_ANSWER, RANK_AUTH_ANSWER = 1, 2, 3, 4
NXDOMAIN_KEY = -1            # one negative entry covers every type of a name that does not exist
ENTRY_OVERHEAD = 200         # rough Python object cost of one entry beyond its wire size


class CacheEntry:
    __slots__ = ("records", "expires", "rank", "rcode", "negative", "size")

    def __init__(self, records, expires, rank, rcode=w.NOERROR, negative=False):
        self.records, self.expires, self.rank = records, expires, rank
        self.rcode, self.negative, self.size = rcode, negative, wire_size(records)


class Cached:
    """A cache hit: ``records`` with TTLs counted down; negative hits carry rcode and the SOA."""

    __slots__ = ("records", "rcode", "negative")

    def __init__(self, records, rcode=w.NOERROR, negative=False):
        self.records, self.rcode, self.negative = records, rcode, negative


class CacheStats:
    __slots__ = ("hits", "misses", "inserts", "evictions", "expired")

    def __init__(self):
        self.hits = self.misses = self.inserts = self.evictions = self.expired = 0

    def as_dict(self) -> dict:
        return {s: getattr(self, s) for s in self.__slots__}


def wire_size(records) -> int:
    writer = w.Writer()
    for rr in records:
        w.write_record(writer, rr)
    return len(writer.buf)


class Cache:
    def __init__(self, max_entries: int = 10000, max_bytes: int | None = 64 * 1024 * 1024,
                 max_ttl: int = 86400, max_negative_ttl: int = 3 * 3600):
        if max_entries < 1:
            raise ValueError("cache_size must be at least 1")
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self.max_ttl, self.max_negative_ttl = max_ttl, max_negative_ttl
        self.entries = OrderedDict()   # (lower name, rtype) -> CacheEntry, least recently used first
        self.bytes = 0
        self.stats = CacheStats()
        self.generation = 0            # bumped on every insert/eviction, so memoised answers can check

    def __len__(self):
        return len(self.entries)

    # -- writing ----------------------------------------------------------------------------

    def put(self, records, now: float, rank: int = RANK_ANSWER, key=None) -> None:
        """Store one RRset (all records share owner and type) under (owner, type), or under
        ``key`` (a DNAME with the CNAME it synthesised). Its TTL is the lowest in the set."""
        if not records:
            return
        # RFC 2181 section 8: a TTL with the top bit set is to be taken as zero.
        ttl = min(min(0 if rr.ttl & 0x80000000 else rr.ttl for rr in records), self.max_ttl)
        if key is None:
            key = (records[0].name.lower(), records[0].rtype)
        self._store(key, CacheEntry(list(records), now + ttl, rank), now)

    def put_negative(self, name: str, rtype: int, rcode: int, soa: w.Record | None, now: float) -> None:
        """RFC 2308: NXDOMAIN (all types) or NODATA, for min(SOA TTL, SOA minimum) seconds."""
        if soa is None:
            return  # no SOA, no negative caching (RFC 2308 section 5)
        ttl = min(soa.ttl, soa.data.minimum, self.max_negative_ttl)
        key = (name.lower(), NXDOMAIN_KEY if rcode == w.NXDOMAIN else rtype)
        soa = soa.with_ttl(ttl)
        self._store(key, CacheEntry([soa], now + ttl, RANK_AUTH_ANSWER, rcode, negative=True), now)

    def _store(self, key, entry: CacheEntry, now: float) -> None:
        entry.size += ENTRY_OVERHEAD
        old = self.entries.get(key)
        if old is not None:
            if old.expires > now and old.rank > entry.rank:
                return
            self._remove(key)
        self.entries[key] = entry
        self.bytes += entry.size
        self.stats.inserts += 1
        self.generation += 1
        while len(self.entries) > self.max_entries or (
                self.max_bytes is not None and self.bytes > self.max_bytes and len(self.entries) > 1):
            self._remove(next(iter(self.entries)))
            self.stats.evictions += 1

    def _remove(self, key) -> None:
        entry = self.entries.pop(key)
        self.bytes -= entry.size
        self.generation += 1

    # -- reading ----------------------------------------------------------------------------

    def get(self, name: str, rtype: int, now: float, count: bool = True, min_rank: int = 0) -> Cached | None:
        """A live RRset or negative entry for (name, rtype), TTLs counted down to ``now``;
        only of ``min_rank`` or above (a client is answered from answer-rank data only)."""
        lname = name.lower()
        entry = self._live((lname, rtype), now) or self._live((lname, NXDOMAIN_KEY), now)
        if entry is not None and entry.rank < min_rank:
            entry = None
        if entry is None:
            if count:
                self.stats.misses += 1
            return None
        if count:
            self.stats.hits += 1
        remaining = int(entry.expires - now)
        records = [rr.with_ttl(remaining) for rr in entry.records]
        return Cached(records, entry.rcode, entry.negative)

    def _live(self, key, now: float):
        entry = self.entries.get(key)
        if entry is None:
            return None
        if entry.expires <= now:
            self._remove(key)
            self.stats.expired += 1
            return None
        self.entries.move_to_end(key)
        return entry

    def expires_at(self, name: str, rtype: int):
        entry = self.entries.get((name.lower(), rtype))
        return entry.expires if entry is not None else None

    def purge(self, now: float) -> int:
        """Drop every expired entry; returns how many."""
        dead = [k for k, e in self.entries.items() if e.expires <= now]
        for key in dead:
            self._remove(key)
        self.stats.expired += len(dead)
        return len(dead)
