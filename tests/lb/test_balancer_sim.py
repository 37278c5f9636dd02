"""The balancer on the packet path, between stacks on the virtual clock."""

from __future__ import annotations

from collections import Counter

from pynetstack.lb.conn import ESTABLISHED, TIME_WAIT

from .lbsim import Lab


def spread(lab, n, first_port=40000):
    """``n`` connections one after the other, each from its own port (a fixed arrival order)."""
    return Counter(lab.request(src_port=first_port + i) for i in range(n))


def test_nat_round_robin_spreads_and_replies_come_back_translated():
    lab = Lab("rr")
    got = spread(lab, 6)
    assert got == Counter({"server1": 2, "server2": 2, "server3": 2})
    # every connection went through IPVS's states; short ones sit in TIME_WAIT (inactive)
    states = Counter(c.state for c in lab.lb.conns.by_key.values())
    assert set(states) <= {TIME_WAIT}
    assert sum(s.inactive for s in lab.service.servers) == 6
    assert sum(s.active for s in lab.service.servers) == 0
    assert lab.service.stats.conns == 6 and lab.service.stats.outpkts > 0


def test_wrr_spread_follows_weights():
    lab = Lab("wrr", weights=(1, 2, 3))
    assert spread(lab, 12) == Counter({"server1": 2, "server2": 4, "server3": 6})


def test_wlc_with_a_fixed_arrival_order():
    lab = Lab("wlc", weights=(1, 1, 2))
    got = spread(lab, 8)
    # all finished connections are inactive (overhead 1 each): the weights decide
    assert got == Counter({"server1": 2, "server2": 2, "server3": 4})


def test_sh_keeps_a_client_on_one_server():
    lab = Lab("sh")
    assert len(spread(lab, 5)) == 1


def test_draining_weight_zero_takes_no_new_connections_but_existing_go_on():
    lab = Lab("rr")
    lab.service.edit_server("10.0.1.2", weight=0)
    assert "server1" not in spread(lab, 6)


def test_an_existing_flow_keeps_its_server_when_the_set_changes():
    lab = Lab("rr")
    conn_to = {}
    lab.request()
    key, conn = next(iter(lab.lb.conns.by_key.items()))
    conn_to[key] = conn.server
    lab.service.remove_server(conn.server.name.split(":")[0])
    assert lab.lb.conns.by_key[key].server is conn_to[key]


def test_no_server_available_answers_port_unreachable():
    lab = Lab("rr", weights=(0, 0, 0))
    assert lab.request(run=1.0) == ""
    assert lab.lb.counters["no-destination"] == 1
    assert lab.lb_stack.host.drops["lb-no-destination"] == 1
    assert lab.lb_stack.host.counters["icmp_errors_out"] == 1  # port unreachable, as IPVS answers


def test_direct_routing_servers_answer_from_the_vip():
    lab = Lab("rr", forward="dr")
    got = spread(lab, 3)
    assert got == Counter({"server1": 1, "server2": 1, "server3": 1})
    # the replies did not come through the balancer: no output seen, input-only states
    assert lab.service.stats.outpkts == 0
    # the servers were reached at the virtual address itself: only the MAC was rewritten
    from pynetstack.wire.addr import ip_to_int
    local = {conn.local_ip for server in lab.servers for conn in server.tcp.connections.values()}
    assert local == {ip_to_int("10.0.9.100")}
    assert all(c.no_output for c in lab.lb.conns.by_key.values())


def test_connection_times_out_with_ipvs_defaults():
    lab = Lab("rr")
    lab.request()
    assert len(lab.lb.conns) == 1
    lab.sim.run(119)
    assert len(lab.lb.conns) == 1  # TIME_WAIT lasts 120 s
    lab.sim.run(3)
    assert len(lab.lb.conns) == 0
    assert sum(s.inactive + s.active for s in lab.service.servers) == 0


def test_active_count_while_established():
    lab = Lab("rr")
    # a connection that stays open: server4 is absent, so use a server that does not close
    lab.listeners[0].factory = lambda: __import__("tests.lb.lbsim", fromlist=["TcpHandler"]).TcpHandler()
    lab.listeners[1].factory = lab.listeners[0].factory
    lab.listeners[2].factory = lab.listeners[0].factory
    from pynetstack.api.tcp import tcp_layer
    from pynetstack.wire.addr import ip_to_int
    with lab.client.lock:
        tcp_layer(lab.client).connect(ip_to_int("10.0.9.100"), 80, lab.sim.now)
    lab.sim.run(1.0)
    conn = next(iter(lab.lb.conns.by_key.values()))
    assert conn.state == ESTABLISHED
    assert conn.server.active == 1 and conn.server.inactive == 0


def test_udp_service_is_balanced_and_counted_inactive_as_ipvs_does():
    from pynetstack.lb import VirtualService
    from pynetstack.wire.addr import ip_to_int
    lab = Lab("rr")
    udp = VirtualService("udp", "10.0.9.100", 53, scheduler="rr")
    seen = []
    for n, server in enumerate(lab.servers, start=1):
        server.add_udp_service(53, lambda data, peer, n=n: seen.append(n) or b"from %d" % n)
        udp.add_server(f"10.0.{n}.2", 53)
    with lab.lb_stack.lock:
        lab.lb.add_service(udp)
    answers = []
    for port in (5000, 5001, 5002):  # three flows
        lab.client.udp.bind(port, lambda payload, src, sport, dst, now: answers.append((bytes(payload), src, sport)))
        lab.client.udp.sendto(b"q", port, ip_to_int("10.0.9.100"), 53, lab.sim.now)
        lab.sim.run(0.5)
    assert sorted(seen) == [1, 2, 3]
    # the answer comes from the virtual address, translated back by conntrack's NAT
    assert len(answers) == 3 and all(src == ip_to_int("10.0.9.100") and sport == 53 for _, src, sport in answers)
    assert all(s.inactive == 1 and s.active == 0 for s in udp.servers)  # UDP never counts as active
    lab.sim.run(301)
    assert all(s.inactive == 0 for s in udp.servers)  # IPVS's UDP time-out: 300 s


def test_persistence_keeps_a_client_on_its_server_until_the_template_expires():
    lab = Lab("rr", persistence=30)
    got = spread(lab, 4)
    assert len(got) == 1  # rr would have spread them; the template holds the client
    lab.sim.run(150)  # the connections (TIME_WAIT 120 s) and then the template (30 s) expire
    assert not lab.service.templates and all(s.persistent == 0 for s in lab.service.servers)
    assert len(got | spread(lab, 1, first_port=45000)) == 2  # rescheduled: rr moved on


def test_status_and_counters_show_the_balancer():
    lab = Lab("rr")
    spread(lab, 2)
    functions = lab.lb_stack.counters.gather()["functions"]
    assert functions["lb"]["new"] == 2 and functions["lb"]["connections"] == 2
    assert "lb" in str(lab.lb_stack.status())


def test_direct_routing_keeps_one_conntrack_entry_per_connection():
    lab = Lab("rr", forward="dr")
    spread(lab, 3)
    entries = lab.lb_stack.router.conntrack.entries()
    to_vip = [e for e in entries if e.original[3] == __import__("pynetstack.wire.addr", fromlist=["x"]).ip_to_int(
        "10.0.9.100")]
    assert len(to_vip) == 3 and all(e.confirmed for e in to_vip)
    assert len(lab.lb.conns) == 3
