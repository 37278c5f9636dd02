"""Tracing a packet's journey through the stack, for people learning how a stack works.

    stack.host.trace(PrintTracer(match="icmp"))

prints, for each matching frame, every step: the parse, hook verdicts, reassembly, delivery,
the reply's route and neighbour, and any drop with its reason.
"""

from __future__ import annotations

import sys
from typing import Callable, List, Optional


def _summary(frame) -> str:
    try:
        from ..wire.describe import summary
    except ImportError:
        return f"{len(frame)} bytes"
    return summary(frame)


class PrintTracer:
    """Selects frames whose one-line summary contains ``match`` (all when None) and prints journeys."""

    def __init__(self, match: Optional[str] = None, out=None, limit: Optional[int] = None):
        self.match = match.lower() if match else None
        self.out = out or sys.stdout
        self.limit = limit
        self.traced = 0

    def __call__(self, frame) -> bool:
        if self.limit is not None and self.traced >= self.limit:
            return False
        return self.match is None or self.match in _summary(frame).lower()

    def emit(self, frame, steps: List[str]) -> None:
        self.traced += 1
        lines = [f"trace #{self.traced}: {_summary(frame)}"] + [f"    {step}" for step in steps]
        print("\n".join(lines), file=self.out, flush=True)


class ListTracer:
    """Keeps journeys in a list (tests, notebooks); ``select`` chooses frames."""

    def __init__(self, select: Callable[[bytes], bool] = lambda frame: True):
        self.select = select
        self.journeys: List[List[str]] = []

    def __call__(self, frame) -> bool:
        return self.select(frame)

    def emit(self, frame, steps: List[str]) -> None:
        self.journeys.append(steps)
