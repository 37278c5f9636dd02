"""Statements and verdicts of a rule: counter, log, meta mark set, limit, NAT, and the verdicts
(accept, drop, reject, jump, goto, return, continue).  Each prints itself as nft lists it."""

from __future__ import annotations

from typing import Optional

from .. import types
from .datatypes import format_ipv4
from .errors import Location

NAT_FLAG_ORDER = ("random", "fully-random", "persistent")


class Counter:
    __slots__ = ("packets", "bytes", "loc")

    def __init__(self, packets: int = 0, nbytes: int = 0, loc: Optional[Location] = None):
        self.packets = packets
        self.bytes = nbytes
        self.loc = loc

    def format(self) -> str:
        return f"counter packets {self.packets} bytes {self.bytes}"


class Log:
    __slots__ = ("prefix", "loc", "level")

    def __init__(self, prefix: Optional[str], loc: Optional[Location] = None, level: str = "warn"):
        self.prefix = prefix
        self.loc = loc
        self.level = level  # syslog level; nft lists it unless it is the default, warn

    def format(self) -> str:
        text = "log" if self.prefix is None else f'log prefix "{self.prefix}"'
        return text if self.level == "warn" else f"{text} level {self.level}"


class MarkSet:
    __slots__ = ("value", "loc")

    def __init__(self, value: int, loc: Optional[Location] = None):
        self.value = value
        self.loc = loc

    def format(self) -> str:
        return f"meta mark set 0x{self.value:08x}"


class TraceSet:
    """``meta nftrace set 1``: from here on the packet is traced for ``nft monitor trace``."""

    __slots__ = ("on", "loc")

    def __init__(self, on: bool, loc: Optional[Location] = None):
        self.on = on
        self.loc = loc

    def format(self) -> str:
        return f"meta nftrace set {int(self.on)}"


class Limit:
    """A packet token bucket like the kernel's nft_limit: ``burst`` packets deep (5 when not
    given), refilled at ``rate`` per ``unit`` seconds.  Time comes from ``pkt.now`` (seconds)."""

    __slots__ = ("rate", "unit_name", "unit", "over", "burst", "tokens", "last", "loc")

    def __init__(self, rate: int, unit_name: str, unit: int, over: bool, burst: int,
                 loc: Optional[Location] = None):
        self.rate = rate
        self.unit_name = unit_name
        self.unit = unit
        self.over = over
        self.burst = burst
        self.tokens = float(burst or 5)
        self.last: Optional[float] = None
        self.loc = loc

    def format(self) -> str:
        text = f"limit rate {'over ' if self.over else ''}{self.rate}/{self.unit_name}"
        if self.burst and self.burst != 5:
            text += f" burst {self.burst} packets"
        return text

    def fresh(self) -> "Limit":
        """A new bucket with these parameters (a set element's own)."""
        return Limit(self.rate, self.unit_name, self.unit, self.over, self.burst, self.loc)

    def admit(self, now: float) -> bool:
        """True when the packet is within the rate (one token taken)."""
        cap = float(self.burst or 5)
        if self.last is not None and now > self.last:
            self.tokens = min(cap, self.tokens + (now - self.last) * self.rate / self.unit)
        if self.last is None or now > self.last:
            self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Nat:
    """snat / dnat / masquerade / redirect with its NatSpec; ``ip_kw`` for the ``snat ip to`` form."""

    __slots__ = ("spec", "ip_kw", "loc")

    def __init__(self, spec: types.NatSpec, ip_kw: bool = False, loc: Optional[Location] = None):
        self.spec = spec
        self.ip_kw = ip_kw
        self.loc = loc

    def format(self) -> str:
        s = self.spec
        text = s.kind
        target = ""
        if s.addr_min is not None:
            target = format_ipv4(s.addr_min)
            if s.addr_max != s.addr_min:
                target += "-" + format_ipv4(s.addr_max)
        if s.port_min is not None:
            target += f":{s.port_min}" + (f"-{s.port_max}" if s.port_max != s.port_min else "")
        if target:
            text += (" ip" if self.ip_kw else "") + " to " + target
        flags = [f for f in NAT_FLAG_ORDER if f in s.flags]
        if flags:
            text += " " + ",".join(flags)
        return text


class Verdict:
    """accept, drop, continue, return, jump CHAIN, goto CHAIN."""

    __slots__ = ("kind", "target", "loc")

    def __init__(self, kind: str, target: Optional[str] = None, loc: Optional[Location] = None):
        self.kind = kind
        self.target = target
        self.loc = loc

    def format(self) -> str:
        return self.kind if self.target is None else f"{self.kind} {self.target}"


class Reject:
    """``reject`` [with icmp|icmpx [type] CODE | with tcp reset].  ``how`` is None, "icmp", "icmpx"
    or "tcp reset"; ``code`` the icmp code, or the icmpx code for "icmpx"."""

    __slots__ = ("how", "code", "code_name", "loc", "default_how")

    def __init__(self, how: Optional[str] = None, code: int = 3, code_name: str = "",
                 loc: Optional[Location] = None, default_how: str = "icmp"):
        self.how = how or default_how
        self.code = code
        self.code_name = code_name or "port-unreachable"
        self.loc = loc
        self.default_how = default_how

    def format(self) -> str:
        if self.how == self.default_how and self.code_name == "port-unreachable":
            return "reject"
        if self.how == "tcp reset":
            return "reject with tcp reset"
        return f"reject with {self.how} {self.code_name}"

    def decision(self) -> tuple:
        from .symbols import ICMPX_TO_ICMP
        if self.how == "tcp reset":
            return ("tcp-reset",)
        if self.how == "icmpx":
            return ("icmp", 3, ICMPX_TO_ICMP[self.code])
        return ("icmp", 3, self.code)


class VerdictMap:
    """``FIELD vmap { KEY : VERDICT, ... }``: the verdict of the element the packet's field hits;
    when none does, the rule goes on as a failed match would."""

    __slots__ = ("match_field", "entries", "loc")

    def __init__(self, match_field, entries, loc: Optional[Location] = None):
        self.match_field = match_field  # an expressions.Field
        self.entries = entries  # [(key, Verdict)]: key (lo, hi) or an interface name
        self.loc = loc

    def format(self) -> str:
        dtype = self.match_field.dtype
        parts = []
        for key, verdict in sorted(self.entries, key=lambda e: e[0]):
            text = f'"{key}"' if isinstance(key, str) else dtype.format_interval(key[0], key[1])
            parts.append(f"{text} : {verdict.format()}")
        return f"{self.match_field.name} vmap {{ {', '.join(parts)} }}"
