"""Plain-text reports of a running stack, shared by the HTTP status page and `pynetstack status`."""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from typing import Optional

from .wire.addr import ip_to_str


def status_page(stack, max_rows: Optional[int] = None, heading: str = "") -> str:
    """Plain-text status: uptime, interfaces, counters, drops, TCP connections like ``ss -ti``, and
    each network function's ``stats()``.

    ``max_rows``: list at most that many connections after a count by state, so the page
    costs little however many connections there are (the HTTP status page is public)."""
    lines = [f"pynetstack status at {time.strftime('%Y-%m-%d %H:%M:%S')}" + (f" ({heading})" if heading else "")]
    try:
        status = _overview(stack)
    except Exception as exc:  # status must render even if a part of the stack misbehaves
        status = {"error": repr(exc)}
    lines.append(f"uptime {status.get('uptime', 0):.1f} s")
    for iface in status.get("interfaces", []):
        lines.append(f"  {iface.get('describe', iface.get('name'))}  rx {iface.get('rx_frames')} frames"
                     f"  tx {iface.get('tx_frames')} frames")
    layer = getattr(stack, "tcp", None)
    if layer is not None:
        lines.append("")
        lines.append(tcp_table(layer, max_rows))
        if layer.drops:
            lines.append("tcp drops: " + json.dumps(dict(layer.drops), sort_keys=True))
        if layer.counters:
            lines.append("tcp counters: " + json.dumps(dict(layer.counters), sort_keys=True))
    if status.get("drops"):
        lines.append("ip drops: " + json.dumps(status["drops"], sort_keys=True, default=str))
    for name, stats in sorted(status.get("functions", {}).items()):  # network functions on the hooks
        lines.append(f"{name}: " + json.dumps(stats, sort_keys=True, default=str))
    return "\n".join(lines) + "\n"


def _overview(stack) -> dict:
    """The parts of ``Stack.status()`` the page shows, without its per-connection table."""
    host = getattr(stack, "host", None)
    if host is None:  # a stack-like object: its own status()
        return stack.status()
    with stack.lock:
        return {"uptime": stack.now() - stack.started_at,
                "interfaces": [{"name": i.name, "describe": i.describe(), "rx_frames": i.rx_frames,
                                "tx_frames": i.tx_frames} for i in host.interfaces.values()],
                "drops": dict(host.drops),
                "functions": {f.name: f.stats() for f in host.hooks.functions}}


def tcp_summary(layer) -> str:
    """One line: how many connections in each state, and the listeners."""
    states = Counter(conn.state for conn in list(layer.connections.values()))
    counts = ", ".join(f"{state} {n}" for state, n in sorted(states.items())) or "none"
    return f"tcp connections: {sum(states.values())} ({counts}); listening on {len(layer.listeners)} port(s)"


def tcp_table(layer, max_rows: Optional[int] = None) -> str:
    """Connections as a table: state, addresses, windows, RTT, retransmissions.  With
    ``max_rows``, a count by state, the listeners and at most ``max_rows`` connections."""
    rows = ["State        Local                  Peer                   Send-Q  Recv-Q  cwnd     "
            "rtt(ms)  rto(ms)  retrans"]
    if max_rows is None:
        infos = layer.connection_info()
    else:
        rows.insert(0, tcp_summary(layer))
        conns = list(itertools.islice(layer.connections.values(), max_rows))
        infos = [conn.info() for conn in conns] + [
            {"state": "LISTEN", "local": (lst.ip, lst.port), "remote": (0, 0), "accept_queue": len(lst.accept_queue),
             "half_open": len(lst.pending)} for lst in list(layer.listeners.values())]
        if len(layer.connections) > max_rows:
            rows.append(f"(the first {max_rows} of {len(layer.connections)} connections)")
    for info in infos:
        local = f"{ip_to_str(info['local'][0])}:{info['local'][1]}"
        remote = f"{ip_to_str(info['remote'][0])}:{info['remote'][1]}"
        if info["state"] == "LISTEN":
            rows.append(f"{'LISTEN':<12} {local:<22} {'*:*':<22} {info['accept_queue']:>6}  "
                        f"{info['half_open']:>6}")
            continue
        rows.append(f"{info['state']:<12} {local:<22} {remote:<22} {info['send_queue']:>6}  "
                    f"{info['recv_queue']:>6}  {info['cwnd'] or 0:<8} {info['srtt_ms'] or 0:<8} "
                    f"{info['rto_ms']:<8} {info['retransmits']}")
    return "\n".join(rows)


