"""DNS through the stack's own UDP: dnsperf in a namespace asks a stack serving a zone over a TAP.

    sudo .venv/bin/python benchmarks/bench_dns_stack.py [--seconds 4] [--runs 3]

The named peer, in the same run and the same namespace: the same DnsServer on the kernel's
own UDP sockets (`pynetstack dns serve`), so the difference is the packet path (TAP + our
IPv4/UDP against the kernel's). CPython and PyPy; medians of --runs runs; queries bounded.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time

import runner
from pynetstack.lab import Lab

ZONE = os.path.join(runner.ROOT, "tests", "dns", "data", "example.zone")
QUERIES = ["www.example.test A", "mail.example.test A", "example.test MX", "text.example.test TXT",
           "nothing.example.test A", "alias.example.test A", "x.wild.example.test A", "ns2.example.test AAAA"]
MAX_QUERIES = 400_000


def dnsperf(lab, ns, server, port, seconds, datafile):
    result = lab.run(ns, "dnsperf", "-s", server, "-p", str(port), "-d", datafile, "-l", str(seconds),
                     "-c", "4", "-q", "64", "-t", "2", "-n", str(MAX_QUERIES // len(QUERIES)), timeout=seconds + 30)
    qps = re.search(r"Queries per second:\s+([\d.]+)", result.stdout)
    lost = re.search(r"Queries lost:\s+(\d+)", result.stdout)
    if not qps:
        raise RuntimeError(result.stdout + result.stderr)
    return float(qps.group(1)), int(lost.group(1)) if lost else 0


def wait_answer(lab, ns, server, port):
    for _ in range(100):
        out = lab.run(ns, "dig", f"@{server}", "-p", str(port), "+time=1", "+tries=1", "www.example.test").stdout
        if "192.0.2.10" in out:
            return
        time.sleep(0.1)
    raise RuntimeError(f"no DNS answer from {server}:{port}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("dnsperf"):
        print("dnsperf is missing: apt-get install dnsperf")
        return 1
    pythons = runner.interpreters()
    env = runner.child_env()
    rows = []
    with Lab("dnsb") as lab, tempfile.TemporaryDirectory() as tmp:
        ns = lab.netns("dns")
        datafile = os.path.join(tmp, "queries.txt")
        with open(datafile, "w") as handle:
            handle.write("\n".join(QUERIES) + "\n")
        for i, (label, python) in enumerate(pythons):
            config = os.path.join(tmp, f"stack{i}.toml")
            with open(config, "w") as handle:
                handle.write(f'[[interface]]\ntap = "pnsdb{i}"\naddress = "10.99.{20 + i}.2/24"\n'
                             f'host_address = "10.99.{20 + i}.1/24"\n\n[services]\nudp_echo = false\n'
                             f'tcp_echo = false\ndiscard = false\nhttp = false\n\n[dns]\nzones = ["{ZONE}"]\n')
            lab.popen(ns, python, "-m", "pynetstack", "up", "--config", config,
                      "--control", os.path.join(tmp, f"c{i}.sock"), env=env)
            wait_answer(lab, ns, f"10.99.{20 + i}.2", 53)  # the TAP (and its kernel address) exists now
            lab.popen(ns, python, "-m", "pynetstack", "dns", "serve", "--zone", ZONE,
                      "--listen", f"10.99.{20 + i}.1:5300", env=env)
            targets = [(f"{label}: stack UDP over TAP", f"10.99.{20 + i}.2", 53),
                       (f"{label}: kernel UDP sockets", f"10.99.{20 + i}.1", 5300)]
            for name, server, port in targets:
                wait_answer(lab, ns, server, port)
                dnsperf(lab, ns, server, port, 2, datafile)  # warm-up (JIT, memo of replies)
                runs = [dnsperf(lab, ns, server, port, args.seconds, datafile) for _ in range(args.runs)]
                rows.append((name, statistics.median(q for q, _ in runs), max(lost for _, lost in runs)))
    print(f"dnsperf -c 4 -q 64, {args.seconds} s x {args.runs} runs, medians; authoritative answers")
    print(f"{'server':<36}{'queries/s':>12}{'x kernel sockets':>18}{'max lost':>10}")
    for index, (name, qps, lost) in enumerate(rows):
        peer = rows[index | 1][1]  # rows come in pairs: (stack, kernel sockets) per interpreter
        print(f"{name:<36}{qps:>12,.0f}{qps / peer:>18.2f}{lost:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
