from __future__ import annotations

import pytest

from pynetstack.ids import Detector
from pynetstack.ids.baseline import BaselineDetector
from pynetstack.ids.flood import SynFloodDetector
from pynetstack.ids.scan import ScanDetector
from tests.ids.packets import ACK, FIN, PSH, SYN, URG, tcp, udp

MSS = b"\x02\x04\x05\xb4"
FULL_SYN_OPTIONS = MSS + b"\x04\x02\x08\x0a" + bytes(8) + b"\x01\x03\x03\x07"  # what connect() sends


def scan(kind_packet, ports=range(1, 101), spacing=0.01, detector=None):
    detector = detector or ScanDetector()
    d = Detector(detectors=[detector])
    alerts = []
    for i, port in enumerate(ports):
        alerts += d.inspect_bytes(kind_packet(port), i * spacing)
    return alerts


@pytest.mark.parametrize("name,make", [
    ("TCP SYN", lambda p: tcp("6.6.6.6", 50000, "10.0.0.2", p, SYN, options=MSS)),
    ("TCP connect", lambda p: tcp("6.6.6.6", 40000 + p, "10.0.0.2", p, SYN, options=FULL_SYN_OPTIONS)),
    ("TCP FIN", lambda p: tcp("6.6.6.6", 50000, "10.0.0.2", p, FIN)),
    ("TCP Xmas", lambda p: tcp("6.6.6.6", 50000, "10.0.0.2", p, FIN | PSH | URG)),
    ("TCP NULL", lambda p: tcp("6.6.6.6", 50000, "10.0.0.2", p, 0)),
    ("TCP ACK", lambda p: tcp("6.6.6.6", 50000, "10.0.0.2", p, ACK)),
    ("UDP", lambda p: udp("6.6.6.6", 50000, "10.0.0.2", p)),
])
def test_scans_are_detected_and_named(name, make):
    alerts = scan(make)
    assert len(alerts) == 1
    assert alerts[0].extra["scan_type"] == name and alerts[0].rule.msg == f"PYNETSTACK SCAN {name} scan"


def test_slow_scan_over_minutes():
    alerts = scan(lambda p: tcp("6.6.6.6", 50000, "10.0.0.2", p, SYN, options=MSS), range(1, 40), spacing=20.0)
    assert len(alerts) == 1 and "slow TCP SYN" in alerts[0].rule.msg


def test_many_connections_to_one_port_are_no_scan():
    d = Detector(detectors=[ScanDetector(), SynFloodDetector()])
    alerts = []
    for i in range(2000):
        t = i * 0.001
        c, s = 20000 + i, 1000 * i
        alerts += d.inspect_bytes(tcp("10.0.0.1", c, "10.0.0.2", 80, SYN, s, options=FULL_SYN_OPTIONS), t)
        alerts += d.inspect_bytes(tcp("10.0.0.2", 80, "10.0.0.1", c, SYN | ACK, 7, s + 1), t)
        alerts += d.inspect_bytes(tcp("10.0.0.1", c, "10.0.0.2", 80, ACK, s + 1, 8), t)
    alerts += d.poll(10.0)
    assert alerts == []  # a busy server: 2000 SYN/s, every handshake completed


def test_syn_flood_with_spoofed_sources_is_detected():
    d = Detector(detectors=[SynFloodDetector()])
    alerts = []
    for i in range(1500):
        src = f"172.16.{i // 250}.{i % 250 + 1}"
        alerts += d.inspect_bytes(tcp(src, 1024 + i, "10.0.0.2", 80, SYN, i), i * 0.001)
    alerts += d.poll(1.6)
    assert len(alerts) == 1
    extra = alerts[0].extra
    assert extra["spoofed_sources"] and extra["syn_per_second"] >= 1000 and extra["completed"] == 0
    assert alerts[0].packet.dport == 80


def test_baseline_learns_then_flags_a_deviation():
    detector = BaselineDetector(warmup=20, per_host=False)
    d = Detector(detectors=[detector])
    alerts = []
    t = 0.0
    for second in range(40):  # about 10 packets/s, with a little variation
        for k in range(10 + second % 3):
            alerts += d.inspect_bytes(udp("10.0.0.1", 5000, "10.0.0.2", 53), second + k * 0.01)
    assert alerts == []
    for k in range(400):  # a burst: 400 packets in one second
        t = 40 + k * 0.002
        alerts += d.inspect_bytes(udp("10.0.0.1", 6000 + k, "10.0.0.2", 9), t)
    alerts += d.inspect_bytes(udp("10.0.0.1", 5000, "10.0.0.2", 53), 41.5)
    metrics = {a.extra["metric"] for a in alerts}
    assert {"packets", "new_flows"} <= metrics
    packets = [a for a in alerts if a.extra["metric"] == "packets"][0].extra
    assert packets["value"] >= 250 and packets["baseline_mean"] < 15 and packets["z_score"] > 6
