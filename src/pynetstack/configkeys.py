"""The one check every section of the TOML config starts with: a table, and only known keys.

Each section raises its own error class (ConfigError, LbError, ...), so the message reads the
same everywhere: ``[lb] service #1: unknown key 'colour' (allowed: address, port, ...)``.
"""

from __future__ import annotations

from typing import Any, Iterable, Type


def check_table(table: Any, allowed: Iterable[str], where: str, error: Type[Exception] = ValueError) -> None:
    if not isinstance(table, dict):
        raise error(f"{where} must be a table")
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise error(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
