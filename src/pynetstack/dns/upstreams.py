"""The resolver's upstreams as configured: forwarders (``"addr"``, ``"addr:port"``, ``"[v6]:port"``)
and root hints (addresses, ``name=address`` pairs or a hints file), checked once, up front."""
from __future__ import annotations

import socket

from ..wire import dns as w


def parse_server(text: str, default_port: int):
    """``"127.0.0.1"`` or ``"127.0.0.1:5353"`` or ``"[::1]:53"`` -> (address, port)."""
    if isinstance(text, (tuple, list)):
        return str(text[0]), int(text[1])
    text = str(text)
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    host, port = text, default_port
    if text.count(":") == 1:
        host, port_text = text.split(":")
        if not port_text.isdigit() or int(port_text) > 65535:
            raise ValueError(f"bad port in {text!r}")
        port = int(port_text)
    check_ip(host)
    return host, port


def check_ip(address: str) -> None:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in address else socket.AF_INET, address)
    except OSError:
        raise ValueError(f"{address!r} is not an IP address") from None


def parse_hints(hints) -> list:
    """Root hints as (name, address) pairs: from addresses, ``name=address`` or a hints file."""
    if isinstance(hints, str):
        from .zone import parse_zone_text
        with open(hints, encoding="utf-8") as f:
            records = parse_zone_text(f.read(), ".", hints)
        return [(rr.name, rr.data.address) for rr in records if rr.rtype == w.A]
    out = []
    for i, hint in enumerate(hints):
        if isinstance(hint, (tuple, list)):
            out.append((str(hint[0]), str(hint[1])))
        elif "=" in hint:
            name, address = hint.split("=", 1)
            out.append((name, address))
        else:
            out.append((f"hint{i}.", hint))
    for _, address in out:
        check_ip(address)
    return out
