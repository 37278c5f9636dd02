"""The nftables language: load the very file ``nft -f`` loads, list it like ``nft list ruleset``,
and evaluate packets against it.

    rs = load("/etc/nftables.conf")        # or loads(text, filename="<string>")
    print(rs.list_ruleset())
    decision = rs.evaluate("postrouting", pkt)

Every bad input raises one :class:`NftError` (a ValueError) printed as nft prints its errors.

Supported (families ip and inet, IPv4): tables, base and regular chains (filter, nat), policies,
one-line commands (add/create/insert/flush, delete rule ... handle N), define/$VAR, include (globs too), comments; matches
ip saddr/daddr/protocol/length/ttl/dscp, tcp/udp/th sport/dport, tcp flags, icmp type/code,
meta l4proto/mark/pkttype/nfproto, iifname/oifname (with "*"), ct state/direction/status, with
==, !=, <, >, <=, >=, ranges, prefixes, anonymous and named sets (@name) and verdict maps;
statements counter, quota [over] N bytes|kbytes|mbytes [used N UNIT], log [prefix], meta mark set, ip dscp set, limit rate [over] N/unit [burst N
packets], ct count [over] N, add/update @set { KEY [timeout T] [limit|ct count|counter] }, meter,
snat/dnat [ip] to, masquerade, redirect, reject [with icmp|icmpx|tcp reset], the verdicts, rule
comments; concatenations (ip saddr . tcp dport { a . b }, sets of type ipv4_addr . inet_service);
set size, timeout, gc-interval and flags dynamic/timeout (see dynamic.py, concat.py).  Anything else nft accepts raises "unsupported in pynetstack: ..." at its location.
The listing follows nft 1.0.6 (implied dependencies dropped, payload merging order, set merging).
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
