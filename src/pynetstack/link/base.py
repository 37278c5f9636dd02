"""The one small interface every device offers the stack.

A device moves whole Ethernet frames.  ``receive`` drains what is ready (a batch), so a
PACKET_MMAP ring or batched sends can replace a device without changing the layers above.
Wrappers (fault injector, pcap writer) are devices around devices.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Callable, List, Optional

DEFAULT_BATCH = 64


def random_mac() -> bytes:
    """A random locally administered unicast MAC (first octet x2, x6, xA or xE)."""
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFC) | 0x02
    return bytes(raw)


class Device(ABC):
    """Base class: subclasses implement ``send`` and override the other I/O methods they need."""

    name = "device"
    mtu = 1500
    gso_max = 0  # the largest TCP datagram send_gso() takes (segmentation offload); 0: none
    mac: Optional[bytes] = None  # a MAC the device imposes (e.g. AF_PACKET's NIC), else None
    # A call that says, without a system call, whether frames are ready (a receive ring's
    # status word): what a busy-polling loop asks.  None: ask the file descriptor.
    pending: Optional[Callable[[], bool]] = None

    def fileno(self) -> Optional[int]:
        """A selectable fd that becomes readable when frames arrive, or None."""
        return None

    def receive(self, now: float, batch: int = DEFAULT_BATCH) -> List[bytes]:
        """Up to ``batch`` frames that are ready now (never blocks)."""
        return []

    @abstractmethod
    def send(self, frame: bytes, now: float) -> None:
        """Put one frame on the wire (a full queue drops it, as a congested wire would)."""

    def send_gso(self, frame: bytes, gso_size: int, now: float) -> None:
        """Send a TCP frame larger than the MTU for the device to cut into ``gso_size`` pieces.
        Only devices with ``gso_max`` > 0 are asked."""
        raise OSError(95, f"{self.name}: no segmentation offload")

    def send_parts(self, parts, now: float) -> None:
        """Send one frame given as a tuple of byte strings (a device with writev avoids the join)."""
        self.send(b"".join(parts), now)

    def send_gso_parts(self, parts, gso_size: int, hdr_len: int, now: float) -> None:
        """``send_gso`` for a frame given in parts whose headers take ``hdr_len`` bytes."""
        self.send_gso(b"".join(parts), gso_size, now)

    def hold(self) -> None:  # noqa: B027 - optional: most devices send at once
        """Let ``send`` queue frames until ``flush`` (a transmit ring then kicks the kernel once
        per batch instead of once per frame).  The stack's loop holds its devices while it
        processes a pass, under its lock, and flushes them at the end of the pass."""

    def flush(self, now: float) -> None:  # noqa: B027 - optional: most devices send at once
        """Hand every frame queued since ``hold`` to the wire and send at once again."""

    def poll(self, now: float) -> None:  # noqa: B027 - optional: most devices have no timers
        """Work due at ``now`` (a delaying wrapper releases frames here)."""

    def next_deadline(self) -> Optional[float]:
        return None

    def close(self) -> None:  # noqa: B027 - optional: an in-memory device holds nothing
        """Release the device (a device the stack created is removed)."""


class DeviceWrapper(Device):
    """A device that passes everything to ``inner`` unless it overrides a method."""

    def __init__(self, inner: Device):
        self.inner = inner
        self.name = inner.name
        self.mtu = inner.mtu
        self.mac = inner.mac
        self.gso_max = inner.gso_max
        self.pending = inner.pending

    def fileno(self):
        return self.inner.fileno()

    def receive(self, now, batch=DEFAULT_BATCH):
        return self.inner.receive(now, batch)

    def send(self, frame, now):
        self.inner.send(frame, now)

    def send_gso(self, frame, gso_size, now):
        self.inner.send_gso(frame, gso_size, now)

    def send_parts(self, parts, now):
        self.inner.send_parts(parts, now)

    def send_gso_parts(self, parts, gso_size, hdr_len, now):
        self.inner.send_gso_parts(parts, gso_size, hdr_len, now)

    def hold(self):
        self.inner.hold()

    def flush(self, now):
        self.inner.flush(now)

    def poll(self, now):
        self.inner.poll(now)

    def next_deadline(self):
        return self.inner.next_deadline()

    def close(self):
        self.inner.close()
