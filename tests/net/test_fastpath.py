"""The per-flow output path (DESIGN principle 5): the frames it sends are byte-identical to the
full path's, and every change it depends on (routes, hooks, neighbours, path MTU, expiry,
tracing) sends the next datagram through the full path again."""

from __future__ import annotations

import random

from pynetstack.api.tcp import tcp_layer
from pynetstack.link.base import Device
from pynetstack.net import hooks as hk
from pynetstack.net.host import IPv4Host
from pynetstack.net.interface import Interface
from pynetstack.net.route import Route
from pynetstack.sim import Simulation
from pynetstack.wire.addr import ip_to_int
from pynetstack.wire.ethernet import ETH_IPV4, build_frame
from pynetstack.wire.ipv4 import IPv4, build_ipv4
from pynetstack.wire.tcp import Tcp, build_tcp

A, B, C = ip_to_int("10.0.0.1"), ip_to_int("10.0.0.2"), ip_to_int("10.9.0.1")
MAC_B = b"\x02\x00\x00\x00\x00\x02"


class Capture(Device):
    def __init__(self):
        self.frames = []

    def send(self, frame, now):
        self.frames.append(bytes(frame))


class CaptureParts(Capture):
    def send_parts(self, parts, now):
        self.frames.append(b"".join(bytes(p) for p in parts))


def make_host(device=None):
    host = IPv4Host()
    iface = host.add_interface(Interface("t0", device or Capture(), mac=b"\x02\x00\x00\x00\x00\x01"))
    host.add_address(iface, A, 24)
    iface.neighbours.update(B, MAC_B, 0.0)
    return host, iface


def test_path_frames_equal_the_full_path():
    for device in (Capture(), CaptureParts()):
        host, iface = make_host(device)
        rng = random.Random(5)
        for size in (0, 1, 5, 26, 1447, 1460):
            payload = rng.randbytes(size)
            head = build_tcp(A, B, 1000, 80, 1, 2, 0x10, 100, payload)[:20]
            path = host.output_path(A, B, 6, 1.0)
            assert path is not None
            assert path.transmit(head, payload, 1.0)
            fast = device.frames.pop()
            ident = IPv4.parse(memoryview(fast)[14:]).ident
            full = build_frame(MAC_B, iface.mac, ETH_IPV4, build_ipv4(A, B, 6, head + payload, 64, ident, True))
            assert fast == full, size
            ip = IPv4.parse(memoryview(fast)[14:])  # header checksum checked
            Tcp.parse(ip.payload, A, B)  # transport checksum checked
        assert iface.tx_frames == 6


def test_path_goes_stale_on_every_change_it_depends_on():
    host, iface = make_host()
    head, payload = b"\x00" * 20, b"x"

    def fresh():
        path = host.output_path(A, B, 6, 1.0)
        assert path.transmit(head, payload, 1.0)
        return path

    path = fresh()
    host.add_route(C, 24, gateway=B)
    assert not path.transmit(head, payload, 1.0), "route change"
    path = fresh()
    iface.neighbours.update(B, b"\x02\x00\x00\x00\x00\x09", 1.0)
    assert not path.transmit(head, payload, 1.0), "neighbour moved"
    path = fresh()
    host._learn_path_mtu(B, 1000, 1500, 1.0)
    assert not path.transmit(head, payload, 1.0), "path MTU learned"
    path = fresh()
    assert path.mtu == 1000 and not path.transmit(head, b"x" * 1000, 1.0), "too big for the path"
    assert not path.transmit(head, payload, 1e9), "neighbour entry expired"
    path = fresh()
    host.hooks.add(hk.INPUT, lambda ctx: hk.ACCEPT)
    assert not path.transmit(head, payload, 1.0), "hooks changed"
    path = fresh()
    host._steps = []
    assert not path.transmit(head, payload, 1.0), "a packet is being traced"
    host._steps = None
    host.hooks.add(hk.OUTPUT, lambda ctx: hk.ACCEPT)
    assert host.output_path(A, B, 6, 1.0) is None, "an OUTPUT stage sees every packet"


def test_no_path_where_every_datagram_needs_the_full_path():
    host, iface = make_host()
    assert host.output_path(A, A, 6, 1.0) is None  # local
    assert host.output_path(A, ip_to_int("10.0.0.255"), 6, 1.0) is None  # broadcast
    assert host.output_path(A, ip_to_int("10.0.0.3"), 6, 1.0) is None  # unresolved
    assert host.output_path(A, ip_to_int("192.0.2.1"), 6, 1.0) is None  # no route
    host.routes.add(Route(0, 0, iface, gateway=B))
    path = host.output_path(A, ip_to_int("192.0.2.1"), 6, 1.0)
    assert path is not None and path.prefix[:6] == MAC_B  # via the gateway's MAC


def test_tcp_uses_one_path_per_flow_and_a_new_hook_sees_the_rest():
    sim = Simulation()
    a, b = sim.stack(), sim.stack()
    sim.link(a, "10.5.0.1/24", b, "10.5.0.2/24")
    ta, tb = tcp_layer(a), tcp_layer(b)
    listener = tb.listen(5000)
    client = ta.connect(ip_to_int("10.5.0.2"), 5000, sim.now)
    sim.run(duration=5, until=lambda: bool(listener.accept_queue))
    server = listener.accept()
    data = random.Random(1).randbytes(300_000)
    got = bytearray()
    seen = []

    def pump(limit):
        nonlocal data
        while data and client.send_space():
            data = data[client.send(data[:65536], sim.now):]
        got.extend(server.recv(1 << 20, sim.now))
        return len(got) >= limit

    sim.run(duration=60, until=lambda: pump(100_000))
    made = a.host.counters["output_paths_made"]
    assert 1 <= made <= 2
    a.host.hooks.add(hk.OUTPUT, lambda ctx: seen.append(ctx) or hk.ACCEPT)
    sim.run(duration=60, until=lambda: pump(300_000))
    assert len(got) == 300_000
    assert seen, "after a stage is added, the flow's packets go through the hooks again"
    assert a.host.counters["output_paths_made"] == made
