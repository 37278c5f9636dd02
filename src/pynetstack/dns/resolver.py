"""Recursive resolver as a sans-I/O state machine: iterative from root hints (with priming), or
forwarding to upstreams.

It is driven as the TCP layer is: ``start(qname, qtype, now, callback)`` begins a resolution,
the I/O front end takes the queries to send from ``outgoing`` (``Exchange`` objects: wire bytes,
server, UDP or TCP), hands replies back with ``receive(exchange, data, now)`` and calls
``poll(now)`` at ``next_deadline()`` so that time-outs move on to the next server. Exchanges that
ended (answered or timed out) are put on ``finished`` for the front end to release their socket.
The resolver never reads a clock or touches a socket, so it runs on a virtual clock as well as
in the stack's loop (stackio) or over host sockets (hostio); it has no lock, so one front end
(one thread) drives it.

Each resolution is a generator that yields an Exchange and is resumed with the validated reply
(a Message) or None; so the algorithm reads top to bottom as a blocking one would.
RFC 5452: every query has a random ID (front ends add a random source port) and a reply must
match ID, question and server.

The objects it exchanges with front ends (Exchange, Resolution, Result) are in resolution.py,
the parsing of forwarders and root hints in upstreams.py.
"""
from __future__ import annotations

import heapq
import random
from collections import Counter, deque

from ..wire import dns as w
from ..wire.errors import MalformedPacket
from .answers import (answers_type, cache_groups, chain_from_reply, group_rrsets, referral_zone, soa_in,
                      unique, usable)
from .cache import RANK_ANSWER, RANK_AUTH_ANSWER, RANK_AUTHORITY, RANK_GLUE, Cache
from .resolution import Exchange, Resolution, ResolutionFailed, Result  # noqa: F401 (re-exported)
from .upstreams import parse_hints, parse_server

MAX_CNAME_CHAIN = 12
MAX_REFERRALS = 24
MAX_QUERIES = 60          # upstream queries for one client question, glueless lookups included
MAX_DEPTH = 4             # nesting of name server address lookups
SERVERS_PER_STEP = 4      # attempts for one zone (other servers first, then retries) before giving up
UNKNOWN_RTT = 0.05        # prior for a server never measured (a little jitter spreads the load)
MAX_RTT_ENTRIES = 4096
MAX_RESOLUTIONS = 1024    # resolutions in progress at once; more are refused (the server answers nothing)
MAX_WAITERS = 64          # clients waiting for the same question as one resolution


class _NotCached(Exception):
    """query_cached: the answer needs the network."""


class Resolver:
    def __init__(self, root_hints=None, forwarders=None, cache: Cache | None = None,
                 port: int = 53, timeout: float = 1.5, rng: random.Random | None = None,
                 max_resolutions: int = MAX_RESOLUTIONS):
        self.hints = parse_hints(root_hints or [])
        self.forwarders = [parse_server(f, port) for f in (forwarders or [])]
        if not self.hints and not self.forwarders:
            raise ValueError("a resolver needs root_hints or forwarders")
        if not 0 < timeout < 3600:
            raise ValueError(f"timeout must be within 0..3600 seconds, not {timeout!r}")
        self.cache = cache if cache is not None else Cache()
        self.port, self.timeout = port, timeout
        self.rng = rng or random.SystemRandom()
        self.max_resolutions = max_resolutions
        self.srtt = {}               # server address -> smoothed round-trip time, seconds
        self.queries_sent = 0
        self.stats = Counter()
        self.outgoing = deque()      # Exchanges for the front end to send
        self.finished = deque()      # Exchanges that ended: the front end releases their sockets
        self.active = {}             # (lower qname, qtype) -> Resolution
        self.now = 0.0               # the time of the call being processed (set by every entry point)
        self._timers = []            # heap of (deadline, sequence, Exchange), closed ones removed lazily
        self._sequence = 0
        self.open_exchanges = 0

    # -- the front end's side -----------------------------------------------------------------

    def start(self, qname: str, qtype: int, now: float, callback) -> Resolution | None:
        """Resolve (qname, qtype); ``callback(Result)`` runs when done, maybe before this returns.
        None (and nothing called) when too many resolutions are in progress."""
        self.now = now
        key = (qname.lower(), qtype)
        task = self.active.get(key)
        if task is not None:  # the same question is on its way: wait for that answer
            if len(task.callbacks) >= MAX_WAITERS:
                self.stats["overload"] += 1
                return None
            task.callbacks.append(callback)
            self.stats["joined"] += 1
            return task
        if len(self.active) >= self.max_resolutions:
            self.stats["overload"] += 1
            return None
        task = Resolution(key)
        task.callbacks.append(callback)
        task.gen = self._resolve(qname, qtype, 0, task)
        self.active[key] = task
        self.stats["started"] += 1
        self._step(task, None)
        return task

    def receive(self, exchange: Exchange, data, now: float) -> None:
        """The reply to ``exchange`` (bytes), or None when the front end saw it fail (no route,
        ICMP unreachable, TCP reset). A UDP datagram that does not answer the question is
        ignored (RFC 5452 section 9.1): the exchange keeps waiting until its deadline."""
        if exchange.closed:
            return
        self.now = now
        reply = None
        if data is not None:
            try:
                reply = w.Message.decode(data)
            except MalformedPacket:
                reply = None
            q = reply.question if reply is not None else None
            if (q is None or reply.id != exchange.qid or not reply.qr or q.rtype != exchange.qtype
                    or q.name.lower() != exchange.qname.lower()):
                self.stats["mismatched-replies"] += 1
                if not exchange.tcp:
                    return
                reply = None
        if reply is None:
            self._note_rtt(exchange.server[0], exchange.timeout)
        else:
            self._note_rtt(exchange.server[0], max(now - exchange.sent_at, 0.0))
        self._close(exchange)
        self._step(exchange.task, reply)

    def poll(self, now: float) -> None:
        """Time out the exchanges whose deadline has passed (each goes on to another server)."""
        self.now = now
        timers = self._timers
        while timers and timers[0][0] <= now:
            exchange = heapq.heappop(timers)[2]
            if exchange.closed:
                continue
            self.stats["timeouts"] += 1
            self._note_rtt(exchange.server[0], exchange.timeout * 2)
            self._close(exchange)
            self._step(exchange.task, None)

    def next_deadline(self) -> float | None:
        timers = self._timers
        while timers and timers[0][2].closed:
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def resolve(self, name: str, rtype="A") -> Result:
        """Blocking convenience for scripts: resolve over host sockets on the host's clock
        (``hostio.resolve_on_host``). The state machine itself does no I/O; on a stack, use
        ``start`` through ``stackio`` instead."""
        from .hostio import resolve_on_host
        return resolve_on_host(self, name, rtype)

    def query_cached(self, qname: str, qtype: int, now: float) -> Result | None:
        """The answer the cache alone gives (CNAMEs followed), or None when it takes the network."""
        self.now = now
        gen = self._resolve(qname, qtype, 0, Resolution(None), cache_only=True)
        try:
            next(gen)
        except StopIteration as done:
            return done.value
        except (_NotCached, ResolutionFailed):
            return None
        gen.close()
        return None

    # -- driving the generators ---------------------------------------------------------------

    def _step(self, task: Resolution, value) -> None:
        try:
            exchange = task.gen.send(value)
        except StopIteration as done:
            return self._finish(task, done.value)
        except ResolutionFailed:
            return self._finish(task, Result(w.SERVFAIL))
        except Exception:  # noqa: BLE001 - a bug costs this question, never the caller's loop
            self.stats["internal-error"] += 1
            return self._finish(task, Result(w.SERVFAIL))
        exchange.task, exchange.sent_at = task, self.now
        exchange.deadline = self.now + exchange.timeout
        task.waiting = exchange
        self._sequence += 1
        self.open_exchanges += 1
        timers = self._timers
        if len(timers) > 4 * self.open_exchanges + 64:
            # answered exchanges wait in the heap until their deadline: drop them now and then,
            # so the heap stays proportional to what is really outstanding
            timers[:] = [t for t in timers if not t[2].closed]
            heapq.heapify(timers)
        heapq.heappush(timers, (exchange.deadline, self._sequence, exchange))
        self.outgoing.append(exchange)

    def _close(self, exchange: Exchange) -> None:
        self.open_exchanges -= 1
        exchange.closed = True
        exchange.task.waiting = None
        self.finished.append(exchange)

    def _finish(self, task: Resolution, result: Result) -> None:
        if self.active.get(task.key) is task:
            del self.active[task.key]
        result.answers = unique(result.answers)  # RFC 2181 section 5: no record twice
        task.result = result
        self.stats["servfail" if result.rcode == w.SERVFAIL else "resolved"] += 1
        for callback in task.callbacks:
            try:
                callback(result)
            except Exception:  # noqa: BLE001 - one client's failure must not hide the others'
                self.stats["callback-error"] += 1

    # -- the loop over CNAMEs and DNAMEs ------------------------------------------------------

    def _resolve(self, qname: str, qtype: int, depth: int, task: Resolution, cache_only: bool = False):
        chain, seen = [], set()
        for _ in range(MAX_CNAME_CHAIN):
            key = qname.lower()
            if key in seen:
                return Result(w.SERVFAIL)  # a CNAME loop: Unbound answers SERVFAIL, so do we
            seen.add(key)
            result = self._from_cache(qname, qtype)
            if result is None:
                if cache_only:
                    raise _NotCached()
                if self.forwarders:
                    result = yield from self._forward(qname, qtype, task)
                else:
                    result = yield from self._iterate(qname, qtype, depth, task)
            chain.extend(result.answers)
            last = result.answers[-1] if result.answers else None
            if (result.rcode == w.NOERROR and last is not None and last.rtype == w.CNAME
                    and qtype not in (w.CNAME, w.ANY) and not answers_type(result.answers, qtype)):
                for rr in result.answers:
                    if rr.rtype == w.CNAME:
                        seen.add(rr.name.lower())  # a chain that comes back to one of these loops
                qname = last.data.target
                continue
            return Result(result.rcode, chain, result.authority)
        return Result(w.SERVFAIL)

    def _from_cache(self, qname: str, qtype: int) -> Result | None:
        """Only data of answer rank answers a client (RFC 2181 section 5.4.1): referral NS sets
        and glue guide the iteration but are never handed out."""
        now, cache = self.now, self.cache
        hit = cache.get(qname, qtype, now, min_rank=RANK_ANSWER)
        if hit is None and qtype != w.CNAME:
            hit = cache.get(qname, w.CNAME, now, count=False, min_rank=RANK_ANSWER)
        if hit is None:
            return None
        if hit.negative:
            return Result(hit.rcode, [], hit.records)
        return Result(w.NOERROR, hit.records)

    # -- iterative resolution -----------------------------------------------------------------

    def _iterate(self, qname: str, qtype: int, depth: int, task: Resolution):
        zone, hinted = self._closest_zone(qname), ()
        for _ in range(MAX_REFERRALS):
            servers = yield from self._servers_for(zone, depth, task, hinted)
            while not servers and zone != ".":
                # The NS set outlived its glue: ask the parent again, whose referral brings it back.
                zone = w.parent_name(zone)
                servers = yield from self._servers_for(zone, depth, task, ())
            reply = None
            for attempt in range(SERVERS_PER_STEP if servers else 0):
                server = servers[attempt % len(servers)]
                timeout = self.timeout * (2 ** (attempt // len(servers)))  # a retry waits longer
                reply = yield from self._ask(server, qname, qtype, False, task, self.port, timeout)
                if reply is not None and usable(reply, zone, qname):
                    break
                reply = None
            if reply is None:
                raise ResolutionFailed(f"no server for {zone} answered {qname}")
            child = referral_zone(reply, zone, qname)
            if child is None:
                return self._take_answer(reply, zone, qname, qtype)
            hinted = self._cache_referral(reply, zone, child)
            zone = child
        raise ResolutionFailed("too many referrals")

    def _closest_zone(self, qname: str) -> str:
        name, now = qname.lower(), self.now
        while name != ".":
            hit = self.cache.get(name, w.NS, now, count=False)
            if hit is not None and not hit.negative:
                return name
            name = w.parent_name(name)
        return "."

    def _servers_for(self, zone: str, depth: int, task: Resolution, hinted):
        """Addresses of the zone's name servers, fastest first. ``hinted``: the NS names of the
        referral that led here, in case the cache keeps a different (the child's own) set."""
        if zone == ".":
            yield from self._prime(task)
        now, cache = self.now, self.cache
        ns = cache.get(zone, w.NS, now, count=False)
        names = [rr.data.target for rr in ns.records] if ns is not None and not ns.negative else []
        names += [name for name in hinted if name not in names]
        addresses = []
        for ns_name in names:
            hit = cache.get(ns_name, w.A, now, count=False)
            if hit is not None and not hit.negative:
                addresses.extend(rr.data.address for rr in hit.records)
        if not addresses and zone == ".":
            addresses = [addr for _, addr in self.hints]
        if not addresses and depth < MAX_DEPTH:
            for ns_name in names:  # glueless delegation: look the server's address up
                if w.is_subdomain(ns_name, zone):
                    continue  # would need this very zone; no glue means it is lame
                try:
                    result = yield from self._resolve(ns_name, w.A, depth + 1, task)
                except ResolutionFailed:
                    continue  # that server's name does not resolve: try the next one
                addresses.extend(rr.data.address for rr in result.answers if rr.rtype == w.A)
                if addresses:
                    break
        unique_addresses = list(dict.fromkeys(addresses))
        return sorted(unique_addresses, key=self._expected_rtt)

    def _expected_rtt(self, address: str) -> float:
        known = self.srtt.get(address)
        return known if known is not None else UNKNOWN_RTT * (1 + self.rng.random())

    def _prime(self, task: Resolution):
        """RFC 8109: learn the root servers from the hints once, then keep them in the cache."""
        if self.cache.get(".", w.NS, self.now, count=False) is not None:
            return
        for _, address in sorted(self.hints, key=lambda h: self._expected_rtt(h[1])):
            reply = yield from self._ask(address, ".", w.NS, False, task, self.port, self.timeout)
            if reply is None or reply.rcode != w.NOERROR:
                continue
            ns = [rr for rr in reply.answer if rr.rtype == w.NS and rr.name == "."]
            if ns:
                self.cache.put(ns, self.now, RANK_AUTH_ANSWER)
                self._cache_glue(reply, ".", {rr.data.target.lower() for rr in ns})
                return

    def _take_answer(self, reply: w.Message, zone: str, qname: str, qtype: int) -> Result:
        now, cache = self.now, self.cache
        rank = RANK_AUTH_ANSWER if reply.aa else RANK_ANSWER
        chain = chain_from_reply(reply.answer, qname, qtype, zone)
        for key, rrset in cache_groups(chain):
            cache.put(rrset, now, rank, key)
        soa = soa_in(reply, zone)
        negative = [soa] if soa else []
        last = chain[-1] if chain else None
        final = last.data.target if last is not None and last.rtype == w.CNAME else qname
        if reply.rcode == w.NXDOMAIN:
            if w.is_subdomain(final, zone):
                cache.put_negative(final, qtype, w.NXDOMAIN, soa, now)
            return Result(w.NXDOMAIN, chain, negative)
        if answers_type(chain, qtype):
            return Result(w.NOERROR, chain)
        if last is not None and last.rtype == w.CNAME and not (soa and w.is_subdomain(final, zone)):
            return Result(w.NOERROR, chain)  # the chain leaves this zone: the caller follows it
        cache.put_negative(final, qtype, w.NOERROR, soa, now)  # NODATA
        return Result(w.NOERROR, chain, negative)

    def _cache_referral(self, reply: w.Message, zone: str, child: str):
        ns = [rr for rr in reply.authority if rr.rtype == w.NS and rr.name.lower() == child]
        self.cache.put(ns, self.now, RANK_AUTHORITY)
        names = [rr.data.target.lower() for rr in ns]
        self._cache_glue(reply, zone, set(names))
        return names

    def _cache_glue(self, reply: w.Message, zone: str, ns_names: set) -> None:
        """Addresses from the additional section, only for the NS names and only in bailiwick."""
        glue = [rr for rr in reply.additional if rr.rtype in (w.A, w.AAAA)
                and rr.name.lower() in ns_names and w.is_subdomain(rr.name, zone)]
        for rrset in group_rrsets(glue):
            self.cache.put(rrset, self.now, RANK_GLUE)

    # -- forwarding -----------------------------------------------------------------------------

    def _forward(self, qname: str, qtype: int, task: Resolution):
        servers = sorted(self.forwarders, key=lambda s: self._expected_rtt(s[0]))
        for attempt in range(SERVERS_PER_STEP):
            address, port = servers[attempt % len(servers)]
            timeout = self.timeout * (2 ** (attempt // len(servers)))
            reply = yield from self._ask(address, qname, qtype, True, task, port, timeout)
            if reply is None or reply.rcode not in (w.NOERROR, w.NXDOMAIN):
                continue
            return self._take_answer(reply, ".", qname, qtype)
        raise ResolutionFailed(f"no forwarder answered {qname}")

    # -- one exchange ---------------------------------------------------------------------------

    def _ask(self, address: str, qname: str, qtype: int, rd: bool, task: Resolution, port: int,
             timeout: float):
        """One query (UDP, then TCP if truncated); yields to the front end, returns a
        validated reply or None."""
        if task.queries >= MAX_QUERIES:
            raise ResolutionFailed("query budget exhausted")
        task.queries += 1
        self.queries_sent += 1
        qid = self.rng.randrange(0x10000)
        wire = w.Message(id=qid, rd=rd, questions=[w.Question(qname, qtype)], edns=w.Edns(1232)).encode()
        server = (address, port)
        reply = yield Exchange(wire, server, False, qid, qname, qtype, timeout)
        if reply is not None and reply.tc:
            reply = yield Exchange(wire, server, True, qid, qname, qtype, timeout)
        return reply

    def _note_rtt(self, address: str, rtt: float) -> None:
        old = self.srtt.get(address)
        if old is None and len(self.srtt) >= MAX_RTT_ENTRIES:
            self.srtt.pop(next(iter(self.srtt)))
        self.srtt[address] = rtt if old is None else 0.7 * old + 0.3 * rtt
