"""IPv4 header (RFC 791): options kept, DF/MF flags, fragment offset, header checksum."""

from __future__ import annotations

import struct

from .checksum import internet_checksum
from .errors import MalformedPacket

_new = object.__new__  # a parsed header skips __init__ (and object.__new__ is found faster)

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
FLAG_DF = 0x4000
FLAG_MF = 0x2000
OFFSET_MASK = 0x1FFF
MIN_HEADER = 20

_hdr = struct.Struct("!BBHHHBBHII")
_from_bytes = int.from_bytes
_pack = _hdr.pack
_unpack = _hdr.unpack_from
_unpack_words = struct.Struct("!HHHHHHII").unpack_from


class IPv4:
    """An IPv4 datagram. ``frag_offset`` is in bytes; ``payload`` is trimmed to total length.

    ``csum_ok`` is set by the receive path when the device vouched for the transport checksum
    (checksum offload: see ``link/vnet.py``); the transport then skips verifying it.
    """

    __slots__ = ("tos", "ident", "df", "mf", "frag_offset", "ttl", "protocol", "src", "dst",
                 "options", "payload", "checksum", "total_length", "csum_ok")

    def __init__(self, src: int, dst: int, protocol: int, payload=b"", ttl: int = 64, tos: int = 0,
                 ident: int = 0, df: bool = False, mf: bool = False, frag_offset: int = 0,
                 options: bytes = b""):
        self.src = src
        self.dst = dst
        self.protocol = protocol
        self.payload = payload
        self.ttl = ttl
        self.tos = tos
        self.ident = ident
        self.df = df
        self.mf = mf
        self.frag_offset = frag_offset
        self.options = options
        self.checksum = 0
        self.total_length = 0
        self.csum_ok = False

    @property
    def header_length(self) -> int:
        return MIN_HEADER + len(self.options)

    @property
    def is_fragment(self) -> bool:
        return self.mf or self.frag_offset != 0

    @staticmethod  # (not a classmethod: no bound method is made per call)
    def parse(data, check: bool = True) -> IPv4:
        try:  # (a try costs nothing until it catches: cheaper than a length test first)
            version_ihl_tos, total, ident, frag, ttl_proto, csum, src, dst = _unpack_words(data)
        except struct.error:
            raise MalformedPacket("ipv4-truncated", f"{len(data)} bytes") from None
        # The header as 16-bit words (addresses as 32-bit ones, each congruent to the sum of its
        # halves modulo 0xFFFF, as 2**16 is to 1): their plain sum is congruent to the header's
        # ones' complement sum, seven additions; the byte fields are split out of their words below.
        view = data if type(data) is memoryview else memoryview(data)
        if 0x4500 <= version_ihl_tos < 0x4600:  # version 4, no options: most datagrams
            hlen = MIN_HEADER
            options = b""
        else:
            vihl = version_ihl_tos >> 8
            if vihl >> 4 != 4:
                raise MalformedPacket("ipv4-bad-version", str(vihl >> 4))
            hlen = (vihl & 0x0F) << 2
            if hlen < MIN_HEADER:
                raise MalformedPacket("ipv4-bad-header-length", str(hlen))
            options = bytes(view[MIN_HEADER:hlen])
        if total < hlen or total > len(data):
            raise MalformedPacket("ipv4-bad-total-length", f"total {total}, header {hlen}, have {len(data)}")
        # A valid header sums to 0xFFFF, i.e. its (non-zero) value is a multiple of 0xFFFF.
        if check and (version_ihl_tos + total + ident + frag + ttl_proto + csum + src + dst
                      + (_from_bytes(options, "big") if options else 0)) % 0xFFFF:
            raise MalformedPacket("ipv4-bad-checksum")
        if options:
            check_options(options)
        self = _new(IPv4)
        self.csum_ok = False
        self.tos = version_ihl_tos & 0xFF
        self.total_length = total
        self.ident = ident
        if frag == 0x4000:  # DF alone, the usual datagram: its flags need no arithmetic
            self.df = True
            self.mf = False
            self.frag_offset = 0
        else:
            self.df = frag & 0x4000 != 0  # FLAG_DF
            self.mf = frag & 0x2000 != 0  # FLAG_MF
            self.frag_offset = (frag & 0x1FFF) << 3  # OFFSET_MASK, in bytes
        self.ttl = ttl_proto >> 8
        self.protocol = ttl_proto & 0xFF
        self.checksum = csum
        self.src = src
        self.dst = dst
        self.options = options
        self.payload = view[hlen:total]
        return self

    @classmethod
    def parse_quoted(cls, data) -> IPv4:
        """Parse the datagram an ICMP error quotes: usually truncated, so the total length
        may exceed what is present and the checksum is not checked."""
        if len(data) < MIN_HEADER:
            raise MalformedPacket("icmp-quote-truncated", f"{len(data)} bytes")
        hlen = (data[0] & 0x0F) << 2
        if data[0] >> 4 != 4 or hlen < MIN_HEADER or hlen > len(data):
            raise MalformedPacket("icmp-quote-bad-header")
        vihl, tos, total, ident, frag, ttl, proto, csum, src, dst = _hdr.unpack_from(data)
        self = cls(src, dst, proto, memoryview(data)[hlen:], ttl=ttl, tos=tos, ident=ident,
                   df=bool(frag & FLAG_DF), mf=bool(frag & FLAG_MF), frag_offset=(frag & OFFSET_MASK) << 3,
                   options=bytes(data[MIN_HEADER:hlen]))
        self.checksum, self.total_length = csum, total
        return self

    def build_header(self, payload_length: int) -> bytes:
        """The header alone, with total length and checksum computed."""
        options = self.options
        if len(options) & 3:
            options += bytes(4 - (len(options) & 3))
        hlen = MIN_HEADER + len(options)
        if hlen > 60:
            raise ValueError("IPv4 options longer than 40 bytes")
        total = hlen + payload_length
        if total > 0xFFFF:
            raise ValueError(f"IPv4 datagram of {total} bytes is too long")
        if self.frag_offset & 7:
            raise ValueError(f"fragment offset {self.frag_offset} is not a multiple of 8")
        frag = (self.frag_offset >> 3) | (FLAG_DF if self.df else 0) | (FLAG_MF if self.mf else 0)
        header = _pack(0x40 | (hlen >> 2), self.tos, total, self.ident, frag, self.ttl, self.protocol, 0,
                       self.src, self.dst) + options
        csum = internet_checksum(header)
        self.checksum = csum
        self.total_length = total
        return header[:10] + csum.to_bytes(2, "big") + header[12:]

    def build(self) -> bytes:
        payload = bytes(self.payload)
        return self.build_header(len(payload)) + payload


def build_ipv4(src: int, dst: int, protocol: int, payload: bytes, ttl: int = 64, ident: int = 0,
               df: bool = True, tos: int = 0) -> bytes:
    """Fast path: an option-less, unfragmented datagram."""
    total = 20 + len(payload)
    frag = FLAG_DF if df else 0
    # The header's value modulo 0xFFFF from its fields (an address is congruent to the sum of its
    # halves): packed once, checksum included, instead of packed, summed and spliced.
    value = 0x4500 + tos + total + ident + frag + (ttl << 8) + protocol + src + dst
    csum = ~(value % 0xFFFF or 0xFFFF) & 0xFFFF
    return _pack(0x45, tos, total, ident, frag, ttl, protocol, csum, src, dst) + payload


def check_options(options: bytes) -> None:
    """Walk the option list; raise MalformedPacket when an option's length is impossible."""
    bad = bad_option_offset(options)
    if bad is not None:
        raise MalformedPacket("ipv4-bad-option", f"option {options[bad]} at option offset {bad} has an impossible length")


def bad_option_offset(options: bytes):
    """The offset in ``options`` of the first option whose length is impossible, or None."""
    i = 0
    n = len(options)
    while i < n:
        kind = options[i]
        if kind == 0:  # end of option list
            return None
        if kind == 1:  # no-operation
            i += 1
            continue
        if i + 1 >= n:
            return i
        length = options[i + 1]
        if length < 2 or i + length > n:
            return i
        i += length
    return None


def copied_options(options: bytes) -> bytes:
    """Options that RFC 791 says are copied into every fragment (copy flag set), padded."""
    out = bytearray()
    i = 0
    while i < len(options):
        kind = options[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        length = options[i + 1] if i + 1 < len(options) else 0
        if length < 2:  # malformed (never validated): stop rather than loop forever
            break
        if kind & 0x80:
            out += options[i:i + length]
        i += length
    if len(out) & 3:
        out += bytes(4 - (len(out) & 3))
    return bytes(out)
