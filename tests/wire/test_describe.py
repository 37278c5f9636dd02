"""wire/describe: one-line summaries (checked against tcpdump's own rendering of the same kernel
frames) and multi-line dissections; neither raises on any input."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pynetstack.wire import ethernet, icmp, ipv4, tcp, udp
from pynetstack.wire.describe import summary
from pynetstack.wire.dissect import dissect

from .kernel import all_frames, load, tcpdump_fields
from .test_codecs import ARP_REQUEST_FRAME, ICMP_ECHO, TCP_SYN, UDP_WITH_IP_OPTION

FRAMES = all_frames()
MAC_A, MAC_B = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


def frame(payload: bytes, ethertype: int = ethernet.ETH_IPV4, vlans=()) -> bytes:
    return ethernet.Ethernet(MAC_B, MAC_A, ethertype, payload, vlans=vlans).build()


@pytest.mark.parametrize("cap", FRAMES, ids=repr)
def test_summary_agrees_with_tcpdump(cap):
    line = summary(cap.frame)
    want = tcpdump_fields(cap.tcpdump)
    assert line.startswith(f"{want['src_mac']} > {want['dst_mac']}, ")
    assert "malformed" not in line and "\n" not in line
    rest = want["rest"]
    if "src_ip" in want:
        assert f"IPv4 {want['src_ip']} > {want['dst_ip']}: " in line
    if "sport" in want:
        assert f"{want['sport']} > {want['dport']}" in line
    if "tcp_flags" in want:
        assert f"Flags [{want['tcp_flags']}]" in line
        assert f"win {want['win']}" in line
        m = re.search(r"options \[([^\]]*)\]", rest)
        if m:
            assert f"options [{m.group(1)}]" in line  # same option spelling as tcpdump
        if "S" in want["tcp_flags"]:
            assert f"seq {want['seq']}" in line
    if "ICMP echo" in rest:
        kind = "request" if "request" in rest else "reply"
        assert f"ICMP echo {kind} id {want['icmp_id']}" in line
    if "mtu" in want:
        assert f"mtu {want['mtu']}" in line
    if "unreachable" in rest:
        assert "destination unreachable" in line
    if "time exceeded" in rest:
        assert "time exceeded" in line
    if "Request who-has" in rest:
        m = re.search(r"who-has ([\d.]+) tell ([\d.]+)", rest)
        assert f"ARP who-has {m.group(1)} tell {m.group(2)}" in line
    if "Reply" in rest and "is-at" in rest:
        m = re.search(r"Reply (\S+) is-at (\S+),", rest)
        assert f"ARP {m.group(1)} is-at {m.group(2)}" in line
    if "UDP, length" in rest:
        assert f"UDP {want['sport']} > {want['dport']}, length {want['length']}" in line


def test_summary_examples():
    assert summary(frame(ICMP_ECHO)) == ("02:00:00:00:00:01 > 02:00:00:00:00:02, IPv4 192.0.2.1 > 198.51.100.2: "
                                         "ICMP echo request id 1 seq 2, length 16")
    assert summary(ARP_REQUEST_FRAME) == ("02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff, "
                                          "ARP who-has 192.0.2.2 tell 192.0.2.1")
    assert summary(frame(UDP_WITH_IP_OPTION)).endswith(
        "IPv4 192.0.2.1 > 198.51.100.2: UDP 5353 > 53, length 5 [IP options ra 4]")
    assert summary(frame(TCP_SYN)).endswith(
        "TCP 40000 > 80: Flags [S], seq 1000, win 65535, options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0")
    assert ", vlan 10, p 3, IPv4 " in summary(frame(ICMP_ECHO, vlans=(0x600A,)))
    qinq = bytes.fromhex("ffffffffffff020000000001" "88a80064" "81000014" "0800") + ICMP_ECHO
    assert "vlan 100, p 0, vlan 20, p 0, IPv4 192.0.2.1" in summary(qinq)


def test_summary_fragments_and_unknowns():
    first = ipv4.IPv4(1, 2, 17, udp.build_udp(1, 2, 1000, 2000, bytes(100))[:48], ident=7, mf=True).build()
    assert summary(frame(first)).endswith("UDP 1000 > 2000, length 48 [fragment id 7 offset 0, more]")
    later = ipv4.IPv4(1, 2, 17, bytes(40), ident=7, frag_offset=48).build()
    assert summary(frame(later)).endswith("UDP fragment, length 40 [fragment id 7 offset 48]")
    gre = ipv4.IPv4(1, 2, 47, bytes(12)).build()
    assert summary(frame(gre)).endswith("0.0.0.1 > 0.0.0.2: GRE, length 12")
    assert summary(frame(bytes(40), ethernet.ETH_IPV6)).endswith("ethertype 0x86dd (IPv6), length 46")
    assert summary(frame(bytes(40), 0x1234)).endswith("ethertype 0x1234 (unknown), length 46")
    stp = MAC_B + MAC_A + b"\x00\x26\x42\x42\x03" + bytes(38)
    assert summary(stp).endswith("802.3 length 38, LLC dsap 0x42 ssap 0x42 ctrl 0x03 (STP)")
    pp = ipv4.IPv4(1, 2, 1, icmp.build_error(icmp.PARAMETER_PROBLEM, 0, ICMP_ECHO, icmp.parameter_problem_rest(9))).build()
    assert "ICMP parameter problem (pointer indicates the error, pointer 9) for 192.0.2.1 > 198.51.100.2 ICMP" in summary(frame(pp))


@pytest.mark.parametrize("data,reason", [
    (b"\x01\x02", "eth-truncated"),
    (MAC_B + MAC_A + b"\x81\x00\x00", "eth-vlan-truncated"),
    (frame(ICMP_ECHO[:10], ethernet.ETH_IPV4)[:24], "ipv4-truncated"),
    (frame(b"\x65" + ICMP_ECHO[1:]), "ipv4-bad-version"),
    (frame(ICMP_ECHO[:10] + b"\0\0" + ICMP_ECHO[12:]), "ipv4-bad-checksum"),
    (frame(ICMP_ECHO[:-1] + b"X"), "icmp-bad-checksum"),
    (frame(UDP_WITH_IP_OPTION[:-1] + b"X"), "udp-bad-checksum"),
    (frame(TCP_SYN[:-1] + b"\x08"), "tcp-bad-checksum"),
    (ARP_REQUEST_FRAME[:30], "arp-truncated"),
])
def test_summary_malformed(data, reason):
    assert f"[malformed: {reason}]" in summary(data)
    text = dissect(data)
    assert reason in text or "INVALID" in text


def test_dissect_every_field():
    text = dissect(frame(TCP_SYN))
    for expected in ["Ethernet II, 74 bytes", "destination        02:00:00:00:00:02", "ethertype          0x0800 (IPv4)",
                     "IPv4, 60 bytes", "header length      20 bytes (IHL 5)", "identification     0x0000 (0)",
                     "flags              0x2 (DF)", "TTL                64", "protocol           6 (TCP)",
                     "header checksum    0x26ba (valid)", "source             10.0.0.1",
                     "TCP, 40 bytes", "sequence number    1000", "acknowledgment     0 (ACK not set)",
                     "data offset        40 bytes (10 words)", "flags              0x02 (SYN)", "window             65535",
                     "checksum           0x9384 (valid)", "urgent pointer     0", "2 (maximum segment size): mss 1460",
                     "3 (window scale): wscale 7", "8 (timestamps): TS val 1 ecr 0", "data               0 bytes"]:
        assert expected in text, expected
    bad = dissect(frame(TCP_SYN[:-1] + b"\x08"))
    assert "checksum           0x9384 (INVALID)" in bad and "header checksum    0x26ba (valid)" in bad
    assert "padding            10 bytes" in dissect(frame(ICMP_ECHO))


def test_dissect_icmp_error_udp_arp_vlan():
    err = ipv4.IPv4(1, 2, 1, icmp.build_error(3, 4, ICMP_ECHO, icmp.frag_needed_rest(1400))).build()
    text = dissect(frame(err))
    assert "type               3 (destination unreachable)" in text and "code               4 (fragmentation needed)" in text
    assert "next-hop MTU       1400" in text and "quoted datagram    36 bytes: 192.0.2.1 > 198.51.100.2 ICMP" in text
    text = dissect(frame(UDP_WITH_IP_OPTION))
    assert "148 (router alert, copied), length 4: 0000" in text and "checksum           0xbaac (valid)" in text
    assert "data               5 bytes: 68656c6c6f" in text
    nosum = dissect(frame(UDP_WITH_IP_OPTION[:30] + b"\0\0" + UDP_WITH_IP_OPTION[32:]))
    assert "none: the sender computed no checksum" in nosum
    text = dissect(ARP_REQUEST_FRAME)
    assert "opcode             1 (request)" in text and "target IP          192.0.2.2" in text
    text = dissect(frame(ICMP_ECHO, vlans=(0x700A,)))
    assert "802.1Q tag" in text and "priority 3, DEI 1, VLAN 10" in text
    frag = load("ping_frag")[1].frame
    assert "ICMP fragment data, 1480 bytes" in dissect(frag)
    first = dissect(load("ping_frag")[0].frame)
    assert "(not verifiable in a fragment)" in first


def test_dissect_tcp_with_sack_and_unknown_options():
    opts = tcp.build_options(sack_blocks=[(1, 2), (3, 4)], unknown=[(30, b"\xab")], ts=(5, 6))
    seg = tcp.build_tcp(1, 2, 10, 20, 30, 40, tcp.ACK | tcp.PSH, 50, b"hi", opts)
    data = frame(ipv4.IPv4(1, 2, 6, seg).build())
    assert "options [nop,nop,TS val 5 ecr 6,opt-30 len 3 0xab,nop,nop,sack 2 {1:2} {3:4}" in summary(data)
    text = dissect(data)
    assert "5 (SACK): sack 2 {1:2} {3:4}" in text and "30 (multipath TCP): opt-30 len 3 0xab" in text
    assert "flags              0x18 (ACK, PSH)" in text


@pytest.mark.parametrize("cap", FRAMES, ids=repr)
def test_dissect_kernel_frames_all_valid(cap):
    text = dissect(cap.frame)
    assert "INVALID" not in text and "malformed" not in text
    assert text.count("\n") >= 5


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FRAMES), st.data())
def test_never_raises_on_mutations(cap, data):
    frame_ = bytearray(cap.frame)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(frame_) - 1))
        if data.draw(st.booleans()):
            frame_[pos] = data.draw(st.integers(0, 255))
        else:
            del frame_[pos:]
            if not frame_:
                break
    assert isinstance(summary(bytes(frame_)), str)
    assert isinstance(dissect(bytes(frame_)), str)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=100))
def test_never_raises_on_random_bytes(data):
    assert "\n" not in summary(data)
    dissect(data)
    dissect(memoryview(data))


@pytest.mark.parametrize("cap", FRAMES[:10], ids=repr)
def test_truncations_never_raise(cap):
    for n in range(len(cap.frame)):
        summary(cap.frame[:n])
        dissect(cap.frame[:n])
