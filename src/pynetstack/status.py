"""Plain-text reports of a running stack, shared by the HTTP status page and `pynetstack status`."""

from __future__ import annotations

import json
import time

from .wire.addr import ip_to_str


def status_page(stack) -> str:
    """Plain-text status: uptime, interfaces, counters, drops, and TCP connections like ``ss -ti``."""
    lines = [f"pynetstack status at {time.strftime('%Y-%m-%d %H:%M:%S')}"]
    try:
        status = stack.status()
    except Exception as exc:  # status must render even if a part of the stack misbehaves
        status = {"error": repr(exc)}
    lines.append(f"uptime {status.get('uptime', 0):.1f} s")
    for iface in status.get("interfaces", []):
        lines.append(f"  {iface.get('describe', iface.get('name'))}  rx {iface.get('rx_frames')} frames"
                     f"  tx {iface.get('tx_frames')} frames")
    layer = getattr(stack, "tcp", None)
    if layer is not None:
        lines.append("")
        lines.append(tcp_table(layer))
        if layer.drops:
            lines.append("tcp drops: " + json.dumps(dict(layer.drops), sort_keys=True))
        if layer.counters:
            lines.append("tcp counters: " + json.dumps(dict(layer.counters), sort_keys=True))
    if status.get("drops"):
        lines.append("ip drops: " + json.dumps(status["drops"], sort_keys=True, default=str))
    return "\n".join(lines) + "\n"


def tcp_table(layer) -> str:
    """Connections as a table: state, addresses, windows, RTT, retransmissions."""
    rows = ["State        Local                  Peer                   Send-Q  Recv-Q  cwnd     "
            "rtt(ms)  rto(ms)  retrans"]
    for info in layer.connection_info():
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


