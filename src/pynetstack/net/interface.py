"""A network interface: a device plus the addresses, MTU and counters the stack gives it."""

from __future__ import annotations

from typing import List, Optional, Tuple

from ..link.base import Device, random_mac
from ..wire.addr import ip_to_str, mac_to_str, prefix_mask


class Interface:
    def __init__(self, name: str, device: Device, mac: Optional[bytes] = None, mtu: Optional[int] = None):
        self.name = name
        self.device = device
        self.mac = mac or random_mac()
        self.mtu = mtu or device.mtu
        self.addresses: List[Tuple[int, int]] = []  # (address, prefix length)
        self.neighbours = None  # a NeighbourCache, set by the host that owns the interface
        self.up = True  # administratively and operationally up (routes through it are live)
        self.rx_frames = self.rx_bytes = self.tx_frames = self.tx_bytes = 0

    def transmit(self, frame: bytes, now: float) -> None:
        self.tx_frames += 1
        self.tx_bytes += len(frame)
        self.device.send(frame, now)

    def address_for(self, peer: int) -> Optional[int]:
        """Our address on the subnet of ``peer``, else the first one."""
        for address, length in self.addresses:
            mask = prefix_mask(length)
            if address & mask == peer & mask:
                return address
        return self.addresses[0][0] if self.addresses else None

    def describe(self) -> str:
        addrs = ", ".join(f"{ip_to_str(a)}/{n}" for a, n in self.addresses) or "no address"
        return f"{self.name}: mac {mac_to_str(self.mac)} mtu {self.mtu} {addrs}"
