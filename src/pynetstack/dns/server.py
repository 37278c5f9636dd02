"""The DNS server core: query bytes in, reply bytes out (sans-I/O).

``DnsServer.handle(query, transport, now, deliver)`` answers from the loaded zones
(authoritative, AA), else from the resolver's cache or by recursion when it is on and the client
asked for it (RD; replies carry RA), else REFUSED. A reply that waits on resolution is passed to
``deliver(reply)`` when the resolver has it (the front end drives the resolver; see resolver.py).
It never raises on bad input: a malformed query is answered FORMERR when its header can be read
and dropped otherwise, and each drop is counted by reason in ``drops``.
"""
from __future__ import annotations

import time
from collections import Counter, OrderedDict

from ..wire import dns as w
from ..wire.errors import MalformedPacket
from .authority import Authority

UDP_MIN = 512
UDP_MAX = 4096             # the most we put in one datagram, whatever the client offers
OUR_EDNS_PAYLOAD = 1232    # what we advertise (the DNS flag day 2020 value)
MEMO_MAX_REPLY = 4096  # bytes: bigger replies are computed each time, keeping the memo under 16 MiB
MEMO_ENTRIES = 4096
DEFER = object()           # handle() without deliver: "this needs recursion"


class DnsServer:
    def __init__(self, zones=(), resolver=None, recursion: bool = False, minimal_responses: bool = False):
        self.authority = Authority(zones, minimal_responses=minimal_responses)
        self.resolver = resolver
        self.recursion = bool(recursion and resolver is not None)
        if recursion and resolver is None:
            raise ValueError("recursion needs a resolver (root_hints or forwarders)")
        self.drops = Counter()
        self.answered = Counter()
        self._memo = OrderedDict()  # (transport, query without ID) -> (reply without ID, expiry)

    # -- the one entry point ---------------------------------------------------------------

    def handle(self, query: bytes, transport: str = "udp", now: float = 0.0, deliver=None):
        """The reply to ``query`` (bytes), or None to send nothing now. A query that needs
        resolution starts it and returns None, its reply going to ``deliver(reply)`` later;
        without ``deliver`` such a query returns DEFER."""
        key = (transport, query[2:])
        memo = self._memo.get(key)
        if memo is not None:
            if memo[1] > now:
                self.answered["memo"] += 1
                return query[:2] + memo[0]
            self._memo.pop(key, None)
        try:
            msg = w.Message.decode(query)
        except MalformedPacket as e:
            return self._malformed(query, e)
        if msg.qr:
            self.drops["not-a-query"] += 1
            return None
        reply = self._reply_to(msg)
        if reply is None:
            return None
        if reply is DEFER:
            cached = self._cached_answer(msg, now)
            if cached is not None:
                return self._recursive_reply(msg, cached, key, transport, now)
            if deliver is None:
                return DEFER
            return self._start_resolution(msg, key, transport, now, deliver)
        data = self._encode(reply, msg, transport)
        if reply.rcode in (w.NOERROR, w.NXDOMAIN) and not reply.tc:
            self._remember(key, data, float("inf"))
        return data

    # -- building replies --------------------------------------------------------------------

    def _reply_to(self, msg: w.Message):
        reply = _reply_skeleton(msg, self.recursion)
        if msg.opcode != w.OPCODE_QUERY:
            return self._error(reply, w.NOTIMP, "opcode")
        if len(msg.questions) != 1:
            return self._error(reply, w.FORMERR, "question-count")
        if msg.edns is not None and msg.edns.version != 0:
            return self._error(reply, w.BADVERS, "edns-version")
        q = msg.question
        if q.rclass not in (w.IN, 255) or q.rtype in (w.OPT, 251, 252):
            return self._error(reply, w.REFUSED if q.rtype != w.OPT else w.FORMERR, "unsupported-query")
        found = self.authority.lookup(q.name, q.rtype)
        if found is not None:
            self.answered["authoritative"] += 1
            reply.aa, reply.rcode = found.aa, found.rcode
            reply.answer, reply.authority, reply.additional = found.answer, found.authority, found.additional
            return reply
        if self.recursion and msg.rd:
            return DEFER
        return self._error(reply, w.REFUSED, "refused")

    def _error(self, reply: w.Message, rcode: int, what: str) -> w.Message:
        self.answered[what] += 1
        reply.rcode = rcode
        return reply

    def _cached_answer(self, msg: w.Message, now: float):
        try:
            return self.resolver.query_cached(msg.question.name, msg.question.rtype, now)
        except Exception:  # noqa: BLE001 - a resolver bug must not escape the receive path
            self.drops["resolver-error"] += 1
            return None

    def _start_resolution(self, msg: w.Message, key, transport: str, now: float, deliver):
        resolver = self.resolver

        def done(result) -> None:
            deliver(self._recursive_reply(msg, result, key, transport, resolver.now))
        try:
            started = resolver.start(msg.question.name, msg.question.rtype, now, done)
        except Exception:  # noqa: BLE001 - a resolver bug must not escape the receive path
            self.drops["resolver-error"] += 1
            reply = _reply_skeleton(msg, self.recursion)
            reply.rcode = w.SERVFAIL
            return self._encode(reply, msg, transport)
        if started is None:
            self.drops["recursion-overload"] += 1
        return None

    def _recursive_reply(self, msg: w.Message, result, key, transport: str, now: float) -> bytes:
        q = msg.question
        reply = _reply_skeleton(msg, self.recursion)
        self.answered["recursive"] += 1
        reply.rcode, reply.answer, reply.authority = result.rcode, list(result.answers), result.authority
        if reply.answer and reply.answer[0].name.lower() == q.name.lower():
            reply.answer[0] = reply.answer[0].with_name(q.name)
        data = self._encode(reply, msg, transport)
        ttls = [rr.ttl for rr in reply.answer + reply.authority]
        if ttls and min(ttls) and reply.rcode in (w.NOERROR, w.NXDOMAIN) and not reply.tc:
            # TTLs count down in whole seconds, so one reply may be reused for up to a second
            self._remember(key, data, now + min(min(ttls), 1.0))
        return data

    def _encode(self, reply: w.Message, query: w.Message, transport: str) -> bytes:
        if transport == "tcp":
            limit = 65535
        elif query.edns is not None:
            limit = min(max(query.edns.payload, UDP_MIN), UDP_MAX)
        else:
            limit = UDP_MIN
        data = reply.encode()
        if len(data) <= limit:
            return data
        reply.additional = []  # first drop what the client can do without (RFC 2181 9)
        data = reply.encode()
        if len(data) <= limit:
            return data
        reply.tc, reply.answer, reply.authority = True, [], []
        self.answered["truncated"] += 1
        return reply.encode()

    def _malformed(self, query: bytes, e: MalformedPacket):
        self.drops[e.reason] += 1
        if len(query) < 12 or query[2] & 0x80:
            return None
        # FORMERR with the ID and opcode echoed, no sections (RFC 1035 4.1.1)
        flags = 0x8000 | (query[2] & 0x78) << 8 | (0x0100 if query[2] & 1 else 0) | w.FORMERR
        if self.recursion:
            flags |= 0x0080
        return query[:2] + flags.to_bytes(2, "big") + bytes(8)

    def _remember(self, key, data: bytes, expiry) -> None:
        if len(key[1]) > 512 or len(data) > MEMO_MAX_REPLY:
            return  # the memo is for the many small answers; large ones would make it large
        memo = self._memo
        memo[key] = (data[2:], expiry)
        while len(memo) > MEMO_ENTRIES:
            memo.popitem(last=False)

    def add_zone(self, zone) -> None:
        self.authority.add_zone(zone)
        self.forget()

    def forget(self) -> None:
        """Drop memoised replies (call after changing zones)."""
        self._memo.clear()


def _reply_skeleton(msg: w.Message, recursion: bool) -> w.Message:
    edns = w.Edns(OUR_EDNS_PAYLOAD) if msg.edns is not None else None
    return w.Message(id=msg.id, qr=True, opcode=msg.opcode, rd=msg.rd, cd=msg.cd, ra=recursion,
                     questions=msg.questions[:1], edns=edns)


def udp_handler(server: DnsServer, clock=time.monotonic):
    """Adapter for ``stack.add_udp_service(53, handler)`` (authoritative answers only):
    handler(data, peer) -> reply or None. ``clock``: the stack's (``stack.now``)."""

    def handler(data: bytes, peer) -> bytes | None:
        reply = server.handle(bytes(data), "udp", clock())
        return None if reply is DEFER else reply

    return handler
