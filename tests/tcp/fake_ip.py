"""The one fake IP layer of the TCP tests, and the in-memory network built from it.

``FakeIp`` implements ``net.protocol.IpOutput`` in full (``OUTPUT_CONTRACT``), segmentation
offload included: with ``gso`` > 0 it says so in ``max_segment`` and cuts the large segments it
is handed into ``gso_size`` pieces as a NIC (or the kernel behind a TAP) would, so TCP's
offload paths run in every test that asks for it, without root.  It records every segment as
it would be on the wire (``sent``) and hands it to ``deliver`` if there is one.

``Network`` wires two ``FakeIp``s together through the stack's own seeded fault injector
(``link.faults.FaultInjector``: loss, duplication, reordering, corruption, delay, a bottleneck
rate), one per direction, on a virtual clock.
"""

from __future__ import annotations

from pynetstack.link.base import Device
from pynetstack.link.faults import FaultInjector
from pynetstack.transport.tcp import TcpConfig, TcpLayer
from pynetstack.wire import tcp as T
from pynetstack.wire.ipv4 import IPv4

FIN_PSH = T.FIN | T.PSH


def segment_offload(src: int, dst: int, segment: bytes, gso_size: int):
    """What a device does with an offloaded TCP segment: cut its payload into ``gso_size``
    pieces, each with the header (sequence number advanced; FIN and PSH only on the last) and
    a full checksum (the transport left only the pseudo-header sum in the field)."""
    seg = T.Tcp.parse(segment, src, dst, check=False)
    # the device adjusts the field's pseudo-header sum for each piece's length (Linux's
    # tcp_gso_segment), so it must hold exactly that sum for the whole segment
    pseudo = ((src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + T.PROTO + len(segment)) % 0xFFFF
    partial = int.from_bytes(segment[16:18], "big")
    if partial % 0xFFFF != pseudo:
        raise AssertionError(f"offloaded segment's checksum field {partial:#06x} is not the "
                             f"pseudo-header sum {pseudo:#06x}")
    hlen = (segment[12] >> 4) * 4
    options = bytes(segment[20:hlen])
    payload = bytes(segment[hlen:])
    pieces = []
    for offset in range(0, max(len(payload), 1), gso_size):
        last = offset + gso_size >= len(payload)
        flags = seg.flags if last else seg.flags & ~FIN_PSH
        pieces.append(T.build_tcp(src, dst, seg.src_port, seg.dst_port, (seg.seq + offset) & 0xFFFFFFFF,
                                  seg.ack, flags, seg.window, payload[offset:offset + gso_size], options))
    return pieces


class FakeIp:
    """``IpOutput`` for one address: records what TCP sends, optionally delivers it."""

    delivers_in_batches = False

    def __init__(self, address: int, mtu: int = 1500, gso: int = 0, deliver=None):
        self.address = address
        self.mtu = mtu
        self.gso = gso          # the largest offloaded datagram (max_segment), 0: no offload
        self.deliver = deliver  # deliver(src, dst, segment, now) -> bool, or None: record only
        self.sent = []          # (src, dst, segment bytes) as on the wire
        self.offloaded = 0      # segments handed down with gso_size
        self.oversize = 0       # datagrams over the MTU that an IP layer would refuse (DF)
        self.icmp_errors = []

    def ip_send(self, src, dst, protocol, payload, now, ttl=None, df=True, tos=0, gso_size=0):
        if protocol != T.PROTO:
            raise ValueError(f"FakeIp carries TCP only, not protocol {protocol}")
        payload = bytes(payload)
        if gso_size:
            if not self.gso or 20 + len(payload) > self.gso:
                raise AssertionError(f"offload of {len(payload)} bytes not offered (max_segment {self.gso})")
            self.offloaded += 1
            segments = segment_offload(src, dst, payload, gso_size)
        else:
            segments = [payload]
        ok = True
        for segment in segments:
            if 20 + len(segment) > self.mtu:
                self.oversize += 1  # the sender made a mistake: an IP layer would refuse it
                ok = False
                continue
            self.sent.append((src, dst, segment))
            if self.deliver is not None:
                ok = self.deliver(src, dst, segment, now) and ok
        return ok

    def max_segment(self, dst):
        return self.gso

    def output_path(self, src, dst, protocol, now, ttl=None, tos=0):
        return None  # every segment takes ip_send, where it is recorded

    def source_address_for(self, dst):
        return self.address

    def is_local_address(self, address):
        return address == self.address

    def path_mtu(self, dst):
        return self.mtu

    def send_icmp_error(self, ip, icmp_type, code, now, rest=0):
        self.icmp_errors.append((ip, icmp_type, code, rest))
        return True


def _never():
    return None


class _Wire(Device):
    """The far end of one direction: frames (TCP segments) reach the receiving layer."""

    def __init__(self, network, src: int, dst: int, mtu: int):
        self.network, self.src, self.dst = network, src, dst
        self.name, self.mtu, self.mac, self.gso_max = f"wire{src:x}", mtu, None, 0

    def send(self, frame, now):
        self.network.arrivals.append((self.src, self.dst, frame))


class Network:
    """Two TCP layers (``a``, ``b``: their ``FakeIp``s) joined by one ``FaultInjector`` per
    direction; ``run`` advances the virtual clock from event to event."""

    def __init__(self, a_ip: int, b_ip: int, seed: int = 1, config_a=None, config_b=None, mtu: int = 1500,
                 gso: int = 0, capture: bool = False, **faults):
        self.now = 0.0
        self.arrivals = []
        self.capture = [] if capture else None
        self.apps = []
        self.a = FakeIp(a_ip, mtu, gso, self._send)
        self.b = FakeIp(b_ip, mtu, gso, self._send)
        self.links = {a_ip: FaultInjector(_Wire(self, a_ip, b_ip, mtu), seed=seed, **faults),
                      b_ip: FaultInjector(_Wire(self, b_ip, a_ip, mtu), seed=seed + 1000, **faults)}
        self.a.layer = TcpLayer(self.a, config_a or TcpConfig(), secret=b"a" * 16)
        self.b.layer = TcpLayer(self.b, config_b or TcpConfig(), secret=b"b" * 16)
        self.by_ip = {a_ip: self.a, b_ip: self.b}

    @property
    def oversize(self) -> int:
        return self.a.oversize + self.b.oversize

    def _send(self, src, dst, segment, now):
        if self.capture is not None:
            self.capture.append((now, src, dst, T.Tcp.parse(segment, src, dst)))
        self.links[src].send(segment, now)
        return True

    def _deliver(self) -> None:
        while self.arrivals:
            batch, self.arrivals = self.arrivals, []
            for src, dst, frame in batch:
                self.by_ip[dst].layer.receive(IPv4(src, dst, T.PROTO, memoryview(frame)), self.now)

    def step_until(self, limit: float) -> bool:
        """Process the next event (a frame due, a timer) at or before ``limit``. False if none."""
        times = [d for d in (link.next_deadline() for link in self.links.values()) if d is not None]
        times += [d for d in (ip.layer.next_deadline() for ip in (self.a, self.b)) if d is not None]
        times += [d for d in (getattr(app, "next_deadline", _never)() for app in self.apps) if d is not None]
        if not times:
            return False
        t = min(times)
        if t > limit:
            return False
        if t > self.now:
            self.now = t
        for link in self.links.values():
            link.poll(self.now)
        self._deliver()
        for ip in (self.a, self.b):
            ip.layer.poll(self.now)
        for app in self.apps:
            app.pump(self.now)
        self._deliver()  # what the timers and the applications sent with no delay
        return True

    def run(self, duration=None, until=None, max_steps=2_000_000, stop=None):
        limit = self.now + duration if duration is not None else until
        for _ in range(max_steps):
            if stop is not None and stop():
                return True
            if not self.step_until(limit):
                self.now = max(self.now, limit)
                return stop() if stop is not None else True
        raise AssertionError("simulation did not settle within max_steps")

