"""Conntrack's entries as text, in the format of ``conntrack -L`` and ``conntrack -E``."""

from __future__ import annotations

from ..wire.addr import ip_to_str
from . import ct_tcp
from .ct_entry import S_ASSURED, S_SEEN_REPLY, CtEntry
from .ct_icmp import format_fields as icmp_fields

PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp"}


def format_tuple(t) -> str:
    """One direction's tuple: ``src=.. dst=..`` then the ports, or the ICMP type, code and id."""
    proto, src, sport, dst, dport = t
    if proto == 6 or proto == 17:
        return f"src={ip_to_str(src)} dst={ip_to_str(dst)} sport={sport} dport={dport}"
    if proto == 1:
        return f"src={ip_to_str(src)} dst={ip_to_str(dst)} {icmp_fields(t)}"
    return f"src={ip_to_str(src)} dst={ip_to_str(dst)}"


def format_line(entry: CtEntry, now: float, live: bool, acct: bool) -> str:
    """The line of ``entry`` without the trailing mark and use fields.  ``live``: with the
    seconds left and the TCP state (an event about a destroyed entry has neither); ``acct``:
    with each direction's packets and bytes."""
    proto = entry.original[0]
    parts = [f"{PROTO_NAMES.get(proto, 'unknown'):<8} {proto}"]
    if live:
        parts.append(str(max(0, int(entry.deadline - now))))
        if proto == 6:
            parts.append(ct_tcp.STATE_NAMES[entry.proto_state.state])
    parts.append(format_tuple(entry.original))
    if acct:
        parts.append(f"packets={entry.counters[0]} bytes={entry.counters[1]}")
    if not entry.status & S_SEEN_REPLY:
        parts.append("[UNREPLIED]")
    parts.append(format_tuple(entry.reply))
    if acct:
        parts.append(f"packets={entry.counters[2]} bytes={entry.counters[3]}")
    if entry.status & S_ASSURED:
        parts.append("[ASSURED]")
    return " ".join(parts)
