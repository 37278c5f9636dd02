"""Network functions on the packet path: registration, timers on the virtual clock, verdicts,
reassembly before PREROUTING, and rejects that look like the kernel's."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP

from pynetstack.net import hooks as hk
from pynetstack.net.drops import DropReason
from pynetstack.sim import NET0, NET1, Simulation
from pynetstack.wire import icmp as icmpw
from pynetstack.wire.addr import ip_to_int
from pynetstack.wire.ipv4 import PROTO_TCP
from pynetstack.wire.tcp import build_tcp
from pynetstack.wire.udp import build_udp

A, B, R1, R2 = (ip_to_int(a) for a in ("10.0.0.1", "10.0.1.2", "10.0.0.254", "10.0.1.254"))


class Recorder(hk.NetworkFunction):
    """Records what each hook saw and answers with a chosen verdict; has a timer."""

    name = "recorder"
    hooks = ((hk.PREROUTING, hk.PRIORITY_CONNTRACK), (hk.FORWARD, hk.PRIORITY_FILTER),
             (hk.POSTROUTING, hk.PRIORITY_SRCNAT), (hk.INPUT, hk.PRIORITY_FILTER))

    def __init__(self, verdicts=None, timeout=7200.0, start=0.0):
        self.seen = []
        self.verdicts = verdicts or {}
        self.deadline = start + timeout
        self.fired = []

    def process(self, ctx):
        self.seen.append((ctx.hook, ctx.flow, len(ctx.ip.payload), ctx.iifname, ctx.oifname, ctx.mark))
        ctx.mark += 1  # marks travel with the packet from hook to hook
        verdict = self.verdicts.get(ctx.hook, hk.ACCEPT)
        if verdict == hk.REJECT:
            return ctx.reject_with_tcp_reset() if ctx.proto == PROTO_TCP else ctx.reject_with_icmp(3, 13)
        return verdict

    def poll(self, now):
        if now >= self.deadline:
            self.fired.append(now)
            self.deadline = float("inf")

    def next_deadline(self):
        return None if self.deadline == float("inf") else self.deadline

    def stats(self):
        return {"seen": len(self.seen)}


@pytest.fixture
def routed():
    """a (10.0.0.1) -- router -- b (10.0.1.2)."""
    sim = Simulation()
    a, r, b = sim.routed(NET0, NET1)
    return sim, a, r, b


def test_a_function_sees_every_hook_with_one_context_and_keeps_its_mark(routed):
    sim, a, r, b = routed
    rec = r.register(Recorder())
    got = []
    b.add_udp_service(5000, lambda data, peer: got.append(data))
    a.host.ip_send(A, B, 17, build_udp(A, B, 4000, 5000, b"hello"), sim.now)
    sim.run(1)
    assert got == [b"hello"]
    hooks = [seen[0] for seen in rec.seen]
    assert hooks == [hk.PREROUTING, hk.FORWARD, hk.POSTROUTING]
    assert rec.seen[0][1] == (17, A, 4000, B, 5000)
    assert [seen[5] for seen in rec.seen] == [0, 1, 2]
    assert rec.seen[1][3:5] == ("eth0", "eth1")
    assert r.status()["functions"]["recorder"]["seen"] == 3


def test_timers_of_a_function_run_on_the_virtual_clock(routed):
    sim, a, r, b = routed
    rec = r.register(Recorder(timeout=7200.0, start=sim.now))
    sim.run(7199)
    assert rec.fired == []
    sim.run(2)
    assert len(rec.fired) == 1 and rec.fired[0] >= 7200


def test_fragments_are_reassembled_before_prerouting(routed):
    sim, a, r, b = routed
    rec = r.register(Recorder())
    got = []
    b.add_udp_service(5000, lambda data, peer: got.append(len(data)))
    a.host.ip_send(A, B, 17, build_udp(A, B, 4000, 5000, bytes(4000)), sim.now, df=False)
    sim.run(1)
    assert got == [4000]
    prerouting = [seen for seen in rec.seen if seen[0] == hk.PREROUTING]
    assert len(prerouting) == 1, "one whole datagram, not three fragments"
    assert prerouting[0][1] == (17, A, 4000, B, 5000) and prerouting[0][2] == 4008


def test_drop_is_counted_under_the_stage_reason(routed):
    sim, a, r, b = routed
    r.register(Recorder({hk.FORWARD: hk.DROP}))
    a.host.ip_send(A, B, 17, build_udp(A, B, 4000, 5000, b"x"), sim.now)
    sim.run(1)
    assert r.drops[DropReason.HOOK_DROP] == 1


def test_reject_answers_icmp_admin_prohibited(routed):
    sim, a, r, b = routed
    r.register(Recorder({hk.FORWARD: hk.REJECT}))
    errors = []
    a.udp.bind(4000, lambda *args: None)  # an ICMP error is believed only for a port we have
    a.udp.icmp_error = lambda *args: errors.append(args[:2])
    a.host.ip_send(A, B, 17, build_udp(A, B, 4000, 5000, b"x"), sim.now)
    sim.run(1)
    assert errors == [(icmpw.DEST_UNREACHABLE, 13)]
    assert r.drops[DropReason.HOOK_REJECT] == 1


@pytest.mark.parametrize("flags,seq,ack,payload", [(0x02, 1000, 0, b""), (0x18, 5000, 777, b"abc"),
                                                  (0x11, 42, 9, b"zz")])
def test_tcp_reset_looks_like_the_kernels(routed, flags, seq, ack, payload):
    """nf_reject_ip_tcphdr_put: with ACK set, seq = its ack and RST alone; else seq 0 and
    ack = seq + payload + SYN + FIN with RST|ACK."""
    sim, a, r, b = routed
    r.register(Recorder({hk.FORWARD: hk.REJECT}))
    frames = []
    a.host.transports[PROTO_TCP].receive = lambda ip, now: frames.append(bytes(ip.payload))
    a.host._rx_fast.pop(PROTO_TCP, None)
    seg = build_tcp(A, B, 40000, 80, seq, ack, flags, 1000, payload)
    a.host.ip_send(A, B, PROTO_TCP, seg, sim.now)
    sim.run(1)
    assert len(frames) == 1
    rst = TCP(frames[0])
    if flags & 0x10:
        assert (rst.seq, rst.flags) == (ack, "R")
    else:
        length = len(payload) + (1 if flags & 0x02 else 0) + (1 if flags & 0x01 else 0)
        assert (rst.seq, rst.ack, rst.flags) == (0, seq + length, "RA")
    assert (rst.sport, rst.dport) == (80, 40000)
    checked = IP(bytes(IP(src="10.0.1.2", dst="10.0.0.1", proto=6) / rst))
    assert checked[TCP].chksum == rst.chksum, "the reset's checksum is right"


def test_unregister_takes_a_function_off_its_hooks(routed):
    sim, a, r, b = routed
    rec = r.register(Recorder({hk.FORWARD: hk.DROP}))
    r.host.hooks.unregister(rec)
    got = []
    b.add_udp_service(5000, lambda data, peer: got.append(data))
    a.host.ip_send(A, B, 17, build_udp(A, B, 4000, 5000, b"x"), sim.now)
    sim.run(1)
    assert got == [b"x"] and r.host.hooks.functions == []


class FakeSnat(hk.NetworkFunction):
    """Rewrites the source at POSTROUTING (checksums from scratch) and calls every flow
    established, so the flow table takes over after the first packet."""

    name = "fake-snat"
    hooks = ((hk.PREROUTING, hk.PRIORITY_CONNTRACK), (hk.POSTROUTING, hk.PRIORITY_SRCNAT))

    def __init__(self, new_src):
        self.new_src = new_src
        self.seen = 0

    def process(self, ctx):
        if ctx.hook == hk.PREROUTING:
            self.seen += 1
            return hk.ACCEPT
        ip = ctx.ip
        if ip.protocol == 17:
            sport, dport = ctx.sport, ctx.dport
            data = bytes(ip.payload[8:])
            ip.src = self.new_src
            ip.payload = build_udp(ip.src, ip.dst, sport + 1, dport, data)
            ctx.refresh()
            ctx.offload = True
        return hk.ACCEPT


def test_flow_table_forwards_established_flows_with_the_same_rewrite(routed):
    sim, a, r, b = routed
    nat = r.register(FakeSnat(R2))
    got = []
    b.add_udp_service(5000, lambda data, peer: got.append((data, peer)))
    for i in range(5):
        a.host.ip_send(A, B, 17, build_udp(A, B, 4000, 5000, b"datagram %d" % i), sim.now)
        sim.run(0.1)
    assert [data for data, _ in got] == [b"datagram %d" % i for i in range(5)]
    assert {peer for _, peer in got} == {("10.0.1.254", 4001)}, "every datagram rewritten the same way"
    # the first datagram waits for ARP (nothing to cache yet); the second is offered; the rest skip the hooks
    assert nat.seen == 2 and r.host.flowtable.stats()["hits"] == 3
    assert not [r for r in b.drops if "checksum" in r], "checksums updated incrementally are right"
    r.host.hooks.generation += 1  # a new ruleset: cached decisions go stale
    a.host.ip_send(A, B, 17, build_udp(A, B, 4000, 5000, b"again"), sim.now)
    sim.run(0.1)
    assert nat.seen == 3 and got[-1] == (b"again", ("10.0.1.254", 4001))


class Marker(hk.NetworkFunction):
    """Marks every forwarded packet, and records the ICMP messages delivered to its stack."""

    name = "marker"
    hooks = ((hk.FORWARD, hk.PRIORITY_FILTER), (hk.INPUT, hk.PRIORITY_FILTER))

    def __init__(self):
        self.icmp = []

    def process(self, ctx):
        if ctx.hook == hk.FORWARD:
            ctx.mark = 7
        elif ctx.proto == 1:
            self.icmp.append((ctx.icmp_type, ctx.icmp_code))
        return hk.ACCEPT


class MarkQdisc:
    """The qdisc interface an egress shaper has; records the mark each frame arrives with."""

    def __init__(self, device):
        self.device, self.marks = device, []

    def enqueue_ctx(self, frame, now, ctx):
        if frame[12:14] == b"\x08\x00":  # IPv4 (ARP frames have no context)
            self.marks.append(None if ctx is None else ctx.mark)
        self.device.send(frame, now)

    def sender(self, ctx=None):
        return lambda frame, now: self.enqueue_ctx(frame, now, ctx)

    def poll(self, now):
        pass

    def next_deadline(self):
        return None


def test_datagrams_that_waited_for_arp_keep_their_marks(routed):
    sim, a, r, b = routed
    r.register(Marker())
    out = r.host.interfaces["eth1"]
    qdisc = out.qdisc = MarkQdisc(out.device)
    for sport in range(3):  # the first waits for ARP on eth1, the others may too
        a.host.ip_send(A, B, 17, build_udp(A, B, 4000 + sport, 9, b"x"), sim.now)
    sim.run(1)
    assert qdisc.marks == [7, 7, 7], "marks reach the qdisc after the ARP wait"


def test_an_unresolvable_next_hop_answers_icmp_host_unreachable(routed):
    sim, a, r, b = routed
    ghost = ip_to_int("10.0.1.99")
    seen = Marker()
    a.register(seen)
    a.host.ip_send(A, ghost, 17, build_udp(A, ghost, 4000, 9, b"x"), sim.now)
    sim.run(5)
    assert r.drops[DropReason.NEIGH_FAILED] == 1
    assert seen.icmp == [(icmpw.DEST_UNREACHABLE, icmpw.CODE_HOST)], "as Linux: the source hears host unreachable"
    assert r.host.counters["icmp_errors_out"] == 1


def test_the_status_page_shows_each_functions_stats(routed):
    from pynetstack.status import status_page
    sim, a, r, b = routed
    r.register(Recorder())
    a.host.ip_send(A, B, 17, build_udp(A, B, 4000, 9, b"x"), sim.now)
    sim.run(1)
    # the datagram and b's ICMP port unreachable, each seen at prerouting, forward and postrouting
    assert 'recorder: {"seen": 6}' in status_page(r), status_page(r)
