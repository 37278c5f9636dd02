"""Ping round-trip time and flood rate: the stack (CPython and PyPy, with and without busy
polling, over a TAP and over a veth through AF_PACKET) against the kernel's own.

    sudo .venv/bin/python benchmarks/bench_ping.py [--repeat 3] [--count 10000] [--busy-us 200,5000]

The peer is the Linux kernel answering over a veth in the same run: same tool (ping), same
kind of link, same machine.  The stack runs on CPU 1 and ping on CPU 0 (a busy-polling loop
needs a core of its own: sharing one, it delays the very process it waits for).  Medians of --repeat runs; ratios are ours / kernel's.  "CPU" is the
stack process's CPU time over wall time while ping runs at 500 requests/s (rtt) and while it
floods: what busy polling costs.  A busy row spins that long after each pass before it
sleeps: 200 us covers the gaps of a flood but not the 2 ms between the rtt run's requests, which
then find the loop asleep; 5000 us covers those too, for a core's worth of CPU.  The load
average is printed first: on a shared machine a spinning loop gets only its share of a core.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

from pynetstack import pypy_gc  # noqa: E402
from pynetstack.lab import Lab  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def ping_stats(lab, ns, target, count, flood, preload=0):
    args = ["ping", "-c", str(count), "-w", "120"] + (["-q"] if flood else [])
    args += ["-f"] if flood else ["-i", "0.002"]
    if preload:
        args += ["-l", str(preload)]
    result = lab.run(ns, "taskset", "-c", "0", *args, target, timeout=180)
    rtt = re.search(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms", result.stdout)
    received = re.search(r"(\d+) received.*time (\d+)ms", result.stdout)
    if not rtt or not received:
        raise RuntimeError(f"ping failed: {result.stdout} {result.stderr}")
    each = sorted(float(t) for t in re.findall(r"time=([\d.]+) ms", result.stdout))
    return {"min_ms": float(rtt.group(1)), "avg_ms": float(rtt.group(2)),
            "median_ms": each[len(each) // 2] if each else float(rtt.group(2)), "received": int(received.group(1)),
            "pps": int(received.group(1)) / max(int(received.group(2)), 1) * 1000}


def serve(kind: str, ifname: str, cidr: str, host_cidr: str, busy_us: float) -> None:
    """The stack under test: answers ping on a new TAP or on an existing veth (AF_PACKET)."""
    from pynetstack.link.packet import PacketDevice
    from pynetstack.link.tap import TapDevice
    from pynetstack.stack import Stack
    stack = Stack(busy_poll=busy_us / 1e6)
    if kind == "tap":
        device = TapDevice(ifname, host_address=host_cidr)
    else:
        device = PacketDevice(ifname, promiscuous=True, ring=(kind == "ring"))
    mac = None if kind == "tap" else open(f"/sys/class/net/{ifname}/address").read().strip()
    stack.add_interface(device, cidr, mac=mac)
    stack.run_until_signal()


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def start_stack(lab, ns, python, kind, ifname, cidr, host_cidr, busy_us):
    env = pypy_gc.environment(dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src")))
    process = lab.popen(ns, "taskset", "-c", "1", python, os.path.abspath(__file__), "serve", kind, ifname, cidr, host_cidr,
                        str(busy_us), env=env)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if kind != "tap" or host_cidr in lab.ip("-n", ns, "addr", "show"):
            time.sleep(0.3 if kind != "tap" else 0.0)
            return process
        time.sleep(0.1)
    raise RuntimeError(f"{python}: the stack did not come up")


def measure(lab, client, target, pid, args):
    ping_stats(lab, client, target, 200, flood=False)  # warm-up: ARP, then PyPy's JIT, which
    ping_stats(lab, client, target, args.warmup, flood=True)  # needs thousands of passes of the loop
    cpu0, wall0 = (cpu_seconds(pid) if pid else 0.0), time.monotonic()
    slow = [ping_stats(lab, client, target, 500, flood=False) for _ in range(args.repeat)]
    cpu1, wall1 = (cpu_seconds(pid) if pid else 0.0), time.monotonic()
    floods = [ping_stats(lab, client, target, args.count, flood=True) for _ in range(args.repeat)]
    loaded = [ping_stats(lab, client, target, args.count, flood=True, preload=args.preload)
              for _ in range(args.repeat)]
    cpu2, wall2 = (cpu_seconds(pid) if pid else 0.0), time.monotonic()
    return {"rtt": statistics.median(r["median_ms"] for r in slow), "rtt_min": min(r["min_ms"] for r in slow),
            "pps": statistics.median(f["pps"] for f in floods),
            "loaded": statistics.median(f["pps"] for f in loaded),
            "replies": min(f["received"] for f in floods + loaded),
            "cpu_rtt": (cpu1 - cpu0) / (wall1 - wall0) if pid else None,
            "cpu_flood": (cpu2 - cpu1) / (wall2 - wall1) if pid else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--count", type=int, default=10000, help="echo requests per flood run")
    parser.add_argument("--preload", type=int, default=32, help="requests in flight for the loaded flood")
    parser.add_argument("--warmup", type=int, default=20000, help="flood pings before measuring (PyPy's JIT)")
    parser.add_argument("--busy-us", default="200,5000", help="busy-poll budgets of the busy rows (comma-separated us)")
    parser.add_argument("--devices", default="tap,ring,socket",
                        help="tap (TAP), ring (veth, AF_PACKET with PACKET_MMAP), socket (veth, plain AF_PACKET)")
    args = parser.parse_args()
    pythons = [("CPython", sys.executable)]
    pypy = os.path.join(ROOT, ".venv-pypy", "bin", "python")
    if os.path.exists(pypy):
        pythons.append(("PyPy", pypy))
    elif shutil.which("pypy3"):
        pythons.append(("PyPy", shutil.which("pypy3")))
    rows = []
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs", flush=True)
    with Lab("bench") as lab:
        client = lab.netns("client")
        peer = lab.netns("peer")
        stack_ns = lab.netns("stack")
        lab.veth(client, "pnbk0", peer, "pnbp0", address_a="10.99.5.1/24", address_b="10.99.5.2/24")
        rows.append(("Linux kernel (veth)", measure(lab, client, "10.99.5.2", None, args)))
        n = 0
        for name, python in pythons:
            for kind in args.devices.split(","):
                for busy in [0.0] + [float(b) for b in args.busy_us.split(",") if b]:
                    n += 1
                    cidr, host = f"10.99.{10 + n}.2/24", f"10.99.{10 + n}.1/24"
                    if kind == "tap":
                        process = start_stack(lab, client, python, kind, f"pnbt{n}", cidr, host, busy)
                        label = "TAP"
                    else:
                        lab.veth(client, f"pnbv{n}", stack_ns, f"pnbw{n}", address_a=host)
                        process = start_stack(lab, stack_ns, python, kind, f"pnbw{n}", cidr, host, busy)
                        label = "veth ring" if kind == "ring" else "veth socket"
                    busy_label = f", busy {busy:.0f}us" if busy else ""
                    try:
                        rows.append((f"{name} {label}{busy_label}",
                                     measure(lab, client, cidr.split("/")[0], process.pid, args)))
                    finally:
                        process.terminate()
                        process.wait(timeout=10)
    kernel = rows[0][1]
    print(f"ping: {args.repeat} runs each, medians; rtt = ping -i 0.002 -c 500 (min: the least of all; median of each run's per-request times); flood = ping -f -c {args.count};"
          f" loaded = the same with -l {args.preload} in flight; CPU = stack process CPU / wall time")
    print(f"{'target':<32}{'min ms':>8}{'x kern':>7}{'median':>8}{'x kern':>7}{'flood pps':>10}{'x kern':>7}{'loaded pps':>11}"
          f"{'x kern':>7}{'CPU rtt':>8}{'CPU flood':>10}{'min replies':>12}")
    for label, r in rows:
        cpu_rtt = f"{r['cpu_rtt'] * 100:.0f}%" if r["cpu_rtt"] is not None else "-"
        cpu_flood = f"{r['cpu_flood'] * 100:.0f}%" if r["cpu_flood"] is not None else "-"
        print(f"{label:<32}{r['rtt_min']:>8.3f}{r['rtt_min'] / kernel['rtt_min']:>7.2f}{r['rtt']:>8.3f}{r['rtt'] / kernel['rtt']:>7.2f}{r['pps']:>10.0f}"
              f"{r['pps'] / kernel['pps']:>7.2f}{r['loaded']:>11.0f}{r['loaded'] / kernel['loaded']:>7.2f}"
              f"{cpu_rtt:>8}{cpu_flood:>10}{r['replies']:>12}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], float(sys.argv[6]))
    else:
        sys.exit(main())
