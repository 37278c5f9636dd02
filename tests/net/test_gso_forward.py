"""Coalesced TCP datagrams (GRO at the receiving kernel, TSO at a sender) are forwarded and cut
to the egress MTU, as Linux's GSO does; anything else too big still gets fragmentation-needed."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP

from pynetstack.sim import NET0, NET1, Simulation
from pynetstack.wire.addr import ip_to_int
from pynetstack.wire.ethernet import ETH_IPV4, build_frame
from pynetstack.wire.ipv4 import build_ipv4
from pynetstack.wire.tcp import build_tcp, build_options

A, B = ip_to_int("10.0.0.1"), ip_to_int("10.0.1.2")


def _router():
    sim = Simulation()
    a, r, b = sim.routed(NET0, NET1)
    ia, ira, irb, ib = a.interfaces["eth0"], r.interfaces["eth0"], r.interfaces["eth1"], b.interfaces["eth0"]
    irb.neighbours.lifetime = 1e12
    irb.neighbours.update(B, ib.mac, sim.now)
    return sim, r, ia, ira, ib


def test_a_coalesced_tcp_datagram_leaves_as_mss_sized_segments():
    sim, r, ia, ira, ib = _router()
    data = bytes(range(256)) * 40  # 10,240 bytes: what GRO hands up from seven segments
    options = build_options(ts=(1000, 2000))
    seg = build_tcp(A, B, 40000, 80, 7000, 99, 0x18 | 0x80 | 0x01, 500, data, options)
    frame = build_frame(ira.mac, ia.mac, ETH_IPV4, build_ipv4(A, B, 6, seg, 64, 4242, True))
    r.host.receive_frame(ira, frame, sim.now)
    frames = list(ib.device.inbox)
    assert r.drops.get("ipv4-fragmentation-needed", 0) == 0
    assert len(frames) == -(-len(data) // (1500 - 20 - 32)) and all(len(f) <= 1514 for f in frames)
    joined, seqs = b"", []
    for i, frame in enumerate(frames):
        ip = IP(frame[14:])
        tcp = ip[TCP].copy()
        del tcp.chksum  # scapy computes it again: an independent oracle
        recomputed = IP(bytes(IP(src=ip.src, dst=ip.dst) / tcp))
        assert recomputed[TCP].chksum == ip[TCP].chksum and ip.ttl == 63 and ip.id == 4242 + i
        seqs.append(ip[TCP].seq)
        last = i == len(frames) - 1
        assert ("F" in str(ip[TCP].flags)) == last and ("P" in str(ip[TCP].flags)) == last
        assert ("C" in str(ip[TCP].flags)) == (i == 0)
        assert dict(ip[TCP].options)["Timestamp"] == (1000, 2000)
        joined += bytes(ip[TCP].payload)
    assert joined == data and seqs[0] == 7000 and seqs[1] == 7000 + 1448


def test_a_datagram_that_fits_its_own_wire_is_not_segmented():
    sim, r, ia, ira, ib = _router()
    r.interfaces["eth1"].mtu = 1000  # a smaller next link: DF set, so ICMP fragmentation needed
    seg = build_tcp(A, B, 40000, 80, 7000, 99, 0x18, 500, bytes(1400))
    frame = build_frame(ira.mac, ia.mac, ETH_IPV4, build_ipv4(A, B, 6, seg, 64, 1, True))
    r.host.receive_frame(ira, frame, sim.now)
    assert r.drops["ipv4-fragmentation-needed"] == 1 and not ib.device.inbox
