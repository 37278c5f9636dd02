"""TCP segment (RFC 9293) with its options: MSS, window scale and timestamps (RFC 7323),
SACK-permitted and SACK blocks (RFC 2018), NOP/EOL; unknown options are kept, not dropped.

``Tcp.parse`` validates the header and every option length and verifies the checksum over the
IPv4 pseudo-header; ``build_tcp`` is the hot-path builder and computes the checksum without
copying the payload twice.  Sequence numbers here are the raw 32-bit wire values.
"""

from __future__ import annotations

import struct

from .checksum import word_value as _word_value  # int.from_bytes on CPython
from .errors import MalformedPacket

_new = object.__new__  # a parsed header skips __init__ (and object.__new__ is found faster)

PROTO = 6
HEADER_LEN = 20
MAX_OPTIONS = 40
MAX_WSCALE = 14  # RFC 7323 2.3: a larger shift is treated as 14

FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80

OPT_EOL = 0
OPT_NOP = 1
OPT_MSS = 2
OPT_WSCALE = 3
OPT_SACK_PERMITTED = 4
OPT_SACK = 5
OPT_TIMESTAMPS = 8

_FLAG_NAMES = ((FIN, "F"), (SYN, "S"), (RST, "R"), (PSH, "P"), (ACK, "."), (URG, "U"), (ECE, "E"),
               (CWR, "W"))

_hdr = struct.Struct("!HHIIBBHHH")
_hdr_pack = _hdr.pack
_hdr_unpack = _hdr.unpack_from
_ts = struct.Struct("!II")
_ts_unpack = _ts.unpack_from
_ts_pack = _ts.pack
_II = struct.Struct("!II")
_H = struct.Struct("!H")
_TS_PREFIX = b"\x01\x01\x08\x0a"
_TS_PREFIX_WORD = 0x0101080A
_nop_nop_ts = struct.Struct("!III").unpack_from
_nop_nop_ts_pack = struct.Struct("!III").pack
_EMPTY = ()


def flags_to_str(flags: int) -> str:
    """tcpdump-style flag letters: S, F, R, P, '.' for ACK, U, E, W."""
    return "".join(name for bit, name in _FLAG_NAMES if flags & bit) or "none"


class Tcp:
    """A parsed TCP segment. ``payload`` is a memoryview into the received datagram.

    Option fields are ``None``/``False``/``()`` when the option is absent; ``options`` holds the
    raw option bytes as received (so a rewrite can preserve options it does not know).
    """

    __slots__ = ("src_port", "dst_port", "seq", "ack", "flags", "window", "checksum", "urgent",
                 "options", "payload", "mss", "wscale", "sack_permitted", "sack_blocks", "ts_val",
                 "ts_ecr", "unknown_options", "gso_size")

    def __init__(self, src_port: int, dst_port: int, seq: int = 0, ack: int = 0, flags: int = 0,
                 window: int = 0, payload=b"", urgent: int = 0, mss=None, wscale=None,
                 sack_permitted: bool = False, sack_blocks=(), ts_val=None, ts_ecr: int = 0,
                 unknown_options=()):
        self.src_port = src_port
        self.dst_port = dst_port
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.window = window
        self.urgent = urgent
        self.payload = payload
        self.checksum = 0
        self.mss = mss
        self.wscale = wscale
        self.sack_permitted = sack_permitted
        self.sack_blocks = tuple(sack_blocks)
        self.ts_val = ts_val
        self.ts_ecr = ts_ecr
        self.unknown_options = tuple(unknown_options)
        self.gso_size = 0  # a merged segment (gro.py): the size of the segments it is made of
        self.options = self.build_options()

    # -- parsing ---------------------------------------------------------------------------------

    @staticmethod  # (not a classmethod: no bound method is made per call)
    def parse(data, src: int = 0, dst: int = 0, check: bool = True) -> Tcp:
        """Parse a whole segment. ``src``/``dst`` are the IPv4 addresses for the checksum."""
        n = len(data)
        if n < HEADER_LEN:
            raise MalformedPacket("tcp-truncated", f"{n} bytes")
        sport, dport, seq, ack, off, flags, window, csum, urgent = _hdr_unpack(data)
        hlen = (off >> 4) << 2
        if hlen < HEADER_LEN or hlen > n:
            raise MalformedPacket("tcp-bad-data-offset", f"header {hlen}, have {n}")
        if check:  # transport_verify inlined: segment and pseudo-header sum to 0 modulo 0xFFFF
            value = _word_value(data, "big")
            if n & 1:
                value <<= 8
            # (reduced before the pseudo-header is added: no big-int addition, no second big int)
            if (value % 0xFFFF + src + dst + PROTO + n) % 0xFFFF:
                raise MalformedPacket("tcp-bad-checksum")
        self = _new(Tcp)
        self.src_port = sport
        self.dst_port = dport
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.window = window
        self.checksum = csum
        self.urgent = urgent
        view = data if type(data) is memoryview else memoryview(data)
        self.payload = view[hlen:]
        self.mss = None
        self.wscale = None
        self.sack_permitted = False
        self.sack_blocks = _EMPTY
        self.unknown_options = _EMPTY
        self.gso_size = 0
        if hlen == HEADER_LEN:
            self.options = b""
            self.ts_val = None
            self.ts_ecr = 0
            return self
        if hlen == 32:  # the usual data segment: NOP NOP TS, read in one unpack
            prefix, ts_val, ts_ecr = _nop_nop_ts(view, HEADER_LEN)
            if prefix == _TS_PREFIX_WORD:
                self.options = _nop_nop_ts_pack(prefix, ts_val, ts_ecr)  # (the same 12 bytes: cheaper than a copy)
                self.ts_val = ts_val
                self.ts_ecr = ts_ecr
                return self
        options = bytes(view[HEADER_LEN:hlen])
        self.options = options
        self.ts_val = None
        self.ts_ecr = 0
        _parse_options(self, options)
        return self

    # -- building --------------------------------------------------------------------------------

    def build_options(self) -> bytes:
        return build_options(self.mss, self.wscale, self.sack_permitted,
                             None if self.ts_val is None else (self.ts_val, self.ts_ecr),
                             self.sack_blocks, self.unknown_options)

    def build(self, src: int, dst: int) -> bytes:
        """Bytes of this segment, options re-encoded from the fields, checksum computed."""
        return build_tcp(src, dst, self.src_port, self.dst_port, self.seq, self.ack, self.flags,
                         self.window, bytes(self.payload), self.build_options(), self.urgent)

    def __repr__(self) -> str:
        opts = []
        if self.mss is not None:
            opts.append(f"mss {self.mss}")
        if self.wscale is not None:
            opts.append(f"wscale {self.wscale}")
        if self.sack_permitted:
            opts.append("sackOK")
        if self.sack_blocks:
            opts.append("sack " + " ".join(f"{a}:{b}" for a, b in self.sack_blocks))
        if self.ts_val is not None:
            opts.append(f"TS val {self.ts_val} ecr {self.ts_ecr}")
        return (f"<Tcp {self.src_port} > {self.dst_port} [{flags_to_str(self.flags)}] seq {self.seq} "
                f"ack {self.ack} win {self.window} len {len(self.payload)}"
                + (f" <{', '.join(opts)}>" if opts else "") + ">")


def _parse_options(seg: Tcp, options: bytes) -> None:
    i = 0
    n = len(options)
    unknown = None
    while i < n:
        kind = options[i]
        if kind == OPT_EOL:
            break
        if kind == OPT_NOP:
            i += 1
            continue
        if i + 1 >= n:
            raise MalformedPacket("tcp-bad-option", f"option {kind} has no length byte")
        length = options[i + 1]
        if length < 2 or i + length > n:
            raise MalformedPacket("tcp-bad-option", f"option {kind} length {length}")
        if kind == OPT_TIMESTAMPS:
            if length != 10:
                raise MalformedPacket("tcp-bad-option", f"timestamps length {length}")
            seg.ts_val, seg.ts_ecr = _ts_unpack(options, i + 2)
        elif kind == OPT_SACK:
            count, rest = divmod(length - 2, 8)
            if rest or not 1 <= count <= 4:
                raise MalformedPacket("tcp-bad-option", f"SACK length {length}")
            seg.sack_blocks = tuple(_II.unpack_from(options, i + 2 + 8 * k) for k in range(count))
        elif kind == OPT_MSS:
            if length != 4:
                raise MalformedPacket("tcp-bad-option", f"MSS length {length}")
            seg.mss = _H.unpack_from(options, i + 2)[0]
        elif kind == OPT_WSCALE:
            if length != 3:
                raise MalformedPacket("tcp-bad-option", f"window scale length {length}")
            shift = options[i + 2]
            seg.wscale = shift if shift <= MAX_WSCALE else MAX_WSCALE
        elif kind == OPT_SACK_PERMITTED:
            if length != 2:
                raise MalformedPacket("tcp-bad-option", f"SACK-permitted length {length}")
            seg.sack_permitted = True
        else:
            if unknown is None:
                unknown = []
            unknown.append((kind, options[i + 2:i + length]))
        i += length
    if unknown is not None:
        seg.unknown_options = tuple(unknown)


def build_options(mss=None, wscale=None, sack_permitted: bool = False, ts=None, sack_blocks=(),
                  unknown=()) -> bytes:
    """Encode options, padded with NOP/EOL to a multiple of 4, in the layout Linux uses:
    ``MSS, SACK-permitted+TS (or NOP NOP TS), NOP WS, NOP NOP SACK``. ``ts`` is (val, ecr)."""
    out = bytearray()
    if mss is not None:
        out += b"\x02\x04" + _H.pack(mss)
    if ts is not None:
        out += (b"\x04\x02\x08\x0a" if sack_permitted else _TS_PREFIX) + _ts_pack(ts[0], ts[1])
    elif sack_permitted:
        out += b"\x01\x01\x04\x02"
    if wscale is not None:
        out += b"\x01\x03\x03" + bytes((wscale,))
    for kind, data in unknown:
        out += bytes((kind, len(data) + 2)) + bytes(data)
    if sack_blocks:
        if len(sack_blocks) > 4:
            raise ValueError("at most 4 SACK blocks fit in a TCP header")
        out += b"\x01\x01\x05" + bytes((2 + 8 * len(sack_blocks),))
        for left, right in sack_blocks:
            out += _II.pack(left & 0xFFFFFFFF, right & 0xFFFFFFFF)
    if len(out) & 3:
        out += b"\x00" * (4 - (len(out) & 3))
    if len(out) > MAX_OPTIONS:
        raise ValueError(f"TCP options of {len(out)} bytes do not fit in 40")
    return bytes(out)


def timestamp_option(ts_val: int, ts_ecr: int) -> bytes:
    """NOP NOP TS: the 12 option bytes of an ordinary data segment."""
    return _TS_PREFIX + _ts_pack(ts_val, ts_ecr)


def sack_option(blocks) -> bytes:
    """NOP NOP SACK for (left, right) wire-sequence pairs (at most 4; 3 fit beside timestamps)."""
    out = b"\x01\x01\x05" + bytes((2 + 8 * len(blocks),))
    for left, right in blocks:
        out += _II.pack(left & 0xFFFFFFFF, right & 0xFFFFFFFF)
    return out


def build_tcp_partial(src: int, dst: int, src_port: int, dst_port: int, seq: int, ack: int, flags: int,
                      window: int, payload=b"", options: bytes = b"") -> bytes:
    """A segment for checksum offload (Linux's CHECKSUM_PARTIAL): the checksum field holds the
    folded pseudo-header sum, and whoever finishes it (a NIC, the kernel behind a TAP) adds the
    sum of the segment and complements it.  The payload is never summed here."""
    hlen = HEADER_LEN + len(options)
    partial = ((src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + PROTO + hlen
               + len(payload)) % 0xFFFF
    return b"".join((_hdr_pack(src_port, dst_port, seq, ack, hlen << 2, flags, window, partial, 0),
                     options, payload))


def build_tcp(src: int, dst: int, src_port: int, dst_port: int, seq: int, ack: int, flags: int,
              window: int, payload=b"", options: bytes = b"", urgent: int = 0) -> bytes:
    """Build one segment with its checksum. ``options`` must already be padded to 4 bytes.

    The checksum is summed over header and payload separately (the header is a multiple of 4
    bytes long, so the payload starts on a word boundary) so the payload is copied only once.
    """
    hlen = HEADER_LEN + len(options)
    plen = len(payload)
    value = (_word_value(_hdr_pack(src_port, dst_port, seq, ack, hlen << 2, flags, window, 0, urgent)
                         + options, "big")
             + (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + PROTO + hlen + plen)
    if plen:
        if plen & 1:
            value += _word_value(payload, "big") << 8
        else:
            value += _word_value(payload, "big")
    csum = ~(value % 0xFFFF or 0xFFFF) & 0xFFFF
    return _hdr_pack(src_port, dst_port, seq, ack, hlen << 2, flags, window, csum, urgent) + options + payload
