"""CoDel (RFC 8289) and FQ-CoDel (RFC 8290): the queue inside each QoS class.

FQ-CoDel hashes packets by flow into per-flow queues served by deficit round robin with a
quantum of one MTU; new (sparse) flows go before old ones, so a DNS query or a keystroke does
not wait behind a bulk transfer.  Each flow queue runs CoDel: a packet whose sojourn time stayed
above ``target`` for a whole ``interval`` starts a dropping state in which drops come at
``interval / sqrt(count)`` (the control law), until the sojourn falls below ``target`` again.

A queued packet is a list ``[frame, enqueue time, size]``; the queue is bounded by ``limit``
packets over all flows (the fattest flow loses its head packet, as Linux's fq_codel does).
With ``ecn`` (on by default, as in Linux's fq_codel), a packet CoDel would drop that says its
transport understands ECN (ECT(0) or ECT(1) in its IPv4 header) is marked Congestion
Experienced and sent instead (RFC 3168, RFC 8289 section 5.6).
Sans-I/O: ``now`` comes in as an argument.
"""

from __future__ import annotations

import zlib
from collections import deque
from math import sqrt
from typing import Callable, Optional

from .classify import set_tos

TARGET = 0.005
INTERVAL = 0.100
MTU = 1514


class CodelFlow:
    """One flow queue with its CoDel state (RFC 8289 section 5) and its DRR deficit."""

    __slots__ = ("queue", "backlog", "deficit", "first_above_time", "drop_next", "count", "lastcount",
                 "dropping", "listed", "key")

    def __init__(self, key):
        self.key = key
        self.queue: deque = deque()
        self.backlog = 0
        self.deficit = 0
        self.first_above_time = 0.0  # 0: sojourn below target (RFC 8289 uses 0 as "unset")
        self.drop_next = 0.0
        self.count = 0
        self.lastcount = 0
        self.dropping = False
        self.listed = False  # on the new or the old list


def control_law(t: float, count: int, interval: float = INTERVAL) -> float:
    """When the next drop is due in the dropping state (RFC 8289 section 5.5)."""
    return t + interval / sqrt(count)


class FqCodel:
    """Per-flow queues with CoDel, scheduled by DRR over new and old flows (RFC 8290)."""

    def __init__(self, limit: int = 1000, flows: int = 1024, quantum: int = MTU, target: float = TARGET,
                 interval: float = INTERVAL, mtu: int = MTU,
                 on_drop: Optional[Callable[[list, str], None]] = None, ecn: bool = True):
        self.limit = limit
        self.buckets = flows
        self.quantum = quantum
        self.target = target
        self.interval = interval
        self.mtu = mtu
        self.flows = {}  # bucket -> CodelFlow: at most ``flows`` entries, as keys are hashes mod ``flows``
        self.new_flows: deque = deque()
        self.old_flows: deque = deque()
        self.packets = 0
        self.backlog = 0
        self.on_drop = on_drop or (lambda packet, reason: None)
        self.ecn = ecn
        self.codel_drops = 0
        self.overlimit_drops = 0
        self.ecn_marks = 0

    def __len__(self) -> int:
        return self.packets

    def flow_key(self, frame) -> int:
        """The bucket of a frame: a hash of IPv4 protocol, addresses and ports (or of the
        Ethernet header for anything else)."""
        if len(frame) >= 38 and frame[12] == 8 and frame[13] == 0:
            ihl = (frame[14] & 15) * 4
            start = 14 + ihl
            key = bytes(frame[23:24]) + bytes(frame[26:34]) + bytes(frame[start:start + 4])
        else:
            key = bytes(frame[:14])
        return zlib.crc32(key) % self.buckets

    def enqueue(self, frame, now: float, key: Optional[int] = None) -> bool:
        if key is None:
            key = self.flow_key(frame)
        flow = self.flows.get(key)
        if flow is None:
            flow = self.flows[key] = CodelFlow(key)
        size = len(frame)
        flow.queue.append([frame, now, size])
        flow.backlog += size
        self.backlog += size
        self.packets += 1
        if not flow.listed:
            flow.listed = True
            flow.deficit = self.quantum
            self.new_flows.append(flow)
        if self.packets > self.limit:
            self._drop_from_fattest()
            return flow.queue and flow.queue[-1][0] is frame  # False when our own packet went
        return True

    def _drop_from_fattest(self) -> None:
        fattest = max(self.flows.values(), key=lambda f: f.backlog)
        packet = fattest.queue.popleft()
        self._forget(fattest, packet)
        self.overlimit_drops += 1
        self.on_drop(packet, "overlimit")

    def _forget(self, flow: CodelFlow, packet: list) -> None:
        flow.backlog -= packet[2]
        self.backlog -= packet[2]
        self.packets -= 1

    # ---------------------------------------------------------------- CoDel (RFC 8289 5.4-5.7)
    def _dodequeue(self, flow: CodelFlow, now: float):
        queue = flow.queue
        if not queue:
            flow.first_above_time = 0.0
            return None, False
        packet = queue.popleft()
        self._forget(flow, packet)
        ok_to_drop = False
        if now - packet[1] < self.target or self.backlog <= self.mtu:
            flow.first_above_time = 0.0  # went below target: stay below for an interval to matter
        elif flow.first_above_time == 0.0:
            flow.first_above_time = now + self.interval
        elif now >= flow.first_above_time:
            ok_to_drop = True
        return packet, ok_to_drop

    def _codel_dequeue(self, flow: CodelFlow, now: float):
        packet, ok_to_drop = self._dodequeue(flow, now)
        if packet is None:
            flow.dropping = False
            return None
        if flow.dropping:
            if not ok_to_drop:
                flow.dropping = False  # sojourn time below target: leave the dropping state
            while flow.dropping and now >= flow.drop_next:
                flow.count += 1
                if self._mark(packet):  # marked instead of dropped: it goes, the schedule goes on
                    flow.drop_next = control_law(flow.drop_next, flow.count, self.interval)
                    break
                self._codel_drop(packet)
                packet, ok_to_drop = self._dodequeue(flow, now)
                if not ok_to_drop:
                    flow.dropping = False
                else:
                    flow.drop_next = control_law(flow.drop_next, flow.count, self.interval)
        elif ok_to_drop:
            if not self._mark(packet):
                self._codel_drop(packet)
                packet, ok_to_drop = self._dodequeue(flow, now)
            flow.dropping = True
            # a dropping state that ended recently resumes near the drop rate it had
            delta = flow.count - flow.lastcount
            if delta > 1 and now - flow.drop_next < 16 * self.interval:
                flow.count = delta
            else:
                flow.count = 1
            flow.lastcount = flow.count
            flow.drop_next = control_law(now, flow.count, self.interval)
        return packet

    def _mark(self, packet) -> bool:
        """Mark ``packet`` CE when ECN is on and its IPv4 header says ECT; False: not marked."""
        if not self.ecn or packet is None:
            return False
        frame = packet[0]
        if len(frame) < 34 or frame[12] != 8 or frame[13] != 0 or not frame[15] & 3:
            return False
        packet[0] = set_tos(frame, frame[15] | 3)
        self.ecn_marks += 1
        return True

    def _codel_drop(self, packet) -> None:
        if packet is not None:
            self.codel_drops += 1
            self.on_drop(packet, "codel")

    # ---------------------------------------------------------------- the flow scheduler (RFC 8290 4.2)
    def dequeue(self, now: float):
        """The next packet ``[frame, enqueued at, size]`` to send, or None when empty."""
        new_flows, old_flows, quantum = self.new_flows, self.old_flows, self.quantum
        while True:
            if new_flows:
                flows, from_new = new_flows, True
            elif old_flows:
                flows, from_new = old_flows, False
            else:
                return None
            flow = flows[0]
            if flow.deficit <= 0:
                flow.deficit += quantum
                flows.popleft()
                old_flows.append(flow)
                continue
            packet = self._codel_dequeue(flow, now)
            if packet is None:
                flows.popleft()
                if from_new and old_flows:
                    old_flows.append(flow)  # an emptied new flow waits once more as an old one
                else:
                    flow.listed = False
                continue
            flow.deficit -= packet[2]
            return packet

    def flow_count(self) -> int:
        return len(self.new_flows) + len(self.old_flows)
