"""Which QoS class a frame belongs to: rules, then its DSCP (RFC 4594), then a guess from
protocol, ports and the flow's size so far; and optional DSCP re-marking on the way out.

The seed's five classes, with the RFC 4594 service classes that map to them:

- voice: EF, VOICE-ADMIT, CS5 (signalling), CS4 (real-time interactive)
- video: AF4x (multimedia conferencing), AF3x (multimedia streaming), CS3 (broadcast video)
- interactive: AF2x (low-latency data), CS2 (OAM), CS6 and CS7 (network control)
- bulk: AF1x (high-throughput data), default (CS0) and codepoints RFC 4594 does not name
- background: LE (RFC 8622), CS1 (low-priority data)

Unmarked traffic (DSCP 0) that no rule claims is guessed: ARP, ICMP, DNS, SSH, NTP, DHCP, BGP
and other control or interactive ports go to interactive, small UDP datagrams on RTP's usual
ports to voice, and the first ``sparse_bytes`` of any other flow to interactive (a web request, a
short exchange), the rest to bulk.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from typing import Iterable, List, Optional, Tuple

from ..wire.addr import parse_cidr, prefix_mask

VOICE, VIDEO, INTERACTIVE, BULK, BACKGROUND = "voice", "video", "interactive", "bulk", "background"
CLASSES = (VOICE, INTERACTIVE, VIDEO, BULK, BACKGROUND)

DSCP = {"cs0": 0, "default": 0, "df": 0, "le": 1, "cs1": 8, "af11": 10, "af12": 12, "af13": 14, "cs2": 16,
        "af21": 18, "af22": 20, "af23": 22, "cs3": 24, "af31": 26, "af32": 28, "af33": 30, "cs4": 32,
        "af41": 34, "af42": 36, "af43": 38, "cs5": 40, "voice-admit": 44, "ef": 46, "cs6": 48, "cs7": 56}

_RFC4594 = {VOICE: ("ef", "voice-admit", "cs5", "cs4"),
            VIDEO: ("af41", "af42", "af43", "af31", "af32", "af33", "cs3"),
            INTERACTIVE: ("af21", "af22", "af23", "cs2", "cs6", "cs7"),
            BULK: ("af11", "af12", "af13", "cs0"),
            BACKGROUND: ("le", "cs1")}
DSCP_CLASS = [BULK] * 64
for _cls, _names in _RFC4594.items():
    for _name in _names:
        DSCP_CLASS[DSCP[_name]] = _cls

# what re-marking writes: the class's first RFC 4594 codepoint (interactive: AF21, not CS6)
REMARK_DSCP = {VOICE: DSCP["ef"], VIDEO: DSCP["af41"], INTERACTIVE: DSCP["af21"], BULK: 0,
               BACKGROUND: DSCP["cs1"]}

INTERACTIVE_PORTS = frozenset((22, 23, 53, 67, 68, 123, 161, 162, 179, 853, 3389, 5060, 5061))
RTP_PORTS = (16384, 32767)
SMALL_DATAGRAM = 300  # bytes of IP datagram: a voice frame, not a video or bulk datagram
PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1}


class ClassifyError(ValueError):
    """A classification rule that cannot be understood."""


def dscp_value(value, where: str = "dscp") -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 64:
        return value
    if isinstance(value, str) and value.lower() in DSCP:
        return DSCP[value.lower()]
    raise ClassifyError(f"{where}: {value!r} is not a DSCP (0-63 or a name: ef, af41, cs1, ...)")


def _ports(value, where: str) -> Tuple[Tuple[int, int], ...]:
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        try:
            if isinstance(item, str) and "-" in item:
                low, high = (int(part) for part in item.split("-", 1))
            else:
                low = high = int(item)
        except (TypeError, ValueError):
            raise ClassifyError(f"{where}: {item!r} is not a port or a range like \"16384-32767\"") from None
        if not (0 <= low <= 65535 and 0 <= high <= 65535):
            raise ClassifyError(f"{where}: {item!r} is not within 0-65535")
        if low > high:
            raise ClassifyError(f"{where}: {item!r} runs backwards: write the lower port first ({high}-{low})")
        out.append((low, high))
    return tuple(out)


def _in(port: int, ranges) -> bool:
    for low, high in ranges:
        if low <= port <= high:
            return True
    return False


class Rule:
    """One classification rule: every field given must match; the first rule that matches
    decides.  Fields: protocol, sport, dport, port (either), src, dst (CIDR), iif, oif
    (interface names), mark ("0x10" or "0x10/0xff"), dscp (a name or a number, or a list)."""

    __slots__ = ("klass", "protocol", "sport", "dport", "port", "src", "dst", "iif", "oif", "mark", "dscp",
                 "hits")
    FIELDS = ("class", "protocol", "sport", "dport", "port", "src", "dst", "iif", "oif", "mark", "dscp")

    def __init__(self, klass: str, where: str = "rule", **fields):
        self.klass = klass
        self.hits = 0
        unknown = set(fields) - set(self.FIELDS)
        if unknown:
            raise ClassifyError(f"{where}: unknown field(s) {', '.join(sorted(unknown))} "
                                f"(fields: {', '.join(self.FIELDS)})")
        protocol = fields.get("protocol")
        if isinstance(protocol, str):
            if protocol.lower() not in PROTOCOLS:
                raise ClassifyError(f"{where}: protocol {protocol!r} is not tcp, udp, icmp or a number")
            protocol = PROTOCOLS[protocol.lower()]
        elif protocol is not None and (isinstance(protocol, bool) or not isinstance(protocol, int)
                                       or not 0 <= protocol <= 255):
            raise ClassifyError(f"{where}: protocol {protocol!r} is not tcp, udp, icmp or 0-255")
        self.protocol = protocol
        self.sport = _ports(fields["sport"], f"{where}: sport") if "sport" in fields else None
        self.dport = _ports(fields["dport"], f"{where}: dport") if "dport" in fields else None
        self.port = _ports(fields["port"], f"{where}: port") if "port" in fields else None
        self.src = self._prefix(fields.get("src"), f"{where}: src")
        self.dst = self._prefix(fields.get("dst"), f"{where}: dst")
        self.iif = fields.get("iif")
        self.oif = fields.get("oif")
        mark = fields.get("mark")
        if mark is not None:
            try:
                text = str(mark)
                value, _, mask = text.partition("/")
                mark = (int(value, 0), int(mask, 0) if mask else 0xFFFFFFFF)
            except ValueError:
                raise ClassifyError(f"{where}: mark {fields['mark']!r} is not a number or value/mask") from None
        self.mark = mark
        dscp = fields.get("dscp")
        if dscp is not None:
            dscp = frozenset(dscp_value(d, f"{where}: dscp") for d in (dscp if isinstance(dscp, list) else [dscp]))
        self.dscp = dscp

    @staticmethod
    def _prefix(value, where: str):
        if value is None:
            return None
        try:
            address, length = parse_cidr(value if "/" in str(value) else f"{value}/32")
        except (ValueError, TypeError):
            raise ClassifyError(f"{where}: {value!r} is not an address or a CIDR prefix") from None
        mask = prefix_mask(length)
        return address & mask, mask

    def matches(self, proto, src, dst, sport, dport, dscp, mark, iif, oif) -> bool:
        if self.protocol is not None and proto != self.protocol:
            return False
        if self.sport is not None and not _in(sport, self.sport):
            return False
        if self.dport is not None and not _in(dport, self.dport):
            return False
        if self.port is not None and not (_in(sport, self.port) or _in(dport, self.port)):
            return False
        if self.src is not None and src & self.src[1] != self.src[0]:
            return False
        if self.dst is not None and dst & self.dst[1] != self.dst[0]:
            return False
        if self.iif is not None and iif != self.iif:
            return False
        if self.oif is not None and oif != self.oif:
            return False
        if self.mark is not None and mark & self.mark[1] != self.mark[0]:
            return False
        return self.dscp is None or dscp in self.dscp


_IPV4 = struct.Struct("!BBH4xBB2xII")  # version/ihl, tos, total length, ttl, protocol, src, dst
_PORTS = struct.Struct("!HH").unpack_from


class Classifier:
    """``classify(frame, mark, iif, oif) -> class name``; bounded flow table for the guess."""

    def __init__(self, rules: Iterable[Rule] = (), trust_dscp: bool = True, auto: bool = True,
                 sparse_bytes: int = 65536, max_flows: int = 4096, classes: Iterable[str] = CLASSES):
        self.rules: List[Rule] = list(rules)
        self.trust_dscp = trust_dscp
        self.auto = auto
        self.sparse_bytes = sparse_bytes
        self.max_flows = max_flows
        self.classes = tuple(classes)
        self.flows: "OrderedDict[tuple, int]" = OrderedDict()  # flow -> bytes seen
        self.counts = {"rule": 0, "dscp": 0, "auto": 0}

    def classify(self, frame, mark: int = 0, iif: str = "", oif: str = "") -> str:
        if len(frame) < 34 or frame[12] != 8 or frame[13] != 0:
            self.counts["auto"] += 1
            return INTERACTIVE  # ARP and other link control
        vihl, tos, total, _ttl, proto, src, dst = _IPV4.unpack_from(frame, 14)
        sport = dport = 0
        start = 14 + (vihl & 15) * 4
        if (proto == 6 or proto == 17) and len(frame) >= start + 4 and not (frame[20] & 0x1F or frame[21]):
            sport, dport = _PORTS(frame, start)
        dscp = tos >> 2
        for rule in self.rules:
            if rule.matches(proto, src, dst, sport, dport, dscp, mark, iif, oif):
                rule.hits += 1
                self.counts["rule"] += 1
                return rule.klass
        if dscp and self.trust_dscp:
            self.counts["dscp"] += 1
            return DSCP_CLASS[dscp]
        self.counts["auto"] += 1
        if not self.auto:
            return BULK
        return self.guess(proto, src, dst, sport, dport, total)

    def guess(self, proto: int, src: int, dst: int, sport: int, dport: int, total: int) -> str:
        """The class of unmarked traffic no rule claims."""
        if proto == 1:
            return INTERACTIVE
        if proto != 6 and proto != 17:
            return BULK
        if sport in INTERACTIVE_PORTS or dport in INTERACTIVE_PORTS:
            return INTERACTIVE
        if proto == 17 and total <= SMALL_DATAGRAM and (RTP_PORTS[0] <= dport <= RTP_PORTS[1]
                                                         or RTP_PORTS[0] <= sport <= RTP_PORTS[1]):
            return VOICE
        key = (proto, src, sport, dst, dport)
        flows = self.flows
        seen = flows.get(key)
        if seen is None:
            if len(flows) >= self.max_flows:
                flows.popitem(last=False)
            seen = 0
        else:
            flows.move_to_end(key)
        flows[key] = seen + total
        return INTERACTIVE if seen < self.sparse_bytes else BULK


def set_tos(frame, tos: int):
    """``frame`` with its IPv4 TOS byte set to ``tos``, the header checksum updated incrementally
    (RFC 1624); the frame itself when it already carries it or is not IPv4."""
    if len(frame) < 34 or frame[12] != 8 or frame[13] != 0:
        return frame
    old = frame[15]
    if old == tos:
        return frame
    out = bytearray(frame)
    out[15] = tos
    old_word = (frame[14] << 8) | old
    new_word = (frame[14] << 8) | tos
    csum = (~((frame[24] << 8) | frame[25]) & 0xFFFF) + (~old_word & 0xFFFF) + new_word
    csum = (csum & 0xFFFF) + (csum >> 16)
    csum = (csum & 0xFFFF) + (csum >> 16)
    csum = ~csum & 0xFFFF
    out[24] = csum >> 8
    out[25] = csum & 0xFF
    return bytes(out)


def remark(frame, dscp: int):
    """``frame`` with its IPv4 DSCP set to ``dscp`` (the ECN bits kept)."""
    if len(frame) < 34 or frame[12] != 8 or frame[13] != 0:
        return frame
    return set_tos(frame, (dscp << 2) | (frame[15] & 3))


def class_for(name: str, known: Optional[Iterable[str]] = None, where: str = "class") -> str:
    known = tuple(known or CLASSES)
    if name not in known:
        raise ClassifyError(f"{where}: unknown class {name!r} (classes: {', '.join(known)})")
    return name
