"""``dissect``: every field of every layer of a frame, one per line, each checksum marked valid,
invalid or offloaded (see wire/describe.py for the rules both views follow on bad input)."""

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
from .describe import (IP_OPTION_LONG_NAMES, TCP_FLAG_NAMES, TCP_OPTION_NAMES, _ethertype_name, _hex_preview,
                       _icmp_code_name, _icmp_type_name, _ip_fixed, _proto_name, _quoted, _tcp_option_text,
                       _walk_options, offloaded_checksum)
from .errors import MalformedPacket


def dissect(frame) -> str:
    """Every field of every layer, one per line; checksums marked valid or invalid."""
    out = []
    try:
        _dissect_ethernet(frame, out)
    except MalformedPacket as exc:
        out.append(f"[malformed: {exc.reason}] {exc}")
    return "\n".join(out)


def _field(out: list, name: str, value) -> None:
    out.append(f"  {name:<18} {value}")


def _valid(ok: bool) -> str:
    return "valid" if ok else "INVALID"


def _dissect_ethernet(frame, out: list) -> None:
    out.append(f"Ethernet II, {len(frame)} bytes")
    if len(frame) < _eth.HEADER_LEN:
        raise MalformedPacket("eth-truncated", f"{len(frame)} bytes, need {_eth.HEADER_LEN}")
    _field(out, "destination", mac_to_str(bytes(frame[0:6])) + _mac_kind(frame[0:6]))
    _field(out, "source", mac_to_str(bytes(frame[6:12])) + _mac_kind(frame[6:12]))
    # tags are listed from the raw bytes so the TPID of each is shown
    offset = 12
    while True:
        if len(frame) < offset + 2:
            raise MalformedPacket("eth-truncated", "no ethertype")
        tpid = int.from_bytes(frame[offset:offset + 2], "big")
        if tpid not in (_eth.ETH_VLAN, _eth.ETH_QINQ) or len(frame) < offset + 4:
            break
        tci = int.from_bytes(frame[offset + 2:offset + 4], "big")
        _field(out, f"{_ethertype_name(tpid)} tag",
               f"TPID 0x{tpid:04x}, priority {tci >> 13}, DEI {(tci >> 12) & 1}, VLAN {tci & 0xFFF}")
        offset += 4
    if tpid < 0x0600:
        _field(out, "length", f"{tpid} (IEEE 802.3 frame, not Ethernet II)")
        if len(frame) >= 17:
            _field(out, "LLC", f"dsap 0x{frame[14]:02x} ssap 0x{frame[15]:02x} ctrl 0x{frame[16]:02x}")
        _field(out, "data", f"{len(frame) - 14} bytes: {_hex_preview(frame[14:])}")
        return
    _field(out, "ethertype", f"0x{tpid:04x} ({_ethertype_name(tpid)})")
    eth = _eth.Ethernet.parse(frame)
    if eth.ethertype == _eth.ETH_ARP:
        a = _arp.Arp.parse(eth.payload)
        _dissect_arp(a, out)
        _padding(out, eth.payload[_arp.LENGTH:])
    elif eth.ethertype == _eth.ETH_IPV4:
        _dissect_ipv4(eth.payload, out)
    else:
        out.append(f"{_ethertype_name(eth.ethertype)} payload, {len(eth.payload)} bytes (not decoded)")
        _field(out, "data", _hex_preview(eth.payload))


def _mac_kind(mac) -> str:
    if bytes(mac) == b"\xff" * 6:
        return " (broadcast)"
    notes = []
    if mac[0] & 1:
        notes.append("multicast")
    if mac[0] & 2:
        notes.append("locally administered")
    return f" ({', '.join(notes)})" if notes else ""


def _padding(out: list, trailer) -> None:
    if len(trailer):
        _field(out, "padding", f"{len(trailer)} bytes" + ("" if not any(trailer) else f": {_hex_preview(trailer)}"))


def _dissect_arp(a, out: list) -> None:
    out.append(f"ARP, {_arp.LENGTH} bytes")
    _field(out, "hardware type", "1 (Ethernet)")
    _field(out, "protocol type", "0x0800 (IPv4)")
    _field(out, "hardware size", 6)
    _field(out, "protocol size", 4)
    _field(out, "opcode", f"{a.op} ({'request' if a.op == _arp.REQUEST else 'reply'})")
    _field(out, "sender MAC", mac_to_str(a.sha))
    _field(out, "sender IP", ip_to_str(a.spa))
    _field(out, "target MAC", mac_to_str(a.tha))
    _field(out, "target IP", ip_to_str(a.tpa))


def _dissect_ipv4(data, out: list) -> None:
    out.append(f"IPv4, {len(data)} bytes")
    ip = _ip.IPv4.parse(data, check=False)
    hlen = ip.header_length
    frag = int.from_bytes(data[6:8], "big")
    flags = [name for bit, name in ((0x8000, "reserved"), (_ip.FLAG_DF, "DF"), (_ip.FLAG_MF, "MF")) if frag & bit]
    _field(out, "version", 4)
    _field(out, "header length", f"{hlen} bytes (IHL {hlen // 4})")
    _field(out, "TOS", f"0x{ip.tos:02x} (DSCP {ip.tos >> 2}, ECN {ip.tos & 3})")
    _field(out, "total length", ip.total_length)
    _field(out, "identification", f"0x{ip.ident:04x} ({ip.ident})")
    _field(out, "flags", f"0x{frag >> 13:x} ({', '.join(flags) if flags else 'none'})")
    _field(out, "fragment offset", f"{ip.frag_offset} bytes")
    _field(out, "TTL", ip.ttl)
    _field(out, "protocol", f"{ip.protocol} ({_proto_name(ip.protocol)})")
    _field(out, "header checksum", f"0x{ip.checksum:04x} ({_valid(_ck.verify(data[:hlen]))})")
    _field(out, "source", ip_to_str(ip.src))
    _field(out, "destination", ip_to_str(ip.dst))
    if ip.options:
        _field(out, "options", f"{len(ip.options)} bytes")
        for kind, length, body, problem in _walk_options(ip.options):
            if kind < 0:
                _field(out, "", f"{problem}: {body.hex()}")
                continue
            name = IP_OPTION_LONG_NAMES.get(kind, "unknown")
            text = f"{kind} ({name}{', copied' if kind & 0x80 else ''})"
            if length is not None:
                text += f", length {length}"
            if problem:
                text += f" [{problem}]"
            elif kind in (7, 131, 137) and body:
                addrs = [ip_to_str(int.from_bytes(body[k:k + 4], "big")) for k in range(1, len(body) - 3, 4)]
                text += f", pointer {body[0]}: {' '.join(addrs)}"
            elif body:
                text += f": {_hex_preview(body)}"
            _field(out, "", text)
    trailer = data[ip.total_length:]
    if ip.is_fragment and ip.frag_offset:
        out.append(f"{_proto_name(ip.protocol)} fragment data, {len(ip.payload)} bytes")
        _field(out, "data", _hex_preview(ip.payload))
    else:
        fragment = ip.is_fragment
        try:
            if ip.protocol == _ip.PROTO_ICMP:
                _dissect_icmp(ip.payload, out, fragment)
            elif ip.protocol == _ip.PROTO_UDP:
                _dissect_udp(ip, out, fragment)
            elif ip.protocol == _ip.PROTO_TCP:
                _dissect_tcp(ip, out, fragment)
            else:
                out.append(f"{_proto_name(ip.protocol)} payload, {len(ip.payload)} bytes (not decoded)")
                _field(out, "data", _hex_preview(ip.payload))
        except MalformedPacket as exc:
            out.append(f"[malformed: {exc.reason}] {exc}")
            _field(out, "data", _hex_preview(ip.payload))
    _padding(out, trailer)


def _offload_text(stored: int, ip) -> str:
    return f"0x{stored:04x} (offloaded: the pseudo-header sum, for the NIC to complete)"


def _checksum_text(stored: int, ok, fragment: bool) -> str:
    if fragment:
        return f"0x{stored:04x} (not verifiable in a fragment)"
    return f"0x{stored:04x} ({_valid(ok)})"


def _dissect_icmp(data, out: list, fragment: bool) -> None:
    out.append(f"ICMP, {len(data)} bytes")
    m = _icmp.Icmp.parse(data, check=False)
    _field(out, "type", f"{m.type} ({_icmp_type_name(m.type)})")
    code = _icmp_code_name(m.type, m.code)
    _field(out, "code", f"{m.code}" + (f" ({code})" if code else ""))
    _field(out, "checksum", _checksum_text(m.checksum, _ck.verify(data), fragment))
    if m.type in (_icmp.ECHO_REQUEST, _icmp.ECHO_REPLY, 13, 14, 17, 18):
        _field(out, "identifier", m.ident)
        _field(out, "sequence", m.seq)
    elif m.type == _icmp.DEST_UNREACHABLE and m.code == _icmp.CODE_FRAG_NEEDED:
        _field(out, "unused", m.rest >> 16)
        _field(out, "next-hop MTU", m.mtu)
    elif m.type == _icmp.PARAMETER_PROBLEM:
        _field(out, "pointer", m.pointer)
    elif m.type == _icmp.REDIRECT:
        _field(out, "gateway", ip_to_str(m.rest))
    else:
        _field(out, "rest of header", f"0x{m.rest:08x}")
    if m.is_error:
        _field(out, "quoted datagram", f"{len(m.payload)} bytes: {_quoted(m.payload)}")
        q = m.payload
        if len(q) >= 20 and q[0] >> 4 == 4:
            _v, _tos, total, ident, _frag, ttl, proto, _csum, _s, _d = _ip_fixed.unpack_from(q)
            _field(out, "", f"quoted IPv4: total length {total}, id {ident}, TTL {ttl}, protocol {proto}")
    elif len(m.payload):
        _field(out, "data", f"{len(m.payload)} bytes: {_hex_preview(m.payload)}")


def _dissect_udp(ip, out: list, fragment: bool) -> None:
    data = ip.payload
    out.append(f"UDP, {len(data)} bytes")
    if fragment:
        if len(data) < _udp.HEADER_LEN:
            raise MalformedPacket("udp-truncated", f"{len(data)} bytes")
        sport, dport, length, csum = struct.unpack_from("!HHHH", data)
        _field(out, "source port", sport)
        _field(out, "destination port", dport)
        _field(out, "length", f"{length} (datagram continues in later fragments)")
        _field(out, "checksum", _checksum_text(csum, None, True))
        return
    u = _udp.Udp.parse(data, ip.src, ip.dst, check=False)
    length = _udp.HEADER_LEN + len(u.payload)
    _field(out, "source port", u.src_port)
    _field(out, "destination port", u.dst_port)
    _field(out, "length", length)
    if u.checksum == 0:
        _field(out, "checksum", "0x0000 (none: the sender computed no checksum)")
    else:
        ok = _ck.transport_verify(ip.src, ip.dst, _udp.PROTO, data[:length])
        _field(out, "checksum", _offload_text(u.checksum, ip) if not ok and offloaded_checksum(ip)
               else _checksum_text(u.checksum, ok, False))
    _field(out, "data", f"{len(u.payload)} bytes" + (f": {_hex_preview(u.payload)}" if len(u.payload) else ""))


def _dissect_tcp(ip, out: list, fragment: bool) -> None:
    data = ip.payload
    out.append(f"TCP, {len(data)} bytes")
    t = _tcp.Tcp.parse(data, ip.src, ip.dst, check=False)
    hlen = _tcp.HEADER_LEN + len(t.options)
    names = [name for bit, name in TCP_FLAG_NAMES if t.flags & bit]
    _field(out, "source port", t.src_port)
    _field(out, "destination port", t.dst_port)
    _field(out, "sequence number", t.seq)
    _field(out, "acknowledgment", t.ack if t.flags & _tcp.ACK else f"{t.ack} (ACK not set)")
    _field(out, "data offset", f"{hlen} bytes ({hlen // 4} words)")
    reserved = data[12] & 0x0F
    if reserved:
        _field(out, "reserved bits", f"0x{reserved:x}")
    _field(out, "flags", f"0x{t.flags:02x} ({', '.join(names) if names else 'none'})")
    _field(out, "window", t.window)
    ok = _ck.transport_verify(ip.src, ip.dst, _tcp.PROTO, data)
    _field(out, "checksum", _offload_text(t.checksum, ip) if not ok and not fragment and offloaded_checksum(ip)
           else _checksum_text(t.checksum, ok, fragment))
    _field(out, "urgent pointer", t.urgent)
    if t.options:
        _field(out, "options", f"{len(t.options)} bytes")
        for kind, length, body, problem in _walk_options(t.options):
            name = TCP_OPTION_NAMES.get(kind, "unknown") if kind >= 0 else "trailing"
            _field(out, "", f"{kind if kind >= 0 else '-'} ({name}): {_tcp_option_text(kind, length, body, problem)}")
    _field(out, "data", f"{len(t.payload)} bytes" + (f": {_hex_preview(t.payload)}" if len(t.payload) else ""))
