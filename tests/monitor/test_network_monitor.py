"""The seed's NetworkMonitor facade: its metric paths become expressions over the counters."""

from __future__ import annotations

from pynetstack.monitor import NetworkMonitor
from pynetstack.monitor.expr import parse_expr
from pynetstack.sim import Simulation


def test_seed_metric_paths_map_to_rates_with_converted_thresholds(tmp_path):
    sim = Simulation()
    a, b = sim.stack(), sim.stack()
    sim.link(a, "10.0.0.1/24", b, "10.0.0.2/24", names=("eth0", "eth1"))
    monitor = NetworkMonitor(a, {"collection_interval": 1, "analysis_interval": 2, "link_speed_mbps": 8,
                                 "store": str(tmp_path / "m.db"), "listen": None})
    specs = monitor.configure_alerts([
        {"name": "High bandwidth utilization", "metric_path": "bandwidth_usage.utilization_percent",
         "threshold": 50.0, "severity": "high"},
        {"name": "Busy", "metric_path": "connections.active", "threshold": 10}])
    e = parse_expr(specs[0].expr)
    assert e.name == "pynetstack_network_transmit_bytes_total" and e.rate_range == 2.0
    assert e.threshold == 500_000  # 50 % of 8 Mbit/s in bytes per second
    assert parse_expr(specs[1].expr).matchers == (("state", False, "ESTABLISHED"),)
    monitor.start_monitoring()
    a.add_udp_service(9, lambda data, peer: data)  # echo: a transmits what b sends
    sim.run(2)
    for _ in range(300):  # 3 s of 600 kB/s echoed back: over 50 % of 8 Mbit/s
        for _ in range(6):
            b.send_udp(5000, b"u" * 1000, ("10.0.0.1", 9))
        sim.run(0.01)
    assert [x["state"] for x in monitor.alerts()] == ["firing"]
    sim.run(6)
    assert [x["state"] for x in monitor.alerts()] == ["resolved"]
    text = monitor.generate_report("performance", 3600)
    assert "High bandwidth utilization" in text and "eth0" in text
    monitor.stop_monitoring()
