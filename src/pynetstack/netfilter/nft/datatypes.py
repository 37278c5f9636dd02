"""nft datatypes: how a value is read from source text and how nft prints it back.

Every numeric value is kept as an int; a match value is a list of closed intervals ``(lo, hi)``.
"""

from __future__ import annotations

from typing import Dict, Optional

from . import symbols as S
from .errors import Location, NftError


def parse_int(text: str) -> Optional[int]:
    try:
        if text[:2].lower() == "0x":
            return int(text[2:], 16)
        if text.isdigit():
            return int(text)
    except ValueError:
        return None
    return None


def parse_ipv4(text: str) -> Optional[int]:
    parts = text.split(".")
    if len(parts) != 4:
        return None
    value = 0
    for p in parts:
        if not p.isdigit() or len(p) > 3 or int(p) > 255:
            return None
        value = (value << 8) | int(p)
    return value


def format_ipv4(value: int) -> str:
    return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"


class DataType:
    """An integer-valued datatype of ``bits`` width with an optional table of symbolic names."""

    name = "integer"
    bitmask = False

    def __init__(self, name: str, bits: int, symbols: Optional[Dict[str, int]] = None,
                 print_names: bool = True, hex_width: int = 0, range_error: str = "",
                 numeric_ok: bool = True):
        self.name = name
        self.bits = bits
        self.symbols = symbols or {}
        self.names = S.invert(self.symbols) if print_names else {}
        self.hex_width = hex_width
        self.range_error = range_error or f"Value {{}} exceeds valid range 0-{(1 << bits) - 1}"
        self.numeric_ok = numeric_ok

    def parse(self, text: str, loc: Location) -> int:
        if text in self.symbols:
            return self.symbols[text]
        value = parse_int(text) if self.numeric_ok else None
        if value is None:
            raise self.unknown(text, loc)
        if value >= 1 << self.bits:
            raise NftError(self.range_error.format(text), loc)
        return value

    def unknown(self, text: str, loc: Location) -> NftError:
        return NftError(f"Could not parse {self.name} expression", loc)

    def format(self, value: int) -> str:
        if value in self.names:
            return self.names[value]
        if self.hex_width:
            return f"0x{value:0{self.hex_width}x}"
        return str(value)

    def format_interval(self, lo: int, hi: int) -> str:
        if lo == hi:
            return self.format(lo)
        return f"{self.format(lo)}-{self.format(hi)}"


class ServiceType(DataType):
    def __init__(self):
        super().__init__("inet_service", 16, S.SERVICES, print_names=False,
                         range_error="Service out of range")

    def unknown(self, text: str, loc: Location) -> NftError:
        return NftError("Could not resolve service: Servname not supported for ai_socktype", loc)


class Ipv4Type(DataType):
    def __init__(self):
        super().__init__("ipv4_addr", 32)

    def parse(self, text: str, loc: Location) -> int:
        value = parse_ipv4(text)
        if value is None:
            if text and (text[0].isalpha() or text[0] == "_"):
                raise NftError(f"Could not resolve hostname: {text}", loc)
            raise NftError(f"Could not parse {self.name} expression: {text}", loc)
        return value

    def format(self, value: int) -> str:
        return format_ipv4(value)

    def format_interval(self, lo: int, hi: int) -> str:
        if lo == hi:
            return format_ipv4(lo)
        size = hi - lo + 1
        if size & (size - 1) == 0 and lo & (size - 1) == 0:
            return f"{format_ipv4(lo)}/{32 - size.bit_length() + 1}"
        return f"{format_ipv4(lo)}-{format_ipv4(hi)}"


class BitmaskType(DataType):
    bitmask = True

    def format(self, value: int) -> str:
        names = [self.names[1 << b] for b in range(self.bits) if value & (1 << b) and (1 << b) in self.names]
        rest = value & ~sum(1 << b for b in range(self.bits) if (1 << b) in self.names)
        if rest or not names:
            names.append(f"0x{rest:x}" if names else str(value))
        return ",".join(names)


class StringType:
    """Interface names: strings, where a trailing ``*`` matches any suffix."""

    name = "ifname"
    bitmask = False


IPV4 = Ipv4Type()
SERVICE = ServiceType()
PROTOCOL = DataType("inet_proto", 8, S.PROTOCOLS)
PROTOCOL.names = dict(S.PROTOCOL_NAMES)
U8 = DataType("integer", 8, print_names=False)
U16 = DataType("integer", 16, print_names=False)
U32 = DataType("integer", 32, print_names=False)
ICMP_TYPE = DataType("icmp_type", 8, S.ICMP_TYPES)
ICMP_CODE = DataType("icmp_code", 8, S.ICMP_CODES)
DSCP = DataType("dscp", 6, S.DSCP, hex_width=2)
MARK = DataType("mark", 32, hex_width=8)
CT_DIR = DataType("ct_dir", 8, S.CT_DIRECTION)
PKTTYPE = DataType("pkt_type", 8, S.PKTTYPE)
PKTTYPE.names = dict(S.PKTTYPE_NAMES)
CT_STATE = BitmaskType("ct_state", 32, S.CT_STATE)
CT_STATUS = BitmaskType("ct_status", 32, S.CT_STATUS)
TCP_FLAGS = BitmaskType("tcp_flag", 8, S.TCP_FLAGS)
IFNAME = StringType()
IFINDEX = StringType()  # iif/oif: an interface the kernel resolves to its index at load time
IFINDEX.name = "iface_index"
NFPROTO = DataType("nf_proto", 8, {"ipv4": 2, "ipv6": 10})
