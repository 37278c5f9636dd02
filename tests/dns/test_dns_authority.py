"""Authoritative answers: RFC 1034 4.3.2, RFC 4592 wildcards, RFC 2308 negative answers."""
import pytest

from dnstest_helpers import zone_from_text
from pynetstack.dns.authority import Authority
from pynetstack.wire import dns as w


@pytest.fixture
def auth(example_zone):
    return Authority([example_zone], minimal_responses=True)


def rrs(section, rtype=None):
    return [(rr.name, w.type_name(rr.rtype), rr.data.to_text()) for rr in section
            if rtype is None or rr.rtype == rtype]


def test_exact_match(auth):
    a = auth.lookup("www.example.test.", w.A)
    assert a.rcode == w.NOERROR and a.aa
    assert rrs(a.answer) == [("www.example.test.", "A", "192.0.2.10"), ("www.example.test.", "A", "192.0.2.11")]
    assert a.authority == [] and a.additional == []


def test_case_of_the_question_is_kept(auth):
    a = auth.lookup("WwW.ExAmple.TEST.", w.AAAA)
    assert rrs(a.answer) == [("WwW.ExAmple.TEST.", "AAAA", "2001:db8::10")]


def test_cname_chain_inside_zone(auth):
    a = auth.lookup("chain.example.test.", w.A)
    assert rrs(a.answer) == [
        ("chain.example.test.", "CNAME", "alias.example.test."),
        ("alias.example.test.", "CNAME", "www.example.test."),
        ("www.example.test.", "A", "192.0.2.10"), ("www.example.test.", "A", "192.0.2.11")]
    assert a.aa and a.rcode == w.NOERROR


def test_cname_query_type_returns_the_cname_only(auth):
    a = auth.lookup("alias.example.test.", w.CNAME)
    assert rrs(a.answer) == [("alias.example.test.", "CNAME", "www.example.test.")]


def test_cname_leaving_the_zone_stops(auth):
    a = auth.lookup("outside.example.test.", w.A)
    assert rrs(a.answer) == [("outside.example.test.", "CNAME", "www.other.test.")]
    assert a.rcode == w.NOERROR and a.aa and a.authority == []


def test_cname_loop_terminates(auth):
    a = auth.lookup("loop1.example.test.", w.A)
    assert [r[2] for r in rrs(a.answer)] == ["loop2.example.test.", "loop1.example.test."]


def test_cname_to_missing_name_gives_nxdomain_with_chain():
    zone = zone_from_text("$TTL 60\n@ SOA ns admin 1 2 3 4 30\n@ NS ns\nns A 192.0.2.1\n"
                          "a CNAME gone\n", "c.test.")
    a = Authority([zone]).lookup("a.c.test.", w.A)
    assert a.rcode == w.NXDOMAIN and rrs(a.answer) == [("a.c.test.", "CNAME", "gone.c.test.")]
    assert rrs(a.authority, w.SOA)


def test_nxdomain_has_soa_with_negative_ttl(auth):
    a = auth.lookup("nope.example.test.", w.A)
    assert a.rcode == w.NXDOMAIN and a.aa and a.answer == []
    assert [(rr.name, rr.rtype, rr.ttl) for rr in a.authority] == [("example.test.", w.SOA, 300)]


def test_nodata_has_soa(auth):
    a = auth.lookup("www.example.test.", w.MX)
    assert a.rcode == w.NOERROR and a.answer == [] and a.aa
    assert rrs(a.authority)[0][:2] == ("example.test.", "SOA")


@pytest.mark.parametrize("name", ["ent.sub.example.test.", "sub.example.test."])
def test_empty_non_terminal_is_nodata_not_nxdomain(auth, name):
    a = auth.lookup(name, w.A)
    assert a.rcode == w.NOERROR and a.answer == [] and rrs(a.authority, w.SOA)


@pytest.mark.parametrize("name", ["a.wild.example.test.", "x.y.wild.example.test."])
def test_wildcard_synthesis_uses_the_query_name(auth, name):
    a = auth.lookup(name, w.A)
    assert rrs(a.answer) == [(name, "A", "192.0.2.99")]
    assert a.aa and a.rcode == w.NOERROR


def test_wildcard_nodata(auth):
    a = auth.lookup("a.wild.example.test.", w.MX)
    assert a.rcode == w.NOERROR and a.answer == [] and rrs(a.authority, w.SOA)


def test_existing_name_blocks_wildcard(auth):
    assert rrs(auth.lookup("host.wild.example.test.", w.A).answer)[0][2] == "192.0.2.98"
    nodata = auth.lookup("host.wild.example.test.", w.TXT)
    assert nodata.rcode == w.NOERROR and nodata.answer == []
    # RFC 4592 2.2.1: the closest encloser of sub.host.wild is host.wild, which has no '*' child
    assert auth.lookup("sub.host.wild.example.test.", w.A).rcode == w.NXDOMAIN
    # the wildcard's parent is an empty non-terminal: NODATA
    assert auth.lookup("wild.example.test.", w.A).rcode == w.NOERROR


def test_wildcard_cname_is_followed(auth):
    a = auth.lookup("foo.cnw.example.test.", w.A)
    assert rrs(a.answer)[0] == ("foo.cnw.example.test.", "CNAME", "www.example.test.")
    assert len(a.answer) == 3


def test_delegation_gives_referral_with_glue(auth):
    for name, qtype in [("a.child.example.test.", w.A), ("child.example.test.", w.NS),
                        ("deep.x.child.example.test.", w.MX)]:
        a = auth.lookup(name, qtype)
        assert not a.aa and a.rcode == w.NOERROR and a.answer == []
        assert sorted(r[2] for r in rrs(a.authority, w.NS)) == ["ns.child.example.test.",
                                                                   "ns.elsewhere.test."]
        assert rrs(a.additional) == [("ns.child.example.test.", "A", "192.0.2.53")]


def test_glue_below_the_cut_is_not_answered_authoritatively(auth):
    a = auth.lookup("ns.child.example.test.", w.A)
    assert not a.aa and a.answer == []


def test_additional_section_for_mx_and_srv(auth):
    mx = auth.lookup("example.test.", w.MX)
    assert sorted(r[2] for r in rrs(mx.answer)) == ["10 mail.example.test.", "20 mail2.other.test."]
    assert rrs(mx.additional) == [("mail.example.test.", "A", "192.0.2.25")]
    srv = auth.lookup("_sip._udp.example.test.", w.SRV)
    assert rrs(srv.additional) == [("sip.example.test.", "A", "192.0.2.50")]


def test_any_returns_every_rrset(auth):
    a = auth.lookup("www.example.test.", w.ANY)
    assert sorted({r[1] for r in rrs(a.answer)}) == ["A", "AAAA"]


def test_every_record_type(auth):
    cases = {("example.test.", w.SOA): "ns1.example.test. hostmaster.example.test. 2024010101 7200 900 1209600 300",
             ("example.test.", w.TXT): '"v=spf1 -all"',
             ("rev.example.test.", w.PTR): "www.example.test.",
             ("_sip._udp.example.test.", w.SRV): "10 60 5060 sip.example.test.",
             ("opaque.example.test.", 65280): "\\# 4 0a0b0c0d",
             ("ns2.example.test.", w.AAAA): "2001:db8::2"}
    for (name, qtype), text in cases.items():
        assert rrs(auth.lookup(name, qtype).answer)[0][2] == text


def test_outside_every_zone_is_none(auth):
    assert auth.lookup("www.other.test.", w.A) is None
    assert auth.lookup(".", w.NS) is None


def test_longest_zone_wins_and_nonminimal_mode(example_zone):
    child = zone_from_text("$TTL 60\n@ SOA ns admin 1 2 3 4 5\n@ NS ns\nns A 192.0.2.53\nhost A 192.0.2.54\n",
                           "child.example.test.")
    auth = Authority([example_zone, child])  # NSD's full responses are the default
    a = auth.lookup("host.child.example.test.", w.A)
    assert a.aa and rrs(a.answer) == [("host.child.example.test.", "A", "192.0.2.54")]
    assert rrs(a.authority) == [("child.example.test.", "NS", "ns.child.example.test.")]
    assert rrs(a.additional) == [("ns.child.example.test.", "A", "192.0.2.53")]
    with pytest.raises(ValueError):
        auth.add_zone(child)


def test_positive_answers_carry_the_ns_set_and_addresses_by_default(example_zone):
    """As NSD: the zone's NS set in authority, the in-zone servers' addresses in additional;
    nothing repeated from the answer; none of it on negative answers or referrals."""
    auth = Authority([example_zone])
    a = auth.lookup("www.example.test.", w.A)
    assert rrs(a.authority) == [("example.test.", "NS", "ns1.example.test."), ("example.test.", "NS", "ns2.example.test.")]
    assert rrs(a.additional) == [("ns1.example.test.", "A", "192.0.2.1"), ("ns2.example.test.", "A", "192.0.2.2"),
                                 ("ns2.example.test.", "AAAA", "2001:db8::2")]
    a = auth.lookup("ns1.example.test.", w.A)
    assert rrs(a.additional) == [("ns2.example.test.", "A", "192.0.2.2"), ("ns2.example.test.", "AAAA", "2001:db8::2")]
    a = auth.lookup("example.test.", w.NS)
    assert a.authority == [] and len(a.additional) == 3
    assert rrs(auth.lookup("nope.example.test.", w.A).authority, "NS") == []
    assert rrs(auth.lookup("host.child.example.test.", w.A).authority) == [
        ("child.example.test.", "NS", "ns.child.example.test."), ("child.example.test.", "NS", "ns.elsewhere.test.")]
    minimal = Authority([example_zone], minimal_responses=True).lookup("www.example.test.", w.A)
    assert minimal.authority == [] and minimal.additional == []
