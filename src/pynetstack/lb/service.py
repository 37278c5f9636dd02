"""Virtual services and their real servers, as IPVS has them (``ipvsadm -A`` / ``-a``).

A ``VirtualService`` is a protocol, a virtual address and port, a scheduler, optional
persistence (``-p TIMEOUT -M NETMASK``) and its ``RealServer`` list.  IPVS keeps that list
with the most recently added server first (``list_add``), and its schedulers' tie-breaking
depends on it, so this one does too.  Servers that health checks took out stay listed but
leave the scheduler's list (keepalived removes them the same way); weight 0 keeps a server
listed and scheduled for nobody new (draining).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import List, Optional

from ..wire.addr import ip_to_int, ip_to_str
from .schedulers import FLAGS, make_scheduler

PROTOCOLS = {"tcp": 6, "udp": 17}
PROTOCOL_NAMES = {6: "TCP", 17: "UDP"}
FORWARD_NAT, FORWARD_DR = "nat", "dr"
FORWARD_NAMES = {FORWARD_NAT: "Masq", FORWARD_DR: "Route"}
DEFAULT_PERSISTENCE = 300  # ipvsadm -p without a value
MAX_TEMPLATES = 65536


class LbError(ValueError):
    """A bad load-balancer configuration or command."""


class Stats:
    """IPVS's per-service and per-server counters (``ipvsadm --stats``) and their rate
    estimates (``--rate``): every 2 s, avg += (rate - avg) / 4, as ip_vs_est.c does."""

    __slots__ = ("conns", "inpkts", "outpkts", "inbytes", "outbytes", "last", "rates", "resets", "timeouts")

    def __init__(self):
        self.conns = self.inpkts = self.outpkts = self.inbytes = self.outbytes = 0
        self.resets = self.timeouts = 0  # passive health: resets and unanswered connections
        self.last = None
        self.rates = [0.0] * 5  # cps, inpps, outpps, inbps, outbps

    def totals(self):
        return (self.conns, self.inpkts, self.outpkts, self.inbytes, self.outbytes)

    def estimate(self, interval: float) -> None:
        now = self.totals()
        if self.last is not None and interval > 0:
            for i, (new, old) in enumerate(zip(now, self.last)):
                rate = (new - old) / interval
                self.rates[i] += (rate - self.rates[i]) / 4.0
        self.last = now


class RealServer:
    __slots__ = ("addr", "port", "weight", "forward", "active", "inactive", "persistent", "overloaded",
                 "up", "stats", "u_threshold", "l_threshold", "service")

    def __init__(self, addr: int, port: int, weight: int = 1, forward: str = FORWARD_NAT,
                 u_threshold: int = 0, l_threshold: int = 0):
        self.addr = addr
        self.port = port
        self.weight = weight
        self.forward = forward
        self.active = 0
        self.inactive = 0
        self.persistent = 0  # persistence templates pointing here
        self.overloaded = False
        self.up = True  # health: False takes the server off the scheduler's list
        self.stats = Stats()
        self.u_threshold = u_threshold  # ipvsadm -x: no new connections at this many
        self.l_threshold = l_threshold  # ipvsadm -y: back below this many
        self.service = None

    @property
    def name(self) -> str:
        return f"{ip_to_str(self.addr)}:{self.port}"

    def check_threshold(self) -> None:
        """IPVS's OVERLOAD flag from the -x/-y thresholds (ip_vs_bind_dest / unbind_dest)."""
        if not self.u_threshold:
            self.overloaded = False
            return
        total = self.active + self.inactive
        if total >= self.u_threshold:
            self.overloaded = True
        elif self.overloaded and total < (self.l_threshold or self.u_threshold * 3 // 4):
            self.overloaded = False

    def __repr__(self) -> str:
        return f"<RealServer {self.name} w={self.weight} a={self.active} i={self.inactive}{'' if self.up else ' DOWN'}>"


class Template:
    """A persistence template (IPVS's template connection): client network -> server."""

    __slots__ = ("server", "deadline", "refs")

    def __init__(self, server, deadline):
        self.server = server
        self.deadline = deadline
        self.refs = 0


class VirtualService:
    def __init__(self, protocol: str, address: str, port: int, scheduler: str = "wlc", persistence: int = 0,
                 netmask: str = "255.255.255.255", forward: str = FORWARD_NAT, flags=(),
                 expire_quiescent: bool = False):
        if protocol not in PROTOCOLS:
            raise LbError(f"protocol must be tcp or udp, not {protocol!r}")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise LbError(f"port must be 1..65535, not {port!r}")
        if forward not in FORWARD_NAMES:
            raise LbError(f"forward must be 'nat' or 'dr', not {forward!r}")
        if not isinstance(persistence, int) or isinstance(persistence, bool) or persistence < 0:
            raise LbError(f"persistence must be a number of seconds >= 0, not {persistence!r}")
        for flag in flags:
            if flag not in FLAGS:
                raise LbError(f"unknown scheduler flag {flag!r} (use {', '.join(FLAGS)})")
        try:
            self.vip = ip_to_int(address)
            self.netmask = ip_to_int(netmask)
        except (ValueError, TypeError, AttributeError):
            raise LbError(f"bad address or netmask: {address!r} / {netmask!r}") from None
        self.protocol = PROTOCOLS[protocol]
        self.port = port
        self.persistence = persistence
        self.forward = forward
        self.flags = tuple(flags)
        self.expire_quiescent = expire_quiescent  # sysctl expire_quiescent_template
        self.servers: List[RealServer] = []
        self.live: List[RealServer] = []  # what the scheduler sees: the servers that are up
        self.templates: OrderedDict = OrderedDict()  # client network -> Template, oldest use first
        self.stats = Stats()
        self.no_dest = 0  # new connections no server could take
        self.scheduler = make_scheduler(scheduler, self.flags)
        self.health = None  # a HealthCheckConfig, or None
        self.version = 0  # bumped on every change of the server set, for those who watch it

    @property
    def key(self):
        return (self.protocol, self.vip, self.port)

    @property
    def name(self) -> str:
        return f"{PROTOCOL_NAMES[self.protocol]} {ip_to_str(self.vip)}:{self.port}"

    def set_scheduler(self, name: str) -> None:
        self.scheduler = make_scheduler(name, self.flags)
        self.scheduler.update(self.live)

    # -- servers (ipvsadm -a / -e / -d) ------------------------------------------------------------

    def find(self, address: str, port: int) -> Optional[RealServer]:
        addr = ip_to_int(address)
        for server in self.servers:
            if server.addr == addr and server.port == port:
                return server
        return None

    def add_server(self, address: str, port: Optional[int] = None, weight: int = 1, forward: Optional[str] = None,
                   u_threshold: int = 0, l_threshold: int = 0) -> RealServer:
        port = self.port if port is None else port
        if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 65535:
            raise LbError(f"weight must be 0..65535, not {weight!r}")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise LbError(f"server port must be 1..65535, not {port!r}")
        try:
            addr = ip_to_int(address)
        except (ValueError, TypeError, AttributeError):
            raise LbError(f"bad server address {address!r}") from None
        forward = forward or self.forward
        if forward not in FORWARD_NAMES:
            raise LbError(f"forward must be 'nat' or 'dr', not {forward!r}")
        if forward == FORWARD_DR and port != self.port:
            raise LbError(f"direct routing cannot change the port ({address}:{port} for {self.name})")
        if self.find(address, port) is not None:
            raise LbError(f"{address}:{port} is a server of {self.name} already")
        server = RealServer(addr, port, weight, forward, u_threshold, l_threshold)
        server.service = self
        self.servers.insert(0, server)  # IPVS's list_add: the newest first
        self._changed()
        return server

    def edit_server(self, address: str, port: Optional[int] = None, weight: Optional[int] = None) -> RealServer:
        server = self.find(address, self.port if port is None else port)
        if server is None:
            raise LbError(f"no server {address}:{port or self.port} in {self.name}")
        if weight is not None:
            if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 65535:
                raise LbError(f"weight must be 0..65535, not {weight!r}")
            server.weight = weight  # 0 drains: no new connections, the existing ones go on
        self._changed()
        return server

    def remove_server(self, address: str, port: Optional[int] = None) -> RealServer:
        server = self.find(address, self.port if port is None else port)
        if server is None:
            raise LbError(f"no server {address}:{port or self.port} in {self.name}")
        self.servers.remove(server)
        for key in [k for k, t in self.templates.items() if t.server is server]:
            del self.templates[key]
        self._changed()
        return server

    def set_up(self, server: RealServer, up: bool) -> None:
        """Health checks decided: in or out of the scheduler's list."""
        if server.up != up:
            server.up = up
            self._changed()

    def _changed(self) -> None:
        self.version += 1
        self.live = [s for s in self.servers if s.up]
        self.scheduler.update(self.live)

    # -- choosing a server for a new connection ----------------------------------------------------

    def schedule(self, src: int, sport: int, dst: int, dport: int, now: float):
        """The server for a new connection (and its persistence template, or None)."""
        if not self.persistence:
            return self.scheduler.pick(self.live, src, sport, dst, dport), None
        key = src & self.netmask
        templates = self.templates
        template = templates.get(key)
        if template is not None:
            server = template.server
            usable = server.up and server in self.servers and not (self.expire_quiescent and server.weight == 0)
            if usable and (template.deadline > now or template.refs > 0):
                template.deadline = max(template.deadline, now + self.persistence)
                templates.move_to_end(key)
                return server, template
            self._drop_template(key)
        server = self.scheduler.pick(self.live, src, sport, dst, dport)
        if server is None:
            return None, None
        while len(templates) >= MAX_TEMPLATES:
            oldest = next(iter(templates))
            if templates[oldest].refs > 0 and templates[oldest].deadline > now:
                return server, None  # every template is in use: schedule without persistence
            self._drop_template(oldest)
        template = templates[key] = Template(server, now + self.persistence)
        server.persistent += 1
        return server, template

    def _drop_template(self, key) -> None:
        template = self.templates.pop(key, None)
        if template is not None:
            template.server.persistent -= 1

    def expire_templates(self, now: float) -> None:
        for key in [k for k, t in self.templates.items() if t.deadline <= now and t.refs <= 0]:
            self._drop_template(key)

    def __repr__(self) -> str:
        return f"<VirtualService {self.name} {self.scheduler.name} {len(self.servers)} servers>"
