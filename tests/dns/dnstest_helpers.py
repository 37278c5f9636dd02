import os

from pynetstack.dns.zone import Zone, parse_zone_text

DATA = os.path.join(os.path.dirname(__file__), "data")


def zone_from_text(text: str, origin: str) -> Zone:
    return Zone.from_records(parse_zone_text(text, origin), origin)


class VirtualClock:
    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds




class VirtualNet:
    """Carries sans-I/O Resolvers' exchanges to in-process DnsServers on a virtual clock: each
    reply arrives ``delay[address]`` seconds later (2 ms by default); a dead address never
    answers, so the resolver's own time-outs fire. Time jumps from event to event. A server
    that recurses (forwarding tests) has its resolver driven here too."""

    def __init__(self, clock, servers=None):
        import heapq
        self.heapq = heapq
        self.clock, self.servers = clock, dict(servers or {})
        self.delay, self.dead, self.tamper, self.log = {}, set(), {}, []
        self.drop_first = {}   # address -> how many UDP queries to it are lost before one arrives
        self.lose = None       # or callable(exchange) -> True to lose that query
        self._events, self._seq = [], 0

    def asked(self, name=None, address=None):
        return [q for a, _, q in self.log if (name is None or q.question.name == name)
                and (address is None or a == address)]

    def _resolvers(self, resolver):
        found = [resolver]
        for server in self.servers.values():
            if getattr(server, "resolver", None) is not None and server.resolver not in found:
                found.append(server.resolver)
        return found

    def _push(self, when, resolver, ex, reply):
        self._seq += 1
        self.heapq.heappush(self._events, (when, self._seq, resolver, ex, reply))

    def _carry(self, resolver):
        from pynetstack.wire import dns as w
        while resolver.outgoing:
            ex = resolver.outgoing.popleft()
            if ex.closed:
                continue
            address = ex.server[0]
            self.log.append((address, ex.tcp, w.Message.decode(ex.wire)))
            if address in self.dead or address not in self.servers:
                continue
            if not ex.tcp and self.drop_first.get(address):
                self.drop_first[address] -= 1
                continue
            if self.lose is not None and self.lose(ex):
                continue
            delay = self.delay.get(address, 0.002)

            def deliver(reply, ex=ex, address=address, delay=delay):
                if address in self.tamper:
                    reply = self.tamper[address](reply)
                self._push(self.clock() + delay, resolver, ex, reply)
            reply = self.servers[address].handle(ex.wire, "tcp" if ex.tcp else "udp", self.clock(), deliver)
            if reply is not None:
                deliver(reply)
        resolver.finished.clear()

    def pump(self, resolver, done, limit: float = 600.0) -> None:
        """Run until ``done()`` (or ``limit`` virtual seconds pass)."""
        end = self.clock() + limit
        while True:
            everyone = self._resolvers(resolver)
            for r in everyone:
                self._carry(r)
            if done():
                return
            wakes = [(r.next_deadline(), r) for r in everyone]
            wakes = [(t, r) for t, r in wakes if t is not None]
            event = self._events[0][0] if self._events else None
            times = [t for t, _ in wakes] + ([event] if event is not None else [])
            if not times or min(times) > end:
                return
            self.clock.now = max(self.clock.now, min(times))
            if event is not None and event <= self.clock.now:
                _, _, r, ex, reply = self.heapq.heappop(self._events)
                r.receive(ex, reply, self.clock.now)
            else:
                for t, r in wakes:
                    if t <= self.clock.now:
                        r.poll(self.clock.now)

    def resolve(self, resolver, name: str, rtype="A"):
        from pynetstack.wire import dns as w
        name = name if name.endswith(".") else name + "."
        rtype = w.type_code(rtype) if isinstance(rtype, str) else rtype
        got = []
        resolver.start(name, rtype, self.clock(), got.append)
        self.pump(resolver, lambda: got)
        assert got, "the resolution never finished"
        return got[0]

    def ask(self, server, query: bytes, transport: str = "udp"):
        """A query to a recursive DnsServer, its reply (bytes) once the resolver has it."""
        got = []
        reply = server.handle(query, transport, self.clock(), got.append)
        if reply is not None:
            return reply
        self.pump(server.resolver, lambda: got)
        assert got, "no reply"
        return got[0]
