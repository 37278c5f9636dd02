"""The IPv4 host driven on a virtual clock: ARP, ICMP, fragments, hooks and drop reasons."""

from __future__ import annotations

import pytest

from pynetstack.net import hooks as hk
from pynetstack.net.drops import DropReason
from pynetstack.sim import NET0, Simulation
from pynetstack.wire import arp as arpw
from pynetstack.wire import icmp as icmpw
from pynetstack.wire.addr import BROADCAST_MAC, ip_to_int
from pynetstack.wire.ethernet import ETH_ARP, ETH_IPV4, Ethernet, build_frame
from pynetstack.wire.ipv4 import IPv4, build_ipv4
from pynetstack.wire.udp import build_udp

A, B = ip_to_int("10.0.0.1"), ip_to_int("10.0.0.2")


@pytest.fixture
def pair():
    sim = Simulation()
    a, b = sim.stack(), sim.stack()
    ia, ib = sim.link(a, "10.0.0.1/24", b, "10.0.0.2/24")
    return sim, a, b, ia, ib


def echo_replies(stack):
    seen = []
    stack.host.echo_listeners.append(lambda ip, msg, now: seen.append((ip.src, msg.seq, bytes(msg.payload))))
    return seen


def ping(sim, stack, dst, seq, size=56, df=False):
    payload = bytes(i & 0xFF for i in range(size))
    stack.host.ip_send(A, dst, 1, icmpw.build_echo(True, 0x42, seq, payload), sim.now, df=df)
    return payload


def test_echo_reply_resolves_arp_first(pair):
    sim, a, b, ia, ib = pair
    seen = echo_replies(a)
    payload = ping(sim, a, B, 1)
    assert ia.neighbours.pending, "the echo waits for ARP"
    sim.run(1)
    assert seen == [(B, 1, payload)]
    assert ia.neighbours.lookup(B, sim.now) == ib.mac
    assert ib.neighbours.lookup(A, sim.now) == ia.mac, "the target learns the requester (RFC 826 merge)"


@pytest.mark.parametrize("size", [1472, 1473, 4000, 65507 - 8])
def test_fragmented_echo_round_trips(pair, size):
    sim, a, b, _, _ = pair
    seen = echo_replies(a)
    payload = ping(sim, a, B, 7, size)
    sim.run(1)
    assert seen == [(B, 7, payload)]
    if size > 1472:
        assert b.host.reassembler.completed == 1
        assert a.host.counters["ip_fragments_created"] == -(-(size + 8) // 1480)


def test_df_datagram_too_big_is_refused(pair):
    sim, a, _, _, _ = pair
    assert a.host.ip_send(A, B, 1, icmpw.build_echo(True, 1, 1, bytes(2000)), sim.now, df=True) is False
    assert a.drops[DropReason.IP_FRAG_NEEDED] == 1


def test_arp_requests_are_rate_limited_and_give_up(pair):
    sim, a, _, ia, _ = pair
    ghost = ip_to_int("10.0.0.99")
    sent = []
    inner = ia.device
    original = inner.send
    inner.send = lambda frame, now: (sent.append((now, frame)), original(frame, now))
    for seq in range(10):
        a.host.ip_send(A, ghost, 1, icmpw.build_echo(True, 1, seq, b"x"), sim.now)
    sim.run(10)
    requests = [(t, f) for t, f in sent if Ethernet.parse(f).ethertype == ETH_ARP
                and arpw.Arp.parse(Ethernet.parse(f).payload).tpa == ghost]
    times = [t - requests[0][0] for t, _ in requests]
    assert times == [0.0, 1.0, 2.0], "one request per second, three in all"
    assert a.drops[DropReason.NEIGH_FAILED] == 10, "the queued packets are dropped and counted"
    assert not ia.neighbours.pending


def test_neighbour_queue_is_bounded(pair):
    sim, a, _, ia, _ = pair
    ghost = ip_to_int("10.0.0.99")
    for seq in range(ia.neighbours.queue_limit + 5):
        a.host.ip_send(A, ghost, 1, icmpw.build_echo(True, 1, seq, b"x"), sim.now)
    assert a.drops[DropReason.NEIGH_QUEUE_FULL] == 5


def test_a_stale_neighbour_is_used_while_it_is_checked_and_refreshed_by_its_answer(pair):
    sim, a, _, ia, ib = pair
    ping(sim, a, B, 1)
    sim.run(1)
    mac = ia.neighbours.lookup(B, sim.now)
    assert mac == ib.mac
    sim.run(ia.neighbours.lifetime + 1)
    assert ia.neighbours.lookup(B, sim.now) == mac, "stale, still used (no packet waits in a queue)"
    assert B in ia.neighbours.probing
    sim.run(1)
    assert B not in ia.neighbours.probing and ia.neighbours.entries[B][1] > sim.now, "the answer refreshed it"


def test_a_stale_neighbour_that_does_not_answer_goes_away(pair):
    sim, a, b, ia, ib = pair
    ping(sim, a, B, 1)
    sim.run(1)
    sim.run(ia.neighbours.lifetime + 1)
    b.set_link(next(iter(b.interfaces)), False)  # the neighbour vanished
    assert ia.neighbours.lookup(B, sim.now) is not None
    sim.run(ia.neighbours.retry_interval * ia.neighbours.max_requests + 1)
    assert B not in ia.neighbours.entries and ia.neighbours.lookup(B, sim.now) is None


def test_gratuitous_arp_on_start():
    sim = Simulation()
    a, b = sim.stack(), sim.stack()
    ia, _ = sim.link(a, "10.0.0.1/24", b, "10.0.0.2/24")
    frames = []
    ia.device.peer.inbox = _Recorder(frames)
    a.start()
    grat = [arpw.Arp.parse(Ethernet.parse(f).payload) for f in frames]
    assert [(g.op, g.spa, g.tpa) for g in grat] == [(arpw.REQUEST, A, A)]


class _Recorder(list):
    def __init__(self, sink):
        super().__init__()
        self.sink = sink

    def append(self, frame):
        self.sink.append(frame)


def raw_ip_frame(iface_dst, iface_src, datagram):
    return build_frame(iface_dst.mac, iface_src.mac, ETH_IPV4, datagram)


def udp_datagram(src, dst, sport, dport, payload, ttl=64):
    return build_ipv4(src, dst, 17, build_udp(src, dst, sport, dport, payload), ttl=ttl)


def errors_received(stack):
    got = []

    class Listener:
        def receive(self, ip, now):
            pass

        def icmp_error(self, t, code, info, inner, payload, now):
            got.append((t, code, info, inner.dst))

        def poll(self, now):
            pass

        def next_deadline(self):
            return None
    return got, Listener()


def test_port_unreachable_for_closed_udp_port(pair):
    sim, a, b, _, _ = pair
    got = []
    a.udp.bind(4000, lambda *args: None)
    a.udp.error_listeners[4000] = lambda t, c, dst, dport: got.append((t, c, dst, dport))
    a.udp.sendto(b"hi", 4000, B, 9, sim.now)
    sim.run(1)
    assert got == [(icmpw.DEST_UNREACHABLE, icmpw.CODE_PORT, B, 9)]
    assert b.drops[DropReason.UDP_NO_SOCKET] == 1


def test_protocol_unreachable(pair):
    sim, a, b, _, _ = pair
    got, listener = errors_received(a)
    a.host.register_transport(99, listener)
    a.host.ip_send(A, B, 99, b"payload!", sim.now)
    sim.run(1)
    assert got == [(icmpw.DEST_UNREACHABLE, icmpw.CODE_PROTOCOL, 0, B)]


def test_no_icmp_error_about_broadcast(pair):
    sim, a, b, ia, ib = pair
    a.host.ip_send(A, ip_to_int("10.0.0.255"), 17, build_udp(A, ip_to_int("10.0.0.255"), 1, 9, b"x"), sim.now)
    sim.run(1)
    assert b.drops[DropReason.UDP_NO_SOCKET] == 1
    assert b.host.counters["icmp_errors_out"] == 0


def test_icmp_errors_are_rate_limited(pair):
    sim, a, b, ia, ib = pair
    b.host._icmp_rate = b.host._icmp_tokens = 5
    ping(sim, a, B, 1)
    sim.run(1)
    for port in range(50):
        ib.device.inbox.append(raw_ip_frame(ib, ia, udp_datagram(A, B, 1000, 2000 + port, b"x")))
    sim.run_once()
    assert b.host.counters["icmp_errors_out"] == 5
    assert b.drops[DropReason.ICMP_RATE_LIMITED] == 45


def fragments_of(datagram_payload, mtu, ident=77):
    from pynetstack.net.fragment import fragment
    ip = IPv4(A, B, 17, datagram_payload, ident=ident)
    return fragment(ip, datagram_payload, mtu)


def test_reassembly_in_any_order(pair):
    sim, a, b, ia, ib = pair
    got = []
    b.udp.bind(5000, lambda p, *rest: got.append(p))
    body = bytes(range(256)) * 20
    pieces = fragments_of(build_udp(A, B, 1, 5000, body), 576)
    assert len(pieces) > 5
    for piece in reversed(pieces):
        ib.device.inbox.append(raw_ip_frame(ib, ia, piece))
    sim.run(0.1)
    assert got == [body]


def test_overlapping_fragments_drop_the_datagram(pair):
    sim, a, b, ia, ib = pair
    got = []
    b.udp.bind(5000, lambda p, *rest: got.append(p))
    body = bytes(3000)
    pieces = fragments_of(build_udp(A, B, 1, 5000, body), 1500)
    first = IPv4.parse(pieces[0])
    evil = IPv4(A, B, 17, bytes(first.payload)[:800], ident=77, mf=True, frag_offset=8)
    for piece in [pieces[0], evil.build()] + pieces[1:]:
        ib.device.inbox.append(raw_ip_frame(ib, ia, piece))
    sim.run(0.1)
    assert got == []
    assert b.drops[DropReason.FRAG_OVERLAP] == 1


def test_reassembly_times_out_with_icmp(pair):
    sim, a, b, ia, ib = pair
    got, listener = errors_received(a)
    a.host.register_transport(17, listener)
    ping(sim, a, B, 1)
    sim.run(1)
    pieces = fragments_of(build_udp(A, B, 1, 5000, bytes(3000)), 1500)
    ib.device.inbox.append(raw_ip_frame(ib, ia, pieces[0]))
    sim.run(29)
    assert b.host.reassembler.partials
    sim.run(2)
    assert not b.host.reassembler.partials
    assert b.drops[DropReason.FRAG_TIMEOUT] == 1
    assert got == [(icmpw.TIME_EXCEEDED, icmpw.REASSEMBLY_TIME_EXCEEDED, 0, B)]


def test_reassembly_memory_is_bounded(pair):
    sim, a, b, ia, ib = pair
    b.host.reassembler.max_datagrams = 10
    for ident in range(50):
        piece = fragments_of(build_udp(A, B, 1, 5000, bytes(3000)), 1500, ident=ident)[0]
        ib.device.inbox.append(raw_ip_frame(ib, ia, piece))
    sim.run_once()
    assert len(b.host.reassembler.partials) == 10
    assert b.drops[DropReason.FRAG_MEMORY] == 40


@pytest.mark.parametrize("frame, reason", [
    (b"\x00" * 10, "eth-truncated"),
    (None, "ipv4-bad-checksum"),
    (None, "ipv4-truncated"),
])
def test_malformed_frames_are_counted(pair, frame, reason):
    sim, a, b, ia, ib = pair
    if frame is None:
        datagram = bytearray(udp_datagram(A, B, 1, 2, b"abc"))
        if reason == "ipv4-bad-checksum":
            datagram[10] ^= 0xFF
        else:
            datagram = datagram[:12]
        frame = build_frame(ib.mac, ia.mac, ETH_IPV4, bytes(datagram))[:14 + len(datagram)]
    b.host.receive_frame(ib, frame, sim.now)
    assert b.drops[reason] == 1


def test_frames_for_other_macs_and_unknown_ethertypes(pair):
    sim, a, b, ia, ib = pair
    b.host.receive_frame(ib, build_frame(b"\x02" * 6, ia.mac, ETH_IPV4, bytes(40)), sim.now)
    b.host.receive_frame(ib, build_frame(BROADCAST_MAC, ia.mac, 0x88CC, bytes(40)), sim.now)
    assert b.drops[DropReason.NOT_FOR_US_MAC] == 1
    assert b.drops[DropReason.UNKNOWN_ETHERTYPE] == 1


def test_hooks_run_by_priority_and_drop_is_counted(pair):
    sim, a, b, _, _ = pair
    order = []

    def late(ctx):
        order.append("filter")
        return hk.DROP

    def early(ctx):
        order.append("conntrack")
        return hk.ACCEPT
    b.host.hooks.add(hk.INPUT, late, hk.PRIORITY_FILTER, "filter")
    b.host.hooks.add(hk.INPUT, early, hk.PRIORITY_CONNTRACK, "conntrack")
    seen = echo_replies(a)
    ping(sim, a, B, 1)
    sim.run(1)
    assert order == ["conntrack", "filter"]
    assert seen == []
    assert b.drops[DropReason.HOOK_DROP] == 1


def test_forwarding_decrements_ttl_and_reports_expiry():
    sim = Simulation()
    a, r, c = sim.routed(NET0, ("10.0.1.1/24", "10.0.1.254/24", "eth1"))
    seen = echo_replies(a)
    C = ip_to_int("10.0.1.1")
    a.host.ip_send(A, C, 1, icmpw.build_echo(True, 1, 1, b"through"), sim.now, ttl=5)
    sim.run(1)
    assert seen == [(C, 1, b"through")]
    got, listener = errors_received(a)
    a.host.register_transport(17, listener)
    a.host.ip_send(A, C, 17, build_udp(A, C, 1, 2, b"x"), sim.now, ttl=1)
    sim.run(1)
    assert got == [(icmpw.TIME_EXCEEDED, icmpw.TTL_EXCEEDED, 0, C)]


def test_forwarding_df_too_big_sends_frag_needed_and_path_mtu_is_learned():
    sim = Simulation()
    a, r, c = sim.routed(NET0, ("10.0.1.1/24", "10.0.1.254/24", "eth1"), mtu=1000)
    C = ip_to_int("10.0.1.1")
    got, listener = errors_received(a)
    a.host.register_transport(17, listener)
    a.host.ip_send(A, C, 17, build_udp(A, C, 1, 2, bytes(1400)), sim.now, df=True)
    sim.run(1)
    assert got == [(icmpw.DEST_UNREACHABLE, icmpw.CODE_FRAG_NEEDED, 1000, C)]
    assert a.host.path_mtu(C) == 1000


def test_trace_shows_the_journey_of_a_ping(pair):
    from pynetstack.net.trace import ListTracer
    sim, a, b, ia, ib = pair
    ping(sim, a, B, 1)
    sim.run(1)
    tracer = ListTracer()
    b.host.trace(tracer)
    ping(sim, a, B, 2, size=3000)
    ib.device.inbox.append(build_frame(ib.mac, ia.mac, ETH_IPV4, udp_datagram(A, B, 1, 9, b"x")))
    sim.run(1)
    journeys = ["\n".join(j) for j in tracer.journeys]
    echo = [j for j in journeys if "echo request" in j]
    assert len(echo) == 1
    assert "reassembly: datagram complete, 3008 bytes" in echo[0]
    assert "route: 10.0.0.1 via 10.0.0.0/24 dev eth0" in echo[0]
    assert "out on eth0" in echo[0]
    refused = [j for j in journeys if "DROPPED: udp-port-unreachable" in j]
    assert len(refused) == 1 and "icmp: sending destination unreachable (code 3) to 10.0.0.1" in refused[0]


def test_land_packet_from_our_own_address_is_dropped(pair):
    """A spoofed datagram from our address to our echo port must not echo to itself forever."""
    sim, a, b, ia, ib = pair
    from pynetstack.services import udp_echo
    udp_echo.install(b)
    ib.device.inbox.append(raw_ip_frame(ib, ia, udp_datagram(B, B, 7, 7, b"land")))
    sim.run(0.1)
    assert b.drops[DropReason.IP_BAD_SOURCE] == 1
    assert b.udp.received == 0


def test_subnet_broadcast_source_is_dropped(pair):
    sim, a, b, ia, ib = pair
    ib.device.inbox.append(raw_ip_frame(ib, ia, udp_datagram(ip_to_int("10.0.0.255"), B, 7, 7, b"x")))
    sim.run(0.1)
    assert b.drops[DropReason.IP_BAD_SOURCE] == 1


def test_loopback_echo_between_own_ports_is_bounded_per_poll(pair):
    sim, a, b, _, _ = pair
    # a naive reflector (the echo service refuses privileged source ports, so it cannot be one)
    b.udp.bind(7, lambda payload, src, sport, dst, now: b.udp.sendto(payload, 7, src, sport, now, src=dst))
    b.udp.sendto(b"ping-pong", 7, B, 7, sim.now)  # echo to echo: each poll moves it once, never spins
    b.host.poll(sim.now)
    b.host.poll(sim.now)
    assert b.udp.received == 2


def test_no_icmp_error_for_link_layer_broadcast(pair):
    sim, a, b, ia, ib = pair
    frame = build_frame(BROADCAST_MAC, ia.mac, ETH_IPV4, udp_datagram(A, B, 1000, 9, b"x"))
    b.host.receive_frame(ib, frame, sim.now)
    assert b.drops[DropReason.UDP_NO_SOCKET] == 1
    assert b.host.counters["icmp_errors_out"] == 0


def test_priority_tagged_frames_are_untagged_traffic(pair):
    sim, a, b, ia, ib = pair
    seen = echo_replies(a)
    ping(sim, a, B, 1)
    sim.run(1)
    tagged = Ethernet(ib.mac, ia.mac, ETH_IPV4, build_ipv4(A, B, 1, icmpw.build_echo(True, 0x42, 2, b"p")),
                      vlans=(0x6000,)).build()
    ib.device.inbox.append(tagged)
    sim.run(1)
    assert [s for _, s, _ in seen] == [1, 2]


def test_postrouting_rewrite_is_what_goes_out(pair):
    sim, a, b, _, _ = pair
    got = []
    b.udp.bind(5555, lambda p, *rest: got.append(p))

    def rewrite(ctx):
        from pynetstack.wire.udp import Udp
        udp = Udp.parse(ctx.ip.payload, ctx.ip.src, ctx.ip.dst)
        ctx.ip.payload = build_udp(ctx.ip.src, ctx.ip.dst, udp.src_port, 5555, b"rewritten")
        return hk.ACCEPT
    a.host.hooks.add(hk.POSTROUTING, rewrite, hk.PRIORITY_SRCNAT, "rewrite")
    a.udp.sendto(b"original", 1234, B, 9999, sim.now)
    sim.run(1)
    assert got == [b"rewritten"]


def test_a_stage_without_a_verdict_is_counted(pair):
    sim, a, b, _, _ = pair
    b.host.hooks.add(hk.INPUT, lambda ctx: None, name="forgetful")
    ping(sim, a, B, 1)
    sim.run(1)
    assert b.drops[DropReason.HOOK_BAD_VERDICT] == 1


def frag_needed_about(src, dst, mtu):
    quoted = build_ipv4(src, dst, 17, build_udp(src, dst, 1, 2, bytes(1400)))
    return build_ipv4(ip_to_int("10.0.0.254"), A, 1,
                      icmpw.build_error(icmpw.DEST_UNREACHABLE, icmpw.CODE_FRAG_NEEDED, quoted, mtu))


def test_path_mtu_has_a_floor_and_never_rises(pair):
    sim, a, b, ia, ib = pair
    far = ip_to_int("10.0.0.77")
    a.udp.bind(1, lambda *args: None)  # the quoted datagram's socket: only errors about ours count
    for mtu, expected in ((1200, 1200), (1400, 1200), (68, 552)):
        ia.device.inbox.append(raw_ip_frame(ia, ib, frag_needed_about(A, far, mtu)))
        sim.run(0.1)
        assert a.host.path_mtu(far) == expected


def test_icmp_error_about_a_datagram_we_did_not_send_is_ignored(pair):
    sim, a, b, ia, ib = pair
    far = ip_to_int("10.0.0.77")
    ia.device.inbox.append(raw_ip_frame(ia, ib, frag_needed_about(ip_to_int("10.0.0.66"), far, 600)))
    sim.run(0.1)
    assert a.host.path_mtu(far) == 1500
    assert a.drops[DropReason.ICMP_NOT_OURS] == 1, dict(a.drops)


def test_reassembly_of_many_tiny_fragments(pair):
    """hping3 -f style: 8-byte fragments; a 3000-byte datagram is 376 of them, in random order."""
    import random
    sim, a, b, ia, ib = pair
    got = []
    b.udp.bind(5000, lambda p, *rest: got.append(p))
    body = bytes(range(256)) * 12
    pieces = fragments_of(build_udp(A, B, 1, 5000, body), 28)
    assert len(pieces) > 300
    random.Random(7).shuffle(pieces)
    for piece in pieces:
        ib.device.inbox.append(raw_ip_frame(ib, ia, piece))
    sim.run(0.1)
    assert got == [body]
    assert b.host.reassembler.bytes_held == 0


def test_impossible_ip_option_gets_parameter_problem(pair):
    sim, a, b, ia, ib = pair
    ping(sim, a, B, 1)
    sim.run(1)
    got, listener = errors_received(a)
    a.host.register_transport(17, listener)
    bad = IPv4(A, B, 17, build_udp(A, B, 1, 7, b"x"), options=b"\x01\x07\x00\x00").build()  # NOP, RR of length 0
    ib.device.inbox.append(raw_ip_frame(ib, ia, bad))
    sim.run(1)
    assert b.drops["ipv4-bad-option"] == 1
    assert got == [(icmpw.PARAMETER_PROBLEM, 0, icmpw.parameter_problem_rest(21), B)]


def test_arp_entry_is_locked_briefly_against_a_second_answer(pair):
    sim, a, b, ia, ib = pair
    cache = ia.neighbours
    cache.update(B, ib.mac, sim.now)
    spoof = b"\x02\x99\x99\x99\x99\x99"
    cache.update(B, spoof, sim.now + 0.5)
    assert cache.lookup(B, sim.now + 0.5) == ib.mac
    cache.update(B, spoof, sim.now + 2.0)  # after the lock time a change is taken (the host moved)
    assert cache.lookup(B, sim.now + 2.0) == spoof
