"""Policy routing (`ip rule`), throw routes, decisions with ECMP, and `ip route get` text."""

import pytest

from pynetstack.net.route import NextHop, Route, RouteError
from pynetstack.net.route_ecmp import ResilientGroup
from pynetstack.net.route_policy import RoutingPolicy, Rule
from pynetstack.wire.addr import ip_to_int as ip


class Dev:
    def __init__(self, name):
        self.name = name
        self.up = True


@pytest.fixture
def net():
    lan, wan, wan2 = Dev("lan0"), Dev("wan0"), Dev("wan1")
    policy = RoutingPolicy(hash_seed=1)
    policy.add(Route(ip("10.0.0.0"), 24, wan, proto="kernel", src=ip("10.0.0.2")))
    policy.add(Route(ip("192.168.1.0"), 24, lan))
    policy.add(Route(0, 0, wan, ip("10.0.0.1")))
    policy.name_table("isp2", 200)
    policy.add(Route(0, 0, wan2, ip("10.9.0.1"), table="isp2"))
    return policy, lan, wan, wan2


def test_default_rules_and_fast_lookup(net):
    policy, _, wan, _ = net
    assert policy.show_rules() == ["0:\tfrom all lookup local", "32766:\tfrom all lookup main",
                                   "32767:\tfrom all lookup default"]
    assert policy.lookup == policy.main.lookup  # no rule walk while the rules are the defaults
    assert policy.lookup(ip("8.8.8.8")).interface is wan


def test_source_rule_chooses_a_table(net):
    policy, _, wan, wan2 = net
    generation = policy.generation
    rule = policy.add_rule(src=(ip("192.168.1.128"), 25), table="isp2")
    assert rule.priority == 32765 and policy.generation > generation
    assert policy.decide(ip("8.8.8.8"), src=ip("192.168.1.200")).interface is wan2
    decision = policy.decide(ip("8.8.8.8"), src=ip("192.168.1.5"))
    assert decision.interface is wan and decision.table == 254 and decision.rule == 32766
    assert decision.next_hop == ip("10.0.0.1") and decision.gateway == ip("10.0.0.1")
    # isp2's default route covers the LAN too (the classic policy-routing trap), until the table
    # has no answer for it: then the next rule (main) decides
    assert policy.decide(ip("192.168.1.9"), src=ip("192.168.1.200")).interface is wan2
    policy.delete(0, 0, table="isp2")
    assert policy.decide(ip("192.168.1.9"), src=ip("192.168.1.200")).interface.name == "lan0"
    assert policy.decide(ip("192.168.1.9")).next_hop == ip("192.168.1.9")
    assert policy.show_rules()[1] == "32765:\tfrom 192.168.1.128/25 lookup isp2"
    assert policy.add_rule(table=200).priority == 32764


def test_throw_route_continues_with_the_next_rule(net):
    policy, _, wan, wan2 = net
    policy.add_rule(100, table="isp2")
    assert policy.decide(ip("203.0.113.1")).interface is wan2
    policy.add(Route(ip("203.0.113.0"), 24, type="throw", table="isp2"))
    decision = policy.decide(ip("203.0.113.1"))
    assert decision.interface is wan and decision.table == 254
    assert policy.lookup(ip("203.0.113.1")).interface is wan


def test_throw_in_main_without_rules_means_unreachable(net):
    policy, *_ = net
    policy.add(Route(ip("203.0.113.0"), 24, type="throw"))
    assert policy.lookup(ip("203.0.113.1")) is None  # the rule walk, not the main-only path
    assert policy.explain(ip("203.0.113.1")) == "RTNETLINK answers: Network is unreachable"


@pytest.mark.parametrize("selectors, hit, miss", [
    ({"fwmark": 0x10, "fwmask": 0xF0}, {"mark": 0x1F}, {"mark": 0x20}),
    ({"fwmark": 1}, {"mark": 1}, {"mark": 3}),
    ({"iif": "lan0"}, {"iif": "lan0"}, {"iif": "wan0"}),
    ({"iif": "lo"}, {}, {"iif": "lan0"}),  # lo: sent by this host
    ({"ipproto": "udp"}, {"proto": 17}, {"proto": 6}),
    ({"dport": 53}, {"dport": 53}, {"dport": 54}),
    ({"sport": (1000, 2000)}, {"sport": 2000}, {"sport": 999}),
    ({"dst": (ip("198.51.100.0"), 24)}, {}, {"dst": ip("198.51.101.1")}),
    ({"src": (ip("10.1.0.0"), 16), "invert": True}, {"src": ip("10.2.0.1")}, {"src": ip("10.1.0.1")}),
])
def test_rule_selectors(net, selectors, hit, miss):
    policy, _, _, wan2 = net
    policy.add_rule(10, table="isp2", **selectors)
    fields = {"dst": ip("198.51.100.7")}
    assert policy.decide(**{**fields, **hit}).interface is wan2
    assert policy.decide(**{**fields, **miss}).interface is not wan2


@pytest.mark.parametrize("action, text", [
    ("blackhole", "Invalid argument"), ("prohibit", "Permission denied"), ("unreachable", "Network is unreachable")])
def test_rule_actions(net, action, text):
    policy, *_ = net
    policy.add_rule(5, action=action, dport=25)
    decision = policy.decide(ip("8.8.8.8"), proto=6, dport=25)
    assert decision.type == action and decision.route is None and decision.interface is None
    assert policy.explain(ip("8.8.8.8"), proto=6, dport=25) == f"RTNETLINK answers: {text}"
    assert policy.decide(ip("8.8.8.8"), proto=6, dport=80).type == "unicast"
    assert policy.show_rules()[1] == f"5:\tfrom all dport 25 {action}"


@pytest.mark.parametrize("kind, text", [
    ("blackhole", "Invalid argument"), ("prohibit", "Permission denied"), ("unreachable", "No route to host")])
def test_route_types_in_explain(net, kind, text):
    policy, *_ = net
    policy.add(Route(ip("192.0.2.0"), 24, type=kind))
    assert policy.decide(ip("192.0.2.1")).type == kind
    assert policy.explain(ip("192.0.2.1")) == f"RTNETLINK answers: {text}"


def test_explain_like_ip_route_get(net):
    policy, lan, wan, _ = net
    choose = {"wan0": ip("10.0.0.2"), "lan0": ip("192.168.1.1")}
    assert policy.explain(ip("203.0.113.5"), source_for=lambda iface, hop: choose[iface.name]) == (
        "203.0.113.5 via 10.0.0.1 dev wan0 src 10.0.0.2 uid 0")
    assert policy.explain(ip("203.0.113.5")) == "203.0.113.5 via 10.0.0.1 dev wan0 uid 0"
    assert policy.explain(ip("10.0.0.9")) == "10.0.0.9 dev wan0 src 10.0.0.2 uid 0"  # the route's src
    policy.add_rule(50, table="isp2", fwmark=7)
    assert policy.explain(ip("203.0.113.5"), mark=7) == "203.0.113.5 via 10.9.0.1 dev wan1 table isp2 mark 0x7 uid 0"
    assert policy.explain(ip("203.0.113.5"), src=ip("192.168.1.7"), iif="lan0") == (
        "203.0.113.5 from 192.168.1.7 via 10.0.0.1 dev wan0 iif lan0")
    policy.add(Route(ip("10.0.0.2"), 32, wan, type="local", table="local"))
    assert policy.explain(ip("10.0.0.2")) == "local 10.0.0.2 dev wan0 table local uid 0"
    policy.main.flush()
    assert policy.explain(ip("203.0.113.5")) == "RTNETLINK answers: Network is unreachable"


def test_local_table_is_consulted_first(net):
    policy, _, wan, _ = net
    local = policy.add(Route(ip("10.0.0.2"), 32, wan, type="local", table="local"))
    assert policy.lookup != policy.main.lookup
    assert policy.lookup(ip("10.0.0.2")) is local
    assert policy.lookup(ip("10.0.0.3")).type == "unicast"
    policy.table("local").remove(ip("10.0.0.2"), 32)
    assert policy.lookup == policy.main.lookup


def test_show_tables(net):
    policy, *_ = net
    assert policy.show() == ["default via 10.0.0.1 dev wan0", "10.0.0.0/24 dev wan0 proto kernel scope link src 10.0.0.2",
                             "192.168.1.0/24 dev lan0 scope link"]
    assert policy.show("isp2") == ["default via 10.9.0.1 dev wan1"]
    assert "default via 10.9.0.1 dev wan1 table isp2" in policy.show("all")


def test_interface_state_and_generation(net):
    policy, _, wan, wan2 = net
    policy.add(Route(0, 0, wan2, ip("10.9.0.1"), metric=100))
    generation = policy.generation
    policy.set_interface_state(wan, False)
    assert policy.generation > generation
    assert policy.lookup(ip("8.8.8.8")).interface is wan2
    wan.up = True
    generation = policy.generation
    policy.invalidate()
    assert policy.generation > generation and policy.lookup(ip("8.8.8.8")).interface is wan


def test_multipath_decision_uses_the_flow_hash(net):
    policy, _, wan, wan2 = net
    policy.replace(Route(0, 0, nexthops=[NextHop(wan, ip("10.0.0.1")), NextHop(wan2, ip("10.9.0.1"))]))
    low = policy.decide(ip("8.8.8.8"), flow_hash=0)
    high = policy.decide(ip("8.8.8.8"), flow_hash=(1 << 31) - 1)
    assert (low.interface, high.interface) == (wan, wan2) and low.nexthop.gateway == ip("10.0.0.1")
    seen = {policy.decide(ip("8.8.8.8"), src=ip("192.168.1.2"), proto=6, sport=p, dport=80).interface
            for p in range(40)}
    assert len(seen) == 1  # hash policy 0 (L3): the ports do not matter
    l4 = RoutingPolicy(hash_seed=1, hash_policy=1)
    l4.add(Route(0, 0, nexthops=[NextHop(wan, ip("10.0.0.1")), NextHop(wan2, ip("10.9.0.1"))]))
    seen = {l4.decide(ip("8.8.8.8"), src=ip("192.168.1.2"), proto=6, sport=p, dport=80).interface for p in range(40)}
    assert seen == {wan, wan2}


def test_resilient_group_route_in_policy(net):
    policy, _, wan, wan2 = net
    group = ResilientGroup(7, [NextHop(wan, ip("10.0.0.1")), NextHop(wan2, ip("10.9.0.1"))], buckets=8)
    policy.add(Route(ip("198.51.100.0"), 24, nhgroup=group))
    got = {policy.decide(ip("198.51.100.1"), flow_hash=b, now=1.0).interface for b in range(8)}
    assert got == {wan, wan2}


def test_errors(net):
    policy, *_ = net
    with pytest.raises(RouteError, match="unknown table"):
        policy.add_rule(table="nope")
    with pytest.raises(RouteError, match="unknown rule action"):
        Rule(1, action="goto")
    with pytest.raises(RouteError, match="dport"):
        policy.add_rule(dport=(10, 5))
    with pytest.raises(RouteError, match="No such file"):
        policy.delete_rule(12345)
    with pytest.raises(RouteError, match="hash policy"):
        RoutingPolicy(hash_policy=2)
    with pytest.raises(RouteError, match="No such process"):
        policy.delete(ip("1.0.0.0"), 8)
    policy.add_rule(77, table="isp2")
    assert policy.delete_rule(77).table == 200
    assert policy.lookup == policy.main.lookup


def test_main_only_shortcut_agrees_with_the_rule_walk(net):
    policy, lan, wan, wan2 = net
    policy.add(Route(ip("198.51.100.0"), 24, nexthops=[NextHop(wan, ip("10.0.0.1")), NextHop(lan, ip("192.168.1.1"))]))
    policy.add(Route(ip("192.0.2.0"), 24, type="prohibit"))
    assert policy._main_only
    probes = [ip(a) for a in ("8.8.8.8", "10.0.0.5", "192.168.1.1", "192.0.2.7", "198.51.100.1", "198.51.100.200")]
    fast = [policy.decide(d, src=ip("10.0.0.2"), proto=6, sport=d & 0xFFFF, dport=80) for d in probes]
    policy._main_only = False
    slow = [policy.decide(d, src=ip("10.0.0.2"), proto=6, sport=d & 0xFFFF, dport=80) for d in probes]
    assert [(f.route, f.type, f.nexthop, f.table, f.rule) for f in fast] == [
        (s.route, s.type, s.nexthop, s.table, s.rule) for s in slow]
