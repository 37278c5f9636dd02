"""The ruleset on a router's packet path: compiled chains, every drop counted under the rule (by
handle) or the policy that made it, traces naming chain and rule."""

from __future__ import annotations

from pynetstack.netfilter.router import install_router
from pynetstack.sim import Simulation
from pynetstack.wire.addr import ip_to_int

WAN_HOST = ip_to_int("203.0.113.2")
RULES = """table ip filter {
	chain forward {
		type filter hook forward priority filter; policy drop;
		udp dport 9000 counter accept
		udp dport 9001 counter drop
		udp dport 9002 jump deny
	}
	chain deny {
		counter drop
	}
}
"""


def test_drops_are_counted_under_rule_handles_and_policy():
    sim = Simulation()
    lan, r, wan = sim.routed()
    router = install_router(r, ruleset_text=RULES)
    got = []
    for port in (9000, 9001, 9002, 9003):
        wan.udp.bind(port, lambda payload, src, sport, dst, now, port=port: got.append(port))
    for port in (9000, 9001, 9001, 9002, 9003):
        lan.udp.sendto(b"x", 4000, WAN_HOST, port, sim.now)
        sim.run(0.1)
    assert got == [9000]
    table = router.ruleset.tables[("ip", "filter")]
    h_drop = table.chains["forward"].rules[1].handle
    h_deny = table.chains["deny"].rules[0].handle
    assert r.drops[f"nft-filter-forward-rule-{h_drop}"] == 2
    assert r.drops[f"nft-filter-deny-rule-{h_deny}"] == 1
    assert r.drops["nft-filter-forward-policy"] == 1
    stats = router.ruleset_function.stats()
    assert stats["drops"] == 4 and stats["classifier-rules"] == 4
    assert "counter packets 2 bytes 58 drop" in router.ruleset.list_ruleset()


def test_trace_names_chain_rule_and_verdict_like_nft_monitor_trace():
    from pynetstack.net.trace import ListTracer
    sim = Simulation()
    lan, r, wan = sim.routed(right_route=None)
    install_router(r, ruleset_text=RULES)
    tracer = ListTracer(lambda frame: bytes(frame[12:14]) == b"\x08\x00")  # IPv4, not ARP
    r.host.trace(tracer)
    lan.udp.sendto(b"x", 4000, WAN_HOST, 9002, sim.now)
    sim.run(0.1)
    steps = "\n".join(tracer.journeys[0])
    assert 'ip filter forward packet: iif "lan0" oif "wan0" ip saddr 192.168.1.2 ip daddr 203.0.113.2' in steps
    assert "ip filter forward rule udp dport 9002 jump deny (verdict jump deny)" in steps
    assert "ip filter deny rule counter packets 1 bytes 29 drop (verdict drop)" in steps
    assert "DROPPED: nft-filter-deny-rule-" in steps
