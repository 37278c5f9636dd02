"""Recursive resolver: iterative from root hints (with priming), or forwarding to upstreams.

The resolver never opens a socket itself: it is given a transport with
``exchange(wire, server, tcp, timeout) -> bytes | None`` (see hostio.SocketTransport for host
sockets, tests use in-memory ones) and a clock. RFC 5452: every query has a random ID (the
socket transport also uses a random source port) and a reply must match ID, question and server.
"""
from __future__ import annotations

import random
import time

from ..wire import dns as w
from ..wire.errors import MalformedPacket
from .cache import RANK_ANSWER, RANK_AUTH_ANSWER, RANK_AUTHORITY, RANK_GLUE, Cache

MAX_CNAME_CHAIN = 12
MAX_REFERRALS = 24
MAX_QUERIES = 60          # upstream queries for one client question, glueless lookups included
MAX_DEPTH = 4             # nesting of name server address lookups
SERVERS_PER_STEP = 4      # servers tried for one zone before giving up on it
UNKNOWN_RTT = 0.05        # prior for a server never measured (a little jitter spreads the load)
MAX_RTT_ENTRIES = 4096


class Result:
    """What ``resolve`` returns: rcode, the answer records (CNAME chain first) and the authority."""

    __slots__ = ("rcode", "answers", "authority")

    def __init__(self, rcode=w.NOERROR, answers=None, authority=None):
        self.rcode = rcode
        self.answers = answers if answers is not None else []
        self.authority = authority if authority is not None else []

    def values(self, rtype: int | None = None):
        """The presentation text of each answer's data, e.g. ``["192.0.2.1"]``."""
        return [rr.data.to_text() for rr in self.answers if rtype is None or rr.rtype == rtype]

    def __repr__(self):
        return f"Result({w.RCODE_NAMES.get(self.rcode, self.rcode)}, {self.answers})"


class ResolutionFailed(Exception):
    pass


class _Budget:
    __slots__ = ("queries",)

    def __init__(self):
        self.queries = 0


class _NotCached(Exception):
    """query_cached: the answer needs the network."""


class Resolver:
    def __init__(self, root_hints=None, forwarders=None, cache: Cache | None = None,
                 transport=None, port: int = 53, timeout: float = 1.5, clock=time.monotonic,
                 rng: random.Random | None = None):
        self.hints = _parse_hints(root_hints or [])
        self.forwarders = [_parse_server(f, port) for f in (forwarders or [])]
        if not self.hints and not self.forwarders:
            raise ValueError("a resolver needs root_hints or forwarders")
        self.cache = cache if cache is not None else Cache()
        if transport is None:
            from .hostio import SocketTransport
            transport = SocketTransport()
        self.transport, self.port, self.timeout, self.clock = transport, port, timeout, clock
        self.rng = rng or random.SystemRandom()
        self.srtt = {}          # server address -> smoothed round-trip time, seconds
        self.queries_sent = 0

    # -- public ------------------------------------------------------------------------------

    def resolve(self, name: str, rtype="A") -> Result:
        """Resolve ``name`` (relative names are taken as absolute) and return the Result."""
        if not name.endswith("."):
            name += "."
        if isinstance(rtype, str):
            rtype = w.type_code(rtype)
        return self.query(name, rtype)

    def query(self, qname: str, qtype: int) -> Result:
        try:
            return self._resolve(qname, qtype, 0, _Budget())
        except ResolutionFailed:
            return Result(w.SERVFAIL)

    def query_cached(self, qname: str, qtype: int) -> Result | None:
        """The answer the cache alone gives (CNAMEs followed), or None when it takes the network:
        a server answers these at once instead of queueing them behind slow resolutions."""
        try:
            return self._resolve(qname, qtype, 0, _Budget(), cache_only=True)
        except _NotCached:
            return None

    # -- the loop over CNAMEs --------------------------------------------------------------

    def _resolve(self, qname: str, qtype: int, depth: int, budget: _Budget, cache_only: bool = False) -> Result:
        chain, seen = [], set()
        for _ in range(MAX_CNAME_CHAIN):
            if qname.lower() in seen:
                return Result(w.NOERROR, chain)  # CNAME loop: give the client what there is
            seen.add(qname.lower())
            result = self._from_cache(qname, qtype)
            if result is None:
                if cache_only:
                    raise _NotCached()
                if self.forwarders:
                    result = self._forward(qname, qtype, budget)
                else:
                    result = self._iterate(qname, qtype, depth, budget)
            chain.extend(result.answers)
            last = result.answers[-1] if result.answers else None
            if (result.rcode == w.NOERROR and last is not None and last.rtype == w.CNAME
                    and qtype not in (w.CNAME, w.ANY) and not _answers(result.answers, qtype)):
                qname = last.data.target
                continue
            return Result(result.rcode, chain, result.authority)
        return Result(w.SERVFAIL, chain)

    def _from_cache(self, qname: str, qtype: int) -> Result | None:
        now = self.clock()
        hit = self.cache.get(qname, qtype, now)
        if hit is None and qtype != w.CNAME:
            hit = self.cache.get(qname, w.CNAME, now, count=False)
        if hit is None:
            return None
        if hit.negative:
            return Result(hit.rcode, [], hit.records)
        return Result(w.NOERROR, hit.records)

    # -- iterative resolution ---------------------------------------------------------------

    def _iterate(self, qname: str, qtype: int, depth: int, budget: _Budget) -> Result:
        zone = self._closest_zone(qname)
        for _ in range(MAX_REFERRALS):
            reply = None
            servers = self._servers_for(zone, depth, budget)
            while not servers and zone != ".":
                # The NS set outlived its glue: ask the parent again, whose referral brings it back.
                zone = w.parent_name(zone)
                servers = self._servers_for(zone, depth, budget)
            for server in servers[:SERVERS_PER_STEP]:
                reply = self._ask(server, qname, qtype, rd=False, budget=budget)
                if reply is not None and _usable(reply, zone, qname):
                    break
                reply = None
            if reply is None:
                raise ResolutionFailed(f"no server for {zone} answered {qname}")
            child = _referral_zone(reply, zone, qname)
            if child is None:
                return self._take_answer(reply, zone, qname, qtype)
            self._cache_referral(reply, zone, child)
            zone = child
        raise ResolutionFailed("too many referrals")

    def _closest_zone(self, qname: str) -> str:
        name, now = qname.lower(), self.clock()
        while name != ".":
            hit = self.cache.get(name, w.NS, now, count=False)
            if hit is not None and not hit.negative:
                return name
            name = w.parent_name(name)
        return "."

    def _servers_for(self, zone: str, depth: int, budget: _Budget) -> list:
        """Addresses of the zone's name servers, fastest first."""
        now = self.clock()
        if zone == ".":
            self._prime(budget)
        ns = self.cache.get(zone, w.NS, now, count=False)
        names = [rr.data.target for rr in ns.records] if ns is not None and not ns.negative else []
        addresses = []
        for ns_name in names:
            for rtype in (w.A,):
                hit = self.cache.get(ns_name, rtype, now, count=False)
                if hit is not None and not hit.negative:
                    addresses.extend(rr.data.address for rr in hit.records)
        if not addresses and zone == ".":
            addresses = [addr for _, addr in self.hints]
        if not addresses and depth < MAX_DEPTH:
            for ns_name in names:  # glueless delegation: look the server's address up
                if w.is_subdomain(ns_name, zone):
                    continue  # would need this very zone; no glue means it is lame
                try:
                    result = self._resolve(ns_name, w.A, depth + 1, budget)
                except ResolutionFailed:
                    continue
                addresses.extend(rr.data.address for rr in result.answers if rr.rtype == w.A)
                if addresses:
                    break
        unique = list(dict.fromkeys(addresses))
        return sorted(unique, key=self._expected_rtt)

    def _expected_rtt(self, address: str) -> float:
        known = self.srtt.get(address)
        return known if known is not None else UNKNOWN_RTT * (1 + self.rng.random())

    def _prime(self, budget: _Budget) -> None:
        """RFC 8109: learn the root servers from the hints once, then keep them in the cache."""
        if self.cache.get(".", w.NS, self.clock(), count=False) is not None:
            return
        for _, address in sorted(self.hints, key=lambda h: self._expected_rtt(h[1])):
            reply = self._ask(address, ".", w.NS, rd=False, budget=budget)
            if reply is None or reply.rcode != w.NOERROR:
                continue
            ns = [rr for rr in reply.answer if rr.rtype == w.NS and rr.name == "."]
            if ns:
                now = self.clock()
                self.cache.put(ns, now, RANK_AUTH_ANSWER)
                self._cache_glue(reply, ".", {rr.data.target.lower() for rr in ns})
                return

    def _take_answer(self, reply: w.Message, zone: str, qname: str, qtype: int) -> Result:
        now = self.clock()
        rank = RANK_AUTH_ANSWER if reply.aa else RANK_ANSWER
        chain = _chain(reply.answer, qname, qtype, zone)
        for rrset in _group(chain):
            self.cache.put(rrset, now, rank)
        soa = _soa(reply, zone)
        negative = [soa] if soa else []
        last = chain[-1] if chain else None
        final = last.data.target if last is not None and last.rtype == w.CNAME else qname
        if reply.rcode == w.NXDOMAIN:
            if w.is_subdomain(final, zone):
                self.cache.put_negative(final, qtype, w.NXDOMAIN, soa, now)
            return Result(w.NXDOMAIN, chain, negative)
        if _answers(chain, qtype):
            return Result(w.NOERROR, chain)
        if last is not None and last.rtype == w.CNAME and not (soa and w.is_subdomain(final, zone)):
            return Result(w.NOERROR, chain)  # the chain leaves this zone: the caller follows it
        self.cache.put_negative(final, qtype, w.NOERROR, soa, now)  # NODATA
        return Result(w.NOERROR, chain, negative)

    def _cache_referral(self, reply: w.Message, zone: str, child: str) -> None:
        now = self.clock()
        ns = [rr for rr in reply.authority if rr.rtype == w.NS and rr.name.lower() == child]
        self.cache.put(ns, now, RANK_AUTHORITY)
        self._cache_glue(reply, zone, {rr.data.target.lower() for rr in ns})

    def _cache_glue(self, reply: w.Message, zone: str, ns_names: set) -> None:
        """Addresses from the additional section, only for the NS names and only in bailiwick."""
        now = self.clock()
        glue = [rr for rr in reply.additional if rr.rtype in (w.A, w.AAAA)
                and rr.name.lower() in ns_names and w.is_subdomain(rr.name, zone)]
        for rrset in _group(glue):
            self.cache.put(rrset, now, RANK_GLUE)

    # -- forwarding ---------------------------------------------------------------------------

    def _forward(self, qname: str, qtype: int, budget: _Budget) -> Result:
        for server in sorted(self.forwarders, key=lambda s: self._expected_rtt(s[0]))[:SERVERS_PER_STEP]:
            reply = self._ask(server[0], qname, qtype, rd=True, budget=budget, port=server[1])
            if reply is None or reply.rcode not in (w.NOERROR, w.NXDOMAIN):
                continue
            return self._take_answer(reply, ".", qname, qtype)
        raise ResolutionFailed(f"no forwarder answered {qname}")

    # -- one exchange ---------------------------------------------------------------------------

    def _ask(self, address: str, qname: str, qtype: int, rd: bool, budget: _Budget,
             port: int | None = None):
        """Send one query (UDP, then TCP if truncated); a validated reply or None."""
        if budget.queries >= MAX_QUERIES:
            raise ResolutionFailed("query budget exhausted")
        budget.queries += 1
        self.queries_sent += 1
        qid = self.rng.randrange(0x10000)
        wire = w.Message(id=qid, rd=rd, questions=[w.Question(qname, qtype)],
                         edns=w.Edns(1232)).encode()
        server = (address, port or self.port)
        reply = self._exchange(wire, server, False, qid, qname, qtype)
        if reply is not None and reply.tc:
            reply = self._exchange(wire, server, True, qid, qname, qtype)
        return reply

    def _exchange(self, wire, server, tcp, qid, qname, qtype):
        start = self.clock()
        data = self.transport.exchange(wire, server, tcp, self.timeout)
        elapsed = max(self.clock() - start, 0.0)
        if data is None:
            self._note_rtt(server[0], self.timeout * 2)
            return None
        try:
            reply = w.Message.decode(data)
        except MalformedPacket:
            self._note_rtt(server[0], self.timeout)
            return None
        q = reply.question
        if (reply.id != qid or not reply.qr or q is None or q.name.lower() != qname.lower()
                or q.rtype != qtype):
            return None  # RFC 5452 section 9.1: not the answer to our question
        self._note_rtt(server[0], elapsed)
        return reply

    def _note_rtt(self, address: str, rtt: float) -> None:
        old = self.srtt.get(address)
        if old is None and len(self.srtt) >= MAX_RTT_ENTRIES:
            self.srtt.pop(next(iter(self.srtt)))
        self.srtt[address] = rtt if old is None else 0.7 * old + 0.3 * rtt


# ---------------------------------------------------------------------------------------------
# Reading replies


def _usable(reply: w.Message, zone: str, qname: str) -> bool:
    """A reply we can act on: an answer, a negative answer, or a referral closer to qname."""
    if reply.rcode not in (w.NOERROR, w.NXDOMAIN):
        return False  # SERVFAIL, REFUSED, ...: a lame or broken server, try another
    if reply.aa or reply.answer or reply.rcode == w.NXDOMAIN:
        return True
    return _referral_zone(reply, zone, qname) is not None or _soa(reply, zone) is not None


def _referral_zone(reply: w.Message, zone: str, qname: str):
    """The child zone a referral points to, if this reply is a downward referral."""
    if reply.aa or reply.answer or reply.rcode != w.NOERROR:
        return None
    for rr in reply.authority:
        if rr.rtype == w.NS:
            child = rr.name.lower()
            if child != zone and w.is_subdomain(child, zone) and w.is_subdomain(qname, child):
                return child
    return None


def _chain(answer, qname: str, qtype: int, zone: str) -> list:
    """The records answering qname: follow CNAMEs in order, keep only in-bailiwick owners."""
    out, name = [], qname.lower()
    for _ in range(MAX_CNAME_CHAIN):
        if not w.is_subdomain(name, zone):
            break
        matches = [rr for rr in answer if rr.name.lower() == name
                   and (rr.rtype == qtype or qtype == w.ANY or rr.rtype == w.CNAME)]
        if not matches:
            break
        out.extend(matches)
        cname = [rr for rr in matches if rr.rtype == w.CNAME]
        if not cname or qtype in (w.CNAME, w.ANY):
            break
        name = cname[0].data.target.lower()
    return out


def _answers(records, qtype: int) -> bool:
    return any(rr.rtype == qtype or qtype == w.ANY for rr in records)


def _soa(reply: w.Message, zone: str):
    for rr in reply.authority:
        if rr.rtype == w.SOA and w.is_subdomain(rr.name, zone):
            return rr
    return None


def _group(records) -> list:
    """Split records into RRsets (same owner and type), keeping first-seen order."""
    groups = {}
    for rr in records:
        groups.setdefault((rr.name.lower(), rr.rtype), []).append(rr)
    return list(groups.values())


def _parse_server(text: str, default_port: int):
    """``"127.0.0.1"`` or ``"127.0.0.1:5353"`` or ``"[::1]:53"`` -> (address, port)."""
    if isinstance(text, (tuple, list)):
        return str(text[0]), int(text[1])
    text = str(text)
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    host, port = text, default_port
    if text.count(":") == 1:
        host, port_text = text.split(":")
        if not port_text.isdigit() or int(port_text) > 65535:
            raise ValueError(f"bad port in {text!r}")
        port = int(port_text)
    _check_ip(host)
    return host, port


def _check_ip(address: str) -> None:
    import socket
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in address else socket.AF_INET, address)
    except OSError:
        raise ValueError(f"{address!r} is not an IP address") from None


def _parse_hints(hints) -> list:
    """Root hints as (name, address) pairs: from addresses, ``name=address`` or a hints file."""
    if isinstance(hints, str):
        from .zone import parse_zone_text
        with open(hints, encoding="utf-8") as f:
            records = parse_zone_text(f.read(), ".", hints)
        return [(rr.name, rr.data.address) for rr in records if rr.rtype == w.A]
    out = []
    for i, hint in enumerate(hints):
        if isinstance(hint, (tuple, list)):
            out.append((str(hint[0]), str(hint[1])))
        elif "=" in hint:
            name, address = hint.split("=", 1)
            out.append((name, address))
        else:
            out.append((f"hint{i}.", hint))
    for _, address in out:
        _check_ip(address)
    return out
