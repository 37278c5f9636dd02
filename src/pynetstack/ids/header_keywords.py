"""Rule options that test header fields: dsize, ttl, tos, id, itype, icode, seq, ack, window,
icmp_id, icmp_seq, ip_proto, flags, sameip; and the number comparisons they share."""

from __future__ import annotations

import re
from typing import Callable, Optional

def parse_int(value: Optional[str], what: str, low: int = 0, high: int = 2 ** 32) -> int:
    if value is None:
        raise ValueError(f"{what} needs a value")
    try:
        number = int(value.strip(), 0)
    except ValueError:
        raise ValueError(f"{what}: {value!r} is not a number") from None
    if not low <= number <= high:
        raise ValueError(f"{what}: {number} is outside {low}..{high}")
    return number


_COMPARE = {"<=": lambda n: lambda x: x <= n, ">=": lambda n: lambda x: x >= n, "<": lambda n: lambda x: x < n,
            ">": lambda n: lambda x: x > n, "!": lambda n: lambda x: x != n, "=": lambda n: lambda x: x == n}


def compare(value: Optional[str], what: str, high: int = 2 ** 32) -> Callable[[int], bool]:
    """'N', '<N', '>N', '<=N', '>=N', 'N<>M', 'N-M', '!N' -> predicate on an integer."""
    if value is None:
        raise ValueError(f"{what} needs a value")
    text = value.replace(" ", "")
    if "<>" in text or re.fullmatch(r"\d+-\d+", text):
        lo_t, _, hi_t = text.partition("<>") if "<>" in text else text.partition("-")
        lo, hi = parse_int(lo_t, what, 0, high), parse_int(hi_t, what, 0, high)
        if lo >= hi:
            raise ValueError(f"{what}: range {value!r} is empty")
        return lambda x: lo < x < hi
    for op in ("<=", ">=", "<", ">", "!", "="):
        if text.startswith(op):
            n = parse_int(text[len(op):], what, 0, high)
            return _COMPARE[op](n)
    n = parse_int(text, what, 0, high)
    return lambda x: x == n


_FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20, "C": 0x80, "E": 0x40,
              "1": 0x80, "2": 0x40}


def _flag_mask(text: str, what: str) -> int:
    mask = 0
    for ch in text.upper():
        if ch == "0":
            continue
        if ch not in _FLAG_BITS:
            raise ValueError(f"{what}: unknown TCP flag {ch!r}")
        mask |= _FLAG_BITS[ch]
    return mask


def flags_check(value: Optional[str]) -> Callable:
    if value is None:
        raise ValueError("flags needs a value")
    spec, _, ignore = value.replace(" ", "").partition(",")
    modifier = ""
    while spec and spec[0] in "+*!":
        modifier, spec = spec[0], spec[1:]
    while spec and spec[-1] in "+*!":
        modifier, spec = spec[-1], spec[:-1]
    if not spec:
        raise ValueError("flags: no flags given")
    want = _flag_mask(spec, "flags")
    keep = 0xFF & ~_flag_mask(ignore, "flags") if ignore else 0xFF
    if modifier == "+":
        return lambda p: p.flags & want == want
    if modifier == "*":
        return lambda p: bool(p.flags & want) or want == 0
    if modifier == "!":
        return lambda p: not p.flags & want
    return lambda p: p.flags & keep == want


def _number_field(field: str, what: str, high: int, proto: int = 0):
    def build(value):
        test = compare(value, what, high)
        if proto:  # the field exists in that protocol only
            return lambda p: p.proto == proto and test(getattr(p, field))
        return lambda p: test(getattr(p, field))
    return build


def _icmp_field(field: str, what: str):
    def build(value):
        want = parse_int(value, what, 0, 65535)
        return lambda p: p.proto == 1 and getattr(p, field) == want
    return build


_PROTO_NAMES = {"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51, "sctp": 132}


def _ip_proto(value):
    text = (value or "").replace(" ", "")
    for prefix in ("!", "<", ">"):
        if text.startswith(prefix):
            body = text[1:]
            number = _PROTO_NAMES.get(body.lower(), None)
            number = number if number is not None else parse_int(body, "ip_proto", 0, 255)
            test = _COMPARE["!" if prefix == "!" else prefix](number)
            return lambda p: test(p.proto)
    number = _PROTO_NAMES.get(text.lower())
    number = number if number is not None else parse_int(text, "ip_proto", 0, 255)
    return lambda p: p.proto == number


def _tcp_only(test):
    return lambda p: p.proto == 6 and test(p)


def _sameip(value):
    return lambda p: p.src == p.dst


HEADER_KEYWORDS = {
    "dsize": _number_field("dsize", "dsize", 65535),
    "ttl": _number_field("ttl", "ttl", 255),
    "tos": _number_field("tos", "tos", 255),
    "id": _number_field("ipid", "id", 65535),
    "itype": _number_field("icmp_type", "itype", 255, 1),
    "icode": _number_field("icmp_code", "icode", 255, 1),
    "seq": _number_field("seq", "seq", 2 ** 32, 6),
    "ack": _number_field("ack", "ack", 2 ** 32, 6),
    "window": _number_field("window", "window", 65535, 6),
    "icmp_id": _icmp_field("icmp_id", "icmp_id"),
    "icmp_seq": _icmp_field("icmp_seq", "icmp_seq"),
    "ip_proto": _ip_proto,
    "flags": lambda value: _tcp_only(flags_check(value)),
    "sameip": _sameip,
}
