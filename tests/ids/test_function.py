"""The IDS on a simulated router: it sees forwarded traffic, alerts, and drops inline."""

from __future__ import annotations

from pynetstack.ids import Detector, load_rules
from pynetstack.ids.function import IdsFunction
from pynetstack.net import hooks as hk
from pynetstack.sim import Simulation
from pynetstack.wire.addr import ip_to_int
from pynetstack.wire.udp import build_udp

A, B = ip_to_int("10.0.0.1"), ip_to_int("10.0.1.2")
RULES = ('alert udp any any -> any 5000 (msg:"hello seen"; content:"hello"; sid:1;)\n'
         'drop udp any any -> any 5000 (msg:"attack"; content:"attack"; sid:2;)\n')


def routed():
    sim = Simulation()
    a, r, b = sim.stack(), sim.stack(forwarding=True), sim.stack()
    sim.link(a, "10.0.0.1/24", r, "10.0.0.254/24")
    sim.link(r, "10.0.1.254/24", b, "10.0.1.2/24", names=("eth1", "eth0"))
    a.add_route("0.0.0.0/0", "10.0.0.254")
    b.add_route("0.0.0.0/0", "10.0.1.254")
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
    assert ids.sees_every_packet and (hk.PREROUTING, -150) in ids.hooks


def test_inline_drop_rules_drop():
    got, written, r, ids = run(inline=True)
    assert got == [b"hello"]
    assert [(a.rule.sid, a.action) for a in written] == [(1, "allowed"), (2, "blocked")]
    assert r.status()["functions"]["ids"]["blocked"] == 1
