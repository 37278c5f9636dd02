from __future__ import annotations

from pynetstack.ids import Detector, load_rules
from tests.ids.packets import ACK, PSH, SYN, dns_query, handshake, icmp, tcp, udp


def detector(text: str, **kwargs) -> Detector:
    ruleset = load_rules(text, "t.rules", strict=True)
    assert not ruleset.skipped
    return Detector(ruleset, **kwargs)


def sids(alerts):
    return sorted(a.rule.sid for a in alerts)


def udp_sids(rules: str, payload: bytes):
    return sids(detector(rules).inspect_bytes(udp("10.0.0.1", 1111, "10.0.0.2", 2222, payload), 0.0))


def test_content_modifiers():
    rules = "\n".join([
        'alert udp any any -> any any (content:"abc"; sid:1;)',
        'alert udp any any -> any any (content:"ABC"; nocase; sid:2;)',
        'alert udp any any -> any any (content:"ABC"; sid:3;)',
        'alert udp any any -> any any (content:"abc"; depth:3; sid:4;)',
        'alert udp any any -> any any (content:"abc"; offset:3; sid:5;)',
        'alert udp any any -> any any (content:"abc"; content:"|0d 0a|"; distance:0; within:4; sid:6;)',
        'alert udp any any -> any any (content:"abc"; content:!"zzz"; sid:7;)',
        'alert udp any any -> any any (content:"abc"; content:!"xyz"; sid:8;)',
        'alert udp any any -> any any (content:"xyz"; isdataat:2,relative; sid:9;)',
        'alert udp any any -> any any (content:"xyz"; isdataat:!3,relative; sid:10;)',
        'alert udp any any -> any any (content:"abc"; startswith; sid:11;)',
        'alert udp any any -> any any (content:"def"; endswith; sid:12;)',
        'alert udp any any -> any any (pcre:"/A.C\\r\\n/i"; sid:13;)',
        'alert udp any any -> any any (content:"|0d 0a|"; byte_test:1,=,0x78,0,relative; sid:14;)',
        'alert udp any any -> any any (content:"|0d 0a|"; byte_test:1,>,0x78,0,relative; sid:15;)',
        'alert udp any any -> any any (dsize:11; sid:16;)',
        'alert udp any any -> any any (dsize:>11; sid:17;)',
        'alert udp any any -> any any (content:"abc"; content:"def"; distance:5; within:3; sid:18;)',
    ])
    assert udp_sids(rules, b"abc\r\nxyzdef") == [1, 2, 4, 6, 7, 9, 10, 11, 12, 13, 14, 16, 18]


def test_relative_content_tries_the_next_occurrence():
    rules = 'alert udp any any -> any any (content:"a"; content:"b"; distance:0; within:1; sid:1;)'
    assert udp_sids(rules, b"axxxaxab") == [1]
    assert udp_sids(rules, b"axxxaxax") == []


def test_header_addresses_ports_and_direction():
    rules = "\n".join([
        'alert udp 10.0.0.1 any -> 10.0.0.2 2222 (sid:1;)',
        'alert udp 10.0.0.2 any -> 10.0.0.1 any (sid:2;)',
        'alert udp 10.0.0.2 2222 <> 10.0.0.1 any (sid:3;)',
        'alert udp !10.0.0.1 any -> any any (sid:4;)',
        'alert udp any any -> any [1:100,2000:3000] (sid:5;)',
        'alert tcp any any -> any any (sid:6;)',
        'alert ip any any -> any any (ip_proto:17; ttl:64; sid:7;)',
    ])
    assert udp_sids(rules, b"x") == [1, 3, 5, 7]


def test_icmp_keywords():
    rules = "\n".join([
        'alert icmp any any -> any any (itype:8; icode:0; icmp_id:7; icmp_seq:9; sid:1;)',
        'alert icmp any any -> any any (itype:0; sid:2;)',
        'alert icmp any any -> any any (itype:>7; content:"ping"; sid:3;)',
    ])
    alerts = detector(rules).inspect_bytes(icmp("10.0.0.1", "10.0.0.2", 8, 0, 7, 9, b"ping"), 0.0)
    assert sids(alerts) == [1, 3]


def test_flags():
    d = detector('alert tcp any any -> any any (flags:S; sid:1;)\n'
                 'alert tcp any any -> any any (flags:A+; sid:2;)\n'
                 'alert tcp any any -> any any (flags:!R; sid:3;)\n')
    assert sids(d.inspect_bytes(tcp("1.1.1.1", 1, "2.2.2.2", 2, SYN), 0)) == [1, 3]
    assert sids(d.inspect_bytes(tcp("1.1.1.1", 3, "2.2.2.2", 2, SYN | ACK), 0)) == [2, 3]


def test_stream_content_spanning_segments_matches_once_in_order():
    d = detector('alert tcp any any -> any 80 (flow:established,to_server; content:"GET /secret"; sid:1;)')
    cseq, _ = handshake(d)
    a = d.inspect_bytes(tcp("10.0.0.1", 40000, "10.0.0.2", 80, ACK | PSH, cseq + 5, data=b"secret HTTP/1.0"), 1)
    assert a == []  # out of order: held until the gap is filled
    a = d.inspect_bytes(tcp("10.0.0.1", 40000, "10.0.0.2", 80, ACK | PSH, cseq, data=b"GET /"), 1)
    assert sids(a) == [1]
    a = d.inspect_bytes(tcp("10.0.0.1", 40000, "10.0.0.2", 80, ACK | PSH, cseq + 20, data=b"GET /secret"), 1)
    assert a == []  # one alert per rule and stream direction


def test_flow_established_and_midstream():
    rules = ('alert tcp any any -> any any (flow:established; content:"hello"; sid:1;)\n'
             'alert tcp any any -> any any (flow:not_established; content:"hello"; sid:2;)\n')
    d = detector(rules)
    # no handshake seen: the payload alone, never established
    assert sids(d.inspect_bytes(tcp("10.0.0.1", 1, "10.0.0.2", 2, ACK, 5, data=b"hello"), 0)) == [2]
    d = detector(rules)
    cseq, sseq = handshake(d)
    a = d.inspect_bytes(tcp("10.0.0.2", 80, "10.0.0.1", 40000, ACK, sseq, data=b"hello"), 0)
    assert sids(a) == [1] and a[0].direction == 1


def test_stream_depth_bounds_the_bytes_held():
    d = detector('alert tcp any any -> any any (content:"needle"; sid:1;)', stream_depth=100)
    cseq, _ = handshake(d)
    d.inspect_bytes(tcp("10.0.0.1", 40000, "10.0.0.2", 80, ACK, cseq, data=b"x" * 150), 0)
    flow = next(iter(d.flows.flows.values()))
    assert len(flow.streams[0].data) == 100 and flow.streams[0].full
    # past the depth each packet is inspected alone
    a = d.inspect_bytes(tcp("10.0.0.1", 40000, "10.0.0.2", 80, ACK, cseq + 150, data=b"a needle"), 0)
    assert sids(a) == [1]


def test_flowbits_and_order():
    rules = ('alert tcp any any -> any any (flowbits:isset,login; content:"RETR"; sid:2;)\n'
             'alert tcp any any -> any any (content:"USER"; flowbits:set,login; flowbits:noalert; sid:1;)\n'
             'alert tcp any any -> any any (flowbits:isnotset,login; content:"RETR"; sid:3;)\n')
    d = detector(rules)
    assert sids(d.inspect_bytes(tcp("1.1.1.1", 5, "2.2.2.2", 21, ACK, 1, data=b"RETR x"), 0)) == [3]
    assert sids(d.inspect_bytes(tcp("1.1.1.1", 5, "2.2.2.2", 21, ACK, 7, data=b"USER RETR"), 0)) == [2]


def test_threshold_and_detection_filter():
    rules = ('alert udp any any -> any any (content:"a"; threshold:type limit, track by_src, count 2, seconds 10; sid:1;)\n'
             'alert udp any any -> any any (content:"a"; threshold:type threshold, track by_src, count 3, seconds 10; sid:2;)\n'
             'alert udp any any -> any any (content:"a"; threshold:type both, track by_dst, count 2, seconds 10; sid:3;)\n'
             'alert udp any any -> any any (content:"a"; detection_filter:track by_src, count 4, seconds 10; sid:4;)\n')
    d = detector(rules)
    got = [sids(d.inspect_bytes(udp("1.1.1.1", 5, "2.2.2.2", 6, b"a"), t)) for t in range(6)]
    assert got == [[1], [1, 3], [2], [], [4], [2, 4]]
    assert sids(d.inspect_bytes(udp("1.1.1.1", 5, "2.2.2.2", 6, b"a"), 20)) == [1]  # a new window


def test_dns_query():
    rules = ('alert dns any any -> any any (dns.query; content:"evil.example"; nocase; sid:1;)\n'
             'alert udp any any -> any 53 (dns_query; content:"good"; sid:2;)\n')
    d = detector(rules)
    assert sids(d.inspect_bytes(udp("1.1.1.1", 5555, "8.8.8.8", 53, dns_query("www.EVIL.example.com")), 0)) == [1]
    assert sids(d.inspect_bytes(udp("1.1.1.1", 5555, "8.8.8.8", 53, dns_query("good.org")), 0)) == [2]
    assert d.inspect_bytes(udp("1.1.1.1", 5555, "8.8.8.8", 99, dns_query("evil.example")), 0) == []


def test_pass_rule_and_inline_drop():
    rules = ('pass udp 1.1.1.1 any -> any any (content:"ok"; sid:1;)\n'
             'drop udp any any -> any any (content:"bad"; sid:2;)\n')
    alerts = detector(rules).inspect_bytes(udp("9.9.9.9", 5, "2.2.2.2", 6, b"bad"), 0)
    assert [a.action for a in alerts] == ["allowed"]
    alerts = detector(rules, inline=True).inspect_bytes(udp("9.9.9.9", 5, "2.2.2.2", 6, b"bad"), 0)
    assert [a.action for a in alerts] == ["blocked"]
    d = detector(rules, inline=True)
    d.inspect_bytes(udp("9.9.9.9", 5, "2.2.2.2", 6, b"bad"), 0)
    assert d.verdict_drop
    # a match on a packet's own payload drops that packet, not the flow (Suricata 7 on)
    assert d.inspect_bytes(udp("9.9.9.9", 5, "2.2.2.2", 6, b"fine"), 0) == [] and not d.verdict_drop
    flow_rule = detector('drop udp any any -> 2.2.2.2 any (sid:4;)', inline=True)  # IP-only: the flow
    assert [a.rule.sid for a in flow_rule.inspect_bytes(udp("9.9.9.9", 5, "2.2.2.2", 6, b"x"), 0)] == [4]
    assert flow_rule.inspect_bytes(udp("9.9.9.9", 5, "2.2.2.2", 6, b"y"), 0) == [] and flow_rule.verdict_drop
    flow_rule.inspect_bytes(udp("9.9.9.9", 7, "2.2.2.2", 6, b"fine"), 0)
    assert flow_rule.verdict_drop  # another flow: its own first packet
    flow_rule.inspect_bytes(udp("9.9.9.9", 7, "2.2.2.3", 6, b"fine"), 0)
    assert not flow_rule.verdict_drop
    noalert = detector('drop udp any any -> any any (content:"bad"; noalert; sid:3;)', inline=True)
    assert noalert.inspect_bytes(udp("9.9.9.9", 5, "2.2.2.2", 6, b"bad"), 0) == [] and noalert.verdict_drop
    d = detector(rules, inline=True)
    assert d.inspect_bytes(udp("1.1.1.1", 5, "2.2.2.2", 6, b"ok bad"), 0) == []
    assert [a.rule.sid for a in d.inspect_bytes(udp("1.1.1.1", 5, "2.2.2.2", 6, b"bad"), 0)] == [2]  # packet scope
    d = detector('pass udp 1.1.1.1 any -> any any (sid:5;)\n' + rules, inline=True)
    assert d.inspect_bytes(udp("1.1.1.1", 5, "2.2.2.2", 6, b"x"), 0) == []
    assert d.inspect_bytes(udp("1.1.1.1", 5, "2.2.2.2", 6, b"bad"), 0) == []  # an IP-only pass: the flow


def test_flow_table_is_bounded():
    d = detector('alert udp any any -> any any (content:"x"; sid:1;)', max_flows=10)
    for port in range(50):
        d.inspect_bytes(udp("1.1.1.1", port, "2.2.2.2", 6, b"y"), 0)
    assert len(d.flows.flows) == 10 and d.flows.evicted == 40
    d.poll(1000.0)
    assert not d.flows.flows


def test_byte_jump_bsize_dotprefix_and_header_buffers():
    rules = "\n".join([
        # a length byte, then jump over that many bytes: "END" must follow
        'alert udp any any -> any any (content:"L"; byte_jump:1,0,relative; content:"END"; within:3; sid:1;)',
        'alert udp any any -> any any (content:"L"; byte_jump:1,0,relative,post_offset 1; content:"END"; within:3; sid:2;)',
        'alert udp any any -> any 53 (dns.query; dotprefix; content:".evil.example"; endswith; sid:3;)',
        'alert udp any any -> any 53 (dns.query; dotprefix; content:".vil.example"; sid:4;)',
        'alert udp any any -> any 53 (dns.query; bsize:<20; sid:5;)',
        'alert udp any any -> any 53 (dns.query; bsize:>20; sid:6;)',
        'alert tcp any any -> any any (tcp.hdr; content:"|00 50|"; offset:2; depth:2; sid:7;)',
        'alert tcp any any -> any any (ipv4.hdr; content:"|40 06|"; offset:8; depth:2; sid:8;)',
    ])
    d = detector(rules)
    assert sids(d.inspect_bytes(udp("1.1.1.1", 5, "2.2.2.2", 6, b"L\x03abcEND"), 0)) == [1]
    assert sids(d.inspect_bytes(udp("1.1.1.1", 5, "2.2.2.2", 6, b"L\x03abcXEND"), 0)) == [2]
    assert sids(d.inspect_bytes(udp("1.1.1.1", 5, "2.2.2.2", 53, dns_query("www.evil.example")), 0)) == [3, 5]
    assert sids(d.inspect_bytes(udp("1.1.1.1", 5, "2.2.2.2", 53, dns_query("notevil.example")), 0)) == [5]
    assert sids(d.inspect_bytes(tcp("1.1.1.1", 5, "2.2.2.2", 80, SYN), 0)) == [7, 8]


def test_http_buffers_per_transaction():
    rules = "\n".join([
        'alert http any any -> any any (msg:"uri"; flow:established,to_server; http.method; content:"GET"; '
        'http.uri; content:"/admin/login.php"; http.host; content:"example.com"; bsize:11; sid:1;)',
        'alert http any any -> any any (msg:"ua"; http.user_agent; content:"sqlmap"; nocase; sid:2;)',
        'alert http any any -> any any (msg:"status"; flow:to_client; http.stat_code; content:"404"; '
        'file.data; content:"not here"; sid:3;)',
        'alert tcp any any -> any any (msg:"legacy"; content:"login"; http_uri; content:"Mozilla"; http_header; sid:4;)',
        'alert http any any -> any any (msg:"uri length"; urilen:>100; sid:5;)',
        'alert http any any -> any any (msg:"header names"; http.header_names; content:"|0d 0a|X-Evil|0d 0a|"; sid:6;)',
    ])
    d = detector(rules)
    cseq, sseq = handshake(d)
    req = (b"GET /admin/%6cogin.php?x=1 HTTP/1.1\r\nHost: Example.com:8080\r\nUser-Agent: Mozilla SQLMap\r\n"
           b"X-Evil: 1\r\n\r\n")
    a = d.inspect_bytes(tcp("10.0.0.1", 40000, "10.0.0.2", 80, ACK | PSH, cseq, data=req[:30]), 1)
    assert a == []  # the request is not complete yet
    a = d.inspect_bytes(tcp("10.0.0.1", 40000, "10.0.0.2", 80, ACK | PSH, cseq + 30, data=req[30:]), 1)
    assert sids(a) == [1, 2, 4, 6]
    assert a[0].app["url"] == "/admin/%6cogin.php?x=1" and a[0].app["hostname"] == "Example.com:8080"
    resp = b"HTTP/1.1 404 Not Found\r\nContent-Length: 8\r\n\r\nnot here"
    a = d.inspect_bytes(tcp("10.0.0.2", 80, "10.0.0.1", 40000, ACK | PSH, sseq, data=resp), 2)
    assert sids(a) == [3] and a[0].app["status"] == 404
    cseq += len(req)
    chunked = b"GET /" + b"a" * 120 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    a = d.inspect_bytes(tcp("10.0.0.1", 40000, "10.0.0.2", 80, ACK | PSH, cseq, data=chunked), 3)
    assert sids(a) == [5]


def test_http_parser_chunked_and_pipelined():
    from pynetstack.ids.http import HttpParser, normalize_uri
    parser = HttpParser()
    requests = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
    events = parser.feed(0, requests)
    assert [(k, tx.buffer("http.uri", 0), tx.buffer("http.request_body", 0)) for k, tx in events] == [
        ("request", b"/a", b""), ("request", b"/b", b"abc")]
    body = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5\r\npedia\r\n0\r\n\r\n"
    events = parser.feed(1, body[:-10])
    assert events == []
    events = parser.feed(1, body)
    assert events[0][1].buffer("file.data", 1) == b"wikipedia" and events[0][1].buffer("http.uri", 0) == b"/a"
    assert normalize_uri(b"/x/./y/../%41b?q=%20") == b"/x/Ab?q= "
