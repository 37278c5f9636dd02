"""wire/tcp.py: golden bytes (Linux captures), round trips, malformed input, scapy as oracle."""


import pytest
from hypothesis import given, settings, strategies as st

from pynetstack.wire import tcp as T
from pynetstack.wire.checksum import transport_checksum, transport_verify
from pynetstack.wire.errors import MalformedPacket

LO = 0x7F000001

# Captured by tcpdump on lo from a Linux 127.0.0.1 connection (IPv4 header stripped).  The
# checksum fields hold the partial (pseudo-header only) sum that lo's offload leaves, so the
# golden comparisons mask bytes 16..17 and parse with check=False.
LINUX_SYN = bytes.fromhex("8962b26e40b66b7f00000000a002ffd7fe3000000204ffd70402080ac45f7aa6000000000103030a")
LINUX_SYNACK = bytes.fromhex("b26e89626822749e40b66b80a012ffcbfe3000000204ffd70402080ae772e472c45f7aa60103030a")
LINUX_DATA = bytes.fromhex("8962b26e40b66b806822749f80180040fe2d00000101080ac45f7aa6e772e47268656c6c6f")


def fix_checksum(segment: bytes, src=LO, dst=LO) -> bytes:
    seg = segment[:16] + b"\0\0" + segment[18:]
    return seg[:16] + transport_checksum(src, dst, 6, seg).to_bytes(2, "big") + seg[18:]


def test_parse_linux_syn():
    s = T.Tcp.parse(LINUX_SYN, LO, LO, check=False)
    assert (s.src_port, s.dst_port) == (0x8962, 0xB26E)
    assert s.seq == 0x40B66B7F and s.ack == 0
    assert s.flags == T.SYN and s.window == 0xFFD7
    assert s.mss == 0xFFD7 and s.sack_permitted and s.wscale == 10
    assert (s.ts_val, s.ts_ecr) == (0xC45F7AA6, 0)
    assert len(s.payload) == 0 and s.sack_blocks == ()


def test_build_matches_linux_syn_layout():
    built = T.build_tcp(LO, LO, 0x8962, 0xB26E, 0x40B66B7F, 0, T.SYN, 0xFFD7,
                        options=T.build_options(mss=0xFFD7, wscale=10, sack_permitted=True,
                                                ts=(0xC45F7AA6, 0)))
    assert built == fix_checksum(LINUX_SYN)
    assert transport_verify(LO, LO, 6, built)


def test_build_matches_linux_synack_and_data():
    built = T.build_tcp(LO, LO, 0xB26E, 0x8962, 0x6822749E, 0x40B66B80, T.SYN | T.ACK, 0xFFCB,
                        options=T.build_options(mss=0xFFD7, wscale=10, sack_permitted=True,
                                                ts=(0xE772E472, 0xC45F7AA6)))
    assert built == fix_checksum(LINUX_SYNACK)
    data = T.build_tcp(LO, LO, 0x8962, 0xB26E, 0x40B66B80, 0x6822749F, T.PSH | T.ACK, 0x40,
                       b"hello", T.timestamp_option(0xC45F7AA6, 0xE772E472))
    assert data == fix_checksum(LINUX_DATA)
    s = T.Tcp.parse(data, LO, LO)
    assert bytes(s.payload) == b"hello" and (s.ts_val, s.ts_ecr) == (0xC45F7AA6, 0xE772E472)


def test_checksum_verified():
    good = fix_checksum(LINUX_DATA)
    T.Tcp.parse(good, LO, LO)
    with pytest.raises(MalformedPacket) as e:
        T.Tcp.parse(good, LO, LO + 1)
    assert e.value.reason == "tcp-bad-checksum"
    bad = bytearray(good)
    bad[-1] ^= 1
    with pytest.raises(MalformedPacket):
        T.Tcp.parse(bytes(bad), LO, LO)


def test_odd_length_payload_checksum():
    for n in range(0, 7):
        seg = T.build_tcp(1, 2, 3, 4, 5, 6, T.ACK, 7, bytes(range(1, n + 1)))
        assert transport_verify(1, 2, 6, seg)
        assert bytes(T.Tcp.parse(seg, 1, 2).payload) == bytes(range(1, n + 1))


def test_sack_blocks_and_unknown_options_round_trip():
    s = T.Tcp(1000, 80, seq=1, ack=2, flags=T.ACK, window=100, ts_val=5, ts_ecr=6,
              sack_blocks=[(30, 40), (0xFFFFFFF0, 5)], unknown_options=[(30, b"\x01\x02")])
    raw = s.build(1, 2)
    p = T.Tcp.parse(raw, 1, 2)
    assert p.sack_blocks == ((30, 40), (0xFFFFFFF0, 5))
    assert p.unknown_options == ((30, b"\x01\x02"),)
    assert (p.ts_val, p.ts_ecr) == (5, 6)
    assert p.build(1, 2) == raw


def test_wscale_clamped_to_14():
    raw = T.build_tcp(1, 2, 1, 2, 0, 0, T.SYN, 0, options=b"\x01\x03\x03\x0f")
    assert T.Tcp.parse(raw, 1, 2).wscale == 14


def test_eol_stops_option_parsing():
    raw = T.build_tcp(1, 2, 1, 2, 0, 0, T.SYN, 0, options=b"\x02\x04\x05\xb4\x00\xff\xff\xff")
    assert T.Tcp.parse(raw, 1, 2).mss == 1460


@pytest.mark.parametrize("options,reason", [
    (b"\x01\x01\x02\x04", "tcp-bad-option"),        # MSS length runs off the end
    (b"\x02\x05\x05\xb4\x00\x00\x00\x00", "tcp-bad-option"),  # MSS length 5
    (b"\x03\x02\x00\x00", "tcp-bad-option"),        # window scale length 2
    (b"\x04\x03\x00\x00", "tcp-bad-option"),        # SACK-permitted length 3
    (b"\x08\x09" + bytes(10), "tcp-bad-option"),    # timestamps length 9
    (b"\x05\x02\x00\x00", "tcp-bad-option"),        # SACK with no block
    (b"\x05\x0b" + bytes(10), "tcp-bad-option"),    # SACK length not 2+8n
    (b"\x1e\x01\x00\x00", "tcp-bad-option"),        # length < 2
    (b"\x01\x01\x01\x1e", "tcp-bad-option"),        # no length byte
])
def test_absurd_options(options, reason):
    raw = T.build_tcp(1, 2, 1, 2, 0, 0, T.SYN, 0, options=options)
    with pytest.raises(MalformedPacket) as e:
        T.Tcp.parse(raw, 1, 2)
    assert e.value.reason == reason


def test_truncated_and_bad_offset():
    with pytest.raises(MalformedPacket) as e:
        T.Tcp.parse(b"\0" * 19)
    assert e.value.reason == "tcp-truncated"
    raw = bytearray(T.build_tcp(1, 2, 1, 2, 0, 0, T.ACK, 0))
    raw[12] = 4 << 4
    with pytest.raises(MalformedPacket) as e:
        T.Tcp.parse(bytes(raw), check=False)
    assert e.value.reason == "tcp-bad-data-offset"
    raw[12] = 15 << 4  # 60-byte header in a 20-byte segment
    with pytest.raises(MalformedPacket):
        T.Tcp.parse(bytes(raw), check=False)


def test_options_too_long_rejected_on_build():
    with pytest.raises(ValueError):
        T.build_options(mss=1460, ts=(1, 2), sack_blocks=[(1, 2)] * 4)


def test_flags_to_str():
    assert T.flags_to_str(T.SYN | T.ACK) == "S."
    assert T.flags_to_str(0) == "none"


@given(data=st.binary(max_size=80))
@settings(max_examples=300, deadline=None)
def test_parse_never_raises_anything_but_malformed(data):
    try:
        T.Tcp.parse(data, check=False)
    except MalformedPacket:
        pass


ports = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)


@given(sport=ports, dport=ports, seq=u32, ack=u32, flags=st.integers(0, 255), win=ports,
       payload=st.binary(max_size=64), mss=st.none() | ports, ws=st.none() | st.integers(0, 14),
       sp=st.booleans(), ts=st.none() | st.tuples(u32, u32),
       blocks=st.lists(st.tuples(u32, u32), max_size=2), src=u32, dst=u32)
@settings(max_examples=150, deadline=None)
def test_scapy_oracle(sport, dport, seq, ack, flags, win, payload, mss, ws, sp, ts, blocks, src, dst):
    scapy = pytest.importorskip("scapy.all")
    from pynetstack.wire.addr import ip_to_str
    opts = T.build_options(mss=mss, wscale=ws, sack_permitted=sp, ts=ts, sack_blocks=blocks)
    ours = T.build_tcp(src, dst, sport, dport, seq, ack, flags, win, payload, opts)
    # scapy parses our bytes, and recomputes the checksum on its own when asked to rebuild them
    parsed = scapy.TCP(ours)
    assert (parsed.sport, parsed.dport, parsed.seq, parsed.ack, int(parsed.flags), parsed.window) == \
        (sport, dport, seq, ack, flags, win)
    pkt = scapy.IP(src=ip_to_str(src), dst=ip_to_str(dst)) / scapy.TCP(ours[:16] + b"\0\0" + ours[18:])
    pkt[scapy.TCP].chksum = None
    assert scapy.raw(pkt)[20:] == ours
    opt = dict((k, v) for k, v in parsed.options if k != "NOP" and k != "EOL")
    if mss is not None:
        assert opt["MSS"] == mss
    if ws is not None:
        assert opt["WScale"] == ws
    if ts is not None:
        assert opt["Timestamp"] == ts
    assert ("SAckOK" in opt) == sp
    p = T.Tcp.parse(ours, src, dst)
    assert (p.mss, p.wscale, p.sack_permitted) == (mss, ws, sp)
    assert p.sack_blocks == tuple(blocks)
    assert bytes(p.payload) == payload
