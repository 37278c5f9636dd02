"""What every configuration section checks the same way: that it is a table and names no key it
does not know (a misspelt key is an error, never silently ignored)."""

from __future__ import annotations


def check_keys(table, allowed, where: str, error=ValueError) -> None:
    """Raise ``error`` unless ``table`` is a table whose keys are all in ``allowed``; the message
    names the first unknown key and the allowed ones."""
    if not isinstance(table, dict):
        raise error(f"{where} must be a table")
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise error(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
