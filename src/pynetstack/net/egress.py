"""The host's way out for its own transports: a flow's cached path (route, egress device,
next-hop MAC, header template), and datagrams a device segments itself (TCP segmentation offload).
Devices say what they can do as data (``gso_max``), never by probing."""

from __future__ import annotations

import struct
from typing import Optional

from ..link.vnet import complete_checksum
from ..wire.ethernet import ETH_IPV4, build_frame
from ..wire.ipv4 import build_ipv4
from . import hooks as hk
from .drops import DropReason

LIMITED_BROADCAST = 0xFFFFFFFF

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
        ``gso_size`` payload bytes (segmentation offload).  ``payload`` may be a tuple of
        parts (a TCP send buffer's chunks), given to the device without joining them."""
        host = self.host
        if payload.__class__ is tuple:
            parts = payload
            length = len(head)
            for part in parts:
                length += len(part)
        else:
            parts = (payload,)
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
        self.send_gso((header, head) + parts, gso_size, 34 + len(head), now)
        return True


class EgressMixin:
    """The cached and offloaded output of ``IPv4Host`` (its transports' fast way out)."""

    def output_path(self, src: int, dst: int, protocol: int, now: float, ttl: Optional[int] = None,
                    tos: int = 0, df: bool = True) -> Optional[OutputPath]:
        """A cached way out for datagrams ``src`` -> ``dst`` (DF as given), or None when each must
        take the full path: a local or broadcast destination, no route, an unresolved next hop,
        a hook on OUTPUT or POSTROUTING, or a packet being traced."""
        if dst in self.local_addresses or dst in self.broadcasts or dst == LIMITED_BROADCAST or self._steps is not None:
            return None
        hooks = self.hooks
        if hooks.has_stages(hk.OUTPUT) or hooks.has_stages(hk.POSTROUTING):
            return None
        route = self.routes.lookup(dst)
        if route is None or route.interface is None or route.multipath:
            return None
        iface = route.interface
        next_hop = route.next_hop(dst)
        if next_hop in self.broadcasts:
            return None
        neighbours = iface.neighbours
        resolved = neighbours.fresh(next_hop, now)
        if resolved is None:
            return None
        mac, expires = resolved
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
        path.send = iface.sender()  # the qdisc classifies by the flow (no hooks ran: no context)
        queued = iface.qdisc is not None  # a qdisc takes whole frames, one wire frame each
        path.send_parts = None if queued else device.send_parts
        path.send_gso = device.send_gso_parts
        path.gso_max = 0 if queued else device.gso_max
        path.mtu = mtu
        path.expires = expires
        path.route_gen = self.routes.generation
        path.hook_gen = hooks.generation
        path.neigh_gen = neighbours.generation
        path.pmtu_gen = self.pmtu_generation
        ttl = self.default_ttl if ttl is None else ttl
        path.protocol = protocol
        path.prefix = mac + iface.mac + bytes((0x08, 0x00, 0x45, tos))
        flags = 0x4000 if df else 0
        path.middle = struct.pack("!HBB", flags, ttl, protocol)
        path.addresses = struct.pack("!II", src, dst)
        # the constant words of the IPv4 header, to which each datagram adds length and ident
        path.base = (0x4500 | tos) + flags + ((ttl << 8) | protocol) + src + dst
        self._ident = (self._ident + 1) & 0xFFFF
        path.ident = self._ident
        self.counters["output_paths_made"] += 1
        return path

    def _send_offloaded(self, src, dst, protocol, payload, now, ttl, df, tos, gso_size) -> bool:
        route = self.routes.lookup(dst)
        if route is not None and (route.interface is None or route.multipath):
            route = None  # not a plain unicast route: let ip_send decide
        device = route.interface.device if route is not None else None
        if (dst in self.local_addresses or route is None or not device.gso_max or route.interface.qdisc is not None
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
        if route is None or route.interface is None or route.multipath or route.interface.qdisc is not None:
            return 0
        return route.interface.device.gso_max
