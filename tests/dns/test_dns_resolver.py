"""The resolver against in-process authoritative servers on a fake network with a virtual clock."""
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnstest_helpers import VirtualClock, VirtualNet, zone_from_text
from pynetstack.dns.cache import Cache
from pynetstack.dns.resolver import Resolver
from pynetstack.dns.server import DEFER, DnsServer
from pynetstack.wire import dns as w

SOA = "@ SOA ns admin 1 3600 600 86400 60\n"
ZONES = {
    ".": (["10.0.0.1", "10.0.0.11"], SOA + """@ NS a.root.lab.
@ NS b.root.lab.
a.root.lab. A 10.0.0.1
b.root.lab. A 10.0.0.11
test. NS ns.test.
ns.test. A 10.0.0.2
other. NS ns.other.
ns.other. A 10.0.0.4
"""),
    "test.": (["10.0.0.2"], SOA + """@ NS ns
ns A 10.0.0.2
example NS ns1.example
example NS ns2.example
ns1.example A 10.0.0.3
ns2.example A 10.0.0.13
glueless NS ns.other.
"""),
    "example.test.": (["10.0.0.3", "10.0.0.13"], SOA + """@ NS ns1
@ NS ns2
@ NS ns3.other.
ns1 120 A 10.0.0.3
ns2 A 10.0.0.13
loop1 CNAME loop2
loop2 CNAME loop1
xloop CNAME xloop.other.
www A 192.0.2.10
www AAAA 2001:db8::10
alias CNAME www.other.
inzone CNAME www
*.wild A 192.0.2.99
big TXT """ + " ".join(['"' + c * 200 + '"' for c in "abcdefgh"]) + "\n"),
    "other.": (["10.0.0.4"], SOA + "@ NS ns\nns A 10.0.0.4\nns3 A 10.0.0.3\nwww A 192.0.2.40\n"
                            "xloop CNAME xloop.example.test.\nhost A 192.0.2.41\n"),
    "glueless.test.": (["10.0.0.4"], SOA + "@ NS ns.other.\nhost A 192.0.2.60\n"),
}


class FakeNet(VirtualNet):
    """The lab's servers at their addresses, on a virtual clock (see dnstest_helpers.VirtualNet)."""

    def __init__(self, clock):
        super().__init__(clock)
        zones_at = {}
        for origin, (addresses, text) in ZONES.items():
            zone = zone_from_text("$TTL 300\n" + text, origin)
            for address in addresses:
                zones_at.setdefault(address, []).append(zone)
        for address, zones in zones_at.items():
            self.servers[address] = DnsServer(zones)


@pytest.fixture
def net():
    return FakeNet(VirtualClock())


def make_resolver(net, **kw):
    kw.setdefault("root_hints", ["a.root.lab.=10.0.0.1"])
    return Resolver(rng=random.Random(7), **kw)


def texts(result):
    return [(rr.name, w.type_name(rr.rtype), rr.data.to_text()) for rr in result.answers]


def test_iterative_resolution_with_priming(net):
    r = make_resolver(net)
    result = net.resolve(r, "www.example.test", "A")
    assert result.rcode == w.NOERROR and result.values() == ["192.0.2.10"]
    first = net.log[0][2]
    assert first.question.name == "." and first.question.rtype == w.NS  # priming
    assert all(not q.rd for _, _, q in net.log) and all(q.edns is not None for _, _, q in net.log)
    servers = [a for a, _, _ in net.log]
    assert "10.0.0.2" in servers and ("10.0.0.3" in servers or "10.0.0.13" in servers)


def test_second_lookup_from_cache_with_ttl_countdown(net):
    r = make_resolver(net)
    net.resolve(r, "www.example.test", "A")
    before = len(net.log)
    net.clock.advance(100)
    again = net.resolve(r, "www.example.test", "A")
    assert len(net.log) == before
    assert again.answers[0].ttl == 200
    assert r.cache.stats.hits >= 1


def test_cname_across_zones(net):
    result = net.resolve(make_resolver(net), "alias.example.test", "A")
    assert texts(result) == [("alias.example.test.", "CNAME", "www.other."),
                             ("www.other.", "A", "192.0.2.40")]


def test_cname_inside_zone_in_one_reply(net):
    r = make_resolver(net)
    result = net.resolve(r, "inzone.example.test", "AAAA")
    assert texts(result)[-1] == ("www.example.test.", "AAAA", "2001:db8::10")


def test_glueless_delegation(net):
    result = net.resolve(make_resolver(net), "host.glueless.test", "A")
    assert result.values() == ["192.0.2.60"]


def test_nxdomain_and_negative_cache(net):
    r = make_resolver(net)
    result = net.resolve(r, "nope.example.test", "A")
    assert result.rcode == w.NXDOMAIN and result.authority[0].rtype == w.SOA
    count = len(net.log)
    assert net.resolve(r, "nope.example.test", "MX").rcode == w.NXDOMAIN
    assert len(net.log) == count
    net.clock.advance(61)  # SOA minimum is 60
    assert net.resolve(r, "nope.example.test", "A").rcode == w.NXDOMAIN
    assert len(net.log) > count


def test_nodata(net):
    r = make_resolver(net)
    result = net.resolve(r, "www.example.test", "MX")
    assert result.rcode == w.NOERROR and result.answers == [] and result.authority[0].rtype == w.SOA
    count = len(net.log)
    net.resolve(r, "www.example.test", "MX")
    assert len(net.log) == count


def test_truncated_reply_is_retried_over_tcp(net):
    r = make_resolver(net)
    # both servers of example.test truncate the 1.6 kB answer at 1232 bytes over UDP
    result = net.resolve(r, "big.example.test", "TXT")
    assert len(result.answers) == 1 and len(result.answers[0].data.strings) == 8
    assert any(tcp for _, tcp, q in net.log if q.question.name == "big.example.test.")


def test_out_of_bailiwick_glue_and_answers_are_ignored(net):
    poison_a = w.Record("www.other.", w.A, w.IN, 9999, w.ARdata("203.0.113.66"))

    def poison(reply):
        m = w.Message.decode(reply)
        m.additional.append(poison_a)
        m.answer.append(poison_a) if m.answer else None
        return m.encode()

    net.tamper["10.0.0.2"] = poison   # test. server: referral with glue for other.
    net.tamper["10.0.0.3"] = poison
    net.tamper["10.0.0.13"] = poison
    r = make_resolver(net)
    assert net.resolve(r, "www.example.test", "A").values() == ["192.0.2.10"]
    assert r.cache.get("www.other.", w.A, net.clock()) is None
    assert net.resolve(r, "www.other", "A").values() == ["192.0.2.40"]


def test_timeout_moves_to_another_server_and_is_remembered(net):
    net.dead.add("10.0.0.3")
    r = make_resolver(net)
    r.srtt["10.0.0.13"] = 0.5  # looks slower than an unmeasured server, so the dead one goes first
    for i in range(6):
        assert net.resolve(r, f"h{i}.wild.example.test", "A").values() == ["192.0.2.99"]
    dead_tries = len(net.asked(address="10.0.0.3"))
    assert dead_tries == 1
    assert r.srtt["10.0.0.3"] > r.srtt["10.0.0.13"]


def test_fastest_server_is_preferred(net):
    net.delay["10.0.0.3"], net.delay["10.0.0.13"] = 0.200, 0.005
    r = make_resolver(net)
    for i in range(30):
        net.resolve(r, f"n{i}.wild.example.test", "A")
    slow, fast = len(net.asked(address="10.0.0.3")), len(net.asked(address="10.0.0.13"))
    assert fast >= 25 and slow <= 5


def test_root_hint_fallback_when_first_hint_is_dead(net):
    net.dead.add("10.0.0.1")
    r = make_resolver(net, root_hints=["a.root.lab.=10.0.0.1", "b.root.lab.=10.0.0.11"])
    assert net.resolve(r, "www.other", "A").values() == ["192.0.2.40"]


def test_all_servers_dead_is_servfail(net):
    net.dead.update(["10.0.0.3", "10.0.0.13"])
    assert net.resolve(make_resolver(net), "www.example.test", "A").rcode == w.SERVFAIL


def test_ids_random_and_wrong_id_rejected(net):
    r = make_resolver(net)
    net.resolve(r, "www.example.test", "A")
    ids = [q.id for _, _, q in net.log]
    assert len(set(ids)) == len(ids)

    def wrong_id(reply):
        return bytes([reply[0] ^ 0xFF]) + reply[1:]

    net2 = FakeNet(VirtualClock())
    net2.tamper["10.0.0.3"] = wrong_id
    net2.tamper["10.0.0.13"] = wrong_id
    assert net2.resolve(make_resolver(net2), "www.example.test", "A").rcode == w.SERVFAIL


def test_forwarding_mode(net):
    upstream = DnsServer([], resolver=make_resolver(net), recursion=True)
    net.servers["10.0.0.53"] = upstream
    fwd = Resolver(forwarders=["10.0.0.53"], rng=random.Random(1))
    assert net.resolve(fwd, "alias.example.test", "A").values() == ["www.other.", "192.0.2.40"]
    to_forwarder = net.asked(address="10.0.0.53")
    assert to_forwarder and all(q.rd for q in to_forwarder)
    count = len(net.log)
    net.resolve(fwd, "alias.example.test", "A")
    assert len(net.log) == count
    assert net.resolve(fwd, "nope.example.test", "A").rcode == w.NXDOMAIN


def test_recursive_server_sets_ra(net):
    server = DnsServer([], resolver=make_resolver(net, cache=Cache(100)), recursion=True)
    reply = w.Message.decode(net.ask(server, w.make_query("www.example.test.", w.A, id=5)))
    assert reply.ra and reply.rd and not reply.aa and reply.answer[0].data.address == "192.0.2.10"
    assert reply.id == 5
    refused = w.Message.decode(server.handle(w.make_query("www.example.test.", w.A, rd=False), "udp", 0.0))
    assert refused.rcode == w.REFUSED and refused.ra


def test_zone_whose_glue_expired_before_its_ns_set_still_resolves():
    """Glue (parent TTL 3600) expiring before the child's own NS set (86400) must send the
    resolver back to the parent for fresh addresses, not into SERVFAIL for a day."""
    soa = "@ SOA ns admin 1 3600 600 86400 60\n"
    root = zone_from_text("$TTL 3600\n" + soa + "@ NS a.root.lab.\na.root.lab. A 10.0.0.1\n"
                          "test. NS ns.test.\nns.test. A 10.0.0.2\n", ".")
    test = zone_from_text("$TTL 300\n" + soa + "@ 86400 NS ns\nns 86400 A 10.0.0.2\nwww A 192.0.2.1\n", "test.")
    net = VirtualNet(VirtualClock(), {"10.0.0.1": DnsServer([root]), "10.0.0.2": DnsServer([test])})
    r = Resolver(root_hints=["10.0.0.1"])
    assert net.resolve(r, "test.", "NS").rcode == w.NOERROR
    assert net.resolve(r, "www.test.", "A").values() == ["192.0.2.1"]
    net.clock.advance(3601)
    assert net.resolve(r, "www.test.", "A").values() == ["192.0.2.1"]


def test_cached_answers_do_not_wait_for_resolution():
    """A server asked for a name the cache holds answers at once, without the resolver."""
    soa = "@ SOA ns admin 1 3600 600 86400 60\n"
    root = zone_from_text("$TTL 3600\n" + soa + "@ NS a.root.lab.\na.root.lab. A 10.0.0.1\nx. A 192.0.2.9\n", ".")
    net = VirtualNet(VirtualClock(), {"10.0.0.1": DnsServer([root])})
    server = DnsServer([], resolver=Resolver(root_hints=["10.0.0.1"]), recursion=True)
    query = w.make_query("x.", w.A)
    assert server.handle(query, "udp", net.clock()) is DEFER
    assert w.Message.decode(net.ask(server, query)).answer[0].data.address == "192.0.2.9"
    again = w.make_query("x.", w.A, id=77)
    reply = server.handle(again, "udp", net.clock() + 5)
    assert reply is not DEFER and w.Message.decode(reply).answer[0].data.address == "192.0.2.9"


# --- RFC 2181 5.4.1, CNAME loops, DNAME, retries and concurrency, all on the virtual clock -------


def test_referral_ns_set_and_glue_never_answer_a_client(net):
    """The parent's referral says example.test has ns1 and ns2 (glue TTL 300); the child says
    ns1, ns2 and ns3.other. (ns1 with TTL 120). Clients get the child's data."""
    r = make_resolver(net)
    net.resolve(r, "www.example.test", "A")       # caches the referral and its glue
    before = len(net.asked(name="example.test."))
    ns = net.resolve(r, "example.test", "NS")
    assert sorted(ns.values()) == ["ns1.example.test.", "ns2.example.test.", "ns3.other."]
    assert len(net.asked(name="example.test.")) == before + 1   # asked the child itself
    glue_asked = len(net.asked(name="ns1.example.test."))
    a = net.resolve(r, "ns1.example.test", "A")
    assert a.values() == ["10.0.0.3"] and a.answers[0].ttl == 120  # the child's TTL, not the glue's 300
    assert len(net.asked(name="ns1.example.test.")) == glue_asked + 1
    again = net.resolve(r, "example.test", "NS")   # now from the cache, the child's set still
    assert sorted(again.values()) == sorted(ns.values())
    assert len(net.asked(name="example.test.")) == before + 1


def test_cname_loop_is_servfail_without_repeated_records(net):
    r = make_resolver(net)
    inside = net.resolve(r, "loop1.example.test", "A")
    assert inside.rcode == w.SERVFAIL and inside.answers == []
    across = net.resolve(r, "xloop.example.test", "A")      # example.test -> other. -> example.test
    assert across.rcode == w.SERVFAIL and across.answers == []
    assert net.resolve(r, "loop2.example.test", "A").rcode == w.SERVFAIL   # from the cache too
    chain = net.resolve(r, "alias.example.test", "A")
    keys = [(rr.name.lower(), rr.rtype, rr.data) for rr in chain.answers]
    assert len(keys) == len(set(keys))


def _dname_rdata(target):
    writer = w.Writer()
    writer.name(target, compress=False)
    return w.UnknownRdata(39, bytes(writer.buf))


class DnameServer:
    """example.test's servers, plus a DNAME dn.example.test. -> other. as NSD answers it."""

    def __init__(self, inner, with_cname=True):
        self.inner, self.with_cname = inner, with_cname

    def handle(self, wire, transport, now, deliver=None):
        q = w.Message.decode(wire)
        name = q.question.name
        if not name.lower().endswith(".dn.example.test."):
            return self.inner.handle(wire, transport, now, deliver)
        dname = w.Record("dn.example.test.", 39, w.IN, 200, _dname_rdata("other."))
        answer = [dname]
        if self.with_cname:
            target = name[:-len("dn.example.test.")] + "other."
            answer.append(w.Record(name, w.CNAME, w.IN, 200, w.CNAMERdata(target)))
        return w.Message(id=q.id, qr=True, aa=True, questions=q.questions, answer=answer,
                         edns=w.Edns(1232)).encode()


@pytest.mark.parametrize("with_cname", [True, False], ids=["cname-given", "cname-synthesised"])
def test_dname_is_passed_on_with_its_cname(net, with_cname):
    for address in ("10.0.0.3", "10.0.0.13"):
        net.servers[address] = DnameServer(net.servers[address], with_cname)
    r = make_resolver(net)
    result = net.resolve(r, "host.dn.example.test", "A")
    assert texts(result) == [("dn.example.test.", "TYPE39", "\\# 7 056f7468657200"),
                             ("host.dn.example.test.", "CNAME", "host.other."),
                             ("host.other.", "A", "192.0.2.41")]
    count = len(net.log)
    cached = net.resolve(r, "host.dn.example.test", "A")
    assert len(net.log) == count and [t[1] for t in texts(cached)] == ["TYPE39", "CNAME", "A"]


def test_lost_query_is_retried_after_the_timeout(net):
    r = make_resolver(net, timeout=1.5)
    net.resolve(r, "www.other", "A")
    net.drop_first["10.0.0.4"] = 1     # other. has one server: the retry goes to it again
    start = net.clock()
    result = net.resolve(r, "host.other", "A")
    assert result.values() == ["192.0.2.41"]
    assert 1.5 <= net.clock() - start < 1.6             # one time-out, then the answer
    assert len(net.asked(name="host.other.", address="10.0.0.4")) == 2
    assert r.stats["timeouts"] == 1


def test_dead_zone_gives_servfail_after_bounded_retries(net):
    net.dead.add("10.0.0.4")
    r = make_resolver(net, timeout=1.0)
    net.resolve(r, "www.example.test", "A")
    start = net.clock()
    assert net.resolve(r, "www.other", "A").rcode == w.SERVFAIL
    tries = net.asked(name="www.other.", address="10.0.0.4")
    assert len(tries) == 4                               # SERVERS_PER_STEP attempts, backing off
    assert net.clock() - start == pytest.approx(1 + 2 + 4 + 8, abs=0.1)
    assert r.next_deadline() is None and not r.active


def test_ttl_expiry_on_the_virtual_clock(net):
    r = make_resolver(net)

    def asked_child():
        return sum(len(net.asked(name="www.example.test.", address=a)) for a in ("10.0.0.3", "10.0.0.13"))
    net.resolve(r, "www.example.test", "A")
    assert asked_child() == 1
    net.clock.advance(299)
    assert net.resolve(r, "www.example.test", "A").answers[0].ttl == 1
    assert asked_child() == 1
    net.clock.advance(1)   # every record of the lab has a TTL of 300: the walk starts again
    assert net.resolve(r, "www.example.test", "A").answers[0].ttl == 300
    assert asked_child() == 2


def test_concurrent_resolutions_and_one_query_for_the_same_question(net):
    r = make_resolver(net)
    net.resolve(r, "www.example.test", "A")
    got = []
    for name in ("a.wild.example.test.", "b.wild.example.test.", "a.wild.example.test.", "www.other."):
        r.start(name, w.A, net.clock(), got.append)
    assert len(r.active) == 3 and r.stats["joined"] == 1
    net.pump(r, lambda: len(got) == 4)
    assert sorted(x.values()[0] for x in got) == ["192.0.2.40", "192.0.2.99", "192.0.2.99", "192.0.2.99"]
    assert len(net.asked(name="a.wild.example.test.")) == 1


def test_too_many_resolutions_are_refused(net):
    r = make_resolver(net, max_resolutions=2)
    got = []
    assert r.start("a.example.test.", w.A, 0.0, got.append) is not None
    assert r.start("b.example.test.", w.A, 0.0, got.append) is not None
    assert r.start("c.example.test.", w.A, 0.0, got.append) is None and r.stats["overload"] == 1


def test_a_resolution_that_needs_no_network_finishes_at_once(net):
    r = make_resolver(net)
    net.resolve(r, "www.example.test", "A")
    got = []
    r.start("www.example.test.", w.A, net.clock(), got.append)
    assert got and got[0].values() == ["192.0.2.10"] and not r.outgoing
    assert r.query_cached("www.example.test.", w.A, net.clock()).values() == ["192.0.2.10"]
    assert r.query_cached("nothing.example.test.", w.A, net.clock()) is None and not r.outgoing


def test_glueless_server_name_that_fails_moves_on_to_the_next(net):
    """glueless2.test. names two servers in other zones; the first one's zone never answers."""
    root = net.servers["10.0.0.1"].authority.zones["."]
    root.add(w.Record("dead.", w.NS, w.IN, 300, w.NSRdata("ns.dead.")))
    root.add(w.Record("ns.dead.", w.A, w.IN, 300, w.ARdata("10.0.0.99")))   # nobody there
    test_zone = net.servers["10.0.0.2"].authority.zones["test."]
    for target in ("ns.dead.", "ns.other."):
        test_zone.add(w.Record("glueless2.test.", w.NS, w.IN, 300, w.NSRdata(target)))
    for address in ("10.0.0.1", "10.0.0.2"):
        net.servers[address].forget()
    net.servers["10.0.0.4"].add_zone(zone_from_text("$TTL 300\n" + SOA + "@ NS ns.dead.\n@ NS ns.other.\n"
                                                    "host A 192.0.2.61\n", "glueless2.test."))
    r = make_resolver(net)
    assert net.resolve(r, "host.glueless2.test", "A").values() == ["192.0.2.61"]
    assert len(net.asked(address="10.0.0.99")) == 4


def test_timer_heap_stays_proportional_to_open_exchanges(net):
    r = make_resolver(net)
    for i in range(300):
        net.resolve(r, f"n{i}.wild.example.test", "A")
    assert r.open_exchanges == 0 and len(r._timers) <= 64 + 4


TRUTH = {("www.example.test.", w.A): ["192.0.2.10"], ("alias.example.test.", w.A): ["www.other.", "192.0.2.40"],
         ("host.glueless.test.", w.A): ["192.0.2.60"], ("x.wild.example.test.", w.A): ["192.0.2.99"],
         ("www.other.", w.A): ["192.0.2.40"], ("inzone.example.test.", w.AAAA): ["www.example.test.", "2001:db8::10"]}


@settings(max_examples=60, deadline=None)
@given(losses=st.lists(st.booleans(), max_size=40), delays=st.lists(st.floats(0.0005, 3.0), min_size=1, max_size=8),
       seed=st.integers(0, 2**16))
def test_any_loss_and_delay_gives_the_truth_or_servfail(losses, delays, seed):
    """Whatever is lost or late (later than the time-out too), several questions resolved at
    once each end with the authoritative data or SERVFAIL, no record twice, nothing left open."""
    net = FakeNet(VirtualClock())
    pattern = iter(losses)
    net.lose = lambda ex: next(pattern, False)
    for i, address in enumerate(sorted(net.servers)):
        net.delay[address] = delays[i % len(delays)]
    r = make_resolver(net, timeout=1.0)
    r.rng = random.Random(seed)
    got = {}
    for (name, rtype) in TRUTH:
        r.start(name, rtype, net.clock(), lambda result, key=(name, rtype): got.setdefault(key, result))
    net.pump(r, lambda: len(got) == len(TRUTH))
    assert len(got) == len(TRUTH)
    reliable = not any(losses) and max(delays) < 1.0
    for key, result in got.items():
        if result.rcode == w.SERVFAIL and not reliable:
            continue
        assert result.rcode == w.NOERROR and result.values() == TRUTH[key], (key, result)
        keys = [(rr.name.lower(), rr.rtype, rr.data) for rr in result.answers]
        assert len(keys) == len(set(keys))
    net.pump(r, lambda: False)   # late replies and time-outs of closed exchanges change nothing
    assert r.open_exchanges == 0 and r.next_deadline() is None and not r.active
