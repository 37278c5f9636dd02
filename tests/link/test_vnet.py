"""The virtio_net_hdr codec of link/vnet.py (TAP offloads), against hand-made bytes."""

import struct

from pynetstack.link import vnet
from pynetstack.wire.checksum import transport_verify
from pynetstack.wire.ethernet import ETH_IPV4, build_frame
from pynetstack.wire.ipv4 import PROTO_UDP, build_ipv4
from pynetstack.wire.tcp import ACK, build_tcp, build_tcp_partial

SRC, DST = 0x0A000001, 0x0A000002
MAC_A, MAC_B = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


def tcp_frame(payload: bytes, partial: bool) -> bytes:
    build = build_tcp_partial if partial else build_tcp
    seg = build(SRC, DST, 1234, 80, 1000, 2000, ACK, 512, payload, b"\x01\x01\x08\x0a" + bytes(8))
    return build_frame(MAC_B, MAC_A, ETH_IPV4, build_ipv4(SRC, DST, 6, seg))


def test_header_layout_is_little_endian_virtio():
    hdr = vnet.VnetHeader(vnet.F_NEEDS_CSUM, vnet.GSO_TCPV4, 66, 1448, 34, 16)
    raw = hdr.build()
    assert raw == bytes([1, 1]) + struct.pack("<HHHH", 66, 1448, 34, 16)
    assert len(raw) == vnet.HEADER_SIZE == 10
    assert vnet.VnetHeader.parse(raw) == hdr
    assert vnet.ZERO_HEADER == bytes(10)


def test_partial_checksum_completes_to_the_full_one():
    payload = bytes(range(256)) * 20 + b"x"  # odd length
    full, partial = tcp_frame(payload, False), tcp_frame(payload, True)
    assert full != partial
    assert vnet.complete_checksum(partial, 34, 16) == full


def test_gso_header_for_a_large_segment_and_a_small_one():
    big = tcp_frame(bytes(10_000), True)
    hdr = vnet.VnetHeader.parse(vnet.gso_header(big, 1448))
    assert (hdr.flags, hdr.gso_type, hdr.gso_size) == (vnet.F_NEEDS_CSUM, vnet.GSO_TCPV4, 1448)
    assert (hdr.csum_start, hdr.csum_offset, hdr.hdr_len) == (34, 16, 14 + 20 + 32)
    small = tcp_frame(bytes(1000), True)
    hdr = vnet.VnetHeader.parse(vnet.gso_header(small, 1448))
    assert (hdr.flags, hdr.gso_type, hdr.gso_size) == (vnet.F_NEEDS_CSUM, vnet.GSO_NONE, 0)


def test_decode_plain_frame_strips_the_header():
    frame = tcp_frame(b"hello", False)
    out = vnet.decode(vnet.ZERO_HEADER + frame)
    assert out == frame and type(out) is bytes


def test_decode_partial_tcp_is_trusted_and_completes():
    payload = bytes(range(200)) * 300
    partial = tcp_frame(payload, True)
    hdr = vnet.VnetHeader(vnet.F_NEEDS_CSUM, vnet.GSO_TCPV4, 66, 1448, 34, 16).build()
    out = vnet.decode(hdr + partial)
    assert isinstance(out, vnet.TrustedFrame) and out.partial
    assert bytes(out) == partial
    done = out.complete()
    assert done == tcp_frame(payload, False)
    assert transport_verify(SRC, DST, 6, done[34:])


def test_decode_partial_udp_is_completed_in_the_device():
    body = b"\x00\x35\x00\x35" + struct.pack("!H", 8 + 7) + b"\x00\x00" + b"payload"
    pseudo = ((SRC >> 16) + (SRC & 0xFFFF) + (DST >> 16) + (DST & 0xFFFF) + PROTO_UDP + len(body)) % 0xFFFF
    partial_body = body[:6] + pseudo.to_bytes(2, "big") + body[8:]
    frame = build_frame(MAC_B, MAC_A, ETH_IPV4, build_ipv4(SRC, DST, PROTO_UDP, partial_body))
    hdr = vnet.VnetHeader(vnet.F_NEEDS_CSUM, 0, 0, 0, 34, 6).build()
    out = vnet.decode(hdr + frame)
    assert type(out) is bytes
    assert transport_verify(SRC, DST, PROTO_UDP, out[34:34 + len(body)])


def test_decode_data_valid_is_trusted_without_partial():
    frame = tcp_frame(b"abc", False)
    out = vnet.decode(bytes([vnet.F_DATA_VALID]) + bytes(9) + frame)
    assert isinstance(out, vnet.TrustedFrame) and not out.partial and out.complete() == frame
