"""Suricata's evaluation semantics: rule order, IP-only rules, flow:established per packet, split
handshakes and TCP Fast Open."""

from __future__ import annotations

import pytest

from pynetstack.ids import Detector, load_rules
from pynetstack.ids.order import OrderError, evaluation_order, is_ip_only
from tests.ids.packets import ACK, PSH, RST, SYN, handshake, tcp, udp

C, S = ("10.0.0.1", 40000), ("10.0.0.2", 80)


def detector(text: str, **kwargs) -> Detector:
    ruleset = load_rules(text, "t.rules", strict=True)
    assert not ruleset.skipped
    return Detector(ruleset, **kwargs)


def sids(alerts):
    return [a.rule.sid for a in alerts]  # in the order the engine logs them


def c2s(flags=ACK, seq=0, ack=0, data=b"", options=b""):
    return tcp(C[0], C[1], S[0], S[1], flags, seq, ack, data, options)


def s2c(flags=ACK, seq=0, ack=0, data=b""):
    return tcp(S[0], S[1], C[0], C[1], flags, seq, ack, data)


def test_evaluation_order_action_flowbits_priority_sid():
    rules = load_rules("\n".join([
        'alert ip any any -> any any (content:"a"; sid:1;)',
        'alert ip any any -> any any (content:"a"; flowbits:isset,x; sid:2;)',
        'alert ip any any -> any any (content:"a"; flowbits:isnotset,x; flowbits:set,x; sid:3;)',
        'alert ip any any -> any any (content:"a"; flowbits:unset,x; sid:4;)',
        'alert ip any any -> any any (content:"a"; priority:1; sid:5;)',
        'drop ip any any -> any any (content:"a"; sid:6;)',
        'pass ip any any -> any any (content:"a"; sid:7;)',
        'reject ip any any -> any any (content:"a"; sid:8;)',
        'alert ip any any -> any any (content:"a"; flowbits:toggle,x; sid:9;)',
    ]), strict=True).rules
    assert [r.sid for r in evaluation_order(rules)] == [7, 6, 8, 4, 3, 2, 5, 1, 9]
    assert [r.sid for r in evaluation_order(rules, ["drop", "pass", "alert", "reject"])][:3] == [6, 7, 4]
    with pytest.raises(OrderError, match="action-order"):
        evaluation_order(rules, ["drop", "pass", "alert"])


def test_alerts_of_a_packet_come_in_evaluation_order():
    rules = ('alert udp any any -> any any (content:"a"; sid:9;)\n'
             'alert udp any any -> any any (content:"a"; sid:3;)\n'
             'alert udp any any -> any any (content:"a"; classtype:trojan-activity; sid:7;)\n')  # priority 1
    assert sids(detector(rules).inspect_bytes(udp("1.1.1.1", 5, "2.2.2.2", 6, b"a"), 0)) == [7, 3, 9]


def test_flowbits_set_unset_and_read_on_one_packet():
    # as suricata-verify's detect-flowbits: setters first, then set+read, then readers
    rules = "\n".join([
        'alert udp any any -> any any (flowbits:set,fb1; sid:1;)',
        'alert udp any any -> any any (flowbits:set,fb2; sid:2;)',
        'alert udp any any -> any any (flowbits:isset,fb1|fb5; sid:5;)',
        'alert udp any any -> any any (flowbits:isnotset,fb1|fb2; sid:6;)',
        'alert udp any any -> any any (flowbits:unset,fb1; sid:7;)',
        'alert udp any any -> any any (flowbits:noalert; flowbits:isnotset,fb1; flowbits:set,fb1; content:"GET"; sid:8;)',
        'alert udp any any -> any any (flowbits:isset,fb1; sid:9;)',
    ])
    got = sids(detector(rules).inspect_bytes(udp("1.1.1.1", 5, "2.2.2.2", 6, b"GET /"), 0))
    assert sorted(got) == [1, 2, 5, 7, 9]


def test_ip_only_rules_fire_on_the_first_packet_of_each_direction():
    rules = ('alert ip any any -> any any (sid:1;)\n'
             'alert tcp 10.0.0.1 any -> !10.0.0.1 any (sid:2;)\n'       # negated: a packet rule
             'alert tcp any any -> any any (flowbits:set,seen; sid:3;)\n'
             'alert tcp any any -> any any (flowbits:isset,seen; sid:4;)\n')
    ruleset = load_rules(rules, strict=True)
    assert [is_ip_only(r) for r in ruleset.rules] == [True, False, True, False]
    d = detector(rules)
    got = [sids(d.inspect_bytes(p, 0)) for p in (c2s(SYN, 1), s2c(SYN | ACK, 9, 2), c2s(ACK, 2, 10),
                                                  c2s(ACK, 2, 10, b"x"))]
    # the IP-only rules on the first packet each way; the flowbit they set is read right away;
    # alerts in evaluation order (flowbits setters, readers, then the others by sid)
    assert got == [[3, 4, 1, 2], [3, 4, 1], [4, 2], [4, 2]]


def test_pass_ends_the_packet_in_evaluation_order():
    rules = ('pass ip any any -> any any (sid:1004;)\n'
             'drop udp any any -> 8.8.8.8 any (sid:10002;)\n')
    assert sids(detector(rules, inline=True).inspect_bytes(udp("1.1.1.1", 5, "8.8.8.8", 53), 0)) == []
    d = detector(rules, inline=True, action_order=("drop", "pass", "reject", "alert"))
    a = d.inspect_bytes(udp("1.1.1.1", 5, "8.8.8.8", 53), 0)
    assert sids(a) == [10002] and a[0].action == "blocked" and d.verdict_drop
    assert d.inspect_bytes(udp("1.1.1.1", 5, "8.8.8.8", 53), 1) == [] and d.verdict_drop  # the flow is dropped


def test_established_is_the_state_before_the_packet():
    rules = 'alert tcp any any -> any any (flow:established,to_server; sid:1;)'
    d = detector(rules)
    assert sids(d.inspect_bytes(c2s(SYN, 1), 0)) == []
    assert sids(d.inspect_bytes(s2c(SYN | ACK, 9, 2), 0)) == []
    assert sids(d.inspect_bytes(c2s(ACK, 2, 10), 0)) == []  # the handshake's last ACK
    assert sids(d.inspect_bytes(c2s(ACK, 2, 10), 0)) == [1]
    assert sids(d.inspect_bytes(s2c(RST, 10), 0)) == []
    assert sids(d.inspect_bytes(c2s(ACK, 2, 10), 0)) == [1]  # a reset does not undo it
    d = detector(rules)
    d.inspect_bytes(c2s(SYN, 1), 0)
    d.inspect_bytes(s2c(SYN | ACK, 9, 2), 0)
    assert sids(d.inspect_bytes(c2s(ACK | PSH, 2, 10, b"data"), 0)) == [1]  # ... unless it carries data


@pytest.mark.parametrize("five_way", [False, True])
def test_split_handshake_reaches_the_stream(five_way):
    rules = ('alert tcp any any -> any any (content:"EVIL"; sid:1;)\n'
             'alert tcp-stream any any -> any any (content:"EVIL"; sid:2;)\n'
             'alert tcp-pkt any any -> any any (content:"EVIL"; sid:3;)\n'
             'alert tcp any any -> any any (flow:established,to_server; content:"EVIL"; sid:4;)\n')
    d = detector(rules)
    packets = [c2s(SYN, 1000)] + ([s2c(ACK, 0, 1001)] if five_way else []) + [
        s2c(SYN, 3000), c2s(SYN | ACK, 1000, 3001), s2c(ACK, 3001, 1001), c2s(ACK, 1001, 3001, b"EVIL"),
        s2c(ACK, 3001, 1005)]
    got = [a for p in packets for a in d.inspect_bytes(p, 0)]
    assert sorted(sids(got)) == [1, 2, 3, 4]
    assert {a.direction for a in got} == {0}


def test_fast_open_syn_data_is_stream_data_only_with_the_option():
    rules = ('alert tcp any any -> any any (flags:S; content:"GET"; sid:11;)\n'
             'alert tcp-stream any any -> any any (content:"GET"; sid:5;)\n')
    tfo = b"\x22\x0a" + b"\xb3\x82\x53\xcf\xa6\x86\x6b\x39"  # kind 34, an 8-byte cookie
    d = detector(rules)
    assert sorted(sids(d.inspect_bytes(c2s(SYN, 100, 0, b"GET / HTTP/1.1\r\n", tfo), 0))) == [5, 11]
    flow = next(iter(d.flows.flows.values()))
    assert bytes(flow.streams[0].data) == b"GET / HTTP/1.1\r\n"
    # without the option the SYN's data is inspected as the packet's, and left out of the stream
    d = detector(rules)
    assert sids(d.inspect_bytes(c2s(SYN, 100, 0, b"GET / HTTP/1.1\r\n"), 0)) == [11]
    flow = next(iter(d.flows.flows.values()))
    assert bytes(flow.streams[0].data) == b""


def test_handshake_helper_still_establishes():
    d = detector('alert tcp any any -> any any (flow:established; content:"x"; sid:1;)')
    cseq, _ = handshake(d)
    assert sids(d.inspect_bytes(tcp("10.0.0.1", 40000, "10.0.0.2", 80, ACK, cseq, data=b"x"), 0)) == [1]


def _http_flow(d, request=b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"):
    """Handshake, a request, the server's ACK of it, a FIN from the client: the alerts of each."""
    out = [d.inspect_bytes(p, 0) for p in (c2s(SYN, 1), s2c(SYN | ACK, 9, 2), c2s(ACK, 2, 10),
                                           c2s(ACK | PSH, 2, 10, request), s2c(ACK, 10, 2 + len(request)),
                                           c2s(ACK | 0x01, 2 + len(request), 10))]
    return [sids(a) for a in out]


def test_app_protocol_rules_without_buffers_are_packet_rules_once_the_protocol_is_known():
    # IDS mode: Suricata's app layer reads the request when the server has acknowledged it
    rules = 'alert http any any -> any any (flow:to_server; sid:4;)'
    assert _http_flow(detector(rules)) == [[], [], [], [], [], [4]]
    # inline the stream is read as it comes: the request's own packet
    assert _http_flow(detector(rules, inline=True)) == [[], [], [], [4], [], [4]]
    empty = 'alert http any any -> any any (dsize:0; sid:1;)'
    assert _http_flow(detector(empty)) == [[], [], [], [], [1], [1]]


def test_drop_rules_drop_the_flow_or_the_packet_by_their_kind():
    # an app-layer drop rule takes the flow (no more alerts), in IDS mode too
    assert _http_flow(detector('drop http any any -> any any (sid:1;)')) == [[], [], [], [], [1], []]
    # a drop on a packet property drops that packet only
    assert _http_flow(detector('drop http any any -> any any (dsize:0; sid:1;)', inline=True)) == [
        [], [], [], [], [1], [1]]
    # a stream match takes the flow
    d = detector('drop tcp any any -> any any (content:"GET"; sid:2;)\nalert tcp any any -> any any (flow:to_server; sid:3;)',
                 inline=True)
    got = _http_flow(d)
    assert got[3] == [2, 3] and got[4:] == [[], []] and d.verdict_drop


def test_relative_pcre_anchors_at_the_previous_match():
    rules = ('alert udp any any -> any any (content:"%7bjndi%3a"; nocase; pcre:"/^(l|r)dap/Ri"; sid:1;)\n'
             'alert udp any any -> any any (content:"jndi"; pcre:"/^ldap/R"; sid:2;)\n')
    d = detector(rules)
    assert sids(d.inspect_bytes(udp("1.1.1.1", 5, "2.2.2.2", 6, b"u=%24%7Bjndi%3Aldap%3A"), 0)) == [1]


def test_gre_tunnels_are_inspected_inside():
    from tests.ids.packets import ip
    inner = udp("10.1.1.1", 5, "10.2.2.2", 6, b"secret")
    rules = 'alert udp 10.1.1.1 any -> 10.2.2.2 any (content:"secret"; sid:1;)'
    plain = ip("192.0.2.1", "192.0.2.2", 47, b"\x00\x00\x08\x00" + inner)
    keyed = ip("192.0.2.1", "192.0.2.2", 47, b"\x20\x00\x08\x00" + b"\x00\x00\x00\x07" + inner)
    bridged = ip("192.0.2.1", "192.0.2.2", 47, b"\x00\x00\x65\x58" + b"\x02" * 12 + b"\x81\x00\x00\x05"
                 + b"\x08\x00" + inner)
    for packet in (plain, keyed, bridged):
        a = detector(rules).inspect_bytes(packet, 0)
        assert sids(a) == [1] and a[0].packet.src == 0x0A010101
    pptp = ip("192.0.2.1", "192.0.2.2", 47, b"\x30\x01\x88\x0b" + b"\x00" * 8 + inner)  # version 1: not decoded
    assert detector(rules).inspect_bytes(pptp, 0) == []


def test_absolute_content_on_a_stream_is_tried_on_each_packet_too():
    rules = ('alert tcp any any -> any 445 (flow:established,to_server; content:"SMB"; depth:8; '
             'content:"|05 00|"; distance:0; sid:1;)\n'
             'alert tcp any any -> any 445 (flow:established,to_server; content:"SMB"; content:"|05 00|"; '
             'distance:0; sid:2;)\n')
    d = detector(rules)
    cseq, sseq = handshake(d, server=("10.0.0.2", 445))
    pdu = b"\x00\x00\x00\x10\xfeSMB\x05\x00rest"
    got = []
    for i in range(2):
        got.append(sids(d.inspect_bytes(tcp("10.0.0.1", 40000, "10.0.0.2", 445, ACK | PSH, cseq + i * len(pdu),
                                            sseq, pdu), 0)))
    # the stream holds the first PDU at its start only; each packet starts with one
    assert got == [[1, 2], [1]]
