"""The nftables language: load the very file ``nft -f`` loads, list it like ``nft list ruleset``,
and evaluate packets against it.

    rs = load("/etc/nftables.conf")        # or loads(text, filename="<string>")
    print(rs.list_ruleset())
    decision = rs.evaluate("postrouting", pkt)

Every bad input raises one :class:`NftError` (a ValueError) printed as nft prints its errors.
"""

from __future__ import annotations

from .errors import NftError
from .evaluate import Decision
from .parser import Loader
from .ruleset import Chain, Rule, Ruleset, Table

__all__ = ["NftError", "Decision", "Ruleset", "Table", "Chain", "Rule", "load", "loads", "check"]


def loads(text: str, filename: str = "<string>") -> Ruleset:
    """Parse nft source text (``include`` paths are relative to ``filename``'s directory)."""
    loader = Loader(Ruleset())
    try:
        loader.load_text(text, filename)
        return loader.finish()
    except RecursionError:
        raise NftError("input nested too deeply") from None


def load(path: str) -> Ruleset:
    """Load a file as ``nft -f PATH`` would."""
    loader = Loader(Ruleset())
    try:
        loader.include(path, None, path)
        return loader.finish()
    except RecursionError:
        raise NftError("input nested too deeply") from None


def check(path: str) -> None:
    """``nft -c -f PATH``: raise NftError if the file would not load, else return None."""
    load(path)
