"""The egress queue of one interface with QoS: classify, queue in the class tree, send on time.

Every frame an interface sends goes through ``Interface.transmit`` or a sender the interface
gave a cached path (``Interface.sender``); with a qdisc attached these call ``enqueue`` here.
Without one they call the device directly, so an interface without QoS pays nothing.

``enqueue`` classifies (rules, DSCP, guess), re-marks the DSCP if asked, queues the frame in
its class and at once sends whatever the shaper allows; the rest leaves from ``poll(now)``,
which the host calls when ``next_deadline()`` comes due (the loop sleeps until then).
"""

from __future__ import annotations

from typing import Callable, Dict, Optional

from .classify import BULK, REMARK_DSCP, Classifier, remark
from .htb import HtbClass, HtbTree
from .sla import SlaMonitor

QOS_CLASS = "qos_class"  # the key a stage may set in ctx.marks to choose the class itself


class EgressQdisc:
    def __init__(self, tree: HtbTree, classifier: Optional[Classifier] = None, sla: Optional[SlaMonitor] = None,
                 remark_dscp: bool = False, default_class: str = BULK):
        self.tree = tree
        self.classifier = classifier or Classifier()
        self.sla = sla or SlaMonitor(list(tree.leaves), now=tree.root.bucket.stamp)
        self.remark_dscp = remark_dscp
        if default_class not in tree.leaves:
            default_class = next(iter(tree.leaves))
        self.default = tree.leaves[default_class]
        self.iface = None
        self.ifname = ""
        self.send: Callable = lambda frame, now: None
        self.sent_bytes = self.sent_packets = 0
        self.enqueued = 0
        # how late the loop woke for a departure: the shaper's timing as the wire sees it
        self._due: Optional[float] = None
        self.count_drop: Optional[Callable[[str], None]] = None  # the stack's drops by reason, once attached
        self.late_count = 0
        self.late_sum = self.late_max = 0.0
        self.late_over_1ms = 0
        tree.on_drop = self._dropped

    # ---------------------------------------------------------------- attach
    def attach(self, iface) -> "EgressQdisc":
        """Sit in ``iface``'s way out (``tc qdisc replace dev IFACE root``)."""
        if iface.qdisc is not None and iface.qdisc is not self:
            iface.qdisc.detach()
        self.iface = iface
        self.ifname = iface.name
        self.send = iface.device.send
        iface.qdisc = self
        iface.neighbours.generation += 1  # cached paths hold the device's send: make them look again
        return self

    def detach(self) -> None:
        """Leave the interface (``tc qdisc del``); what is queued goes out at once."""
        iface = self.iface
        if iface is None:
            return
        for packet, _leaf in iter(lambda: self._any(), None):
            self.send(packet[0], packet[1])
        iface.qdisc = None
        iface.neighbours.generation += 1
        self.iface = None

    def _any(self):
        tree = self.tree
        for leaf in tree.leaves.values():
            packet = leaf.queue.dequeue(float("-inf"))
            if packet is not None:
                tree.packets -= 1
                tree.backlog -= packet[2]
                return packet, leaf
        return None

    # ---------------------------------------------------------------- the packet path
    def enqueue(self, frame, now: float, mark: int = 0, klass: Optional[str] = None, iif: str = "") -> bool:
        """Queue ``frame`` (False: dropped, counted under its class and reason)."""
        leaves = self.tree.leaves
        leaf = leaves.get(klass) if klass is not None else None
        if leaf is None:
            leaf = leaves.get(self.classifier.classify(frame, mark, iif, self.ifname)) or self.default
        if self.remark_dscp:
            dscp = REMARK_DSCP.get(leaf.name)
            if dscp is not None:
                frame = remark(frame, dscp)
        self.enqueued += 1
        ok = self.tree.enqueue(leaf, frame, now)
        self.poll(now)
        return ok

    def enqueue_ctx(self, frame, now: float, ctx) -> bool:
        """``enqueue`` with what the hooks decided: the packet mark, a class a stage chose
        (``ctx.marks["qos_class"]``) and the input interface."""
        if ctx is None:
            return self.enqueue(frame, now)
        return self.enqueue(frame, now, ctx.mark, ctx.marks.get(QOS_CLASS), ctx.iifname)

    def sender(self, ctx=None) -> Callable:
        """A ``send(frame, now)`` for the frames of one flow, with the flow's marks bound."""
        if ctx is None:
            return self.enqueue
        mark, klass, iif = ctx.mark, ctx.marks.get(QOS_CLASS), ctx.iifname
        enqueue = self.enqueue
        return lambda frame, now: enqueue(frame, now, mark, klass, iif)

    def poll(self, now: float) -> None:
        """Send every frame the shaper lets go at ``now``."""
        due = self._due
        if due is not None and now >= due:
            late = now - due
            self.late_count += 1
            self.late_sum += late
            if late > self.late_max:
                self.late_max = late
            if late > 0.001:
                self.late_over_1ms += 1
        dequeue = self.tree.dequeue
        send = self.send
        sla = self.sla
        while True:
            item = dequeue(now)
            if item is None:
                break
            packet, leaf = item
            send(packet[0], now)
            self.sent_packets += 1
            self.sent_bytes += packet[2]
            sla.sent(leaf.name, now - packet[1], packet[2])
        self._due = self.tree.next_deadline() if self.tree.packets else None
        if now >= sla.window_end:
            sla.poll(now)

    def next_deadline(self) -> Optional[float]:
        deadline = self.tree.next_deadline()
        window = self.sla.window_end
        return window if deadline is None or window < deadline else deadline

    def _dropped(self, leaf: HtbClass, packet, reason: str) -> None:
        self.sla.dropped(leaf.name)
        if self.count_drop is not None:
            self.count_drop("qdisc-" + reason)  # with the stack's other drops (Linux: QDISC_DROP)

    # ---------------------------------------------------------------- what it says
    def stats(self) -> Dict[str, object]:
        return {
            "interface": self.ifname,
            "sent_bytes": self.sent_bytes,
            "sent_packets": self.sent_packets,
            "backlog_bytes": self.tree.backlog,
            "backlog_packets": self.tree.packets,
            "departures_timed": self.late_count,
            "departure_late_avg_us": round(self.late_sum / self.late_count * 1e6, 1) if self.late_count else 0.0,
            "departure_late_max_us": round(self.late_max * 1e6, 1),
            "departures_late_over_1ms": self.late_over_1ms,
            "classes": {cls.name: class_stats(cls) for cls in self.tree.root.walk()},
            "classifier": dict(self.classifier.counts),
            "sla": self.sla.report(),
            "alerts": list(self.sla.alerts)[-10:],
        }


def class_stats(cls: HtbClass) -> dict:
    queue = cls.queue
    stats = {"classid": cls.classid, "parent": cls.parent.classid if cls.parent else "root",
             "rate": cls.rate, "ceil": cls.ceil, "burst": cls.bucket.burst, "cburst": cls.cbucket.burst,
             "prio": cls.prio, "quantum": cls.quantum, "sent_bytes": cls.sent_bytes,
             "sent_packets": cls.sent_packets, "dropped": sum(cls.drops.values()), "drops": dict(cls.drops),
             "overlimits": cls.overlimits, "borrowed": cls.borrows, "lent": cls.lends,
             "tokens": round(cls.bucket.tokens), "ctokens": round(cls.cbucket.tokens)}
    if queue is not None:
        stats.update(backlog_bytes=queue.backlog, backlog_packets=queue.packets, flows=queue.flow_count(),
                     ecn_marks=queue.ecn_marks)
    if cls.policer is not None:
        stats["police_rate"] = cls.policer.rate
    return stats
