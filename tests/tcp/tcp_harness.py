"""Test harness: two TCP layers wired together in memory on a virtual clock through the stack's
seeded fault injector (``fake_ip.Network``), applications that move bulk data, and the one
digest helper of the TCP tests."""

from __future__ import annotations

import hashlib

from pynetstack.services import http

from .fake_ip import Network

A_IP = 0x0A000001
B_IP = 0x0A000002


def Net(seed=1, delay=0.005, loss=0.0, dup=0.0, reorder=0.0, corrupt=0.0, rate=None, queue=None,
        config_a=None, config_b=None, capture=False, mtu=1500, gso=0):
    """Layers A and B over a ``fake_ip.Network``: ``rate`` in bytes/s with a drop-tail queue of
    about ``queue`` bytes (the fault injector counts frames: the queue plus what is in flight)."""
    if rate:
        queue_limit = int(((queue if queue is not None else 1 << 30) + rate * delay) // 1460) + 1
    else:
        queue_limit = 1 << 30  # no bottleneck: nothing is dropped for want of room
    return Network(A_IP, B_IP, seed=seed, config_a=config_a, config_b=config_b, mtu=mtu, gso=gso,
                   capture=capture, loss=loss, duplicate=dup, reorder=reorder, corrupt=corrupt, delay=delay,
                   rate_bps=rate * 8 if rate else None, queue_limit=queue_limit)


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


class SlowReader:
    """Reads at most ``chunk`` bytes every ``interval`` seconds, to EOF, then closes: a reader
    slower than the network, so a small receive buffer fills and the window closes."""

    def __init__(self, conn, chunk, interval):
        self.conn, self.chunk, self.interval = conn, chunk, interval
        self.received = bytearray()
        self.next_read = 0.0
        self.eof = False

    def next_deadline(self):
        """The next read, while there is something to read (the network wakes us for it)."""
        conn = self.conn
        if self.eof or conn.state == "CLOSED" or not (conn.readable_bytes() or conn.at_eof()):
            return None
        return self.next_read

    def pump(self, now):
        conn = self.conn
        if conn.state == "CLOSED" or self.eof or now < self.next_read:
            return
        self.next_read = now + self.interval
        self.received += conn.recv(self.chunk, now)
        if conn.at_eof():
            self.eof = True
            conn.close(now)


def digest(data):
    return hashlib.sha256(data).hexdigest()


def expected_bytes_digest(n: int) -> str:
    """The digest of the first ``n`` bytes that the HTTP service's /bytes/<n> sends."""
    h = hashlib.sha256()
    offset = 0
    while offset < n:
        chunk = http.deterministic_bytes(offset, min(1 << 20, n - offset))
        h.update(chunk)
        offset += len(chunk)
    return h.hexdigest()
