"""Bad input of every kind gives MalformedPacket and nothing else: truncation at every length,
single-bit corruption, bad lengths, absurd options, random and mutated bytes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pynetstack.wire import arp, ethernet, icmp, ipv4, tcp, udp
from pynetstack.wire.errors import MalformedPacket

from .kernel import all_frames, parse_all
from .test_checksum import naive_checksum

FRAMES = all_frames()
SMALL = [c for c in FRAMES if len(c.frame) <= 200]
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(data, check=True):
    """'ok' or the MalformedPacket reason; any other exception fails the test."""
    try:
        parse_all(data, check=check)
    except MalformedPacket as exc:
        assert isinstance(exc.reason, str) and exc.reason
        return exc.reason
    return "ok"


@pytest.mark.parametrize("cap", FRAMES, ids=repr)
def test_truncated_at_every_length(cap):
    frame = cap.frame
    eth = ethernet.Ethernet.parse(frame)
    needed = len(frame)
    if eth.ethertype == ethernet.ETH_ARP:
        needed = 14 + arp.LENGTH  # padding after the ARP body may go
    for n in range(len(frame)):
        for data in (frame[:n], memoryview(frame)[:n], bytearray(frame[:n])):
            result = outcome(data)
            if n < needed:
                assert result != "ok", f"truncated to {n} bytes and still parsed"


@pytest.mark.parametrize("cap", SMALL, ids=repr)
def test_every_single_bit_flip(cap):
    """Ones' complement checksums catch every single-bit error, so a flipped bit anywhere in an
    IPv4 header, ICMP message or TCP/UDP segment must be refused; flips in the Ethernet header
    may yield another valid frame, but never another exception."""
    frame = bytearray(cap.frame)
    eth = ethernet.Ethernet.parse(cap.frame)
    checked_end = len(frame)
    if eth.ethertype == ethernet.ETH_IPV4:
        ip = ipv4.IPv4.parse(eth.payload)
        if ip.is_fragment:  # a fragment's data is only checked after reassembly
            checked_end = 14 + ip.header_length
    for i in range(len(frame) * 8):
        frame[i >> 3] ^= 0x80 >> (i & 7)
        result = outcome(bytes(frame))
        if eth.ethertype == ethernet.ETH_IPV4 and 14 * 8 <= i < checked_end * 8:
            zero_udp = (frame[23] == 17 and frame[40:42] == b"\0\0")  # flipped into "no checksum"
            assert result != "ok" or zero_udp, f"bit {i} flipped and still parsed"
        frame[i >> 3] ^= 0x80 >> (i & 7)
    assert outcome(bytes(frame)) == "ok"


@FUZZ
@given(st.binary(max_size=120))
def test_random_bytes_all_layers(data):
    outcome(data)
    outcome(data, check=False)


@FUZZ
@given(st.binary(max_size=80), st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF))
def test_random_bytes_each_codec(data, src, dst):
    for parse in (ethernet.Ethernet.parse, arp.Arp.parse, ipv4.IPv4.parse, icmp.Icmp.parse,
                  lambda d: ipv4.IPv4.parse(d, check=False), lambda d: icmp.Icmp.parse(d, check=False),
                  lambda d: udp.Udp.parse(d, src, dst), lambda d: udp.Udp.parse(d, src, dst, check=False),
                  lambda d: tcp.Tcp.parse(d, src, dst), lambda d: tcp.Tcp.parse(d, src, dst, check=False)):
        try:
            parse(data)
        except MalformedPacket:
            pass


@FUZZ
@given(st.sampled_from(FRAMES), st.data())
def test_mutated_kernel_frames(cap, data):
    frame = bytearray(cap.frame)
    for _ in range(data.draw(st.integers(1, 6))):
        action = data.draw(st.sampled_from(["set", "insert", "delete", "truncate"]))
        pos = data.draw(st.integers(0, max(0, len(frame) - 1)))
        if action == "set" and frame:
            frame[pos] = data.draw(st.integers(0, 255))
        elif action == "insert":
            frame[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del frame[pos:pos + data.draw(st.integers(1, 8))]
        else:
            del frame[pos:]
    outcome(bytes(frame))
    outcome(bytes(frame), check=False)


def _ipv4_with_options(options: bytes) -> bytes:
    hlen = 20 + len(options)
    header = bytes([0x40 | hlen // 4]) + b"\0" + (hlen + 8).to_bytes(2, "big") + bytes(4) + b"\x40\x01\0\0" \
        + bytes([10, 0, 0, 1, 10, 0, 0, 2]) + options
    header = header[:10] + naive_checksum(header).to_bytes(2, "big") + header[12:]
    return header + bytes([8, 0, 0xF7, 0xFF, 0, 0, 0, 0])


@FUZZ
@given(st.integers(0, 10).flatmap(lambda words: st.binary(min_size=4 * words, max_size=4 * words)))
def test_absurd_ipv4_options(options):
    """Any option bytes, with a correct header checksum: parsed, or refused as a bad option."""
    try:
        ip = ipv4.IPv4.parse(_ipv4_with_options(options))
    except MalformedPacket as exc:
        assert exc.reason == "ipv4-bad-option"
        return
    assert ip.options == options
    ipv4.copied_options(ip.options)  # must cope with anything parse accepted


@FUZZ
@given(st.integers(0, 10).flatmap(lambda words: st.binary(min_size=4 * words, max_size=4 * words)),
       st.binary(max_size=20))
def test_absurd_tcp_options(options, payload):
    src, dst = 0x0A000001, 0x0A000002
    seg = tcp.build_tcp(src, dst, 1, 2, 3, 4, tcp.SYN, 100, payload, options)
    try:
        t = tcp.Tcp.parse(seg, src, dst)
    except MalformedPacket as exc:
        assert exc.reason == "tcp-bad-option"
        return
    assert t.options == options and bytes(t.payload) == payload
    assert t.mss is None or 0 <= t.mss <= 0xFFFF
    assert t.wscale is None or 0 <= t.wscale <= 14
    assert len(t.sack_blocks) <= 4


@pytest.mark.parametrize("total", [0, 1, 19, 37, 0xFFFF])
def test_ipv4_total_length_lies(total):
    datagram = bytearray(_ipv4_with_options(b""))
    datagram[2:4] = total.to_bytes(2, "big")
    datagram[10:12] = b"\0\0"
    datagram[10:12] = naive_checksum(bytes(datagram[:20])).to_bytes(2, "big")
    with pytest.raises(MalformedPacket):
        ipv4.IPv4.parse(bytes(datagram))


@pytest.mark.parametrize("length", [0, 1, 7, 9, 0xFFFF])
def test_udp_length_lies(length):
    seg = bytearray(udp.build_udp(1, 2, 3, 4, b""))
    seg[4:6] = length.to_bytes(2, "big")
    with pytest.raises(MalformedPacket):
        udp.Udp.parse(bytes(seg), 1, 2, check=False)


@pytest.mark.parametrize("offset", [0, 1, 4, 6, 15])
def test_tcp_data_offset_lies(offset):
    seg = bytearray(tcp.build_tcp(1, 2, 3, 4, 5, 6, tcp.ACK, 7, b""))
    seg[12] = offset << 4
    with pytest.raises(MalformedPacket):
        tcp.Tcp.parse(bytes(seg), 1, 2, check=False)
