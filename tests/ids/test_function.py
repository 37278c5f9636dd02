"""The IDS on a simulated router: it sees forwarded traffic, alerts, and drops inline."""

from __future__ import annotations

from pynetstack.ids import Detector, load_rules
from pynetstack.ids.function import IdsFunction
from pynetstack.net import hooks as hk
from pynetstack.sim import NET0, NET1, Simulation
from pynetstack.wire.addr import ip_to_int
from pynetstack.wire.udp import build_udp

A, B = ip_to_int("10.0.0.1"), ip_to_int("10.0.1.2")
RULES = ('alert udp any any -> any 5000 (msg:"hello seen"; content:"hello"; sid:1;)\n'
         'drop udp any any -> any 5000 (msg:"attack"; content:"attack"; sid:2;)\n')


def routed():
    sim = Simulation()
    a, r, b = sim.routed(NET0, NET1)
    return sim, a, r, b


def run(inline):
    sim, a, r, b = routed()
    written = []
    ids = r.register(IdsFunction(Detector(load_rules(RULES), inline=inline), on_alerts=written.extend))
    got = []
    b.add_udp_service(5000, lambda data, peer: got.append(bytes(data)))
    for payload in (b"hello", b"attack"):
        a.host.ip_send(A, B, 17, build_udp(A, B, 4000, 5000, payload), sim.now)
    sim.run(2)
    return got, written, r, ids


def test_alert_only_by_default():
    got, written, r, ids = run(inline=False)
    assert got == [b"hello", b"attack"]
    assert [(a.rule.sid, a.action) for a in written] == [(1, "allowed"), (2, "allowed")]
    stats = r.status()["functions"]["ids"]
    assert stats["alerts"] == 2 and stats["packets"] >= 2
    assert ids.sees_every_packet and (hk.PREROUTING, -90) in ids.hooks


def test_inline_drop_rules_drop():
    got, written, r, ids = run(inline=True)
    assert got == [b"hello"]
    assert [(a.rule.sid, a.action) for a in written] == [(1, "allowed"), (2, "blocked")]
    assert r.status()["functions"]["ids"]["blocked"] == 1


def test_ids_section_builds_and_registers_the_function(tmp_path):
    import json

    from pynetstack.ids.config import IdsConfigError, build

    (tmp_path / "local.rules").write_text(RULES)
    sim, a, r, b = routed()
    ids = build(r, {"rules": ["local.rules"], "inline": True, "eve": "eve.json", "fast": "fast.log",
                    "baseline": True}, str(tmp_path))
    assert "ids" in r.status()["functions"] and ids.inline
    assert [d.name for d in ids.detector.detectors] == ["scan", "synflood", "baseline"]
    b.add_udp_service(5000, lambda data, peer: None)
    a.host.ip_send(A, B, 17, build_udp(A, B, 4000, 5000, b"attack"), sim.now)
    sim.run(1)
    event = json.loads((tmp_path / "eve.json").read_text().splitlines()[0])
    assert event["alert"]["signature_id"] == 2 and event["alert"]["action"] == "blocked"
    assert "[Drop]" in (tmp_path / "fast.log").read_text()
    (tmp_path / "bad.rules").write_text("alert tcp any any -> any any (sid:1\n")
    try:
        build(r, {"rules": ["bad.rules"]}, str(tmp_path))
    except IdsConfigError as exc:
        assert "bad.rules:1:" in str(exc)
    else:
        raise AssertionError("a malformed rule file must stop the configuration")


def test_flows_are_keyed_by_conntrack_when_it_runs():
    """With a conntrack tuple, a reply whose addresses NAT changed is the same flow, its
    direction conntrack's; without it the 5-tuple decides (the reply is another flow)."""
    from pynetstack.ids.flow import FlowTable

    pub, priv, server = ip_to_int("203.0.113.1"), ip_to_int("192.168.1.2"), ip_to_int("198.51.100.7")
    ct_key = (6, priv, 40000, server, 80)
    table = FlowTable()
    out, d0 = table.lookup(6, priv, 40000, server, 80, 0.0, ct_key, 0)
    back, d1 = table.lookup(6, server, 80, pub, 61000, 0.1, ct_key, 1)
    assert back is out and (d0, d1) == (0, 1) and out.client == (priv, 40000) and len(table.flows) == 1
    plain = FlowTable()
    a, _ = plain.lookup(6, priv, 40000, server, 80, 0.0)
    b, d = plain.lookup(6, server, 80, pub, 61000, 0.1)
    assert a is not b and d == 0 and len(plain.flows) == 2
