"""Simulation.routed, the topology most simulated tests share: two hosts and a router between them."""

from __future__ import annotations

from pynetstack.sim import LAN, NET0, NET1, WAN, Simulation
from pynetstack.wire.addr import ip_to_int


def echo_at(stack, port):
    got = []
    stack.add_udp_service(port, lambda data, peer: got.append((bytes(data), peer[0])) or b"re:" + data)
    return got


def test_both_hosts_reach_each_other_through_the_router():
    sim = Simulation()
    a, r, b = sim.routed(NET0, NET1)
    assert sorted(r.interfaces) == ["eth0", "eth1"] and list(a.interfaces) == list(b.interfaces) == ["eth0"]
    at_b = echo_at(b, 7)
    replies = []
    a.udp.bind(4000, lambda payload, src, sport, dst, now: replies.append(bytes(payload)))
    a.udp.sendto(b"hi", 4000, ip_to_int("10.0.1.2"), 7, sim.now)
    sim.run(1)
    assert at_b == [(b"hi", "10.0.0.1")] and replies == [b"re:hi"]
    assert r.host.counters["ip_forwarded"] >= 2


def test_without_a_route_back_the_right_host_cannot_answer():
    sim = Simulation()
    lan, r, wan = sim.routed(LAN, WAN, right_route=None)
    at_wan = echo_at(wan, 7)
    lan.udp.sendto(b"hi", 4000, ip_to_int(WAN[0].split("/")[0]), 7, sim.now)
    sim.run(1)
    assert at_wan == [(b"hi", "192.168.1.2")]
    assert wan.drops["ipv4-no-route"] == 1  # its answer has nowhere to go


def test_options_apply_to_the_right_link():
    sim = Simulation()
    _, r, b = sim.routed(NET0, NET1, mtu=1000)
    assert r.interfaces["eth1"].mtu == b.interfaces["eth0"].mtu == 1000
    assert r.interfaces["eth0"].mtu == 1500
