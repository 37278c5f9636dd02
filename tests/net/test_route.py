"""One routing table with `ip route` semantics: add/append/replace/del, failover, show format."""

import pytest

from pynetstack.net.route import NextHop, Route, RouteError, RoutingTable
from pynetstack.wire.addr import ip_to_int as ip


class Dev:
    def __init__(self, name, up=True):
        self.name = name
        self.up = up


class BareDev:  # no .up attribute: counts as up
    def __init__(self, name):
        self.name = name


@pytest.fixture
def devs():
    return Dev("eth0"), Dev("eth1")


def test_old_positional_constructor_and_api(devs):
    eth0, _ = devs
    table = RoutingTable()
    route = Route(ip("10.0.0.7"), 24, eth0, ip("10.0.0.1"), 5)
    assert (route.prefix, route.length, route.interface, route.gateway, route.metric) == (
        ip("10.0.0.0"), 24, eth0, ip("10.0.0.1"), 5)
    generation = table.generation
    table.add(route)
    assert table.generation > generation
    assert table.lookup(ip("10.0.0.99")) is route
    assert table.lookup(ip("10.0.1.1")) is None
    assert route.next_hop(ip("10.0.0.99")) == ip("10.0.0.1")
    assert table.routes() == [route]
    assert table.remove(ip("10.0.0.0"), 24) is True
    assert table.remove(ip("10.0.0.0"), 24) is False
    assert table.lookup(ip("10.0.0.99")) is None


def test_show_format(devs):
    eth0, eth1 = devs
    assert repr(Route(ip("10.0.0.0"), 24, eth0, ip("10.0.0.1"), 5)) == "10.0.0.0/24 via 10.0.0.1 dev eth0 metric 5"
    assert repr(Route(0, 0, eth0, ip("10.0.0.1"))) == "default via 10.0.0.1 dev eth0"
    assert repr(Route(ip("10.0.0.0"), 24, eth0)) == "10.0.0.0/24 dev eth0 scope link"
    assert repr(Route(ip("10.0.0.0"), 24, eth0, proto="kernel", src=ip("10.0.0.2"))) == (
        "10.0.0.0/24 dev eth0 proto kernel scope link src 10.0.0.2")
    assert repr(Route(ip("192.0.2.0"), 24, type="blackhole")) == "blackhole 192.0.2.0/24"
    assert repr(Route(ip("192.0.2.1"), 32, type="unreachable", metric=3)) == "unreachable 192.0.2.1 metric 3"
    assert repr(Route(ip("10.0.0.2"), 32, eth0, type="local", table="local")) == "local 10.0.0.2 dev eth0 scope host"
    multi = Route(0, 0, nexthops=[NextHop(eth0, ip("10.0.0.1")), NextHop(eth1, ip("10.1.0.1"), weight=2)])
    assert multi.show_lines() == ["default", "\tnexthop via 10.0.0.1 dev eth0 weight 1",
                                  "\tnexthop via 10.1.0.1 dev eth1 weight 2"]
    eth1.up = False
    multi.refresh()
    assert multi.show_lines()[2] == "\tnexthop via 10.1.0.1 dev eth1 weight 2 dead linkdown"


@pytest.mark.parametrize("kwargs, text", [
    ({"length": 33}, "prefix length"),
    ({"type": "nat"}, "unknown route type"),
    ({"type": "blackhole", "interface": "X"}, "no next hop"),
    ({"interface": None}, "needs a device"),
    ({"metric": -1}, "bad metric"),
])
def test_bad_routes_raise_route_error(devs, kwargs, text):
    args = {"prefix": 0, "length": 8, "interface": devs[0]}
    args.update(kwargs)
    with pytest.raises(RouteError, match=text):
        Route(**args)
    with pytest.raises(RouteError, match="weight"):
        NextHop(devs[0], weight=0)


def test_add_same_prefix_and_metric_is_file_exists(devs):
    eth0, eth1 = devs
    table = RoutingTable()
    table.add(Route(0, 0, eth0, ip("10.0.0.1")))
    with pytest.raises(RouteError, match="File exists"):
        table.add(Route(0, 0, eth1, ip("10.1.0.1")))  # other device, same metric: still EEXIST
    with pytest.raises(RouteError, match="File exists"):
        table.add(Route(0, 0, type="blackhole"))  # other type, same metric: EEXIST too
    table.add(Route(0, 0, eth1, ip("10.1.0.1"), metric=10))  # another metric: fine
    assert len(table.get(0, 0)) == 2


def test_append_and_replace(devs):
    eth0, eth1 = devs
    table = RoutingTable()
    first = table.add(Route(0, 0, eth0, ip("10.0.0.1")))
    second = table.append(Route(0, 0, eth1, ip("10.1.0.1")))
    assert table.get(0, 0) == [first, second]
    assert table.lookup(ip("8.8.8.8")) is first  # the first of equal metric wins
    with pytest.raises(RouteError, match="File exists"):
        table.append(Route(0, 0, eth1, ip("10.1.0.1")))  # exact duplicate
    new = table.replace(Route(0, 0, eth1, ip("10.1.0.99")))
    assert table.get(0, 0) == [new, second]
    assert table.lookup(ip("8.8.8.8")) is new
    other = table.replace(Route(0, 0, eth0, ip("10.0.0.1"), metric=7))  # no such metric: added
    assert table.get(0, 0)[-1] is other


def test_delete_selectors_and_no_such_process(devs):
    eth0, eth1 = devs
    table = RoutingTable()
    a = table.add(Route(0, 0, eth0, ip("10.0.0.1"), metric=1))
    b = table.add(Route(0, 0, eth1, ip("10.1.0.1"), metric=2))
    c = table.add(Route(0, 0, eth1, ip("10.1.0.2"), metric=3))
    assert table.delete(0, 0, gateway=ip("10.1.0.2")) is c
    assert table.delete(0, 0, dev="eth1") is b
    with pytest.raises(RouteError, match="No such process"):
        table.delete(0, 0, metric=9)
    with pytest.raises(RouteError, match="No such process"):
        table.delete(ip("10.0.0.0"), 8)
    assert table.delete(0, 0, dev=eth0) is a
    assert table.routes() == [] and table.lookup(1) is None


def test_failover_when_a_device_goes_down(devs):
    eth0, eth1 = devs
    table = RoutingTable()
    primary = table.add(Route(0, 0, eth0, ip("10.0.0.1"), metric=5))
    backup = table.add(Route(0, 0, eth1, ip("10.1.0.1"), metric=10))
    dst = ip("203.0.113.5")
    assert table.lookup(dst) is primary
    generation = table.generation
    table.set_interface_state(eth0, False)
    assert eth0.up is False and table.generation > generation
    assert table.lookup(dst) is backup
    eth0.up = True  # the host's way: flip the flag, then invalidate
    generation = table.generation
    table.invalidate()
    assert table.generation > generation
    assert table.lookup(dst) is primary


def test_dead_prefix_falls_back_to_shorter_one(devs):
    eth0, eth1 = devs
    table = RoutingTable()
    default = table.add(Route(0, 0, eth1, ip("10.1.0.1")))
    specific = table.add(Route(ip("198.51.100.0"), 24, eth0, ip("10.0.0.1")))
    assert table.lookup(ip("198.51.100.9")) is specific
    table.set_interface_state(eth0, False)
    assert table.lookup(ip("198.51.100.9")) is default
    assert specific.show_lines()[0].endswith("linkdown")


def test_multipath_interface_is_first_live_nexthop(devs):
    eth0, eth1 = devs
    table = RoutingTable()
    route = table.add(Route(0, 0, nexthops=[NextHop(eth0, ip("10.0.0.1")), NextHop(eth1, ip("10.1.0.1"))]))
    assert route.interface is eth0 and route.multipath
    table.set_interface_state(eth0, False)
    assert table.lookup(5) is route and route.interface is eth1 and route.gateway == ip("10.1.0.1")
    assert {route.select(h).interface for h in range(0, 1 << 31, 1 << 26)} == {eth1}
    table.set_interface_state(eth1, False)
    assert table.lookup(5) is None


def test_device_without_up_attribute_counts_as_up():
    table = RoutingTable()
    route = table.add(Route(0, 0, BareDev("tun0")))
    table.invalidate()
    assert table.lookup(1) is route


def test_non_unicast_types_have_no_interface(devs):
    table = RoutingTable()
    hole = table.add(Route(ip("192.0.2.0"), 24, type="blackhole"))
    assert table.lookup(ip("192.0.2.1")) is hole
    assert hole.interface is None and hole.gateway is None and hole.select(1) is None


def test_cache_is_bounded_and_emptied_on_change(devs):
    eth0, eth1 = devs
    table = RoutingTable(cache_size=16)
    table.add(Route(0, 0, eth0, ip("10.0.0.1")))
    for dst in range(100):
        table.lookup(dst)
    assert table.stats()["cached"] <= 16
    more = table.add(Route(0, 1, eth1, ip("10.1.0.1")))
    assert table.stats()["cached"] == 0
    assert table.lookup(5) is more  # not the stale cached answer


def test_flush_and_show(devs):
    eth0, _ = devs
    table = RoutingTable()
    table.add(Route(ip("10.0.0.0"), 24, eth0))
    table.add(Route(0, 0, eth0, ip("10.0.0.1")))
    table.add(Route(ip("10.0.0.0"), 8, type="prohibit"))
    assert table.show() == ["default via 10.0.0.1 dev eth0", "prohibit 10.0.0.0/8", "10.0.0.0/24 dev eth0 scope link"]
    table.flush()
    assert table.routes() == [] and table.stats()["installed"] == 0
