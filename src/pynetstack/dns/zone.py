"""Zones: the RFC 1035 master file format, and the in-memory zone the authority answers from."""
from __future__ import annotations

import os
import re

from ..wire import dns as w

MAX_INCLUDE_DEPTH = 8


class ZoneError(ValueError):
    """A zone file problem; the message names the file and line."""

    def __init__(self, filename: str, line: int, message: str):
        self.filename, self.line = filename, line
        # line 0: the file as a whole (it cannot be read), as a compiler names it without a line
        super().__init__(f"{filename}:{line}: {message}" if line else f"{filename}: {message}")


# ---------------------------------------------------------------------------------------------
# Tokens


class Token:
    __slots__ = ("text", "quoted")

    def __init__(self, text: str, quoted: bool = False):
        self.text, self.quoted = text, quoted

    def __repr__(self):
        return f"Token({self.text!r}{', quoted' if self.quoted else ''})"


def logical_lines(text: str, filename: str):
    """Yield (line number, starts with blank, tokens): parentheses joined, comments dropped."""
    tokens, depth, start_line, indented = [], 0, 0, False
    for lineno, line in enumerate(text.splitlines(), 1):
        if depth == 0:
            tokens, start_line, indented = [], lineno, line[:1] in (" ", "\t")
        depth = _tokenize_line(line, tokens, depth, filename, lineno)
        if depth == 0 and tokens:
            yield start_line, indented, tokens
    if depth:
        raise ZoneError(filename, start_line, "unbalanced '(' : missing ')'")


def _tokenize_line(line: str, tokens: list, depth: int, filename: str, lineno: int) -> int:
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c in " \t\r":
            i += 1
        elif c == ";":
            break
        elif c == "(":
            depth += 1
            i += 1
        elif c == ")":
            if depth == 0:
                raise ZoneError(filename, lineno, "')' without '('")
            depth -= 1
            i += 1
        elif c == '"':
            j, buf = i + 1, []
            while j < n and line[j] != '"':
                if line[j] == "\\" and j + 1 < n:
                    buf.append(line[j:j + 2])
                    j += 2
                else:
                    buf.append(line[j])
                    j += 1
            if j >= n:
                raise ZoneError(filename, lineno, "unterminated quoted string")
            tokens.append(Token("".join(buf), quoted=True))
            i = j + 1
        else:
            j = i
            while j < n and line[j] not in ' \t\r;()"':
                j += 2 if line[j] == "\\" else 1
            tokens.append(Token(line[i:j]))
            i = j
    return depth


def unescape(text: str) -> bytes:
    """Character-string escapes: ``\\X`` is X, ``\\DDD`` is the byte with that decimal value."""
    out, i, n = bytearray(), 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            digits = text[i + 1:i + 4]
            if len(digits) == 3 and digits.isdigit():
                if int(digits) > 255:
                    raise ValueError(f"escape \\{digits} is not a byte")
                out.append(int(digits))
                i += 4
            else:
                out += text[i + 1].encode("utf-8")
                i += 2
        else:
            out += c.encode("utf-8")
            i += 1
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Values

_TTL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TTL_RE = re.compile(r"^(\d+[smhdwSMHDW])+$")


def parse_ttl(text: str) -> int:
    """``3600`` or BIND style ``1h30m``."""
    if text.isdigit():
        value = int(text)
    elif _TTL_RE.match(text):
        value = sum(int(n) * _TTL_UNITS[u.lower()] for n, u in re.findall(r"(\d+)([a-zA-Z])", text))
    else:
        raise ValueError(f"bad TTL {text!r}")
    if value > 0x7FFFFFFF:
        raise ValueError(f"TTL {text} is larger than 2^31-1")
    return value


def is_ttl(text: str) -> bool:
    return text.isdigit() or bool(_TTL_RE.match(text))


def absolute_name(text: str, origin: str) -> str:
    if text == "@":
        return origin
    if text.endswith(".") and not text.endswith("\\."):
        name = text
    else:
        name = text + "." + (origin if origin != "." else "")
    w.name_labels(name)  # validates
    return name


def _is_class(text: str) -> bool:
    up = text.upper()
    return up in w.CLASS_CODES or (up.startswith("CLASS") and up[5:].isdigit())


def _is_type(text: str) -> bool:
    try:
        w.type_code(text)
        return True
    except ValueError:
        return False


def parse_rdata(rtype: int, tokens: list, origin: str) -> w.Rdata:
    texts = [t.text for t in tokens]
    if texts and texts[0] == "\\#" and not tokens[0].quoted:
        return _generic_rdata(rtype, texts[1:])
    name = lambda s: absolute_name(s, origin)  # noqa: E731
    if rtype == w.TXT:
        if not tokens:
            raise ValueError("TXT needs at least one string")
        return w.TXTRdata([unescape(t.text) for t in tokens])
    want = {w.A: 1, w.AAAA: 1, w.NS: 1, w.CNAME: 1, w.PTR: 1, w.MX: 2, w.SOA: 7, w.SRV: 4}
    if rtype not in want:
        raise ValueError(f"type {w.type_name(rtype)} needs the generic form '\\# length hex'")
    if len(texts) != want[rtype]:
        raise ValueError(f"{w.type_name(rtype)} takes {want[rtype]} fields, got {len(texts)}")
    try:
        if rtype == w.A:
            return w.ARdata(texts[0])
        if rtype == w.AAAA:
            return w.AAAARdata(texts[0])
    except OSError:
        raise ValueError(f"bad address {texts[0]!r}") from None
    if rtype in (w.NS, w.CNAME, w.PTR):
        return w.RDATA_CLASSES[rtype](name(texts[0]))
    if rtype == w.MX:
        return w.MXRdata(_int(texts[0]), name(texts[1]))
    if rtype == w.SRV:
        return w.SRVRdata(_int(texts[0]), _int(texts[1]), _int(texts[2]), name(texts[3]))
    return w.SOARdata(name(texts[0]), name(texts[1]), _int(texts[2]),
                      *(parse_ttl(t) for t in texts[3:]))


def _int(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a number")
    return int(text)


def _generic_rdata(rtype: int, texts: list) -> w.Rdata:
    if not texts:
        raise ValueError("'\\#' needs a length")
    length = _int(texts[0])
    try:
        data = bytes.fromhex("".join(texts[1:]))
    except ValueError:
        raise ValueError("bad hex in '\\#' data") from None
    if len(data) != length:
        raise ValueError(f"'\\#' says {length} bytes but has {len(data)}")
    if rtype in w.RDATA_CLASSES:
        from ..wire.errors import MalformedPacket
        try:
            return w.read_rdata(rtype, data, 0, len(data))
        except MalformedPacket as e:
            raise ValueError(f"bad {w.type_name(rtype)} data: {e}") from None
    return w.UnknownRdata(rtype, data)


# ---------------------------------------------------------------------------------------------
# Master file reader


class _Reader:
    def __init__(self, origin: str, default_ttl: int | None):
        self.records = []
        self.lines = []          # (file, line) of each record, for error messages
        self.origin = origin
        self.ttl = default_ttl
        self.last_owner = None
        self.last_ttl = None

    def read_file(self, path: str, depth: int = 0, origin: str | None = None) -> None:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise ZoneError(path, 0, f"cannot read: {getattr(e, 'strerror', None) or e}") from None
        self.read_text(text, path, depth, origin)

    def read_text(self, text: str, filename: str, depth: int = 0, origin: str | None = None) -> None:
        saved_origin = self.origin
        if origin is not None:
            self.origin = origin
        for lineno, indented, tokens in logical_lines(text, filename):
            self.where = (filename, lineno)
            try:
                self._entry(tokens, indented, filename, depth)
            except ZoneError:
                raise
            except ValueError as e:
                raise ZoneError(filename, lineno, str(e)) from None
        self.origin = saved_origin  # RFC 1035: $INCLUDE does not change the includer's origin

    def _entry(self, tokens, indented, filename, depth):
        first = tokens[0].text
        if not indented and first.startswith("$"):
            return self._directive(first.upper(), [t.text for t in tokens[1:]], filename, depth)
        if indented:
            if self.last_owner is None:
                raise ValueError("record without an owner name and no previous owner")
            owner = self.last_owner
        else:
            owner = absolute_name(first, self.origin)
            tokens = tokens[1:]
        ttl, rclass = None, None
        while tokens and not tokens[0].quoted:
            t = tokens[0].text
            if ttl is None and is_ttl(t):
                ttl = parse_ttl(t)
            elif rclass is None and _is_class(t) and not _is_type(t):
                rclass = w.class_code(t)
            else:
                break
            tokens = tokens[1:]
        if not tokens:
            raise ValueError("missing record type")
        rtype = w.type_code(tokens[0].text)
        if rtype in (w.OPT, w.ANY) or rtype in (251, 252):
            raise ValueError(f"{tokens[0].text} is not a record type for zone data")
        if rclass not in (None, w.IN):
            raise ValueError("only class IN is served")
        data = parse_rdata(rtype, tokens[1:], self.origin)
        if ttl is None:
            ttl = self.ttl if self.ttl is not None else self.last_ttl
            if ttl is None and rtype == w.SOA:
                ttl = data.minimum
            if ttl is None:
                raise ValueError("no TTL given and no $TTL before this record")
        self.last_owner, self.last_ttl = owner, ttl
        self.records.append(w.Record(owner, rtype, w.IN, ttl, data))
        self.lines.append(self.where)

    def _directive(self, word, args, filename, depth):
        if word == "$ORIGIN":
            if len(args) != 1:
                raise ValueError("$ORIGIN takes one name")
            self.origin = absolute_name(args[0], self.origin)
        elif word == "$TTL":
            if len(args) != 1:
                raise ValueError("$TTL takes one value")
            self.ttl = parse_ttl(args[0])
        elif word == "$INCLUDE":
            if not 1 <= len(args) <= 2:
                raise ValueError("$INCLUDE takes a file name and an optional origin")
            if depth >= MAX_INCLUDE_DEPTH:
                raise ValueError("$INCLUDE nested too deeply")
            path = os.path.join(os.path.dirname(filename), unescape(args[0]).decode())
            origin = absolute_name(args[1], self.origin) if len(args) == 2 else None
            if not os.path.isfile(path):
                raise ValueError(f"$INCLUDE file {path} cannot be read")
            self.read_file(path, depth + 1, origin)
        else:
            raise ValueError(f"unsupported directive {word}")


def parse_zone_text(text: str, origin: str = ".", filename: str = "<zone>",
                    default_ttl: int | None = None) -> list:
    """Master file text -> list of Records (owner names absolute)."""
    reader = _Reader(origin, default_ttl)
    reader.read_text(text, filename)
    return reader.records


def load_zone(path: str, origin: str | None = None) -> Zone:
    """Read a zone file. Without ``origin``, the owner of the first SOA record is the origin."""
    reader = _Reader(origin or ".", None)
    reader.read_file(path)
    return Zone.from_records(reader.records, origin, path, reader.lines)


# ---------------------------------------------------------------------------------------------
# In-memory zone


class Zone:
    """One zone's data, indexed for the authoritative lookup of RFC 1034 section 4.3.2."""

    def __init__(self, origin: str):
        self.origin = origin
        self.key = origin.lower()
        self.nodes = {}          # lower-case owner -> {rtype: [Record, ...]}
        self.existing = set()    # every owner and every name between it and the origin
        self.cuts = set()        # delegation points: owners of NS records below the apex

    @classmethod
    def from_records(cls, records, origin: str | None = None, filename: str = "<zone>",
                     lines=None) -> Zone:
        if origin is None:
            soas = [r for r in records if r.rtype == w.SOA]
            if not soas:
                raise ZoneError(filename, 0, "no SOA record, so no zone origin")
            origin = soas[0].name
        zone = cls(origin)
        for i, rr in enumerate(records):
            where = lines[i] if lines else (filename, 0)
            if not w.is_subdomain(rr.name, origin):
                raise ZoneError(*where, f"{rr.name} is outside the zone {origin}")
            zone.add(rr)
            node = zone.nodes[rr.name.lower()]
            if w.CNAME in node and (len(node) > 1 or len(node[w.CNAME]) > 1):
                raise ZoneError(*where, f"{rr.name} has a CNAME and other data")
            if rr.rtype == w.SOA and rr.name.lower() != zone.key:
                raise ZoneError(*where, f"SOA for {rr.name} is not at the zone apex {origin}")
        zone.check(filename)
        return zone

    def add(self, rr: w.Record) -> None:
        key = rr.name.lower()
        rrsets = self.nodes.setdefault(key, {})
        rrset = rrsets.setdefault(rr.rtype, [])
        if any(x.data == rr.data for x in rrset):
            return
        if rrset and rrset[0].ttl != rr.ttl:  # RFC 2181 5.2: one TTL per RRset; keep the lowest
            ttl = min(rrset[0].ttl, rr.ttl)
            rrset[:] = [x.with_ttl(ttl) for x in rrset]
            rr = rr.with_ttl(ttl)
        rrset.append(rr)
        name = key
        while name != self.key and name not in self.existing:
            self.existing.add(name)
            name = w.parent_name(name)
        self.existing.add(self.key)
        if rr.rtype == w.NS and key != self.key:
            self.cuts.add(key)

    def check(self, filename: str = "<zone>") -> None:
        apex = self.nodes.get(self.key, {})
        if len(apex.get(w.SOA, [])) != 1:
            raise ZoneError(filename, 0, f"zone {self.origin} needs exactly one SOA at its apex")
        if not apex.get(w.NS):
            raise ZoneError(filename, 0, f"zone {self.origin} has no NS records at its apex")

    @property
    def soa(self) -> w.Record:
        return self.nodes[self.key][w.SOA][0]

    def rrset(self, name_key: str, rtype: int):
        return self.nodes.get(name_key, {}).get(rtype)

    def records(self):
        for rrsets in self.nodes.values():
            for rrset in rrsets.values():
                yield from rrset
