"""DNS record data (RFC 1035 section 3.3, RFC 3596, RFC 2782): one class per type with its wire
codec (``write`` into a Writer, ``read`` from a message) and its presentation text; any other
type is kept as opaque bytes (RFC 3597)."""
from __future__ import annotations

import socket
import struct

from .dns_names import Writer, checked_name, read_name
from .dns_numbers import AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT, A, check_u16, check_u32, type_name
from .errors import MalformedPacket


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


class NameRdata(Rdata):
    """CNAME, NS and PTR: one domain name."""

    __slots__ = ("target",)

    def __init__(self, target: str):
        self.target = checked_name(target)

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
        self.preference = check_u16(preference)
        self.exchange = checked_name(exchange)

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
        self.mname, self.rname = checked_name(mname), checked_name(rname)
        self.serial, self.refresh, self.retry = check_u32(serial), check_u32(refresh), check_u32(retry)
        self.expire, self.minimum = check_u32(expire), check_u32(minimum)

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
        self.priority, self.weight, self.port = check_u16(priority), check_u16(weight), check_u16(port)
        self.target = checked_name(target)

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
        self.rtype, self.data = check_u16(rtype), bytes(data)

    def write(self, w: Writer) -> None:
        w.buf += self.data

    def to_text(self):
        return f"\\# {len(self.data)}" + (f" {self.data.hex()}" if self.data else "")


RDATA_CLASSES = {c.rtype: c for c in (ARdata, AAAARdata, CNAMERdata, NSRdata, PTRRdata, MXRdata,
                                      SOARdata, TXTRdata, SRVRdata)}


def read_rdata(rtype: int, buf, off: int, end: int) -> Rdata:
    cls = RDATA_CLASSES.get(rtype)
    if cls is None:
        return UnknownRdata(rtype, bytes(buf[off:end]))
    return cls.read(buf, off, end)
