"""Frames/s through the stack's receive-and-answer path, in process (no device, no syscalls).

    .venv/bin/python benchmarks/bench_stack.py          # runs itself on CPython and on PyPy

An ICMP echo request and a UDP datagram to the echo service are fed to ``receive_frame``;
each produces a reply frame on the in-memory device. Medians of --repeat runs of --count
frames. The ratio column is against CPython measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import sys

import runner


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
        def loop(frame=frame):
            for _ in range(count):
                receive(ib, frame, 1000.0)
        results[name] = runner.median_rate(loop, count, repeat, after=ia.device.inbox.clear)
        assert not b.drops, dict(b.drops)
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", "--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.count, args.repeat)))
        return 0
    table = runner.run_children(__file__, ["--count", args.count, "--repeat", args.repeat], timeout=600)
    print(f"receive_frame -> reply, {args.count} frames x {args.repeat} runs, medians (frames/s)")
    runner.print_table(table, list(next(iter(table.values()))), head="path", label_width=20, width=12,
                       ratio=lambda label, path: table.get("CPython", {}).get(path), ratio_head="x CPython",
                       ratio_width=11)
    return 0


if __name__ == "__main__":
    sys.exit(main())
