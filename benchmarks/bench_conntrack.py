"""Conntrack and NAT throughput: new flows/s (track + confirm), established packets/s, memory
per entry at 100k entries, and NAT translate() per packet.

The peer is the ceiling every lookup-based tracker has: the same packet's 5-tuple built from
the same fields and looked up in a plain dict (``dict ceiling``).  Medians over repetitions.

    PYTHONPATH=src python3 benchmarks/bench_conntrack.py        # about 30-60 s
    PYTHONPATH=src pypy3 benchmarks/bench_conntrack.py
    PYTHONPATH=src python3 benchmarks/bench_conntrack.py --quick
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import subprocess
import sys
import time

try:
    import tracemalloc
except ImportError:  # PyPy has no tracemalloc: fall back to the growth of the resident set
    tracemalloc = None

from pynetstack.netfilter.conntrack import Conntrack
from pynetstack.netfilter.nat import Nat
from pynetstack.netfilter.types import NatSpec
from pynetstack.wire.ipv4 import IPv4
from pynetstack.wire.tcp import ACK, PSH, SYN, build_tcp
from pynetstack.wire.udp import build_udp

LAN = 0x0A000000
SERVER = 0xC6336407
PUBLIC = 0xCB007101
DATA = bytes(100)


def parsed(src, dst, proto, l4):
    return IPv4.parse(bytearray(IPv4(src, dst, proto, l4).build()))


def udp_pkt(i, reply=False):
    src, sport = LAN + 2 + (i >> 14), 1024 + (i & 0x3FFF)
    if reply:
        return parsed(SERVER, src, 17, build_udp(SERVER, src, 53, sport, DATA))
    return parsed(src, SERVER, 17, build_udp(src, SERVER, sport, 53, DATA))


def tcp_pkt(i, seq, ack, flags, reply=False, data=b""):
    src, sport = LAN + 2 + (i >> 14), 1024 + (i & 0x3FFF)
    if reply:
        return parsed(SERVER, src, 6, build_tcp(SERVER, src, 80, sport, seq, ack, flags, 65535, data))
    return parsed(src, SERVER, 6, build_tcp(src, SERVER, sport, 80, seq, ack, flags, 65535, data))


def timed(fn, reps):
    """Median seconds of fn() over reps runs (fn does its own setup outside the timed part
    by returning the elapsed time)."""
    return statistics.median(fn() for _ in range(reps))


def bench_new_flows(n, proto):
    pkts = [udp_pkt(i) if proto == 17 else tcp_pkt(i, 1000, 0, SYN) for i in range(n)]

    def run():
        ct = Conntrack(max_entries=n + 1)
        track, confirm = ct.track, ct.confirm
        gc.disable()
        t0 = time.perf_counter()
        for p in pkts:
            e = track(p, 0.0)[0]
            confirm(e, 0.0)
        dt = time.perf_counter() - t0
        gc.enable()
        return dt
    return run


def established_setup(flows):
    ct = Conntrack()
    fwd, rev = [], []
    for i in range(flows):
        e = ct.track(tcp_pkt(i, 1000, 0, SYN), 0.0)[0]
        ct.confirm(e, 0.0)
        ct.track(tcp_pkt(i, 5000, 1001, SYN | ACK, reply=True), 0.0)
        ct.track(tcp_pkt(i, 1001, 5001, ACK), 0.0)
        fwd.append(tcp_pkt(i, 1001, 5001, ACK | PSH, data=DATA))
        rev.append(tcp_pkt(i, 5001, 1101, ACK, reply=True))
    return ct, [p for pair in zip(fwd, rev) for p in pair]


def bench_established(ct, pkts, rounds):
    def run():
        track = ct.track
        gc.disable()
        t0 = time.perf_counter()
        for r in range(rounds):
            now = float(r)
            for p in pkts:
                track(p, now)
        dt = time.perf_counter() - t0
        gc.enable()
        return dt
    return run


def bench_dict_ceiling(ct, pkts, rounds):
    table = ct.table

    def run():
        get = table.get
        gc.disable()
        t0 = time.perf_counter()
        for _r in range(rounds):
            for p in pkts:
                pl = p.payload
                get((p.protocol, p.src, (pl[0] << 8) | pl[1], p.dst, (pl[2] << 8) | pl[3]))
        dt = time.perf_counter() - t0
        gc.enable()
        return dt
    return run


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def memory_per_entry(n, proto):
    gc.collect()
    if tracemalloc is not None:
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
    else:
        base = _rss()
    ct = Conntrack(max_entries=n + 1)
    for i in range(n):
        if proto == 17:
            e = ct.track(udp_pkt(i), 0.0)[0]
        else:
            e = ct.track(tcp_pkt(i, 1000, 0, SYN), 0.0)[0]
        ct.confirm(e, 0.0)
    gc.collect()
    if tracemalloc is not None:
        used = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
    else:
        used = _rss() - base
    assert len(ct) == n
    return used / n


def bench_translate(n):
    ct = Conntrack()
    nat = Nat(ct, seed=1)
    entries = []
    for i in range(256):
        p = udp_pkt(i)
        e = ct.track(p, 0.0)[0]
        nat.setup(e, NatSpec("masquerade"), 0.0, iface_address=PUBLIC)
        ct.confirm(e, 0.0)
        entries.append(e)

    def run():
        pkts = [udp_pkt(i & 255) for i in range(n)]
        translate = nat.translate
        gc.disable()
        t0 = time.perf_counter()
        for i, p in enumerate(pkts):
            translate(p, entries[i & 255], 0, "postrouting")
        dt = time.perf_counter() - t0
        gc.enable()
        return dt
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--memory-only", type=int, metavar="PROTO", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_only:
        print(memory_per_entry(100000, args.memory_only))
        return
    quick = args.quick
    reps = 3 if quick else 5
    impl = f"{platform.python_implementation()} {platform.python_version()}"
    print(f"# bench_conntrack on {impl} ({sys.platform})")
    budget_start = time.monotonic()

    n_new = 20000 if quick else 50000
    for proto, name in ((17, "udp"), (6, "tcp")):
        dt = timed(bench_new_flows(n_new, proto), reps)
        print(f"new {name} flows (track+confirm): {n_new / dt:12,.0f} flows/s   {dt / n_new * 1e6:6.2f} us/flow")

    flows = 1000
    rounds = 20 if quick else 50
    ct, pkts = established_setup(flows)
    total = len(pkts) * rounds
    dt_est = timed(bench_established(ct, pkts, rounds), reps)
    dt_dict = timed(bench_dict_ceiling(ct, pkts, rounds), reps)
    print(f"established tcp packets (track):  {total / dt_est:12,.0f} pkt/s     {dt_est / total * 1e6:6.2f} us/pkt")
    print(f"peer: dict ceiling (tuple+get):   {total / dt_dict:12,.0f} pkt/s     {dt_dict / total * 1e6:6.2f} us/pkt")
    print(f"ratio track / dict ceiling: {dt_est / dt_dict:.1f}x the time")

    n_tr = 50000 if quick else 200000
    dt = timed(bench_translate(n_tr), reps)
    print(f"NAT translate (udp, snat):        {n_tr / dt:12,.0f} pkt/s     {dt / n_tr * 1e6:6.2f} us/pkt")

    n_mem = 100000
    for proto, name in ((17, "udp"), (6, "tcp")):
        if time.monotonic() - budget_start > 50:
            print(f"memory per {name} entry: skipped (time budget)")
            continue
        if tracemalloc is not None:
            per = memory_per_entry(n_mem, proto)
        else:  # RSS growth only means something in a fresh process
            out = subprocess.run([sys.executable, __file__, "--memory-only", str(proto)], check=True,
                                 capture_output=True, text=True).stdout
            per = float(out.split()[-1])
        how = "tracemalloc" if tracemalloc is not None else "RSS growth"
        print(f"memory per {name} entry at {n_mem:,} entries ({how}): {per:,.0f} bytes")
    print(f"# total {time.monotonic() - budget_start:.1f} s")


if __name__ == "__main__":
    main()
