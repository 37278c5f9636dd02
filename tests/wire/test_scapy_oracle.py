"""Property tests with scapy as an independent oracle: the same fields give the same bytes, and
our parse of scapy-built bytes gives back scapy's fields."""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pynetstack.wire import arp, ethernet, icmp, ipv4, tcp, udp
from pynetstack.wire.addr import ip_to_str, mac_to_str

try:  # scapy is a test dependency (pyproject.toml [test]): without it the oracle fails, never skips
    import scapy.layers.inet as scapy_inet
    import scapy.layers.l2 as scapy_l2
    from scapy.packet import Raw
except ImportError as exc:  # pragma: no cover - a broken test environment
    raise ImportError(f"the scapy oracle tests need scapy (pip install -e '.[test]'): {exc}") from exc

Ether, Dot1Q, ARP = scapy_l2.Ether, scapy_l2.Dot1Q, scapy_l2.ARP
IP, IPOption, ICMP, UDP, TCP = (scapy_inet.IP, scapy_inet.IPOption, scapy_inet.ICMP, scapy_inet.UDP,
                                scapy_inet.TCP)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
macs = st.binary(min_size=6, max_size=6)
payloads = st.binary(max_size=80)


@SETTINGS
@given(macs, macs, st.integers(0x0600, 0xFFFF).filter(lambda t: t not in (0x8100, 0x88A8)),
       st.lists(u16, max_size=2), payloads)
def test_ethernet(dst, src, ethertype, vlans, payload):
    ours = ethernet.Ethernet(dst, src, ethertype, payload, vlans=tuple(vlans)).build()
    if vlans:
        # IEEE 802.1ad: a double tag is a service tag (0x88a8) around a customer tag (0x8100).
        pkt = Ether(dst=mac_to_str(dst), src=mac_to_str(src), type=0x88A8 if len(vlans) == 2 else 0x8100)
        for i, tci in enumerate(vlans):
            last = i == len(vlans) - 1
            pkt = pkt / Dot1Q(prio=tci >> 13, dei=(tci >> 12) & 1, vlan=tci & 0xFFF,
                              type=ethertype if last else 0x8100)
    else:
        pkt = Ether(dst=mac_to_str(dst), src=mac_to_str(src), type=ethertype)
    theirs = bytes(pkt / Raw(payload)) if payload else bytes(pkt)
    assert ours[:len(theirs)] == theirs and not any(ours[len(theirs):])  # we pad to 60
    eth = ethernet.Ethernet.parse(theirs)
    assert (eth.dst, eth.src, eth.ethertype, eth.vlans, bytes(eth.payload)) == (dst, src, ethertype, tuple(vlans), payload)


@SETTINGS
@given(st.sampled_from([1, 2]), macs, u32, macs, u32)
def test_arp(op, sha, spa, tha, tpa):
    ours = arp.Arp(op, sha, spa, tha, tpa).build()
    theirs = bytes(ARP(op=op, hwsrc=mac_to_str(sha), psrc=ip_to_str(spa), hwdst=mac_to_str(tha), pdst=ip_to_str(tpa)))
    assert ours == theirs
    a = arp.Arp.parse(theirs)
    assert (a.op, a.sha, a.spa, a.tha, a.tpa) == (op, sha, spa, tha, tpa)


# Option kinds scapy has no special class for (RFC 4727 experiment values): raw TLVs survive
# scapy intact.  The kernel's record-route and timestamp options are in the capture tests.
ip_option = st.one_of(
    st.just(b"\x01"),
    st.builds(lambda kind, data: bytes((kind, len(data) + 2)) + data,
              st.sampled_from([0x1E, 0x5E, 0x9E, 0xDE]), st.binary(max_size=8)),
)


@SETTINGS
@given(u8, u16, st.booleans(), st.booleans(), st.integers(0, 0x1FFF), u8, u8, u32, u32,
       st.lists(ip_option, max_size=4), payloads)
def test_ipv4(tos, ident, df, mf, frag, ttl, proto, src, dst, options, payload):
    opts = b"".join(options)
    assume(len(opts) <= 40)
    ours = ipv4.IPv4(src, dst, proto, payload, ttl=ttl, tos=tos, ident=ident, df=df, mf=mf,
                     frag_offset=frag * 8, options=opts).build()
    pkt = IP(tos=tos, id=ident, flags=(2 if df else 0) | (1 if mf else 0), frag=frag, ttl=ttl, proto=proto,
             src=ip_to_str(src), dst=ip_to_str(dst), options=[IPOption(o) for o in options])
    theirs = bytes(pkt / Raw(payload)) if payload else bytes(pkt)
    assert ours == theirs
    ip = ipv4.IPv4.parse(theirs)
    parsed = IP(theirs)
    assert (ip.tos, ip.ident, ip.df, ip.mf, ip.frag_offset, ip.ttl, ip.protocol, ip.checksum) == \
        (parsed.tos, parsed.id, bool(parsed.flags.DF), bool(parsed.flags.MF), parsed.frag * 8, parsed.ttl,
         parsed.proto, parsed.chksum)
    assert (ip_to_str(ip.src), ip_to_str(ip.dst), bytes(ip.payload)) == (parsed.src, parsed.dst, payload)
    assert ip.options == opts + bytes(-len(opts) % 4)
    if not opts and df and not mf and not frag:
        assert ipv4.build_ipv4(src, dst, proto, payload, ttl=ttl, ident=ident, tos=tos) == theirs


@SETTINGS
@given(u16, u16, payloads)
def test_icmp_echo(ident, seq, payload):
    for request in (True, False):
        ours = icmp.build_echo(request, ident, seq, payload)
        theirs = bytes(ICMP(type=8 if request else 0, id=ident, seq=seq) / Raw(payload)) if payload else \
            bytes(ICMP(type=8 if request else 0, id=ident, seq=seq))
        assert ours == theirs
        m = icmp.Icmp.parse(theirs)
        assert (m.type, m.ident, m.seq, bytes(m.payload)) == (8 if request else 0, ident, seq, payload)


@SETTINGS
@given(st.sampled_from(sorted(icmp.ERROR_TYPES | {9, 10, 42})), u8, u32, st.binary(max_size=60))
def test_icmp_any_type_checksum(type_, code, rest, payload):
    ours = icmp.Icmp(type_, code, rest, payload).build()
    dissected = ICMP(ours)
    assert dissected.type == type_ and dissected.code == code and dissected.chksum == int.from_bytes(ours[2:4], "big")
    del dissected.chksum  # scapy recomputes the checksum over the same bytes
    assert bytes(dissected) == ours


@SETTINGS
@given(u32, u32, u16, u16, st.binary(max_size=120))
def test_udp(src, dst, sport, dport, payload):
    ours = udp.build_udp(src, dst, sport, dport, payload)
    pkt = IP(src=ip_to_str(src), dst=ip_to_str(dst)) / UDP(sport=sport, dport=dport) / Raw(payload)
    theirs = bytes(pkt)[20:]
    assert ours == theirs
    u = udp.Udp.parse(theirs, src, dst)
    assert (u.src_port, u.dst_port, bytes(u.payload), u.checksum) == (sport, dport, payload, pkt[UDP].__class__(theirs).chksum)


sack_block = st.tuples(u32, u32)
unknown_tcp_option = st.tuples(st.sampled_from([6, 7, 14, 15, 19, 28, 30, 34, 253, 254]), st.binary(max_size=6))


@SETTINGS
@given(u32, u32, u16, u16, st.integers(0, 0xFF), u16, u16, st.one_of(st.none(), u16),
       st.one_of(st.none(), st.integers(0, 14)), st.booleans(), st.one_of(st.none(), st.tuples(u32, u32)),
       st.lists(unknown_tcp_option, max_size=2), st.lists(sack_block, max_size=4), payloads)
def test_tcp(src, dst, sport, dport, flags, window, urgent, mss, wscale, sack_ok, ts, unknown, sacks, payload):
    try:
        opts = tcp.build_options(mss, wscale, sack_ok, ts, sacks, unknown)
    except ValueError:
        assume(False)
    seq, ack = (src ^ 0x5A5A5A5A), (dst ^ 0xA5A5A5A5)
    ours = tcp.build_tcp(src, dst, sport, dport, seq, ack, flags, window, payload, opts, urgent)
    # the same options, in the same order, spelled the scapy way
    sopts = []
    if mss is not None:
        sopts.append(("MSS", mss))
    if ts is not None:
        sopts += [("SAckOK", b"")] if sack_ok else [("NOP", None), ("NOP", None)]
        sopts.append(("Timestamp", ts))
    elif sack_ok:
        sopts += [("NOP", None), ("NOP", None), ("SAckOK", b"")]
    if wscale is not None:
        sopts += [("NOP", None), ("WScale", wscale)]
    sopts += [(kind, data) for kind, data in unknown]
    if sacks:
        sopts += [("NOP", None), ("NOP", None), ("SAck", tuple(x for block in sacks for x in block))]
    pkt = IP(src=ip_to_str(src), dst=ip_to_str(dst)) / TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags,
                                                           window=window, urgptr=urgent, options=sopts)
    theirs = bytes(pkt / Raw(payload) if payload else pkt)[20:]
    assert ours == theirs
    t = tcp.Tcp.parse(theirs, src, dst)
    assert (t.src_port, t.dst_port, t.seq, t.ack, t.flags, t.window, t.urgent) == (sport, dport, seq, ack, flags, window, urgent)
    assert (t.mss, t.wscale, t.sack_permitted, t.sack_blocks) == (mss, wscale, sack_ok, tuple(sacks))
    assert (t.ts_val, t.ts_ecr) == (ts if ts is not None else (None, 0))
    assert [(k, bytes(v)) for k, v in t.unknown_options] == list(unknown)
    assert bytes(t.payload) == payload and t.options == opts
    assert tcp.Tcp(sport, dport, seq, ack, flags, window, payload, urgent, mss, wscale, sack_ok, sacks,
                   None if ts is None else ts[0], 0 if ts is None else ts[1], unknown).build(src, dst) == theirs
