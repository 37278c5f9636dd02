"""DNS messages (RFC 1035) <-> bytes, with EDNS(0) (RFC 6891) and opaque unknown types (RFC 3597).

Names are ``str`` in presentation form, absolute, with the trailing dot (``"www.Example.com."``,
root is ``"."``). Bytes that are not plain printable characters are escaped (``\\.``, ``\\DDD``), so
every wire name has exactly one text form and case is preserved. Compare names with ``.lower()``.

Parsing raises only :class:`MalformedPacket`. Decompression accepts only pointers that point
strictly before the previous jump target, so loops and forward references cannot occur.

The codec is in four modules, re-exported here (``from pynetstack.wire.dns import X`` works for
all of them): dns_numbers (types, classes, rcodes), dns_names (names, compression), dns_rdata
(record data classes) and this one (questions, records, EDNS and whole messages).
"""
from __future__ import annotations

import struct

from .dns_names import (MAX_POINTER_HOPS, Writer, checked_name, is_subdomain, label_text,  # noqa: F401
                        labels_to_name, name_labels, need_bytes, parent_name, read_name)
from .dns_numbers import (AAAA, ANY, BADVERS, CLASS_CODES, CLASS_NAMES, CNAME, FORMERR, IN,  # noqa: F401
                          MAX_LABEL, MAX_NAME, MX, NOERROR, NOTIMP, NS, NXDOMAIN, OPCODE_QUERY, OPT, PTR,
                          RCODE_NAMES, REFUSED, SERVFAIL, SOA, SRV, TXT, TYPE_CODES, TYPE_NAMES, A,
                          check_u16, check_u32, class_code, type_code, type_name)
from .dns_rdata import (RDATA_CLASSES, AAAARdata, ARdata, CNAMERdata, MXRdata, NameRdata,  # noqa: F401
                        NSRdata, PTRRdata, Rdata, SOARdata, SRVRdata, TXTRdata, UnknownRdata, read_rdata)
from .errors import MalformedPacket

# ---------------------------------------------------------------------------------------------
# Sections


class Question:
    __slots__ = ("name", "rtype", "rclass")

    def __init__(self, name: str, rtype: int, rclass: int = IN):
        self.name, self.rtype, self.rclass = checked_name(name), check_u16(rtype), check_u16(rclass)

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
        need_bytes(buf, 0, 12, "header")
        ident, flags, qd, an, ns, ar = struct.unpack_from("!6H", buf, 0)
        m = cls.__new__(cls)
        m.id, m.opcode, m.rcode = ident, (flags >> 11) & 0xF, flags & 0xF
        for name, bit in _FLAG_BITS:
            setattr(m, name, bool(flags & (1 << bit)))
        m.questions, m.answer, m.authority, m.additional, m.edns = [], [], [], [], None
        off = 12
        for _ in range(qd):
            name, off = read_name(buf, off)
            need_bytes(buf, off, 4, "question")
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
    need_bytes(buf, off, 10, "record header")
    rtype, rclass, ttl, rdlen = struct.unpack_from("!HHIH", buf, off)
    off += 10
    need_bytes(buf, off, rdlen, "record data")
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
