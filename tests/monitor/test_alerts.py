"""Slice 3: alert expressions, states (inactive, pending, firing, resolved), Alertmanager-style
grouping and repeat, and a flood on the virtual clock that fires and resolves."""

from __future__ import annotations

import threading

import pytest

from pynetstack.monitor.alerts import AlertEvaluator, Notifier
from pynetstack.monitor.config import AlertSpec, MonitorConfig, MonitorConfigError, parse
from pynetstack.monitor.expr import parse_expr, rate
from pynetstack.monitor.monitor import Monitor
from pynetstack.sim import Simulation

RX = 'pynetstack_network_receive_packets_total{device="eth0"}'
RX1 = 'pynetstack_network_receive_packets_total{device="eth1"}'


def test_expressions_select_series_and_compute_rates():
    history = [(0.0, {RX: 0.0, RX1: 0.0, "g": 5.0}), (1.0, {RX: 500.0, RX1: 10.0, "g": 7.0}),
               (2.0, {RX: 1500.0, RX1: 20.0, "g": 9.0})]
    e = parse_expr('rate(pynetstack_network_receive_packets_total{device="eth0"}[2s]) > 100')
    assert e.evaluate(history) == [({"device": "eth0"}, 750.0)]
    e = parse_expr("rate(pynetstack_network_receive_packets_total[1s]) > 5")
    assert sorted(v for _, v in e.evaluate(history)) == [10.0, 1000.0]
    assert parse_expr("sum(rate(pynetstack_network_receive_packets_total[2s])) >= 760").evaluate(history) == \
        [({}, 760.0)]
    assert parse_expr('rate(pynetstack_network_receive_packets_total{device!="eth0"}[2s]) < 100').evaluate(
        history) == [({"device": "eth1"}, 10.0)]
    assert parse_expr("g == 9").evaluate(history) == [({}, 9.0)]
    assert parse_expr("bandwidth_usage.utilization_percent > 85").name == "bandwidth_usage_utilization_percent"
    assert rate([(0, 10), (1, 20), (2, 5)]) == pytest.approx(7.5)  # a reset counts from zero
    for bad in ("rate(x) > 1", "x[5s] > 1", "sum(x > 1", "x >", 'x{a=1} > 2', "x ~ 3"):
        with pytest.raises(ValueError):
            parse_expr(bad)


def test_an_alert_goes_pending_then_firing_after_for_then_resolved():
    spec = AlertSpec("Flood", "rate(c[1s]) > 100", for_=2.0, severity="critical", labels={"team": "net"})
    ev = AlertEvaluator([spec])
    history = []
    values = [0, 50, 300, 600, 900, 1200, 1250, 1300]  # rate: 50, 250, 300, 300, 300, 50, 50
    states = []
    changes = []
    for t, v in enumerate(values):
        history.append((float(t), {"c": float(v)}))
        changes.append([a.state for a in ev.evaluate(float(t), history)])
        states.append([a.state for a in ev.instances.values()])
    assert states == [[], [], ["pending"], ["pending"], ["firing"], ["firing"], ["resolved"], ["resolved"]]
    assert changes == [[], [], [], [], ["firing"], [], ["resolved"], []]
    alert = next(iter(ev.instances.values()))
    assert alert.labels == {"alertname": "Flood", "severity": "critical", "team": "net"}
    assert (alert.active_since, alert.fired_at, alert.resolved_at) == (2.0, 4.0, 6.0)


def test_a_condition_shorter_than_for_never_fires():
    ev = AlertEvaluator([AlertSpec("Blip", "g > 1", for_=5.0)])
    for t, v in enumerate([0, 2, 2, 0, 2, 0]):
        assert ev.evaluate(float(t), [(float(t), {"g": float(v)})]) == []
    assert not ev.instances


def test_notifications_are_grouped_and_repeated_like_alertmanager():
    sent = []
    n = Notifier({"group_by": ["alertname"], "group_wait": 1.0, "group_interval": 5.0, "repeat_interval": 30.0,
                  "log": False})
    n._send = sent.append
    ev = AlertEvaluator([AlertSpec("Flood", "g > 1")])
    snapshot = {'g{device="a"}': 2.0, 'g{device="b"}': 2.0}
    for alert in ev.evaluate(0.0, [(0.0, snapshot)]):
        n.changed(alert, 1000.0)
    n.poll(0.5)
    assert sent == []  # group_wait
    n.poll(1.0)
    assert len(sent) == 1 and len(sent[0]["alerts"]) == 2  # both devices in one group
    payload = sent[0]
    assert payload["status"] == "firing" and payload["version"] == "4"
    assert payload["groupLabels"] == {"alertname": "Flood"}
    assert payload["commonLabels"] == {"alertname": "Flood", "severity": "warning"}
    assert {a["labels"]["device"] for a in payload["alerts"]} == {"a", "b"}
    assert payload["alerts"][0]["startsAt"].endswith("Z") and payload["alerts"][0]["endsAt"].startswith("0001")
    n.poll(10.0)
    assert len(sent) == 1  # nothing changed, repeat_interval not reached
    for alert in ev.evaluate(12.0, [(12.0, {'g{device="a"}': 2.0, 'g{device="b"}': 0.0})]):
        n.changed(alert, 1012.0)
    n.poll(12.0)
    assert len(sent) == 2 and sent[1]["status"] == "firing"  # a change, group_interval passed
    assert {a["labels"]["device"]: a["status"] for a in sent[1]["alerts"]} == {"a": "firing", "b": "resolved"}
    n.poll(20.0)
    assert len(sent) == 2
    n.poll(42.0)
    assert len(sent) == 3 and [a["labels"]["device"] for a in sent[2]["alerts"]] == ["a"]  # repeat_interval
    for alert in ev.evaluate(43.0, [(43.0, {'g{device="a"}': 0.0})]):
        n.changed(alert, 1043.0)
    n.poll(46.0)
    assert len(sent) == 3  # group_interval since the repeat
    n.poll(47.0)
    assert sent[3]["status"] == "resolved" and not n.groups


def test_a_udp_flood_on_the_virtual_clock_fires_and_resolves_to_the_webhook_sender():
    sim = Simulation()
    a, b = sim.stack(), sim.stack()
    sim.link(a, "10.0.0.1/24", b, "10.0.0.2/24", names=("eth0", "eth1"))
    received = []
    done = threading.Event()

    def sender(url, payload):
        received.append(payload)
        if payload["status"] == "resolved":
            done.set()
    spec = AlertSpec("PacketFlood", 'rate(pynetstack_network_receive_packets_total{device="eth0"}[2s]) > 200',
                     for_=1.0, severity="critical")
    config = MonitorConfig(listen=None, stack_http=False, collection_interval=0.5, alerts=[spec],
                           notify={"webhook": "http://127.0.0.1:9/", "group_wait": 0, "group_interval": 0,
                                   "log": False})
    monitor = Monitor(a, config, sender=sender).start()
    a.add_udp_service(9999, lambda data, peer: None)
    sim.run(2.0)
    for _ in range(400):  # 1000 datagrams a second for 4 s
        for _ in range(4):
            b.send_udp(5000, b"x" * 32, ("10.0.0.1", 9999))
        sim.run(0.01)
    states = [a_.state for a_ in monitor.evaluator.instances.values()]
    assert states == ["firing"]
    sim.run(4.0)
    assert done.wait(5)
    monitor.close()
    assert [p["status"] for p in received] == ["firing", "resolved"]
    assert received[0]["alerts"][0]["labels"] == {"alertname": "PacketFlood", "severity": "critical", "device": "eth0"}
    assert float(received[0]["alerts"][0]["annotations"]["value"]) > 200


def test_monitoring_config_errors_name_the_key():
    with pytest.raises(MonitorConfigError, match="collection_interval"):
        parse({"collection_interval": "soon"})
    with pytest.raises(MonitorConfigError, match="unknown key 'colour'"):
        parse({"colour": 1})
    with pytest.raises(MonitorConfigError, match=r"alert #1 \(x\): rate\(\) needs a range"):
        parse({"alert": [{"name": "x", "expr": "rate(y) > 1"}]})
    with pytest.raises(MonitorConfigError, match="listen"):
        parse({"listen": "nowhere"})
    with pytest.raises(MonitorConfigError, match="webhook"):
        parse({"notify": {"webhook": "ftp://x"}})
    config = parse({"listen": "127.0.0.1:0", "collection_interval": "2s", "retention_raw": "2h",
                    "alert": [{"name": "High bandwidth utilization", "metric_path": "bandwidth_usage.utilization_percent",
                               "threshold": 85.0, "severity": "high"}], "notify": {"repeat_interval": "1h"}})
    assert config.collection_interval == 2.0 and config.retention_raw == 7200.0
    assert config.alerts[0].expr == "bandwidth_usage.utilization_percent > 85.0"
    assert config.notify["repeat_interval"] == 3600.0 and config.listen == ("127.0.0.1", 0)


def test_the_stack_config_builds_a_monitor(tmp_path):
    from pynetstack.config import ConfigError, validate
    base = {"interface": [{"tap": "x0", "address": "10.0.0.2/24"}]}
    validate(dict(base, monitoring={"store": "m.db"}))
    with pytest.raises(ConfigError, match=r"\[monitoring\] max_disk_mb"):
        validate(dict(base, monitoring={"max_disk_mb": -1}))
