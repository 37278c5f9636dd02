"""The load balancer's costs, in process (no device, no system calls).

    .venv/bin/python benchmarks/bench_lb.py          # runs itself on CPython and on PyPy

- scheduler decisions/s for each IPVS scheduler over 10 servers, against ``random.choice`` over
  the same list (the peer: the least a Python balancer can do to pick);
- new connections/s through the balancer: TCP SYNs of distinct flows fed to a forwarding
  stack's ``receive_frame``, each scheduled, bound in conntrack (NAT) and sent to a server,
  against the same SYNs through the stack's own nft ``dnat`` to one server (the peer: the
  same conntrack and NAT work without the balancer);
- the Maglev table build at 65537 entries for 5 and 50 servers (the issue measured 53-83 ms
  on CPython; the paper reports 1.8 ms in C).
Medians of --repeat runs.  The kernel's IPVS is not measured: this kernel has none.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

import runner

SCHEDULERS = ("rr", "wrr", "lc", "wlc", "sed", "nq", "sh", "dh", "mh")
VIP = "10.0.9.100"


class _Dest:
    def __init__(self, i):
        self.addr, self.port, self.weight = 0x0A000100 + i, 80, 1 + i % 3
        self.active, self.inactive, self.overloaded = i % 4, i * 7 % 50, False


def decisions(count: int, repeat: int) -> dict:
    from pynetstack.lb.schedulers import make_scheduler
    dests = [_Dest(i) for i in range(10)]
    srcs = [random.Random(1).getrandbits(32) for _ in range(1024)]
    out = {}
    for name in SCHEDULERS:
        s = make_scheduler(name)
        s.update(dests)
        pick = s.pick

        def picks(pick=pick):
            for i in range(count):
                pick(dests, srcs[i & 1023], i & 0xFFFF, 0x0A000964, 80)
        out[name] = runner.median_rate(picks, count, repeat)
    choice = random.Random(2).choice

    def choices():
        for _i in range(count):
            choice(dests)
    out["random.choice (peer)"] = runner.median_rate(choices, count, repeat)
    return out


def _balancer(mode: str):
    from pynetstack.lb import VirtualService, install_lb
    from pynetstack.netfilter.router import install_router
    from pynetstack.sim import Simulation
    from pynetstack.wire.addr import ip_to_int
    sim = Simulation()
    client, lb, server = sim.routed(("10.0.0.2/24", "10.0.0.1/24", "cli0"), ("10.0.1.2/24", "10.0.1.1/24", "srv0"),
                                    right_route=None)
    ic, il, out, ins = client.interfaces["eth0"], lb.interfaces["cli0"], lb.interfaces["srv0"], server.interfaces["eth0"]
    out.neighbours.lifetime = 1e12
    for i in range(2, 5):
        out.neighbours.update(ip_to_int(f"10.0.1.{i}"), ins.mac, sim.now)
    if mode == "lb":
        service = VirtualService("tcp", VIP, 80, scheduler="wlc")
        for i in range(2, 5):
            service.add_server(f"10.0.1.{i}", 80)
        install_lb(lb, [service])
    else:
        install_router(lb).port_forward(80, "10.0.1.2", 80, "tcp")
    return sim, lb, il, ic, ins


def _syns(il, ic, count: int):
    from pynetstack.wire.addr import ip_to_int
    from pynetstack.wire.ethernet import ETH_IPV4, build_frame
    from pynetstack.wire.ipv4 import build_ipv4
    from pynetstack.wire.tcp import build_tcp
    vip = ip_to_int(VIP)
    frames = []
    for i in range(count):
        src = ip_to_int(f"10.0.0.{2 + i // 60000}")  # distinct flows: ports first, then addresses
        sport = 1024 + i % 60000
        frames.append(build_frame(il.mac, ic.mac, ETH_IPV4, build_ipv4(src, vip, 6, build_tcp(src, vip, sport, 80, i, 0,
                                                                                                0x02, 64240), 64, 0,
                                                                        True)))
    return frames


def connections(count: int, repeat: int) -> dict:
    out = {}
    for mode, label in (("lb", "balancer (wlc, NAT)"), ("dnat", "nft dnat (peer)")):
        def run(mode=mode):  # a fresh balancer each run: every SYN is a new connection
            sim, lb, il, ic, ins = _balancer(mode)
            frames = _syns(il, ic, count)
            receive = lb.host.receive_frame
            now = sim.now
            start = time.perf_counter()
            for frame in frames:
                receive(il, frame, now)
            rate = count / (time.perf_counter() - start)
            sent = len(ins.device.inbox)
            assert sent == count, f"{mode}: {sent} of {count} SYNs went to a server ({dict(lb.drops)})"
            return rate
        out[label] = runner.median_of_runs(run, repeat)
    return out


def maglev(repeat: int) -> dict:
    from pynetstack.lb.maglev import build_table
    out = {}
    for n in (5, 50):
        dests = [_Dest(i) for i in range(n)]
        def build_ms(dests=dests):
            start = time.perf_counter()
            build_table(dests, 65537)
            return (time.perf_counter() - start) * 1000
        out[f"{n} servers"] = runner.median_of_runs(build_ms, repeat)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20_000, help="decisions and new connections per run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pypy", default=runner.default_pypy())
    args = parser.parse_args()
    if args.child:
        print(json.dumps({"decisions": decisions(args.count * 5, args.repeat),
                          "connections": connections(args.count, args.repeat), "maglev": maglev(args.repeat)}))
        return 0
    columns = runner.run_children(__file__, ["--count", args.count, "--repeat", args.repeat], args.pypy)
    part = {section: {c: columns[c][section] for c in columns} for section in ("decisions", "connections", "maglev")}
    print(f"scheduler decisions/s over 10 servers, {args.count * 5} x {args.repeat} (median)")
    runner.print_table(part["decisions"], list(next(iter(part["decisions"].values()))), head="scheduler",
                       ratio=lambda c, _: part["decisions"][c]["random.choice (peer)"], ratio_head="x peer")
    print(f"\nnew TCP connections/s through the stack (SYNs in process), {args.count} x {args.repeat} (median)")
    runner.print_table(part["connections"], list(next(iter(part["connections"].values()))), header=False,
                       ratio=lambda c, _: part["connections"][c]["nft dnat (peer)"])
    print("\nMaglev table build, 65537 entries (ms, median)")
    runner.print_table(part["maglev"], list(next(iter(part["maglev"].values()))), header=False, fmt=".1f")
    return 0


if __name__ == "__main__":
    sys.exit(main())
