"""QoS cost: forwarding with and without an egress qdisc, and the scheduler's cost per packet.

    .venv/bin/python benchmarks/bench_qos.py          # runs itself on CPython and on PyPy

1. Forwarding, in process (as bench_router.py): 64-byte UDP frames of 16 flows fed to a
   forwarding stack's ``receive_frame``; modes: no qdisc on the egress (the direct device call),
   and the default five-class qdisc with a rate too high to hold anything back (so what is
   measured is classification, enqueue, dequeue and the SLA bookkeeping per frame).
2. The scheduler alone: 1514-byte frames of 1,000 flows spread over the 5 classes, enqueued
   and dequeued (HTB + FQ-CoDel) on a virtual clock; cost per packet, and the shaped rate that
   cost allows (one core doing nothing else: 1514 * 8 bits / cost).  The peer is a bare
   ``collections.deque`` FIFO doing the same enqueue and dequeue.
3. The highest rate (25, 50, 100, ... Mbit/s) a backlogged class is shaped to within 2 % on the
   real clock (the loop sleeping until each departure, frames counted, not sent anywhere).
Medians of --repeat runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import deque

import runner
from bench_router import forward_rate


def forwarding(count: int, repeat: int, with_qdisc: bool) -> float:
    from pynetstack.qos import attach_qos
    return forward_rate("plain", count, repeat, setup=lambda r: attach_qos(r, "wan0", "100gbit") if with_qdisc else None)


def scheduler(count: int, repeat: int) -> dict:
    import struct

    from pynetstack.qos.classify import CLASSES
    from pynetstack.qos.tree import default_tree
    frames = []
    for flow in range(1000):
        ip = struct.pack("!BBHHHBBHII", 0x45, 0, 1500, 0, 0x4000, 64, 17, 0, 0x0A000000 + flow, 0x0B000001)
        frames.append((CLASSES[flow % 5], b"\x02" * 12 + b"\x08\x00" + ip + struct.pack("!HH", 1024 + flow, 80)
                       + bytes(1476)))
    def tree_run():
        tree = default_tree(1e12)  # never out of tokens: the cost, not the rate, is measured
        leaves = tree.leaves
        now = 0.0
        start = time.perf_counter()
        for i in range(count):
            klass, data = frames[i % 1000]
            tree.enqueue(leaves[klass], data, now)
            if i % 8 == 7:  # a backlog of a few packets per class, as under load
                for _ in range(8):
                    tree.dequeue(now)
            now += 1e-6
        return (time.perf_counter() - start) / count

    def fifo_run():
        queue = deque()
        start = time.perf_counter()
        for i in range(count):
            queue.append([frames[i % 1000][1], 0.0, 1514])
            if i % 8 == 7:
                for _ in range(8):
                    queue.popleft()
        return (time.perf_counter() - start) / count
    cost = runner.median_of_runs(tree_run, repeat)
    return {"scheduler_us": cost * 1e6, "fifo_us": runner.median_of_runs(fifo_run, repeat) * 1e6,
            "max_shaped_mbit": 1514 * 8 / cost / 1e6}


def shaped_rate_accuracy(rate_mbit: float, seconds: float) -> float:
    """Shape a backlogged class to ``rate_mbit`` on the real clock for ``seconds`` (frames go to
    a counter, the loop sleeps until each next departure): the rate achieved over configured."""
    import struct

    from pynetstack.qos.tree import default_tree
    from pynetstack.qos.qdisc import EgressQdisc
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 1500, 0, 0x4000, 64, 6, 0, 0x0A000001, 0x0B000001)
    data = b"\x02" * 12 + b"\x08\x00" + ip + struct.pack("!HH", 40000, 80) + bytes(1476)
    start = time.perf_counter()
    qdisc = EgressQdisc(default_tree(rate_mbit * 1e6 / 8, now=start))
    sent = [0, 0.0]

    def wire(frame, now):
        if now >= start + 0.2:  # past the initial bursts of the buckets
            sent[0] += len(frame)
    qdisc.send = wire
    queue = qdisc.tree.leaves["bulk"].queue
    clock = time.perf_counter
    end = start + seconds
    now = start
    while now < end:
        while queue.packets < 16:
            qdisc.enqueue(data, now, klass="bulk")
        qdisc.poll(now)
        deadline = qdisc.next_deadline() if qdisc.tree.packets else None  # else refill first
        now = clock()
        if deadline is not None and deadline > now + 0.0002:
            time.sleep(deadline - now - 0.0001)
            now = clock()
    return sent[0] * 8 / (now - start - 0.2) / 1e6 / rate_mbit


def highest_rate(seconds: float = 0.6) -> float:
    """The highest shaped rate (of 25, 50, 100, ... Mbit/s) held within 2 %."""
    shaped_rate_accuracy(400, seconds)  # warm-up (PyPy's JIT compiles the loop here)
    best = 0.0
    rate = 25.0
    while rate <= 12800:
        if abs(shaped_rate_accuracy(rate, seconds) - 1.0) > 0.02:
            break
        best = rate
        rate *= 2
    return best


def measure(count: int, repeat: int) -> dict:
    results = {"forward pps, no qdisc": forwarding(count, repeat, False),
               "forward pps, qdisc": forwarding(count, repeat, True)}
    results.update(scheduler(count, repeat))
    results["highest_rate_2pct"] = highest_rate()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pypy", default=runner.default_pypy())
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.count, args.repeat)))
        return 0
    columns = runner.run_children(__file__, ["--count", args.count, "--repeat", args.repeat], args.pypy, timeout=600)
    print(f"QoS cost, {args.count} packets x {args.repeat} (median)")
    rows = ["forward pps, no qdisc", "forward pps, qdisc", ("scheduler_us", ".2f"), ("fifo_us", ".2f"),
            "max_shaped_mbit", "highest_rate_2pct"]
    labels = {"scheduler_us": "HTB+FQ-CoDel enqueue+dequeue, us", "fifo_us": "deque FIFO (peer), us",
              "max_shaped_mbit": "shaped rate that cost allows, Mbit",
              "highest_rate_2pct": "shaped on the real clock to 2%, Mbit"}
    runner.print_table(columns, rows, label_width=34, labels=labels)
    for name, col in columns.items():
        print(f"{name}: qdisc / no qdisc forwarding = {col['forward pps, qdisc'] / col['forward pps, no qdisc']:.2f}, "
              f"scheduler / FIFO = {col['scheduler_us'] / col['fifo_us']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
