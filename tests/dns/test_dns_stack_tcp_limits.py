"""DNS over TCP on the stack closes idle and half-sent connections (RFC 7766 section 6.2.3), as
`dns serve` on host sockets does, and caps how many it serves; on a virtual clock."""

from pynetstack.api.tcp import tcp_layer
from pynetstack.dns.hostio import MAX_TCP_CONNECTIONS, TCP_IDLE_TIMEOUT
from pynetstack.dns.server import DnsServer
from pynetstack.dns.stackio import serve_on_stack
from pynetstack.services.guard import LINGER
from pynetstack.sim import Simulation
from pynetstack.transport.tcp import CLOSED, ESTABLISHED
from pynetstack.wire import dns as dnsw
from pynetstack.wire.addr import ip_to_int


def test_idle_and_half_sent_dns_tcp_connections_are_closed(example_zone):
    sim = Simulation()
    a, b = sim.stack(), sim.stack()
    ia, ib = sim.link(a, "10.7.0.1/24", b, "10.7.0.2/24", faults_ab=dict(delay=0.001),
                      faults_ba=dict(delay=0.001))
    serve_on_stack(b, DnsServer([example_zone]))
    try:
        client, server = tcp_layer(a), tcp_layer(b)
        conns = [client.connect(ip_to_int("10.7.0.2"), 53, sim.now) for _ in range(6)]
        sim.run(0.5)
        query = dnsw.make_query("example.com.", dnsw.A, id=7)
        framed = len(query).to_bytes(2, "big") + query
        conns[0].send(framed, sim.now)           # a whole query: answered
        conns[1].send(framed[:5], sim.now)       # half a query, then silence
        sim.run(0.5)
        assert conns[0].recv(4096, sim.now)[2:4] == b"\x00\x07"  # the answer, with the query's ID
        assert all(c.state == ESTABLISHED for c in conns)
        sim.run(TCP_IDLE_TIMEOUT + 1.0)
        assert all(c.fin_received for c in conns), [c.state for c in conns]
        ia.device.loss = ib.device.loss = 1.0   # the clients vanish before closing their side
        sim.run(LINGER + 2.0)
        assert server.connections == {}
        assert all(c.state != CLOSED or c.fin_received for c in conns)
    finally:
        b.close()


def test_dns_tcp_connection_cap_is_the_host_servers():
    sim = Simulation()
    a, b = sim.stack(), sim.stack()
    sim.link(a, "10.7.0.1/24", b, "10.7.0.2/24")
    serve_on_stack(b, DnsServer([]))
    try:
        client = tcp_layer(a)
        with a.lock:
            a.udp.sendto(b"", 40000, ip_to_int("10.7.0.2"), 9, sim.now)  # ARP first: its queue is short
        sim.run(0.1)
        conns = [client.connect(ip_to_int("10.7.0.2"), 53, sim.now) for _ in range(MAX_TCP_CONNECTIONS + 3)]
        sim.run(0.5)
        assert sum(c.state == ESTABLISHED for c in conns) == MAX_TCP_CONNECTIONS
        assert sum(c.state == CLOSED for c in conns) == 3
    finally:
        b.close()
