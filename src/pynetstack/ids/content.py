"""Payload matching: content (with its modifiers), pcre, byte_test and isdataat, evaluated in
rule order with the previous match's end as the anchor for relative keywords.

A relative keyword that fails makes the previous content try its next occurrence (as Suricata
re-inspects), bounded by MAX_STEPS so that a hostile payload cannot make one rule expensive."""

from __future__ import annotations

import re
import warnings
from typing import List, Optional

MAX_STEPS = 256  # occurrences tried per rule and buffer


class Content:
    __slots__ = ("pattern", "lower", "nocase", "negated", "offset", "depth", "distance", "within",
                 "relative", "fast_pattern", "startswith", "endswith", "fast_only", "buffer")

    def __init__(self, pattern: bytes, negated: bool = False, buffer: str = "payload"):
        self.pattern = pattern
        self.lower = pattern.lower()
        self.nocase = False
        self.negated = negated
        self.offset = 0
        self.depth: Optional[int] = None
        self.distance: Optional[int] = None
        self.within: Optional[int] = None
        self.relative = False  # distance or within given: anchored at the previous match
        self.fast_pattern = False
        self.startswith = False
        self.endswith = False
        self.fast_only = False
        self.buffer = buffer

    def window(self, prev_end: int, size: int):
        """(first start, last end) allowed for this content, given the previous match's end."""
        if self.relative:
            start = prev_end + (self.distance or 0)
            end = size if self.within is None else start + self.within
            if start < 0:
                start = 0
        else:
            start = self.offset
            end = size if self.depth is None else self.offset + self.depth
        if self.startswith:
            end = start + len(self.pattern)
        return start, min(end, size)

    def occurrences(self, buf: bytes, lbuf: bytes, prev_end: int):
        """The end offsets of the matches in the window, first to last."""
        start, end = self.window(prev_end, len(buf))
        pat = self.lower if self.nocase else self.pattern
        hay = lbuf if self.nocase else buf
        n = len(pat)
        if self.endswith:
            if end == len(buf) and end - n >= start and hay.startswith(pat, end - n):
                yield end
            return
        find = hay.find
        i = find(pat, start, end)
        while i >= 0:
            yield i + n
            i = find(pat, i + 1, end)


class Pcre:
    __slots__ = ("regex", "negated", "relative", "buffer", "text")

    def __init__(self, regex, negated: bool, relative: bool, buffer: str, text: str):
        self.regex = regex
        self.negated = negated
        self.relative = relative
        self.buffer = buffer
        self.text = text


class ByteTest:
    __slots__ = ("nbytes", "op", "negated", "value", "offset", "relative", "little", "base", "bitmask", "buffer")

    def __init__(self, nbytes, op, negated, value, offset, relative, little, base, bitmask, buffer):
        self.nbytes = nbytes
        self.op = op
        self.negated = negated
        self.value = value
        self.offset = offset
        self.relative = relative
        self.little = little
        self.base = base  # None for binary, else 8/10/16 for a string of digits
        self.bitmask = bitmask
        self.buffer = buffer

    def test(self, buf: bytes, prev_end: int) -> bool:
        at = self.offset + (prev_end if self.relative else 0)
        if at < 0 or at + self.nbytes > len(buf):
            return False
        raw = buf[at:at + self.nbytes] if self.nbytes else buf[at:]
        if self.base is None:
            got = int.from_bytes(raw, "little" if self.little else "big")
        else:
            try:
                got = int(raw.decode("ascii").strip(), self.base)
            except ValueError:
                return False
        if self.bitmask:
            got &= self.bitmask
            shift = (self.bitmask & -self.bitmask).bit_length() - 1
            got >>= shift
        op, value = self.op, self.value
        if op == "=":
            ok = got == value
        elif op == "<":
            ok = got < value
        elif op == ">":
            ok = got > value
        elif op == "<=":
            ok = got <= value
        elif op == ">=":
            ok = got >= value
        elif op == "&":
            ok = bool(got & value)
        elif op == "^":
            ok = bool(got ^ value)
        else:  # "!": not equal
            ok = got != value
        return ok != self.negated


class IsDataAt:
    __slots__ = ("at", "negated", "relative", "buffer")

    def __init__(self, at: int, negated: bool, relative: bool, buffer: str):
        self.at = at
        self.negated = negated
        self.relative = relative
        self.buffer = buffer

    def test(self, buf: bytes, prev_end: int) -> bool:
        pos = self.at + (prev_end if self.relative else 0)
        return (pos < len(buf)) != self.negated


class BufferSize:
    """bsize: the size of a sticky buffer."""

    __slots__ = ("check", "relative", "buffer")

    def __init__(self, check, buffer: str):
        self.check = check
        self.relative = False
        self.buffer = buffer

    def test(self, buf: bytes, prev_end: int) -> bool:
        return self.check(len(buf))


class ByteJump:
    """byte_jump: read a number and move the inspection point by it."""

    __slots__ = ("nbytes", "offset", "relative", "little", "base", "multiplier", "align", "from_beginning",
                 "from_end", "post_offset", "bitmask", "buffer")

    def __init__(self, nbytes, offset, relative, little, base, multiplier, align, from_beginning, from_end,
                 post_offset, bitmask, buffer):
        self.nbytes = nbytes
        self.offset = offset
        self.relative = relative
        self.little = little
        self.base = base
        self.multiplier = multiplier
        self.align = align
        self.from_beginning = from_beginning
        self.from_end = from_end
        self.post_offset = post_offset
        self.bitmask = bitmask
        self.buffer = buffer

    def jump(self, buf: bytes, prev_end: int) -> int:
        """The new inspection point, or -1 when the jump leaves the buffer."""
        at = self.offset + (prev_end if self.relative else 0)
        if at < 0 or at + self.nbytes > len(buf):
            return -1
        raw = buf[at:at + self.nbytes]
        if self.base is None:
            value = int.from_bytes(raw, "little" if self.little else "big")
        else:
            try:
                value = int(raw.decode("ascii").strip(), self.base)
            except ValueError:
                return -1
        if self.bitmask:
            value = (value & self.bitmask) >> ((self.bitmask & -self.bitmask).bit_length() - 1)
        value *= self.multiplier
        if self.align:
            value = (value + 3) & ~3
        if self.from_beginning:
            pos = value
        elif self.from_end:
            pos = len(buf) + value
        else:
            pos = at + self.nbytes + value
        pos += self.post_offset
        return pos if 0 <= pos <= len(buf) else -1


def match_items(items: List, buf: bytes, lbuf: bytes) -> bool:
    """True when every item matches ``buf`` (``lbuf`` is its lower-case copy)."""
    budget = [MAX_STEPS]
    return _match(items, 0, buf, lbuf, 0, budget)


def _match(items, k: int, buf: bytes, lbuf: bytes, prev_end: int, budget) -> bool:
    if k == len(items):
        return True
    item = items[k]
    kind = type(item)
    if kind is Content:
        if item.negated:
            for _ in item.occurrences(buf, lbuf, prev_end):
                return False
            return _match(items, k + 1, buf, lbuf, prev_end, budget)
        # only a relative keyword after this one can make another occurrence succeed
        retry = k + 1 < len(items) and getattr(items[k + 1], "relative", False)
        for end in item.occurrences(buf, lbuf, prev_end):
            if _match(items, k + 1, buf, lbuf, end, budget):
                return True
            budget[0] -= 1
            if not retry or budget[0] <= 0:
                return False
        return False
    if kind is Pcre:
        start = prev_end if item.relative else 0
        # a relative pcre sees the buffer from the previous match on, as its subject: '^'
        # anchors there (Python's search(buf, pos) would not anchor '^' at pos)
        found = item.regex.search(buf[start:] if start else buf)
        if item.negated:
            return found is None and _match(items, k + 1, buf, lbuf, prev_end, budget)
        if found is None:
            return False
        return _match(items, k + 1, buf, lbuf, start + found.end(), budget)
    if kind is ByteJump:
        pos = item.jump(buf, prev_end)
        return pos >= 0 and _match(items, k + 1, buf, lbuf, pos, budget)
    if not item.test(buf, prev_end):
        return False
    return _match(items, k + 1, buf, lbuf, prev_end, budget)


_PCRE_FLAGS = {"i": re.IGNORECASE, "s": re.DOTALL, "m": re.MULTILINE, "x": re.VERBOSE}
# modifiers that name an HTTP or other app-layer buffer: not supported by this engine
_PCRE_BUFFERS = set("UIPQHDMCSYVWZKL")
_PCRE_HTTP = {"U": "http.uri", "I": "http.uri.raw", "P": "http.request_body", "Q": "file.data", "H": "http.header",
              "D": "http.header.raw", "M": "http.method", "C": "http.cookie", "S": "http.stat_code",
              "Y": "http.stat_msg", "V": "http.user_agent", "W": "http.host", "Z": "http.host.raw"}


def compile_pcre(text: str, buffer: str):
    """'[!]"/regex/flags"' -> Pcre; raises ValueError (bad regex) or KeyError(flag) (unsupported)."""
    negated = text.startswith("!")
    if negated:
        text = text[1:]
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1]
    if not text.startswith("/") or text.rfind("/") == 0:
        raise ValueError(f"pcre {text!r} is not /regex/flags")
    cut = text.rfind("/")
    body, flags = text[1:cut], text[cut + 1:]
    value = 0
    relative = False
    for flag in flags:
        if flag in _PCRE_FLAGS:
            value |= _PCRE_FLAGS[flag]
        elif flag == "R":
            relative = True
        elif flag in "BOGAE":  # rawbytes, match-limit overrides, anchoring handled below
            if flag == "A":
                body = "^(?:" + body + ")" if not body.startswith("^") else body
        elif flag in _PCRE_HTTP:
            buffer = _PCRE_HTTP[flag]
        elif flag in _PCRE_BUFFERS:
            raise KeyError(f"pcre/{flag}")
        else:
            raise ValueError(f"unknown pcre modifier {flag!r}")
    try:
        with warnings.catch_warnings():  # "possible nested set" and the like: PCRE reads them fine
            warnings.simplefilter("ignore")
            regex = re.compile(body.encode("latin-1"), value)
    except (re.error, UnicodeEncodeError, OverflowError):
        # valid PCRE that Python's re does not speak (\x{..}, possessive or recursive forms):
        # unsupported here, counted as such, not a malformed rule
        raise KeyError("pcre-syntax") from None
    return Pcre(regex, negated, relative, buffer, text)
