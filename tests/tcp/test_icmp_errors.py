"""ICMP errors about a connection, as Linux's tcp_v4_err (net/ipv4/tcp_ipv4.c) treats them
(RFC 5461 section 4): fatal while the connection is opening, soft once it is synchronized, and a
listener's half-open connection dropped silently by the unreachable kind (tcp_req_err)."""

import pytest

from pynetstack.wire import tcp as T
from pynetstack.wire.ipv4 import IPv4

from .rig import LOCAL, LPORT, PEER, PEER_ISN, Rig, established, syn_received, syn_sent

DEST_UNREACHABLE, TIME_EXCEEDED, PARAMETER_PROBLEM, SOURCE_QUENCH = 3, 11, 12, 4

# (type, code, the errno Linux's connect() fails with: icmp_err_convert in net/ipv4/icmp.c)
FATAL_WHILE_OPENING = [
    (DEST_UNREACHABLE, 0, 101),   # net unreachable: ENETUNREACH
    (DEST_UNREACHABLE, 1, 113),   # host unreachable: EHOSTUNREACH
    (DEST_UNREACHABLE, 2, 92),    # protocol unreachable: ENOPROTOOPT
    (DEST_UNREACHABLE, 3, 111),   # port unreachable: ECONNREFUSED
    (DEST_UNREACHABLE, 5, 95),    # source route failed: EOPNOTSUPP
    (DEST_UNREACHABLE, 6, 101),   # destination network unknown
    (DEST_UNREACHABLE, 7, 112),   # destination host unknown: EHOSTDOWN
    (DEST_UNREACHABLE, 8, 64),    # source host isolated: ENONET
    (DEST_UNREACHABLE, 10, 113),  # host administratively prohibited
    (DEST_UNREACHABLE, 13, 113),  # communication administratively prohibited
    (DEST_UNREACHABLE, 15, 113),  # precedence cutoff
    (TIME_EXCEEDED, 0, 113),
    (PARAMETER_PROBLEM, 0, 71),   # EPROTO
]


def icmp(rig, conn, icmp_type, code, seq, info=0):
    """The peer's router answers a segment of ``conn`` that carried ``seq``."""
    inner = IPv4(LOCAL, PEER, 6)
    quote = T.build_tcp(LOCAL, PEER, conn.local_port, conn.remote_port, seq & 0xFFFFFFFF, 0, T.SYN, 0)[:8]
    rig.layer.icmp_error(icmp_type, code, info, inner, quote, rig.now)


@pytest.mark.parametrize("icmp_type,code,errno", FATAL_WHILE_OPENING)
def test_syn_sent_is_aborted_with_the_errno_linux_gives(icmp_type, code, errno):
    rig, conn = syn_sent()
    icmp(rig, conn, icmp_type, code, conn.iss)
    assert conn.state == "CLOSED" and conn.error.errno == errno, conn.error
    assert "closed" in rig.events and conn.key not in rig.layer.connections
    rig.run_until(rig.now + 200)
    rig.none()  # no more SYNs
    if errno == 111:
        assert isinstance(conn.error, ConnectionRefusedError)


@pytest.mark.parametrize("icmp_type,code", [(DEST_UNREACHABLE, 16), (SOURCE_QUENCH, 0), (5, 1)])
def test_syn_sent_ignores_what_linux_ignores(icmp_type, code):
    rig, conn = syn_sent()
    icmp(rig, conn, icmp_type, code, conn.iss)
    assert conn.state == "SYN-SENT" and conn.error is None and conn.soft_error is None


def test_syn_sent_fragmentation_needed_is_path_mtu_not_an_error():
    rig, conn = syn_sent()
    icmp(rig, conn, DEST_UNREACHABLE, 4, conn.iss, info=1000)
    assert conn.state == "SYN-SENT" and conn.error is None


@pytest.mark.parametrize("icmp_type,code,errno", [(3, 1, 113), (3, 3, 111), (3, 13, 113), (11, 0, 113)])
def test_simultaneous_open_syn_received_is_aborted(icmp_type, code, errno):
    rig = Rig()
    conn = rig.layer.connect(PEER, LPORT, rig.now)
    syn = rig.one()
    rig.inject(T.SYN, PEER_ISN, sport=LPORT, dport=conn.local_port, mss=1460)
    rig.sent()
    assert conn.state == "SYN-RECEIVED" and not conn.passive
    icmp(rig, conn, icmp_type, code, syn.seq)
    assert conn.state == "CLOSED" and conn.error.errno == errno


@pytest.mark.parametrize("icmp_type,code", [(3, 0), (3, 1), (11, 0), (12, 0)])
def test_a_listeners_half_open_connection_is_dropped_silently(icmp_type, code):
    rig, conn = syn_received()
    assert conn.passive
    icmp(rig, conn, icmp_type, code, conn.iss)
    assert conn.state == "CLOSED" and conn.error is None  # accept() never hears of it
    assert conn not in rig.listener.pending and conn.key not in rig.layer.connections
    assert rig.layer.drops["icmp-embryonic-dropped"] == 1
    rig.run_until(rig.now + 100)
    rig.none()  # no more SYN-ACKs
    assert rig.listener.accept() is None


@pytest.mark.parametrize("icmp_type,code", [(3, 2), (3, 3), (3, 10), (3, 13), (3, 4)])
def test_a_listeners_half_open_connection_ignores_the_other_errors(icmp_type, code):
    rig, conn = syn_received()
    icmp(rig, conn, icmp_type, code, conn.iss, info=1400)
    assert conn.state == "SYN-RECEIVED" and conn in rig.listener.pending


def test_a_listeners_half_open_connection_needs_its_syn_ack_quoted():
    rig, conn = syn_received()
    icmp(rig, conn, DEST_UNREACHABLE, 1, conn.iss + 1)
    assert conn.state == "SYN-RECEIVED" and rig.layer.drops["icmp-bad-seq"] == 1


@pytest.mark.parametrize("icmp_type,code,errno", [(3, 0, 101), (3, 1, 113), (3, 2, 92), (3, 3, 111),
                                                  (3, 13, 113), (11, 0, 113), (12, 0, 71)])
def test_established_keeps_every_error_soft(icmp_type, code, errno):
    rig, conn = established()
    conn.send(b"x" * 100, rig.now)
    rig.sent()
    icmp(rig, conn, icmp_type, code, conn.snd_una)
    assert conn.state == "ESTABLISHED" and conn.error is None
    assert conn.soft_error.errno == errno


def test_a_soft_error_is_what_a_timed_out_connection_reports():
    rig, conn = established()
    conn.send(b"x" * 100, rig.now)
    rig.sent()
    icmp(rig, conn, DEST_UNREACHABLE, 1, conn.snd_una)
    rig.run_until(rig.now + 3000)
    assert conn.state == "CLOSED" and conn.error.errno == 113  # not ETIMEDOUT (tcp_write_err)


def test_an_ack_that_moves_clears_the_soft_error():
    rig, conn = established()
    conn.send(b"x" * 100, rig.now)
    seg = rig.one()
    icmp(rig, conn, DEST_UNREACHABLE, 1, conn.snd_una)
    assert conn.soft_error is not None
    rig.inject(T.ACK, PEER_ISN + 1, seg.seq + 100)
    assert conn.soft_error is None
    conn.send(b"y" * 100, rig.now)
    rig.run_until(rig.now + 3000)
    assert conn.state == "CLOSED" and isinstance(conn.error, TimeoutError)



def test_connect_to_a_host_that_never_answers_arp_fails_with_ehostunreach_in_seconds():
    """ARP gives up on the next hop, the stack tells itself host unreachable about the SYN that
    waited (as Linux's arp_error_report), and the opening connection is aborted with it."""
    from pynetstack.api.tcp import tcp_layer
    from pynetstack.sim import Simulation
    from pynetstack.wire.addr import ip_to_int

    sim = Simulation()
    a, b = sim.stack(), sim.stack()
    sim.link(a, "10.5.0.1/24", b, "10.5.0.2/24")
    conn = tcp_layer(a).connect(ip_to_int("10.5.0.99"), 80, sim.now)
    t0 = sim.now
    sim.run(duration=200, until=lambda: conn.state == "CLOSED")
    assert conn.state == "CLOSED" and conn.error.errno == 113, conn.error
    assert 1.0 <= sim.now - t0 <= 10.0, sim.now - t0  # not two minutes of SYNs
    assert b.status()["drops"].get("arp-not-for-us", 0) >= 1  # it asked, nobody answered
