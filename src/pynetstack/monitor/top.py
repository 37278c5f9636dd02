"""``pynetstack top``: a live terminal view of a running stack's monitor (like iftop/htop), drawn
with rich from the monitor's ``/api/snapshot`` (the numbers the dashboard shows)."""

from __future__ import annotations

import json
import time
import urllib.request


def fetch(url: str, timeout: float = 5.0) -> dict:
    with urllib.request.urlopen(url.rstrip("/") + "/api/snapshot", timeout=timeout) as response:
        return json.loads(response.read())


def _rate(v: float, unit: str = "B/s") -> str:
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= scale:
            return f"{v / scale:.1f} {prefix}{unit}"
    return f"{v:.0f} {unit}"


def render(snapshot: dict):
    """A rich renderable of one snapshot."""
    from rich.console import Group
    from rich.table import Table

    entries = snapshot.get("conntrack", {}).get("entries")
    head = Table.grid(padding=(0, 3))
    head.add_row(f"[b]pynetstack top[/b]  {time.strftime('%H:%M:%S', time.localtime(snapshot.get('time', 0)))}",
                 f"connections [b]{snapshot.get('connections', 0):.0f}[/b]",
                 f"conntrack [b]{'-' if entries is None else format(entries, '.0f')}[/b]",  # a count
                 f"in [b]{snapshot.get('received_per_second', 0):.0f}[/b] pkt/s",
                 f"drops [b]{snapshot.get('drops_per_second', 0):.1f}[/b]/s")
    interfaces = Table(title="Interfaces", expand=True)
    for column in ("device", "rx", "tx", "rx pkt/s", "tx pkt/s"):
        interfaces.add_column(column, justify="left" if column == "device" else "right")
    for device, row in sorted(snapshot.get("interfaces", {}).items()):
        interfaces.add_row(device, _rate(row.get("receive_bytes_per_second", 0)),
                           _rate(row.get("transmit_bytes_per_second", 0)),
                           f"{row.get('receive_packets_per_second', 0):.0f}",
                           f"{row.get('transmit_packets_per_second', 0):.0f}")
    flows = Table(title="Top flows", expand=True)
    for column in ("flow", "bytes", "state"):
        flows.add_column(column, justify="left" if column != "bytes" else "right")
    for flow in snapshot.get("flows", []):
        flows.add_row(flow["flow"], _rate(flow["bytes"], "B"), flow.get("state", ""))
    alerts = Table(title="Alerts", expand=True)
    for column in ("alert", "state", "severity", "value"):
        alerts.add_column(column)
    for alert in snapshot.get("alerts", []):
        style = "bold red" if alert["state"] == "firing" else "yellow" if alert["state"] == "pending" else ""
        alerts.add_row(alert["name"], alert["state"], alert["severity"], f"{alert['value']:.4g}", style=style)
    drops = Table(title="Drops by reason", expand=True)
    drops.add_column("reason")
    drops.add_column("total", justify="right")
    drops.add_column("per second", justify="right")
    for reason, d in sorted(snapshot.get("drops", {}).items(), key=lambda kv: -kv[1]["total"])[:10]:
        drops.add_row(reason, f"{d['total']:.0f}", f"{d['per_second']:.1f}")
    return Group(head, interfaces, flows, alerts, drops)


def run(url: str, interval: float = 1.0, count: int = 0, out=None) -> int:
    """Draw the view every ``interval`` seconds (``count`` times, or until Ctrl-C)."""
    from rich.console import Console
    from rich.live import Live

    console = Console(file=out) if out is not None else Console()
    if count == 1 or not console.is_terminal:  # a pipe gets plain frames, one after another
        for i in range(max(count, 1)):
            console.print(render(fetch(url)))
            if i + 1 < count:
                time.sleep(interval)
        return 0
    shown = 0
    with Live(render(fetch(url)), console=console, refresh_per_second=4, screen=False) as live:
        try:
            while count == 0 or shown < count:
                time.sleep(interval)
                live.update(render(fetch(url)))
                shown += 1
        except KeyboardInterrupt:
            pass
    return 0
