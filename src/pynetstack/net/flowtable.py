"""The flow table: established forwarded flows skip the hooks (DESIGN principle 5; nftables'
``flowtable``, Linux's flow offload).

The first packets of a flow take the whole path: PREROUTING, routing, FORWARD, POSTROUTING.  Once
conntrack calls the flow established, the host offers the flow here with what the path did to it
(the NAT rewrite, the egress interface, the next hop's MAC, the TTL decrement).  Later frames of
the same flow in the same direction are rewritten in place with precomputed checksum deltas
(RFC 1624) and sent, at a cost that does not grow with rules, routes or connections.

A cached decision is only good while everything it was made from is unchanged: the routes, the
hooks (a new ruleset), the neighbour entry, the learned path MTUs and the conntrack entry.  Each
is checked by a generation number or a deadline; a stale entry is dropped and the frame takes
the full path.  TCP segments with SYN, FIN or RST always take the full path, so conntrack sees
every state change (Linux tears an offloaded flow down on FIN or RST the same way).
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from typing import Callable, Optional

_hdr = struct.Struct("!6s6xHxxHxBBHII").unpack_from  # dst MAC, ethertype+ver/ihl, length, frag, ttl, proto, csum, src, dst
_ports = struct.Struct("!HH").unpack_from
_TCP_CONTROL = 0x07  # FIN, SYN, RST

IDLE_TIMEOUT = 30.0  # Linux's nf_flowtable offload timeout


def _delta(old_words, new_words) -> int:
    """The one's complement sum of ~old + new over 16-bit words (RFC 1624 equation 3)."""
    total = 0
    for old, new in zip(old_words, new_words):
        total += (~old & 0xFFFF) + new
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


class Flow:
    """One direction of an offloaded flow: how to rewrite and where to send its frames."""

    __slots__ = ("key", "in_iface", "iface", "send", "prefix", "addresses_ports", "ip_delta", "l4_delta",
                 "l4_csum_at", "mtu", "route_gen", "hook_gen", "neigh_gen", "pmtu_gen", "expires", "ct",
                 "packets", "bytes", "folded_packets", "folded_bytes", "neighbours", "last_used", "checked_until")


class FlowTable:
    """Offloaded flows by (protocol, source, source port, destination, destination port)."""

    def __init__(self, host, max_flows: int = 65536, idle_timeout: float = IDLE_TIMEOUT):
        self.host = host
        self.max_flows = max_flows
        self.idle_timeout = idle_timeout
        self.flows: "OrderedDict[tuple, Flow]" = OrderedDict()
        self._next_sweep = 0.0
        self.counters = {"offloaded": 0, "hits": 0, "stale": 0, "evicted": 0, "expired": 0, "torn_down": 0}
        # conntrack tells whether an entry still lives and takes the packets the flow table sent
        self.ct_alive: Callable[[object, float], bool] = lambda ct, now: True
        self.ct_refresh: Callable[[object, int, float], None] = lambda ct, nbytes, now: None

    def __len__(self) -> int:
        return len(self.flows)

    def offer(self, key: tuple, ip, out, next_hop: int, ct, now: float, ctx=None) -> Optional[Flow]:
        """Cache what the full path did to the packet of flow ``key`` that became ``ip`` (after
        NAT and the TTL decrement) and leaves through ``out`` towards ``next_hop``; ``ctx``'s
        mark and QoS class go with the flow to the egress queue."""
        if self.max_flows <= 0:  # the flow table is switched off
            return None
        host = self.host
        neighbours = out.neighbours
        resolved = neighbours.fresh(next_hop, now)
        if resolved is None:
            return None
        mac, expires = resolved
        proto, src, sport, dst, dport = key
        flow = Flow()
        flow.key = key
        flow.in_iface = ctx.in_iface if ctx is not None else None
        flow.iface = out
        flow.send = out.sender(ctx)
        flow.prefix = mac + out.mac
        new_sport, new_dport = sport, dport
        payload = ip.payload
        if proto in (6, 17) and len(payload) >= 4:
            new_sport, new_dport = _ports(payload)
        flow.addresses_ports = struct.pack("!IIHH", ip.src, ip.dst, new_sport, new_dport)
        # the IP header: addresses change, the TTL goes down by one (the TTL/protocol word by 0x0100)
        flow.ip_delta = _delta((src >> 16, src & 0xFFFF, dst >> 16, dst & 0xFFFF, 0x0100),
                               (ip.src >> 16, ip.src & 0xFFFF, ip.dst >> 16, ip.dst & 0xFFFF, 0))
        # the L4 checksum covers the pseudo-header's addresses and the ports
        flow.l4_delta = _delta((src >> 16, src & 0xFFFF, dst >> 16, dst & 0xFFFF, sport, dport),
                               (ip.src >> 16, ip.src & 0xFFFF, ip.dst >> 16, ip.dst & 0xFFFF, new_sport, new_dport))
        flow.l4_csum_at = {6: 34 + 16, 17: 34 + 6}.get(proto, 0)
        flow.mtu = host._mtu_towards(out, ip.dst, now)
        flow.route_gen = host.routes.generation
        flow.hook_gen = host.hooks.generation
        flow.neigh_gen = neighbours.generation
        flow.neighbours = neighbours
        flow.pmtu_gen = host.pmtu_generation
        flow.expires = expires
        flow.ct = ct
        flow.packets = flow.bytes = flow.folded_packets = flow.folded_bytes = 0
        flow.last_used = now
        flow.checked_until = now + 1.0
        flows = self.flows
        old = flows.get(key)
        if old is not None:
            self._fold(old)
        flows[key] = flow
        flows.move_to_end(key)
        self.counters["offloaded"] += 1
        while len(flows) > self.max_flows:
            self._fold(flows.popitem(last=False)[1])
            self.counters["evicted"] += 1
        return flow

    def forward(self, iface, frame, src: int, dst: int, proto: int, now: float) -> bool:
        """Send ``frame`` along its cached flow; False when it must take the full path.

        The per-packet work is the lookup, the generation checks and the rewrite; what may lag by a
        second is done once a second per flow (the conntrack entry's liveness and timeout) or in
        ``poll`` (the counters), as Linux's flowtable garbage collector does."""
        if proto == 6:
            if frame[47] & _TCP_CONTROL:
                return False
        elif proto != 17:
            return False
        sport, dport = _ports(frame, 34)
        flow = self.flows.get((proto, src, sport, dst, dport))
        if flow is None or flow.in_iface is not iface:  # keyed by the way in too, as nftables' flowtable
            return False
        host = self.host
        if (now >= flow.expires or flow.route_gen != host.routes.generation
                or flow.hook_gen != host.hooks.generation or flow.neigh_gen != flow.neighbours.generation
                or flow.pmtu_gen != host.pmtu_generation):
            return self._stale(flow)
        if now >= flow.checked_until:  # once a second: is the connection still there; keep it alive
            if not self.ct_alive(flow.ct, now):
                return self._stale(flow)
            self.ct_refresh(flow.ct, 0, now)
            flow.checked_until = now + 1.0
        ttl = frame[22]
        if ttl <= 1 or ((frame[16] << 8) | frame[17]) > flow.mtu:
            return False  # the full path answers with ICMP (time exceeded, fragmentation needed)
        out = bytearray(frame)
        out[0:12] = flow.prefix
        out[22] = ttl - 1
        total = (~((frame[24] << 8) | frame[25]) & 0xFFFF) + flow.ip_delta  # RFC 1624 eqn. 3
        total = (total & 0xFFFF) + (total >> 16)
        total = ~((total & 0xFFFF) + (total >> 16)) & 0xFFFF
        out[24] = total >> 8
        out[25] = total & 0xFF
        out[26:38] = flow.addresses_ports
        at = flow.l4_csum_at
        old = (frame[at] << 8) | frame[at + 1]
        if old or proto == 6:  # a UDP checksum of 0 means none, and stays none
            total = (~old & 0xFFFF) + flow.l4_delta
            total = (total & 0xFFFF) + (total >> 16)
            total = ~((total & 0xFFFF) + (total >> 16)) & 0xFFFF
            if total == 0 and proto == 17:
                total = 0xFFFF
            out[at] = total >> 8
            out[at + 1] = total & 0xFF
        flow.packets += 1
        flow.bytes += len(out)
        flow.last_used = now
        flow.send(out, now)
        return True

    def teardown(self, *keys: tuple) -> None:
        """Forget the flows of a connection whose state changes (a FIN or RST took the full path),
        as Linux's flow_offload_teardown: conntrack must see its closing packets."""
        for key in keys:
            flow = self.flows.pop(key, None)
            if flow is not None:
                self._fold(flow)
                self.counters["torn_down"] += 1

    def _stale(self, flow: Flow) -> bool:
        self._fold(flow)
        self.flows.pop(flow.key, None)
        self.counters["stale"] += 1
        return False

    def _fold(self, flow: Flow) -> None:
        """Move a flow's packet counts into the host's and the interface's counters."""
        packets, nbytes = flow.packets - flow.folded_packets, flow.bytes - flow.folded_bytes
        if not packets:
            return
        flow.folded_packets, flow.folded_bytes = flow.packets, flow.bytes
        self.counters["hits"] += packets
        counters = self.host.counters
        counters["ip_in_receives"] += packets
        counters["ip_forwarded"] += packets
        counters["ip_flow_offloaded"] += packets
        egress = flow.iface
        egress.tx_frames += packets
        egress.tx_bytes += nbytes

    def next_deadline(self) -> Optional[float]:
        return self._next_sweep if self.flows else None

    def poll(self, now: float) -> None:
        """Forget flows idle for ``idle_timeout`` (their conntrack entries go on by themselves);
        a sweep a second at most."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + 1.0
        idle = now - self.idle_timeout
        stale = []
        for key, flow in self.flows.items():
            self._fold(flow)
            if flow.last_used <= idle:
                stale.append(key)
        for key in stale:
            del self.flows[key]
        self.counters["expired"] += len(stale)

    def flush(self) -> None:
        for flow in self.flows.values():
            self._fold(flow)
        self.flows.clear()

    def stats(self) -> dict:
        for flow in self.flows.values():
            self._fold(flow)
        return dict(self.counters, flows=len(self.flows))
