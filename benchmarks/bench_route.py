"""Longest-prefix-match speed and memory of the routing table.

Compares, in the same run, on 1k, 10k and 100k random prefixes with a BGP-like length mix:
  fib-miss   RoutingTable.lookup on distinct destinations (every lookup misses the cache)
  fib-hit    RoutingTable.lookup on destinations already cached
  fib-only   the compiled FIB alone (Fib.lookup, no cache in front)
  fib-uniform  fib-miss, but destinations uniform over the address space (most stop at level 1)
  per-length the peer: the old table, one dict per prefix length walked longest first
  dict.get   the ceiling: one dict probe per lookup, what no LPM can beat in Python
Destinations are drawn inside the table's prefixes, so lookups go as deep as the FIB does.
Then memory for 100k prefixes (tracemalloc; CPython only) for the table and for the peer.

Run: python benchmarks/bench_route.py  (about a minute on CPython; faster on PyPy)
"""

from __future__ import annotations

import gc
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from pynetstack.net.route import Route, RoutingTable  # noqa: E402
from pynetstack.net.route_policy import RoutingPolicy  # noqa: E402
from pynetstack.wire.addr import prefix_mask  # noqa: E402

RUNS = 5
# share of each prefix length, roughly as in a full IPv4 BGP table (every length from 8 to 24 is
# present, most are /24, then /22-/23) plus a few longer ones as an IGP adds
LENGTH_MIX = [(8, 1), (9, 1), (10, 1), (11, 1), (12, 1), (13, 1), (14, 2), (15, 2), (16, 5), (17, 3), (18, 4),
              (19, 5), (20, 7), (21, 7), (22, 12), (23, 10), (24, 58)] + [(n, 0.5) for n in range(25, 33)]
MASKS = [prefix_mask(n) for n in range(33)]


class Dev:
    name = "eth0"
    up = True


class PerLengthTable:
    """The named peer: the routing table this one replaced (one dict per prefix length)."""

    def __init__(self):
        self._by_length = {}
        self._lengths = []

    def add(self, route):
        self._by_length.setdefault(route.length, {})[route.prefix] = route
        self._lengths = sorted(self._by_length, reverse=True)

    def lookup(self, dst):
        by_length = self._by_length
        for length in self._lengths:
            route = by_length[length].get(dst & MASKS[length])
            if route is not None:
                return route
        return None


def random_prefixes(count, rng):
    lengths, weights = zip(*LENGTH_MIX)
    seen = set()
    while len(seen) < count:
        length = rng.choices(lengths, weights)[0]
        seen.add((rng.getrandbits(32) & MASKS[length], length))
    return sorted(seen)


def destinations(prefixes, count, rng):
    out = []
    for _ in range(count):
        prefix, length = prefixes[rng.randrange(len(prefixes))]
        out.append(prefix | (rng.getrandbits(32) & ~MASKS[length] & 0xFFFFFFFF))
    return out


def build(prefixes):
    dev = Dev()
    table, peer = RoutingTable(), PerLengthTable()
    for i, (prefix, length) in enumerate(prefixes):
        route = Route(prefix, length, dev, 0x0A000001 + (i & 0xFF))
        table.add(route)
        peer.add(route)
    return table, peer


def measure(candidates):
    """Time each (name, lookup, destinations per run, before each run) in turn, RUNS rounds, so a
    busy machine slows them all alike. -> {name: (median, best) ns per lookup}."""
    times = {name: [] for name, *_ in candidates}
    for run in range(RUNS):
        for name, fn, dsts_for, prepare in candidates:
            dsts = dsts_for(run)
            if prepare is not None:
                prepare()
            start = time.perf_counter()
            for d in dsts:
                fn(d)
            times[name].append((time.perf_counter() - start) / len(dsts) * 1e9)
    return {name: (statistics.median(t), min(t)) for name, t in times.items()}


def per_lookup_ns(fn, dsts):
    return measure([("x", fn, lambda run: dsts, None)])["x"][0]


def bench(size, rng, lookups):
    prefixes = random_prefixes(size, rng)
    start = time.perf_counter()
    table, peer = build(prefixes)
    built = time.perf_counter() - start
    dsts = destinations(prefixes, lookups, rng)
    for d in dsts[:2000]:  # the table agrees with the peer
        assert table.lookup(d) is peer.lookup(d)
    ceiling = {d: 1 for d in dsts}
    hot = dsts[:1000] * (lookups // 1000)
    fresh = [destinations(prefixes, lookups, random.Random(run)) for run in range(RUNS)]  # never seen
    anywhere = [rng.getrandbits(32) for _ in range(lookups)]
    for d in hot[:1000]:
        table.lookup(d)

    def empty_cache():
        table._cache.clear()

    def warm_cache():
        for d in hot[:1000]:
            table.lookup(d)

    results = measure([
        ("fib-miss", table.lookup, lambda run: fresh[run], empty_cache),
        ("fib-hit", table.lookup, lambda run: hot, warm_cache),
        ("fib-only", table._fib.lookup, lambda run: dsts, None),
        ("fib-uniform", table.lookup, lambda run: anywhere, empty_cache),
        ("per-length (peer)", peer.lookup, lambda run: dsts, None),
        ("dict.get (ceiling)", ceiling.get, lambda run: dsts, None),
    ])
    stats = table.stats()
    print(f"{size:>7} prefixes  build {built:5.2f} s  chunks l2/l3 {stats['chunks_l2']}/{stats['chunks_l3']}")
    for name, (median, best) in results.items():
        print(f"    {name:<20} {median:7.0f} ns/lookup (best {best:5.0f})  {1e9 / median / 1e6:6.2f} M lookups/s")
    start = time.perf_counter()
    table.add(Route(0, 0, Dev(), 1, metric=4242))
    table.delete(0, 0, metric=4242)
    flap = (time.perf_counter() - start) * 1e3
    print(f"    add + delete of a default route under this table: {flap:.1f} ms")
    old, miss, hit, top = (results[k][0] for k in ("per-length (peer)", "fib-miss", "fib-hit", "dict.get (ceiling)"))
    print(f"    ratio: fib-miss is {old / miss:4.1f}x the peer's speed, fib-hit {old / hit:4.1f}x; "
          f"dict.get is {miss / top:4.1f}x fib-miss")


def bench_policy(rng, lookups=20000):
    """decide() through the rules, on 10k prefixes: default rules, then 10 rules that do not match."""
    prefixes = random_prefixes(10000, rng)
    policy = RoutingPolicy(hash_seed=1)
    dev = Dev()
    for prefix, length in prefixes:
        policy.add(Route(prefix, length, dev, 0x0A000001))
    dsts = destinations(prefixes, lookups, rng)
    plain = per_lookup_ns(policy.decide, dsts)
    for i in range(10):
        policy.add_rule(1000 + i, table=100 + i, fwmark=i + 1)
    ruled = per_lookup_ns(policy.decide, dsts)
    print(f"RoutingPolicy.decide, 10k prefixes: {plain:.0f} ns with the default rules, "
          f"{ruled:.0f} ns with 10 more (non-matching) rules")


def memory(size, rng):
    import tracemalloc  # CPython only

    prefixes = random_prefixes(size, rng)
    gc.collect()
    tracemalloc.start()
    table, _ = build(prefixes)
    table_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del table
    gc.collect()
    tracemalloc.start()
    peer = PerLengthTable()
    dev = Dev()
    for prefix, length in prefixes:
        peer.add(Route(prefix, length, dev, 0x0A000001))
    peer_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    print(f"memory, {size} prefixes (routes included): RoutingTable {table_bytes / 1e6:.1f} MB, "
          f"per-length peer {peer_bytes / 1e6:.1f} MB")


def main():
    print(f"{platform.python_implementation()} {platform.python_version()}; medians of {RUNS} runs")
    rng = random.Random(2992)
    for size in (1000, 10000, 100000):
        bench(size, rng, 100000)
    bench_policy(rng)
    if platform.python_implementation() == "CPython":
        memory(100000, rng)


if __name__ == "__main__":
    main()
