"""DNS messages (RFC 1035) <-> bytes, with EDNS(0) (RFC 6891) and opaque unknown types (RFC 3597).

Names are ``str`` in presentation form, absolute, with the trailing dot (``"www.Example.com."``,
root is ``"."``). Bytes that are not plain printable characters are escaped (``\\.``, ``\\DDD``), so
every wire name has exactly one text form and case is preserved. Compare names with ``.lower()``.

Parsing raises only :class:`MalformedPacket`. Decompression accepts only pointers that point
strictly before the previous jump target, so loops and forward references cannot occur.
"""
from __future__ import annotations

import socket
import struct
from functools import lru_cache

from .errors import MalformedPacket

# ---------------------------------------------------------------------------------------------
# Numbers

A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, OPT, ANY = 1, 2, 5, 6, 12, 15, 16, 28, 33, 41, 255
IN = 1
TYPE_NAMES = {A: "A", NS: "NS", CNAME: "CNAME", SOA: "SOA", PTR: "PTR", MX: "MX", TXT: "TXT",
              AAAA: "AAAA", SRV: "SRV", OPT: "OPT", ANY: "ANY", 252: "AXFR", 251: "IXFR"}
TYPE_CODES = {v: k for k, v in TYPE_NAMES.items()}
CLASS_NAMES = {1: "IN", 3: "CH", 4: "HS", 254: "NONE", 255: "ANY"}
CLASS_CODES = {v: k for k, v in CLASS_NAMES.items()}

NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED, BADVERS = 0, 1, 2, 3, 4, 5, 16
RCODE_NAMES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP",
               5: "REFUSED", 16: "BADVERS"}
OPCODE_QUERY = 0

MAX_NAME = 255
MAX_LABEL = 63


def type_name(rtype: int) -> str:
    return TYPE_NAMES.get(rtype) or f"TYPE{rtype}"


def type_code(text: str) -> int:
    """``"MX"`` -> 15; also the RFC 3597 form ``"TYPE65534"``. ValueError if unknown."""
    up = text.upper()
    if up in TYPE_CODES:
        return TYPE_CODES[up]
    if up.startswith("TYPE") and up[4:].isdigit() and int(up[4:]) < 65536:
        return int(up[4:])
    raise ValueError(f"unknown record type {text!r}")


def class_code(text: str) -> int:
    up = text.upper()
    if up in CLASS_CODES:
        return CLASS_CODES[up]
    if up.startswith("CLASS") and up[5:].isdigit() and int(up[5:]) < 65536:
        return int(up[5:])
    raise ValueError(f"unknown class {text!r}")


# ---------------------------------------------------------------------------------------------
# Names

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


# ---------------------------------------------------------------------------------------------
# Wire writer and reader


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


def _need(buf, off: int, n: int, what: str) -> None:
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


# ---------------------------------------------------------------------------------------------
# Record data


class Rdata:
    """Base of the record data classes: equality and hashing by fields."""

    __slots__ = ()
    rtype = 0

    def _key(self):
        return tuple(getattr(self, s) for cls in type(self).__mro__ for s in getattr(cls, "__slots__", ()))

    def __eq__(self, other):
        return type(self) is type(other) and self._key() == other._key()

    def __hash__(self):
        return hash((type(self), self._key()))

    def __repr__(self):
        return f"{type(self).__name__}({self.to_text()})"

    def names(self):
        """Domain names inside this data that additional-section processing looks up."""
        return ()


class ARdata(Rdata):
    __slots__ = ("address",)
    rtype = A

    def __init__(self, address: str):
        self.address = socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, address))

    def write(self, w: Writer) -> None:
        w.buf += socket.inet_pton(socket.AF_INET, self.address)

    @classmethod
    def read(cls, buf, off, end):
        if end - off != 4:
            raise MalformedPacket("dns-bad-rdata", "A record data must be 4 bytes")
        obj = cls.__new__(cls)
        obj.address = socket.inet_ntop(socket.AF_INET, bytes(buf[off:end]))
        return obj

    def to_text(self):
        return self.address


class AAAARdata(Rdata):
    __slots__ = ("address",)
    rtype = AAAA

    def __init__(self, address: str):
        self.address = socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, address))

    def write(self, w: Writer) -> None:
        w.buf += socket.inet_pton(socket.AF_INET6, self.address)

    @classmethod
    def read(cls, buf, off, end):
        if end - off != 16:
            raise MalformedPacket("dns-bad-rdata", "AAAA record data must be 16 bytes")
        obj = cls.__new__(cls)
        obj.address = socket.inet_ntop(socket.AF_INET6, bytes(buf[off:end]))
        return obj

    def to_text(self):
        return self.address


def _read_inner_name(buf, off, end):
    name, off = read_name(buf, off)
    if off > end:
        raise MalformedPacket("dns-bad-rdata", "name runs past the record data")
    return name, off


def _check_name(name: str) -> str:
    name_labels(name)
    return name


class NameRdata(Rdata):
    """CNAME, NS and PTR: one domain name."""

    __slots__ = ("target",)

    def __init__(self, target: str):
        self.target = _check_name(target)

    def write(self, w: Writer) -> None:
        w.name(self.target)

    @classmethod
    def read(cls, buf, off, end):
        obj = cls.__new__(cls)
        obj.target, off = _read_inner_name(buf, off, end)
        if off != end:
            raise MalformedPacket("dns-bad-rdata", f"{type_name(cls.rtype)} data has trailing bytes")
        return obj

    def to_text(self):
        return self.target


class CNAMERdata(NameRdata):
    __slots__ = ()
    rtype = CNAME


class NSRdata(NameRdata):
    __slots__ = ()
    rtype = NS

    def names(self):
        return (self.target,)


class PTRRdata(NameRdata):
    __slots__ = ()
    rtype = PTR


class MXRdata(Rdata):
    __slots__ = ("preference", "exchange")
    rtype = MX

    def __init__(self, preference: int, exchange: str):
        self.preference = _u16(preference)
        self.exchange = _check_name(exchange)

    def write(self, w: Writer) -> None:
        w.buf += struct.pack("!H", self.preference)
        w.name(self.exchange)

    @classmethod
    def read(cls, buf, off, end):
        if end - off < 3:
            raise MalformedPacket("dns-bad-rdata", "MX data too short")
        obj = cls.__new__(cls)
        obj.preference = (buf[off] << 8) | buf[off + 1]
        obj.exchange, off = _read_inner_name(buf, off + 2, end)
        if off != end:
            raise MalformedPacket("dns-bad-rdata", "MX data has trailing bytes")
        return obj

    def to_text(self):
        return f"{self.preference} {self.exchange}"

    def names(self):
        return (self.exchange,)


class SOARdata(Rdata):
    __slots__ = ("mname", "rname", "serial", "refresh", "retry", "expire", "minimum")
    rtype = SOA

    def __init__(self, mname, rname, serial, refresh, retry, expire, minimum):
        self.mname, self.rname = _check_name(mname), _check_name(rname)
        self.serial, self.refresh, self.retry = _u32(serial), _u32(refresh), _u32(retry)
        self.expire, self.minimum = _u32(expire), _u32(minimum)

    def write(self, w: Writer) -> None:
        w.name(self.mname)
        w.name(self.rname)
        w.buf += struct.pack("!5I", self.serial, self.refresh, self.retry, self.expire, self.minimum)

    @classmethod
    def read(cls, buf, off, end):
        obj = cls.__new__(cls)
        obj.mname, off = _read_inner_name(buf, off, end)
        obj.rname, off = _read_inner_name(buf, off, end)
        if end - off != 20:
            raise MalformedPacket("dns-bad-rdata", "SOA counters must be 20 bytes")
        (obj.serial, obj.refresh, obj.retry, obj.expire,
         obj.minimum) = struct.unpack_from("!5I", buf, off)
        return obj

    def to_text(self):
        return (f"{self.mname} {self.rname} {self.serial} {self.refresh} {self.retry} "
                f"{self.expire} {self.minimum}")


class TXTRdata(Rdata):
    __slots__ = ("strings",)
    rtype = TXT

    def __init__(self, strings):
        strings = tuple(s.encode() if isinstance(s, str) else bytes(s) for s in strings)
        if not strings or any(len(s) > 255 for s in strings):
            raise ValueError("TXT needs one or more strings of at most 255 bytes")
        self.strings = strings

    def write(self, w: Writer) -> None:
        for s in self.strings:
            w.buf.append(len(s))
            w.buf += s

    @classmethod
    def read(cls, buf, off, end):
        strings = []
        while off < end:
            n = buf[off]
            if off + 1 + n > end:
                raise MalformedPacket("dns-bad-rdata", "TXT string runs past the record data")
            strings.append(bytes(buf[off + 1:off + 1 + n]))
            off += 1 + n
        if not strings:
            raise MalformedPacket("dns-bad-rdata", "TXT record without a string")
        obj = cls.__new__(cls)
        obj.strings = tuple(strings)
        return obj

    def to_text(self):
        return " ".join('"' + "".join(_txt_char(b) for b in s) + '"' for s in self.strings)


def _txt_char(b: int) -> str:
    if b in (0x22, 0x5C):
        return "\\" + chr(b)
    return chr(b) if 0x20 <= b <= 0x7E else "\\%03d" % b


class SRVRdata(Rdata):
    __slots__ = ("priority", "weight", "port", "target")
    rtype = SRV

    def __init__(self, priority, weight, port, target):
        self.priority, self.weight, self.port = _u16(priority), _u16(weight), _u16(port)
        self.target = _check_name(target)

    def write(self, w: Writer) -> None:
        w.buf += struct.pack("!3H", self.priority, self.weight, self.port)
        w.name(self.target, compress=False)  # RFC 2782: no compression of the target

    @classmethod
    def read(cls, buf, off, end):
        if end - off < 7:
            raise MalformedPacket("dns-bad-rdata", "SRV data too short")
        obj = cls.__new__(cls)
        obj.priority, obj.weight, obj.port = struct.unpack_from("!3H", buf, off)
        obj.target, off = _read_inner_name(buf, off + 6, end)
        if off != end:
            raise MalformedPacket("dns-bad-rdata", "SRV data has trailing bytes")
        return obj

    def to_text(self):
        return f"{self.priority} {self.weight} {self.port} {self.target}"

    def names(self):
        return (self.target,)


class UnknownRdata(Rdata):
    """Any other type, kept as opaque bytes (RFC 3597); text form ``\\# len hex``."""

    __slots__ = ("rtype", "data")

    def __init__(self, rtype: int, data: bytes):
        self.rtype, self.data = _u16(rtype), bytes(data)

    def write(self, w: Writer) -> None:
        w.buf += self.data

    def to_text(self):
        return f"\\# {len(self.data)}" + (f" {self.data.hex()}" if self.data else "")


def _u16(v) -> int:
    v = int(v)
    if not 0 <= v <= 0xFFFF:
        raise ValueError(f"{v} does not fit in 16 bits")
    return v


def _u32(v) -> int:
    v = int(v)
    if not 0 <= v <= 0xFFFFFFFF:
        raise ValueError(f"{v} does not fit in 32 bits")
    return v


RDATA_CLASSES = {c.rtype: c for c in (ARdata, AAAARdata, CNAMERdata, NSRdata, PTRRdata, MXRdata,
                                      SOARdata, TXTRdata, SRVRdata)}


def read_rdata(rtype: int, buf, off: int, end: int) -> Rdata:
    cls = RDATA_CLASSES.get(rtype)
    if cls is None:
        return UnknownRdata(rtype, bytes(buf[off:end]))
    return cls.read(buf, off, end)


# ---------------------------------------------------------------------------------------------
# Sections


class Question:
    __slots__ = ("name", "rtype", "rclass")

    def __init__(self, name: str, rtype: int, rclass: int = IN):
        self.name, self.rtype, self.rclass = _check_name(name), _u16(rtype), _u16(rclass)

    def __eq__(self, other):
        return (isinstance(other, Question) and self.name == other.name
                and self.rtype == other.rtype and self.rclass == other.rclass)

    def __hash__(self):
        return hash((self.name, self.rtype, self.rclass))

    def __repr__(self):
        return f"Question({self.name} {CLASS_NAMES.get(self.rclass, self.rclass)} {type_name(self.rtype)})"


class Record:
    __slots__ = ("name", "rtype", "rclass", "ttl", "data")

    def __init__(self, name: str, rtype: int, rclass: int, ttl: int, data: Rdata):
        self.name, self.rtype, self.rclass, self.ttl, self.data = name, rtype, rclass, ttl, data

    def __eq__(self, other):
        return (isinstance(other, Record) and self.name == other.name and self.rtype == other.rtype
                and self.rclass == other.rclass and self.ttl == other.ttl and self.data == other.data)

    def __hash__(self):
        return hash((self.name.lower(), self.rtype, self.data))

    def __repr__(self):
        return f"Record({self.to_text()})"

    def to_text(self) -> str:
        cls = CLASS_NAMES.get(self.rclass, f"CLASS{self.rclass}")
        return f"{self.name} {self.ttl} {cls} {type_name(self.rtype)} {self.data.to_text()}"

    def with_ttl(self, ttl: int) -> Record:
        return Record(self.name, self.rtype, self.rclass, ttl, self.data)

    def with_name(self, name: str) -> Record:
        return Record(name, self.rtype, self.rclass, self.ttl, self.data)


class Edns:
    """The OPT pseudo-record of RFC 6891, kept apart from the additional section."""

    __slots__ = ("payload", "version", "dnssec_ok", "flags", "options")

    def __init__(self, payload: int = 1232, version: int = 0, dnssec_ok: bool = False,
                 flags: int = 0, options=()):
        self.payload, self.version, self.dnssec_ok = payload, version, dnssec_ok
        self.flags, self.options = flags, tuple(options)  # options: (code, bytes) pairs

    def __eq__(self, other):
        return isinstance(other, Edns) and all(
            getattr(self, s) == getattr(other, s) for s in self.__slots__)

    def __repr__(self):
        return f"Edns(payload={self.payload}, version={self.version}, do={self.dnssec_ok})"


def _read_options(buf, off, end):
    options = []
    while off < end:
        if off + 4 > end:
            raise MalformedPacket("dns-bad-opt", "EDNS option header cut short")
        code, length = struct.unpack_from("!HH", buf, off)
        if off + 4 + length > end:
            raise MalformedPacket("dns-bad-opt", "EDNS option runs past the record")
        options.append((code, bytes(buf[off + 4:off + 4 + length])))
        off += 4 + length
    return options


# ---------------------------------------------------------------------------------------------
# Message

_FLAG_BITS = (("qr", 15), ("aa", 10), ("tc", 9), ("rd", 8), ("ra", 7), ("ad", 5), ("cd", 4))


class Message:
    __slots__ = ("id", "qr", "opcode", "aa", "tc", "rd", "ra", "ad", "cd", "rcode",
                 "questions", "answer", "authority", "additional", "edns")

    def __init__(self, id: int = 0, qr: bool = False, opcode: int = 0, aa: bool = False,
                 tc: bool = False, rd: bool = False, ra: bool = False, ad: bool = False,
                 cd: bool = False, rcode: int = 0, questions=None, answer=None, authority=None,
                 additional=None, edns: Edns | None = None):
        self.id, self.qr, self.opcode, self.rcode = id, qr, opcode, rcode
        self.aa, self.tc, self.rd, self.ra, self.ad, self.cd = aa, tc, rd, ra, ad, cd
        self.questions = list(questions or [])
        self.answer = list(answer or [])
        self.authority = list(authority or [])
        self.additional = list(additional or [])
        self.edns = edns

    def __repr__(self):
        return (f"Message(id={self.id} {self.flags_text()} {RCODE_NAMES.get(self.rcode, self.rcode)} "
                f"q={self.questions} an={len(self.answer)} ns={len(self.authority)} "
                f"ar={len(self.additional)})")

    def flags_text(self) -> str:
        return " ".join(name for name, _ in _FLAG_BITS if getattr(self, name))

    @property
    def question(self) -> Question | None:
        return self.questions[0] if self.questions else None

    def header_flags(self) -> int:
        flags = (self.opcode & 0xF) << 11 | (self.rcode & 0xF)
        for name, bit in _FLAG_BITS:
            if getattr(self, name):
                flags |= 1 << bit
        return flags

    def encode(self) -> bytes:
        return bytes(self.encode_to(Writer()).buf)

    def encode_to(self, w: Writer) -> Writer:
        if self.rcode > 0xF and self.edns is None:
            raise ValueError("an extended rcode needs EDNS")
        extra = 1 if self.edns is not None else 0
        w.buf += struct.pack("!6H", self.id, self.header_flags(), len(self.questions),
                             len(self.answer), len(self.authority), len(self.additional) + extra)
        for q in self.questions:
            w.name(q.name)
            w.buf += struct.pack("!HH", q.rtype, q.rclass)
        for section in (self.answer, self.authority, self.additional):
            for rr in section:
                write_record(w, rr)
        if self.edns is not None:
            self._write_opt(w)
        return w

    def _write_opt(self, w: Writer) -> None:
        e = self.edns
        ttl = ((self.rcode >> 4) << 24) | (e.version << 16) | (0x8000 if e.dnssec_ok else 0) | e.flags
        opts = b"".join(struct.pack("!HH", c, len(d)) + d for c, d in e.options)
        w.buf += b"\x00" + struct.pack("!HHIH", OPT, e.payload, ttl, len(opts)) + opts

    @classmethod
    def decode(cls, data) -> Message:
        buf = data if isinstance(data, (bytes, bytearray)) else bytes(data)
        _need(buf, 0, 12, "header")
        ident, flags, qd, an, ns, ar = struct.unpack_from("!6H", buf, 0)
        m = cls.__new__(cls)
        m.id, m.opcode, m.rcode = ident, (flags >> 11) & 0xF, flags & 0xF
        for name, bit in _FLAG_BITS:
            setattr(m, name, bool(flags & (1 << bit)))
        m.questions, m.answer, m.authority, m.additional, m.edns = [], [], [], [], None
        off = 12
        for _ in range(qd):
            name, off = read_name(buf, off)
            _need(buf, off, 4, "question")
            rtype, rclass = struct.unpack_from("!HH", buf, off)
            off += 4
            q = Question.__new__(Question)
            q.name, q.rtype, q.rclass = name, rtype, rclass
            m.questions.append(q)
        for count, section in ((an, m.answer), (ns, m.authority)):
            for _ in range(count):
                rr, off = read_record(buf, off)
                if rr.rtype == OPT:
                    raise MalformedPacket("dns-bad-opt", "OPT outside the additional section")
                section.append(rr)
        for _ in range(ar):
            start = off
            rr, off = read_record(buf, off)
            if rr.rtype == OPT:
                m._take_opt(buf, start, rr)
            else:
                m.additional.append(rr)
        if off != len(buf):
            raise MalformedPacket("dns-trailing-data", f"{len(buf) - off} bytes after the last record")
        return m

    def _take_opt(self, buf, start, rr: Record) -> None:
        if self.edns is not None:
            raise MalformedPacket("dns-bad-opt", "more than one OPT record")
        if rr.name != ".":
            raise MalformedPacket("dns-bad-opt", "OPT owner is not the root")
        ttl = rr.ttl
        self.rcode |= (ttl >> 24) << 4
        data = rr.data.data
        self.edns = Edns(rr.rclass, (ttl >> 16) & 0xFF, bool(ttl & 0x8000), ttl & 0x7FFF,
                         _read_options(data, 0, len(data)))


def write_record(w: Writer, rr: Record) -> None:
    w.name(rr.name)
    buf = w.buf
    buf += struct.pack("!HH", rr.rtype, rr.rclass)
    w.ttl_offsets.append(len(buf))
    buf += struct.pack("!IH", rr.ttl, 0)
    start = len(buf)
    rr.data.write(w)
    rdlen = len(buf) - start
    if rdlen > 0xFFFF:
        raise ValueError("record data longer than 65535 bytes")
    struct.pack_into("!H", buf, start - 2, rdlen)


def read_record(buf, off: int):
    name, off = read_name(buf, off)
    _need(buf, off, 10, "record header")
    rtype, rclass, ttl, rdlen = struct.unpack_from("!HHIH", buf, off)
    off += 10
    _need(buf, off, rdlen, "record data")
    end = off + rdlen
    if rtype == OPT:
        data = UnknownRdata(OPT, bytes(buf[off:end]))
    else:
        data = read_rdata(rtype, buf, off, end)
    rr = Record.__new__(Record)
    rr.name, rr.rtype, rr.rclass, rr.ttl, rr.data = name, rtype, rclass, ttl, data
    return rr, end


def make_query(name: str, rtype: int, id: int = 0, rd: bool = True, edns: Edns | None = None) -> bytes:
    """Convenience: the wire form of a one-question query."""
    return Message(id=id, rd=rd, questions=[Question(name, rtype)], edns=edns).encode()
