"""ECMP on the forwarding path, on the virtual clock: the L4 hash policy must see the ports also
when no network function is registered (the path that builds no packet context)."""

from __future__ import annotations

import pytest

from pynetstack.net import hooks as hk
from pynetstack.net.drops import DropReason
from pynetstack.net.route import NextHop, Route
from pynetstack.sim import Simulation
from pynetstack.wire.addr import ip_to_int

FAR = ip_to_int("203.0.113.10")
SRC = ip_to_int("192.168.1.2")


class Watch(hk.NetworkFunction):
    """A do-nothing stage on PREROUTING: its presence makes the host build packet contexts."""

    name = "watch"

    def stages(self):
        return [(hk.PREROUTING, 0, lambda ctx: hk.ACCEPT, "watch")]


def _lab(policy: int, with_hooks: bool):
    sim = Simulation()
    lan, r, a, b = sim.stack(), sim.stack(forwarding=True), sim.stack(), sim.stack()
    sim.link(lan, "192.168.1.2/24", r, "192.168.1.1/24", names=("eth0", "lan0"))
    sim.link(r, "10.0.1.1/24", a, "10.0.1.2/24", names=("nha", "eth0"))
    sim.link(r, "10.0.2.1/24", b, "10.0.2.2/24", names=("nhb", "eth0"))
    lan.add_route("0.0.0.0/0", "192.168.1.1")
    routes = r.host.routes
    routes.hash_policy = policy
    routes.hash_seed = 7
    routes.add(Route(ip_to_int("203.0.113.0"), 24, nexthops=[
        NextHop(r.interfaces["nha"], ip_to_int("10.0.1.2")), NextHop(r.interfaces["nhb"], ip_to_int("10.0.2.2"))]))
    if with_hooks:
        r.register(Watch())
    return sim, lan, r, a, b


@pytest.mark.parametrize("with_hooks", [False, True])
def test_l4_policy_spreads_flows_by_port_on_both_paths(with_hooks):
    sim, lan, r, a, b = _lab(1, with_hooks)
    for port in range(4000, 4200):
        lan.udp.sendto(b"x", port, FAR, 9, sim.now)
        sim.run(0.01)
    sim.run(0.5)
    got_a, got_b = a.drops[DropReason.IP_NOT_FOR_US], b.drops[DropReason.IP_NOT_FOR_US]
    assert got_a + got_b == 200
    expected_a = sum(1 for port in range(4000, 4200)
                     if r.host.routes.decide(FAR, SRC, "lan0", 0, 17, port, 9).interface.name == "nha")
    assert got_a == expected_a and 60 < got_a < 140, (got_a, got_b)


def test_l3_policy_keeps_one_source_destination_pair_on_one_path():
    sim, lan, r, a, b = _lab(0, False)
    for port in range(4000, 4050):
        lan.udp.sendto(b"x", port, FAR, 9, sim.now)
        sim.run(0.01)
    sim.run(0.5)
    counts = sorted([a.drops[DropReason.IP_NOT_FOR_US], b.drops[DropReason.IP_NOT_FOR_US]])
    assert counts == [0, 50]
