"""Classification cost per packet: the compiled classifier against the linear evaluator.

    .venv/bin/python benchmarks/bench_firewall.py        # runs itself on CPython and on PyPy

A realistic mix of N filter rules (N = 10, 100, 1,000, 10,000) in one input chain: conntrack and
loopback rules first, then block lists of hosts and /24s, services (``ip daddr H tcp dport P``),
port sets and ranges, and a few rules no index can hold (``meta mark``, ``tcp flags``, ``!=``).
Packets are new connections, half of them hitting a random rule and half missing all (they end
at the policy: the worst case for a linear walk).  Each cell is the median of --repeat runs,
each run at most --budget seconds, in microseconds per packet, of
``Classifier.evaluate_chain`` (classifier.py) and ``nft.evaluate.evaluate_chain`` (the peer).

Then forwarding: 64-byte UDP frames through a router stack in process (benchmarks/bench_router.py's
set-up) with conntrack and no ruleset, against the same with a 1,000-rule forward chain (no flow
table, so every frame is classified), and with the flow table.

The kernel's nftables cannot be timed per classification the same way (its cost hides in the
softirq path of each packet), so it is not a column here.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import sys
import time

import runner
from bench_router import forward_rate

SIZES = (10, 100, 1000, 10000)


def mixed_rules(n: int, seed: int = 1):
    """(nft text of the chain, a list of packet specs that hit rules)."""
    r = random.Random(seed)
    head = ["ct state established,related accept", "ct state invalid drop", 'iifname "lo" accept',
            "icmp type echo-request limit rate 10/second accept"]
    rules, hits = list(head[:max(1, min(len(head), n // 3))]), []
    while len(rules) < n:
        kind = r.random()
        a, b, c = r.randint(1, 223), r.randint(0, 255), r.randint(0, 255)
        if kind < 0.35:
            d = r.randint(1, 254)
            rules.append(f"ip saddr {a}.{b}.{c}.{d} counter drop")
            hits.append(dict(src=f"{a}.{b}.{c}.{d}"))
        elif kind < 0.55:
            rules.append(f"ip saddr {a}.{b}.{c}.0/24 drop")
            hits.append(dict(src=f"{a}.{b}.{c}.{r.randint(1, 254)}"))
        elif kind < 0.80:
            port = r.choice([22, 25, 80, 443, 993, 3306, 5432, 8080, r.randint(1024, 65535)])
            rules.append(f"ip daddr 10.{b}.{c}.{a} tcp dport {port} counter accept")
            hits.append(dict(dst=f"10.{b}.{c}.{a}", dport=port))
        elif kind < 0.90:
            lo = r.randint(1024, 60000)
            rules.append(f"udp dport {lo}-{lo + r.randint(1, 50)} accept")
            hits.append(dict(proto=17, dport=lo))
        elif kind < 0.97:
            ports = r.sample(range(1, 65535), 3)
            rules.append("tcp dport { " + ", ".join(map(str, ports)) + " } accept")
            hits.append(dict(dport=ports[0]))
        else:
            rules.append(r.choice([f"meta mark {r.randint(1, 100)} drop",
                                   f"tcp flags & (syn|ack) == syn ip saddr != 10.0.0.0/8 tcp dport {r.randint(1, 65535)} "
                                   "counter", "ip ttl 1 counter"]))
    body = "".join(f"\t\t{rule}\n" for rule in rules[:n])
    text = ("table ip filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n"
            f"{body}\t}}\n}}\n")
    return text, hits


def packets(hits, count: int, seed: int = 2):
    from pynetstack.net.hooks import PacketContext  # noqa: F401 - the real context is heavier; see Pkt
    sys.path.insert(0, os.path.join(runner.ROOT, "tests"))
    from netfilter.nftstub import Pkt
    r = random.Random(seed)
    out = []
    for _ in range(count):
        spec = dict(r.choice(hits)) if hits and r.random() < 0.5 else {}
        spec.setdefault("src", f"{r.randint(1, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}")
        spec.setdefault("dst", f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}")
        spec.setdefault("dport", r.randint(1, 65535))
        out.append(Pkt(sport=r.randint(1024, 65535), iifname="eth0", ct_state="new", **spec))
    return out


def _time(fn, pkts, repeat: int, budget: float) -> float:
    """Median microseconds per packet, each run as many passes over ``pkts`` as ``budget`` allows."""
    def run():
        done, start = 0, time.perf_counter()
        while True:
            for p in pkts:
                fn(p)
            done += len(pkts)
            elapsed = time.perf_counter() - start
            if elapsed > budget:
                return elapsed / done * 1e6
    return runner.median_of_runs(run, repeat)


def classification(repeat: int, budget: float) -> dict:
    from pynetstack.netfilter.classifier import Classifier
    from pynetstack.netfilter.nft import loads
    from pynetstack.netfilter.nft.evaluate import evaluate_chain
    out = {}
    for n in SIZES:
        text, hits = mixed_rules(n)
        rs = loads(text)
        chain = rs.tables[("ip", "filter")].chains["input"]
        classifier = Classifier(rs)
        pkts = packets(hits, 1000)
        compiled = _time(functools.partial(classifier.evaluate_chain, chain), pkts, repeat, budget)
        linear = _time(functools.partial(evaluate_chain, chain), pkts[:max(20, 20000 // n)], repeat, budget)
        out[str(n)] = {"compiled": compiled, "linear": linear,
                       "indexed": classifier.stats()["rules-indexed"]}
    return out


FORWARD_MODES = ("conntrack", "1000 rules", "1000 rules+flowtable")


def forwarding(count: int, repeat: int) -> dict:
    return {mode: forward_rate(mode, count, repeat) for mode in FORWARD_MODES}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--budget", type=float, default=0.3, help="seconds per timed run")
    parser.add_argument("--count", type=int, default=30000, help="frames per forwarding run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pypy", default=runner.default_pypy())
    args = parser.parse_args()
    if args.child:
        print(json.dumps({"classify": classification(args.repeat, args.budget),
                          "forward": forwarding(args.count, args.repeat)}))
        return 0
    columns = runner.run_children(__file__, ["--repeat", args.repeat, "--budget", args.budget, "--count", args.count],
                                  args.pypy)
    print(f"classification, us per packet (median of {args.repeat}), compiled vs linear evaluator")
    print(f"{'rules':>7}{'indexed':>9}" + "".join(f"{name + ' compiled':>18}{'linear':>11}{'x':>8}"
                                               for name in columns))
    for n in map(str, SIZES):
        first = next(iter(columns.values()))["classify"][n]
        row = "".join(f"{c['classify'][n]['compiled']:18.2f}{c['classify'][n]['linear']:11.1f}"
                      f"{c['classify'][n]['linear'] / c['classify'][n]['compiled']:8.0f}" for c in columns.values())
        print(f"{n:>7}{first['indexed']:>9}{row}")
    print(f"\nforwarded 64-byte UDP frames/s in process ({args.count} frames, median of {args.repeat})")
    forward = {name: c["forward"] for name, c in columns.items()}
    runner.print_table(forward, FORWARD_MODES, head="mode", width=12, ratio=lambda c, _: forward[c]["conntrack"],
                       ratio_head="x none", labels={"conntrack": "no ruleset (conntrack)"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
