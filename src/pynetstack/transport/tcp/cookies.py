"""SYN cookies (RFC 4987 3.6): when a listener's SYN backlog is full, the SYN-ACK's ISS encodes
what the connection needs, so the listener keeps no state until the ACK comes back.

ISS = t (5 bits, a 64 s counter) | MSS index (3 bits) | 24-bit keyed hash of the four-tuple,
t and the peer's ISN.  When the SYN carried timestamps, the low 5 bits of our TSval carry the
peer's window scale (4 bits, 15 = none) and SACK-permitted (1 bit), as Linux does.

A mixin of ``TcpLayer``.
"""

from __future__ import annotations

import struct

from ...wire.tcp import ACK, FIN, PROTO, SYN, build_options, build_tcp
from .connection import TcpConnection
from .options import rcv_wscale_for
from .seq import MASK

# SYN cookie MSS table (3 bits): the largest entry not above the peer's MSS is encoded
COOKIE_MSS = (536, 1220, 1300, 1360, 1400, 1440, 1452, 1460)
COOKIE_PERIOD = 64.0   # seconds per cookie counter tick (RFC 4987 suggests about a minute)
_key_pack = struct.Struct("!IHIH").pack


class SynCookieMixin:

    def _cookie_hash(self, local_ip, local_port, remote_ip, remote_port, t: int, peer_isn: int) -> int:
        data = _key_pack(local_ip, local_port, remote_ip, remote_port) + struct.pack("!II", t, peer_isn)
        return self._hash32(self._cookie_key, data) & 0xFFFFFF

    def _send_cookie(self, listener, local_ip, remote_ip, seg, now) -> None:
        config = listener.config
        peer_mss = seg.mss or 536
        index = 0
        for i, value in enumerate(COOKIE_MSS):
            if value <= peer_mss:
                index = i
        t = int(now // COOKIE_PERIOD) & 0x1F
        cookie = (t << 27) | (index << 24) | self._cookie_hash(local_ip, seg.dst_port, remote_ip,
                                                               seg.src_port, t, seg.seq)
        ts = None
        wscale = None
        sack = False
        if seg.ts_val is not None and config.timestamps:
            ws_bits = seg.wscale if (seg.wscale is not None and config.window_scaling) else 0xF
            sack = bool(seg.sack_permitted and config.sack)
            ts_val = (int(now * 1000.0) & ~0x1F & MASK) | ws_bits | (0x10 if sack else 0)
            ts = (ts_val, seg.ts_val)
            if ws_bits != 0xF:
                wscale = rcv_wscale_for(config.rcvbuf)
        opts = build_options(mss=self.advertised_mss(remote_ip, config), wscale=wscale,
                             sack_permitted=sack, ts=ts)
        raw = build_tcp(local_ip, remote_ip, seg.dst_port, seg.src_port, cookie, (seg.seq + 1) & MASK,
                        SYN | ACK, min(config.rcvbuf, 0xFFFF), b"", opts)
        listener.cookie_time = now
        self.counters["syncookies-sent"] += 1
        self.ip.ip_send(local_ip, remote_ip, PROTO, raw, now)

    def _cookie_ack(self, listener, local_ip, remote_ip, seg, now) -> bool:
        cookie = (seg.ack - 1) & MASK
        peer_isn = (seg.seq - 1) & MASK
        t_now = int(now // COOKIE_PERIOD)
        t = cookie >> 27
        if t not in (t_now & 0x1F, (t_now - 1) & 0x1F):
            return False
        if self._cookie_hash(local_ip, seg.dst_port, remote_ip, seg.src_port, t,
                             peer_isn) != cookie & 0xFFFFFF:
            return False
        if listener.accept_queue_full() or len(self.connections) >= self.config.max_connections:
            self.drops["listen-overflow"] += 1
            return True
        mss = COOKIE_MSS[(cookie >> 24) & 7]
        wscale = None
        sack = False
        if seg.ts_val is not None and listener.config.timestamps:
            bits = seg.ts_ecr & 0x1F
            wscale = None if (bits & 0xF) == 0xF else bits & 0xF
            sack = bool(bits & 0x10)
        key = (local_ip, seg.dst_port, remote_ip, seg.src_port)
        conn = TcpConnection(self, local_ip, seg.dst_port, remote_ip, seg.src_port, listener.config, now)
        self.connections[key] = conn
        conn.open_from_cookie(seg, seg.seq, seg.ack, mss, wscale, sack, now, listener)
        self.counters["syncookies-validated"] += 1
        listener.handshake_done(conn, now)
        if len(seg.payload) or seg.flags & FIN:
            conn.segment_arrives(seg, now)
        return True
