"""An IPv4 host's configuration: interfaces, their addresses (each with its connected route and
broadcast address), links going down and up, static routes, as ``ip link``/``ip addr``/``ip
route`` set them.  A mixin of ``IPv4Host`` (host.py), whose tables it fills."""

from __future__ import annotations

from typing import Optional

from ..wire.addr import ip_to_str, prefix_mask
from .interface import Interface
from .neighbour import NeighbourCache
from .route import Route, RouteError


class AddressingMixin:
    def add_interface(self, iface: Interface) -> Interface:
        if iface.name in self.interfaces:
            raise ValueError(f"interface {iface.name!r} exists already")
        iface.neighbours = NeighbourCache(
            lambda ip, now: self._send_arp_request(iface, ip, now),
            self._neighbour_failed)
        self.interfaces[iface.name] = iface
        return iface

    def add_address(self, iface: Interface, address: int, length: int) -> None:
        iface.addresses.append((address, length))
        self.local_addresses[address] = iface
        if length <= 30:
            mask = prefix_mask(length)
            self.broadcasts[(address & mask) | (~mask & 0xFFFFFFFF)] = iface
        try:
            self.routes.add(Route(address, length, iface))  # the connected route (proto kernel scope link)
        except RouteError:
            pass  # a second address on a subnet the interface has a route for already

    def remove_address(self, iface: Interface, address: int, length: int) -> None:
        """Take an address away (``ip addr del``): its connected route goes, and whoever listens in
        ``address_listeners`` hears of it (NAT forgets the masquerade entries that used it)."""
        if (address, length) not in iface.addresses:
            raise ValueError(f"{iface.name} has no address {ip_to_str(address)}/{length}")
        iface.addresses.remove((address, length))
        self.local_addresses.pop(address, None)
        mask = prefix_mask(length)
        if length <= 30 and not any(a & mask == address & mask for a, n in iface.addresses if n == length):
            self.broadcasts.pop((address & mask) | (~mask & 0xFFFFFFFF), None)
        try:
            self.routes.delete(address, length, dev=iface)
        except RouteError:
            pass  # another address of the subnet holds the route
        self.flowtable.flush()
        for listener in self.address_listeners:
            listener(iface, address)

    def set_link(self, iface: Interface, up: bool) -> None:
        """Bring an interface down or up (``ip link set dev X down``): routes through it stop or
        start being chosen, so traffic fails over to the next-best route (a higher metric, the
        other next hops of a multipath route)."""
        iface.up = up
        self.routes.set_interface_state(iface, up)
        self.flowtable.flush()

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
