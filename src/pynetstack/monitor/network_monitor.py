"""The seed's ``NetworkMonitor``, in Python: the same four calls over the Monitor.

    monitor = NetworkMonitor(stack, {"collection_interval": 5, "analysis_interval": 30})
    monitor.configure_alerts([{"name": "High bandwidth utilization",
                               "metric_path": "bandwidth_usage.utilization_percent",
                               "threshold": 85.0, "severity": "high"}])
    monitor.start_monitoring()
    report = monitor.generate_report("performance", 3600)

The seed's metric paths are derived figures; each maps to a rate over the stack's counters,
its threshold converted into the counter's unit (``analysis_interval`` is the rate's window):

* ``bandwidth_usage.utilization_percent``: transmit or receive bits/s per interface against
  ``link_speed_mbps`` (option, default 1000);
* ``packet_rate.packets_per_second``, ``error_rate.drops_per_second``: per interface / in total;
* ``connections.active``: TCP connections established.
Any other path is read as a metric name (dots as underscores) with ``metric > threshold``.
"""

from __future__ import annotations

import os
import tempfile
from typing import Dict, List, Optional

from .config import AlertSpec, MonitorConfig, duration
from .monitor import Monitor


class NetworkMonitor:
    def __init__(self, stack, options: Optional[Dict] = None):
        options = dict(options or {})
        self.stack = stack
        self.collection_interval = duration(options.get("collection_interval", 5), "collection_interval")
        self.analysis_interval = duration(options.get("analysis_interval", 30), "analysis_interval")
        self.link_speed_bps = float(options.get("link_speed_mbps", 1000)) * 1e6
        store = options.get("store") or os.path.join(tempfile.mkdtemp(prefix="pynetstack-monitor-"), "monitor.db")
        listen = options.get("listen", ("127.0.0.1", 0))
        self.config = MonitorConfig(listen=listen, collection_interval=self.collection_interval, store=store,
                                    notify=options.get("notify"))
        self.monitor: Optional[Monitor] = None

    def configure_alerts(self, alerts: List[Dict]) -> List[AlertSpec]:
        specs = [AlertSpec(a["name"], self.expression(a["metric_path"], float(a["threshold"])),
                           for_=float(a.get("for", 0)), severity=str(a.get("severity", "warning")),
                           labels=a.get("labels"), summary=a.get("summary", f"{a['metric_path']} > {a['threshold']}"))
                 for a in alerts]
        self.config.alerts.extend(specs)
        return specs

    def expression(self, path: str, threshold: float) -> str:
        window = f"{max(self.analysis_interval, 2 * self.collection_interval):g}s"
        if path == "bandwidth_usage.utilization_percent":
            limit = threshold / 100.0 * self.link_speed_bps / 8  # bytes per second
            return f"rate(pynetstack_network_transmit_bytes_total[{window}]) > {limit:g}"
        if path == "packet_rate.packets_per_second":
            return f"rate(pynetstack_network_receive_packets_total[{window}]) > {threshold:g}"
        if path == "error_rate.drops_per_second":
            return f"rate(pynetstack_nstat_ip_in_discards_total[{window}]) > {threshold:g}"
        if path == "connections.active":
            return f'pynetstack_tcp_connections{{state="ESTABLISHED"}} > {threshold:g}'
        return f"{path} > {threshold:g}"

    def start_monitoring(self) -> Monitor:
        self.monitor = Monitor(self.stack, self.config).start()
        return self.monitor

    @property
    def url(self) -> Optional[str]:
        return self.monitor.server.url if self.monitor and self.monitor.server else None

    def alerts(self) -> List[dict]:
        return self.monitor.alert_table() if self.monitor else []

    def generate_report(self, kind: str = "performance", period: float = 3600, html: Optional[str] = None) -> str:
        """The report as text (and as an HTML file if ``html`` names one)."""
        from . import reports
        report = reports.build(self.monitor.store, str(kind), float(period))
        if html:
            with open(html, "w", encoding="utf-8") as handle:
                handle.write(reports.render_html(report))
        return reports.render_text(report)

    def stop_monitoring(self) -> None:
        if self.monitor is not None:
            self.monitor.close()
