"""The live dashboard: one HTML page, updated every second by server-sent events (``/events``).

Charts are drawn by uPlot 1.6.32 (MIT licence, Leon Sorokin; ``static/uplot.LICENSE``), vendored
in ``static/`` from the npm registry's ``uplot`` package, so no network is needed at run time.
"""

from __future__ import annotations

import os
from typing import Optional, Tuple

_STATIC = os.path.join(os.path.dirname(__file__), "static")
_ASSETS = {"uplot.iife.min.js": "application/javascript", "uplot.min.css": "text/css",
           "uplot.LICENSE": "text/plain"}
_cache = {}


def asset(name: str) -> Optional[Tuple[str, bytes]]:
    """(content type, bytes) of a vendored file, or None."""
    if name not in _ASSETS:
        return None
    if name not in _cache:
        with open(os.path.join(_STATIC, name), "rb") as handle:
            _cache[name] = handle.read()
    return _ASSETS[name], _cache[name]


def page() -> str:
    return _PAGE


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>pynetstack monitor</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/uplot.min.css">
<style>
body{font-family:system-ui,sans-serif;margin:1em;background:#fafafa;color:#222}
.cards{display:flex;gap:1em;flex-wrap:wrap}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:9em}
.card b{display:block;font-size:1.5em}
.charts{display:flex;flex-wrap:wrap;gap:1em;margin-top:1em}
table{border-collapse:collapse;background:#fff;margin-top:.5em}
td,th{border:1px solid #ddd;padding:2px 8px;text-align:right;font-size:.9em}
th{background:#eee} td:first-child{text-align:left}
.firing{color:#b00;font-weight:bold} .pending{color:#b70}
h2{font-size:1.1em;margin:1em 0 .2em}
</style></head><body>
<h1>pynetstack monitor <small id="status">connecting...</small></h1>
<div class="cards">
 <div class="card">receive <b id="rx-rate">-</b>bytes/s</div>
 <div class="card">transmit <b id="tx-rate">-</b>bytes/s</div>
 <div class="card">packets in <b id="pps">-</b>per second</div>
 <div class="card">TCP connections <b id="connections">-</b></div>
 <div class="card">conntrack entries <b id="conntrack">-</b></div>
 <div class="card">drops <b id="drops">-</b>per second</div>
 <div class="card">alerts firing <b id="alerts-firing">0</b></div>
</div>
<div class="charts"><div id="chart-throughput"></div><div id="chart-packets"></div></div>
<h2>Interfaces</h2><table id="interfaces"><thead><tr><th>device</th><th>rx bytes/s</th><th>tx bytes/s</th>
<th>rx packets/s</th><th>tx packets/s</th><th>rx bytes</th><th>tx bytes</th></tr></thead><tbody></tbody></table>
<h2>Alerts</h2><table id="alerts"><thead><tr><th>alert</th><th>state</th><th>severity</th><th>value</th>
<th>labels</th></tr></thead><tbody></tbody></table>
<h2>Top flows</h2><table id="flows"><thead><tr><th>flow</th><th>bytes</th><th>packets</th><th>state</th></tr>
</thead><tbody></tbody></table>
<h2>Drops by reason</h2><table id="drop-reasons"><thead><tr><th>reason</th><th>total</th><th>per second</th></tr>
</thead><tbody></tbody></table>
<h2>TCP states</h2><table id="tcp-states"><thead><tr><th>state</th><th>connections</th></tr></thead><tbody></tbody></table>
<script src="/static/uplot.iife.min.js"></script>
<script>
"use strict";
const KEEP = 300;
const fmt = n => n >= 1e9 ? (n/1e9).toFixed(2)+"G" : n >= 1e6 ? (n/1e6).toFixed(2)+"M" : n >= 1e3 ? (n/1e3).toFixed(1)+"k" : (+n).toFixed(n % 1 ? 1 : 0);
const esc = s => String(s).replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"})[c]);
const series = {t: [], rx: [], tx: [], pin: [], drop: []};
function chart(el, title, labels, colors) {
  return new uPlot({title: title, width: 520, height: 220,
    series: [{}].concat(labels.map((l, i) => ({label: l, stroke: colors[i], width: 2}))),
    axes: [{}, {values: (u, v) => v.map(fmt)}]}, [[], ...labels.map(() => [])], document.getElementById(el));
}
const cThroughput = chart("chart-throughput", "Throughput (bytes/s)", ["receive", "transmit"], ["#1f77b4", "#d62728"]);
const cPackets = chart("chart-packets", "Packets/s", ["in", "drops"], ["#2ca02c", "#ff7f0e"]);
function rows(id, list) { document.querySelector("#" + id + " tbody").innerHTML = list.join(""); }
function update(s) {
  let rx = 0, tx = 0; const ifs = [];
  for (const [dev, v] of Object.entries(s.interfaces)) {
    rx += v.receive_bytes_per_second || 0; tx += v.transmit_bytes_per_second || 0;
    ifs.push(`<tr><td>${esc(dev)}</td><td>${fmt(v.receive_bytes_per_second||0)}</td><td>${fmt(v.transmit_bytes_per_second||0)}</td>` +
      `<td>${fmt(v.receive_packets_per_second||0)}</td><td>${fmt(v.transmit_packets_per_second||0)}</td>` +
      `<td>${fmt(v.receive_bytes_total||0)}</td><td>${fmt(v.transmit_bytes_total||0)}</td></tr>`);
  }
  rows("interfaces", ifs);
  document.getElementById("rx-rate").textContent = fmt(rx);
  document.getElementById("tx-rate").textContent = fmt(tx);
  document.getElementById("pps").textContent = fmt(s.received_per_second);
  document.getElementById("connections").textContent = s.connections;
  document.getElementById("conntrack").textContent = s.conntrack.entries === undefined ? "-" : s.conntrack.entries;
  document.getElementById("drops").textContent = fmt(s.drops_per_second);
  const firing = s.alerts.filter(a => a.state === "firing");
  document.getElementById("alerts-firing").textContent = firing.length;
  rows("alerts", s.alerts.map(a => `<tr class="${esc(a.state)}"><td>${esc(a.name)}</td><td>${esc(a.state)}</td>` +
    `<td>${esc(a.severity)}</td><td>${fmt(a.value)}</td><td>${esc(JSON.stringify(a.labels))}</td></tr>`));
  rows("flows", s.flows.map(f => `<tr><td>${esc(f.flow)}</td><td>${fmt(f.bytes)}</td><td>${fmt(f.packets)}</td><td>${esc(f.state)}</td></tr>`));
  rows("drop-reasons", Object.entries(s.drops).map(([r, d]) => `<tr><td>${esc(r)}</td><td>${d.total}</td><td>${fmt(d.per_second)}</td></tr>`));
  rows("tcp-states", Object.entries(s.tcp_states).filter(([, n]) => n).map(([st, n]) => `<tr><td>${esc(st)}</td><td>${n}</td></tr>`));
  series.t.push(s.time); series.rx.push(rx); series.tx.push(tx); series.pin.push(s.received_per_second); series.drop.push(s.drops_per_second);
  if (series.t.length > KEEP) for (const k in series) series[k].shift();
  cThroughput.setData([series.t, series.rx, series.tx]);
  cPackets.setData([series.t, series.pin, series.drop]);
  document.getElementById("status").textContent = "live, " + new Date(s.time * 1000).toLocaleTimeString();
  document.body.dataset.updates = (+(document.body.dataset.updates || 0) + 1);
}
const events = new EventSource("/events");
events.addEventListener("snapshot", e => update(JSON.parse(e.data)));
events.onerror = () => { document.getElementById("status").textContent = "reconnecting..."; };
</script></body></html>
"""
