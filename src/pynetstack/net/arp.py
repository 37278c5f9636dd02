"""ARP on the host (RFC 826): answer requests for our addresses, learn neighbours, ask for next hops."""

from __future__ import annotations

from ..wire import arp as arpw
from ..wire import icmp as icmpw
from ..wire.addr import BROADCAST_MAC, ZERO_MAC, ip_to_str, mac_to_str
from ..wire.ethernet import ETH_ARP, ETH_IPV4, build_frame
from ..wire.ipv4 import IPv4
from .drops import DropReason
from .interface import Interface


class ArpMixin:
    """The ARP half of ``IPv4Host``."""

    def _arp_input(self, iface: Interface, packet, now: float) -> None:
        ours = self.local_addresses.get(packet.tpa) is iface
        if self._steps is not None:
            self.note(f"arp: {'request' if packet.op == arpw.REQUEST else 'reply'} {ip_to_str(packet.spa)} "
                      f"({mac_to_str(packet.sha)}) about {ip_to_str(packet.tpa)}{' (ours)' if ours else ''}")
        if packet.spa and packet.sha != iface.mac:
            waiting = iface.neighbours.update(packet.spa, packet.sha, now, create=ours)
            if waiting:
                self.note(f"arp: {len(waiting)} datagram(s) waiting for {ip_to_str(packet.spa)} released")
            for datagram, ctx in waiting:  # with its context: marks and QoS class reach the qdisc
                iface.transmit(build_frame(packet.sha, iface.mac, ETH_IPV4, datagram), now, ctx)
        if not ours:
            self.drops.drop(DropReason.ARP_NOT_FOR_US)
        elif packet.op == arpw.REQUEST:
            self._send_arp(iface, arpw.REPLY, packet.sha, packet.tpa, packet.sha, packet.spa, now)
            self.counters["arp_replies_sent"] += 1
            self.note(f"arp: replied {ip_to_str(packet.tpa)} is at {mac_to_str(iface.mac)}")

    def _neighbour_failed(self, next_hop: int, waiting: list, now: float) -> None:
        """No answer for ``next_hop``: its queued datagrams are dropped and, as Linux does
        (arp_error_report -> ipv4_link_failure), each source hears ICMP host unreachable, a
        forwarding peer on the wire and our own transports alike (the error is delivered locally)."""
        self.drops.update({DropReason.NEIGH_FAILED: len(waiting)})
        self.note(f"arp: no answer from {ip_to_str(next_hop)}: {len(waiting)} datagram(s) dropped")
        for datagram, _ctx in waiting:
            try:
                ip = IPv4.parse(datagram)
            except ValueError:
                continue
            self.send_icmp_error(ip, icmpw.DEST_UNREACHABLE, icmpw.CODE_HOST, now)

    def _send_arp_request(self, iface: Interface, target: int, now: float) -> None:
        sender = iface.address_for(target)
        if sender is not None:
            self._send_arp(iface, arpw.REQUEST, BROADCAST_MAC, sender, ZERO_MAC, target, now)

    def _send_arp(self, iface, op, eth_dst, spa, tha, tpa, now) -> None:
        body = arpw.Arp(op, iface.mac, spa, tha, tpa).build()
        iface.transmit(build_frame(eth_dst, iface.mac, ETH_ARP, body), now)
