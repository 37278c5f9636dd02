"""Prometheus text exposition of the stack's registry, with the ``prometheus-client`` library.

A custom collector reads the registry when Prometheus scrapes (``metrics.read``: one pass under
the stack's lock), so monitoring costs the packet path nothing between scrapes.  The library
writes the text format (escaping, ``# HELP``/``# TYPE``, float formatting) as Prometheus expects.
"""

from __future__ import annotations

import time
from typing import Callable, List, Optional

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from . import metrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StackCollector:
    """A prometheus-client collector over one stack (``extra`` adds families, e.g. alert states)."""

    def __init__(self, stack, extra: Optional[Callable[[], List[metrics.Family]]] = None):
        self.stack = stack
        self.extra = extra
        self.last_duration = 0.0

    def collect(self):
        started = time.perf_counter()
        fams = metrics.collect(self.stack)
        if self.extra is not None:
            fams.extend(self.extra())
        for family in fams:
            yield _convert(family)
        self.last_duration = time.perf_counter() - started
        duration = GaugeMetricFamily(f"{metrics.PREFIX}_scrape_collect_seconds",
                                     "Seconds spent reading the stack for this scrape")
        duration.add_metric([], self.last_duration)
        yield duration


def _convert(family: metrics.Family):
    kind = CounterMetricFamily if family.kind == "counter" else GaugeMetricFamily
    out = kind(family.name, family.help, labels=list(family.labels))
    for values, value in family.samples:
        out.add_metric(list(values), value)
    return out


class Exposition:
    """The registry prometheus-client renders: ``text()`` is the body of ``/metrics``."""

    def __init__(self, stack, extra: Optional[Callable[[], List[metrics.Family]]] = None):
        self.collector = StackCollector(stack, extra)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)

    def text(self) -> bytes:
        return generate_latest(self.registry)


def serve_on_stack_http(stack, exposition: Exposition, path: str = "/metrics") -> None:
    """Answer ``GET /metrics`` on the stack's own HTTP service (services/http.py's route hook)."""
    from ..services import http
    http.add_route(stack, path, lambda: (CONTENT_TYPE, exposition.text()))
