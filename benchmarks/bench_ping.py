"""Ping round-trip time and flood rate: the stack (CPython and PyPy) against the kernel's own.

    sudo .venv/bin/python benchmarks/bench_ping.py [--repeat 3] [--count 20000]

The peer is the Linux kernel answering over a veth in the same run: same tool (ping), same
kind of link, same machine.  Medians of --repeat runs; ratios are ours / kernel's.
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

from pynetstack.lab import Lab  # noqa: E402


def ping_stats(lab, ns, target, count, flood, preload=0):
    args = ["ping", "-q", "-c", str(count), "-w", "120"]
    args += ["-f"] if flood else ["-i", "0.002"]
    if preload:
        args += ["-l", str(preload)]
    result = lab.run(ns, *args, target, timeout=180)
    rtt = re.search(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms", result.stdout)
    received = re.search(r"(\d+) received.*time (\d+)ms", result.stdout)
    if not rtt or not received:
        raise RuntimeError(f"ping failed: {result.stdout} {result.stderr}")
    return {"avg_ms": float(rtt.group(2)), "received": int(received.group(1)),
            "pps": int(received.group(1)) / max(int(received.group(2)), 1) * 1000}


def start_stack(lab, ns, python, tap, cidr, host_cidr):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"))
    process = lab.popen(ns, python, "-m", "pynetstack", "up", "--tap", tap, "--address", cidr,
                        "--host-address", host_cidr, "--no-udp-echo", env=env)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if tap in lab.ip("-n", ns, "addr", "show") and host_cidr in lab.ip("-n", ns, "addr", "show", tap):
            return process
        time.sleep(0.1)
    raise RuntimeError(f"{python}: the stack did not come up")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--count", type=int, default=20000, help="echo requests per flood run")
    parser.add_argument("--preload", type=int, default=32, help="requests in flight for the loaded flood")
    args = parser.parse_args()
    pythons = [("CPython", sys.executable)]
    pypy = os.path.join(ROOT, ".venv-pypy", "bin", "python")
    if os.path.exists(pypy):
        pythons.append(("PyPy", pypy))
    elif shutil.which("pypy3"):
        pythons.append(("PyPy", shutil.which("pypy3")))
    rows = []
    with Lab("bench") as lab:
        client = lab.netns("client")
        peer = lab.netns("peer")
        lab.veth(client, "pnbk0", peer, "pnbp0", address_a="10.99.5.1/24", address_b="10.99.5.2/24")
        targets = [("Linux kernel (veth)", None, "10.99.5.2")]
        for i, (name, python) in enumerate(pythons):
            start_stack(lab, client, python, f"pnbt{i}", f"10.99.{6 + i}.2/24", f"10.99.{6 + i}.1/24")
            targets.append((f"pynetstack {name} (TAP)", python, f"10.99.{6 + i}.2"))
        for label, _, target in targets:
            ping_stats(lab, client, target, 200, flood=False)  # warm-up (PyPy's JIT, ARP)
            rtts = [ping_stats(lab, client, target, 500, flood=False)["avg_ms"] for _ in range(args.repeat)]
            floods = [ping_stats(lab, client, target, args.count, flood=True) for _ in range(args.repeat)]
            loaded = [ping_stats(lab, client, target, args.count, flood=True, preload=args.preload)
                      for _ in range(args.repeat)]
            rows.append((label, statistics.median(rtts), statistics.median(f["pps"] for f in floods),
                         statistics.median(f["pps"] for f in loaded),
                         min(f["received"] for f in floods + loaded)))
    kernel_rtt, kernel_pps, kernel_loaded = rows[0][1], rows[0][2], rows[0][3]
    print(f"ping: {args.repeat} runs each, medians; flood = ping -f -c {args.count}; "
          f"loaded = the same with -l {args.preload} requests in flight")
    print(f"{'target':<28}{'rtt avg ms':>11}{'x kernel':>9}{'flood pps':>11}{'x kernel':>9}"
          f"{'loaded pps':>11}{'x kernel':>9}{'min replies':>12}")
    for label, rtt, pps, loaded_pps, replies in rows:
        print(f"{label:<28}{rtt:>11.3f}{rtt / kernel_rtt:>9.2f}{pps:>11.0f}{pps / kernel_pps:>9.2f}"
              f"{loaded_pps:>11.0f}{loaded_pps / kernel_loaded:>9.2f}{replies:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
