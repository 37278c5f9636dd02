"""Build a DnsServer from the ``[dns]`` table of the TOML configuration.

    [dns]
    zones = ["zones/example.zone", { file = "zones/rev.zone", origin = "2.0.192.in-addr.arpa." }]
    recursion = true
    root_hints = ["a.root.lab.=127.53.0.1"]   # or a hints file path, or plain addresses
    forwarders = ["127.0.0.1:5300"]           # forwarding mode instead of iteration
    cache_size = 10000                        # entries
    cache_bytes = 16777216                    # optional bound in bytes
    upstream_port = 53
    timeout = 1.5
    listen = "127.0.0.1:5353"                 # used by the CLI / stack, kept on server.listen
    minimal_responses = false                 # true: no NS set / addresses beyond the answer (BIND)
"""
from __future__ import annotations

import os

from .cache import Cache
from .resolver import Resolver
from .server import DnsServer
from .zone import ZoneError, load_zone

KNOWN_KEYS = {"zones", "recursion", "root_hints", "forwarders", "cache_size", "cache_bytes",
              "upstream_port", "timeout", "listen", "minimal_responses"}


def _typed(table: dict, key: str, types, default):
    if key not in table:
        return default
    value, types = table[key], types if isinstance(types, tuple) else (types,)
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise ValueError(f"dns.{key} has the wrong type ({type(value).__name__})")
    return value


def build_from_config(table: dict, base_dir: str) -> DnsServer:
    """The server the ``[dns]`` table describes. Its resolver is sans-I/O: the front end that
    serves it (hostio.HostServer, or stackio.serve_on_stack on a stack) carries its queries."""
    if not isinstance(table, dict):
        raise ValueError("[dns] must be a table")
    unknown = sorted(set(table) - KNOWN_KEYS)
    if unknown:
        raise ValueError(f"dns.{unknown[0]} is not a known setting (known: {', '.join(sorted(KNOWN_KEYS))})")
    zones = [_load(entry, base_dir, i) for i, entry in enumerate(_typed(table, "zones", list, []))]
    recursion = _typed(table, "recursion", bool, False)
    hints = _typed(table, "root_hints", (list, str), None)
    forwarders = _typed(table, "forwarders", list, None)
    cache_size = _typed(table, "cache_size", int, 10000)
    cache_bytes = _typed(table, "cache_bytes", int, None)
    port = _typed(table, "upstream_port", int, 53)
    timeout = _typed(table, "timeout", (int, float), 1.5)
    minimal = _typed(table, "minimal_responses", bool, False)
    if cache_size < 1:
        raise ValueError("dns.cache_size must be at least 1")
    if not 0 < port < 65536:
        raise ValueError("dns.upstream_port must be between 1 and 65535")
    if isinstance(hints, str):
        hints = os.path.join(base_dir, hints)
    for key, values in (("root_hints", hints), ("forwarders", forwarders)):
        if isinstance(values, list) and not all(isinstance(v, str) for v in values):
            raise ValueError(f"dns.{key} must be a list of strings like '192.0.2.1' or 'name=192.0.2.1'")
    if not (0 < timeout < 3600):
        raise ValueError(f"dns.timeout must be a number of seconds within 0..3600, not {timeout!r}")
    if cache_bytes is not None and cache_bytes < 1:
        raise ValueError("dns.cache_bytes must be at least 1")
    resolver = None
    if recursion:
        if not hints and not forwarders:
            raise ValueError("dns.recursion = true needs dns.root_hints or dns.forwarders")
        try:
            resolver = Resolver(root_hints=hints, forwarders=forwarders, port=port, timeout=float(timeout),
                                cache=Cache(cache_size, cache_bytes))
        except (OSError, ValueError) as e:
            key = "forwarders" if forwarders else "root_hints"
            raise ValueError(f"dns.{key}: {e}") from None
    try:
        server = DnsServer(zones, resolver=resolver, recursion=recursion, minimal_responses=minimal)
    except ValueError as e:
        raise ValueError(f"dns.zones: {e}") from None
    server.listen = _typed(table, "listen", str, None)
    return server


def _load(entry, base_dir: str, index: int):
    if isinstance(entry, str):
        path, origin = entry, None
    elif isinstance(entry, dict) and isinstance(entry.get("file"), str) \
            and isinstance(entry.get("origin", ""), str):
        path, origin = entry["file"], entry.get("origin")
    else:
        raise ValueError(f"dns.zones[{index}] must be a file name or {{ file = ..., origin = ... }}")
    try:
        return load_zone(os.path.join(base_dir, path), origin)
    except ZoneError as e:
        raise ValueError(f"dns.zones[{index}]: {e}") from None
