"""A segment captured before the NIC finished its checksum (checksum offload) is decoded like
tcpdump decodes it, ports and flags shown; a really bad checksum is decoded and flagged."""

from __future__ import annotations

from pynetstack.wire import checksum, ethernet, ipv4, tcp, udp
from pynetstack.wire.describe import offloaded_checksum, summary
from pynetstack.wire.dissect import dissect

MAC_A, MAC_B = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
SRC, DST = 0x0A000001, 0x0A000002


def with_checksum(proto: int, segment: bytes, value: int) -> bytes:
    at = 16 if proto == 6 else 6
    segment = segment[:at] + value.to_bytes(2, "big") + segment[at + 2:]
    ip = ipv4.IPv4(SRC, DST, proto, segment).build()
    return ethernet.Ethernet(MAC_B, MAC_A, ethernet.ETH_IPV4, ip).build()


def partial(proto: int, length: int) -> int:
    """What Linux leaves in the field for the NIC: the folded pseudo-header sum."""
    return checksum.pseudo_header_sum(SRC, DST, proto, length) % 0xFFFF or 0xFFFF


def test_offloaded_tcp_checksum_is_decoded_without_complaint():
    seg = tcp.build_tcp(SRC, DST, 40000, 80, 1, 0, tcp.SYN, 64240, b"")
    frame = with_checksum(6, seg, partial(6, len(seg)))
    line = summary(frame)
    assert "TCP 40000 > 80: Flags [S]" in line and "malformed" not in line, line
    assert "offloaded" in dissect(frame)
    assert offloaded_checksum(ipv4.IPv4.parse(frame[14:]))


def test_offloaded_udp_checksum_is_decoded_without_complaint():
    seg = udp.build_udp(SRC, DST, 5353, 53, b"question")
    frame = with_checksum(17, seg, partial(17, len(seg)))
    assert summary(frame).endswith("UDP 5353 > 53, length 8")


def test_a_really_bad_checksum_is_decoded_and_flagged():
    seg = tcp.build_tcp(SRC, DST, 40000, 80, 1, 0, tcp.SYN, 64240, b"")
    frame = with_checksum(6, seg, 0x1234)
    line = summary(frame)
    assert "TCP 40000 > 80: Flags [S]" in line and line.endswith("[malformed: tcp-bad-checksum]"), line
    assert "(INVALID)" in dissect(frame)
