"""The [qos] section, `qos show` on the control socket, and the CLI's parser."""

from __future__ import annotations

import json

import pytest

from pynetstack import router_control
from pynetstack.cli import build_parser
from pynetstack.config import ConfigError, validate
from pynetstack.qos import control
from pynetstack.qos.config import QosConfigError, build, parse
from pynetstack.sim import Simulation

BASE = {"interface": [{"tap": "lan0", "address": "10.0.0.1/24"}, {"tap": "wan0", "address": "10.0.1.1/24"}]}
GOOD = {
    "interface": "wan0", "rate": "50mbit", "remark": True, "ecn": False, "sla_window": "500ms",
    "class": {"voice": {"rate": "5mbit", "police": "5mbit", "prio": 0},
              "bulk": {"rate": "10mbit", "ceil": "50mbit", "target": "10ms", "limit": 500}},
    "rule": [{"class": "video", "protocol": "udp", "dport": "5004-5010"}, {"class": "background", "mark": "0x10"}],
    "sla": {"voice": {"delay_p99_ms": 8, "loss_percent": 0.5}},
}


def test_a_good_section_parses():
    config = parse(GOOD, "[qos]", ["lan0", "wan0"])
    assert config.interfaces == ["wan0"] and config.rate == 50e6 / 8 and config.remark
    assert config.specs["voice"].rate == 5e6 / 8 and config.specs["voice"].prio == 0
    assert config.specs["bulk"].target == 0.010 and config.specs["bulk"].limit == 500
    assert [r.klass for r in config.rules] == ["video", "background"]
    assert config.targets["voice"] == {"delay_p99_ms": 8.0, "loss_percent": 0.5}
    assert config.sla_window == 0.5 and not config.specs["video"].ecn
    validate(dict(BASE, qos=GOOD))


@pytest.mark.parametrize("change,message", [
    ({"interface": "eth9"}, "no interface 'eth9'"),
    ({"rate": "fast"}, "rate"),
    ({"colour": "blue"}, "unknown key"),
    ({"class": {"gold": {}}}, "unknown class"),
    ({"class": {"bulk": {"rate": "60mbit"}}}, "more than the link's rate"),
    ({"class": {"bulk": {"rate": "45mbit"}}}, "add up to"),
    ({"class": {"bulk": {"prio": 9}}}, "prio must be an integer within 0..7"),
    ({"class": {"bulk": {"target": "soon"}}}, "target must be a duration"),
    ({"rule": [{"protocol": "udp"}]}, "needs 'class'"),
    ({"rule": [{"class": "bulk", "dport": "x"}]}, "rule #1: dport"),
    ({"sla": {"voice": {"delay_p99": 3}}}, "unknown target"),
    ({"remark": "yes"}, "remark must be true or false"),
])
def test_bad_sections_are_refused_with_one_message(change, message):
    with pytest.raises(QosConfigError, match=message):
        parse(dict(GOOD, **change), "[qos]", ["lan0", "wan0"])
    with pytest.raises(ConfigError, match=r"\[qos\]"):
        validate(dict(BASE, qos=dict(GOOD, **change)))


def test_built_on_a_stack_and_shown_like_tc():
    sim = Simulation()
    a, b = sim.stack(), sim.stack()
    sim.link(a, "10.0.1.1/24", b, "10.0.1.2/24", names=("wan0", "eth0"))
    qdiscs = build(a, GOOD)
    assert a.interfaces["wan0"].qdisc is qdiscs[0]
    for _ in range(20):
        a.udp.sendto(bytes(100), 4000, 0x0A000102, 5006, sim.now)
    sim.run(1.2)
    text = router_control.answer(a, "qos show dev wan0")
    assert "qdisc htb 1: dev wan0 root" in text
    assert "class htb 1:2 parent 1:1 leaf prio 0 rate 5Mbit ceil 5Mbit" in text and "(voice) police 5Mbit" in text
    video = text.split("(video)")[1]
    assert " Sent 2" in video.splitlines()[1]  # 20 datagrams of 142 bytes: 2840 bytes
    assert "delay p50" in text and "sla targets: delay_p99_ms 8" in text
    stats = json.loads(router_control.answer(a, "qos json"))
    assert stats["wan0"]["classes"]["video"]["sent_packets"] == 20
    assert a.counters.gather()["qos"]["wan0"]["classifier"]["rule"] >= 20
    assert router_control.answer(a, "qos show dev eth7").startswith("error: qos show: 'eth7' has no qdisc")
    assert router_control.answer(b, "qos show").startswith("error: this stack shapes no interface")


def test_the_cli_has_qos_show():
    args = build_parser().parse_args(["qos", "show", "dev", "wan0", "--control", "/tmp/x.sock"])
    assert args.words == ["show", "dev", "wan0"] and args.control == "/tmp/x.sock"


def test_show_formats_rates_like_tc():
    assert control._rate(50e6 / 8) == "50Mbit" and control._rate(125) == "1Kbit" and control._rate(10) == "80bit"
