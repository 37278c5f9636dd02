"""Rewriting packets for NAT: addresses, ports and ICMP ids, with incremental checksums.

RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), is computed here in its modular form: a ones'
complement sum is the data's value modulo 0xFFFF, and a 32-bit address is congruent to the sum
of its halves, so every change of addresses and ports folds into one ``delta`` added to ~HC.

Which packets are rewritten follows Linux (nf_nat_packet): the destination is manipulated at
PREROUTING and OUTPUT, the source at POSTROUTING and INPUT; a packet is rewritten to look like
the inverse of the other direction's tuple.  In the reply direction the roles swap: an SNATed
connection's replies get their destination restored at PREROUTING.
"""

from __future__ import annotations

from ..wire.checksum import internet_checksum
from .conntrack import ICMP_RELATED_ERRORS, S_DST_NAT, S_SRC_NAT

MANIP_SRC = 0
MANIP_DST = 1
HOOK_MANIP = {"prerouting": MANIP_DST, "output": MANIP_DST, "postrouting": MANIP_SRC, "input": MANIP_SRC,
              "forward": None}
_NAT_BITS = S_SRC_NAT | S_DST_NAT
_from_bytes = int.from_bytes


class NatHookError(ValueError):
    """An unknown hook name was given to translate()."""


def adjust(checksum: int, delta: int) -> int:
    """The checksum after the covered data's word sum grew by ``delta`` (mod 0xFFFF)."""
    s = ((~checksum & 0xFFFF) + delta) % 0xFFFF
    return 0xFFFF - s if s else 0  # s == 0 is a sum of 0xFFFF ("negative zero"): checksum 0


def writable(ip):
    """The payload as something that can be written in place (copying it once if needed)."""
    buf = ip.payload
    t = type(buf)
    if t is bytearray:
        return buf
    if t is memoryview and not buf.readonly:
        return buf
    buf = bytearray(buf)
    ip.payload = buf
    return buf


def translate(ip, entry, direction: int, hook: str):
    """Rewrite ``ip`` in place for ``entry`` at ``hook``; returns ``ip``."""
    try:
        manip = HOOK_MANIP[hook]
    except KeyError:
        raise NatHookError(f"unknown hook {hook!r}: use prerouting, input, forward, output or postrouting") from None
    if manip is None:
        return ip
    bit = S_SRC_NAT if manip == MANIP_SRC else S_DST_NAT
    if direction:
        bit ^= _NAT_BITS
    if not entry.status & bit:
        return ip
    other = entry.original if direction else entry.reply  # the tuple of the other direction
    proto = ip.protocol
    if proto == 1 and len(ip.payload) >= 8 and ip.payload[0] in ICMP_RELATED_ERRORS:
        return _icmp_error(ip, other, manip)
    if manip == MANIP_SRC:
        new_addr = other[3]
        new_port = other[4]
        old_addr = ip.src
        ip.src = new_addr
        port_at = 0
    else:
        new_addr = other[1]
        new_port = other[2]
        old_addr = ip.dst
        ip.dst = new_addr
        port_at = 2
    delta = (new_addr - old_addr) % 0xFFFF
    if delta and ip.checksum:
        ip.checksum = adjust(ip.checksum, delta)
    if proto == 6 or proto == 17:
        csum_at = 16 if proto == 6 else 6
        if len(ip.payload) < csum_at + 2:
            return ip
        buf = writable(ip)
        old_port = (buf[port_at] << 8) | buf[port_at + 1]
        if old_port != new_port:
            buf[port_at] = new_port >> 8
            buf[port_at + 1] = new_port & 0xFF
            delta += new_port - old_port
        csum = (buf[csum_at] << 8) | buf[csum_at + 1]
        if proto == 17 and not csum:
            return ip  # RFC 768: no checksum stays no checksum
        csum = adjust(csum, delta)
        if proto == 17 and not csum:
            csum = 0xFFFF  # 0 would say "no checksum"
        buf[csum_at] = csum >> 8
        buf[csum_at + 1] = csum & 0xFF
    elif proto == 1 and len(ip.payload) >= 8:
        # a query's id, which its tuples keep where the source port is (ct_icmp.py); the ICMP
        # checksum has no pseudo-header, so only the id's change goes into it
        new_id = other[2]
        buf = ip.payload
        old_id = (buf[4] << 8) | buf[5]
        if old_id != new_id:
            buf = writable(ip)
            buf[4] = new_id >> 8
            buf[5] = new_id & 0xFF
            csum = adjust((buf[2] << 8) | buf[3], new_id - old_id)
            buf[2] = csum >> 8
            buf[3] = csum & 0xFF
    return ip


def _icmp_error(ip, other, manip: int):
    """An ICMP error RELATED to a NATed connection (Linux's nf_nat_icmp_reply_translation).

    The quoted datagram travelled the other way, so it gets the opposite manipulation with the
    other direction's tuple as it is; the outer header gets this hook's manipulation.  As in
    Linux the quoted IP checksum is updated, the quoted UDP checksum too (it is within the 8
    bytes an error must quote), the quoted TCP checksum only when the whole 20-byte header is
    quoted, the quoted ICMP query checksum for its id; then the error's own checksum is
    recomputed over the message.  The rest-of-header word is left alone.
    """
    buf = writable(ip)
    ihl = (buf[8] & 0x0F) << 2
    l4 = 8 + ihl
    avail = len(buf) - l4
    inner_proto = buf[17]
    if manip == MANIP_DST:  # the quote's source is restored
        addr_at, port_at, new_addr, new_port = 20, l4, other[1], other[2]
    else:
        addr_at, port_at, new_addr, new_port = 24, l4 + 2, other[3], other[4]
    old_addr = _from_bytes(buf[addr_at:addr_at + 4], "big")
    buf[addr_at:addr_at + 4] = new_addr.to_bytes(4, "big")
    delta = (new_addr - old_addr) % 0xFFFF
    csum = adjust((buf[18] << 8) | buf[19], delta)
    buf[18] = csum >> 8
    buf[19] = csum & 0xFF
    if (inner_proto == 6 or inner_proto == 17) and avail >= 4:
        old_port = (buf[port_at] << 8) | buf[port_at + 1]
        buf[port_at] = new_port >> 8
        buf[port_at + 1] = new_port & 0xFF
        csum_at = l4 + (16 if inner_proto == 6 else 6)
        if avail >= (20 if inner_proto == 6 else 8):
            csum = (buf[csum_at] << 8) | buf[csum_at + 1]
            if inner_proto == 6 or csum:
                csum = adjust(csum, delta + new_port - old_port)
                if inner_proto == 17 and not csum:
                    csum = 0xFFFF
                buf[csum_at] = csum >> 8
                buf[csum_at + 1] = csum & 0xFF
    elif inner_proto == 1 and avail >= 8:
        new_id = other[2]  # in either manipulation: the id is where an ICMP tuple's source port is
        old_id = (buf[l4 + 4] << 8) | buf[l4 + 5]
        buf[l4 + 4] = new_id >> 8
        buf[l4 + 5] = new_id & 0xFF
        csum = adjust((buf[l4 + 2] << 8) | buf[l4 + 3], new_id - old_id)
        buf[l4 + 2] = csum >> 8
        buf[l4 + 3] = csum & 0xFF
    # the outer header: look like the reply to what the quote's sender sent
    if manip == MANIP_SRC:
        old_addr, ip.src = ip.src, other[3]
        new_addr = other[3]
    else:
        old_addr, ip.dst = ip.dst, other[1]
        new_addr = other[1]
    if ip.checksum:
        ip.checksum = adjust(ip.checksum, (new_addr - old_addr) % 0xFFFF)
    buf[2] = buf[3] = 0
    csum = internet_checksum(buf)
    buf[2] = csum >> 8
    buf[3] = csum & 0xFF
    return ip
