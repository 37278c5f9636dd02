"""A NAT router between two stacks on the virtual clock: masquerade, port forwarding, TCP through
NAT with the flow table, ICMP errors translated, conntrack time-outs, a full table."""

from __future__ import annotations

import random

import pytest

from pynetstack.api.tcp import tcp_layer
from pynetstack.net import hooks as hk
from pynetstack.netfilter.router import install_router
from pynetstack.sim import Simulation
from pynetstack.wire import icmp as icmpw
from pynetstack.wire.addr import ip_to_int
from pynetstack.wire.udp import build_udp

from ..stacks import exchange, tcp_pair
from ..tcp.tcp_harness import digest

LAN_HOST, LAN_R, WAN_R, WAN_HOST = (ip_to_int(a) for a in ("192.168.1.2", "192.168.1.1", "203.0.113.1",
                                                           "203.0.113.2"))
MASQUERADE = """
table ip nat {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "wan0" tcp dport 8080 dnat to 192.168.1.2:80
		iifname "wan0" udp dport 5353 dnat to 192.168.1.2:53
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 192.168.1.0/24 oifname "wan0" counter masquerade
	}
}
"""


@pytest.fixture
def nat_lab():
    sim = Simulation()
    lan, r, wan = sim.routed(right_route=None)  # the WAN host has no route back to the LAN: only NAT works
    router = install_router(r, ruleset_text=MASQUERADE)
    return sim, lan, r, wan, router


def udp_service(stack, port):
    got = []
    stack.add_udp_service(port, lambda data, peer: got.append((data, peer)) or b"re:" + data)
    return got


def test_masquerade_udp_both_ways(nat_lab):
    sim, lan, r, wan, router = nat_lab
    at_wan = udp_service(wan, 9000)
    at_lan = []
    lan.udp.bind(4000, lambda payload, src, sport, dst, now: at_lan.append((bytes(payload), src, sport)))
    for i in range(3):
        lan.udp.sendto(b"hi %d" % i, 4000, WAN_HOST, 9000, sim.now)
        sim.run(0.2)
    assert [data for data, _ in at_wan] == [b"hi 0", b"hi 1", b"hi 2"]
    assert {peer for _, peer in at_wan} == {("203.0.113.1", 4000)}, "the WAN sees the router, the port kept"
    assert [d for d, _, _ in at_lan] == [b"re:hi 0", b"re:hi 1", b"re:hi 2"]
    assert {(src, sport) for _, src, sport in at_lan} == {(WAN_HOST, 9000)}
    lines = router.conntrack_list()
    assert len(lines) == 1 and lines[0].startswith("udp      17 ")
    assert "src=192.168.1.2 dst=203.0.113.2 sport=4000 dport=9000 src=203.0.113.2 dst=203.0.113.1 " \
           "sport=9000 dport=4000 mark=0" in lines[0]
    rule = [rule for rule in router.ruleset.rules() if "masquerade" in rule.format()][0]
    assert "counter packets 1 " in rule.format(), "the nat chain saw the first packet only"
    assert r.host.flowtable.stats()["hits"] >= 1, "later datagrams took the flow table"


def test_port_forward_from_the_wan(nat_lab):
    sim, lan, r, wan, router = nat_lab
    at_lan = udp_service(lan, 53)
    replies = []
    wan.udp.bind(6000, lambda payload, src, sport, dst, now: replies.append((bytes(payload), src, sport)))
    wan.udp.sendto(b"query", 6000, WAN_R, 5353, sim.now)
    sim.run(0.5)
    assert at_lan == [(b"query", ("203.0.113.2", 6000))]
    assert replies == [(b"re:query", WAN_R, 5353)], "the reply comes back from the forwarded address and port"


def test_tcp_bulk_through_nat_and_flow_table(nat_lab):
    sim, lan, r, wan, router = nat_lab
    client, server = tcp_pair(sim, lan, wan, WAN_HOST, 5000)
    assert server is not None
    assert server.remote_ip == WAN_R if hasattr(server, "remote_ip") else True
    rng = random.Random(7)
    up, down = rng.randbytes(300_000), rng.randbytes(200_000)
    at_server, at_client = exchange(sim, client, server, up, down, limit=120)
    assert digest(at_server) == digest(up) and digest(at_client) == digest(down)
    assert r.host.flowtable.stats()["hits"] > 100, r.host.flowtable.stats()
    assert not [reason for reason in wan.drops if "checksum" in reason]
    assert not [reason for reason in lan.drops if "checksum" in reason]


def test_icmp_port_unreachable_is_translated_back(nat_lab):
    sim, lan, r, wan, router = nat_lab
    errors = []
    lan.udp.bind(4100, lambda *args: None)  # an ICMP error is believed only for a port we have
    lan.udp.icmp_error = lambda *args: errors.append(args)
    lan.host.ip_send(LAN_HOST, WAN_HOST, 17, build_udp(LAN_HOST, WAN_HOST, 4100, 9999, b"nobody"), sim.now)
    sim.run(0.5)
    assert len(errors) == 1
    icmp_type, code, _info, inner = errors[0][:4]
    assert (icmp_type, code) == (icmpw.DEST_UNREACHABLE, icmpw.CODE_PORT)
    assert (inner.src, inner.dst) == (LAN_HOST, WAN_HOST), "the quoted datagram is the LAN host's own again"


def test_ping_through_nat(nat_lab):
    sim, lan, r, wan, router = nat_lab
    seen = []
    lan.host.echo_listeners.append(lambda ip, msg, now: seen.append((ip.src, msg.ident, msg.seq)))
    for seq in range(3):
        lan.host.ip_send(LAN_HOST, WAN_HOST, 1, icmpw.build_echo(True, 0x1234, seq, b"ping"), sim.now)
        sim.run(0.2)
    assert seen == [(WAN_HOST, 0x1234, 0), (WAN_HOST, 0x1234, 1), (WAN_HOST, 0x1234, 2)]


def test_udp_entries_time_out_on_the_virtual_clock(nat_lab):
    sim, lan, r, wan, router = nat_lab
    udp_service(wan, 9000)
    lan.udp.sendto(b"x", 4000, WAN_HOST, 9000, sim.now)
    sim.run(1)
    assert len(router.conntrack_list()) == 1
    sim.run(298)  # RFC 4787 REQ-5: UDP mappings live at least 300 s by default
    assert len(router.conntrack_list()) == 1
    sim.run(2)
    assert router.conntrack_list() == []


def test_tcp_established_lives_two_hours_four_minutes(nat_lab):
    sim, lan, r, wan, router = nat_lab
    assert tcp_pair(sim, lan, wan, WAN_HOST, 5001)[1] is not None
    sim.run(7000)
    assert any("ESTABLISHED" in line for line in router.conntrack_list())
    sim.run(500)  # RFC 5382 REQ-5: 2 h 4 min of idleness ends an established mapping
    assert not any("ESTABLISHED" in line for line in router.conntrack_list())


def _plain_router(**options):
    sim = Simulation()
    lan, r, wan = sim.routed(right_route="192.168.1.0/24")
    return sim, lan, r, wan, install_router(r, **options)


def test_full_table_drops_unassured_flows_early():
    sim, lan, r, wan, router = _plain_router(max_entries=4)
    at_wan = udp_service(wan, 9000)
    for port in range(4000, 4010):
        lan.udp.sendto(b"x", port, WAN_HOST, 9000, sim.now)
        sim.run(0.1)
    assert len(at_wan) == 10, "new flows push out unassured ones (Linux's early_drop)"
    assert router.conntrack.count == 4 and router.conntrack.counters["early_drop"] == 6


def test_full_table_of_assured_connections_refuses_new_ones_and_keeps_old_ones():
    sim, lan, r, wan, router = _plain_router(max_entries=3)
    tl, tw = tcp_layer(lan), tcp_layer(wan)
    listener = tw.listen(5000)
    clients = []
    for _ in range(4):
        clients.append(tl.connect(WAN_HOST, 5000, sim.now))
        sim.run(1)
    accepted = []
    while listener.accept_queue:
        accepted.append(listener.accept())
    assert len(accepted) == 3, "the fourth SYN found the table full of assured connections"
    assert r.drops["conntrack-table-full"] >= 1
    clients[0].send(b"still here", sim.now)
    sim.run(1)
    assert accepted[0].recv(100, sim.now) == b"still here"


def test_stages_sit_where_linux_puts_them(nat_lab):
    sim, lan, r, wan, router = nat_lab
    assert r.host.hooks.stages(hk.PREROUTING) == [(-200, "conntrack"), (-100, "nat prerouting")]
    assert r.host.hooks.stages(hk.POSTROUTING) == [(100, "nat postrouting"), (2 ** 31 - 1, "conntrack confirm")]


def test_failover_to_the_next_route_when_a_link_goes_down():
    sim = Simulation()
    lan, r, w1, w2 = sim.stack(), sim.stack(forwarding=True), sim.stack(), sim.stack()
    sim.link(lan, "192.168.1.2/24", r, "192.168.1.1/24", names=("eth0", "lan0"))
    sim.link(r, "10.1.0.1/24", w1, "10.1.0.2/24", names=("wan0", "eth0"))
    sim.link(r, "10.2.0.1/24", w2, "10.2.0.2/24", names=("wan1", "eth0"))
    lan.add_route("0.0.0.0/0", "192.168.1.1")
    r.add_route("0.0.0.0/0", "10.1.0.2", metric=10)
    r.add_route("0.0.0.0/0", "10.2.0.2", metric=20)
    server = "192.0.2.1"
    got = {}
    for name, stack, back in (("w1", w1, "10.1.0.1"), ("w2", w2, "10.2.0.1")):
        stack.host.add_address(stack.interfaces["eth0"], ip_to_int(server), 32)
        stack.add_route("192.168.1.0/24", back)
        stack.add_udp_service(9000, lambda data, peer, name=name: got.setdefault(name, []).append(data))
    lan.udp.sendto(b"first", 4000, ip_to_int(server), 9000, sim.now)
    sim.run(0.5)
    r.set_link("wan0", False)
    lan.udp.sendto(b"second", 4000, ip_to_int(server), 9000, sim.now)
    sim.run(0.5)
    r.set_link("wan0", True)
    lan.udp.sendto(b"third", 4000, ip_to_int(server), 9000, sim.now)
    sim.run(0.5)
    assert got == {"w1": [b"first", b"third"], "w2": [b"second"]}


def test_masquerade_entries_go_with_the_address():
    sim = Simulation()
    lan, r, wan = sim.routed(right_route=None)
    router = install_router(r, ruleset_text=MASQUERADE)
    udp_service(wan, 9000)
    lan.udp.sendto(b"x", 4000, WAN_HOST, 9000, sim.now)
    sim.run(0.5)
    assert len(router.conntrack_list()) == 1
    r.remove_address("wan0", "203.0.113.1/24")
    assert router.conntrack_list() == [], "Linux flushes masquerade entries when the address goes away"


def test_a_closing_connection_leaves_the_flow_table_so_conntrack_sees_it_close(nat_lab):
    sim, lan, r, wan, router = nat_lab
    client, server = tcp_pair(sim, lan, wan, WAN_HOST, 5002)
    for _ in range(30):  # 1.5 s of data each way: both directions offloaded, checked 0.5 s ago
        client.send(b"x" * 1000, sim.now)
        server.send(b"y" * 1000, sim.now)
        sim.run(0.05)
        client.recv(100_000, sim.now)
        server.recv(100_000, sim.now)
    assert r.host.flowtable.stats()["hits"] > 0
    client.close(sim.now)
    sim.run(0.05)  # well inside the flow table's once-a-second check of the entry
    server.close(sim.now)
    sim.run(0.2)
    lines = [line for line in router.conntrack_list() if line.startswith("tcp")]
    assert len(lines) == 1 and " TIME_WAIT " in lines[0], lines
