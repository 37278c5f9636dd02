"""The seed's ``QoSManager``, in Python: one object per shaped interface.

    qos = QoSManager(stack, "wan0", 1_000_000_000)     # 1 Gbit/s
    qos_class = qos.classify_packet(frame)             # "voice", "interactive", ...
    qos.enqueue_packet(frame, qos_class="interactive")
    qos.start_scheduler()                              # the stack's loop sends on time

There is no scheduler thread of its own: the stack's loop wakes for each departure (the
qdisc's ``next_deadline``), so ``start_scheduler`` starts that loop if it is not running.
"""

from __future__ import annotations

from typing import Optional

from . import attach_qos
from .control import show


class QoSManager:
    def __init__(self, stack, interface: str, bandwidth, classes=None, rules=(), remark_dscp: bool = False,
                 targets=None):
        self.stack = stack
        self.interface = interface
        self.qdisc = attach_qos(stack, interface, bandwidth, classes, rules, remark_dscp, targets)

    def classify_packet(self, frame, mark: int = 0) -> str:
        """The class an Ethernet frame would be queued in."""
        return self.qdisc.classifier.classify(frame, mark, "", self.interface)

    def enqueue_packet(self, frame, qos_class: Optional[str] = None) -> bool:
        """Queue a frame for the interface (its class given, or classified); False: dropped."""
        with self.stack.lock:
            ok = self.qdisc.enqueue(frame, self.stack.now(), klass=qos_class)
        self.stack.wake()
        return ok

    def start_scheduler(self) -> None:
        if self.stack._thread is None:
            self.stack.start_background()

    def stats(self) -> dict:
        with self.stack.lock:
            return self.qdisc.stats()

    def show(self) -> str:
        """Like ``tc -s class show dev IFACE``."""
        return show({self.interface: self.stats()})
