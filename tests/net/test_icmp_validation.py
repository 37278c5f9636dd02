"""A forged ICMP "fragmentation needed" must quote a flow we have (and, for TCP, a sequence
number in flight: RFC 5927 4.1) before it may lower the path MTU."""

from pynetstack.api.tcp import tcp_layer
from pynetstack.net.drops import DropReason
from pynetstack.sim import Simulation
from pynetstack.wire import icmp as icmpw
from pynetstack.wire.addr import ip_to_int
from pynetstack.wire.ipv4 import build_ipv4
from pynetstack.wire.tcp import ACK, build_tcp
from pynetstack.wire.udp import build_udp

A, B = ip_to_int("10.6.0.1"), ip_to_int("10.6.0.2")


def lab():
    sim = Simulation()
    a, b = sim.stack(), sim.stack()
    sim.link(a, "10.6.0.1/24", b, "10.6.0.2/24")
    ta, tb = tcp_layer(a), tcp_layer(b)
    listener = tb.listen(80)
    client = ta.connect(B, 80, sim.now)
    sim.run(1, until=lambda: bool(listener.accept_queue))
    return sim, a, b, client, listener.accept()


def forge(sim, a, quoted: bytes, mtu: int = 552) -> None:
    """An ICMP frag-needed sent from A to B (anyone on the path can send one)."""
    message = icmpw.build_error(icmpw.DEST_UNREACHABLE, icmpw.CODE_FRAG_NEEDED, quoted, mtu)
    with a.lock:
        a.host.ip_send(A, B, 1, message, sim.now)
    sim.run(0.1)


def quoted_tcp(sport, dport, seq):
    return build_ipv4(B, A, 6, build_tcp(B, A, sport, dport, seq, 0, ACK, 1000, bytes(1400)))


def test_frag_needed_quoting_no_connection_is_ignored():
    sim, a, b, client, server = lab()
    forge(sim, a, quoted_tcp(80, 1, 12345))
    forge(sim, a, quoted_tcp(81, client.local_port, server.snd_una))
    assert b.host.path_mtu(A) == 1500
    assert b.drops[DropReason.ICMP_NOT_OURS] == 2
    assert tcp_layer(b).drops["icmp-no-connection"] == 2
    # new connections still advertise the full MSS
    again = tcp_layer(a).connect(B, 80, sim.now)
    sim.run(0.5)
    assert again.peer_mss == 1460


def test_frag_needed_quoting_a_sequence_number_not_in_flight_is_ignored():
    sim, a, b, client, server = lab()
    forge(sim, a, quoted_tcp(80, client.local_port, (server.snd_una + 1_000_000) & 0xFFFFFFFF))
    assert b.host.path_mtu(A) == 1500 and server.mss == 1448
    assert tcp_layer(b).drops["icmp-bad-seq"] == 1


def test_frag_needed_quoting_data_in_flight_lowers_the_path_mtu():
    sim, a, b, client, server = lab()
    with b.lock:
        server.send(b"x" * 3000, sim.now)  # in flight when the "router" complains
        seq = server.snd_una & 0xFFFFFFFF
    forge(sim, a, quoted_tcp(80, client.local_port, seq), mtu=1200)
    assert b.host.path_mtu(A) == 1200
    assert server.mss < 1200


def test_udp_frag_needed_counts_only_for_a_bound_port():
    sim, a, b, client, server = lab()
    forge(sim, a, build_ipv4(B, A, 17, build_udp(B, A, 5353, 53, bytes(1400))), mtu=1000)
    assert b.host.path_mtu(A) == 1500
    b.udp.bind(5353, lambda *args: None)
    forge(sim, a, build_ipv4(B, A, 17, build_udp(B, A, 5353, 53, bytes(1400))), mtu=1000)
    assert b.host.path_mtu(A) == 1000
