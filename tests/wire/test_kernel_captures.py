"""Frames the Linux kernel produced (tests/wire/fixtures, made by make_fixtures.sh).

tcpdump's rendering stored beside each frame is an independent oracle for the parsed fields,
and rebuilding every layer from its parsed fields must give back the kernel's exact bytes.
"""

from __future__ import annotations

import pytest

from pynetstack.wire import addr, arp, ethernet, icmp, ipv4, tcp, udp

from .kernel import all_frames, load, parse_all, scenarios, tcpdump_fields

FRAMES = all_frames()


def test_fixtures_present():
    assert len(scenarios()) >= 15
    assert len(FRAMES) >= 43


@pytest.mark.parametrize("cap", FRAMES, ids=repr)
def test_fields_match_tcpdump(cap):
    want = tcpdump_fields(cap.tcpdump)
    layers = parse_all(cap.frame)
    eth = layers[0]
    assert addr.mac_to_str(eth.src) == want["src_mac"]
    assert addr.mac_to_str(eth.dst) == want["dst_mac"]
    assert eth.ethertype == int(want["ethertype"], 16)
    assert len(cap.frame) == int(want["frame_len"])
    if eth.ethertype != ethernet.ETH_IPV4:
        return
    ip = layers[1]
    assert addr.ip_to_str(ip.src) == want["src_ip"]
    assert addr.ip_to_str(ip.dst) == want["dst_ip"]
    if len(layers) < 3:
        return
    top = layers[2]
    if isinstance(top, udp.Udp):
        assert (top.src_port, top.dst_port) == (want["sport"], want["dport"])
        assert len(top.payload) == want["length"]
    elif isinstance(top, tcp.Tcp):
        assert (top.src_port, top.dst_port) == (want["sport"], want["dport"])
        assert tcp.flags_to_str(top.flags) == want["tcp_flags"]
        assert len(top.payload) == want["length"]
        assert top.window == want["win"]
        if top.flags & tcp.SYN:  # tcpdump prints relative numbers after the handshake
            assert top.seq == want["seq"]
            if top.flags & tcp.ACK:
                assert top.ack == want["ack"]
        assert top.mss == want.get("mss")
        assert top.wscale == want.get("wscale")
        assert top.ts_val == want.get("ts_val")
        if "ts_ecr" in want:
            assert top.ts_ecr == want["ts_ecr"]
        assert top.sack_permitted == ("sackOK" in want["rest"])
    elif isinstance(top, icmp.Icmp):
        assert len(ip.payload) == want["length"]
        if top.type in (icmp.ECHO_REQUEST, icmp.ECHO_REPLY):
            assert top.ident == want["icmp_id"]
        if "mtu" in want:
            assert top.mtu == want["mtu"]


@pytest.mark.parametrize("cap", FRAMES, ids=repr)
def test_rebuild_is_byte_exact(cap):
    layers = parse_all(cap.frame)
    eth = layers[0]
    if eth.ethertype == ethernet.ETH_ARP:
        a = layers[1]
        body = arp.Arp(a.op, a.sha, a.spa, a.tha, a.tpa).build()
        assert body == bytes(eth.payload[:arp.LENGTH])
        rebuilt = ethernet.Ethernet(eth.dst, eth.src, eth.ethertype, body).build()
        padded = cap.frame + bytes(max(0, 60 - len(cap.frame)))
        assert rebuilt[:len(padded)] == padded
        return
    ip = layers[1]
    if len(layers) == 3:
        top = layers[2]
        if isinstance(top, icmp.Icmp):
            segment = icmp.Icmp(top.type, top.code, top.rest, bytes(top.payload)).build()
        elif isinstance(top, udp.Udp):
            segment = udp.Udp(top.src_port, top.dst_port, bytes(top.payload)).build(ip.src, ip.dst)
        else:
            segment = tcp.Tcp(top.src_port, top.dst_port, top.seq, top.ack, top.flags, top.window,
                              bytes(top.payload), top.urgent, top.mss, top.wscale, top.sack_permitted,
                              top.sack_blocks, top.ts_val, top.ts_ecr, top.unknown_options).build(ip.src, ip.dst)
            assert segment[20:(segment[12] >> 4) * 4] == top.options
        assert segment == bytes(ip.payload)
    else:
        segment = bytes(ip.payload)
    datagram = ipv4.IPv4(ip.src, ip.dst, ip.protocol, segment, ttl=ip.ttl, tos=ip.tos, ident=ip.ident,
                         df=ip.df, mf=ip.mf, frag_offset=ip.frag_offset, options=ip.options).build()
    assert datagram == bytes(eth.payload)
    # veth does not pad short frames; our builder pads to the 60-byte Ethernet minimum
    padded = cap.frame + bytes(max(0, 60 - len(cap.frame)))
    assert ethernet.Ethernet(eth.dst, eth.src, eth.ethertype, datagram).build() == padded
    assert ethernet.build_frame(eth.dst, eth.src, eth.ethertype, datagram) == padded
    if not ip.options and not ip.is_fragment and ip.df:
        assert ipv4.build_ipv4(ip.src, ip.dst, ip.protocol, segment, ttl=ip.ttl, ident=ip.ident,
                               tos=ip.tos) == datagram


def test_arp_request_and_reply():
    request, reply = (parse_all(c.frame)[1] for c in load("arp"))
    assert request.op == arp.REQUEST and reply.op == arp.REPLY
    assert addr.ip_to_str(request.tpa) == "10.99.0.2" and addr.ip_to_str(request.spa) == "10.99.0.1"
    assert reply.sha == addr.mac_to_bytes("02:00:00:00:00:0b")
    assert reply.tha == request.sha and reply.tpa == request.spa


def test_fragments_of_a_3000_byte_ping():
    frags = [parse_all(c.frame)[1] for c in load("ping_frag")[:3]]
    assert [f.frag_offset for f in frags] == [0, 1480, 2960]
    assert [f.mf for f in frags] == [True, True, False]
    assert len({f.ident for f in frags}) == 1
    assert sum(len(f.payload) for f in frags) == 3008
    assert all(f.is_fragment for f in frags)
    whole = b"".join(bytes(f.payload) for f in frags)
    message = icmp.Icmp.parse(whole)  # the reassembled ICMP message checks out
    assert message.type == icmp.ECHO_REQUEST and len(message.payload) == 3000


def test_ip_options_from_ping():
    rr = parse_all(load("ping_record_route")[0].frame)[1]
    assert rr.options[:3] == b"\x01\x07\x27" and len(rr.options) == 40  # NOP, record route (39)
    ts = parse_all(load("ping_timestamp_option")[0].frame)[1]
    assert ts.options[0] == 68 and ts.header_length == 20 + len(ts.options)


@pytest.mark.parametrize("scenario,type_,code", [
    ("ttl_exceeded", icmp.TIME_EXCEEDED, icmp.TTL_EXCEEDED),
    ("host_unreachable", icmp.DEST_UNREACHABLE, icmp.CODE_HOST),
    ("admin_prohibited", icmp.DEST_UNREACHABLE, icmp.CODE_ADMIN_PROHIBITED),
    ("frag_needed", icmp.DEST_UNREACHABLE, icmp.CODE_FRAG_NEEDED),
    ("udp_port_unreachable", icmp.DEST_UNREACHABLE, icmp.CODE_PORT),
])
def test_icmp_errors_quote_the_offending_datagram(scenario, type_, code):
    sent, error = load(scenario)
    sent_ip = parse_all(sent.frame)[1]
    message = parse_all(error.frame)[2]
    assert (message.type, message.code) == (type_, code) and message.is_error
    quote = bytes(message.payload)
    original = bytes(ethernet.Ethernet.parse(sent.frame).payload)
    # Linux quotes the datagram as it arrived at the router (TTL already decremented when forwarded)
    assert quote[20:] == original[20:len(quote)]
    assert quote[12:20] == original[12:20] and quote[:8] == original[:8]
    assert len(quote) >= 28
    if code == icmp.CODE_FRAG_NEEDED:
        assert message.mtu == 1000
        assert len(ethernet.Ethernet.parse(error.frame).payload) == icmp.MAX_ERROR_DATAGRAM
    assert sent_ip.dst == int.from_bytes(quote[16:20], "big")


def test_tcp_handshake_options():
    syn, synack, ack = (parse_all(c.frame)[2] for c in load("tcp_session")[:3])
    assert syn.flags == tcp.SYN and synack.flags == tcp.SYN | tcp.ACK and ack.flags == tcp.ACK
    assert synack.ack == (syn.seq + 1) & 0xFFFFFFFF and ack.ack == (synack.seq + 1) & 0xFFFFFFFF
    assert syn.sack_permitted and synack.sack_permitted and syn.mss == 1460
    assert ack.ts_ecr == synack.ts_val and synack.ts_ecr == syn.ts_val
    data = parse_all(load("tcp_session")[3].frame)[2]
    assert bytes(data.payload) == b"hello from B\n" and data.flags == tcp.PSH | tcp.ACK


def test_udp_echo_payload_and_zero_length():
    out, back = (parse_all(c.frame)[2] for c in load("udp_echo"))
    assert bytes(out.payload) == bytes(back.payload) == b"hello, udp"
    assert (out.src_port, out.dst_port) == (back.dst_port, back.src_port) == (40000, 9000)
    empty = parse_all(load("udp_empty")[0].frame)[2]
    assert len(empty.payload) == 0 and empty.checksum != 0
