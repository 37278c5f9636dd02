"""Address helpers. IPv4 addresses are plain ints on the packet path; MACs are 6-byte bytes."""

from __future__ import annotations

import socket
import struct

from .errors import MalformedPacket

BROADCAST_MAC = b"\xff" * 6
ZERO_MAC = b"\x00" * 6
_pack_I = struct.Struct("!I").pack
_unpack_I = struct.Struct("!I").unpack


def ip_to_int(text: str) -> int:
    """Dotted quad -> int. Strict: four decimal octets, no leading zeros (which inet_aton
    would read as octal: '010.0.0.1' is 8.0.0.1 to it, a trap in a config file)."""
    parts = text.split(".") if isinstance(text, str) else ()
    if len(parts) != 4 or not all(p.isdigit() and p.isascii() and (p == "0" or not p.startswith("0"))
                                   and int(p) <= 255 for p in parts):
        raise ValueError(f"not an IPv4 address: {text!r}")
    return (int(parts[0]) << 24) | (int(parts[1]) << 16) | (int(parts[2]) << 8) | int(parts[3])


def ip_to_str(value: int) -> str:
    return socket.inet_ntoa(_pack_I(value))


def ip_to_bytes(value: int) -> bytes:
    return _pack_I(value)


def parse_cidr(text: str) -> tuple[int, int]:
    """'10.0.0.1/24' -> (address int, prefix length). A bare address is a /32."""
    address, _, prefix = text.partition("/")
    length = 32
    if prefix:
        if not prefix.isdigit() or not 0 <= int(prefix) <= 32:
            raise ValueError(f"bad prefix length in {text!r}")
        length = int(prefix)
    return ip_to_int(address), length


def prefix_mask(length: int) -> int:
    return (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF


def mac_to_str(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def mac_to_bytes(text: str) -> bytes:
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6:
        raise ValueError(f"not a MAC address: {text!r}")
    try:
        raw = bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"not a MAC address: {text!r}") from None
    return raw


def require(data, length: int, reason: str) -> None:
    """Raise MalformedPacket(reason) when ``data`` is shorter than ``length`` bytes."""
    if len(data) < length:
        raise MalformedPacket(reason, f"need {length} bytes, have {len(data)}")
