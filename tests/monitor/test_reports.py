"""Slice 4: reports from a store a monitored simulation filled, the CLI around them, the live
snapshot and ``pynetstack top``'s rendering."""

from __future__ import annotations

import io
import json
import time
import urllib.request

import pytest

from pynetstack.cli import main
from pynetstack.monitor import reports
from pynetstack.monitor.config import AlertSpec, MonitorConfig
from pynetstack.monitor.live import build_snapshot
from pynetstack.monitor.monitor import Monitor
from pynetstack.monitor.store import Store
from pynetstack.monitor import top
from pynetstack.sim import Simulation

PAST = 600.0  # the simulated hour ends this long before the real now, so "--since 1h" covers it


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A monitored stack on the virtual clock: 2 minutes, a UDP burst, packets to a closed port."""
    path = str(tmp_path_factory.mktemp("store") / "monitor.db")
    sim = Simulation()
    a, b = sim.stack(), sim.stack()
    sim.link(a, "10.0.0.1/24", b, "10.0.0.2/24", names=("eth0", "eth1"))
    a.add_udp_service(9999, lambda data, peer: None)
    spec = AlertSpec("Burst", 'rate(pynetstack_network_receive_packets_total{device="eth0"}[2s]) > 100', for_=1)
    start_wall = time.time() - PAST - 120
    config = MonitorConfig(listen=("127.0.0.1", 0), stack_http=False, collection_interval=1.0, store=path,
                           alerts=[spec], notify={"log": False})
    monitor = Monitor(a, config, wall_clock=lambda: start_wall).start()
    sim.run(30)
    for _ in range(300):  # 3 s of 400 datagrams/s
        for _ in range(4):
            b.send_udp(5000, b"y" * 100, ("10.0.0.1", 9999))
        sim.run(0.01)
    for _ in range(50):
        b.send_udp(5000, b"z", ("10.0.0.1", 4444))  # nobody listens: counted drops
    sim.run(90)
    gathered = a.counters.gather()
    snapshot = monitor.live.snapshot()
    url = monitor.server.url
    yield {"path": path, "gathered": gathered, "end": start_wall + 120, "snapshot": snapshot, "url": url,
           "monitor": monitor}
    monitor.close()


def test_traffic_report_totals_match_the_stack_counters(filled):
    store = Store(filled["path"])
    report = reports.build(store, "traffic", 3600, now=filled["end"] + 5)
    store.close()
    interfaces = report["sections"][0]
    assert interfaces["title"] == "Interfaces"
    eth0 = filled["gathered"]["netdev"]["eth0"]
    row = interfaces["rows"][0]
    assert row[0] == "eth0"
    # the store's first sample came after the gratuitous ARP: all but that frame are in the report
    assert int(row[3]) >= eth0["receive_packets_total"] - 2 and int(row[3]) <= eth0["receive_packets_total"]
    assert int(row[3]) >= 1250
    text = reports.render_text(report)
    assert "Top talkers" in text and "Interfaces" in text


def test_security_report_has_drops_by_reason_and_the_alert(filled):
    store = Store(filled["path"])
    report = reports.build(store, "security", 3600, now=filled["end"] + 5)
    store.close()
    drops = dict((r[0], int(r[1])) for r in report["sections"][0]["rows"])
    gathered = filled["gathered"]["drops"]
    assert drops and all(drops[reason] <= gathered[reason] for reason in drops)
    assert sum(drops.values()) >= 50
    alerts = report["sections"][-1]["rows"]
    assert [row[2] for row in alerts] == ["firing", "resolved"] and alerts[0][1] == "Burst"


def test_performance_report_and_its_html(filled, tmp_path):
    out = tmp_path / "perf.html"
    store = Store(filled["path"])
    report = reports.build(store, "performance", 3600, now=filled["end"] + 5)
    store.close()
    throughput = report["sections"][0]
    assert [r[:2] for r in throughput["rows"]] == [["eth0", "receive"], ["eth0", "transmit"]]
    assert throughput["rows"][0][-1].endswith("bit/s")  # the max: the burst
    page = reports.render_html(report)
    out.write_text(page)
    assert page.count('class="plot"') == len(report["plots"]) >= 3
    assert "uPlot" in page and "<script src" not in page  # self-contained: the library is inlined
    json.loads(page.split("const PLOTS = ")[1].split(";\n")[0])


def test_report_command_prints_text_and_writes_html(filled, tmp_path, capsys):
    html = tmp_path / "r.html"
    assert main(["report", "traffic", "--since", "1h", "--store", filled["path"], "--html", str(html)]) == 0
    captured = capsys.readouterr()
    assert "pynetstack traffic report" in captured.out and "eth0" in captured.out
    assert "report: reading" in captured.err and html.read_text().startswith("<!DOCTYPE html>")
    assert main(["report", "traffic", "--store", str(tmp_path / "none.db")]) == 1
    assert "no such store" in capsys.readouterr().err
    assert main(["report", "traffic", "--since", "soon", "--store", filled["path"]]) == 1
    assert "--since must be a duration" in capsys.readouterr().err


def test_live_snapshot_rates_and_top_renders_it(filled):
    previous = {'pynetstack_network_receive_bytes_total{device="eth0"}': 1000.0,
                'pynetstack_drops_total{reason="no-socket"}': 1.0}
    flat = {'pynetstack_network_receive_bytes_total{device="eth0"}': 3000.0,
            'pynetstack_drops_total{reason="no-socket"}': 5.0, 'pynetstack_tcp_connections{state="LISTEN"}': 2.0,
            'pynetstack_tcp_connections{state="ESTABLISHED"}': 3.0, "pynetstack_conntrack_entries": 7.0}
    snap = build_snapshot(flat, previous, 2.0)
    assert snap["interfaces"]["eth0"]["receive_bytes_per_second"] == 1000.0
    assert snap["drops"]["no-socket"] == {"total": 5.0, "per_second": 2.0}
    assert snap["connections"] == 3 and snap["conntrack"] == {"entries": 7.0}
    from rich.console import Console
    buffer = io.StringIO()
    Console(file=buffer, width=120).print(top.render(dict(snap, time=0, flows=[], alerts=[])))
    assert "eth0" in buffer.getvalue() and "1.0 kB/s" in buffer.getvalue()
    # against the running monitor's HTTP API
    served = json.loads(urllib.request.urlopen(filled["url"] + "/api/snapshot", timeout=10).read())
    assert served["interfaces"]["eth0"]["receive_packets_total"] >= 1250
    out = io.StringIO()
    assert top.run(filled["url"], count=1, out=out) == 0
    assert "Interfaces" in out.getvalue() and "eth0" in out.getvalue()
    page = urllib.request.urlopen(filled["url"] + "/", timeout=10).read().decode()
    assert '<script src="/static/uplot.iife.min.js">' in page
    assert urllib.request.urlopen(filled["url"] + "/static/uplot.iife.min.js", timeout=10).read().startswith(b"/*")


def test_top_names_an_unreachable_monitor(capsys):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens there once closed
    assert main(["top", "--url", f"http://127.0.0.1:{port}", "--count", "1"]) == 1
    assert f"cannot reach the monitor at http://127.0.0.1:{port}" in capsys.readouterr().err
