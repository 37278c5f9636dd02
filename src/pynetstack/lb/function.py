"""The load balancer on the packet path.

Where it sits: PREROUTING, just before the destination NAT stage (priority dstnat - 1).  IPVS
schedules on LOCAL_IN because its virtual address is a local one and the kernel must first
route the packet to itself; here the decision is made before routing, as nft's ``dnat`` is,
so the route is looked up for the real server's address and the virtual address need not be
one of the stack's (a route to the balancer is enough).  The binding is made on the NEW
conntrack entry, so:

- NAT forwarding (IPVS masquerading): the entry's reply tuple becomes the real server's, and
  the conntrack/NAT machinery (netfilter/router.py's NAT stages, nat_rewrite.translate)
  rewrites every packet of the connection both ways: replies must come back through us.
- Direct routing: the datagram is sent unchanged to the real server's MAC address on the
  directly connected network that holds it (the servers hold the virtual address on a
  loopback and answer the clients themselves).

The function sees every packet (``sees_every_packet``): IPVS keeps its connection states,
counters and rates from every packet, and so does this.
"""

from __future__ import annotations

from typing import Dict, List, Optional

from ..net import hooks as hk
from ..netfilter.conntrack import S_CONFIRMED, S_DST_NAT, S_DST_NAT_DONE
from ..wire.addr import ip_to_str
from .conn import ConnectionTable, LbConnection
from .service import FORWARD_DR, LbError, VirtualService

PRIORITY_LB = hk.PRIORITY_DSTNAT - 1
ESTIMATOR_INTERVAL = 2.0  # IPVS's rate estimator runs every 2 s


class LoadBalancer(hk.NetworkFunction):
    name = "lb"
    sees_every_packet = True

    def __init__(self, stack=None, timeouts: Optional[dict] = None, max_connections: int = 1 << 20):
        self.stack = stack
        self.services: Dict[tuple, VirtualService] = {}
        self.conns = ConnectionTable(timeouts, max_connections)
        self.conns.on_expire = self._expired
        self.health = None  # a HealthMonitor, once a service has checks
        self.counters = {"new": 0, "no-destination": 0, "refused": 0, "untracked": 0, "nat-clash": 0,
                         "dr-no-route": 0}
        self._next_estimate = None
        self._ct_hooked = None

    # -- services ---------------------------------------------------------------------------------

    def add_service(self, service: VirtualService) -> VirtualService:
        if service.key in self.services:
            raise LbError(f"{service.name} exists already")
        self.services[service.key] = service
        if service.health is not None:
            self.monitor().watch(service)
        return service

    def remove_service(self, protocol: int, vip: int, port: int) -> VirtualService:
        service = self.services.pop((protocol, vip, port), None)
        if service is None:
            raise LbError("no such virtual service")
        if self.health is not None:
            self.health.forget(service)
        return service

    def monitor(self):
        if self.health is None:
            from .health import HealthMonitor
            self.health = HealthMonitor(self.stack)
        return self.health

    def find_service(self, text: str) -> VirtualService:
        """A service by ``[tcp|udp] ADDR:PORT`` (tcp when not said)."""
        words = text.split()
        proto = 6
        if len(words) == 2:
            proto = {"tcp": 6, "udp": 17}.get(words[0].lower(), 0)
            words = words[1:]
        try:
            addr, port = words[0].rsplit(":", 1)
            from ..wire.addr import ip_to_int
            key = (proto, ip_to_int(addr), int(port))
        except (ValueError, IndexError):
            raise LbError(f"a virtual service is [tcp|udp] ADDRESS:PORT, not {text!r}") from None
        service = self.services.get(key)
        if service is None:
            raise LbError(f"no virtual service {text}")
        return service

    # -- the packet path --------------------------------------------------------------------------

    def stages(self):
        return [(hk.PREROUTING, PRIORITY_LB, self.process, "lb")]

    def process(self, ctx: hk.PacketContext) -> str:
        proto = ctx.proto
        if proto != 6 and proto != 17:
            return hk.ACCEPT
        ct = ctx.ct
        conns = self.conns
        if ct is not None and ctx.ct_dir == 1:  # a reply, through us (NAT)
            conn = conns.by_key.get(ct.original)
            if conn is not None and conn.server.forward != FORWARD_DR:  # IPVS's ip_vs_out: NAT only
                refused = ctx.tcp_flags & 0x04 and not conn.replied  # a reset as the answer to the SYN
                conns.packet(conn, True, ctx.tcp_flags, ctx.now)
                length = ctx.length
                for stats in (conn.server.stats, conn.service.stats):
                    stats.outpkts += 1
                    stats.outbytes += length
                if refused:
                    conn.server.stats.resets += 1
                    if self.health is not None:
                        self.health.passive_error(conn.server, "reset", ctx.now)
            return hk.ACCEPT
        key = ctx.in_flow
        conn = conns.by_key.get(key)
        if conn is None:
            service = self.services.get((proto, key[3], key[4]))
            if service is None:
                return hk.ACCEPT
            if proto == 6 and (ctx.tcp_flags & 0x17) != 0x02:
                return hk.ACCEPT  # IPVS schedules on a SYN only; the rest goes on unchanged
            conn = self._new(ctx, service, key)
            if conn is None:
                if ctx.drop_reason == "lb-no-destination":
                    return ctx.reject_with_icmp(3, 3)  # as IPVS answers when no server can take it
                return hk.DROP
        conns.packet(conn, False, ctx.tcp_flags, ctx.now)
        server = conn.server
        length = ctx.length
        for stats in (server.stats, conn.service.stats):
            stats.inpkts += 1
            stats.inbytes += length
        if server.forward == FORWARD_DR:
            return self._direct_route(ctx, server)
        return hk.ACCEPT  # the NAT stage at dstnat rewrites it to the server

    def _new(self, ctx: hk.PacketContext, service: VirtualService, key) -> Optional[LbConnection]:
        now = ctx.now
        server, template = service.schedule(key[1], key[2], key[3], key[4], now)
        if server is None:
            service.no_dest += 1
            self.counters["no-destination"] += 1
            ctx.drop_reason = "lb-no-destination"
            ctx.note(f"lb: {service.name}: no destination available")
            return None
        ct = ctx.ct
        if server.forward != FORWARD_DR:
            if ct is None or ct.status & S_CONFIRMED:  # NAT needs a new conntrack entry to bind
                self.counters["untracked"] += 1
                ctx.drop_reason = "lb-untracked"
                return None
            reply = (key[0], server.addr, server.port, key[1], key[2])
            table = self.stack.router.conntrack.table if self.stack is not None else {}
            if reply != ct.reply and reply in table:
                self.counters["nat-clash"] += 1
                ctx.drop_reason = "lb-nat-clash"
                return None
            ct.reply = reply
            ct.status |= S_DST_NAT | S_DST_NAT_DONE
        conn = self.conns.add(key, service, server, template, now)
        if conn is None:
            self.counters["refused"] += 1
            ctx.drop_reason = "lb-table-full"
            return None
        conn.ct = ct
        self.counters["new"] += 1
        if ctx.trace is not None:
            ctx.note(f"lb: {service.name} {service.scheduler.name} -> {server.name} "
                     f"({'direct routing' if server.forward == FORWARD_DR else 'NAT'})")
        return conn

    def _direct_route(self, ctx: hk.PacketContext, server) -> str:
        host = ctx.host
        decision = host.routes.decide(server.addr)
        if decision is None or decision.interface is None or decision.type != "unicast":
            self.counters["dr-no-route"] += 1
            return ctx.drop("lb-dr-no-route")
        ip = ctx.ip
        entry = ctx.ct
        if entry is not None and not entry.status & S_CONFIRMED:
            # the packet leaves here, not through POSTROUTING: confirm its entry as Linux would
            # on the way out, or each later packet would find only a new unconfirmed one
            self.stack.router.conntrack.confirm(entry, ctx.now)
        ctx.note(f"lb: direct routing to {ip_to_str(server.addr)}'s MAC on {decision.interface.name}")
        host._transmit(decision.interface, server.addr, ip.build(), ctx.now)
        return hk.STOLEN

    # -- conntrack and time ---------------------------------------------------------------------

    def attach(self, conntrack) -> None:
        """Forget a NAT connection when its conntrack entry goes (it cannot be rewritten then)."""
        if self._ct_hooked is None:
            conntrack.destroy_hooks.append(self._ct_destroyed)
            self._ct_hooked = conntrack

    def _ct_destroyed(self, entry) -> None:
        conn = self.conns.by_key.get(entry.original)
        if conn is not None and conn.ct is entry:
            if not conn.replied and entry.counters[2]:
                # the server's first answer ended the connection in conntrack: a reset
                conn.server.stats.resets += 1
                if self.health is not None:
                    self.health.passive_error(conn.server, "reset", self.stack.now() if self.stack is not None else 0.0)
            self.conns.remove(conn)

    def _expired(self, conn: LbConnection) -> None:
        # passive health: a connection that timed out without the server ever answering
        if not conn.replied and not conn.no_output:
            conn.server.stats.timeouts += 1
            if self.health is not None:
                self.health.passive_error(conn.server, "timeout", conn.deadline)

    def poll(self, now: float) -> None:
        self.conns.poll(now)
        if self._next_estimate is None:
            self._next_estimate = now + ESTIMATOR_INTERVAL
        elif now >= self._next_estimate:
            self._next_estimate = now + ESTIMATOR_INTERVAL
            for service in self.services.values():
                service.stats.estimate(ESTIMATOR_INTERVAL)
                service.expire_templates(now)
                for server in service.servers:
                    server.stats.estimate(ESTIMATOR_INTERVAL)
        if self.health is not None:
            self.health.poll(now)

    def next_deadline(self) -> Optional[float]:
        if self._next_estimate is None:
            return 0.0  # the rate estimator starts at the first poll
        candidates = [d for d in (self.conns.next_deadline(), self._next_estimate,
                                  self.health.next_deadline() if self.health is not None else None) if d is not None]
        return min(candidates) if candidates else None

    def stats(self) -> dict:
        out = dict(self.counters)
        out["connections"] = len(self.conns)
        out["services"] = len(self.services)
        return out

    def explain(self) -> str:
        return f"lb: {len(self.services)} virtual services, {len(self.conns)} connections"

    def service_list(self) -> List[VirtualService]:
        return sorted(self.services.values(), key=lambda s: s.key)


def install_lb(stack, services=(), timeouts: Optional[dict] = None, max_connections: int = 1 << 20) -> LoadBalancer:
    """Put a load balancer on ``stack`` (with conntrack and NAT, installing the router if the
    stack has none).  ``stack.lb`` is the LoadBalancer."""
    from ..netfilter.router import install_router
    if getattr(stack, "router", None) is None:
        install_router(stack)
    lb = LoadBalancer(stack, timeouts, max_connections)
    lb.attach(stack.router.conntrack)
    for service in services:
        lb.add_service(service)
    stack.register(lb)
    stack.lb = lb
    return lb
