"""Monitor: the stack's metrics exposed, sampled into the store, watched by alerts, shown live.

It registers as a network function with no hooks: the stack's loop calls ``poll(now)`` every
``collection_interval`` (on the virtual clock in simulations), which reads the registry once,
appends the sample to the store, evaluates the alert rules and hands notifications to the
notifier's sender thread.  Between samples it costs the packet path nothing.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import List, Optional

from ..net.hooks import NetworkFunction
from . import metrics
from .alerts import AlertEvaluator, Notifier
from .config import MonitorConfig
from .exposition import Exposition, serve_on_stack_http
from .live import Live, top_flows

log = logging.getLogger("pynetstack.monitor")
HISTORY_MIN = 4  # samples kept in memory for alert rates, at least
FLOWS_EVERY = 10.0  # seconds between the top-flows snapshots kept in the store (traffic reports)


class Monitor(NetworkFunction):
    name = "monitor"

    def __init__(self, stack, config: Optional[MonitorConfig] = None, wall_clock=time.time, sender=None):
        self.stack = stack
        self.config = config or MonitorConfig()
        self.exposition = Exposition(stack, extra=self._alert_families)
        self.evaluator = AlertEvaluator(self.config.alerts)
        self.notifier = Notifier(self.config.notify, sender=sender)
        self.live = Live(stack, alerts=self.alert_table)
        self.store = None
        if self.config.store:
            from .store import Store
            self.store = Store(self.config.store, retention_raw=self.config.retention_raw,
                               retention_minute=self.config.retention_minute,
                               retention_hour=self.config.retention_hour,
                               max_bytes=int(self.config.max_disk_mb * 1024 * 1024))
        # wall time of a stack instant: stored samples outlive the process and its monotonic clock
        self._wall_offset = wall_clock() - stack.now()
        window = max([spec_window(s.expr) for s in self.config.alerts] + [0.0])
        self.history = deque(maxlen=max(HISTORY_MIN, int(window / self.config.collection_interval) + 3))
        self._next: Optional[float] = None
        self._next_maintain = 0.0
        self._next_flows = 0.0
        self.server = None
        self.samples = 0
        self.sample_seconds = 0.0

    # -- life -------------------------------------------------------------------------------------

    def start(self) -> Monitor:
        """Register on the stack, serve /metrics (host address and the stack's HTTP service)."""
        if self.config.listen is not None:  # first: a port in use leaves nothing registered
            from .server import MonitorServer
            try:
                self.server = MonitorServer(self, self.config.listen)
            except OSError as exc:
                self.close()
                host, port = self.config.listen[:2]
                raise OSError(exc.errno, f"[monitoring] listen {host}:{port}: {exc.strerror or exc}") from None
            log.info("monitor on %s (/metrics, dashboard)", self.server.url)
        self._next = self.stack.now()
        self.stack.register(self)
        if self.config.stack_http:
            serve_on_stack_http(self.stack, self.exposition)
        self.stack.on_close(self.close)
        return self

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        self.notifier.close()
        if self.store is not None:
            self.store.close()
            self.store = None

    # -- the network function's timer -----------------------------------------------------------

    def next_deadline(self) -> Optional[float]:
        return self._next

    def poll(self, now: float) -> None:
        if self._next is None or now < self._next:
            return
        interval = self.config.collection_interval
        self._next = max(self._next + interval, now + interval / 2)
        self.sample(now)

    def sample(self, now: float) -> dict:
        started = time.perf_counter()
        flat = metrics.flatten(metrics.collect(self.stack))
        self.history.append((now, flat))
        wall = now + self._wall_offset
        if self.store is not None:
            self.store.append(wall, flat)
            if now >= self._next_maintain:
                self._next_maintain = now + 60.0
                self.store.maintain(wall)
        changes = self.evaluator.evaluate(now, list(self.history))
        for alert in changes:
            self.notifier.changed(alert, wall)
            if self.store is not None:
                self.store.event(wall, "alert", alert.as_dict(self._wall_offset))
        if self.store is not None and now >= self._next_flows:
            self._next_flows = now + FLOWS_EVERY
            self.store.event(wall, "top_flows", {"flows": top_flows(self.stack)})
        self.notifier.poll(now)
        self.samples += 1
        self.sample_seconds += time.perf_counter() - started
        return flat

    def stats(self) -> dict:
        return {"samples": self.samples, "sample_seconds": round(self.sample_seconds, 6),
                "alerts_firing": sum(1 for a in self.evaluator.instances.values() if a.state == "firing"),
                "notifications_sent": self.notifier.sent, "notifications_failed": self.notifier.failed}

    # -- alerts for the dashboard and /metrics ------------------------------------------------------

    def alert_table(self) -> List[dict]:
        return [a.as_dict(self._wall_offset) for a in self.evaluator.instances.values()]

    def _alert_families(self) -> List[metrics.Family]:
        family = metrics.Family("pynetstack_alerts", "gauge", "Alert instances by rule and state (ALERTS)",
                                ("alertname", "alertstate", "severity"))
        for alert in list(self.evaluator.instances.values()):
            if alert.state in ("pending", "firing"):
                family.add(1, alert.rule.name, alert.state, alert.rule.severity)
        return [family]


def spec_window(expr_text: str) -> float:
    from .expr import parse_expr
    return parse_expr(expr_text).window()
