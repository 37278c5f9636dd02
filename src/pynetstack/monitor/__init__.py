"""Monitoring: Prometheus exposition of the stack's counters, an embedded time-series store,
alerts, reports, a live dashboard and ``pynetstack top``.

    from pynetstack.monitor import Monitor, MonitorConfig
    monitor = Monitor(stack, MonitorConfig(listen=("127.0.0.1", 9469), store="monitor.db")).start()

Names load lazily, so checking a [monitoring] section needs neither prometheus-client nor SQLite.
"""

from __future__ import annotations

_NAMES = {"Monitor": "monitor", "MonitorConfig": "config", "AlertSpec": "config", "MonitorConfigError": "config",
          "Store": "store", "NetworkMonitor": "network_monitor"}
__all__ = sorted(_NAMES)


def __getattr__(name):
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
