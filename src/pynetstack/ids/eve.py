"""Output as Suricata writes it: EVE JSON lines (eve.json) and fast.log lines."""

from __future__ import annotations

import json
import time
from typing import IO, Optional

from ..wire.addr import ip_to_int, ip_to_str

PROTO_NAMES = {1: "ICMP", 6: "TCP", 17: "UDP", 47: "GRE", 50: "ESP", 132: "SCTP"}


def timestamp(ts: float) -> str:
    """'2026-11-30T10:00:00.123456+0000' in UTC, as Suricata writes its timestamps."""
    seconds = int(ts)
    micros = int(round((ts - seconds) * 1e6))
    if micros >= 1_000_000:
        seconds, micros = seconds + 1, micros - 1_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}+0000"


class XffError(ValueError):
    """A bad X-Forwarded-For output setting."""


class Xff:
    """suricata.yaml's eve-log alert ``xff``: the client address an HTTP proxy reported in a request
    header, either added to the alert as ``xff`` (mode extra-data) or written over the address of
    the client side (mode overwrite: src_ip on a packet to the server, dest_ip on one to the
    client). deployment "reverse" takes the header's last address, "forward" its first."""

    __slots__ = ("mode", "deployment", "header")

    def __init__(self, mode: str = "extra-data", deployment: str = "reverse", header: str = "X-Forwarded-For"):
        if mode not in ("extra-data", "overwrite"):
            raise XffError(f"xff mode {mode!r} is not extra-data or overwrite")
        if deployment not in ("reverse", "forward"):
            raise XffError(f"xff deployment {deployment!r} is not reverse or forward")
        if not header or ":" in header:
            raise XffError(f"xff header {header!r} is not a header name")
        self.mode, self.deployment, self.header = mode, deployment, header.lower().encode("latin-1")

    def address(self, alert) -> Optional[str]:
        tx = getattr(alert, "tx", None)
        value = tx.request.header(self.header) if tx is not None else None
        if not value:
            return None
        items = [v.strip() for v in value.split(b",") if v.strip()]
        if not items:
            return None
        chosen = (items[-1] if self.deployment == "reverse" else items[0]).decode("latin-1")
        try:
            ip_to_int(chosen)
        except (ValueError, OSError):
            return None  # not an IPv4 address (IPv6, a name, "unknown"): left out
        return chosen


def alert_event(alert, clock_offset: float = 0.0, xff: Optional[Xff] = None) -> dict:
    """The EVE record of an alert. ``clock_offset`` turns the engine's clock into wall time."""
    p, rule = alert.packet, alert.rule
    event = {
        "timestamp": timestamp(p.ts + clock_offset),
        "flow_id": alert.flow.flow_id if alert.flow is not None else 0,
        "event_type": "alert",
        "src_ip": ip_to_str(p.src),
        "dest_ip": ip_to_str(p.dst),
        "proto": PROTO_NAMES.get(p.proto, str(p.proto)),
    }
    if p.proto in (6, 17):
        event["src_port"] = p.sport
        event["dest_port"] = p.dport
    elif p.proto == 1:
        event["icmp_type"] = p.icmp_type
        event["icmp_code"] = p.icmp_code
    if alert.flow is not None:
        event["direction"] = "to_server" if alert.direction == 0 else "to_client"
    body = {"action": alert.action, "gid": rule.gid, "signature_id": rule.sid, "rev": rule.rev,
            "signature": rule.msg, "category": rule.category, "severity": rule.severity}
    if rule.metadata:
        meta: dict = {}
        for item in rule.metadata:
            key, _, value = item.partition(" ")
            if key:
                meta.setdefault(key, []).append(value.strip())
        body["metadata"] = meta
    event["alert"] = body
    if rule.app:
        event["app_proto"] = rule.app
    if alert.app:
        event["http"] = alert.app
    if p.dns_query is not None:
        event["dns"] = {"query": [{"rrname": p.dns_query.decode("latin-1")}]}
    if alert.extra:
        event["pynetstack"] = alert.extra
    if xff is not None:
        address = xff.address(alert)
        if address is not None and xff.mode == "overwrite":
            event["src_ip" if alert.direction == 0 else "dest_ip"] = address
        elif address is not None:
            event["xff"] = address
    return event


def fast_line(alert, clock_offset: float = 0.0) -> str:
    """'11/30/2026-10:00:00.123456  [**] [1:2000:1] msg [**] [Classification: c] [Priority: 3] {TCP} a:1 -> b:2'"""
    p, rule = alert.packet, alert.rule
    ts = p.ts + clock_offset
    seconds = int(ts)
    stamp = time.strftime("%m/%d/%Y-%H:%M:%S", time.gmtime(seconds)) + f".{int((ts - seconds) * 1e6):06d}"
    proto = PROTO_NAMES.get(p.proto, str(p.proto))
    src, dst = ip_to_str(p.src), ip_to_str(p.dst)
    if p.proto in (6, 17):
        src, dst = f"{src}:{p.sport}", f"{dst}:{p.dport}"
    drop = "[Drop] " if alert.action == "blocked" else ""
    category = rule.category or "(null)"
    return (f"{stamp}  {drop}[**] [{rule.gid}:{rule.sid}:{rule.rev}] {rule.msg} [**] "
            f"[Classification: {category}] [Priority: {rule.severity}] {{{proto}}} {src} -> {dst}")


class EveWriter:
    """Appends alerts to eve.json (and fast.log when given), one line each."""

    def __init__(self, eve: IO[str], fast: Optional[IO[str]] = None, clock_offset: float = 0.0,
                 xff: Optional[Xff] = None):
        self.xff = xff
        self.eve = eve
        self.fast = fast
        self.clock_offset = clock_offset
        self.written = 0

    def write(self, alerts) -> None:
        for alert in alerts:
            self.eve.write(json.dumps(alert_event(alert, self.clock_offset, self.xff), separators=(",", ":")) + "\n")
            if self.fast is not None:
                self.fast.write(fast_line(alert, self.clock_offset) + "\n")
            self.written += 1

    def write_event(self, event: dict) -> None:
        self.eve.write(json.dumps(event, separators=(",", ":")) + "\n")

    def flush(self) -> None:
        self.eve.flush()
        if self.fast is not None:
            self.fast.flush()
