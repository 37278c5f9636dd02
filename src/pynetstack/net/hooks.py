"""Hook points in netfilter's order, network functions registered on them, and the packet context.

A stage is a plain callable ``stage(ctx) -> verdict``; a network function is an object that
registers one per hook it wants (``NetworkFunction``) and may have timers and counters.
Priorities follow nftables (defrag -400, conntrack -200, dstnat -100, filter 0, srcnat 100,
conntrack confirm last); equal priorities run in the order added.
"""

from __future__ import annotations

import bisect
import struct
from typing import Callable, Dict, List, Optional, Tuple

PREROUTING = "prerouting"
INPUT = "input"
FORWARD = "forward"
OUTPUT = "output"
POSTROUTING = "postrouting"
HOOK_NAMES = (PREROUTING, INPUT, FORWARD, OUTPUT, POSTROUTING)

ACCEPT = "accept"
DROP = "drop"
REJECT = "reject"  # drop and answer: ctx.reject says how (an ICMP error or a TCP reset)
STOLEN = "stolen"  # the stage took the packet (queued it, answered it): stop without a drop
VERDICTS = (ACCEPT, DROP, REJECT, STOLEN)

PRIORITY_RAW = -300
PRIORITY_CONNTRACK = -200
PRIORITY_MANGLE = -150
PRIORITY_DSTNAT = -100
PRIORITY_FILTER = 0
PRIORITY_SECURITY = 50
PRIORITY_SRCNAT = 100
PRIORITY_CONFIRM = 2 ** 31 - 1  # Linux confirms conntrack entries after every other stage

_PORTS = struct.Struct("!HH").unpack_from

PKT_HOST, PKT_BROADCAST, PKT_MULTICAST, PKT_OTHER = "host", "broadcast", "multicast", "other"


class PacketContext:
    """What a stage sees, computed once per packet and carried from hook to hook (like an skb):
    the parsed datagram, its flow key and L4 fields, the interfaces, the mark, the conntrack
    entry, and a trace of what happened.  ``host`` answers for stages that reject."""

    __slots__ = ("ip", "hook", "in_iface", "out_iface", "now", "drop_reason", "trace", "marks", "mark",
                 "proto", "sport", "dport", "tcp_flags", "icmp_type", "icmp_code", "ct", "ct_state",
                 "ct_dir", "pkttype", "reject", "host", "route", "in_flow", "offload", "nftrace")

    def __init__(self, ip, hook: str, now: float, in_iface=None, out_iface=None, trace: Optional[list] = None,
                 host=None, mark: int = 0, pkttype: str = PKT_HOST):
        self.ip = ip
        self.hook = hook
        self.now = now
        self.in_iface = in_iface
        self.out_iface = out_iface
        self.drop_reason = None
        self.trace = trace
        self.marks: Dict[str, object] = {}  # free-form notes between stages (QoS class, ...)
        self.mark = mark  # the packet mark (nft meta mark), kept to the device
        self.ct = None  # the conntrack entry, when conntrack runs
        self.ct_state = "untracked"
        self.ct_dir = 0  # 0 original, 1 reply
        self.pkttype = pkttype
        self.reject = None  # ("icmp", type, code) or ("tcp-reset",) with the REJECT verdict
        self.host = host
        self.route = None  # the routing decision, once made
        self.offload = False  # conntrack says: established, later packets may take the flow table
        self.nftrace = False  # nft's meta nftrace: traced for ``nft monitor trace`` from then on
        self.refresh()
        self.in_flow = self.flow  # the flow as it arrived, before any rewrite

    def refresh(self) -> None:
        """Read the L4 fields again (after a stage rewrote the datagram, as NAT does)."""
        ip = self.ip
        proto = self.proto = ip.protocol
        payload = ip.payload
        self.sport = self.dport = self.tcp_flags = 0
        self.icmp_type = self.icmp_code = -1
        if ip.frag_offset:  # a later fragment carries no L4 header
            return
        if (proto == 6 or proto == 17) and len(payload) >= 4:
            self.sport, self.dport = _PORTS(payload)
            if proto == 6 and len(payload) >= 14:
                self.tcp_flags = payload[13]
        elif proto == 1 and len(payload) >= 2:
            self.icmp_type = payload[0]
            self.icmp_code = payload[1]

    # the names nft expressions use
    @property
    def iifname(self) -> str:
        return self.in_iface.name if self.in_iface is not None else ""

    @property
    def oifname(self) -> str:
        return self.out_iface.name if self.out_iface is not None else ""

    @property
    def length(self) -> int:
        return self.ip.header_length + len(self.ip.payload)

    @property
    def flow(self) -> Tuple[int, int, int, int, int]:
        """(protocol, source, source port, destination, destination port); ICMP queries carry
        their identifier in both port fields (conntrack's ICMP tuple differs: ct_icmp.py)."""
        if self.proto == 1 and self.icmp_type in (0, 8, 13, 14) and len(self.ip.payload) >= 6:
            ident = (self.ip.payload[4] << 8) | self.ip.payload[5]
            return (1, self.ip.src, ident, self.ip.dst, ident)
        return (self.proto, self.ip.src, self.sport, self.ip.dst, self.dport)

    @property
    def ct_direction(self) -> str:
        return "reply" if self.ct_dir else "original"

    @property
    def ct_status(self) -> frozenset:
        ct = self.ct
        return frozenset(getattr(ct, "status_names", lambda: ())()) if ct is not None else frozenset()

    def note(self, text: str) -> None:
        """Record a step of this packet's journey, when it is being traced."""
        if self.trace is not None:
            self.trace.append(f"{self.hook}: {text}")

    def drop(self, reason: str) -> str:
        """Return DROP, counted under ``reason``."""
        self.drop_reason = reason
        return DROP

    def reject_with_icmp(self, icmp_type: int = 3, code: int = 3) -> str:
        """Return REJECT answered by an ICMP error (default: port unreachable, as nft's reject)."""
        self.reject = ("icmp", icmp_type, code)
        return REJECT

    def reject_with_tcp_reset(self) -> str:
        self.reject = ("tcp-reset",)
        return REJECT


class NetworkFunction:
    """A network function on the packet path: what it is called, the hooks it sits on with
    their priorities, and ``process(ctx) -> verdict``; optional timers and counters.

    Register it once with ``IPv4Host.register(function)`` (or ``Stack.register``): it is put on
    its hooks, its ``poll(now)`` runs in the stack's loop when ``next_deadline()`` comes due, and
    ``stats()`` appears in the stack's status."""

    name = "function"
    hooks: Tuple[Tuple[str, int], ...] = ()
    # True for a function that must see every packet of a flow (an IDS reassembling streams, a
    # shaper): while one is registered, the flow table takes no flows and every packet takes the hooks
    sees_every_packet = False

    def process(self, ctx: PacketContext) -> str:
        return ACCEPT

    def stages(self) -> List[Tuple[str, int, Callable, str]]:
        """(hook, priority, stage, name) for every stage: by default ``process`` on each of
        ``hooks``; a function with several stages on one hook (one per nft chain) says so here."""
        return [(hook, priority, self.process, self.name) for hook, priority in self.hooks]

    def poll(self, now: float) -> None:  # noqa: B027 - optional
        pass

    def next_deadline(self) -> Optional[float]:
        return None

    def stats(self) -> dict:
        return {}

    def explain(self) -> str:
        return self.name


class Hooks:
    def __init__(self):
        self._stages: Dict[str, List[Tuple[int, int, str, Callable]]] = {name: [] for name in HOOK_NAMES}
        self._order = 0
        self.functions: List[NetworkFunction] = []
        self._registered: Dict[int, list] = {}
        self.every_packet = False  # a registered function must see every packet: no flow offload
        self.generation = 0  # bumped on every change, so cached decisions can be invalidated

    def add(self, hook: str, stage: Callable, priority: int = PRIORITY_FILTER, name: str = "") -> None:
        if hook not in self._stages:
            raise ValueError(f"unknown hook {hook!r}; hooks are {', '.join(HOOK_NAMES)}")
        self._order += 1
        bisect.insort(self._stages[hook], (priority, self._order, name or getattr(stage, "__name__", "stage"), stage))
        self.generation += 1

    def remove(self, hook: str, stage: Callable) -> None:
        self._stages[hook] = [entry for entry in self._stages[hook] if entry[3] != stage]
        self.generation += 1

    def register(self, function: NetworkFunction) -> None:
        if function in self.functions:
            raise ValueError(f"network function {function.name!r} is registered already")
        stages = function.stages()
        for hook, priority, stage, name in stages:
            self.add(hook, stage, priority, name)
        self._registered[id(function)] = stages
        self.functions.append(function)
        self.every_packet = any(f.sees_every_packet for f in self.functions)

    def unregister(self, function: NetworkFunction) -> None:
        for hook, _, stage, _ in self._registered.pop(id(function), ()):
            self.remove(hook, stage)
        self.functions.remove(function)
        self.every_packet = any(f.sees_every_packet for f in self.functions)

    def stages(self, hook: str) -> List[Tuple[int, str]]:
        return [(priority, name) for priority, _, name, _ in self._stages[hook]]

    def has_stages(self, hook: str) -> bool:
        return bool(self._stages[hook])

    def run(self, ctx: PacketContext) -> str:
        """Run the stages of ``ctx.hook`` until one does not accept; return the verdict."""
        for _, _, name, stage in self._stages[ctx.hook]:
            verdict = stage(ctx)
            if verdict != ACCEPT:
                ctx.note(f"{name} -> {verdict}")
                return verdict
        return ACCEPT
