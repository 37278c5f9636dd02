"""Drive a qdisc on a virtual clock: keep chosen classes backlogged, jump to each deadline."""

from __future__ import annotations

import struct

from pynetstack.qos.classify import Classifier
from pynetstack.qos.qdisc import EgressQdisc


def frame(size=1514, proto=17, src=0x0A000001, dst=0x0A000102, sport=5000, dport=6000, tos=0):
    """An Ethernet + IPv4 + UDP/TCP frame of ``size`` bytes (header fields only matter)."""
    total = size - 14
    ip = struct.pack("!BBHHHBBHII", 0x45, tos, total, 0, 0x4000, 64, proto, 0, src, dst)
    l4 = struct.pack("!HH", sport, dport)
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + l4 + bytes(size - 14 - 20 - 4)


class Wire:
    """What the qdisc sent: (time, frame) in order."""

    def __init__(self):
        self.sent = []

    def __call__(self, data, now):
        self.sent.append((now, data))


def make_qdisc(tree, rules=()):
    qdisc = EgressQdisc(tree, Classifier(rules))
    wire = Wire()
    qdisc.send = wire
    return qdisc, wire


def saturate(qdisc, sources, duration, start=0.0, depth=3):
    """Keep each class of ``sources`` ((klass, frame), ...) backlogged with ``depth`` packets
    per source for ``duration`` seconds, jumping from deadline to deadline; return the end."""
    now = start
    end = start + duration
    by_class = {}
    for klass, data in sources:
        by_class.setdefault(klass, []).append(data)
    turn = 0
    while now < end:
        for klass, frames in by_class.items():
            queue = qdisc.tree.leaves[klass].queue
            while queue.packets < depth * len(frames):
                qdisc.enqueue(frames[turn % len(frames)], now, klass=klass)
                turn += 1
        qdisc.poll(now)
        deadline = qdisc.tree.next_deadline()
        now = min(end, deadline) if deadline is not None and deadline > now else now + 1e-4
    return now
