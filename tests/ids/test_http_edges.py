"""HTTP/1.x edge cases, as libhtp (Suricata's HTTP parser) reads them."""

from __future__ import annotations

from pynetstack.ids import Detector, load_rules
from pynetstack.ids.http import HttpParser
from tests.ids.packets import ACK, FIN, PSH, handshake, tcp

C, S = ("10.0.0.1", 40000), ("10.0.0.2", 80)


def detector(text: str, **kwargs) -> Detector:
    ruleset = load_rules(text, "t.rules", strict=True)
    assert not ruleset.skipped
    return Detector(ruleset, **kwargs)


def sids(alerts):
    return sorted(a.rule.sid for a in alerts)


def test_request_line_rules_match_before_the_headers_end():
    rules = ('alert http any any -> any any (http_request_line; bsize:10<>100; sid:1;)\n'
             'alert http any any -> any any (http.method; content:"GET"; sid:2;)\n'
             'alert http any any -> any any (http.header; content:"Host"; sid:3;)\n')
    d = detector(rules)
    cseq, sseq = handshake(d)
    a = d.inspect_bytes(tcp(C[0], C[1], S[0], S[1], ACK | PSH, cseq, sseq, b"GET /index.html HTTP/1.0\r\nHost: x\r\n"), 0)
    assert sids(a) == [1, 2]  # the line is complete; the headers are not
    cseq += 35
    a = d.inspect_bytes(tcp(C[0], C[1], S[0], S[1], ACK | PSH, cseq, sseq, b"\r\n"), 0)
    assert sids(a) == [3]  # the headers end: the header rule, and the line rules not twice


def test_headers_cut_by_the_close_are_inspected():
    rules = 'alert http any any -> any any (flow:established,from_server; content:"ng1nx"; http_header; sid:1;)'
    d = detector(rules)
    cseq, sseq = handshake(d)
    d.inspect_bytes(tcp(C[0], C[1], S[0], S[1], ACK | PSH, cseq, sseq, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0)
    response = b"HTTP/1.0 200 OK\r\nServer:ng1nx\r\n"
    assert d.inspect_bytes(tcp(S[0], S[1], C[0], C[1], ACK | PSH, sseq, cseq + 27, response), 0) == []
    a = d.inspect_bytes(tcp(S[0], S[1], C[0], C[1], ACK | FIN, sseq + len(response), cseq + 27), 0)
    assert sids(a) == [1]


def test_bare_line_feeds_between_messages_are_skipped():
    parser = HttpParser()
    requests = b"GET /1 HTTP/1.0\r\n\r\nGET /2 HTTP/1.0\r\n\r\n"
    assert [k for k, _ in parser.feed(0, requests)] == ["request", "request"]
    responses = b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nHello\n"
    got = parser.feed(1, responses)
    responses += b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nPeople"
    got += parser.feed(1, responses)
    assert [tx.response.body for _, tx in got] == [b"Hello", b"People"] and not parser.broken


def test_xff_extra_data_and_overwrite():
    import pytest

    from pynetstack.ids.eve import Xff, XffError, alert_event

    rules = 'alert http any any -> any any (content:"uid"; http_server_body; sid:1;)'
    d = detector(rules)
    cseq, sseq = handshake(d)
    request = b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.2.2.2, 10.3.3.3\r\n\r\n"
    d.inspect_bytes(tcp(C[0], C[1], S[0], S[1], ACK | PSH, cseq, sseq, request), 0)
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nuid"
    (alert,) = d.inspect_bytes(tcp(S[0], S[1], C[0], C[1], ACK | PSH, sseq, cseq + len(request), response), 0)
    assert alert_event(alert)["dest_ip"] == "10.0.0.1" and "xff" not in alert_event(alert)
    assert alert_event(alert, xff=Xff())["xff"] == "10.3.3.3"
    assert alert_event(alert, xff=Xff("overwrite", "forward"))["dest_ip"] == "10.2.2.2"
    assert alert_event(alert, xff=Xff("overwrite", "reverse", "x-real-ip"))["dest_ip"] == "10.0.0.1"
    with pytest.raises(XffError, match="deployment"):
        Xff("overwrite", "sideways")


def test_response_to_a_junk_request_is_http_still():
    rules = ('alert http any any -> any any (http.response_line; content:"HTTP/1.1 400"; sid:1;)\n'
             'alert http any any -> any any (file.data; content:"HTTP/1.1 400"; sid:2;)\n')
    d = detector(rules)
    cseq, sseq = handshake(d)
    junk = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03 not a request at all\r\n"
    assert d.inspect_bytes(tcp(C[0], C[1], S[0], S[1], ACK | PSH, cseq, sseq, junk), 0) == []
    response = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\n\r\noops!"
    a = d.inspect_bytes(tcp(S[0], S[1], C[0], C[1], ACK | PSH, sseq, cseq + len(junk), response), 0)
    assert sids(a) == [1]
    # a response that is not HTTP: the flow is not HTTP
    d = detector(rules)
    cseq, sseq = handshake(d)
    d.inspect_bytes(tcp(C[0], C[1], S[0], S[1], ACK | PSH, cseq, sseq, junk), 0)
    d.inspect_bytes(tcp(S[0], S[1], C[0], C[1], ACK | PSH, sseq, cseq + len(junk), b"SSH-2.0-x\r\n"), 0)
    assert next(iter(d.flows.flows.values())).http is False


def test_protocol_known_from_a_response_when_taken_up_midstream():
    # the first packet seen is the server's: its response tells the flow is HTTP
    d = detector('drop http any any -> any any (sid:1;)', midstream=True)
    response = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n"
    assert d.inspect_bytes(tcp(S[0], S[1], C[0], C[1], ACK | PSH, 5000, 900, response), 0) == []
    a = d.inspect_bytes(tcp(C[0], C[1], S[0], S[1], ACK | PSH, 900, 5000 + len(response), b"PRI * HTTP/2.0\r\n"), 0)
    assert sids(a) == [1]
    assert d.inspect_bytes(tcp(C[0], C[1], S[0], S[1], ACK | PSH, 916, 5000 + len(response), b"more"), 0) == []
