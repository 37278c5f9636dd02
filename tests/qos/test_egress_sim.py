"""QoS on the stack's packet path, on the virtual clock: forwarded traffic (first packets on the
full path, then the flow table) keeps its mark to the egress queue, the stack's own TCP over its
cached path is shaped too, and an interface without QoS keeps the direct device call."""

from __future__ import annotations

import random

import pytest

from pynetstack.net import hooks as hk
from pynetstack.netfilter.router import install_router
from pynetstack.qos import Rule, attach_qos
from pynetstack.sim import Simulation
from pynetstack.wire.addr import ip_to_int

from ..stacks import exchange, tcp_pair
from ..tcp.tcp_harness import digest

LAN_HOST, WAN_HOST = ip_to_int("192.168.1.2"), ip_to_int("203.0.113.2")
MASQUERADE = """
table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 192.168.1.0/24 oifname "wan0" masquerade
	}
}
"""


class MarkPort(hk.NetworkFunction):
    """Marks TCP to port 5000 with 0x10 (what an nft ``meta mark set`` rule would do)."""

    name = "markport"
    hooks = ((hk.FORWARD, hk.PRIORITY_MANGLE),)

    def process(self, ctx):
        if ctx.proto == 6 and 5000 in (ctx.sport, ctx.dport):
            ctx.mark = 0x10
        return hk.ACCEPT


@pytest.fixture
def lab():
    sim = Simulation()
    lan, r, wan = sim.routed(right_route=None)
    return sim, lan, r, wan


def bulk(sim, sender, receiver, size, port=5000, limit=60.0):
    client, server = tcp_pair(sim, sender, receiver, WAN_HOST if receiver is not sender else LAN_HOST, port)
    data = random.Random(3).randbytes(size)
    start = sim.now
    at_server, _ = exchange(sim, client, server, data, b"", limit)
    assert digest(at_server) == digest(data)
    return sim.now - start


def test_forwarded_tcp_is_shaped_and_keeps_its_mark_through_the_flow_table(lab):
    sim, lan, r, wan = lab
    install_router(r, ruleset_text=MASQUERADE)
    r.register(MarkPort())
    qdisc = attach_qos(r, "wan0", "20mbit", rules=[Rule("video", mark="0x10")])
    size = 3_000_000
    took = bulk(sim, lan, wan, size)
    rate = size * 8 / took / 1e6
    assert 15.0 < rate <= 20.5, rate
    assert r.host.flowtable.counters["hits"] > 0, "established packets took the flow table"
    video = qdisc.tree.leaves["video"]
    assert video.sent_bytes > size, "marked packets, offloaded ones too, reached the video class"
    assert qdisc.tree.leaves["bulk"].sent_bytes < 10_000
    assert "wan0" == qdisc.stats()["interface"]


def test_the_stacks_own_tcp_is_shaped_on_its_cached_path(lab):
    sim, lan, r, wan = lab
    wan.add_route("192.168.1.0/24", "203.0.113.1")
    qdisc = attach_qos(lan, "eth0", "10mbit")
    size = 1_500_000
    took = bulk(sim, lan, wan, size, port=6000)
    rate = size * 8 / took / 1e6
    assert 7.5 < rate <= 10.3, rate
    assert lan.host.counters["output_paths_made"] >= 1
    assert qdisc.sent_bytes > size
    assert qdisc.tree.leaves["bulk"].sent_bytes > size * 0.9, "classified by its flow: a bulk upload"


def test_without_qos_cached_paths_call_the_device_directly(lab):
    sim, lan, r, wan = lab
    iface = lan.interfaces["eth0"]
    assert iface.qdisc is None and iface.sender() == iface.device.send
    qdisc = attach_qos(lan, "eth0", "10mbit")
    assert iface.qdisc is qdisc and iface.sender() != iface.device.send
    qdisc.detach()
    assert iface.qdisc is None and iface.sender() == iface.device.send


def test_the_loop_sleeps_until_the_next_departure(lab):
    sim, lan, r, wan = lab
    qdisc = attach_qos(lan, "eth0", "1mbit")
    got = []
    wan.udp.bind(7000, lambda payload, src, sport, dst, now: got.append(now))
    lan.udp.sendto(b"resolve the next hop first", 7001, WAN_HOST, 7000, sim.now)
    sim.run(0.1)
    got.clear()
    start = sim.now
    for _ in range(50):
        lan.udp.sendto(bytes(1000), 7001, WAN_HOST, 7000, start)
    deadline = lan.next_deadline()
    assert deadline is not None and start < deadline < start + 0.02
    sim.run(2.0)
    dropped = qdisc.tree.leaves["interactive"].drops
    assert len(got) + dropped.get("codel", 0) == 50 and set(dropped) <= {"codel"}, dropped
    assert dropped, "a 400 ms standing queue: CoDel drops"
    assert lan.drops["qdisc-codel"] == dropped["codel"], "counted with the stack's drops too"
    gaps = [b - a for a, b in zip(got[5:], got[6:])]
    assert all(abs(g - 1042 * 8 / 1e6) < 1e-4 for g in gaps), "one 1042-byte frame every 8.3 ms"
    assert qdisc.stats()["backlog_packets"] == 0
    stats = qdisc.stats()
    assert stats["departures_timed"] >= 40 and stats["departure_late_max_us"] < 1.0, "on the virtual clock: on time"


def test_dscp_is_remarked_on_the_way_out(lab):
    sim, lan, r, wan = lab
    wan.add_route("192.168.1.0/24", "203.0.113.1")
    qdisc = attach_qos(r, "wan0", "10mbit", remark_dscp=True)
    wire = []
    send = qdisc.send

    def tap(frame, now):
        wire.append(bytes(frame))
        send(frame, now)
    qdisc.send = tap
    got = []
    wan.udp.bind(53, lambda payload, src, sport, dst, now: got.append(bytes(payload)))
    lan.udp.sendto(b"a query", 4000, WAN_HOST, 53, sim.now)  # unmarked DNS: interactive, AF21
    sim.run(0.5)
    assert got == [b"a query"], "the re-marked datagram arrived (its header checksum is right)"
    udp = [f for f in wire if f[23] == 17]
    assert udp and udp[0][15] >> 2 == 18
