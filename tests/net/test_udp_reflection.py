"""One spoofed datagram must not start a loop between two stacks' UDP services (echo, DNS)."""

import pytest

from pynetstack.dns.server import DnsServer
from pynetstack.dns.stackio import serve_on_stack
from pynetstack.services import udp_echo
from pynetstack.sim import Simulation
from pynetstack.wire import dns as dnsw
from pynetstack.wire.addr import ip_to_int

A, B = ip_to_int("10.8.0.1"), ip_to_int("10.8.0.2")


def pair():
    sim = Simulation()
    a, b = sim.stack(), sim.stack()
    sim.link(a, "10.8.0.1/24", b, "10.8.0.2/24", faults_ab=dict(delay=0.0001), faults_ba=dict(delay=0.0001))
    return sim, a, b


def test_spoofed_echo_from_port_7_to_port_7_does_not_loop():
    sim, a, b = pair()
    udp_echo.install(a)
    udp_echo.install(b)
    sim.run(0.1)
    with a.lock:  # as an attacker would: from A's echo port to B's
        a.udp.sendto(b"ping", 7, B, 7, sim.now)
    sim.run(1.0)
    assert a.udp.received + b.udp.received <= 1, (a.udp.received, b.udp.received)
    assert b.udp.drops["udp-echo-refused"] == 1
    assert sim.frames_moved < 10


@pytest.mark.parametrize("sport", [53, 123, 1023])
def test_echo_refuses_every_privileged_source_port(sport):
    sim, a, b = pair()
    udp_echo.install(b)
    with a.lock:
        a.udp.sendto(b"x", sport, B, 7, sim.now)
    sim.run(0.5)
    assert b.udp.sent == 0 and b.udp.drops["udp-echo-refused"] == 1


def test_echo_answers_an_ordinary_client():
    sim, a, b = pair()
    udp_echo.install(b)
    got = []
    with a.lock:
        a.udp.bind(40000, lambda payload, src, sport, dst, now: got.append((payload, src, sport)))
        a.udp.sendto(b"hello", 40000, B, 7, sim.now)
    sim.run(0.5)
    assert got == [(b"hello", B, 7)]


def test_echo_does_not_answer_a_broadcast():
    sim, a, b = pair()
    udp_echo.install(b)
    with a.lock:
        a.udp.sendto(b"x", 40000, ip_to_int("10.8.0.255"), 7, sim.now, src=A)
    sim.run(0.5)
    assert b.udp.sent == 0


def _query(qr: bool) -> bytes:
    wire = bytearray(dnsw.make_query("example.", dnsw.A, id=0x1234))
    if qr:
        wire[2] |= 0x80
    return bytes(wire)


def test_dns_servers_do_not_answer_responses_or_reflecting_ports():
    sim, a, b = pair()
    servers = (DnsServer([]), DnsServer([]))
    try:
        serve_on_stack(a, servers[0], tcp=False)
        serve_on_stack(b, servers[1], tcp=False)
        with a.lock:
            a.udp.sendto(_query(True), 53, B, 53, sim.now)   # a response: never answered
            a.udp.sendto(_query(False), 19, B, 53, sim.now)  # from chargen: would be answered back
            a.udp.sendto(_query(False), 53, B, 53, sim.now)  # a query from a DNS server: answered once
        sim.run(1.0)
        assert b.udp.received == 3 and b.udp.sent == 1
        assert a.udp.received == 1 and a.udp.sent == 3
        assert servers[1].drops["not-a-query"] == 1 and servers[1].drops["reflecting-source-port"] == 1
        assert servers[0].drops["not-a-query"] == 1
    finally:
        a.close()
        b.close()
