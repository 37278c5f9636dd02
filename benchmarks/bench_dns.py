"""DNS queries per second: pynetstack (authoritative, cached) against dnslib and Unbound.

Every server listens on 127.0.0.1 (high ports picked at run time) in its own process; the load
comes from dnsperf (Debian package dnsperf) or, without it, a bounded Python load generator.
Every run is bounded in time and in queries. Prints medians and ratios, the speed of the
sans-I/O answer function alone, and the memory one cached record costs.

    PYTHONPATH=src python benchmarks/bench_dns.py [--seconds 4] [--runs 3]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "src"))
sys.path.insert(0, os.path.join(ROOT, "tests", "dns"))

from dnsinterop import free_port, wait_udp  # noqa: E402  (the interop tests' server helpers)

from pynetstack.dns import Cache, DnsServer, Resolver, load_zone  # noqa: E402
from pynetstack.wire import dns as w  # noqa: E402

ZONE = os.path.join(ROOT, "tests", "dns", "data", "example.zone")
QUERIES = [("www.example.test", "A"), ("mail.example.test", "A"), ("example.test", "MX"),
           ("www.example.test", "AAAA"), ("_sip._udp.example.test", "SRV"), ("ns1.example.test", "A"),
           ("text.example.test", "TXT"), ("rev.example.test", "PTR")]
MAX_QUERIES_PER_RUN = 2_000_000


def python_env():
    return dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"))


def start(args, port, env=None):
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_udp("127.0.0.1", port)
    except RuntimeError:
        proc.kill()
        raise
    return proc


def stop(proc):
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def pynetstack_server(*extra):
    port = free_port()
    args = [sys.executable, "-m", "pynetstack.dns.cli", "dns", "serve", "--listen", f"127.0.0.1:{port}", *extra]
    return start(args, port, python_env()), port


def dnslib_server():
    try:
        import dnslib  # noqa: F401
    except ImportError:
        print("dnslib is not installed for this interpreter: no dnslib comparison (pip install dnslib)")
        return None, None
    port = free_port()
    code = ("import sys,time; from dnslib.server import DNSServer, DNSLogger; "
            "from dnslib.zoneresolver import ZoneResolver; "
            f"s=DNSServer(ZoneResolver(open({ZONE!r}).read()), port={port}, address='127.0.0.1', "
            "logger=DNSLogger('-request,-reply,-truncated,-error', False)); s.start_thread(); "
            "[time.sleep(1) for _ in iter(int, 1)]")
    return start([sys.executable, "-c", code], port), port


def unbound_server(upstream_port, workdir):
    exe = shutil.which("unbound") or ("/usr/sbin/unbound" if os.path.exists("/usr/sbin/unbound") else None)
    if exe is None:
        return None, None
    port = free_port()
    conf = os.path.join(workdir, "unbound.conf")
    with open(conf, "w") as f:
        f.write(f"""server:
  interface: 127.0.0.1@{port}
  port: {port}
  username: ""
  chroot: ""
  directory: "{workdir}"
  pidfile: "{workdir}/unbound.pid"
  use-syslog: no
  logfile: "{workdir}/unbound.log"
  num-threads: 1
  do-not-query-localhost: no
  module-config: "iterator"
  access-control: 127.0.0.0/8 allow
forward-zone:
  name: "example.test."
  forward-addr: 127.0.0.1@{upstream_port}
""")
    return start([exe, "-d", "-c", conf], port), port


# --- load generators ------------------------------------------------------------------------


def dnsperf(port, seconds, datafile):
    out = subprocess.run(["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", datafile, "-l", str(seconds),
                          "-c", "4", "-q", "64", "-t", "2", "-n", str(MAX_QUERIES_PER_RUN // len(QUERIES))],
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))
    lost = re.search(r"Queries lost:\s+(\d+)", out)
    return qps, int(lost.group(1)) if lost else 0


def python_load(port, seconds, datafile):
    """Keep 32 queries outstanding on one socket; bounded by time and count."""
    with open(datafile) as f:
        pairs = [line.split() for line in f if line.strip()]
    wires = [w.make_query(n + ".", w.type_code(t), id=i & 0xFFFF) for i, (n, t) in enumerate(pairs)]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(0.5)
    sent = received = lost = 0
    end = time.monotonic() + seconds
    start_t = time.monotonic()
    for i in range(32):
        sock.send(wires[i % len(wires)])
        sent += 1
    while time.monotonic() < end and sent < MAX_QUERIES_PER_RUN:
        try:
            sock.recv(4096)
            received += 1
        except socket.timeout:
            lost += 1
        sock.send(wires[sent % len(wires)])
        sent += 1
    elapsed = time.monotonic() - start_t
    sock.close()
    return received / elapsed, lost


# --- in-process figures -------------------------------------------------------------------------


def handle_rate(server, queries, seconds=1.0, now=0.0):
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end and n < MAX_QUERIES_PER_RUN:
        for q in queries:
            server.handle(q, "udp", now)
        n += len(queries)
    return n / seconds


def in_process_figures():
    zone = load_zone(ZONE)
    auth = DnsServer([zone])
    wires = [w.make_query(n + ".", w.type_code(t), id=7) for n, t in QUERIES]
    memo = handle_rate(auth, wires)
    auth_nomemo = DnsServer([zone])
    auth_nomemo._remember = lambda *a: None
    plain = handle_rate(auth_nomemo, wires)
    minimal = DnsServer([zone], minimal_responses=True)
    minimal._remember = lambda *a: None
    plain_minimal = handle_rate(minimal, wires)

    resolver = Resolver(forwarders=["127.0.0.1"])
    cached = DnsServer([], resolver=resolver, recursion=True)
    cached._remember = lambda *a: None
    for q in wires:  # fill the cache: carry the sans-I/O resolver's queries to ``auth`` in process
        cached.handle(q, "udp", 0.0, lambda reply: None)
        while resolver.outgoing:
            exchange = resolver.outgoing.popleft()
            resolver.receive(exchange, auth.handle(exchange.wire, "tcp" if exchange.tcp else "udp", 0.0), 0.0)
    cache_rate = handle_rate(cached, wires)
    return memo, plain, plain_minimal, cache_rate


def bytes_per_cached_record(n=20000):
    try:
        import tracemalloc
        tracemalloc.start()
    except ImportError:  # PyPy has no tracemalloc
        return None
    cache = Cache(max_entries=n)
    before = tracemalloc.get_traced_memory()[0]
    for i in range(n):
        rr = w.Record(f"host{i}.example.test.", w.A, w.IN, 300, w.ARdata(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"))
        cache.put([rr], 0.0)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / n


# --- main ---------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    load = dnsperf if shutil.which("dnsperf") else python_load
    print(f"load generator: {'dnsperf' if load is dnsperf else 'python (dnsperf not installed)'}; "
          f"{args.runs} runs x {args.seconds:g} s; python {sys.version.split()[0]} "
          f"({sys.implementation.name})")
    workdir = tempfile.mkdtemp(prefix="bench-dns-")
    datafile = os.path.join(workdir, "queries.txt")
    with open(datafile, "w") as f:
        f.writelines(f"{n} {t}\n" for n, t in QUERIES)
    # 20000 distinct wildcard names: more than the reply memo holds, so every answer is computed
    distinct = os.path.join(workdir, "distinct.txt")
    with open(distinct, "w") as f:
        f.writelines(f"h{i}.wild.example.test A\n" for i in range(20000))
    procs, results = [], {}
    try:
        auth, auth_port = pynetstack_server("--zone", ZONE)
        procs.append(auth)
        # answers without the zone's NS set and addresses (what every answer was before NSD's
        # full responses became the default): the like-for-like figure for older runs
        minimal, minimal_port = pynetstack_server("--zone", ZONE, "--minimal-responses")
        procs.append(minimal)
        rec, rec_port = pynetstack_server("--recursion", "--forwarder", f"127.0.0.1:{auth_port}")
        procs.append(rec)
        lib, lib_port = dnslib_server()
        if lib is not None:
            procs.append(lib)
        unb, unb_port = unbound_server(auth_port, workdir)
        if unb is not None:
            procs.append(unb)
        targets = [("pynetstack authoritative", auth_port, datafile),
                   ("pynetstack authoritative, 20k names", auth_port, distinct),
                   ("pynetstack minimal responses, 20k names", minimal_port, distinct),
                   ("pynetstack cached (forwarding)", rec_port, datafile)]
        if lib is not None:
            targets.append(("dnslib authoritative", lib_port, datafile))
        if unb is not None:
            targets.append(("unbound cached (forwarding)", unb_port, datafile))
        for _, port, data in targets:  # warm caches
            load(port, 0.5, data)
        for name, port, data in targets:
            runs = [load(port, args.seconds, data) for _ in range(args.runs)]
            results[name] = (statistics.median(r[0] for r in runs), sum(r[1] for r in runs))
    finally:
        for p in procs:
            stop(p)
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{'server':38} {'q/s (median)':>14} {'lost':>8}")
    for name, (qps, lost) in results.items():
        print(f"{name:38} {qps:14,.0f} {lost:8}")
    print()
    if "dnslib authoritative" in results:
        base = results["dnslib authoritative"][0]
        for name, (qps, _) in results.items():
            if not name.startswith("dnslib"):
                print(f"ratio {name} / dnslib authoritative: {qps / base:.2f}")
    if "unbound cached (forwarding)" in results:
        print(f"ratio pynetstack cached / unbound cached: "
              f"{results['pynetstack cached (forwarding)'][0] / results['unbound cached (forwarding)'][0]:.2f}")
    memo, plain, plain_minimal, cached = in_process_figures()
    print(f"\nin-process DnsServer.handle (no sockets): authoritative memoised {memo:,.0f}/s, "
          f"authoritative full path {plain:,.0f}/s (minimal responses {plain_minimal:,.0f}/s), "
          f"cached recursive full path {cached:,.0f}/s")
    per_record = bytes_per_cached_record()
    if per_record is not None:
        print(f"memory per cached A record: {per_record:,.0f} bytes")


if __name__ == "__main__":
    main()
