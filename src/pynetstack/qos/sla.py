"""SLA monitoring per QoS class: queueing delay (sojourn time) percentiles, jitter, loss and
throughput over windows of ``window`` seconds, checked against per-class targets.

Jitter is RFC 3550's interarrival jitter applied to the sojourn times of consecutive packets
(J += (|D| - J) / 16).  Each closed window is compared with the class's targets; a metric over
its target counts a violation and leaves an alert (bounded list, newest last) that
``pynetstack qos show``, the stack's counters and the monitor's alert rules can read.
"""

from __future__ import annotations

from collections import deque
from typing import Dict, List, Optional

TARGET_KEYS = ("delay_p99_ms", "delay_p50_ms", "jitter_ms", "loss_percent", "min_throughput_mbit")
DEFAULT_TARGETS = {
    "voice": {"delay_p99_ms": 10.0, "jitter_ms": 5.0, "loss_percent": 1.0},
    "interactive": {"delay_p99_ms": 50.0, "loss_percent": 1.0},
    "video": {"delay_p99_ms": 100.0, "loss_percent": 2.0},
}
MAX_SAMPLES = 4096  # sojourn samples kept per class and window (the newest)


def percentile(sorted_values: List[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return sorted_values[index]


class ClassWindow:
    __slots__ = ("samples", "seen", "sent_bytes", "sent", "dropped", "jitter", "last_sojourn", "last",
                 "violations")

    def __init__(self):
        self.samples: List[float] = []
        self.seen = 0
        self.sent_bytes = self.sent = self.dropped = 0
        self.jitter = 0.0
        self.last_sojourn: Optional[float] = None
        self.last: Dict[str, float] = {}  # the figures of the last closed window
        self.violations: Dict[str, int] = {}


class SlaMonitor:
    def __init__(self, classes, targets: Optional[Dict[str, dict]] = None, window: float = 1.0,
                 max_alerts: int = 100, now: float = 0.0):
        self.window = window
        self.targets = {name: dict(DEFAULT_TARGETS.get(name, {})) for name in classes}
        for name, target in (targets or {}).items():
            self.targets.setdefault(name, {}).update(target)
        self.classes: Dict[str, ClassWindow] = {name: ClassWindow() for name in classes}
        self.alerts: deque = deque(maxlen=max_alerts)
        self.listeners = []  # callables(alert dict) told of each violation
        self.window_end = now + window

    def sent(self, name: str, sojourn: float, size: int) -> None:
        cw = self.classes[name]
        cw.sent += 1
        cw.sent_bytes += size
        cw.seen += 1
        samples = cw.samples
        if len(samples) < MAX_SAMPLES:
            samples.append(sojourn)
        else:  # full: the newest samples replace the oldest
            samples[cw.seen % MAX_SAMPLES] = sojourn
        last = cw.last_sojourn
        if last is not None:
            cw.jitter += (abs(sojourn - last) - cw.jitter) / 16.0
        cw.last_sojourn = sojourn

    def dropped(self, name: str) -> None:
        self.classes[name].dropped += 1

    def next_deadline(self) -> float:
        return self.window_end

    def poll(self, now: float) -> None:
        if now < self.window_end:
            return
        span = self.window + (now - self.window_end)
        self.window_end = now + self.window
        for name, cw in self.classes.items():
            self._close(name, cw, span, now)

    def _close(self, name: str, cw: ClassWindow, span: float, now: float) -> None:
        samples = sorted(cw.samples)
        total = cw.sent + cw.dropped
        if not total:  # an idle class meets every target; its delay figures stay those last measured
            cw.last.update(throughput_mbit=0.0, pps=0.0, packets=0, dropped=0)
            return
        figures = {
            "delay_p50_ms": percentile(samples, 0.50) * 1000.0,
            "delay_p95_ms": percentile(samples, 0.95) * 1000.0,
            "delay_p99_ms": percentile(samples, 0.99) * 1000.0,
            "jitter_ms": cw.jitter * 1000.0,
            "loss_percent": 100.0 * cw.dropped / total if total else 0.0,
            "throughput_mbit": cw.sent_bytes * 8 / span / 1e6,
            "pps": cw.sent / span,
            "packets": cw.sent,
            "dropped": cw.dropped,
        }
        cw.last = figures
        cw.samples = []
        cw.seen = cw.sent = cw.dropped = cw.sent_bytes = 0
        for key, limit in self.targets.get(name, {}).items():
            value = figures.get(key.replace("min_", "", 1)) if key.startswith("min_") else figures.get(key)
            if value is None:
                continue
            bad = value < limit if key.startswith("min_") else value > limit
            if bad:
                cw.violations[key] = cw.violations.get(key, 0) + 1
                alert = {"time": now, "class": name, "metric": key, "value": round(value, 3), "target": limit}
                self.alerts.append(alert)
                for listener in self.listeners:
                    listener(alert)

    def report(self) -> Dict[str, dict]:
        return {name: dict(cw.last, violations=dict(cw.violations), targets=self.targets.get(name, {}))
                for name, cw in self.classes.items()}
