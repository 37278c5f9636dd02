"""Forwarding and the hooks on the way: PREROUTING -> route -> FORWARD -> POSTROUTING (RFC 1812).

The order follows Linux's ``ip_forward``: the TTL is checked, the route decided (route types as
``ip route`` has them), the path MTU checked against DF, the TTL decremented, then the FORWARD
and POSTROUTING stages run.  Verdicts other than accept end here: a drop is counted under its
reason, a reject answered with an ICMP error or a TCP reset as nftables' ``reject`` does.
"""

from __future__ import annotations

import logging
import struct

from ..wire import icmp as icmpw
from ..wire.addr import ip_to_str
from ..wire.ipv4 import PROTO_TCP
from ..wire.tcp import build_tcp
from . import hooks as hk
from .drops import DropReason

log = logging.getLogger("pynetstack")

TCP_SYN, TCP_FIN, TCP_RST, TCP_ACK = 0x02, 0x01, 0x04, 0x10
_PORTS = struct.Struct("!HH").unpack_from


class ForwardMixin:
    """The forwarding half of ``IPv4Host``, and how verdicts of the hooks take effect."""

    def _run_hook(self, ctx: hk.PacketContext, hook: str) -> bool:
        """Run ``hook``'s stages on ``ctx``; True when the packet goes on."""
        ctx.hook = hook
        verdict = self.hooks.run(ctx)
        if verdict == hk.ACCEPT:
            return True
        if verdict == hk.DROP:
            self.drops.drop(ctx.drop_reason or DropReason.HOOK_DROP)
        elif verdict == hk.REJECT:
            self.drops.drop(ctx.drop_reason or DropReason.HOOK_REJECT)
            self._answer_reject(ctx)
        elif verdict != hk.STOLEN:
            self.drops.drop(DropReason.HOOK_BAD_VERDICT)
            log.error("a stage at %s returned %r, not a verdict: the packet is dropped", hook, verdict)
        return False

    def _hook(self, hook: str, ip, now: float, in_iface, out_iface) -> bool:
        return self._run_hook(self.packet_context(ip, hook, now, in_iface, out_iface), hook)

    def packet_context(self, ip, hook: str, now: float, in_iface=None, out_iface=None) -> hk.PacketContext:
        pkttype = hk.PKT_BROADCAST if self._link_broadcast else hk.PKT_HOST
        return hk.PacketContext(ip, hook, now, in_iface, out_iface, trace=self._steps, host=self, pkttype=pkttype)

    def _answer_reject(self, ctx: hk.PacketContext) -> None:
        how = ctx.reject or ("icmp", icmpw.DEST_UNREACHABLE, icmpw.CODE_PORT)
        ip = ctx.ip
        if how[0] == "tcp-reset":
            if ip.protocol == PROTO_TCP:
                self.send_tcp_reset(ip, ctx.now)
            return
        self.send_icmp_error(ip, how[1], how[2], ctx.now)

    def send_tcp_reset(self, ip, now: float) -> bool:
        """Answer a TCP segment with a reset from its destination, as Linux's nf_send_reset does:
        with the segment's ACK number as our sequence number if it had ACK set, else sequence 0
        and an ACK of everything it occupied (RFC 9293 3.10.7.1)."""
        seg = ip.payload
        if len(seg) < 20 or seg[13] & TCP_RST:
            return False
        flags = seg[13]
        sport = (seg[0] << 8) | seg[1]
        dport = (seg[2] << 8) | seg[3]
        seq = int.from_bytes(seg[4:8], "big")
        if flags & TCP_ACK:
            rst = build_tcp(ip.dst, ip.src, dport, sport, int.from_bytes(seg[8:12], "big"), 0, TCP_RST, 0)
        else:
            length = len(seg) - ((seg[12] >> 4) * 4) + (1 if flags & TCP_SYN else 0) + (1 if flags & TCP_FIN else 0)
            rst = build_tcp(ip.dst, ip.src, dport, sport, 0, (seq + length) & 0xFFFFFFFF, TCP_RST | TCP_ACK, 0)
        self.counters["tcp_resets_sent_by_reject"] += 1
        self.note("reject: answering with a TCP reset")
        return self.ip_send(ip.dst, ip.src, PROTO_TCP, rst, now)

    def _forward(self, iface, ip, now: float, ctx=None) -> None:
        if ip.ttl <= 1:
            self.drops.drop(DropReason.IP_TTL_EXPIRED)
            self.send_icmp_error(ip, icmpw.TIME_EXCEEDED, icmpw.TTL_EXCEEDED, now)
            return
        if ctx is not None:
            decision = self.routes.decide(ip.dst, ip.src, iface.name, ctx.mark, ctx.proto, ctx.sport, ctx.dport,
                                          self._flow_hash(ctx), now)
        else:  # no hooks, so no context: read the ports here, or the L4 hash and port rules see none
            proto = ip.protocol
            payload = ip.payload
            sport = dport = 0
            flow_hash = None
            if not ip.frag_offset:
                if (proto == 6 or proto == 17) and len(payload) >= 4:
                    sport, dport = _PORTS(payload)
                elif proto == 1 and len(payload) >= 28 and payload[0] in icmpw.ERROR_TYPES:
                    flow_hash = self._error_flow_hash(payload)
            decision = self.routes.decide(ip.dst, ip.src, iface.name, 0, proto, sport, dport, flow_hash, now)
        if decision is None:
            self.drops.drop(DropReason.IP_NO_ROUTE)
            self.send_icmp_error(ip, icmpw.DEST_UNREACHABLE, icmpw.CODE_NET, now)
            return
        kind = decision.type
        if kind != "unicast":
            self._route_refuses(kind, ip, now)
            return
        out = decision.interface
        if self._steps is not None:
            self.note(f"route: {ip_to_str(ip.dst)} via {decision.route!r}")
        mtu = self._mtu_towards(out, ip.dst, now)
        size = ip.header_length + len(ip.payload)
        # a TCP datagram larger than the wire it came from was coalesced by the kernel (GRO, or
        # TSO/GSO at the sender): forwarded whole and cut on output, as Linux does
        coalesced = size > mtu and ip.protocol == PROTO_TCP and size > iface.mtu
        if ip.df and size > mtu and not coalesced:
            self.drops.drop(DropReason.IP_FRAG_NEEDED)
            self.send_icmp_error(ip, icmpw.DEST_UNREACHABLE, icmpw.CODE_FRAG_NEEDED, now,
                                 rest=icmpw.frag_needed_rest(mtu))
            return
        ip.ttl -= 1
        if ctx is not None:
            ctx.out_iface = out
            ctx.route = decision
            if self.hooks.has_stages(hk.FORWARD) and not self._run_hook(ctx, hk.FORWARD):
                return
        self.counters["ip_forwarded"] += 1
        if (self._output(ip, out, decision.next_hop, now, ctx, coalesced) and ctx is not None and ctx.offload
                and not self.hooks.every_packet):
            self.flowtable.offer(ctx.in_flow, ctx.ip, out, decision.next_hop, ctx.ct, now)

    def _route_refuses(self, kind: str, ip, now: float) -> None:
        """Route types that end a packet (``ip route`` blackhole, unreachable, prohibit)."""
        if kind == "blackhole":
            self.drops.drop(DropReason.ROUTE_BLACKHOLE)
        elif kind == "unreachable":
            self.drops.drop(DropReason.ROUTE_UNREACHABLE)
            self.send_icmp_error(ip, icmpw.DEST_UNREACHABLE, icmpw.CODE_HOST, now)
        elif kind == "prohibit":
            self.drops.drop(DropReason.ROUTE_PROHIBIT)
            self.send_icmp_error(ip, icmpw.DEST_UNREACHABLE, icmpw.CODE_ADMIN_PROHIBITED, now)
        else:  # a local route to an address we do not hold, or a type we do not forward
            self.drops.drop(DropReason.IP_NO_ROUTE)
            self.send_icmp_error(ip, icmpw.DEST_UNREACHABLE, icmpw.CODE_NET, now)

    def _flow_hash(self, ctx):
        """The ECMP hash of a packet's flow; ICMP errors hash on the datagram they quote, so they
        follow the path of the flow they are about."""
        ip = ctx.ip
        if ctx.proto == 1 and ctx.icmp_type in icmpw.ERROR_TYPES and len(ip.payload) >= 28:
            return self._error_flow_hash(ip.payload)
        return self.routes.flow_hash(ip.src, ip.dst, ctx.proto, ctx.sport, ctx.dport)

    def _error_flow_hash(self, icmp) -> int:
        """The hash of the datagram an ICMP error (``icmp``, its ICMP message) quotes."""
        flow_hash = self.routes.flow_hash
        inner = icmp[8:]
        ihl = (inner[0] & 0x0F) * 4
        proto = inner[9]
        src = int.from_bytes(inner[12:16], "big")
        dst = int.from_bytes(inner[16:20], "big")
        ports = inner[ihl:ihl + 4]
        if proto in (6, 17) and len(ports) == 4:
            return flow_hash(src, dst, proto, (ports[0] << 8) | ports[1], (ports[2] << 8) | ports[3])
        return flow_hash(src, dst, proto)
