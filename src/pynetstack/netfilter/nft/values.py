"""Reading values, ranges, prefixes and flag lists of a datatype (rules and set declarations)."""

from __future__ import annotations

from typing import List

from . import datatypes as T
from .cursor import Cursor
from .errors import NftError


def int_value(cur: Cursor, dtype) -> int:
    tok = cur.peek()
    if tok.kind != "word":
        raise cur.unexpected()
    cur.next()
    return dtype.parse(tok.value, tok.loc)

def plain_int(cur: Cursor) -> int:
    tok = cur.peek()
    value = T.parse_int(tok.value) if tok.kind == "word" else None
    if value is None:
        raise cur.unexpected("number")
    cur.next()
    return value

def parse_flag_list(cur: Cursor, dtype, sep: str = ",") -> int:
    """``syn,ack`` or ``syn|ack`` (nft takes either between flags)."""
    value = int_value(cur, dtype)
    while cur.accept(sep) or cur.accept("|"):
        value |= int_value(cur, dtype)
    return value

def parse_element(cur: Cursor, dtype):
    """One value, range or prefix of ``dtype`` (shared with named set declarations)."""
    return _parse_element(cur, dtype)

def _parse_element(cur: Cursor, dtype):
    tok = cur.peek()
    if dtype is T.IFNAME or dtype is T.IFINDEX:
        if tok.kind not in ("string", "word"):
            raise cur.unexpected("string")
        cur.next()
        if len(tok.value) >= 16:
            raise NftError("Interface name too long", tok.loc)
        return tok.value
    lo = int_value(cur, dtype)
    if dtype is T.IPV4 and cur.accept("/"):
        plen_tok = cur.peek()
        plen = T.parse_int(plen_tok.value) if plen_tok.kind == "word" else None
        if plen is None:
            raise cur.unexpected("number")
        cur.next()
        if plen > 32:
            raise NftError(f"Prefix length {plen} is invalid for type of 32 bits width", tok.loc.span(plen_tok.loc))
        host = (1 << (32 - plen)) - 1
        return (lo & ~host, (lo & ~host) | host)
    if cur.accept("-"):
        hi_tok = cur.peek()
        hi = int_value(cur, dtype)
        if hi < lo:
            raise NftError("Range has zero or negative size", tok.loc.span(hi_tok.loc))
        return (lo, hi)
    return (lo, lo)

def merge_elements(values: List, dtype) -> List:
    """nft merges the elements of an interval set that touch or overlap ({ 1-2, 3 } is { 1-3 })."""
    if dtype is T.IFNAME or dtype is T.IFINDEX or all(lo == hi for lo, hi in values):
        return list(dict.fromkeys(values))  # the kernel keeps one of each element
    out: List = []
    for lo, hi in sorted(values):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return out

def one_element_set(cur: Cursor) -> bool:
    """Whether the ``{`` at the cursor opens a set written with exactly one element."""
    depth, commas, i = 0, 0, 0
    while True:
        tok = cur.peek(i)
        if tok.kind == "eof":
            return False
        if tok.kind == "{":
            depth += 1
        elif tok.kind == "}":
            depth -= 1
            if depth == 0:
                nonsep = [cur.peek(j) for j in range(1, i) if cur.peek(j).kind not in ("nl", ";")]
                return commas == 0 or (commas == 1 and nonsep and nonsep[-1].kind == ",")
        elif tok.kind == "," and depth == 1:
            commas += 1
        i += 1
