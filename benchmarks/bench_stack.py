"""Frames/s through the stack's receive-and-answer path, in process (no device, no syscalls).

    .venv/bin/python benchmarks/bench_stack.py          # runs itself on CPython and on PyPy

An ICMP echo request and a UDP datagram to the echo service are fed to ``receive_frame``;
each produces a reply frame on the in-memory device. Medians of --repeat runs of --count
frames. The ratio column is against CPython measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))


def measure(count: int, repeat: int) -> dict:
    from pynetstack.services import udp_echo
    from pynetstack.sim import Simulation
    from pynetstack.wire.addr import ip_to_int
    from pynetstack.wire.ethernet import ETH_IPV4, build_frame
    from pynetstack.wire.icmp import build_echo
    from pynetstack.wire.ipv4 import build_ipv4
    from pynetstack.wire.udp import build_udp

    sim = Simulation()
    a, b = sim.stack(), sim.stack()
    ia, ib = sim.link(a, "10.0.0.1/24", b, "10.0.0.2/24")
    udp_echo.install(b)
    src, dst = ip_to_int("10.0.0.1"), ip_to_int("10.0.0.2")
    ib.neighbours.lifetime = 1e12
    ib.neighbours.update(src, ia.mac, 0.0)
    frames = {
        "icmp echo (56 B)": build_frame(ib.mac, ia.mac, ETH_IPV4, build_ipv4(src, dst, 1, build_echo(True, 1, 1, bytes(56)))),
        "udp echo (64 B)": build_frame(ib.mac, ia.mac, ETH_IPV4, build_ipv4(src, dst, 17, build_udp(src, dst, 5000, 7, bytes(64)))),
    }
    results = {}
    receive = b.host.receive_frame
    for name, frame in frames.items():
        rates = []
        for _ in range(repeat + 1):  # the first run warms up (PyPy's JIT)
            start = time.perf_counter()
            for _ in range(count):
                receive(ib, frame, 1000.0)
            rates.append(count / (time.perf_counter() - start))
            ia.device.inbox.clear()
        results[name] = statistics.median(rates[1:])
        assert not b.drops, dict(b.drops)
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:
        print(json.dumps(measure(args.count, args.repeat)))
        return 0
    interpreters = [("CPython", sys.executable)]
    pypy = os.path.join(ROOT, ".venv-pypy", "bin", "python")
    if os.path.exists(pypy):
        interpreters.append(("PyPy", pypy))
    table = {}
    for label, python in interpreters:
        out = subprocess.run([python, __file__, "--json", "--count", str(args.count), "--repeat", str(args.repeat)],
                             stdout=subprocess.PIPE, check=True, text=True, timeout=600).stdout
        table[label] = json.loads(out)
    print(f"receive_frame -> reply, {args.count} frames x {args.repeat} runs, medians (frames/s)")
    print(f"{'path':<20}" + "".join(f"{label:>12}{'x CPython':>11}" for label in table))
    for path in table["CPython"]:
        base = table["CPython"][path]
        print(f"{path:<20}" + "".join(f"{table[label][path]:>12,.0f}{table[label][path] / base:>11.2f}" for label in table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
