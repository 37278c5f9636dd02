"""What monitoring costs: forwarding and TCP throughput with the monitor on against off, the time
of one scrape with 10,000 TCP connections, and the store's ingest rate against plain sqlite3.

    python benchmarks/bench_monitor.py [--repeat 3] [--quick]

Stacks run on the virtual clock (no root needed).  "On" means what a deployment does: the monitor
registered on the stack, sampling once per real second into its SQLite store, and a scraper
thread fetching /metrics from its host socket once per real second (Prometheus' pace).  The
virtual interval that gives one sample per real second is measured in the "off" run first.
Figures are medians of ``--repeat`` runs, on and off interleaved.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))
sys.path.insert(0, ROOT)

from pynetstack.api.tcp import tcp_layer  # noqa: E402
from pynetstack.monitor.config import MonitorConfig  # noqa: E402
from pynetstack.monitor.monitor import Monitor  # noqa: E402
from pynetstack.monitor.store import Store  # noqa: E402
from pynetstack.netfilter.router import install_router  # noqa: E402
from pynetstack.sim import Simulation  # noqa: E402
from pynetstack.wire.addr import ip_to_int  # noqa: E402

LAN_HOST, WAN_HOST = "192.168.1.2", "203.0.113.2"


def routed():
    sim = Simulation()
    lan, r, wan = sim.routed()  # LAN_HOST -- router -- WAN_HOST
    install_router(r, ruleset_text="")
    return sim, lan, r, wan


class Monitoring:
    """The monitor on ``stack`` plus a 1 Hz scraper, or nothing when ``interval`` is None."""

    def __init__(self, stack, interval):
        self.monitor = None
        self.stop = threading.Event()
        self.scrapes = 0
        if interval is None:
            return
        self.dir = tempfile.mkdtemp(prefix="bench-monitor-")
        config = MonitorConfig(listen=("127.0.0.1", 0), stack_http=False, collection_interval=interval,
                               store=os.path.join(self.dir, "m.db"))
        self.monitor = Monitor(stack, config).start()
        self.thread = threading.Thread(target=self._scrape, daemon=True)
        self.thread.start()

    def _scrape(self):
        while not self.stop.wait(1.0):
            urllib.request.urlopen(self.monitor.server.url + "/metrics", timeout=10).read()
            self.scrapes += 1

    def close(self):
        if self.monitor is not None:
            self.stop.set()
            self.thread.join()
            self.monitor.close()


def forward_run(interval, packets):
    """UDP datagrams lan -> router (conntrack, nft) -> wan; returns (packets/s real, virtual s per real s)."""
    sim, lan, r, wan = routed()
    got = [0]
    wan.udp.bind(9000, lambda *args: got.__setitem__(0, got[0] + 1))
    mon = Monitoring(r, interval)
    sim.run(0.5)
    dst = ip_to_int(WAN_HOST)
    payload = bytes(64)
    started, v0 = time.perf_counter(), sim.now
    sent = 0
    while sent < packets:
        for i in range(100):
            lan.udp.sendto(payload, 4000 + (sent + i) % 50, dst, 9000, sim.now)
        sent += 100
        sim.run(0.002)
    sim.run(0.5)
    elapsed, virtual = time.perf_counter() - started, sim.now - v0
    mon.close()
    assert got[0] >= packets * 0.99, (got[0], packets)
    return got[0] / elapsed, virtual / elapsed, mon


def tcp_run(interval, megabytes):
    """A bulk TCP transfer lan -> wan through the router, the monitor on the receiver."""
    from tests.tcp.tcp_harness import BulkApp
    sim, lan, r, wan = routed()
    tl, tw = tcp_layer(lan), tcp_layer(wan)
    listener = tw.listen(5000)
    client = tl.connect(ip_to_int(WAN_HOST), 5000, sim.now)
    sim.run(duration=5, until=lambda: bool(listener.accept_queue))
    server = listener.accept()
    mon = Monitoring(wan, interval)
    data = random.Random(1).randbytes(megabytes * 1_000_000)
    app_c, app_s = BulkApp(client, data), BulkApp(server, b"")
    started, v0 = time.perf_counter(), sim.now

    def pump():
        app_c.pump(sim.now)
        app_s.pump(sim.now)
        return len(app_s.received) >= len(data)
    sim.run(duration=600, until=pump)
    elapsed, virtual = time.perf_counter() - started, sim.now - v0
    mon.close()
    assert len(app_s.received) == len(data)
    return len(data) / elapsed / 1e6, virtual / elapsed, mon


def compare(name, run, arg, repeat):
    off, on, scale, samples, scrapes = [], [], None, 0, 0
    for _ in range(repeat):
        value, ratio, _ = run(None, arg)
        off.append(value)
        scale = ratio if scale is None else scale  # virtual seconds per real second
        value, _, mon = run(scale, arg)  # one sample per real second
        on.append(value)
        samples, scrapes = mon.monitor.samples, mon.scrapes
        work = mon.monitor.sample_seconds / max(1, samples) + mon.monitor.exposition.collector.last_duration
    m_off, m_on = statistics.median(off), statistics.median(on)
    print(f"{name}: off {m_off:,.1f}  on {m_on:,.1f}  cost {1 - m_on / m_off:+.1%} "
          f"(last on-run: {samples} samples, {scrapes} scrapes; runs off {[round(x, 1) for x in off]} "
          f"on {[round(x, 1) for x in on]}); the monitor's own work per real second: {work * 1000:.2f} ms "
          f"({work:.2%} of the loop's time)", flush=True)


def scrape_with_connections(n):
    """Time of one /metrics body and of one sample with ``n`` established TCP connections."""
    sim = Simulation()
    a, b = sim.stack(), sim.stack()
    sim.link(a, "10.0.0.1/16", b, "10.0.0.2/16", names=("eth0", "eth1"))
    ta, tb = tcp_layer(a), tcp_layer(b)
    listener = tb.listen(80, backlog=n)
    clients = []
    while len(clients) < n:
        for _ in range(min(500, n - len(clients))):
            clients.append(ta.connect(ip_to_int("10.0.0.2"), 80, sim.now))
        sim.run(0.2)
        while listener.accept_queue:
            listener.accept()
    sim.run(1.0)
    mon = Monitor(b, MonitorConfig(listen=None, stack_http=False))
    established = sum(1 for c in tb.connections.values() if c.state == "ESTABLISHED")
    scrape, sample = [], []
    for _ in range(7):
        t = time.perf_counter()
        body = mon.exposition.text()
        scrape.append(time.perf_counter() - t)
        t = time.perf_counter()
        mon.sample(sim.now)
        sample.append(time.perf_counter() - t)
    print(f"scrape with {established:,} established connections: median {statistics.median(scrape) * 1000:.1f} ms "
          f"({len(body):,} bytes); one sample {statistics.median(sample) * 1000:.1f} ms; "
          f"peer: status() {_time(b.status) * 1000:.1f} ms", flush=True)


def _time(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def ingest(seconds, series=200):
    """Store.append of 200-series samples (one transaction each) against plain sqlite3 doing the same."""
    keys = [f'pynetstack_bench_total{{n="{i}"}}' for i in range(series)]
    with tempfile.TemporaryDirectory() as d:
        store = Store(os.path.join(d, "s.db"))
        n, t0, t = 0, time.perf_counter(), 1.7e9
        while time.perf_counter() - t0 < seconds:
            store.append(t, {key: float(n) for key in keys})
            n += series
            t += 1.0
        ours = n / (time.perf_counter() - t0)
        store.close()
        db = sqlite3.connect(os.path.join(d, "plain.db"), isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE s (series INTEGER, ts INTEGER, value REAL)")
        n, t0, t = 0, time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            db.execute("BEGIN")
            db.executemany("INSERT INTO s VALUES (?, ?, ?)", [(i, t, float(n)) for i in range(series)])
            db.execute("COMMIT")
            n += series
            t += 1000
        peer = n / (time.perf_counter() - t0)
        db.close()
    print(f"store ingest, {series}-series samples (one transaction each): {ours:,.0f} samples/s; "
          f"peer: plain sqlite3 rowid table, same transactions: {peer:,.0f} samples/s ({ours / peer:.2f}x)",
          flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small loads (a smoke run)")
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]} ({sys.implementation.name})", flush=True)
    compare("forwarding UDP through conntrack (packets/s)", forward_run, 20_000 if args.quick else 150_000,
            args.repeat)
    compare("TCP bulk through a router, monitor on the receiver (MB/s)", tcp_run, 2 if args.quick else 30,
            args.repeat)
    scrape_with_connections(1000 if args.quick else 10_000)
    ingest(1.0 if args.quick else 3.0)


if __name__ == "__main__":
    main()
