"""DnsServer.handle: the sans-I/O answer function (flags, errors, EDNS, truncation)."""
import os
import struct

import dns.message
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnstest_helpers import DATA
from pynetstack.dns.server import DnsServer, udp_handler
from pynetstack.dns.zone import load_zone
from pynetstack.wire import dns as w


@pytest.fixture
def server(example_zone):
    return DnsServer([example_zone])


def ask(server, name, qtype, transport="udp", edns=None, rd=False, qid=4242):
    data = server.handle(w.make_query(name, qtype, id=qid, rd=rd, edns=edns), transport, 0.0)
    return w.Message.decode(data)


def test_authoritative_answer_flags(server):
    r = ask(server, "www.example.test.", w.A, rd=True)
    assert r.qr and r.aa and r.rd and not r.ra and r.id == 4242
    assert r.rcode == w.NOERROR and len(r.answer) == 2
    assert r.questions == [w.Question("www.example.test.", w.A)]


def test_refused_outside_zones_without_recursion(server):
    r = ask(server, "www.other.test.", w.A, rd=True)
    assert r.rcode == w.REFUSED and not r.aa and not r.ra and r.answer == []


def test_edns_echo_and_badvers(server):
    assert ask(server, "www.example.test.", w.A).edns is None
    r = ask(server, "www.example.test.", w.A, edns=w.Edns(4096))
    assert r.edns is not None and r.edns.payload == 1232
    r = ask(server, "www.example.test.", w.A, edns=w.Edns(4096, version=1))
    assert r.rcode == w.BADVERS and r.edns is not None
    assert dns.message.from_wire(r.encode()).rcode() == 16


def test_truncation_at_512_without_edns_and_full_over_tcp(server):
    r = ask(server, "big.example.test.", w.TXT)
    assert r.tc and r.answer == [] and r.questions
    assert len(server.handle(w.make_query("big.example.test.", w.TXT), "udp", 0.0)) <= 512
    r = ask(server, "big.example.test.", w.TXT, transport="tcp")
    assert not r.tc and len(r.answer) == 6
    r = ask(server, "big.example.test.", w.TXT, edns=w.Edns(1232))
    assert not r.tc and len(r.answer) == 6


def test_truncation_respects_edns_size(server):
    r = ask(server, "big.example.test.", w.TXT, edns=w.Edns(600))
    assert r.tc
    r = ask(server, "big.example.test.", w.TXT, edns=w.Edns(100))  # below 512 counts as 512
    assert r.tc


def test_additional_dropped_before_truncating():
    from dnstest_helpers import zone_from_text
    lines = ["$TTL 60", "@ SOA ns admin 1 2 3 4 5", "@ NS ns", "ns A 192.0.2.1"]
    lines += [f"@ MX {i} mx{i}" for i in range(20)] + [f"mx{i} A 192.0.2.{i}" for i in range(20)]
    srv = DnsServer([zone_from_text("\n".join(lines) + "\n", "m.test.")], minimal_responses=True)
    r = ask(srv, "m.test.", w.MX)
    assert not r.tc and len(r.answer) == 20 and r.additional == []
    r = ask(srv, "m.test.", w.MX, transport="tcp")
    assert len(r.additional) == 20


def test_malformed_queries(server):
    assert server.handle(b"\x01\x02\x03", "udp", 0.0) is None
    hdr = struct.pack("!6H", 0xBEEF, 0x0100, 1, 0, 0, 0)
    reply = server.handle(hdr + b"\xc0\x0c\x00\x01\x00\x01", "udp", 0.0)
    r = w.Message.decode(reply)
    assert r.id == 0xBEEF and r.qr and r.rcode == w.FORMERR and r.rd and r.questions == []
    assert server.drops["dns-bad-pointer"] == 1


def test_responses_and_odd_queries(server):
    response = w.Message(id=1, qr=True, questions=[w.Question("www.example.test.", w.A)]).encode()
    assert server.handle(response, "udp", 0.0) is None
    notify = w.Message(id=2, opcode=4, questions=[w.Question("example.test.", w.SOA)]).encode()
    assert w.Message.decode(server.handle(notify, "udp", 0.0)).rcode == w.NOTIMP
    two = w.Message(id=3, questions=[w.Question("a.example.test.", w.A)] * 2).encode()
    assert w.Message.decode(server.handle(two, "udp", 0.0)).rcode == w.FORMERR
    none = w.Message(id=3).encode()
    assert w.Message.decode(server.handle(none, "udp", 0.0)).rcode == w.FORMERR
    axfr = w.make_query("example.test.", 252)
    assert w.Message.decode(server.handle(axfr, "tcp", 0.0)).rcode == w.REFUSED


def test_memoised_reply_keeps_the_new_id(server):
    first = server.handle(w.make_query("www.example.test.", w.A, id=1), "udp", 0.0)
    second = server.handle(w.make_query("www.example.test.", w.A, id=2), "udp", 0.0)
    assert first[2:] == second[2:] and second[:2] == b"\x00\x02"
    assert server.answered["memo"] == 1


def test_udp_handler_adapter(server):
    handler = udp_handler(server)
    reply = handler(w.make_query("mail.example.test.", w.A, id=9), ("127.0.0.1", 5555))
    assert w.Message.decode(reply).answer[0].data.address == "192.0.2.25"
    assert handler(b"junk", ("127.0.0.1", 5555)) is None


_ZONE = load_zone(os.path.join(DATA, "example.zone"))
_SEEDS = [w.make_query(n, t, id=1, edns=e) for n, t, e in [
    ("www.example.test.", w.A, None), ("big.example.test.", w.TXT, w.Edns(512)),
    ("a.wild.example.test.", w.ANY, None), ("x.child.example.test.", w.MX, w.Edns(4096))]]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_SEEDS), st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=5),
       st.sampled_from(["udp", "tcp"]))
def test_handle_never_raises_on_mutated_queries(seed, edits, transport):
    server = DnsServer([_ZONE])
    data = bytearray(seed)
    for pos, value in edits:
        if pos < len(data):
            data[pos] = value
    reply = server.handle(bytes(data), transport, 0.0)
    if reply is not None:
        w.Message.decode(reply)  # whatever we send is well formed
        assert transport == "tcp" or len(reply) <= 4096


def test_resolver_failure_becomes_servfail(example_zone):
    class Broken:
        now = 0.0

        def query_cached(self, name, rtype, now):
            return None

        def start(self, name, rtype, now, callback):
            raise RuntimeError("bug")

    server = DnsServer([example_zone], resolver=Broken(), recursion=True)
    reply = w.Message.decode(server.handle(w.make_query("www.other.test.", w.A), "udp", 0.0, print))
    assert reply.rcode == w.SERVFAIL and reply.ra and server.drops["resolver-error"] == 1
