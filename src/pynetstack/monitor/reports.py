"""Reports from the store: ``performance``, ``security`` and ``traffic`` over the last ``since``
seconds, as text for the terminal and as one self-contained HTML file whose plots are drawn by
the vendored uPlot (inlined, so the file opens anywhere without a network).

A report is a plain dict (``build``): sections of figures and tables, and series to plot.
"""

from __future__ import annotations

import html
import json
import time
from typing import Dict, List, Optional

from .metrics import parse_key
from .store import Store, percentile

KINDS = ("performance", "security", "traffic")
NET = "pynetstack_network_"


def build(store: Store, kind: str, since: float, now: Optional[float] = None, progress=None) -> dict:
    """The report ``kind`` over [now - since, now] (wall-clock seconds; by default the later of
    the clock and the newest sample, so a simulation's virtual minutes are all in)."""
    if kind not in KINDS:
        raise ValueError(f"a report is one of {', '.join(KINDS)}, not {kind!r}")
    if now is None:
        now = max(time.time(), store.last_time() or 0.0)
    start = now - since
    store.refresh()
    report = {"kind": kind, "start": start, "end": now, "sections": [], "plots": []}
    say = progress or (lambda text: None)
    say(f"reading {len(store.series())} series from {store.path}")
    devices = sorted({parse_key(k)[1].get("device", "") for k in store.series(NET)} - {""})
    if kind == "performance":
        _performance(store, report, start, now, devices, say)
    elif kind == "security":
        _security(store, report, start, now)
    else:
        _traffic(store, report, start, now, devices)
    return report


def _device_key(what: str, device: str) -> str:
    return f'{NET}{what}_total{{device="{device}"}}'


def _stats(values: List[float]) -> Dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"mean": 0.0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    return {"mean": sum(ordered) / len(ordered), "p50": percentile(ordered, 50), "p90": percentile(ordered, 90),
            "p99": percentile(ordered, 99), "max": ordered[-1]}


def _performance(store, report, start, end, devices, say) -> None:
    rows = []
    for device in devices:
        say(f"throughput of {device}")
        for direction in ("receive", "transmit"):
            curve = store.rates(_device_key(f"{direction}_bytes", device), start, end)
            stats = _stats([v * 8 for _, v in curve])
            rows.append([device, direction] + [_bits(stats[k]) for k in ("mean", "p50", "p90", "p99", "max")])
            report["plots"].append({"title": f"{device} {direction} (bits/s)", "unit": "bit/s",
                                    "points": [(t, v * 8) for t, v in curve]})
    report["sections"].append({"title": "Throughput", "columns": ["device", "direction", "mean", "p50", "p90",
                                                                   "p99", "max"], "rows": rows})
    srtt = [v * 1000 for _, v in store.range("pynetstack_tcp_srtt_mean_seconds", start, end)]
    stats = _stats(srtt)
    report["sections"].append({"title": "TCP latency (smoothed RTT, mean over connections, ms)",
                               "columns": ["mean", "p50", "p90", "p99", "max"],
                               "rows": [[f"{stats[k]:.3f}" for k in ("mean", "p50", "p90", "p99", "max")]]})
    report["plots"].append({"title": "TCP smoothed RTT (ms)", "unit": "ms",
                            "points": store.range("pynetstack_tcp_srtt_mean_seconds", start, end)})
    report["plots"][-1]["points"] = [(t, v * 1000) for t, v in report["plots"][-1]["points"]]
    packets = []
    for name, title in (("pynetstack_nstat_ip_in_receives_total", "IP packets received"),
                        ("pynetstack_nstat_ip_forw_datagrams_total", "IP packets forwarded"),
                        ("pynetstack_nstat_ip_in_discards_total", "IP packets discarded")):
        curve = store.rates(name, start, end)
        stats = _stats([v for _, v in curve])
        packets.append([title, f"{store.increase(name, start, end):.0f}", f"{stats['mean']:.1f}", f"{stats['max']:.1f}"])
    report["sections"].append({"title": "Packets", "columns": ["counter", "total", "mean/s", "max/s"],
                               "rows": packets})
    states = [(parse_key(k)[1].get("state", ""), k) for k in store.series("pynetstack_tcp_connections")]
    rows = []
    for state, key in sorted(states):
        values = [v for _, v in store.range(key, start, end)]
        if values and max(values) > 0:
            rows.append([state, f"{values[-1]:.0f}", f"{max(values):.0f}"])
    report["sections"].append({"title": "TCP connections", "columns": ["state", "last", "max"], "rows": rows})
    _alerts(store, report, start, end)


def _security(store, report, start, end) -> None:
    rows = []
    for key in store.series("pynetstack_drops_total"):
        grew = store.increase(key, start, end)
        if grew:
            rows.append([parse_key(key)[1].get("reason", ""), f"{grew:.0f}"])
    rows.sort(key=lambda r: -float(r[1]))
    report["sections"].append({"title": "Drops by reason", "columns": ["reason", "packets"], "rows": rows})
    total = "pynetstack_nstat_ip_in_discards_total"
    report["plots"].append({"title": "Drops (packets/s)", "unit": "pkt/s", "points": store.rates(total, start, end)})
    rows = []
    for key in store.series():
        name = parse_key(key)[0]
        if any(word in name for word in ("conntrack_invalid", "conntrack_drop", "nft_drops", "nft_rejects",
                                          "ids_", "guard", "syncookies", "challenge_acks", "resets_sent")):
            values = store.range(key, start, end)
            if values:  # increase() counts across a restart of the stack, which zeroes counters
                rows.append([key, f"{store.increase(key, start, end):.0f}", f"{values[-1][1]:.0f}"])
    report["sections"].append({"title": "Firewall, conntrack, IDS and TCP defences",
                               "columns": ["counter", "in the period", "now"], "rows": rows})
    _alerts(store, report, start, end)


def _traffic(store, report, start, end, devices) -> None:
    rows = []
    for device in devices:
        rx = store.increase(_device_key("receive_bytes", device), start, end)
        tx = store.increase(_device_key("transmit_bytes", device), start, end)
        rxp = store.increase(_device_key("receive_packets", device), start, end)
        txp = store.increase(_device_key("transmit_packets", device), start, end)
        rows.append([device, _bytes(rx), _bytes(tx), f"{rxp:.0f}", f"{txp:.0f}"])
        report["plots"].append({"title": f"{device} receive (bytes/s)", "unit": "B/s",
                                "points": store.rates(_device_key("receive_bytes", device), start, end)})
    report["sections"].append({"title": "Interfaces", "columns": ["device", "received", "sent", "packets in",
                                                                   "packets out"], "rows": rows})
    talkers: Dict[str, dict] = {}
    for _, _, body in store.events(start, end, "top_flows"):
        for flow in body.get("flows", []):
            best = talkers.get(flow["flow"])
            if best is None or flow["bytes"] >= best["bytes"]:
                talkers[flow["flow"]] = flow
    top = sorted(talkers.values(), key=lambda f: -f["bytes"])[:10]
    report["sections"].append({"title": "Top talkers (flows by bytes)", "columns": ["flow", "bytes", "packets"],
                               "rows": [[f["flow"], _bytes(f["bytes"]), str(f["packets"])] for f in top]})
    rows = []
    for key in store.series("pynetstack_nstat_"):
        grew = store.increase(key, start, end)
        if grew:
            rows.append([key[len("pynetstack_nstat_"):-len("_total")], f"{grew:.0f}"])
    report["sections"].append({"title": "Protocol counters (nstat)", "columns": ["counter", "in the period"],
                               "rows": rows})


def _alerts(store, report, start, end) -> None:
    rows = [[time.strftime("%H:%M:%S", time.localtime(t)), body["name"], body["state"], body["severity"],
             f"{body['value']:.6g}", json.dumps(body["labels"], sort_keys=True)]
            for t, _, body in store.events(start, end, "alert")]
    report["sections"].append({"title": "Alerts", "columns": ["time", "alert", "state", "severity", "value",
                                                               "labels"], "rows": rows})


def _bits(v: float) -> str:
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if v >= scale:
            return f"{v / scale:.2f} {unit}"
    return f"{v:.0f} bit/s"


def _bytes(v: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if v >= scale:
            return f"{v / scale:.2f} {unit}"
    return f"{v:.0f} B"


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def render_text(report: dict) -> str:
    lines = [f"pynetstack {report['kind']} report, {_when(report['start'])} to {_when(report['end'])}", ""]
    for section in report["sections"]:
        lines.append(section["title"])
        if not section["rows"]:
            lines += ["  (nothing in this period)", ""]
            continue
        table = [section["columns"]] + section["rows"]
        widths = [max(len(str(row[i])) for row in table) for i in range(len(section["columns"]))]
        for row in table:
            lines.append("  " + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
        lines.append("")
    return "\n".join(lines)


def render_html(report: dict) -> str:
    """One file: tables, and the plots drawn by the inlined uPlot (MIT licence, notice kept)."""
    from .dashboard import asset
    js = asset("uplot.iife.min.js")[1].decode()
    css = asset("uplot.min.css")[1].decode()
    parts = [f"<h1>pynetstack {html.escape(report['kind'])} report</h1>",
             f"<p>{_when(report['start'])} to {_when(report['end'])}</p>"]
    parts.extend(f'<div class="plot" id="plot{i}"></div>' for i in range(len(report["plots"])))
    for section in report["sections"]:
        parts.append(f"<h2>{html.escape(section['title'])}</h2>")
        if not section["rows"]:
            parts.append("<p>(nothing in this period)</p>")
            continue
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in section["columns"])
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                       for row in section["rows"])
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    plots = json.dumps([{"title": p["title"], "x": [t for t, _ in p["points"]], "y": [v for _, v in p["points"]]}
                        for p in report["plots"]])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>pynetstack {html.escape(report['kind'])} report</title>
<style>{css}
body{{font-family:system-ui,sans-serif;margin:1em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px}} th{{background:#eee}} .plot{{display:inline-block;margin:.5em}}
</style></head><body>
{''.join(parts)}
<p><small>Plots drawn by uPlot (MIT licence, Copyright (c) 2022 Leon Sorokin), inlined below.</small></p>
<script>{js}</script>
<script>
"use strict";
const PLOTS = {plots};
const fmt = n => n >= 1e9 ? (n/1e9).toFixed(1)+"G" : n >= 1e6 ? (n/1e6).toFixed(1)+"M" : n >= 1e3 ? (n/1e3).toFixed(1)+"k" : +n.toFixed(2);
PLOTS.forEach((p, i) => new uPlot({{title: p.title, width: 560, height: 220,
  series: [{{}}, {{label: p.title, stroke: "#1f77b4", width: 2}}],
  axes: [{{}}, {{size: 60, values: (u, v) => v.map(fmt)}}]}}, [p.x, p.y], document.getElementById("plot" + i)));
document.body.dataset.plots = PLOTS.length;
</script></body></html>
"""
