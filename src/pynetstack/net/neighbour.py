"""The ARP neighbour cache of one interface (RFC 826, RFC 1122 2.3.2.1).

Entries are good for ``lifetime`` seconds after they were last confirmed. Then they go stale,
as Linux's neighbour entries do (REACHABLE -> STALE -> PROBE, RFC 4861 7.3.3's state machine that
Linux applies to ARP too): a stale entry is still used, and its first use sends a request; an
answer makes it good again, ``max_requests`` unanswered requests remove it.  So a busy peer
never sees its packets queued (and a burst of them dropped) just because its entry aged.
While an address resolves for the first time, packets for it wait in a bounded queue; requests
go out at most once per ``retry_interval`` and the queue is dropped after ``max_requests``
unanswered requests.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Callable, List, Optional, Tuple

from ..wire.addr import ip_to_str, mac_to_str


class PendingResolution:
    __slots__ = ("queue", "last_request", "requests")

    def __init__(self):
        self.queue: deque = deque()
        self.last_request = float("-inf")
        self.requests = 0


class NeighbourCache:
    def __init__(self, send_request: Callable[[int, float], None], on_failure: Callable[[int, list, float], None],
                 lifetime: float = 60.0, retry_interval: float = 1.0, max_requests: int = 3,
                 locktime: float = 1.0,
                 max_entries: int = 4096, max_pending: int = 256, queue_limit: int = 64):
        self._send_request = send_request
        self._on_failure = on_failure
        self.lifetime = lifetime
        self.locktime = locktime  # like Linux's neigh locktime: a MAC that was just confirmed stays
        self.retry_interval = retry_interval
        self.max_requests = max_requests
        self.max_entries = max_entries
        self.max_pending = max_pending
        self.queue_limit = queue_limit
        self.entries: "OrderedDict[int, Tuple[bytes, float]]" = OrderedDict()  # ip -> (mac, expires)
        self.pending: "OrderedDict[int, PendingResolution]" = OrderedDict()
        self.static: dict = {}
        self.probing: "OrderedDict[int, list]" = OrderedDict()  # stale ip -> [last request, requests]
        self.generation = 0

    def lookup(self, ip: int, now: float) -> Optional[bytes]:
        static = self.static.get(ip)
        if static is not None:
            return static
        entry = self.entries.get(ip)
        if entry is None:
            return None
        if entry[1] <= now and ip not in self.probing:  # stale: use it, and check it is still there
            self.probing[ip] = [now, 1]
            self._send_request(ip, now)
        return entry[0]

    def fresh(self, ip: int, now: float) -> Optional[Tuple[bytes, float]]:
        """(MAC, until when) for a cached path to ``ip``: static entries forever, learned ones while
        good (never stale ones: a cached path must not outlive the check of its neighbour)."""
        static = self.static.get(ip)
        if static is not None:
            return static, float("inf")
        entry = self.entries.get(ip)
        return entry if entry is not None and entry[1] > now else None

    def update(self, ip: int, mac: bytes, now: float, create: bool = True) -> list:
        """Record ``ip`` is at ``mac``; return the packets that were waiting for it.

        ``create=False`` only refreshes an existing entry (RFC 826's merge for ARP not aimed at us).
        """
        entries = self.entries
        current = entries.get(ip)
        if current is None and not create and ip not in self.pending:
            return []
        if current is not None and current[0] != mac:
            if now - (current[1] - self.lifetime) < self.locktime:
                return []  # a second answer with another MAC within the lock time: keep the first
        if current is None or current[0] != mac:
            self.generation += 1
        if current is not None:
            entries.move_to_end(ip)
        elif len(entries) >= self.max_entries:
            entries.popitem(last=False)
        entries[ip] = (mac, now + self.lifetime)
        self.probing.pop(ip, None)
        pending = self.pending.pop(ip, None)
        return list(pending.queue) if pending else []

    def enqueue(self, ip: int, packet, now: float) -> bool:
        """Hold ``packet`` (the host keeps (datagram, context) pairs, so a released datagram keeps
        its marks) until ``ip`` resolves, sending a request if one is due. False: dropped."""
        pending = self.pending.get(ip)
        if pending is None:
            if len(self.pending) >= self.max_pending:
                evicted_ip, oldest = self.pending.popitem(last=False)
                self._on_failure(evicted_ip, list(oldest.queue), now)
            pending = self.pending[ip] = PendingResolution()
        if len(pending.queue) >= self.queue_limit:
            return False
        pending.queue.append(packet)
        if now - pending.last_request >= self.retry_interval:
            self._request(ip, pending, now)
        return True

    def _request(self, ip: int, pending: PendingResolution, now: float) -> None:
        pending.last_request = now
        pending.requests += 1
        self._send_request(ip, now)

    def poll(self, now: float) -> None:
        if not self.probing and not self.pending:  # (the loop asks after every pass)
            return
        for ip, probe in list(self.probing.items()):
            if now - probe[0] < self.retry_interval:
                continue
            if probe[1] >= self.max_requests:  # no answer: the neighbour is gone
                del self.probing[ip]
                if self.entries.pop(ip, None) is not None:
                    self.generation += 1
            else:
                probe[0] = now
                probe[1] += 1
                self._send_request(ip, now)
        for ip, pending in list(self.pending.items()):
            if now - pending.last_request < self.retry_interval:
                continue
            if pending.requests >= self.max_requests:
                del self.pending[ip]
                self._on_failure(ip, list(pending.queue), now)
            else:
                self._request(ip, pending, now)

    def next_deadline(self) -> Optional[float]:
        if not self.probing and not self.pending:  # (the loop asks before every pass)
            return None
        times = [p.last_request for p in self.pending.values()] + [probe[0] for probe in self.probing.values()]
        return min(times) + self.retry_interval if times else None

    def table(self, now: float) -> List[str]:
        rows = [f"{ip_to_str(ip)} at {mac_to_str(mac)} " + (f"expires in {expires - now:.0f}s" if expires > now
                                                          else "STALE" + (" (probing)" if ip in self.probing else ""))
                for ip, (mac, expires) in self.entries.items()]
        rows += [f"{ip_to_str(ip)} at {mac_to_str(mac)} PERMANENT" for ip, mac in self.static.items()]
        rows += [f"{ip_to_str(ip)} INCOMPLETE ({len(p.queue)} queued)" for ip, p in self.pending.items()]
        return rows
