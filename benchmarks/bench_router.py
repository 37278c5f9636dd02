"""The router's own cost per forwarded frame, in process (no device, no system calls).

    .venv/bin/python benchmarks/bench_router.py          # runs itself on CPython and on PyPy

64-byte UDP frames of 16 flows are fed to a forwarding stack's ``receive_frame``; each leaves on
the other in-memory device.  Modes: plain routing; conntrack; conntrack and masquerade; the same
with the flow table; and a 1,000-rule forward chain (first-match at the last rule) with and
without the flow table.  The peer ("ceiling") is a bare Python function that rewrites the MACs and
the TTL of the same frame and hands it on: the least any Python router must do.  Medians of
--repeat runs of --count frames.  The 200 k pps goal of the router issue is about this path plus
the device I/O, which benchmarks/bench_forward.py measures.
"""

from __future__ import annotations

import argparse
import json
import sys

import runner

MASQUERADE = """table ip nat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan0" masquerade
	}
}
"""


def _filter_rules(n: int) -> str:
    rules = "\n".join(f"\t\tip saddr 10.{i // 250}.{i % 250}.0/24 tcp dport {1000 + i % 5000} drop"
                      for i in range(n - 1))
    return ("table ip filter {\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n"
            f"{rules}\n\t\tct state established,related,new accept\n\t}}\n}}\n")


def _router(mode: str):
    from pynetstack.netfilter.router import install_router
    from pynetstack.sim import Simulation
    from pynetstack.wire.addr import ip_to_int
    sim = Simulation()
    lan, r, wan = sim.routed()
    il, ir, ow, iw = lan.interfaces["eth0"], r.interfaces["lan0"], r.interfaces["wan0"], wan.interfaces["eth0"]
    wan_ip, lan_ip = ip_to_int("203.0.113.2"), ip_to_int("192.168.1.2")
    for iface, ip, mac in ((ow, wan_ip, iw.mac), (ir, lan_ip, il.mac)):
        iface.neighbours.lifetime = 1e12
        iface.neighbours.update(ip, mac, sim.now)
    if mode != "plain":
        text = {"conntrack": None, "nat": MASQUERADE, "nat+flowtable": MASQUERADE,
                "1000 rules": _filter_rules(1000), "1000 rules+flowtable": _filter_rules(1000)}[mode]
        install_router(r, ruleset_text=text, flowtable=mode.endswith("flowtable"))
    return sim, r, ir, il, ow, iw


def _frames(ir, il, flows: int):
    from pynetstack.wire.addr import ip_to_int
    from pynetstack.wire.ethernet import ETH_IPV4, build_frame
    from pynetstack.wire.ipv4 import build_ipv4
    from pynetstack.wire.udp import build_udp
    src, dst = ip_to_int("192.168.1.2"), ip_to_int("203.0.113.2")
    return [build_frame(ir.mac, il.mac, ETH_IPV4, build_ipv4(src, dst, 17, build_udp(src, dst, 10000 + i, 9, bytes(18)),
                                                              64, 0, False)) for i in range(flows)]


def _replies(ow, iw, r, flows: int):
    """The WAN host's answers (so conntrack calls the flows established)."""
    from pynetstack.wire.addr import ip_to_int
    from pynetstack.wire.ethernet import ETH_IPV4, build_frame
    from pynetstack.wire.ipv4 import build_ipv4
    from pynetstack.wire.udp import build_udp
    src, dst = ip_to_int("203.0.113.2"), ip_to_int("203.0.113.1")
    if r.router is None or not r.router.ruleset_function.nat_chains:
        dst = ip_to_int("192.168.1.2")
    return [build_frame(ow.mac, iw.mac, ETH_IPV4, build_ipv4(src, dst, 17, build_udp(src, dst, 9, 10000 + i, bytes(18)),
                                                              64, 0, False)) for i in range(flows)]


def forward_rate(mode: str, count: int, repeat: int, flows: int = 16, setup=None) -> float:
    """Median frames/s through the router of ``mode`` (``setup(r)`` adds to it), every flow
    opened both ways first; every frame must leave on the WAN side."""
    sim, r, ir, il, ow, iw = _router(mode)
    if setup is not None:
        setup(r)
    receive = r.host.receive_frame
    frames = _frames(ir, il, flows)
    for frame, reply in zip(frames, _replies(ow, iw, r, flows)):  # open each flow both ways
        receive(ir, frame, sim.now)
        receive(ow, reply, sim.now)
        r.host.poll(sim.now)
    iw.device.inbox.clear()

    def loop():
        for i in range(count):
            receive(ir, frames[i % flows], sim.now)

    def check():
        assert len(iw.device.inbox) == count, f"{mode}: {len(iw.device.inbox)} of {count} forwarded"
        iw.device.inbox.clear()
    rate = runner.median_rate(loop, count, repeat, after=check)
    assert not [k for k in r.drops if k != "arp-not-for-us"], dict(r.drops)
    return rate


def measure(count: int, repeat: int, flows: int = 16) -> dict:
    results = {}
    for mode in ("plain", "conntrack", "nat", "nat+flowtable", "1000 rules", "1000 rules+flowtable"):
        results[mode] = forward_rate(mode, count, repeat, flows)
    sim, r, ir, il, ow, iw = _router("plain")
    # the ceiling: rewrite MACs and TTL (with its checksum) and hand the frame on
    prefix = iw.mac + ow.mac
    sink = []
    send = sink.append

    def bare(frame):
        out = bytearray(frame)
        out[0:12] = prefix
        out[22] -= 1
        csum = ((frame[24] << 8) | frame[25]) + 0x100
        csum = (csum & 0xFFFF) + (csum >> 16)
        out[24] = csum >> 8
        out[25] = csum & 0xFF
        send(out)
    frames = _frames(ir, il, flows)

    def loop():
        for i in range(count):
            bare(frames[i % flows])
    results["bare rewrite (ceiling)"] = runner.median_rate(loop, count, repeat, after=sink.clear)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pypy", default=runner.default_pypy())
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.count, args.repeat)))
        return 0
    columns = runner.run_children(__file__, ["--count", args.count, "--repeat", args.repeat], args.pypy, timeout=600)
    print(f"forwarded 64-byte UDP frames/s, in process, {args.count} frames x {args.repeat} (median)")
    runner.print_table(columns, list(next(iter(columns.values()))), head="mode", label_width=26,
                       ratio=lambda c, _: columns[c]["bare rewrite (ceiling)"], ratio_head="x ceiling", ratio_width=11)
    return 0


if __name__ == "__main__":
    sys.exit(main())
