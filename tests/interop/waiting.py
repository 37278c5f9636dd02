"""The one way interop tests wait: for a condition, polled, bounded -- never a bare sleep.

``wait_for(predicate, timeout)`` returns the predicate's last value (true once it held, else
the false value it had at the deadline), so a test writes ``assert wait_for(...), why``.
The predicates below name the conditions tests wait for: a listening socket in a namespace,
packet sockets (a capture) open and drained, a counter that stopped moving.
"""

from __future__ import annotations

import time


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= end:
            return value
        time.sleep(interval)


def listening(lab, ns: str, port: int, udp: bool = False):
    """Something in ``ns`` listens on ``port`` (TCP, or bound for UDP), as ``ss -l`` says."""
    def check():
        result = lab.run(ns, "ss", "-Hlnu" if udp else "-Hlnt", f"sport = :{port}")
        return bool(result.stdout.strip())
    return check


def packet_sockets(lab, ns: str):
    """(number of packet sockets receiving in ``ns``, bytes queued on them unread), from
    /proc/net/packet: a capture (tcpdump, ``pynetstack capture``) has started when its socket
    is there, and has read everything the kernel gave it when nothing is queued."""
    rows = [row.split() for row in lab.run(ns, "cat", "/proc/net/packet").stdout.splitlines()[1:]]
    # columns: sk RefCnt Type Proto Iface R Rmem User Inode. A socket receives once it is bound
    # to a protocol and running (R 1): one opened with protocol 0 and not yet bound (as
    # link/packet.py opens its own, before its rings) is listed but gets nothing yet.
    bound = [row for row in rows if len(row) > 6 and int(row[3], 16) and row[5] == "1"]
    return len(bound), sum(int(row[6]) for row in bound)


def settled(read, quiet: float = 0.3):
    """A predicate: true once ``read()`` gave the same value twice, ``quiet`` seconds apart."""
    last = [read()]

    def check():
        time.sleep(quiet)
        value = read()
        same = value == last[0]
        last[0] = value
        return same
    return check
