"""The one capture reader (classic pcap and pcapng) and the writer: round trips, the formats'
variants built block by block, files written by scapy and read by tcpdump, and clear errors."""

from __future__ import annotations

import shutil
import struct
import subprocess

import pytest
from hypothesis import given, settings, strategies as st

from pynetstack.link.pcap import (LINKTYPE_ETHERNET, LINKTYPE_RAW, CaptureError, PcapWriter, read_pcap)


def classic(packets, order="<", nanos=False, linktype=LINKTYPE_ETHERNET):
    """A classic pcap file's bytes: packets are (seconds, fraction ticks, frame)."""
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    for seconds, frac, frame in packets:
        out += struct.pack(order + "IIII", seconds, frac, len(frame), len(frame)) + frame
    return out


def option(order, code, value):
    return struct.pack(order + "HH", code, len(value)) + value + bytes(-len(value) % 4)


def block(order, btype, body):
    body += bytes(-len(body) % 4)
    length = len(body) + 12
    return struct.pack(order + "II", btype, length) + body + struct.pack(order + "I", length)


def section(order):
    return block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def interface(order, linktype, tsresol=None, tsoffset=None, snaplen=0):
    options = b""
    if tsresol is not None:
        options += option(order, 9, bytes([tsresol]))
    if tsoffset is not None:
        options += option(order, 14, struct.pack(order + "q", tsoffset))
    if options:
        options += option(order, 0, b"")
    return block(order, 1, struct.pack(order + "HHI", linktype, 0, snaplen) + options)


def enhanced(order, iface, ticks, frame):
    return block(order, 6, struct.pack(order + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF,
                                       len(frame), len(frame)) + frame)


def write(tmp_path, data, name="x.pcap"):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nanos", [False, True])
def test_classic_both_byte_orders_and_resolutions(tmp_path, order, nanos):
    frames = [b"\x01" * 60, b"\x02" * 1514, b""]
    frac = 123456789 if nanos else 123456
    path = write(tmp_path, classic([(1700000000 + i, frac, f) for i, f in enumerate(frames)], order, nanos,
                                   LINKTYPE_RAW))
    back = list(read_pcap(path))
    assert [f for _, _, f in back] == frames
    assert {linktype for _, linktype, _ in back} == {LINKTYPE_RAW}
    assert back[1][0] == pytest.approx(1700000001.123456789 if nanos else 1700000001.123456, abs=1e-7)


def test_writer_round_trip(tmp_path):
    path = tmp_path / "x.pcap"
    writer = PcapWriter(str(path))
    frames = [bytes([i]) * (60 + i) for i in range(20)]
    for i, frame in enumerate(frames):
        writer.write(frame, 1700000000 + i * 0.25)
    writer.close()
    back = list(read_pcap(str(path)))
    assert [f for _, _, f in back] == frames
    assert {linktype for _, linktype, _ in back} == {LINKTYPE_ETHERNET}
    assert back[3][0] == pytest.approx(1700000000.75)


def test_pcapng_sections_interfaces_and_block_kinds(tmp_path):
    little = (section("<") + interface("<", 1) + interface("<", 101, tsresol=9, tsoffset=100)
              + enhanced("<", 0, 1_500_000, b"eth-frame") + block("<", 0xBAD, b"unknown, skipped")
              + enhanced("<", 1, 2_000_000_001, b"\x45raw")
              + block("<", 3, struct.pack("<I", 5) + b"plain")  # simple packet: interface 0
              + block("<", 2, struct.pack("<HHIIII", 1, 0, 0, 7, 3, 3) + b"old"))  # obsolete packet block
    big = (section(">") + interface(">", 113, tsresol=0x80 | 10, snaplen=4)
           + enhanced(">", 0, 3 * 1024, b"sll!") + block(">", 3, struct.pack(">I", 9) + b"truncated"))
    back = list(read_pcap(write(tmp_path, little + big, "x.pcapng")))
    assert [(linktype, frame) for _, linktype, frame in back] == [
        (1, b"eth-frame"), (101, b"\x45raw"), (1, b"plain"), (101, b"old"), (113, b"sll!"), (113, b"trun")]
    assert [ts for ts, _, _ in back] == pytest.approx([1.5, 102.000000001, 0.0, 100 + 7e-9, 3.0, 0.0])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2**40), st.binary(max_size=70)), max_size=12),
       st.sampled_from("<>"))
def test_pcapng_reads_what_was_written(tmp_path_factory, packets, order):
    resolutions = [(None, 1e6), (9, 1e9), (0x80 | 20, 2.0 ** 20)]
    data = section(order) + b"".join(interface(order, 200 + i, tsresol=code) for i, (code, _) in enumerate(resolutions))
    data += b"".join(enhanced(order, iface, ticks, frame) for iface, ticks, frame in packets)
    path = write(tmp_path_factory.mktemp("ng"), data, "h.pcapng")
    assert list(read_pcap(path)) == [(ticks / resolutions[iface][1], 200 + iface, frame)
                                     for iface, ticks, frame in packets]


def test_pcapng_written_by_scapy(tmp_path):
    scapy_utils = pytest.importorskip("scapy.utils")
    from scapy.layers.l2 import Ether
    from scapy.layers.inet import IP, UDP
    packets = [Ether() / IP(dst="192.0.2.1") / UDP(dport=53 + i) for i in range(3)]
    for i, packet in enumerate(packets):
        packet.time = 1700000000 + i / 4
    path = str(tmp_path / "scapy.pcapng")
    scapy_utils.wrpcapng(path, packets)
    back = list(read_pcap(path))
    assert [f for _, _, f in back] == [bytes(p) for p in packets]
    assert {linktype for _, linktype, _ in back} == {LINKTYPE_ETHERNET}
    assert [ts for ts, _, _ in back] == pytest.approx([1700000000, 1700000000.25, 1700000000.5])


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed")
def test_tcpdump_reads_the_same_pcapng(tmp_path):
    frame = bytes.fromhex("ffffffffffff020000000001 0800 4500001c0000000040110000c0000201c0000202"
                          "00350035000800 00".replace(" ", ""))
    data = (section(">") + interface(">", 1, tsresol=9) + enhanced(">", 0, 1_700_000_000_250_000_000, frame)
            + enhanced(">", 0, 1_700_000_001_000_000_000, frame))
    path = write(tmp_path, data, "t.pcapng")
    result = subprocess.run(["tcpdump", "-nn", "-tt", "-r", path], capture_output=True, text=True, timeout=20)
    stamps = [float(line.split()[0]) for line in result.stdout.splitlines()]
    assert stamps == pytest.approx([ts for ts, _, _ in read_pcap(path)], abs=1e-6) and len(stamps) == 2


@pytest.mark.parametrize("data, message", [
    (b"", "not a pcap or pcapng file"),
    (b"\x00" * 24, "magic 00000000"),
    (classic([(1, 0, b"abcdef")])[:-2], "packet 1 has 4 of 6 bytes"),
    (classic([(1, 0, b"abc"), (2, 0, b"def")])[:-12], "packet 2's header has 7 of 16 bytes"),
    (section("<") + interface("<", 1)[:-4], "truncated or damaged after 0 packets: block at byte 28"),
    (section("<") + enhanced("<", 0, 0, b"x"), "names interface 0, but 0 are described"),
    (section("<") + struct.pack("<II", 6, 13) + bytes(5), "bad pcapng block length 13"),
    (b"\x0a\x0d\x0d\x0a" + bytes(4) + b"abcd" + bytes(16), "byte-order mark 61626364"),
])
def test_bad_captures_are_named(tmp_path, data, message):
    path = write(tmp_path, data, "bad.pcap")
    with pytest.raises(CaptureError, match=message) as error:
        list(read_pcap(path))
    assert path in str(error.value)


def test_packets_before_a_truncation_are_read(tmp_path):
    path = write(tmp_path, classic([(1, 0, b"whole"), (2, 0, b"cut short")])[:-3])
    reader = read_pcap(path)
    assert next(reader)[2] == b"whole"
    with pytest.raises(CaptureError, match="truncated"):
        next(reader)


def test_missing_capture_is_named(tmp_path):
    with pytest.raises(CaptureError, match="cannot read the capture .*missing.pcap"):
        list(read_pcap(str(tmp_path / "missing.pcap")))
