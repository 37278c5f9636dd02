"""An IPv4 host (and, when enabled, router): IPv4 in and out, fragments, hook points.

Sans-I/O: frames come in through ``receive_frame(iface, frame, now)``; frames go out through
the interface's device; timers run in ``poll(now)`` and ``next_deadline()`` says when.
Nothing raises out of ``receive_frame``: every dropped packet is counted under a reason.
Interfaces, addresses and routes are set up in ``addressing.py``, ARP lives in ``arp.py``, ICMP
and path MTU in ``icmp.py``, forwarding in ``forward.py``, the cached per-flow way out in
``egress.py``.
"""

from __future__ import annotations

import errno
import logging
import os
import struct
from collections import Counter, OrderedDict, deque
from typing import Dict, Optional

from ..link.vnet import TrustedFrame, complete_checksum
from ..wire import arp as arpw
from ..wire.addr import BROADCAST_MAC, ZERO_MAC, ip_to_str, mac_to_str
from ..wire.errors import MalformedPacket
from ..wire.ethernet import ETH_ARP, ETH_IPV4, Ethernet, build_frame
from ..wire import icmp as icmpw
from ..wire.ipv4 import PROTO_ICMP, PROTO_TCP, IPv4, build_ipv4
from . import hooks as hk
from .addressing import AddressingMixin
from .arp import ArpMixin
from .drops import DropCounter, DropReason
from .egress import EgressMixin
from .flowtable import FlowTable
from .forward import ForwardMixin
from .fragment import fragment
from .gso import segment_tcp
from .icmp import LIMITED_BROADCAST, IcmpMixin, bad_source
from .interface import Interface
from .reassembly import Reassembler
from .route_policy import RoutingPolicy

log = logging.getLogger("pynetstack")
_ROUTE_DROPS = {"blackhole": DropReason.ROUTE_BLACKHOLE, "unreachable": DropReason.ROUTE_UNREACHABLE,
                "prohibit": DropReason.ROUTE_PROHIBIT}
_ROUTE_ERRNO = {"blackhole": errno.EINVAL, "unreachable": errno.EHOSTUNREACH, "prohibit": errno.EACCES}
_PORTS = struct.Struct("!HH").unpack_from


def _ports(protocol: int, payload) -> tuple:
    """(source port, destination port) of a TCP or UDP payload, for routing by ports."""
    return _PORTS(payload) if (protocol == 6 or protocol == 17) and len(payload) >= 4 else (0, 0)

# the receive fast path's view of an untagged Ethernet + IPv4 header: destination MAC,
# ethertype with version/IHL, total length, flags/fragment offset, protocol, source, destination
_rx_hdr_unpack = struct.Struct("!6s6x3sxHxxHxBxxII").unpack_from
_IPV4_NO_OPTIONS = b"\x08\x00\x45"
_from_bytes = int.from_bytes


class IPv4Host(AddressingMixin, ArpMixin, IcmpMixin, ForwardMixin, EgressMixin):
    # whoever drives the host (Stack.step, Simulation) calls poll(now) after every batch of
    # received frames, so transports may answer a batch at once (IpOutput.delivers_in_batches)
    delivers_in_batches = True

    def __init__(self, forwarding: bool = False, default_ttl: int = 64, icmp_errors_per_second: float = 1000.0,
                 echo_reply: bool = True):
        self.forwarding = forwarding
        self.default_ttl = default_ttl
        self.echo_reply = echo_reply
        self.interfaces: Dict[str, Interface] = {}
        self.routes = RoutingPolicy()
        self.hooks = hk.Hooks()
        self.drops = DropCounter()
        self.counters: Counter = Counter()
        self.transports: Dict[int, object] = {}
        # protocol -> receive_segment of its transport, and the ICMP echo responder
        self._rx_fast: Dict[int, object] = {PROTO_ICMP: self._icmp_fast}
        self.local_addresses: Dict[int, Interface] = {}
        self.broadcasts: Dict[int, Interface] = {}
        self.reassembler = Reassembler(self.drops.drop, self._reassembly_timed_out)
        self.pmtu: "OrderedDict[int, tuple]" = OrderedDict()  # dst -> (mtu, expires)
        self.echo_listeners = []  # callables(ip, icmp, now) for echo replies (ping clients)
        self._ident = int.from_bytes(os.urandom(2), "big")
        self.pmtu_generation = 0  # bumped when a learned path MTU changes (cached OutputPaths)
        self._loopback: deque = deque()
        self.tracer = None  # a callable(frame) -> bool choosing frames to trace, with .emit(steps)
        self._steps = None  # the journey of the frame being traced, step by step
        self._link_broadcast = False  # the frame being handled came to the Ethernet broadcast address
        self._rx_fast_gen = -1  # hooks generation the receive fast path was checked against
        self._rx_fast_ok = False
        self._nf_gen = -1
        self.flowtable = FlowTable(self)
        self.address_listeners = []  # callables(iface, address) told when an address goes away
        self.route_error = 0  # why the last ip_send found no way (an errno), for local senders
        self._nf_active = False
        self._icmp_rate = icmp_errors_per_second
        self._icmp_tokens = icmp_errors_per_second
        self._icmp_stamp = 0.0
        self._echo_paths = {}  # (pinger, our address, TOS) -> OutputPath (net/icmp.py)

    def register(self, function: hk.NetworkFunction) -> None:
        """Put a network function on its hooks; ``poll`` runs its timers from now on."""
        self.hooks.register(function)

    def register_transport(self, protocol: int, transport) -> None:
        self.transports[protocol] = transport
        # a transport that takes (src, dst, segment, now, check) may get segments on the
        # receive fast path (see _receive_frame)
        take = getattr(transport, "receive_segment", None)
        if take is not None:
            self._rx_fast[protocol] = take
        else:
            self._rx_fast.pop(protocol, None)

    def start(self, now: float) -> None:
        """Announce our addresses with gratuitous ARP (RFC 5227 section 3)."""
        for iface in self.interfaces.values():
            for address, _ in iface.addresses:
                self._send_arp(iface, arpw.REQUEST, BROADCAST_MAC, address, ZERO_MAC, address, now)

    # ------------------------------------------------------------------ tracing
    def trace(self, tracer) -> None:
        """Trace the journey of frames: ``tracer(frame)`` says which, ``tracer.emit(steps)`` gets them."""
        self.tracer = tracer
        self.drops.observer = (lambda reason: self.note(f"DROPPED: {reason}")) if tracer else None

    def note(self, text: str) -> None:
        if self._steps is not None:
            self._steps.append(text)

    # ------------------------------------------------------------------ receive path
    def receive_frame(self, iface: Interface, frame, now: float) -> None:
        if self.tracer is not None and self.tracer(frame):
            self._steps = [f"in on {iface.name}: {len(frame)} bytes"]
            try:
                self._receive_frame(iface, frame, now)
            finally:
                steps, self._steps = self._steps, None
                self.tracer.emit(frame, steps)
        else:
            self._receive_frame(iface, frame, now)

    def _receive_frame(self, iface: Interface, frame, now: float) -> None:
        if not iface.up:
            self.drops.drop(DropReason.LINK_DOWN)
            return
        iface.rx_frames += 1
        n = len(frame)
        iface.rx_bytes += n
        try:
            if n >= 54 and frame.__class__ is bytes and self._steps is None:
                # Fast path (DESIGN principle 5, on input): an untagged, unfragmented IPv4
                # datagram without options from a plausible source to one of our unicast
                # addresses, for a transport that takes segments without an IPv4 object, and
                # no PREROUTING or INPUT stage: the same checks as the full path, without its
                # Ethernet and IPv4 objects.  Anything else takes the full path below.
                mac, typ, total, frag, proto, src, dst = _rx_hdr_unpack(frame)
                plain = mac == iface.mac and typ == _IPV4_NO_OPTIONS and not frag & 0x3FFF and 20 <= total <= n - 14
                # An established forwarded flow (either direction, NAT included): the flow table
                # sends it on with the decision the full path made for its first packets.
                if (plain and self.flowtable.flows and total >= 28
                        and _from_bytes(frame[14:34], "big") % 0xFFFF == 0
                        and self.flowtable.forward(iface, frame, src, dst, proto, now)):
                    return
                if plain and dst in self.local_addresses:
                    take = self._rx_fast.get(proto)
                    if take is not None and self.hooks.generation == self._rx_fast_gen:
                        top = src >> 24
                        if (_from_bytes(frame[14:34], "big") % 0xFFFF == 0 and top < 224 and top != 127
                                and src not in self.local_addresses and src not in self.broadcasts):
                            counters = self.counters
                            counters["ip_in_receives"] += 1
                            counters["ip_in_delivers"] += 1
                            take(src, dst, memoryview(frame)[34:14 + total], now, True)
                            return
                    elif take is not None:
                        self._rx_fast_check()
            eth = Ethernet.parse(frame)
            dst = eth.dst
            self._link_broadcast = dst == BROADCAST_MAC
            if dst != iface.mac and dst != BROADCAST_MAC:
                self.drops.drop(DropReason.NOT_FOR_US_MAC)
            elif eth.vlans and (len(eth.vlans) > 1 or eth.vlans[0] & 0x0FFF):
                # VLAN 0 is a priority tag (802.1p): the frame belongs to the untagged LAN.
                self.drops.drop(DropReason.VLAN_NOT_CONFIGURED)
            elif eth.ethertype == ETH_IPV4:
                try:
                    ip = IPv4.parse(eth.payload)
                except MalformedPacket as exc:
                    if exc.reason == "ipv4-bad-option":
                        self._parameter_problem(eth.payload, now)
                    raise
                if frame.__class__ is TrustedFrame:
                    ip = self._trusted(frame, ip)
                self._ip_input(iface, ip, now)
            elif eth.ethertype == ETH_ARP:
                self._arp_input(iface, arpw.Arp.parse(eth.payload), now)
            else:
                self.drops.drop(DropReason.UNKNOWN_ETHERTYPE)
        except MalformedPacket as exc:
            self.drops.drop(exc.reason)
        except Exception:  # a bug must cost one packet, not the stack
            self.drops.drop(DropReason.INTERNAL_ERROR)
            log.exception("internal error while receiving a frame on %s", iface.name)
        finally:
            self._link_broadcast = False

    def _rx_fast_check(self) -> None:
        """Allow the receive fast path while no PREROUTING or INPUT stage is registered (the
        answer holds for one hooks generation); a frame that finds it stale takes the full path."""
        hooks = self.hooks
        self._rx_fast_gen = -1 if hooks.has_stages(hk.PREROUTING) or hooks.has_stages(hk.INPUT) else hooks.generation

    def _trusted(self, frame, ip: IPv4) -> IPv4:
        """A datagram whose transport checksum the device vouched for (checksum offload). When
        its checksum field is unfinished and the datagram may go anywhere but our own sockets
        (forwarding, hooks that may rewrite or inspect it), finish the checksum first, so every
        stage sees the datagram as it would be on a wire."""
        self.counters["ip_in_checksum_trusted"] += 1
        if not frame.partial or (ip.dst in self.local_addresses and not self.hooks.has_stages(hk.PREROUTING)
                                 and not self.hooks.has_stages(hk.INPUT)):
            ip.csum_ok = True
            return ip
        self.counters["ip_checksums_completed"] += 1
        ip = IPv4.parse(Ethernet.parse(complete_checksum(frame, frame.csum_start, frame.csum_offset)).payload)
        ip.csum_ok = True
        return ip


    def _ip_input(self, iface: Interface, ip: IPv4, now: float) -> None:
        self.counters["ip_in_receives"] += 1
        if self._steps is not None:
            self.note(f"ipv4: {ip_to_str(ip.src)} > {ip_to_str(ip.dst)} protocol {ip.protocol} ttl {ip.ttl} "
                      f"length {ip.total_length}: header valid")
        src = ip.src
        if bad_source(src) or src in self.broadcasts or (src in self.local_addresses and iface is not None):
            # RFC 1812 5.3.7 martians; our own address arriving from the wire is a spoof (a "land"
            # packet to port 7 from port 7 would otherwise echo to itself forever).
            self.drops.drop(DropReason.IP_BAD_SOURCE)
            return
        ctx = None
        if self.netfilter_active:
            # Linux defragments before conntrack (priority -400): every stage sees whole datagrams
            if ip.mf or ip.frag_offset:
                ip = self._reassemble(ip, now)
                if ip is None:
                    return
            ctx = self.packet_context(ip, hk.PREROUTING, now, iface)
            if self.hooks.has_stages(hk.PREROUTING) and not self._run_hook(ctx, hk.PREROUTING):
                return
            ip = ctx.ip  # a stage may have rewritten it (DNAT)
        dst = ip.dst
        if dst in self.local_addresses or dst in self.broadcasts or dst == LIMITED_BROADCAST:
            self._local_deliver(iface, ip, now, ctx)
        elif self.forwarding:
            self._forward(iface, ip, now, ctx)
        else:
            self.drops.drop(DropReason.IP_NOT_FOR_US)

    @property
    def netfilter_active(self) -> bool:
        """Stages on a receive hook: then packets are reassembled first and carry one context."""
        hooks = self.hooks
        if hooks.generation != self._nf_gen:
            self._nf_gen = hooks.generation
            self._nf_active = any(hooks.has_stages(h) for h in (hk.PREROUTING, hk.INPUT, hk.FORWARD, hk.POSTROUTING))
        return self._nf_active

    def _reassemble(self, ip: IPv4, now: float):
        self.note(f"reassembly: fragment at offset {ip.frag_offset}, {len(ip.payload)} bytes, more={ip.mf}")
        ip = self.reassembler.add(ip, now)
        if ip is not None:
            self.note(f"reassembly: datagram complete, {len(ip.payload)} bytes")
        return ip

    def _local_deliver(self, iface, ip: IPv4, now: float, ctx=None) -> None:
        if ip.mf or ip.frag_offset:
            ip = self._reassemble(ip, now)
            if ip is None:
                return
        if self.hooks.has_stages(hk.INPUT):
            if ctx is None:
                ctx = self.packet_context(ip, hk.INPUT, now, iface)
            if not self._run_hook(ctx, hk.INPUT):
                return
            ip = ctx.ip
        self.counters["ip_in_delivers"] += 1
        self.note("deliver: to this host")
        if ip.protocol == PROTO_ICMP:
            self._icmp_input(ip, now)
            return
        transport = self.transports.get(ip.protocol)
        if transport is not None:
            transport.receive(ip, now)
        else:
            self.drops.drop(DropReason.PROTO_UNREACHABLE)
            self.send_icmp_error(ip, icmpw.DEST_UNREACHABLE, icmpw.CODE_PROTOCOL, now)

    # ------------------------------------------------------------------ send path
    def ip_send(self, src: int, dst: int, protocol: int, payload: bytes, now: float,
                ttl: Optional[int] = None, df: bool = True, tos: int = 0, gso_size: int = 0) -> bool:
        """Send one datagram from this host. False when it cannot go (no route, too big with DF).

        ``gso_size`` > 0: ``payload`` is a TCP segment with an unfinished checksum (the field
        holds the pseudo-header sum) of up to ``max_segment(dst)`` bytes, for a device with
        TCP segmentation offload to cut into pieces of ``gso_size`` payload bytes."""
        if gso_size:
            return self._send_offloaded(src, dst, protocol, payload, now, ttl, df, tos, gso_size)
        self.counters["ip_out_requests"] += 1
        self._ident = (self._ident + 1) & 0xFFFF
        ttl = self.default_ttl if ttl is None else ttl
        if dst in self.local_addresses:
            ip = IPv4(src, dst, protocol, payload, ttl=ttl, tos=tos, ident=self._ident, df=df)
            self._loopback.append(ip)
            return True
        sport, dport = _ports(protocol, payload)
        decision = self.routes.decide(dst, src, None, 0, protocol, sport, dport, None, now)
        if decision is None:
            if dst != LIMITED_BROADCAST or not self.interfaces:
                self.drops.drop(DropReason.IP_NO_ROUTE)
                self.route_error = errno.ENETUNREACH
                return False
            out, next_hop = next(iter(self.interfaces.values())), dst
        elif decision.type != "unicast":
            # a local sender learns why, as from Linux: blackhole EINVAL, unreachable
            # EHOSTUNREACH, prohibit EACCES
            self.drops.drop(_ROUTE_DROPS.get(decision.type, DropReason.IP_NO_ROUTE))
            self.route_error = _ROUTE_ERRNO.get(decision.type, errno.ENETUNREACH)
            return False
        else:
            out, next_hop = decision.interface, decision.next_hop
            if self._steps is not None:
                self.note(f"route: {ip_to_str(dst)} via {decision.route!r}")
        hooked = self.hooks.has_stages(hk.OUTPUT) or self.hooks.has_stages(hk.POSTROUTING)
        if not hooked and 20 + len(payload) <= self._mtu_towards(out, dst, now):
            datagram = build_ipv4(src, dst, protocol, payload, ttl, self._ident, df, tos)
            self._transmit(out, next_hop, datagram, now)
            return True
        ip = IPv4(src, dst, protocol, payload, ttl=ttl, tos=tos, ident=self._ident, df=df)
        ctx = None
        if self.hooks.has_stages(hk.OUTPUT):
            ctx = self.packet_context(ip, hk.OUTPUT, now, None, out)
            if not self._run_hook(ctx, hk.OUTPUT):
                return False
            ip = ctx.ip
            if ip.dst != dst:  # a stage rewrote the destination (DNAT on output): route again
                decision = self.routes.decide(ip.dst, ip.src, None, ctx.mark, ctx.proto, ctx.sport, ctx.dport,
                                              now=now)
                if decision is None or decision.type != "unicast":
                    self.drops.drop(DropReason.IP_NO_ROUTE)
                    return False
                out, next_hop = decision.interface, decision.next_hop
                ctx.out_iface = out
        return self._output(ip, out, next_hop, now, ctx)

    def _output(self, ip: IPv4, out: Interface, next_hop: int, now: float, ctx=None, coalesced: bool = False) -> bool:
        """Send ``ip`` as the hooks leave it: POSTROUTING stages may rewrite header and payload."""
        if self.hooks.has_stages(hk.POSTROUTING):
            if ctx is None:
                ctx = self.packet_context(ip, hk.POSTROUTING, now, None, out)
            ctx.out_iface = out
            if not self._run_hook(ctx, hk.POSTROUTING):
                return False
            ip = ctx.ip
        payload = bytes(ip.payload)
        mtu = self._mtu_towards(out, ip.dst, now)
        if ip.header_length + len(payload) <= mtu:
            self._transmit(out, next_hop, ip.build_header(len(payload)) + payload, now, ctx)
            return True
        if coalesced and ip.protocol == PROTO_TCP:
            segments = segment_tcp(ip, mtu)
            if segments:
                self.counters["ip_forward_segmented"] += 1
                self.note(f"segmentation: {ip.header_length + len(payload)}-byte coalesced TCP datagram in "
                          f"{len(segments)} segments for MTU {mtu}")
                for piece in segments:
                    piece_payload = piece.payload
                    self._transmit(out, next_hop, piece.build_header(len(piece_payload)) + piece_payload, now, ctx)
                return True
        if ip.df:
            self.drops.drop(DropReason.IP_FRAG_NEEDED)
            return False
        pieces = fragment(ip, payload, mtu)
        self.counters["ip_fragments_created"] += len(pieces)
        self.note(f"fragmentation: {ip.header_length + len(payload)}-byte datagram in {len(pieces)} fragments "
                  f"for MTU {mtu}")
        for piece in pieces:
            self._transmit(out, next_hop, piece, now, ctx)
        return True

    def _mtu_towards(self, out: Interface, dst: int, now: float) -> int:
        learned = self.pmtu.get(dst)
        if learned is not None:
            if learned[1] > now:
                return min(learned[0], out.mtu)
            del self.pmtu[dst]
        return out.mtu

    def _transmit(self, iface: Interface, next_hop: int, datagram: bytes, now: float, ctx=None) -> None:
        if next_hop == LIMITED_BROADCAST or next_hop in self.broadcasts:
            mac = BROADCAST_MAC
        else:
            mac = iface.neighbours.lookup(next_hop, now)
        if self._steps is not None:
            self.note(f"next hop {ip_to_str(next_hop)} on {iface.name} "
                      + (f"is at {mac_to_str(mac)}" if mac else "unresolved: queued for ARP"))
        if mac is not None:
            iface.transmit(build_frame(mac, iface.mac, ETH_IPV4, datagram), now, ctx)
            self.note(f"out on {iface.name}: {len(datagram) + 14} bytes")
        elif not iface.neighbours.enqueue(next_hop, (datagram, ctx), now):
            self.drops.drop(DropReason.NEIGH_QUEUE_FULL)

    def source_address_for(self, dst: int) -> Optional[int]:
        if dst in self.local_addresses:
            return dst
        decision = self.routes.decide(dst)
        if decision is None or decision.interface is None:
            return None
        return decision.interface.address_for(decision.next_hop)

    def is_local_address(self, address: int) -> bool:
        return address in self.local_addresses

    def poll(self, now: float) -> None:
        loopback = self._loopback
        for _ in range(len(loopback)):  # only what was queued before: a reply loop cannot spin here
            ip = loopback.popleft()
            try:
                self._local_deliver(None, ip, now)
            except MalformedPacket as exc:
                self.drops.drop(exc.reason)
            except Exception:
                self.drops.drop(DropReason.INTERNAL_ERROR)
                log.exception("internal error while delivering a looped-back datagram")
        for iface in self.interfaces.values():
            iface.neighbours.poll(now)
            if iface.qdisc is not None:  # frames the shaper holds leave when their time comes
                iface.qdisc.poll(now)
        self.reassembler.poll(now)
        if self.flowtable.flows:
            self.flowtable.poll(now)
        for function in self.hooks.functions:
            deadline = function.next_deadline()
            if deadline is not None and deadline <= now:
                function.poll(now)
        for transport in self.transports.values():
            transport.poll(now)

    def next_deadline(self) -> Optional[float]:
        # (asked before every pass of the loop: one walk, no lists)
        if self._loopback:
            return 0.0
        earliest = self.reassembler.next_deadline()
        deadline = self.flowtable.next_deadline()
        if deadline is not None and (earliest is None or deadline < earliest):
            earliest = deadline
        for iface in self.interfaces.values():
            deadline = iface.neighbours.next_deadline()
            if deadline is not None and (earliest is None or deadline < earliest):
                earliest = deadline
            if iface.qdisc is not None:
                deadline = iface.qdisc.next_deadline()
                if deadline is not None and (earliest is None or deadline < earliest):
                    earliest = deadline
        for transport in self.transports.values():
            deadline = transport.next_deadline()
            if deadline is not None and (earliest is None or deadline < earliest):
                earliest = deadline
        for function in self.hooks.functions:
            deadline = function.next_deadline()
            if deadline is not None and (earliest is None or deadline < earliest):
                earliest = deadline
        return earliest
