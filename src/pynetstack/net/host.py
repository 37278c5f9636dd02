"""An IPv4 host (and, when enabled, router): ARP, IPv4 in/out, fragments, ICMP, hook points.

Sans-I/O: frames come in through ``receive_frame(iface, frame, now)``; frames go out through
the interface's device; timers run in ``poll(now)`` and ``next_deadline()`` says when.
Nothing raises out of ``receive_frame``: every dropped packet is counted under a reason.
"""

from __future__ import annotations

import logging
import os
import struct
from collections import Counter, OrderedDict, deque
from typing import Dict, Optional

from ..link.vnet import TrustedFrame, complete_checksum
from ..wire import arp as arpw
from ..wire import icmp as icmpw
from ..wire.addr import BROADCAST_MAC, ZERO_MAC, ip_to_str, mac_to_str, prefix_mask
from ..wire.errors import MalformedPacket
from ..wire.ethernet import ETH_ARP, ETH_IPV4, Ethernet, build_frame
from ..wire.ipv4 import PROTO_ICMP, IPv4, bad_option_offset, build_ipv4
from . import hooks as hk
from .drops import DropCounter, DropReason
from .fragment import fragment
from .interface import Interface
from .neighbour import NeighbourCache
from .reassembly import Reassembler
from .route import Route, RoutingTable

log = logging.getLogger("pynetstack")
LIMITED_BROADCAST = 0xFFFFFFFF
MIN_PMTU = 552  # Linux's net.ipv4.route.min_pmtu: the floor a path MTU message may push us to
PMTU_PLATEAUS = (65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68)  # RFC 1191 section 7
PMTU_LIFETIME = 600.0
PMTU_ENTRIES = 1024


# the receive fast path's view of an untagged Ethernet + IPv4 header: destination MAC,
# ethertype with version/IHL, total length, flags/fragment offset, protocol, source, destination
_rx_hdr_unpack = struct.Struct("!6s6x3sxHxxHxBxxII").unpack_from
_IPV4_NO_OPTIONS = b"\x08\x00\x45"
_from_bytes = int.from_bytes
_path_hdr = struct.Struct("!16sHH4sH8s")  # Ethernet + IPv4: the template, then length, ident, checksum
_path_pack = _path_hdr.pack


class OutputPath:
    """A flow's cached way out (DESIGN principle 5): route, egress device, next-hop MAC and a
    prebuilt Ethernet + IPv4 header, valid while the routing table, the hooks, the interface's
    neighbour cache and the learned path MTUs keep the generation they had when it was made,
    and until the neighbour entry (or a learned path MTU) expires.  Only the total length,
    the identification and the header checksum (updated incrementally, RFC 1624) change per
    datagram, so a segment costs one struct pack and one device call.

    Made by ``IPv4Host.output_path`` for a unicast, off-host destination when no OUTPUT or
    POSTROUTING stage is registered (a stage must see every packet); the transport keeps it
    and calls ``transmit``, which answers False when the path is stale, so the caller sends
    that datagram through ``ip_send`` and asks for a new path."""

    __slots__ = ("host", "iface", "neighbours", "device", "send", "send_parts", "send_gso", "mtu", "expires",
                 "route_gen", "hook_gen", "neigh_gen", "pmtu_gen", "prefix", "middle", "addresses",
                 "base", "ident", "gso_max", "protocol")

    def valid(self, now: float) -> bool:
        host = self.host
        return (now < self.expires and host._steps is None and host.routes.generation == self.route_gen
                and host.hooks.generation == self.hook_gen and self.neighbours.generation == self.neigh_gen
                and host.pmtu_generation == self.pmtu_gen)

    def header(self, length: int) -> bytes:
        """The Ethernet + IPv4 header (34 bytes) for a transport segment of ``length`` bytes."""
        ident = self.ident = (self.ident + 1) & 0xFFFF
        total = length + 20
        csum = 0xFFFF - ((self.base + total + ident) % 0xFFFF or 0xFFFF)
        return _path_pack(self.prefix, total, ident, self.middle, csum, self.addresses)

    def transmit(self, head: bytes, payload, now: float) -> bool:
        """Send transport header ``head`` and ``payload`` as one datagram; False when the path
        went stale or the datagram does not fit (the caller then uses ``ip_send``)."""
        host = self.host
        length = len(head) + len(payload)
        if (now >= self.expires or length + 20 > self.mtu or host._steps is not None
                or host.routes.generation != self.route_gen or host.hooks.generation != self.hook_gen
                or self.neighbours.generation != self.neigh_gen or host.pmtu_generation != self.pmtu_gen):
            return False
        ident = self.ident = (self.ident + 1) & 0xFFFF
        total = length + 20
        csum = 0xFFFF - ((self.base + total + ident) % 0xFFFF or 0xFFFF)
        header = _path_pack(self.prefix, total, ident, self.middle, csum, self.addresses)
        host.counters["ip_out_requests"] += 1
        iface = self.iface
        iface.tx_frames += 1
        if total < 46:  # Ethernet minimum: pad (the IPv4 total length tells the payload apart)
            payload = bytes(payload) + bytes(46 - total)
        iface.tx_bytes += total + 14
        send_parts = self.send_parts
        if send_parts is not None:
            send_parts((header, head, payload), now)
        else:
            self.send(b"".join((header, head, payload)), now)
        return True

    def transmit_gso(self, head: bytes, payload, gso_size: int, now: float) -> bool:
        """As ``transmit`` for a TCP segment with an unfinished checksum (the field holds the
        pseudo-header sum) of up to ``gso_max`` bytes, which the device cuts into segments of
        ``gso_size`` payload bytes (segmentation offload)."""
        host = self.host
        length = len(head) + len(payload)
        if (not self.gso_max or length + 20 > self.gso_max or now >= self.expires or host._steps is not None
                or host.routes.generation != self.route_gen or host.hooks.generation != self.hook_gen
                or self.neighbours.generation != self.neigh_gen or host.pmtu_generation != self.pmtu_gen):
            return False
        ident = self.ident = (self.ident + 1) & 0xFFFF
        total = length + 20
        csum = 0xFFFF - ((self.base + total + ident) % 0xFFFF or 0xFFFF)
        header = _path_pack(self.prefix, total, ident, self.middle, csum, self.addresses)
        counters = host.counters
        counters["ip_out_requests"] += 1
        counters["ip_out_offloaded"] += 1
        iface = self.iface
        iface.tx_frames += 1
        iface.tx_bytes += total + 14
        self.send_gso((header, head, payload), gso_size, 34 + len(head), now)
        return True


def _bad_source(src: int) -> bool:
    """Sources no host may use (RFC 1122 3.2.1.3): broadcast, multicast, class E, loopback."""
    top = src >> 24
    return src == LIMITED_BROADCAST or top >= 224 or top == 127


class IPv4Host:
    # whoever drives the host (Stack.step, Simulation) calls poll(now) after every batch of
    # received frames, so transports may answer a batch at once (IpOutput.delivers_in_batches)
    delivers_in_batches = True

    def __init__(self, forwarding: bool = False, default_ttl: int = 64, icmp_errors_per_second: float = 1000.0,
                 echo_reply: bool = True):
        self.forwarding = forwarding
        self.default_ttl = default_ttl
        self.echo_reply = echo_reply
        self.interfaces: Dict[str, Interface] = {}
        self.routes = RoutingTable()
        self.hooks = hk.Hooks()
        self.drops = DropCounter()
        self.counters: Counter = Counter()
        self.transports: Dict[int, object] = {}
        self._rx_fast: Dict[int, object] = {}  # protocol -> receive_segment of its transport
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
        self._icmp_rate = icmp_errors_per_second
        self._icmp_tokens = icmp_errors_per_second
        self._icmp_stamp = 0.0

    # ------------------------------------------------------------------ configuration
    def add_interface(self, iface: Interface) -> Interface:
        if iface.name in self.interfaces:
            raise ValueError(f"interface {iface.name!r} exists already")
        iface.neighbours = NeighbourCache(
            lambda ip, now: self._send_arp_request(iface, ip, now),
            lambda ip, packets: self.drops.update({DropReason.NEIGH_FAILED: len(packets)}))
        self.interfaces[iface.name] = iface
        return iface

    def add_address(self, iface: Interface, address: int, length: int) -> None:
        iface.addresses.append((address, length))
        self.local_addresses[address] = iface
        if length <= 30:
            mask = prefix_mask(length)
            self.broadcasts[(address & mask) | (~mask & 0xFFFFFFFF)] = iface
        self.routes.add(Route(address, length, iface))

    def add_route(self, prefix: int, length: int, gateway: Optional[int] = None,
                  iface: Optional[Interface] = None, metric: int = 0) -> Route:
        if iface is None:
            via = self.routes.lookup(gateway) if gateway is not None else None
            if via is None:
                if gateway is None:
                    raise ValueError("a route needs an interface or a gateway")
                raise ValueError(f"gateway {ip_to_str(gateway)} is not on a connected network")
            iface = via.interface
        route = Route(prefix, length, iface, gateway, metric)
        self.routes.add(route)
        return route

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
                if (mac == iface.mac and typ == _IPV4_NO_OPTIONS and not frag & 0x3FFF
                        and 20 <= total <= n - 14 and dst in self.local_addresses):
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

    def _parameter_problem(self, datagram, now: float) -> None:
        """RFC 1122 3.2.2.5: answer a datagram with an impossible option (its header checksum
        held: the parser checks that first) with ICMP parameter problem pointing at the option."""
        ip = IPv4.parse_quoted(datagram)
        offset = bad_option_offset(ip.options)
        if offset is not None and ip.dst in self.local_addresses:
            self.send_icmp_error(ip, icmpw.PARAMETER_PROBLEM, 0, now,
                                 rest=icmpw.parameter_problem_rest(20 + offset))

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

    def _arp_input(self, iface: Interface, packet, now: float) -> None:
        ours = self.local_addresses.get(packet.tpa) is iface
        if self._steps is not None:
            self.note(f"arp: {'request' if packet.op == arpw.REQUEST else 'reply'} {ip_to_str(packet.spa)} "
                      f"({mac_to_str(packet.sha)}) about {ip_to_str(packet.tpa)}{' (ours)' if ours else ''}")
        if packet.spa and packet.sha != iface.mac:
            waiting = iface.neighbours.update(packet.spa, packet.sha, now, create=ours)
            if waiting:
                self.note(f"arp: {len(waiting)} datagram(s) waiting for {ip_to_str(packet.spa)} released")
            for datagram in waiting:
                iface.transmit(build_frame(packet.sha, iface.mac, ETH_IPV4, datagram), now)
        if not ours:
            self.drops.drop(DropReason.ARP_NOT_FOR_US)
        elif packet.op == arpw.REQUEST:
            self._send_arp(iface, arpw.REPLY, packet.sha, packet.tpa, packet.sha, packet.spa, now)
            self.counters["arp_replies_sent"] += 1
            self.note(f"arp: replied {ip_to_str(packet.tpa)} is at {mac_to_str(iface.mac)}")

    def _ip_input(self, iface: Interface, ip: IPv4, now: float) -> None:
        self.counters["ip_in_receives"] += 1
        if self._steps is not None:
            self.note(f"ipv4: {ip_to_str(ip.src)} > {ip_to_str(ip.dst)} protocol {ip.protocol} ttl {ip.ttl} "
                      f"length {ip.total_length}: header valid")
        src = ip.src
        if _bad_source(src) or src in self.broadcasts or (src in self.local_addresses and iface is not None):
            # RFC 1812 5.3.7 martians; our own address arriving from the wire is a spoof (a "land"
            # packet to port 7 from port 7 would otherwise echo to itself forever).
            self.drops.drop(DropReason.IP_BAD_SOURCE)
            return
        if self.hooks.has_stages(hk.PREROUTING) and not self._hook(hk.PREROUTING, ip, now, iface, None):
            return
        dst = ip.dst
        if dst in self.local_addresses or dst in self.broadcasts or dst == LIMITED_BROADCAST:
            self._local_deliver(iface, ip, now)
        elif self.forwarding:
            self._forward(iface, ip, now)
        else:
            self.drops.drop(DropReason.IP_NOT_FOR_US)

    def _hook(self, hook: str, ip: IPv4, now: float, in_iface, out_iface) -> bool:
        ctx = hk.PacketContext(ip, hook, now, in_iface, out_iface, trace=self._steps)
        verdict = self.hooks.run(ctx)
        if verdict == hk.DROP:
            self.drops.drop(ctx.drop_reason or DropReason.HOOK_DROP)
        elif verdict != hk.ACCEPT and verdict != hk.STOLEN:
            self.drops.drop(DropReason.HOOK_BAD_VERDICT)
            log.error("a stage at %s returned %r, not a verdict: the packet is dropped", hook, verdict)
        return verdict == hk.ACCEPT

    def _local_deliver(self, iface, ip: IPv4, now: float) -> None:
        if ip.mf or ip.frag_offset:
            self.note(f"reassembly: fragment at offset {ip.frag_offset}, {len(ip.payload)} bytes, more={ip.mf}")
            ip = self.reassembler.add(ip, now)
            if ip is None:
                return
            self.note(f"reassembly: datagram complete, {len(ip.payload)} bytes")
        if self.hooks.has_stages(hk.INPUT) and not self._hook(hk.INPUT, ip, now, iface, None):
            return
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

    def _icmp_input(self, ip: IPv4, now: float) -> None:
        msg = icmpw.Icmp.parse(ip.payload)
        self.counters["icmp_in"] += 1
        kind = msg.type
        self.note(f"icmp: {icmpw.TYPE_NAMES.get(kind, f'type {kind}')} code {msg.code}")
        if kind == icmpw.ECHO_REQUEST:
            # Like Linux (icmp_echo_ignore_broadcasts=1), answer only echoes to our unicast addresses.
            if self.echo_reply and ip.dst in self.local_addresses:
                reply = icmpw.build_icmp(icmpw.ECHO_REPLY, 0, msg.rest, bytes(msg.payload))
                self.note(f"icmp: answering with an echo reply, id {msg.ident} seq {msg.seq}")
                self.ip_send(ip.dst, ip.src, PROTO_ICMP, reply, now, df=False, tos=ip.tos)
                self.counters["icmp_echo_replies"] += 1
            else:
                self.drops.drop(DropReason.ICMP_UNHANDLED)
        elif kind == icmpw.ECHO_REPLY:
            for listener in self.echo_listeners:
                listener(ip, msg, now)
        elif msg.is_error:
            self._icmp_error_input(msg, now)
        else:
            self.drops.drop(DropReason.ICMP_UNHANDLED)

    def _icmp_error_input(self, msg, now: float) -> None:
        inner = IPv4.parse_quoted(msg.payload)
        if inner.src not in self.local_addresses:
            self.drops.drop(DropReason.ICMP_NOT_OURS)  # it quotes a datagram we never sent
            return
        transport = self.transports.get(inner.protocol)
        acceptable = getattr(transport, "icmp_error_acceptable", None)
        if acceptable is not None and not acceptable(inner, inner.payload):
            self.drops.drop(DropReason.ICMP_NOT_OURS)  # it quotes no flow of ours (RFC 5927)
            return
        info = msg.rest
        if msg.type == icmpw.DEST_UNREACHABLE and msg.code == icmpw.CODE_FRAG_NEEDED:
            info = self._learn_path_mtu(inner.dst, msg.mtu, inner.total_length, now)
        if transport is not None:
            transport.icmp_error(msg.type, msg.code, info, inner, bytes(inner.payload), now)
        self.counters["icmp_errors_in"] += 1

    def _learn_path_mtu(self, dst: int, mtu: int, quoted_length: int, now: float) -> int:
        """RFC 1191: lower the estimate towards ``dst``; never raise it on an ICMP message (section 3),
        and never below MIN_PMTU, so a forged message cannot make us send confetti."""
        if mtu == 0:  # RFC 1191 section 5: a router of RFC 792 vintage; take the next plateau down
            mtu = next((p for p in PMTU_PLATEAUS if p < quoted_length), MIN_PMTU)
        current = self.path_mtu(dst)
        mtu = max(MIN_PMTU, min(mtu, current))
        self.pmtu[dst] = (mtu, now + PMTU_LIFETIME)
        self.pmtu_generation += 1
        self.pmtu.move_to_end(dst)
        while len(self.pmtu) > PMTU_ENTRIES:
            self.pmtu.popitem(last=False)
        return mtu

    def _interface_mtu(self, dst: int) -> int:
        route = self.routes.lookup(dst)
        return route.interface.mtu if route else 1500

    def _reassembly_timed_out(self, first: IPv4, now: float) -> None:
        self.send_icmp_error(first, icmpw.TIME_EXCEEDED, icmpw.REASSEMBLY_TIME_EXCEEDED, now)

    def _forward(self, iface: Interface, ip: IPv4, now: float) -> None:
        if ip.ttl <= 1:
            self.drops.drop(DropReason.IP_TTL_EXPIRED)
            self.send_icmp_error(ip, icmpw.TIME_EXCEEDED, icmpw.TTL_EXCEEDED, now)
            return
        route = self.routes.lookup(ip.dst)
        if route is None:
            self.drops.drop(DropReason.IP_NO_ROUTE)
            self.send_icmp_error(ip, icmpw.DEST_UNREACHABLE, icmpw.CODE_NET, now)
            return
        if self.hooks.has_stages(hk.FORWARD) and not self._hook(hk.FORWARD, ip, now, iface, route.interface):
            return
        mtu = self._mtu_towards(route, ip.dst, now)
        if ip.df and ip.header_length + len(ip.payload) > mtu:
            self.drops.drop(DropReason.IP_FRAG_NEEDED)
            self.send_icmp_error(ip, icmpw.DEST_UNREACHABLE, icmpw.CODE_FRAG_NEEDED, now,
                                 rest=icmpw.frag_needed_rest(mtu))
            return
        ip.ttl -= 1
        self.counters["ip_forwarded"] += 1
        self._output(ip, route, now)

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
        route = self.routes.lookup(dst)
        if route is None:
            if dst != LIMITED_BROADCAST or not self.interfaces:
                self.drops.drop(DropReason.IP_NO_ROUTE)
                return False
            route = Route(dst, 32, next(iter(self.interfaces.values())))
        hooked = self.hooks.has_stages(hk.OUTPUT) or self.hooks.has_stages(hk.POSTROUTING)
        if not hooked and 20 + len(payload) <= self._mtu_towards(route, dst, now):
            datagram = build_ipv4(src, dst, protocol, payload, ttl, self._ident, df, tos)
            self._transmit(route, dst, datagram, now)
            return True
        ip = IPv4(src, dst, protocol, payload, ttl=ttl, tos=tos, ident=self._ident, df=df)
        if self.hooks.has_stages(hk.OUTPUT):
            if not self._hook(hk.OUTPUT, ip, now, None, route.interface):
                return False
            if ip.dst != dst:  # a stage rewrote the destination (DNAT on output): route again
                route = self.routes.lookup(ip.dst)
                if route is None:
                    self.drops.drop(DropReason.IP_NO_ROUTE)
                    return False
        return self._output(ip, route, now)

    def output_path(self, src: int, dst: int, protocol: int, now: float, ttl: Optional[int] = None,
                    tos: int = 0) -> Optional[OutputPath]:
        """A cached way out for datagrams ``src`` -> ``dst`` (DF set), or None when each must
        take the full path: a local or broadcast destination, no route, an unresolved next hop,
        a hook on OUTPUT or POSTROUTING, or a packet being traced."""
        if dst in self.local_addresses or dst in self.broadcasts or dst == LIMITED_BROADCAST or self._steps is not None:
            return None
        hooks = self.hooks
        if hooks.has_stages(hk.OUTPUT) or hooks.has_stages(hk.POSTROUTING):
            return None
        route = self.routes.lookup(dst)
        if route is None:
            return None
        iface = route.interface
        next_hop = route.next_hop(dst)
        if next_hop in self.broadcasts:
            return None
        neighbours = iface.neighbours
        mac = neighbours.static.get(next_hop)
        expires = float("inf")
        if mac is None:
            entry = neighbours.entries.get(next_hop)
            if entry is None or entry[1] <= now:
                return None
            mac, expires = entry
        mtu = iface.mtu
        learned = self.pmtu.get(dst)
        if learned is not None:
            if learned[1] <= now:
                return None  # let the slow path expire it
            mtu = min(mtu, learned[0])
            expires = min(expires, learned[1])
        path = OutputPath()
        path.host = self
        path.iface = iface
        path.neighbours = neighbours
        device = iface.device
        path.device = device
        path.send = device.send
        path.send_parts = getattr(device, "send_parts", None)
        path.send_gso = getattr(device, "send_gso_parts", None)
        path.gso_max = getattr(device, "gso_max", 0) if path.send_gso is not None else 0
        path.mtu = mtu
        path.expires = expires
        path.route_gen = self.routes.generation
        path.hook_gen = hooks.generation
        path.neigh_gen = neighbours.generation
        path.pmtu_gen = self.pmtu_generation
        ttl = self.default_ttl if ttl is None else ttl
        path.protocol = protocol
        path.prefix = mac + iface.mac + bytes((0x08, 0x00, 0x45, tos))
        path.middle = struct.pack("!HBB", 0x4000, ttl, protocol)
        path.addresses = struct.pack("!II", src, dst)
        # the constant words of the IPv4 header, to which each datagram adds length and ident
        path.base = (0x4500 | tos) + 0x4000 + ((ttl << 8) | protocol) + src + dst
        self._ident = (self._ident + 1) & 0xFFFF
        path.ident = self._ident
        self.counters["output_paths_made"] += 1
        return path

    def _send_offloaded(self, src, dst, protocol, payload, now, ttl, df, tos, gso_size) -> bool:
        route = self.routes.lookup(dst)
        device = route.interface.device if route is not None else None
        if (dst in self.local_addresses or route is None or not getattr(device, "gso_max", 0)
                or self.hooks.has_stages(hk.OUTPUT) or self.hooks.has_stages(hk.POSTROUTING)
                or 20 + len(payload) > device.gso_max):
            # the offload went away (a hook was added, the route changed): finish in software
            self.counters["ip_offload_fallbacks"] += 1
            payload = complete_checksum(payload, 0, 16)
            return self.ip_send(src, dst, protocol, payload, now, ttl, df, tos)
        self.counters["ip_out_requests"] += 1
        self._ident = (self._ident + 1) & 0xFFFF
        datagram = build_ipv4(src, dst, protocol, payload, self.default_ttl if ttl is None else ttl,
                              self._ident, df, tos)
        iface = route.interface
        next_hop = route.next_hop(dst)
        mac = iface.neighbours.lookup(next_hop, now)
        if mac is None:
            if len(datagram) > iface.mtu:
                self.drops.drop(DropReason.NEIGH_QUEUE_FULL)
                return False
            payload = complete_checksum(payload, 0, 16)
            return self.ip_send(src, dst, protocol, payload, now, ttl, df, tos)
        frame = build_frame(mac, iface.mac, ETH_IPV4, datagram)
        iface.tx_frames += 1
        iface.tx_bytes += len(frame)
        self.counters["ip_out_offloaded"] += 1
        if self._steps is not None:
            self.note(f"out on {iface.name}: {len(frame)} bytes, TCP segmentation offload to {gso_size}-byte payloads")
        device.send_gso(frame, gso_size, now)
        return True

    def _output(self, ip: IPv4, route: Route, now: float) -> bool:
        """Send ``ip`` as the hooks leave it: POSTROUTING stages may rewrite header and payload."""
        if self.hooks.has_stages(hk.POSTROUTING) and not self._hook(hk.POSTROUTING, ip, now, None, route.interface):
            return False
        payload = bytes(ip.payload)
        mtu = self._mtu_towards(route, ip.dst, now)
        if ip.header_length + len(payload) <= mtu:
            self._transmit(route, ip.dst, ip.build_header(len(payload)) + payload, now)
            return True
        if ip.df:
            self.drops.drop(DropReason.IP_FRAG_NEEDED)
            return False
        pieces = fragment(ip, payload, mtu)
        self.counters["ip_fragments_created"] += len(pieces)
        self.note(f"fragmentation: {ip.header_length + len(payload)}-byte datagram in {len(pieces)} fragments "
                  f"for MTU {mtu}")
        for piece in pieces:
            self._transmit(route, ip.dst, piece, now)
        return True

    def _mtu_towards(self, route: Route, dst: int, now: float) -> int:
        learned = self.pmtu.get(dst)
        if learned is not None:
            if learned[1] > now:
                return min(learned[0], route.interface.mtu)
            del self.pmtu[dst]
        return route.interface.mtu

    def _transmit(self, route: Route, dst: int, datagram: bytes, now: float) -> None:
        iface = route.interface
        next_hop = route.next_hop(dst)
        if next_hop == LIMITED_BROADCAST or next_hop in self.broadcasts:
            mac = BROADCAST_MAC
        else:
            mac = iface.neighbours.lookup(next_hop, now)
        if self._steps is not None:
            self.note(f"route: {ip_to_str(dst)} via {route!r}; next hop {ip_to_str(next_hop)} "
                      + (f"is at {mac_to_str(mac)}" if mac else "unresolved: queued for ARP"))
        if mac is not None:
            iface.transmit(build_frame(mac, iface.mac, ETH_IPV4, datagram), now)
            self.note(f"out on {iface.name}: {len(datagram) + 14} bytes")
        elif not iface.neighbours.enqueue(next_hop, datagram, now):
            self.drops.drop(DropReason.NEIGH_QUEUE_FULL)

    def _send_arp_request(self, iface: Interface, target: int, now: float) -> None:
        sender = iface.address_for(target)
        if sender is not None:
            self._send_arp(iface, arpw.REQUEST, BROADCAST_MAC, sender, ZERO_MAC, target, now)

    def _send_arp(self, iface, op, eth_dst, spa, tha, tpa, now) -> None:
        body = arpw.Arp(op, iface.mac, spa, tha, tpa).build()
        iface.transmit(build_frame(eth_dst, iface.mac, ETH_ARP, body), now)

    def send_icmp_error(self, ip: IPv4, icmp_type: int, code: int, now: float, rest: int = 0) -> bool:
        """Send an ICMP error about ``ip`` unless RFC 1122 3.2.2 forbids it or the rate limit bites."""
        src = ip.src
        if (ip.frag_offset or _bad_source(src) or src == 0 or src in self.broadcasts or self._link_broadcast
                or ip.dst == LIMITED_BROADCAST or ip.dst in self.broadcasts or ip.dst >> 28 == 14):
            return False
        if ip.protocol == PROTO_ICMP:
            payload = ip.payload
            if len(payload) < 1 or payload[0] in icmpw.ERROR_TYPES:
                return False
        self._icmp_tokens = min(self._icmp_rate, self._icmp_tokens + (now - self._icmp_stamp) * self._icmp_rate)
        self._icmp_stamp = now
        if self._icmp_tokens < 1:
            self.drops.drop(DropReason.ICMP_RATE_LIMITED)
            return False
        self._icmp_tokens -= 1
        quoted = IPv4(ip.src, ip.dst, ip.protocol, ip.payload, ttl=ip.ttl, tos=ip.tos, ident=ip.ident,
                      df=ip.df, mf=ip.mf, frag_offset=ip.frag_offset, options=ip.options)
        payload = bytes(ip.payload)
        original = quoted.build_header(len(payload)) + payload
        source = ip.dst if ip.dst in self.local_addresses else self.source_address_for(src)
        if source is None:
            return False
        self.counters["icmp_errors_out"] += 1
        self.note(f"icmp: sending {icmpw.TYPE_NAMES.get(icmp_type, icmp_type)} (code {code}) to {ip_to_str(src)}")
        return self.ip_send(source, src, PROTO_ICMP, icmpw.build_error(icmp_type, code, original, rest), now,
                            df=False, tos=0xC0)

    # ------------------------------------------------------------------ IpOutput helpers
    def source_address_for(self, dst: int) -> Optional[int]:
        if dst in self.local_addresses:
            return dst
        route = self.routes.lookup(dst)
        if route is None:
            return None
        return route.interface.address_for(route.next_hop(dst))

    def is_local_address(self, address: int) -> bool:
        return address in self.local_addresses

    def max_segment(self, dst: int) -> int:
        """The largest IPv4 datagram a transport may hand to ``ip_send`` with ``gso_size`` for
        ``dst`` (the device segments it: TCP segmentation offload), or 0 when segments must fit
        the MTU: no offloading device on the route, a local destination, or hooks on OUTPUT or
        POSTROUTING (their stages expect packets of the real size)."""
        if dst in self.local_addresses:
            return 0
        hooks = self.hooks
        if hooks.has_stages(hk.OUTPUT) or hooks.has_stages(hk.POSTROUTING):
            return 0
        route = self.routes.lookup(dst)
        if route is None:
            return 0
        return getattr(route.interface.device, "gso_max", 0)

    def path_mtu(self, dst: int) -> int:
        route = self.routes.lookup(dst)
        if route is None:
            return 576
        learned = self.pmtu.get(dst)
        return min(learned[0], route.interface.mtu) if learned else route.interface.mtu

    # ------------------------------------------------------------------ timers
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
        self.reassembler.poll(now)
        for transport in self.transports.values():
            transport.poll(now)

    def next_deadline(self) -> Optional[float]:
        if self._loopback:
            return 0.0
        deadlines = [iface.neighbours.next_deadline() for iface in self.interfaces.values()]
        deadlines.append(self.reassembler.next_deadline())
        deadlines.extend(t.next_deadline() for t in self.transports.values())
        deadlines = [d for d in deadlines if d is not None]
        return min(deadlines) if deadlines else None
