"""The ``[monitoring]`` section of the stack's TOML, checked before anything is built.

    [monitoring]
    enabled = true              # false: keep the section, build no monitor
    listen = "127.0.0.1:9469"   # host address of /metrics, the dashboard and its events; false: none
    stack_http = true           # also GET /metrics on the stack's own HTTP service (if it runs one)
    collection_interval = 5     # seconds between samples (store and alerts)
    store = "monitor.db"        # SQLite file (WAL); false: no history
    retention_raw = "1d"        # raw samples; then 1-minute rollups and 1-hour rollups
    retention_minute = "7d"
    retention_hour = "365d"
    max_disk_mb = 100           # the store's bound: oldest data goes first
    [monitoring.notify]
    log = true                  # firing and resolved alerts in the log
    webhook = "http://127.0.0.1:9093/api/v2/alerts"   # Alertmanager's API (a list of alerts); any
                                                      # other URL gets Alertmanager's webhook JSON
    group_by = ["alertname"]
    group_wait = 0              # Alertmanager's group_wait, group_interval, repeat_interval
    group_interval = 60
    repeat_interval = "4h"
    [[monitoring.alert]]
    name = "PacketFlood"
    expr = 'rate(pynetstack_network_receive_packets_total[10s]) > 1000'
    for = "5s"
    severity = "critical"
    labels = {team = "net"}
    summary = "a packet rate over 1000/s"

Durations are seconds or strings such as "30s", "5m", "4h", "7d".
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

from ..configcheck import check_keys

KEYS = {"listen", "stack_http", "collection_interval", "store", "retention_raw", "retention_minute",
        "retention_hour", "max_disk_mb", "notify", "alert", "enabled"}
NOTIFY_KEYS = {"log", "webhook", "group_by", "group_wait", "group_interval", "repeat_interval"}
ALERT_KEYS = {"name", "expr", "for", "severity", "labels", "summary", "metric_path", "threshold"}
SEVERITIES = ("info", "warning", "high", "critical")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class MonitorConfigError(ValueError):
    """A problem in [monitoring], naming the key."""


def duration(value, where: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match:
        raise MonitorConfigError(f"{where} must be a duration (seconds, or like '30s', '5m', '4h', '7d'), not {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def listen_address(value, where: str) -> tuple:
    if not isinstance(value, str) or value.count(":") != 1:
        raise MonitorConfigError(f"{where} must be 'HOST:PORT' like '127.0.0.1:9469', not {value!r}")
    host, port = value.split(":")
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise MonitorConfigError(f"{where}: {port!r} is not a port number")
    return host or "127.0.0.1", int(port)


class AlertSpec:
    __slots__ = ("name", "expr", "for_", "severity", "labels", "summary")

    def __init__(self, name: str, expr: str, for_: float = 0.0, severity: str = "warning",
                 labels: Optional[Dict[str, str]] = None, summary: str = ""):
        self.name, self.expr, self.for_ = name, expr, for_
        self.severity, self.labels, self.summary = severity, dict(labels or {}), summary


class MonitorConfig:
    """Everything [monitoring] says, with defaults; build one from Python just as well."""

    def __init__(self, listen: Optional[tuple] = ("127.0.0.1", 9469), stack_http: bool = True,
                 collection_interval: float = 5.0, store: Optional[str] = None,
                 retention_raw: float = 86400.0, retention_minute: float = 7 * 86400.0,
                 retention_hour: float = 365 * 86400.0, max_disk_mb: float = 100.0,
                 alerts: Optional[List[AlertSpec]] = None, notify: Optional[Dict[str, Any]] = None):
        self.listen = listen
        self.stack_http = stack_http
        self.collection_interval = collection_interval
        self.store = store
        self.retention_raw, self.retention_minute, self.retention_hour = retention_raw, retention_minute, retention_hour
        self.max_disk_mb = max_disk_mb
        self.alerts = list(alerts or [])
        self.notify = dict(log=True, webhook=None, group_by=["alertname"], group_wait=0.0, group_interval=60.0,
                           repeat_interval=4 * 3600.0)
        self.notify.update(notify or {})


def parse(table: Dict[str, Any], where: str = "[monitoring]", base_dir: str = ".") -> MonitorConfig:
    """Check ``table`` (the parsed [monitoring] section) and return a MonitorConfig."""
    import os
    if not isinstance(table, dict):
        raise MonitorConfigError(f"{where} must be a table")
    _known(table, KEYS, where)
    if not isinstance(table.get("enabled", True), bool):
        raise MonitorConfigError(f"{where} enabled must be true or false")
    listen = table.get("listen", "127.0.0.1:9469")
    listen = None if listen is False else listen_address(listen, f"{where} listen")
    interval = duration(table.get("collection_interval", 5), f"{where} collection_interval")
    if not 0.01 <= interval <= 3600:
        raise MonitorConfigError(f"{where} collection_interval must be within 0.01..3600 seconds, not {interval}")
    store = table.get("store", False)
    if store is not False and not (isinstance(store, str) and store):
        raise MonitorConfigError(f"{where} store must be a file name or false, not {store!r}")
    retention = {}
    for level, default in (("raw", "1d"), ("minute", "7d"), ("hour", "365d")):
        retention[level] = duration(table.get(f"retention_{level}", default), f"{where} retention_{level}")
    if not retention["raw"] >= 120 or retention["minute"] < 7200:
        raise MonitorConfigError(f"{where}: retention_raw must be at least 2m and retention_minute at least 2h "
                                 "(a rollup is made before the data it sums expires)")
    disk = table.get("max_disk_mb", 100)
    if isinstance(disk, bool) or not isinstance(disk, (int, float)) or disk <= 0:
        raise MonitorConfigError(f"{where} max_disk_mb must be a positive number, not {disk!r}")
    stack_http = table.get("stack_http", True)
    if not isinstance(stack_http, bool):
        raise MonitorConfigError(f"{where} stack_http must be true or false")
    notify = table.get("notify", {})
    _known(notify, NOTIFY_KEYS, f"{where}.notify")
    checked: Dict[str, Any] = {}
    for key in ("group_wait", "group_interval", "repeat_interval"):
        if key in notify:
            checked[key] = duration(notify[key], f"{where}.notify {key}")
    if "webhook" in notify:
        hook = notify["webhook"]
        if not (isinstance(hook, str) and hook.startswith(("http://", "https://"))):
            raise MonitorConfigError(f"{where}.notify webhook must be an http:// or https:// URL, not {hook!r}")
        checked["webhook"] = hook
    if "log" in notify:
        if not isinstance(notify["log"], bool):
            raise MonitorConfigError(f"{where}.notify log must be true or false")
        checked["log"] = notify["log"]
    if "group_by" in notify:
        group_by = notify["group_by"]
        if not (isinstance(group_by, list) and all(isinstance(g, str) for g in group_by)):
            raise MonitorConfigError(f"{where}.notify group_by must be a list of label names")
        checked["group_by"] = group_by
    alerts = [alert_spec(spec, f"{where} alert #{i + 1}") for i, spec in enumerate(table.get("alert", []))]
    names = [a.name for a in alerts]
    if len(set(names)) != len(names):
        raise MonitorConfigError(f"{where}: two alerts are named {sorted(n for n in names if names.count(n) > 1)[0]!r}")
    return MonitorConfig(listen=listen, stack_http=stack_http, collection_interval=interval,
                         store=None if store is False else os.path.join(base_dir, store),
                         retention_raw=retention["raw"], retention_minute=retention["minute"],
                         retention_hour=retention["hour"], max_disk_mb=float(disk), alerts=alerts, notify=checked)


def alert_spec(spec: Dict[str, Any], where: str) -> AlertSpec:
    """One alert: ``expr`` or the seed's ``metric_path`` + ``threshold`` (meaning ``metric > threshold``)."""
    from .expr import parse_expr
    if not isinstance(spec, dict):
        raise MonitorConfigError(f"{where} must be a table")
    _known(spec, ALERT_KEYS, where)
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise MonitorConfigError(f"{where}: 'name' is required")
    if "expr" in spec:
        expr = spec["expr"]
    elif "metric_path" in spec and "threshold" in spec:
        expr = f"{spec['metric_path']} > {spec['threshold']}"
    else:
        raise MonitorConfigError(f"{where} ({name}): give 'expr', or 'metric_path' and 'threshold'")
    if not isinstance(expr, str):
        raise MonitorConfigError(f"{where} ({name}): expr must be a string")
    try:
        parse_expr(expr)
    except ValueError as exc:
        raise MonitorConfigError(f"{where} ({name}): {exc}") from None
    severity = str(spec.get("severity", "warning"))
    if severity not in SEVERITIES:
        raise MonitorConfigError(f"{where} ({name}): severity must be one of {', '.join(SEVERITIES)}")
    labels = spec.get("labels", {})
    if not (isinstance(labels, dict) and all(isinstance(v, str) for v in labels.values())):
        raise MonitorConfigError(f"{where} ({name}): labels must be a table of strings")
    return AlertSpec(name, expr, duration(spec.get("for", 0), f"{where} ({name}) for"), severity, labels,
                     str(spec.get("summary", "")))


def _known(table, allowed: set, where: str) -> None:
    check_keys(table, allowed, where, MonitorConfigError)


def build(stack, table: Dict[str, Any], base_dir: str = ".", source: str = "config"):
    """Start the Monitor that [monitoring] describes on ``stack``; returns it (or None if disabled)."""
    if table.get("enabled", True) is False:
        return None
    from .monitor import Monitor
    return Monitor(stack, parse(table, f"{source}: [monitoring]", base_dir)).start()
