"""DNS names: presentation text <-> labels, and names on the wire (RFC 1035 section 4.1.4
compression when writing, pointer-safe decompression when reading).

Names are ``str`` in presentation form, absolute, with the trailing dot; bytes that are not plain
printable characters are escaped (``\\.``, ``\\DDD``), so every wire name has exactly one text form.
"""
from __future__ import annotations

import struct
from functools import lru_cache

from .dns_numbers import MAX_LABEL, MAX_NAME
from .errors import MalformedPacket

_SPECIAL = frozenset(b'."();\\@$')
_LABEL_TEXT = []
for _b in range(256):
    if _b in _SPECIAL:
        _LABEL_TEXT.append("\\" + chr(_b))
    elif 0x21 <= _b <= 0x7E:
        _LABEL_TEXT.append(chr(_b))
    else:
        _LABEL_TEXT.append("\\%03d" % _b)
_PLAIN = bytes(b for b in range(256) if 0x21 <= b <= 0x7E and b not in _SPECIAL)


def label_text(label: bytes) -> str:
    if not label.translate(None, _PLAIN):
        return label.decode("ascii")
    return "".join([_LABEL_TEXT[b] for b in label])


def labels_to_name(labels) -> str:
    if not labels:
        return "."
    return ".".join([label_text(lb) for lb in labels]) + "."


@lru_cache(maxsize=4096)
def name_labels(name: str) -> tuple:
    """Presentation name -> tuple of label bytes (root label excluded). ValueError if invalid."""
    if name in (".", ""):
        return ()
    if "\\" not in name:
        if not name.endswith("."):
            raise ValueError(f"name {name!r} is not absolute")
        try:
            labels = tuple(x.encode("ascii") for x in name[:-1].split("."))
        except UnicodeEncodeError:
            raise ValueError(f"name {name!r} is not ASCII") from None
    else:
        labels = _split_escaped(name)
    total = 1
    for lb in labels:
        if not lb:
            raise ValueError(f"name {name!r} has an empty label")
        if len(lb) > MAX_LABEL:
            raise ValueError(f"name {name!r} has a label longer than 63 octets")
        total += len(lb) + 1
    if total > MAX_NAME:
        raise ValueError(f"name {name!r} is longer than 255 octets")
    return labels


def _split_escaped(name: str) -> tuple:
    labels, cur, i, n = [], bytearray(), 0, len(name)
    while i < n:
        c = name[i]
        if c == "\\":
            if name[i + 1:i + 4].isdigit() and len(name[i + 1:i + 4]) == 3:
                v = int(name[i + 1:i + 4])
                if v > 255:
                    raise ValueError(f"bad escape in name {name!r}")
                cur.append(v)
                i += 4
                continue
            if i + 1 >= n:
                raise ValueError(f"dangling backslash in name {name!r}")
            cur += name[i + 1].encode("ascii")
            i += 2
            continue
        if c == ".":
            labels.append(bytes(cur))
            cur = bytearray()
        else:
            try:
                cur += c.encode("ascii")
            except UnicodeEncodeError:
                raise ValueError(f"name {name!r} is not ASCII") from None
        i += 1
    if cur:
        raise ValueError(f"name {name!r} is not absolute")
    return tuple(labels)


def is_subdomain(name: str, parent: str) -> bool:
    """True if ``name`` is ``parent`` or below it (case-insensitive, label-wise)."""
    nl, pl = name_labels(name), name_labels(parent)
    if len(pl) > len(nl):
        return False
    return all(a.lower() == b.lower() for a, b in zip(reversed(nl), reversed(pl)))


def parent_name(name: str) -> str:
    labels = name_labels(name)
    return labels_to_name(labels[1:]) if labels else "."


def checked_name(name: str) -> str:
    """``name`` itself, once it is known to be valid (ValueError if not)."""
    name_labels(name)
    return name


# ---------------------------------------------------------------------------------------------
# Names on the wire


class Writer:
    """Accumulates a message; remembers names written for compression, TTL offsets for patching.

    Compression is case-sensitive so that every name keeps the case it was given.
    """

    __slots__ = ("buf", "_names", "ttl_offsets")

    def __init__(self):
        self.buf = bytearray()
        self._names = {}
        self.ttl_offsets = []

    def name(self, name: str, compress: bool = True) -> None:
        labels = name_labels(name)
        buf = self.buf
        for i in range(len(labels)):
            key = labels[i:]  # exact bytes: compression must never change a name's case
            if compress and key in self._names:
                buf += struct.pack("!H", 0xC000 | self._names[key])
                return
            if len(buf) < 0x4000:
                self._names.setdefault(key, len(buf))
            buf.append(len(labels[i]))
            buf += labels[i]
        buf.append(0)


MAX_POINTER_HOPS = 127


def need_bytes(buf, off: int, n: int, what: str) -> None:
    if off + n > len(buf):
        raise MalformedPacket("dns-truncated", f"{what} needs {n} bytes at offset {off}, "
                                               f"message has {len(buf)}")


def read_name(buf, off: int):
    """Return (name, offset after the name in place)."""
    labels, end, limit, total, n = [], None, off, 1, len(buf)
    hops = 0
    while True:
        if off >= n:
            raise MalformedPacket("dns-truncated", "name runs past the end of the message")
        length = buf[off]
        if length == 0:
            off += 1
            break
        kind = length & 0xC0
        if kind == 0xC0:
            if off + 1 >= n:
                raise MalformedPacket("dns-truncated", "compression pointer cut short")
            target = ((length & 0x3F) << 8) | buf[off + 1]
            if target >= limit:
                raise MalformedPacket("dns-bad-pointer",
                                      f"pointer at {off} to {target} does not point backwards")
            if end is None:
                end = off + 2
            # A 255-octet name has at most 127 labels, so it never needs more than 127 pointers;
            # more is a chain built to make decoding quadratic (RFC 9267 section 2).
            hops += 1
            if hops > MAX_POINTER_HOPS:
                raise MalformedPacket("dns-too-many-pointers", f"more than {MAX_POINTER_HOPS} pointers in one name")
            off = limit = target
            continue
        if kind:
            raise MalformedPacket("dns-bad-label-type", f"label type {kind >> 6} at offset {off}")
        total += length + 1
        if total > MAX_NAME:
            raise MalformedPacket("dns-name-too-long", "name longer than 255 octets")
        if off + 1 + length > n:
            raise MalformedPacket("dns-truncated", "label runs past the end of the message")
        labels.append(bytes(buf[off + 1:off + 1 + length]))
        off += 1 + length
    return labels_to_name(labels), (end if end is not None else off)
