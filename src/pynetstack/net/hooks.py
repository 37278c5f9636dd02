"""Hook points in netfilter's order, each running priority-ordered stages on a packet context.

A stage is a plain callable ``stage(ctx) -> verdict``.  Priorities follow nftables
(conntrack -200, dstnat -100, filter 0, srcnat 100); equal priorities run in the order added.
"""

from __future__ import annotations

import bisect
from typing import Callable, Dict, List, Optional, Tuple

PREROUTING = "prerouting"
INPUT = "input"
FORWARD = "forward"
OUTPUT = "output"
POSTROUTING = "postrouting"
HOOK_NAMES = (PREROUTING, INPUT, FORWARD, OUTPUT, POSTROUTING)

ACCEPT = "accept"
DROP = "drop"
STOLEN = "stolen"  # the stage took the packet (queued it, answered it): stop without a drop

PRIORITY_CONNTRACK = -200
PRIORITY_DSTNAT = -100
PRIORITY_FILTER = 0
PRIORITY_SRCNAT = 100


class PacketContext:
    """What a stage sees: the parsed datagram, its interfaces and a trace of what happened."""

    __slots__ = ("ip", "hook", "in_iface", "out_iface", "now", "drop_reason", "trace", "marks")

    def __init__(self, ip, hook: str, now: float, in_iface=None, out_iface=None, trace: Optional[list] = None):
        self.ip = ip
        self.hook = hook
        self.now = now
        self.in_iface = in_iface
        self.out_iface = out_iface
        self.drop_reason = None
        self.trace = trace
        self.marks: Dict[str, object] = {}

    def note(self, text: str) -> None:
        """Record a step of this packet's journey, when it is being traced."""
        if self.trace is not None:
            self.trace.append(f"{self.hook}: {text}")


class Hooks:
    def __init__(self):
        self._stages: Dict[str, List[Tuple[int, int, str, Callable]]] = {name: [] for name in HOOK_NAMES}
        self._order = 0
        self.generation = 0  # bumped on every change, so cached decisions can be invalidated

    def add(self, hook: str, stage: Callable, priority: int = PRIORITY_FILTER, name: str = "") -> None:
        if hook not in self._stages:
            raise ValueError(f"unknown hook {hook!r}; hooks are {', '.join(HOOK_NAMES)}")
        self._order += 1
        bisect.insort(self._stages[hook], (priority, self._order, name or getattr(stage, "__name__", "stage"), stage))
        self.generation += 1

    def remove(self, hook: str, stage: Callable) -> None:
        self._stages[hook] = [entry for entry in self._stages[hook] if entry[3] is not stage]
        self.generation += 1

    def stages(self, hook: str) -> List[Tuple[int, str]]:
        return [(priority, name) for priority, _, name, _ in self._stages[hook]]

    def has_stages(self, hook: str) -> bool:
        return bool(self._stages[hook])

    def run(self, ctx: PacketContext) -> str:
        """Run the stages of ``ctx.hook`` until one does not accept; return the verdict."""
        for _, _, name, stage in self._stages[ctx.hook]:
            verdict = stage(ctx)
            if verdict != ACCEPT:
                ctx.note(f"{name} -> {verdict}")
                return verdict
        return ACCEPT
