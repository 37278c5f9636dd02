"""Human-readable views of a frame: a one-line ``summary`` (like tcpdump), here, and a
layer-by-layer ``dissect`` listing every field (wire/dissect.py, which shares the names and
option walkers of this module), with checksums shown as valid or invalid.

Neither function raises on bad input: a frame our parsers refuse is shown up to the layer that
failed, followed by ``[malformed: reason]`` with the parser's own drop reason.  Checksums are not
a reason to stop here: ``summary`` decodes a TCP or UDP segment with a bad checksum anyway (as
tcpdump does) and marks it ``[malformed: tcp-bad-checksum]``, what the stack would drop it for;
a checksum left unfinished by checksum offload (the frame was captured on its way to the NIC,
the field holds only the pseudo-header's sum) is not flagged at all.  ``dissect`` decodes every
layer and marks each checksum valid, invalid or offloaded.
"""

from __future__ import annotations

import struct

from . import arp as _arp
from . import checksum as _ck
from . import ethernet as _eth
from . import icmp as _icmp
from . import ipv4 as _ip
from . import tcp as _tcp
from . import udp as _udp
from .addr import ip_to_str, mac_to_str
from .errors import MalformedPacket

ETHERTYPE_NAMES = {
    _eth.ETH_IPV4: "IPv4", _eth.ETH_ARP: "ARP", _eth.ETH_VLAN: "802.1Q", _eth.ETH_QINQ: "802.1ad",
    _eth.ETH_IPV6: "IPv6", 0x0842: "Wake-on-LAN", 0x8035: "RARP", 0x8809: "Slow Protocols (LACP)",
    0x8847: "MPLS unicast", 0x8848: "MPLS multicast", 0x8863: "PPPoE discovery", 0x8864: "PPPoE session",
    0x888E: "EAPOL (802.1X)", 0x88CC: "LLDP", 0x88E5: "MACsec", 0x88F7: "PTP", 0x9000: "Loopback",
    0x88B5: "local experimental", 0x88B6: "local experimental",
}
IP_PROTO_NAMES = {
    1: "ICMP", 2: "IGMP", 4: "IPIP", 6: "TCP", 17: "UDP", 41: "IPv6", 47: "GRE", 50: "ESP", 51: "AH",
    58: "ICMPv6", 89: "OSPF", 103: "PIM", 112: "VRRP", 132: "SCTP",
}
IP_OPTION_NAMES = {
    0: "eol", 1: "nop", 7: "rr", 68: "ts", 130: "security", 131: "lsrr", 136: "satid", 137: "ssrr",
    82: "traceroute", 148: "ra",
}
IP_OPTION_LONG_NAMES = {
    0: "end of option list", 1: "no-operation", 7: "record route", 68: "timestamp", 130: "security",
    131: "loose source route", 136: "stream identifier", 137: "strict source route",
    82: "traceroute", 148: "router alert",
}
TCP_OPTION_NAMES = {
    0: "end of option list", 1: "no-operation", 2: "maximum segment size", 3: "window scale",
    4: "SACK permitted", 5: "SACK", 8: "timestamps", 19: "MD5 signature", 28: "user timeout",
    29: "TCP-AO", 30: "multipath TCP", 34: "fast open cookie",
}
TIME_EXCEEDED_CODES = {0: "TTL exceeded in transit", 1: "fragment reassembly time exceeded"}
REDIRECT_CODES = {0: "for network", 1: "for host", 2: "for TOS and network", 3: "for TOS and host"}
PARAMETER_PROBLEM_CODES = {0: "pointer indicates the error", 1: "missing a required option", 2: "bad length"}
ICMP_EXTRA_TYPES = {9: "router advertisement", 10: "router solicitation", 13: "timestamp request",
                    14: "timestamp reply", 17: "address mask request", 18: "address mask reply"}
TCP_FLAG_NAMES = ((_tcp.CWR, "CWR"), (_tcp.ECE, "ECE"), (_tcp.URG, "URG"), (_tcp.ACK, "ACK"),
                  (_tcp.PSH, "PSH"), (_tcp.RST, "RST"), (_tcp.SYN, "SYN"), (_tcp.FIN, "FIN"))
HEX_PREVIEW = 32

_ports = struct.Struct("!HH")
_ip_fixed = struct.Struct("!BBHHHBBHII")


def _ethertype_name(ethertype: int) -> str:
    return ETHERTYPE_NAMES.get(ethertype, "unknown")


def _proto_name(proto: int) -> str:
    return IP_PROTO_NAMES.get(proto, f"ip-proto-{proto}")


def _icmp_type_name(type_: int) -> str:
    return _icmp.TYPE_NAMES.get(type_) or ICMP_EXTRA_TYPES.get(type_) or f"type {type_}"


def _icmp_code_name(type_: int, code: int) -> str:
    table = {_icmp.DEST_UNREACHABLE: _icmp.UNREACH_CODES, _icmp.TIME_EXCEEDED: TIME_EXCEEDED_CODES,
             _icmp.REDIRECT: REDIRECT_CODES, _icmp.PARAMETER_PROBLEM: PARAMETER_PROBLEM_CODES}.get(type_)
    if table is None:
        return "" if code == 0 else f"code {code}"
    return table.get(code, f"code {code}")


def _tci(tci: int) -> str:
    return f"vlan {tci & 0xFFF}, p {tci >> 13}" + (", DEI" if tci & 0x1000 else "")


def _hex_preview(data) -> str:
    data = bytes(data)
    text = data[:HEX_PREVIEW].hex()
    return text + ("..." if len(data) > HEX_PREVIEW else "")


# -- option walkers (tolerant: they describe what is there, even when it is wrong) ---------------

def _walk_options(options) -> list:
    """[(kind, length or None, data bytes, problem or None)] for an IPv4/TCP option list."""
    out = []
    i, n = 0, len(options)
    while i < n:
        kind = options[i]
        if kind in (0, 1):
            out.append((kind, None, b"", None))
            i += 1
            if kind == 0:
                if any(options[i:]):
                    out.append((-1, None, bytes(options[i:]), "non-zero bytes after end of list"))
                break
            continue
        if i + 1 >= n:
            out.append((kind, None, b"", "no length byte"))
            break
        length = options[i + 1]
        if length < 2 or i + length > n:
            out.append((kind, length, bytes(options[i + 2:n]), f"bad length {length}"))
            break
        out.append((kind, length, bytes(options[i + 2:i + length]), None))
        i += length
    return out


def _ip_options_short(options) -> str:
    parts = []
    for kind, length, _data, problem in _walk_options(options):
        if kind < 0:
            continue
        name = IP_OPTION_NAMES.get(kind, f"opt-{kind}")
        parts.append(name + (f" {length}" if length is not None and kind not in (0, 1) else "")
                     + (f" [{problem}]" if problem else ""))
    return ",".join(parts)


def _tcp_option_text(kind: int, length, data: bytes, problem) -> str:
    if problem:
        return f"opt-{kind} [{problem}]" if kind >= 0 else f"[{problem}]"
    if kind == 0:
        return "eol"
    if kind == 1:
        return "nop"
    if kind == _tcp.OPT_MSS and len(data) == 2:
        return f"mss {int.from_bytes(data, 'big')}"
    if kind == _tcp.OPT_WSCALE and len(data) == 1:
        return f"wscale {data[0]}"
    if kind == _tcp.OPT_SACK_PERMITTED and not data:
        return "sackOK"
    if kind == _tcp.OPT_SACK and data and len(data) % 8 == 0:
        blocks = struct.unpack(f"!{len(data) // 4}I", data)
        return f"sack {len(data) // 8} " + " ".join(
            f"{{{blocks[k]}:{blocks[k + 1]}}}" for k in range(0, len(blocks), 2))
    if kind == _tcp.OPT_TIMESTAMPS and len(data) == 8:
        val, ecr = struct.unpack("!II", data)
        return f"TS val {val} ecr {ecr}"
    return f"opt-{kind} len {length}" + (f" 0x{data.hex()}" if data else "")


def _tcp_options_short(options) -> str:
    return ",".join(_tcp_option_text(*opt) for opt in _walk_options(options))


def _quoted(data) -> str:
    """'10.0.0.1 > 10.0.0.2 UDP 1 > 2' for the datagram an ICMP error quotes (often truncated)."""
    if len(data) < 20 or data[0] >> 4 != 4:
        return f"{len(data)} bytes quoted"
    _v, _tos, _total, _id, _frag, _ttl, proto, _csum, src, dst = _ip_fixed.unpack_from(data)
    hlen = (data[0] & 0x0F) * 4
    text = f"{ip_to_str(src)} > {ip_to_str(dst)} {_proto_name(proto)}"
    if proto in (_ip.PROTO_UDP, _ip.PROTO_TCP) and hlen >= 20 and len(data) >= hlen + 4:
        sport, dport = _ports.unpack_from(data, hlen)
        text += f" {sport} > {dport}"
    elif proto == _ip.PROTO_ICMP and hlen >= 20 and len(data) >= hlen + 8:
        t, _c, _s, ident, seq = struct.unpack_from("!BBHHH", data, hlen)
        text += f" {_icmp_type_name(t)}"
        if t in (_icmp.ECHO_REQUEST, _icmp.ECHO_REPLY):
            text += f" id {ident} seq {seq}"
    return text


# -- summary -------------------------------------------------------------------------------------

def summary(frame) -> str:
    """One line: MACs, VLAN tags, then the network and transport layers, like tcpdump -e."""
    if len(frame) < _eth.HEADER_LEN:
        return f"[malformed: eth-truncated] ({len(frame)} bytes)"
    head = f"{mac_to_str(bytes(frame[6:12]))} > {mac_to_str(bytes(frame[0:6]))}, "
    try:
        eth = _eth.Ethernet.parse(frame)
    except MalformedPacket as exc:
        if exc.reason == "eth-not-ethernet-ii":
            return head + _ieee8023(frame)
        return head + f"[malformed: {exc.reason}]"
    for tci in eth.vlans:
        head += _tci(tci) + ", "
    try:
        if eth.ethertype == _eth.ETH_ARP:
            return head + _arp_summary(_arp.Arp.parse(eth.payload))
        if eth.ethertype == _eth.ETH_IPV4:
            return head + _ipv4_summary(eth.payload)
    except MalformedPacket as exc:
        return head + f"[malformed: {exc.reason}]"
    name = ETHERTYPE_NAMES.get(eth.ethertype)
    label = f"ethertype 0x{eth.ethertype:04x}" + (f" ({name})" if name else " (unknown)")
    return head + f"{label}, length {len(eth.payload)}"


def _ieee8023(frame) -> str:
    length = int.from_bytes(frame[12:14], "big")
    text = f"802.3 length {length}"
    if len(frame) >= 17:
        dsap, ssap, ctrl = frame[14], frame[15], frame[16]
        text += f", LLC dsap 0x{dsap:02x} ssap 0x{ssap:02x} ctrl 0x{ctrl:02x}"
        if dsap == 0x42 and ssap == 0x42:
            text += " (STP)"
    return text


def _arp_summary(a) -> str:
    if a.op == _arp.REQUEST:
        text = f"ARP who-has {ip_to_str(a.tpa)} tell {ip_to_str(a.spa)}"
        if a.spa == a.tpa:
            text += " (gratuitous)"
        return text
    text = f"ARP {ip_to_str(a.spa)} is-at {mac_to_str(a.sha)}"
    if a.spa == a.tpa:
        text += " (gratuitous)"
    return text


def _ipv4_summary(data) -> str:
    ip = _ip.IPv4.parse(data)
    text = f"IPv4 {ip_to_str(ip.src)} > {ip_to_str(ip.dst)}: "
    notes = ""
    if ip.options:
        notes += f" [IP options {_ip_options_short(ip.options)}]"
    if ip.is_fragment:
        notes += f" [fragment id {ip.ident} offset {ip.frag_offset}{', more' if ip.mf else ''}]"
        if ip.frag_offset:
            return text + f"{_proto_name(ip.protocol)} fragment, length {len(ip.payload)}" + notes
        return text + _first_fragment(ip) + notes
    try:
        return text + _transport_summary(ip) + notes
    except MalformedPacket as exc:
        return text + f"{_proto_name(ip.protocol)} [malformed: {exc.reason}]" + notes


def _first_fragment(ip) -> str:
    """The start of a fragmented datagram: headers are there, checksums cannot be checked yet."""
    payload = ip.payload
    proto = ip.protocol
    if proto in (_ip.PROTO_UDP, _ip.PROTO_TCP) and len(payload) >= 4:
        sport, dport = _ports.unpack_from(payload)
        return f"{_proto_name(proto)} {sport} > {dport}, length {len(payload)}"
    if proto == _ip.PROTO_ICMP and len(payload) >= 8:
        m = _icmp.Icmp.parse(payload, check=False)
        return _icmp_summary(m, len(payload))
    return f"{_proto_name(proto)}, length {len(payload)}"


def offloaded_checksum(ip) -> bool:
    """True when the TCP/UDP checksum of ``ip`` holds just the folded pseudo-header sum: Linux
    leaves it so for the NIC to finish (CHECKSUM_PARTIAL), and a capture sees it that way."""
    payload = ip.payload
    if len(payload) < (18 if ip.protocol == _ip.PROTO_TCP else 8):
        return False
    stored = int.from_bytes(payload[16:18] if ip.protocol == _ip.PROTO_TCP else payload[6:8], "big")
    folded = _ck.pseudo_header_sum(ip.src, ip.dst, ip.protocol, len(payload)) % 0xFFFF or 0xFFFF
    return stored in (folded, ~folded & 0xFFFF)


def _transport_summary(ip) -> str:
    try:
        return _transport_text(ip, True)
    except MalformedPacket as exc:
        if exc.reason not in ("tcp-bad-checksum", "udp-bad-checksum"):
            raise
        text = _transport_text(ip, False)
        return text if offloaded_checksum(ip) else text + f" [malformed: {exc.reason}]"


def _transport_text(ip, check: bool) -> str:
    proto = ip.protocol
    if proto == _ip.PROTO_ICMP:
        return _icmp_summary(_icmp.Icmp.parse(ip.payload), len(ip.payload))
    if proto == _ip.PROTO_UDP:
        u = _udp.Udp.parse(ip.payload, ip.src, ip.dst, check=check)
        return f"UDP {u.src_port} > {u.dst_port}, length {len(u.payload)}"
    if proto == _ip.PROTO_TCP:
        t = _tcp.Tcp.parse(ip.payload, ip.src, ip.dst, check)
        text = f"TCP {t.src_port} > {t.dst_port}: Flags [{_tcp.flags_to_str(t.flags)}], seq {t.seq}"
        if t.flags & _tcp.ACK:
            text += f", ack {t.ack}"
        text += f", win {t.window}"
        if t.flags & _tcp.URG:
            text += f", urg {t.urgent}"
        if t.options:
            text += f", options [{_tcp_options_short(t.options)}]"
        return text + f", length {len(t.payload)}"
    return f"{_proto_name(proto)}, length {len(ip.payload)}"


def _icmp_summary(m, length: int) -> str:
    name = _icmp_type_name(m.type)
    if m.type in (_icmp.ECHO_REQUEST, _icmp.ECHO_REPLY):
        return f"ICMP {name} id {m.ident} seq {m.seq}, length {length}"
    code = _icmp_code_name(m.type, m.code)
    detail = code
    if m.type == _icmp.DEST_UNREACHABLE and m.code == _icmp.CODE_FRAG_NEEDED:
        detail += f", mtu {m.mtu}"
    elif m.type == _icmp.PARAMETER_PROBLEM:
        detail += f", pointer {m.pointer}"
    elif m.type == _icmp.REDIRECT:
        detail += f", gateway {ip_to_str(m.rest)}"
    text = f"ICMP {name}" + (f" ({detail})" if detail else "")
    if m.is_error:
        text += f" for {_quoted(m.payload)}"
    return text + f", length {length}"


# -- dissect -------------------------------------------------------------------------------------
