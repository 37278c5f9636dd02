"""Hand-written golden bytes, round trips and specific bad inputs, codec by codec.

The hex below was written by hand from the RFC layouts (checksums cross-checked with scapy and
with the word-by-word sum in test_checksum.naive_checksum).
"""

from __future__ import annotations

import pytest

from pynetstack.wire import arp, ethernet, icmp, ipv4, tcp, udp
from pynetstack.wire.addr import ip_to_int, mac_to_bytes
from pynetstack.wire.errors import MalformedPacket

from .test_checksum import naive_checksum

H = bytes.fromhex
A1, A2 = ip_to_int("192.0.2.1"), ip_to_int("198.51.100.2")
M1 = mac_to_bytes("02:00:00:00:00:01")

ARP_REQUEST_FRAME = H("ffffffffffff" "020000000001" "0806"
                      "0001" "0800" "06" "04" "0001" "020000000001" "c0000201" "000000000000" "c0000202")
ICMP_ECHO = H("450000241234400040013c6ec0000201c6336402" "0800" "6667" "0001" "0002" "6162636465666768")
UDP_WITH_IP_OPTION = H("461000250007000011112876c0000201c6336402" "94040000"
                       "14e9" "0035" "000d" "baac" "68656c6c6f")
TCP_SYN = H("4500003c00004000400626ba0a0000010a000002"
            "9c40" "0050" "000003e8" "00000000" "a0" "02" "ffff" "9384" "0000"
            "020405b4" "0402080a0000000100000000" "01030307")


def reason(fn, *args, **kw) -> str:
    with pytest.raises(MalformedPacket) as info:
        fn(*args, **kw)
    return info.value.reason


# -- Ethernet ------------------------------------------------------------------------------------

def test_ethernet_golden_and_padding():
    eth = ethernet.Ethernet.parse(ARP_REQUEST_FRAME)
    assert eth.dst == ethernet.BROADCAST_MAC if hasattr(ethernet, "BROADCAST_MAC") else eth.dst == b"\xff" * 6
    assert eth.src == M1 and eth.ethertype == ethernet.ETH_ARP and eth.vlans == ()
    assert isinstance(eth.payload, memoryview) and len(eth.payload) == 28
    built = ethernet.Ethernet(b"\xff" * 6, M1, ethernet.ETH_ARP, eth.payload).build()
    assert built == ARP_REQUEST_FRAME + bytes(18) and len(built) == ethernet.MIN_FRAME
    assert ethernet.build_frame(b"\xff" * 6, M1, ethernet.ETH_ARP, bytes(eth.payload)) == built
    big = ethernet.Ethernet(M1, M1, ethernet.ETH_IPV4, bytes(100)).build()
    assert len(big) == 114  # no padding once long enough


def test_ethernet_8021q():
    # TCI 0x600a: priority 3, DEI 0, VLAN 10
    frame = H("ffffffffffff020000000001" "8100600a" "0806") + ARP_REQUEST_FRAME[14:]
    eth = ethernet.Ethernet.parse(frame)
    assert eth.vlans == (0x600A,) and eth.ethertype == ethernet.ETH_ARP
    assert arp.Arp.parse(eth.payload).tpa == ip_to_int("192.0.2.2")
    assert ethernet.Ethernet(eth.dst, eth.src, eth.ethertype, eth.payload, vlans=eth.vlans).build()[:len(frame)] == frame


def test_ethernet_qinq_parse():
    frame = H("ffffffffffff020000000001" "88a80064" "81000014" "0800") + ICMP_ECHO
    eth = ethernet.Ethernet.parse(frame)
    assert eth.vlans == (100, 20) and eth.ethertype == ethernet.ETH_IPV4
    assert bytes(eth.payload) == ICMP_ECHO


def test_ethernet_qinq_round_trip():
    frame = H("ffffffffffff020000000001" "88a80064" "81000014" "0800") + ICMP_ECHO
    eth = ethernet.Ethernet.parse(frame)
    assert eth.vlan_tpids == (ethernet.ETH_QINQ, ethernet.ETH_VLAN)
    assert eth.build()[:len(frame)] == frame
    assert ethernet.Ethernet(eth.dst, eth.src, eth.ethertype, eth.payload, vlans=eth.vlans).build()[:len(frame)] == frame
    old_style = H("ffffffffffff020000000001" "81000064" "81000014" "0800") + ICMP_ECHO
    assert ethernet.Ethernet.parse(old_style).build()[:len(old_style)] == old_style


def test_ethernet_bad():
    assert reason(ethernet.Ethernet.parse, b"\0" * 13) == "eth-truncated"
    assert reason(ethernet.Ethernet.parse, H("ffffffffffff020000000001" "8100")) == "eth-vlan-truncated"
    assert reason(ethernet.Ethernet.parse, H("ffffffffffff020000000001" "8100000a81")) == "eth-vlan-truncated"
    three = H("ffffffffffff020000000001" "88a80001" "81000002" "81000003" "0800") + ICMP_ECHO
    assert reason(ethernet.Ethernet.parse, three) == "eth-too-many-vlan-tags"
    assert reason(ethernet.Ethernet.parse, H("ffffffffffff020000000001" "002e") + bytes(46)) == "eth-not-ethernet-ii"
    assert ethernet.Ethernet.parse(H("ffffffffffff020000000001" "0600")).ethertype == 0x0600
    assert len(ethernet.Ethernet.parse(b"\0" * 12 + b"\x08\x00").payload) == 0


# -- ARP -----------------------------------------------------------------------------------------

def test_arp_golden():
    a = arp.Arp.parse(memoryview(ARP_REQUEST_FRAME)[14:])
    assert (a.op, a.sha, a.spa, a.tha, a.tpa) == (arp.REQUEST, M1, A1, bytes(6), ip_to_int("192.0.2.2"))
    assert a.build() == ARP_REQUEST_FRAME[14:]
    reply = arp.Arp(arp.REPLY, M1, A1, mac_to_bytes("02:00:00:00:00:02"), A2).build()
    assert reply == H("0001080006040002" "020000000001c0000201" "020000000002c6336402")
    assert arp.Arp.parse(reply + bytes(18)).tha == mac_to_bytes("02:00:00:00:00:02")  # padding ignored


@pytest.mark.parametrize("patch,why", [
    ((0, b"\x00\x06"), "arp-unsupported"),   # htype IEEE 802 instead of Ethernet
    ((2, b"\x86\xdd"), "arp-unsupported"),   # ptype IPv6
    ((4, b"\x08"), "arp-unsupported"),       # hlen 8
    ((5, b"\x10"), "arp-unsupported"),       # plen 16
    ((6, b"\x00\x03"), "arp-bad-op"),        # RARP request
    ((6, b"\x00\x00"), "arp-bad-op"),
])
def test_arp_bad(patch, why):
    body = bytearray(ARP_REQUEST_FRAME[14:])
    at, value = patch
    body[at:at + len(value)] = value
    assert reason(arp.Arp.parse, bytes(body)) == why
    assert reason(arp.Arp.parse, ARP_REQUEST_FRAME[14:41]) == "arp-truncated"


# -- IPv4 ----------------------------------------------------------------------------------------

def test_ipv4_golden_echo():
    ip = ipv4.IPv4.parse(ICMP_ECHO)
    assert (ip.tos, ip.ident, ip.df, ip.mf, ip.frag_offset, ip.ttl, ip.protocol) == (0, 0x1234, True, False, 0, 64, 1)
    assert (ip.src, ip.dst, ip.checksum, ip.total_length, ip.header_length) == (A1, A2, 0x3C6E, 36, 20)
    assert ip.options == b"" and not ip.is_fragment and bytes(ip.payload) == ICMP_ECHO[20:]
    assert ipv4.IPv4(A1, A2, 1, ICMP_ECHO[20:], ttl=64, ident=0x1234, df=True).build() == ICMP_ECHO
    assert ipv4.build_ipv4(A1, A2, 1, ICMP_ECHO[20:], ident=0x1234) == ICMP_ECHO
    assert naive_checksum(ICMP_ECHO[:10] + b"\0\0" + ICMP_ECHO[12:20]) == 0x3C6E


def test_ipv4_golden_with_option():
    ip = ipv4.IPv4.parse(UDP_WITH_IP_OPTION)
    assert ip.options == H("94040000") and ip.header_length == 24 and ip.tos == 0x10 and not ip.df
    assert ipv4.IPv4(A1, A2, 17, ip.payload, ttl=17, tos=0x10, ident=7, options=ip.options).build() == UDP_WITH_IP_OPTION
    # options shorter than a word are zero-padded (EOL) on build
    built = ipv4.IPv4(A1, A2, 17, b"", options=b"\x94\x04\x00").build()
    assert built[0] == 0x46 and built[20:24] == H("94040000")


def test_ipv4_fragment_fields():
    built = ipv4.IPv4(A1, A2, 17, bytes(8), ident=99, mf=True, frag_offset=1480).build()
    assert built[6:8] == (0x2000 | 185).to_bytes(2, "big")
    ip = ipv4.IPv4.parse(built)
    assert ip.mf and ip.frag_offset == 1480 and ip.is_fragment and not ip.df
    last = ipv4.IPv4.parse(ipv4.IPv4(A1, A2, 17, b"x", frag_offset=0x1FFF * 8).build())
    assert last.frag_offset == 65528 and not last.mf and last.is_fragment


def test_ipv4_trailing_padding_trimmed():
    ip = ipv4.IPv4.parse(ICMP_ECHO + bytes(10))  # Ethernet padding after the datagram
    assert len(ip.payload) == 16


def test_ipv4_copied_options():
    # NOP, security (0x82, copied), record route (0x07, not copied), EOL
    opts = H("01" "820b000000000000000000" "0707040000000000") + b"\0\0\0\0\0"
    ipv4.check_options(opts)
    assert ipv4.copied_options(opts) == H("820b000000000000000000") + b"\0"


def test_ipv4_build_limits():
    with pytest.raises(ValueError):
        ipv4.IPv4(A1, A2, 17, b"", options=bytes(44)).build()
    with pytest.raises(ValueError):
        ipv4.IPv4(A1, A2, 17, bytes(65516)).build()
    assert len(ipv4.IPv4(A1, A2, 17, bytes(65515)).build()) == 65535


def _patched(data: bytes, at: int, value: bytes, fix_checksum: bool = True) -> bytes:
    out = bytearray(data)
    out[at:at + len(value)] = value
    if fix_checksum:
        hlen = max(20, min(60, (out[0] & 15) * 4))
        out[10:12] = b"\0\0"
        out[10:12] = naive_checksum(bytes(out[:hlen])).to_bytes(2, "big")
    return bytes(out)


@pytest.mark.parametrize("at,value,why", [
    (0, b"\x65", "ipv4-bad-version"),
    (0, b"\x44", "ipv4-bad-header-length"),
    (0, b"\x40", "ipv4-bad-header-length"),
    (0, b"\x4f", "ipv4-bad-total-length"),      # 60-byte header in a 36-byte datagram
    (2, b"\x00\x13", "ipv4-bad-total-length"),  # total < 20
    (2, b"\x00\x25", "ipv4-bad-total-length"),  # one byte more than we have
    (2, b"\xff\xff", "ipv4-bad-total-length"),
])
def test_ipv4_bad_fields(at, value, why):
    assert reason(ipv4.IPv4.parse, _patched(ICMP_ECHO, at, value)) == why


def test_ipv4_bad_checksum_and_check_false():
    bad = _patched(ICMP_ECHO, 10, b"\x3c\x6f", fix_checksum=False)
    assert reason(ipv4.IPv4.parse, bad) == "ipv4-bad-checksum"
    assert ipv4.IPv4.parse(bad, check=False).checksum == 0x3C6F
    assert reason(ipv4.IPv4.parse, ICMP_ECHO[:19]) == "ipv4-truncated"


@pytest.mark.parametrize("options", [
    H("0700000000000000"),          # length 0
    H("0701000000000000"),          # length 1
    H("0709000000000000"),          # runs past the header
    H("01010107"),                  # NOPs then a dangling kind
    H("44ff0000"),                  # timestamp, length 255
    H("01010188"),                  # NOPs then stream identifier without its length byte
    H("0702070b0000000000000000"),  # a valid empty RR, then one running past the end
])
def test_ipv4_absurd_options(options):
    header = H("4500") + b"\0\0" + H("00000000ff110000c0000201c6336402") + options
    header = bytes([0x40 | (len(header) // 4)]) + header[1:]
    header = header[:2] + len(header).to_bytes(2, "big") + header[4:]
    header = header[:10] + naive_checksum(header).to_bytes(2, "big") + header[12:]
    assert reason(ipv4.IPv4.parse, header) == "ipv4-bad-option"


def test_ipv4_options_after_eol_are_ignored():
    options = H("00ff0000")  # EOL, then garbage that is padding
    header = H("4600001800000000ff110000c0000201c6336402") + options
    header = header[:10] + naive_checksum(header).to_bytes(2, "big") + header[12:]
    assert ipv4.IPv4.parse(header).options == options


# -- ICMP ----------------------------------------------------------------------------------------

def test_icmp_echo_golden():
    message = ICMP_ECHO[20:]
    m = icmp.Icmp.parse(message)
    assert (m.type, m.code, m.checksum, m.ident, m.seq) == (8, 0, 0x6667, 1, 2)
    assert bytes(m.payload) == b"abcdefgh" and not m.is_error
    assert icmp.build_echo(True, 1, 2, b"abcdefgh") == message
    assert icmp.Icmp(8, 0, (1 << 16) | 2, b"abcdefgh").build() == message
    reply = icmp.build_echo(False, 1, 2, b"abcdefgh")
    assert reply[0] == 0 and reply[2:4] == (0x6667 + 0x0800).to_bytes(2, "big")


def test_icmp_errors():
    offending = ICMP_ECHO + bytes(1000)
    err = icmp.build_error(icmp.DEST_UNREACHABLE, icmp.CODE_FRAG_NEEDED, offending, icmp.frag_needed_rest(1400))
    assert len(err) == 576 - 20 and err[8:] == offending[:548]
    m = icmp.Icmp.parse(err)
    assert m.is_error and m.mtu == 1400 and m.rest == 1400
    pp = icmp.Icmp.parse(icmp.build_error(icmp.PARAMETER_PROBLEM, 0, ICMP_ECHO, icmp.parameter_problem_rest(20)))
    assert pp.pointer == 20 and bytes(pp.payload) == ICMP_ECHO
    assert icmp.build_error(icmp.TIME_EXCEEDED, 0, ICMP_ECHO)[:8] == H("0b00") + \
        naive_checksum(H("0b00000000000000") + ICMP_ECHO).to_bytes(2, "big") + bytes(4)
    assert set(icmp.UNREACH_CODES) == set(range(16))


def test_icmp_bad():
    assert reason(icmp.Icmp.parse, H("08000000000000")) == "icmp-truncated"
    bad = bytearray(ICMP_ECHO[20:])
    bad[-1] ^= 1
    assert reason(icmp.Icmp.parse, bytes(bad)) == "icmp-bad-checksum"
    assert icmp.Icmp.parse(bytes(bad), check=False).payload[-1] == ord("i")
    odd = icmp.build_echo(True, 7, 7, b"abc")  # odd length is padded for the sum
    assert icmp.Icmp.parse(odd).seq == 7


# -- UDP -----------------------------------------------------------------------------------------

def test_udp_golden():
    segment = UDP_WITH_IP_OPTION[24:]
    u = udp.Udp.parse(segment, A1, A2)
    assert (u.src_port, u.dst_port, u.checksum, bytes(u.payload)) == (5353, 53, 0xBAAC, b"hello")
    assert udp.build_udp(A1, A2, 5353, 53, b"hello") == segment
    assert udp.Udp(5353, 53, b"hello").build(A1, A2) == segment


def test_udp_zero_checksum_rules():
    no_sum = H("14e90035000d0000") + b"hello"
    assert udp.Udp.parse(no_sum, A1, A2).checksum == 0  # "no checksum" accepted
    # a payload whose checksum computes to 0 must be sent as 0xFFFF (RFC 768)
    base = b"hello!" + b"\0\0"
    c = udp.build_udp(A1, A2, 1, 2, base)[6:8]
    payload = b"hello!" + c
    seg = udp.build_udp(A1, A2, 1, 2, payload)
    assert seg[6:8] == b"\xff\xff"
    assert udp.Udp.parse(seg, A1, A2).payload == payload


def test_udp_bad():
    segment = UDP_WITH_IP_OPTION[24:]
    assert reason(udp.Udp.parse, segment[:7], A1, A2) == "udp-truncated"
    assert reason(udp.Udp.parse, segment[:4] + b"\x00\x07" + segment[6:], A1, A2) == "udp-bad-length"
    assert reason(udp.Udp.parse, segment[:4] + b"\x00\x0e" + segment[6:], A1, A2) == "udp-bad-length"
    assert reason(udp.Udp.parse, segment, A1, A2 + 1) == "udp-bad-checksum"
    assert reason(udp.Udp.parse, segment[:-1] + b"O", A1, A2) == "udp-bad-checksum"
    assert udp.Udp.parse(segment, A1, A2 + 1, check=False).dst_port == 53
    assert bytes(udp.Udp.parse(segment + b"\0\0", A1, A2).payload) == b"hello"  # trailing bytes
    short = udp.build_udp(A1, A2, 1, 2, b"abcdef")
    assert reason(udp.Udp.parse, short[:12], A1, A2) == "udp-bad-length"  # length field says 14
    with pytest.raises(ValueError):
        udp.build_udp(A1, A2, 1, 2, bytes(65528))


# -- TCP -----------------------------------------------------------------------------------------

def test_tcp_syn_golden():
    seg = TCP_SYN[20:]
    src, dst = ip_to_int("10.0.0.1"), ip_to_int("10.0.0.2")
    t = tcp.Tcp.parse(seg, src, dst)
    assert (t.src_port, t.dst_port, t.seq, t.ack, t.flags, t.window, t.checksum, t.urgent) == \
        (40000, 80, 1000, 0, tcp.SYN, 65535, 0x9384, 0)
    assert (t.mss, t.sack_permitted, t.ts_val, t.ts_ecr, t.wscale) == (1460, True, 1, 0, 7)
    assert t.sack_blocks == () and t.unknown_options == () and t.options == seg[20:]
    assert tcp.Tcp(40000, 80, 1000, 0, tcp.SYN, 65535, mss=1460, wscale=7, sack_permitted=True,
                   ts_val=1, ts_ecr=0).build(src, dst) == seg
    opts = tcp.build_options(1460, 7, True, (1, 0))
    assert tcp.build_tcp(src, dst, 40000, 80, 1000, 0, tcp.SYN, 65535, b"", opts) == seg
    assert tcp.flags_to_str(tcp.SYN | tcp.ACK) == "S." and tcp.flags_to_str(0) == "none"


def test_tcp_options_sack_unknown_eol():
    src, dst = A1, A2
    # NOP NOP SACK(2 blocks), unknown kind 30 (MPTCP) len 4, EOL, padding
    opts = H("0101" "0512" "0000000a00000014" "0000001e00000028" "1e04abcd" "00000000")
    seg = tcp.build_tcp(src, dst, 1, 2, 3, 4, tcp.ACK, 100, b"data", opts)
    t = tcp.Tcp.parse(seg, src, dst)
    assert t.sack_blocks == ((10, 20), (30, 40))
    assert [(k, bytes(v)) for k, v in t.unknown_options] == [(30, H("abcd"))]
    assert t.options == opts and bytes(t.payload) == b"data"
    # the option after EOL is not parsed
    seg2 = tcp.build_tcp(src, dst, 1, 2, 3, 4, tcp.ACK, 100, b"", H("00" "02" "ff" "00"))
    assert tcp.Tcp.parse(seg2, src, dst).mss is None
    # a window scale above 14 is clamped to 14 (RFC 7323 2.3)
    seg3 = tcp.build_tcp(src, dst, 1, 2, 3, 4, tcp.SYN, 100, b"", H("01030320"))
    assert tcp.Tcp.parse(seg3, src, dst).wscale == 14


@pytest.mark.parametrize("opts", [
    H("02"), H("0200"), H("0201"), H("020305b4"), H("020605b40000"[:8]) ,
    H("03020000"), H("0304070000000000"), H("0403"), H("0403000000000000"),
    H("0501"), H("050300000000000000000000"), H("0506000000000000"),
    H("080800000000000000000000"), H("080a0000000000000000"[:16]), H("1e00"), H("1eff0000"),
    H("0101010101010101010101" + "05" ),
])
def test_tcp_absurd_options(opts):
    opts = opts + bytes(-len(opts) % 4)
    seg = tcp.build_tcp(A1, A2, 1, 2, 3, 4, tcp.ACK, 100, b"", opts)
    assert reason(tcp.Tcp.parse, seg, A1, A2) == "tcp-bad-option"


def test_tcp_bad():
    seg = TCP_SYN[20:]
    src, dst = ip_to_int("10.0.0.1"), ip_to_int("10.0.0.2")
    assert reason(tcp.Tcp.parse, seg[:19], src, dst) == "tcp-truncated"
    assert reason(tcp.Tcp.parse, seg[:12] + b"\x40" + seg[13:], src, dst) == "tcp-bad-data-offset"
    assert reason(tcp.Tcp.parse, seg[:12] + b"\xf0" + seg[13:], src, dst) == "tcp-bad-data-offset"
    assert reason(tcp.Tcp.parse, seg[:39], src, dst) == "tcp-bad-data-offset"
    assert reason(tcp.Tcp.parse, seg, src, dst + 1) == "tcp-bad-checksum"
    assert tcp.Tcp.parse(seg, src, dst + 1, check=False).mss == 1460
    with pytest.raises(ValueError):
        tcp.build_options(sack_blocks=[(1, 2)] * 5)
    with pytest.raises(ValueError):
        tcp.build_options(mss=1460, ts=(1, 2), wscale=7, sack_blocks=[(1, 2)] * 3)


def test_icmp_word_after_the_checksum_is_ident_and_seq():
    m = icmp.Icmp.parse(icmp.build_echo(True, 0xBEEF, 0x1234, b"abc"))
    assert (m.ident, m.seq, m.rest) == (0xBEEF, 0x1234, 0xBEEF1234)
    m.rest = 0x01020304
    assert (m.ident, m.seq) == (0x0102, 0x0304)
    redirect = icmp.Icmp(icmp.REDIRECT, 1, 0xC0A80001, bytes(28))
    assert icmp.Icmp.parse(redirect.build()).rest == 0xC0A80001
    problem = icmp.Icmp.parse(icmp.build_icmp(icmp.PARAMETER_PROBLEM, 0, icmp.parameter_problem_rest(22), bytes(28)))
    assert problem.pointer == 22
