"""Conntrack's ICMP as Linux's nf_conntrack_proto_icmp: the tuple holds type, code and id; a
request opens an entry whose reply tuple has the answer's type; errors are RELATED to the
connection they quote; any other ICMP message is invalid.  Plus NAT of queries other than echo."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pynetstack.netfilter.conntrack import Conntrack, Timeouts
from pynetstack.netfilter.nat import Nat
from pynetstack.netfilter.types import CT_ESTABLISHED, CT_INVALID, CT_NEW, CT_RELATED, NatSpec
from pynetstack.wire.addr import ip_to_int
from pynetstack.wire.icmp import build_icmp
from pynetstack.wire.ipv4 import IPv4

from .test_conntrack import icmp_error, udp

C = ip_to_int("10.0.0.2")
S = ip_to_int("10.0.1.2")
X = ip_to_int("10.0.9.9")  # a third host
P = ip_to_int("203.0.113.1")  # the NAT's public address

# written out from RFC 792 / 950 (not taken from the code under test)
ANSWER = {8: 0, 13: 14, 15: 16, 17: 18}
ERRORS = (3, 4, 5, 11, 12)


def icmp(src, dst, type_, code=0, ident=7, seq=1, data=b"q" * 12):
    return IPv4.parse(IPv4(src, dst, 1, build_icmp(type_, code, (ident << 16) | seq, data)).build())


def ident_of(pkt) -> int:
    return (pkt.payload[4] << 8) | pkt.payload[5]


@pytest.mark.parametrize("request_type", sorted(ANSWER))
def test_each_query_type_pairs_with_its_answer(request_type):
    ct = Conntrack(timeouts=Timeouts.linux())
    e, d, s = ct.track(icmp(C, S, request_type, ident=300), 0.0)
    assert (d, s) == (0, CT_NEW)
    answer = ANSWER[request_type]
    assert e.original == (1, C, 300, S, request_type << 8)
    assert e.reply == (1, S, 300, C, answer << 8)
    assert ct.confirm(e, 0.0)
    assert ct.track(icmp(S, C, answer, ident=300), 0.1) == (e, 1, CT_ESTABLISHED)
    assert ct.format_entry(e, 0.1) == (
        f"icmp     1 30 src=10.0.0.2 dst=10.0.1.2 type={request_type} code=0 id=300 "
        f"src=10.0.1.2 dst=10.0.0.2 type={answer} code=0 id=300 mark=0 use=1")


def test_code_is_part_of_the_tuple():
    ct = Conntrack(timeouts=Timeouts.linux())
    e, _, s = ct.track(icmp(C, S, 8, code=1, ident=9), 0.0)
    ct.confirm(e, 0.0)
    assert s == CT_NEW and e.original[4] == (8 << 8) | 1 and e.reply[4] == (0 << 8) | 1
    assert "type=8 code=1 id=9 [UNREPLIED] src=10.0.1.2 dst=10.0.0.2 type=0 code=1 id=9" in ct.format_entry(e, 0.0)
    # Linux's echo reply copies the request's code; an answer with another code has no entry
    assert ct.track(icmp(S, C, 0, code=0, ident=9), 0.1)[2] == CT_INVALID
    assert ct.track(icmp(S, C, 0, code=1, ident=9), 0.2) == (e, 1, CT_ESTABLISHED)
    # a request with another code is another connection
    other, _, s = ct.track(icmp(C, S, 8, code=0, ident=9), 0.3)
    assert s == CT_NEW and other is not e


def test_type_tells_the_direction_not_the_id_alone():
    ct = Conntrack()
    e, _, _ = ct.track(icmp(C, S, 8, ident=5), 0.0)
    ct.confirm(e, 0.0)
    # the server pinging the client with the same id: a connection of its own
    back, d, s = ct.track(icmp(S, C, 8, ident=5), 0.1)
    assert (d, s) == (0, CT_NEW) and back is not e and back.original == (1, S, 5, C, 8 << 8)
    assert ct.confirm(back, 0.1) and len(ct) == 2
    # an answer travelling in the request's direction belongs to the other connection
    assert ct.track(icmp(C, S, 0, ident=5), 0.2) == (back, 1, CT_ESTABLISHED)
    assert ct.track(icmp(S, C, 0, ident=5), 0.3) == (e, 1, CT_ESTABLISHED)
    # an answer of the wrong type (timestamp reply to an echo) is nobody's
    assert ct.track(icmp(S, C, 14, ident=5), 0.4)[2] == CT_INVALID


@pytest.mark.parametrize("type_", [0, 14, 16, 18, 9, 10, 6, 19, 30, 42, 255])
def test_other_types_open_no_connection(type_):
    ct = Conntrack()
    before = ct.stats()["invalid"]
    assert ct.track(icmp(C, S, type_), 0.0) == (None, 0, CT_INVALID)
    assert ct.stats()["invalid"] == before + 1 and ct.stats()["new"] == 0 and not ct._unconfirmed


def test_short_icmp_is_invalid():
    ct = Conntrack()
    assert ct.track(IPv4(C, S, 1, b"\x08\x00\x00\x00\x00\x07"), 0.0)[2] == CT_INVALID


@pytest.mark.parametrize("error", ERRORS)
def test_every_error_type_is_related(error):
    ct = Conntrack()
    out = udp(C, S, 5000, 53)
    e, _, _ = ct.track(out, 0.0)
    ct.confirm(e, 0.0)
    assert ct.track(icmp_error(X, C, out, error, 0), 1.0) == (e, 1, CT_RELATED)
    back = udp(S, C, 53, 5000)
    assert ct.track(icmp_error(C, S, back, error, 0), 1.0) == (e, 0, CT_RELATED)


def test_error_must_go_to_the_quote_sender():
    ct = Conntrack()
    out = udp(C, S, 5000, 53)
    e, _, _ = ct.track(out, 0.0)
    ct.confirm(e, 0.0)
    # Linux: "outer daddr != inner": an error quoting C's datagram but aimed at a third host
    assert ct.track(icmp_error(S, X, out), 1.0)[2] == CT_INVALID
    assert ct.track(icmp_error(S, C, out), 1.0) == (e, 1, CT_RELATED)


@pytest.mark.parametrize("request_type", sorted(ANSWER))
def test_errors_about_queries_and_answers_are_related(request_type):
    ct = Conntrack()
    query = icmp(C, S, request_type, code=0, ident=77)
    e, _, _ = ct.track(query, 0.0)
    ct.confirm(e, 0.0)
    assert ct.track(icmp_error(X, C, query, 11, 0), 1.0) == (e, 1, CT_RELATED)
    answer = icmp(S, C, ANSWER[request_type], ident=77)
    assert ct.track(icmp_error(X, S, answer, 3, 1), 1.0) == (e, 0, CT_RELATED)
    # a quote of the same id but another type is not this connection's
    stray = icmp(C, S, 13 if request_type != 13 else 15, ident=77)
    assert ct.track(icmp_error(X, C, stray, 11, 0), 1.0)[2] == CT_INVALID


def _reference(first, second):
    """What Linux does with ``second`` after the request ``first`` was confirmed (brute force
    over the rules, not the code): the tuples as (src, dst, type, code, id)."""
    f_src, f_dst, f_type, f_code, f_id = first
    src, dst, type_, code, ident = second
    if (src, dst, type_, code, ident) == first:
        return 0, CT_NEW  # no reply yet: still new
    if (src, dst, type_, code, ident) == (f_dst, f_src, ANSWER[f_type], f_code, f_id):
        return 1, CT_ESTABLISHED
    if type_ in ANSWER:
        return 0, "another"  # a request of its own: a second connection
    return None, CT_INVALID


hosts = st.sampled_from([C, S])
types = st.sampled_from([0, 8, 13, 14, 15, 16, 17, 18, 9, 40])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(ANSWER)), st.integers(0, 2), st.integers(0, 3),
       st.tuples(hosts, types, st.integers(0, 2), st.integers(0, 3)))
def test_tuple_matching_against_a_brute_force_reference(f_type, f_code, f_id, second):
    ct = Conntrack()
    e, _, _ = ct.track(icmp(C, S, f_type, f_code, f_id), 0.0)
    ct.confirm(e, 0.0)
    src, type_, code, ident = second
    dst = S if src == C else C
    got_entry, got_dir, got_state = ct.track(icmp(src, dst, type_, code, ident), 1.0)
    want_dir, want_state = _reference((C, S, f_type, f_code, f_id), (src, dst, type_, code, ident))
    if want_state == "another":
        assert got_state == CT_NEW and got_entry is not e and got_dir == 0
    elif want_state == CT_INVALID:
        assert got_entry is None and got_state == CT_INVALID
    else:
        assert (got_entry, got_dir, got_state) == (e, want_dir, want_state)


def test_nat_maps_a_timestamp_query_id_and_keeps_type_and_code():
    ct = Conntrack(timeouts=Timeouts.linux())
    nat = Nat(ct, seed=3)
    masq = NatSpec("masquerade")
    taken = []
    for host in (C, ip_to_int("10.0.0.3")):  # the second host's id clashes: it gets another
        pkt = icmp(host, X, 13, code=0, ident=100)
        e, _, _ = ct.track(pkt, 0.0)
        assert nat.setup(e, masq, 0.0, iface_address=P)
        nat.translate(pkt, e, 0, "postrouting")
        assert ct.confirm(e, 0.0)
        assert pkt.src == P and pkt.payload[0] == 13 and e.reply == (1, X, ident_of(pkt), P, 14 << 8)
        taken.append((e, ident_of(pkt)))
    (first, first_id), (second, second_id) = taken
    assert first_id == 100 and second_id != 100
    answer = icmp(X, P, 14, ident=second_id)
    entry, direction, state = ct.track(answer, 0.1)
    assert (entry, direction, state) == (second, 1, CT_ESTABLISHED)
    nat.translate(answer, entry, direction, "prerouting")
    assert answer.dst == ip_to_int("10.0.0.3") and ident_of(answer) == 100 and answer.payload[0] == 14
    assert ct.format_entry(second, 0.1) == (
        f"icmp     1 30 src=10.0.0.3 dst=10.0.9.9 type=13 code=0 id=100 "
        f"src=10.0.9.9 dst=203.0.113.1 type=14 code=0 id={second_id} mark=0 use=1")
