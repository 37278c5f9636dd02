"""The recursive server on a stack, under Simulation: a client stack asks a resolver stack, which
walks root -> test. -> example.test. served by a third stack (one address per server), all on
the virtual clock: resolution, a lost datagram and its retry, TTL expiry and TCP after
truncation take milliseconds of real time, with no threads."""
import threading

import pytest

from dnstest_helpers import zone_from_text
from pynetstack.dns import resolver as resolver_module
from pynetstack.dns.resolver import Resolver
from pynetstack.dns.server import DnsServer
from pynetstack.dns.stackio import StackResolverIO, resolve_on_stack, serve_on_stack
from pynetstack.sim import Simulation
from pynetstack.wire import dns as w
from pynetstack.wire.addr import ip_to_int

SOA = "@ SOA ns admin 1 3600 600 86400 60\n"
ZONES = {
    "10.0.0.1": (".", "$TTL 3600\n" + SOA + "@ NS a.root.lab.\na.root.lab. A 10.0.0.1\n"
                 "test. NS ns.test.\nns.test. A 10.0.0.2\n"),
    "10.0.0.2": ("test.", "$TTL 3600\n" + SOA + "@ NS ns\nns A 10.0.0.2\nexample NS ns1.example\n"
                 "ns1.example A 10.0.0.3\n"),
    "10.0.0.3": ("example.test.", "$TTL 300\n" + SOA + "@ NS ns1\nns1 A 10.0.0.3\nwww A 192.0.2.10\nmail A 192.0.2.25\n"
                 "alias CNAME www\nbig TXT " + " ".join('"' + c * 200 + '"' for c in "abcdefgh") + "\n"),
}
CLIENT_PORT = 5555


class Lab:
    def __init__(self):
        # (the threads alive now, not their number: one left by an earlier test may end meanwhile)
        self.threads = set(threading.enumerate())
        self.sim = sim = Simulation()
        self.client, self.recursive, self.internet = sim.stack(), sim.stack(), sim.stack()
        sim.link(self.client, "10.1.0.2/24", self.recursive, "10.1.0.1/24")
        self.up, self.down = sim.link(self.recursive, "10.0.0.100/24", self.internet,
                                      [f"{a}/24" for a in ZONES], names=("eth1", "eth0"),
                                      faults_ab=dict(delay=0.001), faults_ba=dict(delay=0.001))
        self.servers = {}
        for address, (origin, text) in ZONES.items():
            self.servers[address] = DnsServer([zone_from_text(text, origin)])
            serve_on_stack(self.internet, self.servers[address], host=address)
        self.resolver = Resolver(root_hints=["a.root.lab.=10.0.0.1"], timeout=1.5)
        self.server = DnsServer([], resolver=self.resolver, recursion=True)
        serve_on_stack(self.recursive, self.server)
        self.replies = []
        self.client.udp.bind(CLIENT_PORT, lambda payload, *rest: self.replies.append((rest[-1], payload)))

    def ask(self, name, rtype=w.A, qid=1):
        self.replies.clear()
        with self.client.lock:
            self.client.udp.sendto(w.make_query(name, rtype, id=qid), CLIENT_PORT, ip_to_int("10.1.0.1"), 53,
                                   self.sim.now)
        self.asked_at = self.sim.now

    def answer(self, within=10.0):
        self.sim.run(within, until=lambda: self.replies)
        assert self.replies, "no answer"
        when, payload = self.replies[0]
        return when - self.asked_at, w.Message.decode(payload)

    def close(self):
        for stack in (self.client, self.recursive, self.internet):
            stack.close()


@pytest.fixture
def lab():
    lab = Lab()
    yield lab
    lab.close()


def test_recursion_through_the_stacks_on_the_virtual_clock(lab):
    lab.ask("www.example.test.")
    took, reply = lab.answer()
    assert reply.rcode == w.NOERROR and reply.ra and [rr.data.address for rr in reply.answer] == ["192.0.2.10"]
    assert took < 0.1                       # a handful of in-memory round trips, virtual time
    assert set(threading.enumerate()) - lab.threads == set()  # no worker threads
    assert not hasattr(resolver_module, "time")     # and no clock of its own
    io = lab.server.stack_io
    assert isinstance(io, StackResolverIO) and io in lab.recursive.host.hooks.functions
    assert io.counts["udp-sent"] >= 4 and not lab.recursive.udp.endpoints.keys() - {(0, 53)}
    lab.ask("alias.example.test.", qid=2)
    took, reply = lab.answer()
    assert [rr.rtype for rr in reply.answer] == [w.CNAME, w.A] and reply.id == 2


def test_a_lost_query_is_retried_after_the_timeout(lab):
    lab.ask("mail.example.test.")           # the way to example.test.'s server is known now
    lab.answer()
    lab.down.device.loss = 1.0              # the internet stack's answers are lost...
    lab.ask("www.example.test.", qid=3)
    lab.sim.run(1.0)
    assert not lab.replies
    lab.down.device.loss = 0.0              # ...until now: the retry at 1.5 s gets through
    took, reply = lab.answer()
    assert reply.answer and 1.5 <= took < 1.6
    assert lab.resolver.stats["timeouts"] == 1


def test_unreachable_servers_end_in_servfail(lab):
    for address in ZONES:  # the servers' MAC stays known: queries leave and are lost, no ICMP comes back
        lab.up.neighbours.static[ip_to_int(address)] = lab.down.mac
    lab.down.device.loss = 1.0
    lab.ask("www.example.test.")
    took, reply = lab.answer(within=60)
    # priming asks the one root hint once (1.5 s), then the root is tried 4 times, backing off
    assert reply.rcode == w.SERVFAIL and took == pytest.approx(1.5 + (1.5 + 3 + 6 + 12), abs=0.05)
    assert lab.resolver.next_deadline() is None
    assert not lab.recursive.udp.endpoints.keys() - {(0, 53)}  # every query port released


def test_servers_whose_next_hop_never_answers_arp_fail_sooner(lab):
    # ARP for the servers goes unanswered: after three requests (3 s) each waiting query's source,
    # the resolver itself, hears ICMP host unreachable, as from Linux, and moves on at once
    lab.down.device.loss = 1.0
    lab.ask("www.example.test.")
    took, reply = lab.answer(within=60)
    assert reply.rcode == w.SERVFAIL and took < 1.5 + (1.5 + 3 + 6 + 12) - 1
    assert lab.server.stack_io.counts["icmp-unreachable"] >= 2
    assert lab.resolver.next_deadline() is None
    assert not lab.recursive.udp.endpoints.keys() - {(0, 53)}


def test_ttl_expiry_sends_the_resolver_back_upstream(lab):
    child = lab.servers["10.0.0.3"].answered
    lab.ask("www.example.test.")
    lab.answer()
    asked = child["authoritative"] + child["memo"]
    lab.sim.run(299)
    lab.ask("www.example.test.", qid=4)
    _, reply = lab.answer()
    assert reply.answer[0].ttl == 1 and child["authoritative"] + child["memo"] == asked
    lab.sim.run(2)
    lab.ask("www.example.test.", qid=5)
    _, reply = lab.answer()
    assert reply.answer[0].ttl == 300 and child["authoritative"] + child["memo"] == asked + 1


def test_truncated_answer_is_fetched_over_the_stacks_tcp(lab):
    got = []
    resolve_on_stack(lab.recursive, "big.example.test.", w.TXT, got.append)
    lab.sim.run(5, until=lambda: got)
    assert got and got[0].rcode == w.NOERROR and len(got[0].answers[0].data.strings) == 8
    assert lab.server.stack_io.counts["tcp-sent"] == 1


def test_a_server_the_stack_cannot_reach_fails_at_once():
    """An IPv6 forwarder, or one without a route: SERVFAIL without waiting, the loop unharmed."""
    sim = Simulation()
    stack = sim.stack()
    sim.link(stack, "10.2.0.1/24", sim.stack(), "10.2.0.2/24")
    server = DnsServer([], resolver=Resolver(forwarders=["2001:db8::53", "192.0.2.53"]), recursion=True)
    serve_on_stack(stack, server)
    got = []
    resolve_on_stack(stack, "www.example.test.", w.A, got.append)
    assert got and got[0].rcode == w.SERVFAIL and sim.now == 1000.0
    assert server.stack_io.counts["send-failed"] == 4
    for s in sim.stacks:
        s.close()
