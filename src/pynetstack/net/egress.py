"""A flow's cached way out of the host: route, egress device, next-hop MAC and header template."""

from __future__ import annotations

import struct

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
