"""Rule header addresses and ports: variables, lists, negation, CIDRs and ranges, compiled to
sorted disjoint integer ranges so that a match is one bisect."""

from __future__ import annotations

import bisect
import re
from typing import Dict, List, Optional, Tuple

from ..wire.addr import ip_to_int

Ranges = List[Tuple[int, int]]  # sorted, disjoint, inclusive

ADDRESS_MAX = 0xFFFFFFFF
PORT_MAX = 0xFFFF

# The address and port groups suricata.yaml defines, with its default values.
DEFAULT_ADDRESS_VARS = {
    "HOME_NET": "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]",
    "EXTERNAL_NET": "!$HOME_NET",
    "HTTP_SERVERS": "$HOME_NET", "SMTP_SERVERS": "$HOME_NET", "SQL_SERVERS": "$HOME_NET",
    "DNS_SERVERS": "$HOME_NET", "TELNET_SERVERS": "$HOME_NET", "AIM_SERVERS": "$EXTERNAL_NET",
    "DC_SERVERS": "$HOME_NET", "DNP3_SERVER": "$HOME_NET", "DNP3_CLIENT": "$HOME_NET",
    "MODBUS_CLIENT": "$HOME_NET", "MODBUS_SERVER": "$HOME_NET", "ENIP_CLIENT": "$HOME_NET",
    "ENIP_SERVER": "$HOME_NET",
}
DEFAULT_PORT_VARS = {
    "HTTP_PORTS": "80", "SHELLCODE_PORTS": "!80", "ORACLE_PORTS": "1521", "SSH_PORTS": "22",
    "DNP3_PORTS": "20000", "MODBUS_PORTS": "502", "FILE_DATA_PORTS": "[$HTTP_PORTS,110,143]",
    "FTP_PORTS": "21", "GENEVE_PORTS": "6081", "VXLAN_PORTS": "4789", "TEREDO_PORTS": "3544",
}


class HeaderError(ValueError):
    """A rule header that cannot be read (bad address, port or variable)."""


def normalize(ranges: Ranges) -> Ranges:
    out: Ranges = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def complement(ranges: Ranges, top: int) -> Ranges:
    out: Ranges = []
    start = 0
    for lo, hi in ranges:
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= top:
        out.append((start, top))
    return out


def subtract(ranges: Ranges, minus: Ranges, top: int) -> Ranges:
    keep = complement(minus, top)
    out: Ranges = []
    for lo, hi in ranges:  # intersect with the complement
        for klo, khi in keep:
            a, b = max(lo, klo), min(hi, khi)
            if a <= b:
                out.append((a, b))
    return normalize(out)


def split_list(text: str) -> List[str]:
    """The items of '[a, [b, c], !d]' at the top level."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise HeaderError(f"unbalanced ']' in {text!r}")
        elif ch == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    if depth:
        raise HeaderError(f"unbalanced '[' in {text!r}")
    items.append(text[start:].strip())
    if any(not item for item in items):
        raise HeaderError(f"empty item in list {text!r}")
    return items


class _Parser:
    def __init__(self, kind: str, variables: Dict[str, str], top: int):
        self.kind = kind
        self.variables = variables
        self.top = top

    def parse(self, text: str, seen: tuple = ()) -> Optional[Ranges]:
        """Ranges, or None for 'any' (everything, cheapest to test)."""
        text = text.strip()
        if not text:
            raise HeaderError(f"empty {self.kind}")
        negate = False
        while text.startswith("!"):
            negate, text = not negate, text[1:].strip()
        if text.startswith("["):
            if not text.endswith("]"):
                raise HeaderError(f"unbalanced '[' in {self.kind} {text!r}")
            plus: Ranges = []
            minus: Ranges = []
            any_plus = False
            for item in split_list(text[1:-1]):
                neg = item.startswith("!")
                got = self.parse(item.lstrip("!") if neg else item, seen)
                got = [(0, self.top)] if got is None else got
                if neg and item.count("!") % 2 == 1:
                    minus += got
                else:
                    plus += got
                    any_plus = True
            base = normalize(plus) if any_plus else [(0, self.top)]
            result = subtract(base, normalize(minus), self.top)
        elif text.startswith("$"):
            name = text[1:]
            if name in seen:
                raise HeaderError(f"variable ${name} refers to itself")
            if name not in self.variables:
                raise HeaderError(f"unknown {self.kind} variable ${name}")
            got = self.parse(self.variables[name], seen + (name,))
            result = [(0, self.top)] if got is None else got
        elif text == "any":
            result = [(0, self.top)]
        else:
            result = self.atom(text)
        if negate:
            result = complement(result, self.top)
            if not result and self.kind == "port":
                raise HeaderError(f"port {text!r} negated matches nothing")
        return None if result == [(0, self.top)] else result

    def atom(self, text: str) -> Ranges:
        if self.kind == "port":
            return [_port_range(text)]
        if ":" in text:  # IPv6: this stack is IPv4-only, such an entry matches nothing here
            return []
        if "/" in text:
            base, _, bits = text.partition("/")
            try:
                addr = ip_to_int(base)
                if "." in bits:
                    mask = ip_to_int(bits)
                    prefix = bin(mask).count("1")
                else:
                    prefix = int(bits)
                if not 0 <= prefix <= 32:
                    raise ValueError
            except (ValueError, OSError):
                raise HeaderError(f"bad address {text!r}") from None
            size = 1 << (32 - prefix)
            lo = addr & ~(size - 1) & ADDRESS_MAX
            return [(lo, lo + size - 1)]
        try:
            addr = ip_to_int(text)
        except (ValueError, OSError):
            raise HeaderError(f"bad address {text!r}") from None
        return [(addr, addr)]


def _port_range(text: str) -> Tuple[int, int]:
    try:
        if ":" in text:
            lo, _, hi = text.partition(":")
            lo_n = int(lo) if lo else 0
            hi_n = int(hi) if hi else PORT_MAX
        else:
            lo_n = hi_n = int(text)
    except ValueError:
        raise HeaderError(f"bad port {text!r}") from None
    if not 0 <= lo_n <= hi_n <= PORT_MAX:
        raise HeaderError(f"bad port range {text!r}")
    return (lo_n, hi_n)


def parse_addresses(text: str, variables: Optional[Dict[str, str]] = None) -> Optional[Ranges]:
    return _Parser("address", DEFAULT_ADDRESS_VARS if variables is None else variables, ADDRESS_MAX).parse(text)


def parse_ports(text: str, variables: Optional[Dict[str, str]] = None) -> Optional[Ranges]:
    return _Parser("port", DEFAULT_PORT_VARS if variables is None else variables, PORT_MAX).parse(text)


def mentions_negation(text: str, variables: Optional[Dict[str, str]] = None, seen: tuple = ()) -> bool:
    """True when an address (with its variables expanded) negates something: '!1.2.3.4',
    '[a,!b]', '$EXTERNAL_NET' (= '!$HOME_NET'). Suricata treats such rules as packet rules,
    never as IP-only ones."""
    variables = DEFAULT_ADDRESS_VARS if variables is None else variables
    if "!" in text:
        return True
    for name in re.findall(r"\$([A-Za-z0-9_]+)", text):
        if name not in seen and name in variables and mentions_negation(variables[name], variables, seen + (name,)):
            return True
    return False


def contains(ranges: Optional[Ranges], value: int) -> bool:
    if ranges is None:
        return True
    i = bisect.bisect_right(ranges, (value, PORT_MAX + ADDRESS_MAX)) - 1
    return i >= 0 and ranges[i][0] <= value <= ranges[i][1]
