"""Alert rules over the sampled metrics, with Prometheus' states and Alertmanager's grouping.

* ``AlertEvaluator.evaluate(now, history)``: each rule's expression (expr.py) picks the series
  for which its condition holds; an instance per (rule, series labels) goes inactive -> pending ->
  firing once the condition has held for the rule's ``for``, and -> resolved when it stops holding.
* ``Notifier``: instances that fire or resolve join a group (``group_by`` labels); a group is sent
  ``group_wait`` after it forms, then at most every ``group_interval`` when it changes, and again
  every ``repeat_interval`` while anything in it fires: Alertmanager's timing, in its webhook JSON
  (version 4); to a URL ending in /api/v2/alerts (Alertmanager itself) as that API's list of
  alerts, re-sent every minute while firing.  Sending happens on a thread with a bounded queue: a slow receiver never stalls
  the stack.  Firing and resolving are also written to the log.

Sans-I/O: ``now`` is passed in; only the default sender touches the network.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
import urllib.parse
import urllib.request
from typing import Callable, Dict, List, Optional

from .expr import parse_expr

log = logging.getLogger("pynetstack.alerts")
MAX_INSTANCES = 1000  # alert instances kept (resolved ones go first)
MAX_QUEUED = 100      # notifications waiting for the sender
API_RESEND = 60.0     # seconds between re-sends of a firing alert to Alertmanager's API


class AlertInstance:
    __slots__ = ("rule", "labels", "state", "active_since", "fired_at", "resolved_at", "value", "fingerprint")

    def __init__(self, rule, labels: Dict[str, str]):
        self.rule = rule
        self.labels = labels
        self.state = "inactive"
        self.active_since = self.fired_at = self.resolved_at = None
        self.value = 0.0
        self.fingerprint = hashlib.sha256(json.dumps(sorted(labels.items())).encode()).hexdigest()[:16]

    def as_dict(self, wall_offset: float = 0.0) -> dict:
        def wall(t):
            return None if t is None else t + wall_offset
        return {"name": self.rule.name, "state": self.state, "severity": self.rule.severity,
                "labels": dict(self.labels), "value": self.value, "summary": self.rule.summary,
                "active_since": wall(self.active_since), "fired_at": wall(self.fired_at),
                "resolved_at": wall(self.resolved_at)}


class AlertEvaluator:
    def __init__(self, specs):
        self.rules = [(spec, parse_expr(spec.expr)) for spec in specs]
        self.instances: Dict[tuple, AlertInstance] = {}

    def evaluate(self, now: float, history) -> List[AlertInstance]:
        """Advance every instance; return those that began firing or resolved at ``now``."""
        changed = []
        seen = set()
        for spec, expr in self.rules:
            for series_labels, value in expr.evaluate(history):
                labels = dict(series_labels)
                labels.update(spec.labels)
                labels.update(alertname=spec.name, severity=spec.severity)
                key = (spec.name, tuple(sorted(labels.items())))
                seen.add(key)
                alert = self.instances.get(key)
                if alert is None:
                    alert = self.instances[key] = AlertInstance(spec, labels)
                alert.value = value
                if alert.state in ("inactive", "resolved"):
                    alert.state, alert.active_since, alert.resolved_at = "pending", now, None
                if alert.state == "pending" and now - alert.active_since >= spec.for_:
                    alert.state, alert.fired_at = "firing", now
                    changed.append(alert)
        for key, alert in list(self.instances.items()):
            if key in seen:
                continue
            if alert.state == "pending":
                alert.state = "inactive"
                del self.instances[key]
            elif alert.state == "firing":
                alert.state, alert.resolved_at = "resolved", now
                changed.append(alert)
        self._bound()
        return changed

    def _bound(self) -> None:
        if len(self.instances) <= MAX_INSTANCES:
            return
        resolved = sorted((a.resolved_at, key) for key, a in self.instances.items() if a.state == "resolved")
        for _, key in resolved[:len(self.instances) - MAX_INSTANCES]:
            del self.instances[key]

    def firing(self) -> List[AlertInstance]:
        return [a for a in self.instances.values() if a.state == "firing"]


class _Group:
    __slots__ = ("labels", "alerts", "formed", "last_sent", "dirty")

    def __init__(self, labels: Dict[str, str], now: float):
        self.labels = labels
        self.alerts: Dict[str, dict] = {}  # fingerprint -> alert as sent
        self.formed = now
        self.last_sent = None
        self.dirty = True


class Notifier:
    """Groups alert changes and sends them (``sender(url, payload)``) with Alertmanager's timing."""

    def __init__(self, notify: dict, sender: Optional[Callable[[str, dict], None]] = None,
                 receiver: str = "pynetstack"):
        self.webhook = notify.get("webhook")
        self.log = notify.get("log", True)
        self.group_by = list(notify.get("group_by", ["alertname"]))
        self.group_wait = float(notify.get("group_wait", 0.0))
        self.group_interval = float(notify.get("group_interval", 60.0))
        self.repeat_interval = float(notify.get("repeat_interval", 4 * 3600.0))
        # Alertmanager's own API takes a list of alerts, and resolves one not heard of for its
        # resolve_timeout (5 min): re-send firing alerts every minute, as Prometheus does.
        path = urllib.parse.urlsplit(self.webhook).path if self.webhook else ""
        self.api_v2 = path.rstrip("/").endswith("/api/v2/alerts")
        if self.api_v2:
            self.repeat_interval = min(self.repeat_interval, API_RESEND)
        self.receiver = receiver
        self.groups: Dict[tuple, _Group] = {}
        self.sent = 0
        self.failed = 0
        self.outbox: List[dict] = []  # every payload, newest last (bounded): the dashboard and tests read it
        self._queue = None
        self._sender = sender
        self._thread = None

    def changed(self, alert: AlertInstance, wall: float) -> None:
        if self.log:
            level = logging.WARNING if alert.state == "firing" else logging.INFO
            log.log(level, "alert %s %s %s value=%.6g", alert.rule.name, alert.state.upper(),
                    json.dumps(alert.labels, sort_keys=True), alert.value)
        key = tuple(alert.labels.get(label, "") for label in self.group_by)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = _Group(dict(zip(self.group_by, key)), alert.fired_at or 0.0)
        wall_offset = wall - (alert.resolved_at if alert.state == "resolved" else alert.fired_at)
        group.alerts[alert.fingerprint] = _as_am(alert, wall_offset)
        group.dirty = True

    def poll(self, now: float) -> None:
        for key, group in list(self.groups.items()):
            due = False
            if group.last_sent is None:
                due = now - group.formed >= self.group_wait
            elif group.dirty:
                due = now - group.last_sent >= self.group_interval
            elif any(a["status"] == "firing" for a in group.alerts.values()):
                due = now - group.last_sent >= self.repeat_interval
            if not due:
                continue
            self._send(self.payload(key, group))
            group.last_sent = now
            group.dirty = False
            for fingerprint in [f for f, a in group.alerts.items() if a["status"] == "resolved"]:
                del group.alerts[fingerprint]
            if not group.alerts:
                del self.groups[key]

    def payload(self, key: tuple, group: _Group) -> dict:
        alerts = sorted(group.alerts.values(), key=lambda a: a["fingerprint"])
        common = dict(alerts[0]["labels"]) if alerts else {}
        for alert in alerts[1:]:
            common = {k: v for k, v in common.items() if alert["labels"].get(k) == v}
        firing = any(a["status"] == "firing" for a in alerts)
        return {"version": "4", "groupKey": "{}:" + json.dumps(group.labels, sort_keys=True),
                "truncatedAlerts": 0, "status": "firing" if firing else "resolved", "receiver": self.receiver,
                "groupLabels": group.labels, "commonLabels": common,
                "commonAnnotations": {k: v for k, v in alerts[0]["annotations"].items()} if alerts else {},
                "externalURL": "", "alerts": alerts}

    def _send(self, payload: dict) -> None:
        self.outbox.append(payload)
        del self.outbox[:-MAX_QUEUED]
        if not self.webhook:
            return
        if self._queue is None:
            self._queue = queue.Queue(MAX_QUEUED)
            self._thread = threading.Thread(target=self._run, name="pynetstack-alerts", daemon=True)
            self._thread.start()
        try:
            self._queue.put_nowait(payload)
        except queue.Full:
            self.failed += 1
            log.warning("alert notifications queue full: one dropped")

    def _run(self) -> None:
        send = self._sender or post_json
        while True:
            payload = self._queue.get()
            if payload is None:
                return
            try:
                send(self.webhook, postable_alerts(payload) if self.api_v2 else payload)
                self.sent += 1
            except Exception as exc:  # a receiver's failure must not end the sender
                self.failed += 1
                log.warning("alert webhook %s failed: %s", self.webhook, exc)

    def close(self) -> None:
        if self._queue is not None:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                pass
            self._thread.join(timeout=2)
            self._queue = None


def _rfc3339(t: Optional[float]) -> str:
    if t is None:
        return "0001-01-01T00:00:00Z"
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def _as_am(alert: AlertInstance, wall_offset: float) -> dict:
    """One alert as Alertmanager's webhook sends it."""
    summary = alert.rule.summary or f"{alert.rule.expr} (value {alert.value:.6g})"
    return {"status": "firing" if alert.state == "firing" else "resolved", "labels": dict(alert.labels),
            "annotations": {"summary": summary, "value": f"{alert.value:.6g}"},
            "startsAt": _rfc3339(alert.fired_at + wall_offset if alert.fired_at is not None else None),
            "endsAt": _rfc3339(alert.resolved_at + wall_offset if alert.resolved_at is not None else None),
            "generatorURL": "", "fingerprint": alert.fingerprint}


def postable_alerts(payload: dict) -> List[dict]:
    """A webhook payload as the body of Alertmanager's ``POST /api/v2/alerts``: its alerts, each
    with labels, annotations, startsAt and, once resolved, endsAt (a firing alert has none: an
    endsAt in the past would resolve it)."""
    out = []
    for alert in payload["alerts"]:
        one = {key: alert[key] for key in ("labels", "annotations", "startsAt", "generatorURL")}
        if alert["status"] == "resolved":
            one["endsAt"] = alert["endsAt"]
        out.append(one)
    return out


def post_json(url: str, payload, timeout: float = 5.0) -> None:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - a configured URL
        response.read()
