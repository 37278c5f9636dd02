"""NAT: rewrites checked by scapy, RFC 4787/5382/5508 behaviour (EIM, filtering, port
preservation and classes, no overloading, paired pooling, hairpinning, ICMP ids and errors)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, ICMPerror, IPerror, TCPerror, UDPerror

from pynetstack.netfilter.conntrack import Conntrack, Timeouts
from pynetstack.netfilter.nat import Nat, NatError
from pynetstack.netfilter.types import CT_ESTABLISHED, CT_INVALID, CT_NEW, CT_RELATED, NatSpec
from pynetstack.wire.addr import ip_to_int
from pynetstack.wire.icmp import build_icmp
from pynetstack.wire.ipv4 import IPv4
from pynetstack.wire.tcp import ACK, SYN

from .test_conntrack import echo, icmp_error, tcp, udp

A = ip_to_int("10.0.0.2")
B = ip_to_int("10.0.0.3")
P = ip_to_int("203.0.113.1")
X = ip_to_int("198.51.100.7")
Y = ip_to_int("198.51.100.8")
MASQ = NatSpec("masquerade")


class Router:
    """The lead's packet path in miniature: conntrack, dstnat at PREROUTING (EIF first),
    srcnat at POSTROUTING, confirm at the end."""

    def __init__(self, **nat_options):
        self.ct = Conntrack(timeouts=Timeouts.linux())
        self.nat = Nat(self.ct, seed=7, **nat_options)

    def forward(self, pkt, now=0.0, snat=None, dnat=None, dnat_iface=None):
        ct, nat = self.ct, self.nat
        entry, direction, state = ct.track(pkt, now)
        if entry is None:
            return None, state
        if state == CT_NEW and not entry.confirmed:
            if nat.inbound(pkt, now) is None and dnat is not None:
                if not nat.setup(entry, dnat, now, iface_address=dnat_iface):
                    return None, "nat-failed"
        nat.translate(pkt, entry, direction, "prerouting")
        nat.translate(pkt, entry, direction, "forward")
        if state == CT_NEW and not entry.confirmed and snat is not None:
            if not nat.setup(entry, snat, now, iface_address=P):
                ct.abandon(entry)
                return None, "nat-failed"
        nat.translate(pkt, entry, direction, "postrouting")
        if not entry.confirmed and state != CT_RELATED:
            assert ct.confirm(entry, now)
        return pkt, state


def wire(ip) -> bytes:
    """The datagram as it would leave, keeping the IP checksum NAT maintained incrementally."""
    kept = ip.checksum
    raw = bytearray(ip.build())
    ip.checksum = kept  # build() recomputed it: keep the incrementally maintained value
    assert kept, "the parsed datagram's checksum should have been kept up to date"
    raw[10:12] = kept.to_bytes(2, "big")
    return bytes(raw)


def assert_checksums(ip, layers):
    """scapy recomputes every checksum in ``layers`` and must find the same value."""
    raw = wire(ip)
    got = IP(raw)
    clone = IP(raw)
    for cls in layers:
        assert cls in got, f"{cls.__name__} missing in {got.summary()}"
        del clone[cls].chksum
    again = IP(bytes(clone))
    for cls in layers:
        assert got[cls].chksum == again[cls].chksum, f"bad {cls.__name__} checksum"


def ep(ip):
    """(src, sport, dst, dport) of a TCP/UDP datagram."""
    p = bytes(ip.payload)
    return ip.src, int.from_bytes(p[0:2], "big"), ip.dst, int.from_bytes(p[2:4], "big")


# -- rewrites, with scapy as the checksum oracle ---------------------------------------------------

def test_masquerade_tcp_both_directions():
    r = Router()
    out, s = r.forward(tcp(A, X, 40000, 80, 1, 0, SYN, data=b"hello"), snat=MASQ)
    assert s == CT_NEW and ep(out) == (P, 40000, X, 80)  # port preserved
    assert_checksums(out, [IP, TCP])
    back, s = r.forward(tcp(X, P, 80, 40000, 9, 2, SYN | ACK))
    assert s == CT_ESTABLISHED and ep(back) == (X, 80, A, 40000)
    assert_checksums(back, [IP, TCP])


def test_snat_udp_checksum_and_zero_checksum_stays_zero():
    r = Router()
    spec = NatSpec("snat", P, port_min=20000, port_max=20000)
    out, _ = r.forward(udp(A, X, 5353, 53, b"query"), snat=spec)
    assert ep(out) == (P, 20000, X, 53)
    assert_checksums(out, [IP, UDP])
    nochk = udp(A, Y, 5353, 53, b"q")
    nochk.payload = bytearray(nochk.payload)
    nochk.payload[6:8] = b"\x00\x00"
    out, _ = r.forward(nochk, snat=spec)
    assert ep(out) == (P, 20000, Y, 53) and bytes(out.payload[6:8]) == b"\x00\x00"


def test_dnat_port_forward_and_its_replies():
    r = Router()
    fwd = NatSpec("dnat", B, port_min=8080)
    inb, _ = r.forward(tcp(X, P, 50000, 80, 1, 0, SYN), dnat=fwd)
    assert ep(inb) == (X, 50000, B, 8080)
    assert_checksums(inb, [IP, TCP])
    back, s = r.forward(tcp(B, X, 8080, 50000, 7, 2, SYN | ACK))
    assert s == CT_ESTABLISHED and ep(back) == (P, 80, X, 50000)
    assert_checksums(back, [IP, TCP])


def test_redirect_to_the_ingress_address():
    r = Router()
    lan_addr = ip_to_int("10.0.0.1")
    pkt, _ = r.forward(tcp(A, X, 41000, 80, 1, 0, SYN), dnat=NatSpec("redirect", port_min=3128),
                       dnat_iface=lan_addr)
    assert ep(pkt) == (A, 41000, lan_addr, 3128)
    assert_checksums(pkt, [IP, TCP])


def test_icmp_echo_id_mapping_keeps_two_hosts_apart():
    r = Router()
    a, _ = r.forward(echo(A, X, 100), snat=MASQ)
    b, _ = r.forward(echo(B, X, 100), snat=MASQ)
    ida = int.from_bytes(bytes(a.payload[4:6]), "big")
    idb = int.from_bytes(bytes(b.payload[4:6]), "big")
    assert a.src == b.src == P and ida == 100 and idb != 100
    assert_checksums(b, [IP, ICMP])
    reply, s = r.forward(echo(X, P, idb, request=False))
    assert s == CT_ESTABLISHED and reply.dst == B and reply.payload[4:6] == b"\x00\x64"
    assert_checksums(reply, [IP, ICMP])


# -- RFC 4787 / 5382 behaviour ----------------------------------------------------------------------

@pytest.mark.parametrize("flags", [(), ("random",), ("fully-random",)])
def test_endpoint_independent_mapping_across_destinations(flags):
    r = Router()
    spec = NatSpec("masquerade", flags=flags)
    r.forward(udp(B, X, 7000, 53), snat=spec)  # B takes P:7000 (or some port)
    one, _ = r.forward(udp(A, X, 7000, 53), snat=spec)
    ports = {ep(one)[1]}
    for i in range(8):
        other, _ = r.forward(udp(A, Y + i, 7000, 123 + i), snat=spec)
        ports.add(ep(other)[1])
    assert len(ports) == 1  # one external endpoint for every destination
    if not flags:
        assert ep(one)[1] != 7000  # B holds 7000: never shared


def test_address_and_port_dependent_mapping_when_eim_is_off():
    r = Router(eim=False)
    spec = NatSpec("masquerade", flags={"fully-random"})
    ports = {ep(r.forward(udp(A, Y + i, 7000, 123), snat=spec)[0])[1] for i in range(8)}
    assert len(ports) > 1


def test_mapping_dies_with_its_last_entry_and_errors_do_not_refresh_it():
    r = Router()
    out, _ = r.forward(udp(A, X, 6000, 53), snat=MASQ, now=0.0)
    assert len(r.nat.mappings()) == 1
    err = icmp_error(X, P, out)
    pkt, s = r.forward(err, now=25.0)
    assert s == CT_RELATED
    r.ct.poll(30.0)  # Linux UDP unreplied timeout: the error at 25 s did not refresh it
    assert len(r.ct) == 0 and r.nat.mappings() == [] and r.nat.by_internal == {}


def test_filtering_address_and_port_dependent_by_default():
    r = Router()
    r.forward(udp(A, X, 6000, 53), snat=MASQ)
    assert r.forward(udp(X, P, 53, 6000))[0].dst == A  # the reply
    stranger, s = r.forward(udp(Y, P, 53, 6000))
    assert s == CT_NEW and stranger.dst == P  # not translated: the rules decide (usually drop)
    other_port, _ = r.forward(udp(X, P, 54, 6000))
    assert other_port.dst == P


def test_endpoint_independent_filtering_lets_anyone_reach_the_mapping():
    r = Router(filtering="endpoint-independent")
    r.forward(udp(A, X, 6000, 53), snat=MASQ)
    pkt, s = r.forward(udp(Y, P, 9999, 6000, b"hi"))
    assert s == CT_NEW and ep(pkt) == (Y, 9999, A, 6000)
    assert_checksums(pkt, [IP, UDP])
    back, s = r.forward(udp(A, Y, 6000, 9999))
    assert s == CT_ESTABLISHED and ep(back) == (P, 6000, Y, 9999)
    assert r.forward(udp(Y, P, 9999, 6001))[0].dst == P  # no mapping there


def test_address_dependent_filtering():
    r = Router(filtering="address")
    r.forward(udp(A, X, 6000, 53), snat=MASQ)
    assert r.forward(udp(X, P, 4444, 6000))[0].dst == A  # same address, another port
    assert r.forward(udp(Y, P, 4444, 6000))[0].dst == P
    assert r.nat.counters["filtered"] == 1


@pytest.mark.parametrize("sport,lo,hi", [(53, 1, 511), (700, 600, 1023), (40000, 1024, 65535)])
def test_port_preserved_else_kept_in_its_class(sport, lo, hi):
    r = Router()
    first, _ = r.forward(udp(A, X, sport, 9), snat=MASQ)
    assert ep(first)[1] == sport
    second, _ = r.forward(udp(B, X, sport, 9), snat=MASQ)  # same port from another host
    assert ep(second)[1] != sport and lo <= ep(second)[1] <= hi


def test_exhausted_port_range_refuses_and_counts():
    r = Router()
    spec = NatSpec("snat", P, port_min=1000, port_max=1001)
    assert r.forward(udp(A, X, 1, 9), snat=spec)[0] is not None
    assert r.forward(udp(A, X, 2, 9), snat=spec)[0] is not None
    assert r.forward(udp(B, X, 3, 9), snat=spec) == (None, "nat-failed")
    assert r.nat.counters["mapping-failed"] == 1 and len(r.ct) == 2
    r.ct.poll(31.0)  # the mappings go with their entries; the range is free again
    assert r.forward(udp(B, X, 3, 9), snat=spec, now=31.0)[0] is not None


def test_paired_pooling():
    r = Router()
    pool = NatSpec("snat", ip_to_int("203.0.113.10"), ip_to_int("203.0.113.13"))
    seen = {}
    for host in range(1, 40):
        src = ip_to_int(f"10.0.1.{host}")
        for port in (1111, 2222, 3333):
            out, _ = r.forward(udp(src, X, port, 53), snat=pool)
            seen.setdefault(src, set()).add(out.src)
    assert all(len(v) == 1 for v in seen.values())
    assert len(set().union(*seen.values())) == 4  # the whole pool is used


def test_random_flags_do_not_preserve_ports():
    r = Router()
    ports = []
    for flags in ({"random"}, {"fully-random"}):
        spec = NatSpec("masquerade", flags=flags)
        for i in range(10):
            out, _ = r.forward(udp(A, X, 30000 + i, 53 + len(flags)), snat=spec)
            ports.append(ep(out)[1])
    assert all(p >= 1024 for p in ports)
    assert sum(p == 30000 + (i % 10) for i, p in enumerate(ports)) < 3


def test_hairpin_source_is_the_clients_external_mapping():
    r = Router()
    r.forward(udp(B, X, 5000, 53), snat=MASQ)  # B owns P:5000, so A's 5000 maps elsewhere
    out, _ = r.forward(udp(A, X, 5000, 53), snat=MASQ)
    a_ext = ep(out)[1]
    fwd = NatSpec("dnat", B, port_min=80)
    snat_p = NatSpec("snat", P)
    hp, _ = r.forward(udp(A, P, 5000, 8080, b"hairpin"), dnat=fwd, snat=snat_p)
    assert ep(hp) == (P, a_ext, B, 80)
    assert_checksums(hp, [IP, UDP])
    back, s = r.forward(udp(B, P, 80, a_ext, b"answer"))
    assert s == CT_ESTABLISHED and ep(back) == (P, 8080, A, 5000)
    assert_checksums(back, [IP, UDP])


def test_masquerade_entries_flushed_when_the_address_goes():
    r = Router()
    r.forward(udp(A, X, 1, 2), snat=MASQ)
    r.forward(udp(A, X, 3, 4), snat=NatSpec("snat", ip_to_int("203.0.113.99")))
    assert r.nat.address_changed(P) == 1
    assert len(r.ct) == 1 and len(r.nat.mappings()) == 1


def test_setup_rules_and_errors():
    r = Router()
    e, _, _ = r.ct.track(udp(A, X, 1, 2), 0.0)
    with pytest.raises(NatError, match="iface_address"):
        r.nat.setup(e, MASQ, 0.0)
    with pytest.raises(NatError, match="unknown NAT kind"):
        r.nat.setup(e, NatSpec("teleport", P), 0.0)
    with pytest.raises(NatError, match="filtering"):
        Nat(Conntrack(), filtering="strict")
    assert r.nat.setup(e, NatSpec("snat", P), 0.0)
    assert r.nat.setup(e, NatSpec("snat", X), 0.0)  # decided once per connection
    assert e.reply[3] == P
    r.ct.confirm(e, 0.0)
    assert r.nat.setup(e, NatSpec("dnat", B), 0.0) and e.reply[1] == X  # confirmed: no change


def test_translate_rejects_unknown_hooks():
    r = Router()
    pkt, _ = r.forward(udp(A, X, 1, 2), snat=MASQ)
    entry = r.ct.entries()[0]
    with pytest.raises(ValueError, match="unknown hook"):
        r.nat.translate(pkt, entry, 0, "ingress")


# -- ICMP errors about NATed connections ------------------------------------------------------------

def test_icmp_error_to_snat_client_rewrites_outer_and_inner():
    r = Router()
    out, _ = r.forward(udp(A, X, 6000, 53, b"question"), snat=NatSpec("snat", P, port_min=20000))
    err = icmp_error(ip_to_int("192.0.2.1"), P, out, 11, 0)  # a router beyond: TTL exceeded
    pkt, s = r.forward(err)
    assert s == CT_RELATED
    got = IP(wire(pkt))
    assert (got.src, got.dst) == ("192.0.2.1", "10.0.0.2")  # the router's address is kept
    assert (got[IPerror].src, got[UDPerror].sport) == ("10.0.0.2", 6000)
    assert_checksums(pkt, [IP, ICMP, IPerror, UDPerror])


def test_icmp_error_from_dnat_server_rewrites_to_public_address():
    r = Router()
    r.forward(tcp(X, P, 50000, 80, 1, 0, SYN), dnat=NatSpec("dnat", B, port_min=8080))
    # B answers about the (translated) segment it got: quote = X:50000 -> B:8080, full header
    quoted = tcp(X, B, 50000, 8080, 1, 0, SYN)
    pkt, s = r.forward(icmp_error(B, X, quoted, 3, 3))
    assert s == CT_RELATED
    got = IP(wire(pkt))
    assert (got.src, got.dst) == ("203.0.113.1", "198.51.100.7")
    assert (got[IPerror].dst, got[TCPerror].dport) == ("203.0.113.1", 80)
    assert_checksums(pkt, [IP, ICMP, IPerror, TCPerror])


def test_icmp_error_with_short_tcp_quote_leaves_inner_tcp_checksum_as_linux():
    r = Router()
    out, _ = r.forward(tcp(A, X, 40000, 80, 1, 0, SYN), snat=NatSpec("snat", P, port_min=20000))
    raw = out.build()
    err = IPv4.parse(IPv4(X, P, 1, build_icmp(3, 1, 0, raw[:28])).build())  # 8 bytes of TCP quoted
    before = bytes(err.payload[8 + 20 + 4:8 + 20 + 8])  # the quoted sequence number
    pkt, s = r.forward(err)
    assert s == CT_RELATED
    got = IP(wire(pkt))
    assert got.dst == "10.0.0.2" and got[IPerror].src == "10.0.0.2"
    assert bytes(pkt.payload[8 + 20 + 4:8 + 20 + 8]) == before
    assert_checksums(pkt, [IP, ICMP, IPerror])


def test_icmp_error_about_a_mapped_echo():
    r = Router()
    r.forward(echo(B, X, 100), snat=MASQ)
    out, _ = r.forward(echo(A, X, 100), snat=MASQ)
    mapped = int.from_bytes(bytes(out.payload[4:6]), "big")
    assert mapped != 100
    pkt, s = r.forward(icmp_error(X, P, out, 3, 10))
    assert s == CT_RELATED and pkt.dst == A
    got = IP(wire(pkt))
    assert got[ICMPerror].id == 100 and got[IPerror].src == "10.0.0.2"
    assert_checksums(pkt, [IP, ICMP, IPerror, ICMPerror])


def test_unrelated_icmp_error_is_invalid_and_untouched():
    r = Router()
    err = icmp_error(X, P, udp(P, X, 1, 2))
    assert r.forward(err) == (None, CT_INVALID)


# -- no port overloading, as a property ----------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from([1000, 1001, 1002, 40000]),
                          st.integers(0, 3), st.booleans(), st.floats(0, 20)), max_size=60),
       st.booleans())
def test_no_two_internal_endpoints_share_an_external_endpoint(flows, eim):
    """Random flows from 6 hosts, few ports, a tiny port range, random expiry: at every step,
    over all live entries, an external endpoint maps to one internal endpoint only."""
    r = Router(eim=eim)
    spec = NatSpec("snat", P, port_min=1000, port_max=1003)
    now = 0.0
    for host, sport, dst, tcp_flow, dt in flows:
        now += dt
        r.ct.poll(now)
        src = A + host
        dst_addr = X + dst
        pkt = tcp(src, dst_addr, sport, 80, 1, 0, SYN) if tcp_flow else udp(src, dst_addr, sport, 53)
        r.forward(pkt, now=now, snat=spec)
        owners = {}
        for e in r.ct.entries():
            if e.reply[3] == P:
                key = (e.original[0], e.reply[3], e.reply[4])
                internal = (e.original[1], e.original[2])
                assert owners.setdefault(key, internal) == internal
        for (proto, _ext, _port), m in r.nat.by_external.items():
            assert m.proto == proto and m.refs > 0


addresses = st.integers(0x01000000, 0xDFFFFFFF)
ports = st.integers(1, 0xFFFF)


@settings(max_examples=80, deadline=None)
@given(addresses, addresses, addresses, ports, ports, st.binary(max_size=41), st.booleans(),
       st.integers(1, 0xFFFF), st.sampled_from(["snat", "dnat"]))
def test_rewritten_checksums_always_hold(src, dst, new_addr, sport, dport, data, is_tcp, new_port, kind):
    """Any addresses, ports and payload (odd lengths included): scapy agrees with every
    checksum after the rewrite, in both directions."""
    if len({src, dst, new_addr}) < 3:
        return
    r = Router()
    spec = NatSpec(kind, new_addr, port_min=new_port)
    make = tcp if is_tcp else udp
    first = make(src, dst, sport, dport, 1, 0, SYN, data=data) if is_tcp else make(src, dst, sport, dport, data)
    pkt, _ = r.forward(first, snat=spec if kind == "snat" else None, dnat=spec if kind == "dnat" else None)
    layer = TCP if is_tcp else UDP
    assert_checksums(pkt, [IP, layer])
    out = ep(pkt)
    assert (out[0], out[1]) == ((new_addr, new_port) if kind == "snat" else (src, sport))
    assert (out[2], out[3]) == ((new_addr, new_port) if kind == "dnat" else (dst, dport))
    back = (tcp(out[2], out[0], out[3], out[1], 7, 2, SYN | ACK, data=data) if is_tcp
            else udp(out[2], out[0], out[3], out[1], data))
    pkt, state = r.forward(back)
    assert state == CT_ESTABLISHED and ep(pkt) == (dst, dport, src, sport)
    assert_checksums(pkt, [IP, layer])
