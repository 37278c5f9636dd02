"""Test harness: TCP layers wired together in memory on a virtual clock, with a seeded faulty
link (loss, duplication, reordering, corruption, delay, a rate-limited bottleneck)."""

from __future__ import annotations

import hashlib
import heapq
import random

from pynetstack.transport.tcp import TcpConfig, TcpLayer
from pynetstack.wire.ipv4 import IPv4
from pynetstack.wire.tcp import Tcp

A_IP = 0x0A000001
B_IP = 0x0A000002


class Endpoint:
    """An ``IpOutput`` that hands datagrams to the simulated network."""

    def __init__(self, net, address, mtu=1500):
        self.net = net
        self.address = address
        self.mtu = mtu
        self.layer = None

    def ip_send(self, src, dst, protocol, payload, now, ttl=None, df=True, tos=0):
        return self.net.transmit(self, src, dst, bytes(payload))

    def source_address_for(self, dst):
        return self.address

    def is_local_address(self, address):
        return address == self.address

    def path_mtu(self, dst):
        return self.mtu


class Net:
    def __init__(self, seed=1, delay=0.005, loss=0.0, dup=0.0, reorder=0.0, corrupt=0.0, rate=None,
                 queue=None, config_a=None, config_b=None, capture=False, mtu=1500):
        self.now = 0.0
        self.rng = random.Random(seed)
        self.delay = delay
        self.loss = loss
        self.dup = dup
        self.reorder = reorder
        self.corrupt = corrupt
        self.rate = rate
        self.queue = queue
        self.events = []
        self.seq = 0
        self.busy = {}
        self.capture = [] if capture else None
        self.sent_packets = 0
        self.oversize = 0
        self.a = Endpoint(self, A_IP, mtu)
        self.b = Endpoint(self, B_IP, mtu)
        self.a.layer = TcpLayer(self.a, config_a or TcpConfig(), secret=b"a" * 16)
        self.b.layer = TcpLayer(self.b, config_b or TcpConfig(), secret=b"b" * 16)
        self.by_ip = {A_IP: self.b, B_IP: self.a}  # source -> receiving endpoint
        self.apps = []

    def transmit(self, sender, src, dst, payload):
        self.sent_packets += 1
        if 20 + len(payload) > sender.mtu:
            self.oversize += 1  # an IP layer would refuse it (DF): the sender made a mistake
            return False
        if self.capture is not None:
            self.capture.append((self.now, src, dst, Tcp.parse(payload, src, dst)))
        rng = self.rng
        if self.loss and rng.random() < self.loss:
            return True
        t = self.now
        if self.rate:
            start = max(t, self.busy.get(src, 0.0))
            if self.queue is not None and (start - t) * self.rate > self.queue:
                return True  # drop-tail bottleneck queue
            t = start + len(payload) / self.rate
            self.busy[src] = t
        copies = 2 if (self.dup and rng.random() < self.dup) else 1
        for _ in range(copies):
            data = payload
            if self.corrupt and rng.random() < self.corrupt:
                b = bytearray(data)
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
                data = bytes(b)
            arrive = t + self.delay
            if self.reorder and rng.random() < self.reorder:
                arrive += rng.random() * 3 * self.delay
            self.seq += 1
            heapq.heappush(self.events, (arrive, self.seq, src, dst, data))
        return True

    def step_until(self, limit):
        """Process the next event (packet or timer) at or before ``limit``. False if none."""
        times = []
        if self.events:
            times.append(self.events[0][0])
        for ep in (self.a, self.b):
            d = ep.layer.next_deadline()
            if d is not None:
                times.append(d)
        if not times:
            return False
        t = min(times)
        if t > limit:
            return False
        if t > self.now:
            self.now = t
        while self.events and self.events[0][0] <= self.now:
            _, _, src, dst, data = heapq.heappop(self.events)
            ep = self.by_ip[src]
            ep.layer.receive(IPv4(src, dst, 6, memoryview(data)), self.now)
        for ep in (self.a, self.b):
            ep.layer.poll(self.now)
        for app in self.apps:
            app.pump(self.now)
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


class BulkApp:
    """Sends ``data`` on a connection as space allows, closes its write side, reads to EOF."""

    def __init__(self, conn, data, chunk=65536):
        self.conn = conn
        self.data = data
        self.offset = 0
        self.received = bytearray()
        self.chunk = chunk
        self.shut = False
        self.eof = False

    def pump(self, now):
        conn = self.conn
        if conn.state == "CLOSED":
            return
        while self.offset < len(self.data):
            n = conn.send(self.data[self.offset:self.offset + self.chunk], now)
            if n == 0:
                break
            self.offset += n
        if self.offset >= len(self.data) and not self.shut and conn.state in ("ESTABLISHED", "CLOSE-WAIT"):
            conn.shutdown(now)
            self.shut = True
        while True:
            got = conn.recv(1 << 20, now)
            if not got:
                break
            self.received += got
        if conn.at_eof():
            self.eof = True


def digest(data):
    return hashlib.sha256(data).hexdigest()
