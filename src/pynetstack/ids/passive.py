"""Passive inspection of an interface through AF_PACKET (a tap or a mirror port), like
``suricata -i IFACE``: every frame in both directions goes to the detector, alerts to EVE.

This is the I/O edge: the detector stays sans-I/O and gets the monotonic clock as ``now``."""

from __future__ import annotations

import select
import time
from typing import Callable, Optional

from ..link.pcap import LINKTYPE_ETHERNET
from .capture import ip_datagram
from .engine import Detector
from .eve import EveWriter


def watch(interface: str, detector: Detector, writer: EveWriter, duration: Optional[float] = None,
          netns: Optional[str] = None, stop: Optional[Callable[[], bool]] = None) -> dict:
    """Inspect ``interface`` until ``duration`` seconds pass (or ``stop()`` says so, or Ctrl-C)."""
    from ..link.packet import PacketDevice

    device = PacketDevice(interface, promiscuous=True, netns=netns, include_outgoing=True)
    frames = 0
    start = time.monotonic()
    next_poll = start + 1.0
    try:
        while True:
            now = time.monotonic()
            if duration is not None and now - start >= duration or stop is not None and stop():
                break
            wait = min(next_poll - now, 0.2)
            readable, _, _ = select.select([device], [], [], max(wait, 0.0))
            now = time.monotonic()
            if readable:
                for frame in device.receive(now):
                    frames += 1
                    datagram = ip_datagram(LINKTYPE_ETHERNET, frame)
                    if datagram is not None:
                        alerts = detector.inspect_bytes(datagram, now)
                        if alerts:
                            writer.write(alerts)
            if now >= next_poll:
                next_poll = now + 1.0
                alerts = detector.poll(now)
                if alerts:
                    writer.write(alerts)
                writer.flush()
    except KeyboardInterrupt:
        pass
    finally:
        device.close()
        writer.flush()
    stats = detector.stats()
    stats["frames"] = frames
    return stats
