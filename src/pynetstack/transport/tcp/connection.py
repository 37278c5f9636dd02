"""One TCP connection: the RFC 9293 state machine, sans-I/O.

A connection is driven by three entry points, each given ``now``: ``segment_arrives`` (a
parsed ``wire.tcp.Tcp``), ``on_timer`` (when ``deadline`` has passed) and the user calls
(``send``, ``recv``, ``shutdown``, ``close``, ``abort``).  It emits segments through its layer
(``layer.output``) and tells the application what happened through ``on_event(conn, kind)``
with kind in "connected", "readable", "writable", "closed".

Sequence numbers are unwrapped ints (see ``seq.py``): ``wire & 0xFFFFFFFF`` on output, and
``unwrap`` against RCV.NXT / SND.UNA on input.
"""

from __future__ import annotations

import struct

from ...wire.tcp import (ACK, FIN, PSH, RST, SYN, build_options, build_tcp, sack_option, timestamp_option)
from . import congestion
from .sack import ReorderQueue, Scoreboard
from .seq import HALF, MASK

CLOSED = "CLOSED"
LISTEN = "LISTEN"
SYN_SENT = "SYN-SENT"
SYN_RECEIVED = "SYN-RECEIVED"
ESTABLISHED = "ESTABLISHED"
FIN_WAIT_1 = "FIN-WAIT-1"
FIN_WAIT_2 = "FIN-WAIT-2"
CLOSE_WAIT = "CLOSE-WAIT"
CLOSING = "CLOSING"
LAST_ACK = "LAST-ACK"
TIME_WAIT = "TIME-WAIT"
STATES = (CLOSED, LISTEN, SYN_SENT, SYN_RECEIVED, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT,
          CLOSING, LAST_ACK, TIME_WAIT)

_SYNCHRONIZED = frozenset((ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT))
_CAN_SEND_DATA = frozenset((ESTABLISHED, CLOSE_WAIT, FIN_WAIT_1, CLOSING, LAST_ACK))
_RECEIVES_DATA = frozenset((ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2))
_USER_CAN_SEND = frozenset((SYN_SENT, SYN_RECEIVED, ESTABLISHED, CLOSE_WAIT))

DEFAULT_PEER_MSS = 536      # RFC 9293 3.7.1, when the SYN carries no MSS option
TS_OPTION_LEN = 12
PAWS_IDLE = 24 * 86400.0    # RFC 7323 5.5: ts_recent is invalid after 24 days idle
G = 0.001                   # clock granularity for RFC 6298
GSO_HEADROOM = 80           # IPv4 header + the largest TCP header, below the offload limit
STRETCH_ACK_SEGMENTS = 8      # a batch's stretch ACK covers at most this many full segments
PROTO_TCP = 6

_hdr_pack = struct.Struct("!HHIIBBHHH").pack
_ts_hdr_pack = struct.Struct("!HHIIBBHHH4sII").pack   # the header with NOP NOP TS, in one piece
_TS_PREFIX = b"\x01\x01\x08\x0a"
_TS_PREFIX_SUM = 0x0101 + 0x080A
_from_bytes = int.from_bytes
# Ethernet + IPv4 (as net/host.py's OutputPath template) + TCP with NOP NOP TS: a whole frame header
_frame_pack = struct.Struct("!16sHH4sH8sHHIIBBHHH4sII").pack


class TcpConnection:
    __slots__ = (
        "layer", "config", "local_ip", "local_port", "remote_ip", "remote_port", "key", "state",
        "passive", "listener", "on_event", "error", "soft_error", "log", "user_closed",
        # send side
        "iss", "snd_una", "snd_nxt", "snd_max", "snd_wnd", "snd_wl1", "snd_wl2", "max_snd_wnd",
        "snd_buf", "snd_buf_seq", "fin_queued", "snd_wscale", "mss", "peer_mss",
        # receive side
        "irs", "rcv_nxt", "rcv_adv", "rcv_buf", "rcv_wscale", "adv_mss", "rcv_mss", "reorder",
        "fin_received", "ack_pending", "ack_now", "last_ack_sent",
        # options
        "ts_ok", "ts_offset", "ts_recent", "ts_recent_age", "sack_ok", "ws_ok",
        # RTT / RTO (RFC 6298)
        "srtt", "rttvar", "rto", "backoff", "rtt_seq", "rtt_time", "rexmit_count", "first_rexmit",
        "rexmit_ts",
        # congestion / recovery
        "cc", "dupacks", "in_recovery", "recover", "scoreboard", "high_rxt",
        # timers (absolute times or None)
        "t_rexmit", "t_persist", "t_delack", "t_keep", "t_2msl", "persist_backoff",
        "keep_probes", "last_recv", "deadline", "_sched", "deferred", "gso", "path", "csum_base",
        # statistics
        "segs_in", "segs_out", "bytes_acked", "bytes_received", "retransmits", "fast_retransmits",
        "timeouts", "dup_segments", "ooo_segments",
    )

    def __init__(self, layer, local_ip, local_port, remote_ip, remote_port, config, now):
        self.layer = layer
        self.config = config
        self.local_ip = local_ip
        self.local_port = local_port
        self.remote_ip = remote_ip
        self.remote_port = remote_port
        self.key = (local_ip, local_port, remote_ip, remote_port)
        self.state = CLOSED
        self.passive = False
        self.listener = None
        self.on_event = None
        self.error = None
        self.soft_error = None
        self.log = []
        self.user_closed = False
        self.iss = 0
        self.snd_una = self.snd_nxt = self.snd_max = 0
        self.snd_wnd = 0
        self.snd_wl1 = self.snd_wl2 = 0
        self.max_snd_wnd = 0
        self.snd_buf = bytearray()
        self.snd_buf_seq = 0
        self.fin_queued = False
        self.snd_wscale = 0
        self.adv_mss = layer.advertised_mss(remote_ip, config)
        self.peer_mss = DEFAULT_PEER_MSS
        self.mss = min(DEFAULT_PEER_MSS, self.adv_mss)
        self.irs = 0
        self.rcv_nxt = 0
        self.rcv_adv = 0
        self.rcv_buf = bytearray()
        self.rcv_wscale = 0
        self.rcv_mss = self.adv_mss
        self.reorder = None
        self.fin_received = False
        self.ack_pending = 0
        self.ack_now = False
        self.last_ack_sent = 0
        self.ts_ok = False
        self.ts_offset = 0
        self.ts_recent = None
        self.ts_recent_age = now
        self.sack_ok = False
        self.ws_ok = False
        self.srtt = None
        self.rttvar = 0.0
        self.rto = config.rto_initial
        self.backoff = 0
        self.rtt_seq = None
        self.rtt_time = 0.0
        self.rexmit_count = 0
        self.first_rexmit = None
        self.rexmit_ts = None
        self.cc = None
        self.dupacks = 0
        self.in_recovery = False
        self.recover = 0
        self.scoreboard = None
        self.high_rxt = 0
        self.t_rexmit = self.t_persist = self.t_delack = self.t_keep = self.t_2msl = None
        self.persist_backoff = 0
        self.keep_probes = 0
        self.last_recv = now
        self.deadline = None
        self._sched = None
        self.deferred = False
        self.gso = 0  # payload bytes per segment with segmentation offload at the last output
        self.path = None  # the IP layer's cached OutputPath for this flow (made on first send)
        # the constant part of the checksum: pseudo-header addresses and protocol, our ports
        # (a 32-bit value is congruent to the sum of its 16-bit halves modulo 0xFFFF)
        self.csum_base = local_ip + remote_ip + PROTO_TCP + local_port + remote_port
        self.segs_in = self.segs_out = 0
        self.bytes_acked = self.bytes_received = 0
        self.retransmits = self.fast_retransmits = self.timeouts = 0
        self.dup_segments = self.ooo_segments = 0

    def __repr__(self):
        return f"<TcpConnection {self.name()} {self.state}>"

    def name(self) -> str:
        from ...wire.addr import ip_to_str
        return (f"{ip_to_str(self.local_ip)}:{self.local_port}-"
                f"{ip_to_str(self.remote_ip)}:{self.remote_port}")

    # == state, events, timers ===================================================================

    def _set_state(self, new: str, now: float, why: str) -> None:
        old = self.state
        if old == new:
            return
        self.state = new
        log = self.log
        log.append((now, old, new, why))
        if len(log) > self.layer.config.event_log_size:
            del log[0]
        self.layer.state_changed(self, old, new, why, now)

    def _notify(self, kind: str) -> None:
        # Delivered by the layer once the current segment/timer is fully processed, so an
        # application callback that sends or closes never re-enters a half-done transition.
        if self.on_event is not None:
            self.layer.post_event(self, kind)

    def _update_deadline(self) -> None:
        d = self.t_rexmit
        for t in (self.t_persist, self.t_delack, self.t_keep, self.t_2msl):
            if t is not None and (d is None or t < d):
                d = t
        self.deadline = d
        if d is not None and d != self._sched:
            self.layer.schedule(self, d)

    def _ts_now(self, now: float) -> int:
        return (int(now * 1000.0) + self.ts_offset) & MASK

    # == opening =================================================================================

    def _init_send(self, iss: int) -> None:
        self.iss = iss
        self.snd_una = self.snd_nxt = self.snd_max = iss
        self.snd_buf_seq = iss + 1

    def _choose_rcv_wscale(self) -> int:
        shift = 0
        size = self.config.rcvbuf
        while (size >> shift) > 0xFFFF and shift < 14:
            shift += 1
        return shift

    def open_active(self, iss: int, now: float) -> None:
        """Active OPEN: send a SYN, enter SYN-SENT."""
        cfg = self.config
        self._init_send(iss)
        self.ts_offset = self.layer.ts_offset(self.key)
        self.rcv_wscale = self._choose_rcv_wscale() if cfg.window_scaling else 0
        self._set_state(SYN_SENT, now, "active open")
        self._send_syn(now)
        self.snd_nxt = self.snd_max = iss + 1
        self.t_rexmit = now + self.rto
        self.first_rexmit = now
        self._update_deadline()

    def open_passive(self, seg, seq: int, listener, iss: int, now: float) -> None:
        """A SYN reached a listener: answer SYN-ACK, enter SYN-RECEIVED."""
        self.passive = True
        self.listener = listener
        self._init_send(iss)
        self.ts_offset = self.layer.ts_offset(self.key)
        self.irs = seq
        self.rcv_nxt = seq + 1
        self.last_ack_sent = self.rcv_nxt
        self.rcv_adv = self.rcv_nxt + min(self.config.rcvbuf, 0xFFFF)
        self._negotiate(seg, now, offered=True)
        self.snd_wnd = seg.window  # never scaled in a SYN
        self.snd_wl1 = seq
        self.snd_wl2 = iss
        self.max_snd_wnd = seg.window
        self._set_state(LISTEN, now, "listener")
        self._set_state(SYN_RECEIVED, now, "SYN received")
        self._send_syn(now)
        self.snd_nxt = self.snd_max = iss + 1
        self.t_rexmit = now + self.rto
        self.first_rexmit = now
        self._update_deadline()

    def open_from_cookie(self, seg, seq: int, ack: int, mss: int, wscale, sack: bool, now: float,
                         listener) -> None:
        """The ACK completing a SYN-cookie handshake: go straight to ESTABLISHED."""
        cfg = self.config
        self.passive = True
        self.listener = listener
        self._init_send(ack - 1)
        self.snd_una = self.snd_nxt = self.snd_max = ack
        self.irs = seq - 1
        self.rcv_nxt = seq
        self.last_ack_sent = seq
        self.ts_offset = self.layer.ts_offset(self.key)
        self.peer_mss = mss
        if wscale is not None and cfg.window_scaling:
            self.ws_ok = True
            self.snd_wscale = wscale
            self.rcv_wscale = self._choose_rcv_wscale()
        if seg.ts_val is not None and cfg.timestamps:
            self.ts_ok = True
            self.ts_recent = seg.ts_val
            self.ts_recent_age = now
            # the cookie's timestamps were sent with offset 0: keep the peer's view monotonic
            self.ts_offset = (seg.ts_ecr - int(now * 1000.0)) & MASK
        self.sack_ok = sack and cfg.sack
        self._finish_negotiation()
        self.rcv_adv = self.rcv_nxt + min(cfg.rcvbuf, 0xFFFF << self.rcv_wscale)
        self.snd_wnd = seg.window << self.snd_wscale
        self.snd_wl1 = seq
        self.snd_wl2 = ack
        self.max_snd_wnd = self.snd_wnd
        self._set_state(LISTEN, now, "listener")
        self._set_state(ESTABLISHED, now, "SYN cookie ACK")
        self.last_recv = now
        self._arm_keepalive(now)

    def _negotiate(self, seg, now: float, offered: bool) -> None:
        """Take the peer's SYN options. ``offered``: the peer's SYN came first (we answer)."""
        cfg = self.config
        self.peer_mss = seg.mss if seg.mss else DEFAULT_PEER_MSS
        if seg.wscale is not None and cfg.window_scaling:
            self.ws_ok = True
            self.snd_wscale = seg.wscale
            if offered:
                self.rcv_wscale = self._choose_rcv_wscale()
        else:
            self.ws_ok = False
            self.snd_wscale = 0
            self.rcv_wscale = 0
        if seg.ts_val is not None and cfg.timestamps:
            self.ts_ok = True
            self.ts_recent = seg.ts_val
            self.ts_recent_age = now
        else:
            self.ts_ok = False
        self.sack_ok = bool(seg.sack_permitted and cfg.sack)
        self._finish_negotiation()

    def _finish_negotiation(self) -> None:
        pmtu_mss = self.layer.ip.path_mtu(self.remote_ip) - 40
        mss = min(self.peer_mss, pmtu_mss)
        if self.ts_ok:
            mss -= TS_OPTION_LEN
        self.mss = max(mss, 64)
        self.rcv_mss = self.adv_mss - (TS_OPTION_LEN if self.ts_ok else 0)
        if self.cc is None:
            self.cc = congestion.make(self.config.congestion, self.mss)
        else:
            self.cc.set_mss(self.mss)

    def _send_syn(self, now: float) -> None:
        cfg = self.config
        syn_ack = self.state == SYN_RECEIVED
        if syn_ack:
            opts = build_options(
                mss=self.adv_mss,
                wscale=self.rcv_wscale if self.ws_ok else None,
                sack_permitted=self.sack_ok,
                ts=(self._ts_now(now), self.ts_recent) if self.ts_ok else None)
            flags = SYN | ACK
        else:
            opts = build_options(
                mss=self.adv_mss,
                wscale=self.rcv_wscale if cfg.window_scaling else None,
                sack_permitted=cfg.sack,
                ts=(self._ts_now(now), 0) if cfg.timestamps else None)
            flags = SYN | (ACK if self.state != SYN_SENT else 0)
        if self.snd_max != self.iss:
            self.rexmit_ts = self._ts_now(now)  # a retransmitted SYN (see _ts_rtt)
        window = min(cfg.rcvbuf, 0xFFFF)
        ack = self.rcv_nxt & MASK if flags & ACK else 0
        seg = build_tcp(self.local_ip, self.remote_ip, self.local_port, self.remote_port,
                        self.iss & MASK, ack, flags, window, b"", opts)
        self.segs_out += 1
        self.layer.output(self, seg, now)

    # == user calls ==============================================================================

    def send(self, data, now: float) -> int:
        """Queue up to the free send-buffer space; returns bytes accepted (0 when full).

        Raises BrokenPipeError after shutdown/close, or the connection's error."""
        if self.error is not None:
            raise self.error
        if self.fin_queued or self.state not in _USER_CAN_SEND:
            raise BrokenPipeError(32, "TCP connection is not open for sending")
        room = self.config.sndbuf - len(self.snd_buf)
        if room <= 0:
            return 0
        if len(data) > room:
            data = data[:room]
        self.snd_buf += data
        if self.state in _CAN_SEND_DATA:
            self._output(now)
            self._update_deadline()
        return len(data)

    def send_space(self) -> int:
        return self.config.sndbuf - len(self.snd_buf)

    def readable_bytes(self) -> int:
        return len(self.rcv_buf)

    def at_eof(self) -> bool:
        return self.fin_received and not self.rcv_buf

    def recv(self, max_bytes: int, now: float) -> bytes:
        """Take up to ``max_bytes`` of in-order data (b"" if none). May send a window update."""
        buf = self.rcv_buf
        if not buf:
            return b""
        if max_bytes >= len(buf):
            data = bytes(buf)
            buf.clear()
        else:
            data = bytes(buf[:max_bytes])
            del buf[:max_bytes]
        if self.state in _RECEIVES_DATA:
            size = self.config.rcvbuf
            right = self.rcv_nxt + size - len(buf)
            threshold = max(2 * self.adv_mss, size >> 2)
            if threshold > size >> 1:
                threshold = size >> 1
            if right - self.rcv_adv >= threshold:
                self.ack_now = True
                self._output(now)
                self._update_deadline()
        return data

    def shutdown(self, now: float) -> None:
        """Close the sending direction: queue a FIN after the data (half close)."""
        st = self.state
        if self.fin_queued or st in (CLOSED, LISTEN):
            return
        if st == SYN_SENT:
            self._close_now(now, "close in SYN-SENT", None)
            return
        self.fin_queued = True
        if st in (ESTABLISHED, SYN_RECEIVED):
            # RFC 9293: from SYN-RECEIVED the FIN waits until the handshake completes
            if st == ESTABLISHED:
                self._set_state(FIN_WAIT_1, now, "close")
        elif st == CLOSE_WAIT:
            self._set_state(LAST_ACK, now, "close")
        self._output(now)
        self._update_deadline()

    def close(self, now: float) -> None:
        """Full close. Unread received data makes it an abort (RST), as Linux does (RFC 2525)."""
        self.user_closed = True
        if self.rcv_buf and self.state in _SYNCHRONIZED:
            self.abort(now, "close with unread data")
            return
        self.shutdown(now)
        if self.state == FIN_WAIT_2 and self.t_2msl is None:
            self.t_2msl = now + self.config.fin_timeout
            self._update_deadline()

    def abort(self, now: float, why: str = "abort") -> None:
        """ABORT: send RST when synchronized, drop everything, enter CLOSED."""
        if self.state in _SYNCHRONIZED or self.state == SYN_RECEIVED:
            if self.state != TIME_WAIT:
                self._send_rst(self.snd_nxt, now)
        self._close_now(now, why, None)

    def _close_now(self, now: float, why: str, error) -> None:
        if error is not None and self.error is None:
            self.error = error
        self.t_rexmit = self.t_persist = self.t_delack = self.t_keep = self.t_2msl = None
        self.deadline = None
        if self.state != CLOSED:
            self._set_state(CLOSED, now, why)
            self.layer.remove(self)
            self._notify("closed")

    # == output ==================================================================================

    def _window_field(self) -> int:
        size = self.config.rcvbuf
        rcv_nxt = self.rcv_nxt
        right = rcv_nxt + size - len(self.rcv_buf)
        adv = self.rcv_adv
        if right > adv:
            # receiver SWS avoidance (RFC 9293 3.8.6.2.2): move the right edge in big steps only
            step = size >> 1
            if self.adv_mss < step:
                step = self.adv_mss
            if right - adv >= step:
                adv = right
        wnd = (adv - rcv_nxt) >> self.rcv_wscale
        if wnd > 0xFFFF:
            wnd = 0xFFFF
        elif wnd < 0:
            wnd = 0
        adv = rcv_nxt + (wnd << self.rcv_wscale)
        if adv > self.rcv_adv:
            self.rcv_adv = adv
        return wnd

    def _send_segment(self, seq: int, flags: int, payload, now: float, gso_size: int = 0) -> None:
        """Send one segment. ``gso_size`` > 0: the path offloads checksums and segmentation, so
        the checksum is left to the device, which cuts the payload in ``gso_size`` pieces.

        The header is packed here in one piece and handed to the flow's cached ``OutputPath``
        (prebuilt Ethernet and IPv4 headers); without a path (or when it went stale and no new
        one can be had) the segment takes ``layer.output``, the full IP output path."""
        rcv_nxt = self.rcv_nxt
        window = self._window_field()
        self.last_ack_sent = rcv_nxt
        self.ack_pending = 0
        self.ack_now = False
        self.t_delack = None
        self.segs_out += 1
        seq &= MASK
        ack = rcv_nxt & MASK
        plen = len(payload)
        reorder = self.reorder
        sack = reorder is not None and reorder.runs and self.sack_ok
        if self.ts_ok and not sack:
            # the usual segment: NOP NOP TS; its checksum from the flow's constant sum
            ts_val = (int(now * 1000.0) + self.ts_offset) & MASK
            ts_ecr = self.ts_recent or 0
            if gso_size:
                csum = (self.csum_base - self.local_port - self.remote_port + 32 + plen) % 0xFFFF
            else:
                value = (self.csum_base + 32 + plen + seq + ack + (0x8000 | flags) + window + _TS_PREFIX_SUM
                         + ts_val + ts_ecr)
                if plen:
                    value += _from_bytes(payload, "big") << 8 if plen & 1 else _from_bytes(payload, "big")
                csum = 0xFFFF - (value % 0xFFFF or 0xFFFF)
            head = _ts_hdr_pack(self.local_port, self.remote_port, seq, ack, 0x80, flags, window, csum, 0,
                                _TS_PREFIX, ts_val, ts_ecr)
        else:
            opts = b""
            if self.ts_ok:
                opts = timestamp_option(self._ts_now(now), self.ts_recent)
            if sack:
                opts += sack_option(reorder.sack_blocks(3 if self.ts_ok else 4))
            hlen = 20 + len(opts)
            if gso_size:
                csum = (self.csum_base - self.local_port - self.remote_port + hlen + plen) % 0xFFFF
            else:
                value = (self.csum_base + hlen + plen + seq + ack + ((hlen << 10) | flags) + window
                         + (_from_bytes(opts, "big") if opts else 0))
                if plen:
                    value += _from_bytes(payload, "big") << 8 if plen & 1 else _from_bytes(payload, "big")
                csum = 0xFFFF - (value % 0xFFFF or 0xFFFF)
            head = _hdr_pack(self.local_port, self.remote_port, seq, ack, hlen << 2, flags, window, csum, 0) + opts
        layer = self.layer
        for _ in range(2):
            path = self.path
            if path is None:
                break
            if gso_size:
                if path.transmit_gso(head, payload, gso_size, now):
                    return
            elif path.transmit(head, payload, now):
                return
            self.path = layer.output_path(self, now)  # stale: ask once for a new one
        layer.output(self, head + payload, now, gso_size)
        if self.path is None:
            self.path = layer.output_path(self, now)

    def _send_rst(self, seq: int, now: float) -> None:
        seg = build_tcp(self.local_ip, self.remote_ip, self.local_port, self.remote_port,
                        seq & MASK, self.rcv_nxt & MASK, RST | ACK, 0)
        self.segs_out += 1
        self.layer.output(self, seg, now)

    def _send_ack(self, now: float) -> None:
        # SND.MAX, not SND.NXT: after a retransmission timeout SND.NXT is pulled back to SND.UNA
        # (go back N), below what the peer may already hold; a bare ACK with that sequence
        # number fails the peer's acceptability test (RFC 9293 3.10.7.4) and is dropped
        # unread.  When both ends time out at once, each drops the other's ACKs for good
        # (as 4.4BSD's tcp_output does: an ACK-only segment carries snd_max).
        self._send_segment(self.snd_max, ACK, b"", now)

    def _sack_overhead(self) -> int:
        """Bytes the SACK option will take in our next segment (it shrinks the payload room)."""
        reorder = self.reorder
        if reorder is None or not reorder.runs or not self.sack_ok:
            return 0
        limit = 3 if self.ts_ok else 4
        runs = len(reorder.runs)
        return 4 + 8 * (runs if runs < limit else limit)

    def _send_range(self, seq: int, length: int, now: float, gso: int = 0) -> int:
        """Send data [seq, seq+length) (plus FIN if it ends the stream). Returns seq consumed;
        the length is cut so that options and data never exceed the MSS on the wire.  With
        ``gso`` (segmentation offload) one segment may carry up to ``gso`` bytes, which the
        device sends as MSS-sized segments."""
        room = self.mss - self._sack_overhead()
        limit = gso if gso else room
        if length > limit:
            length = limit
        start = seq - self.snd_buf_seq
        data_end = self.snd_buf_seq + len(self.snd_buf)
        flags = ACK
        end = seq + length
        if end == data_end:
            if length:
                flags |= PSH
            if self.fin_queued:
                flags |= FIN
        payload = self.snd_buf[start:start + length] if length else b""
        if seq < self.snd_max:
            self.retransmits += 1
            if self.rtt_seq is not None and seq <= self.rtt_seq:
                self.rtt_seq = None  # Karn: never time a retransmitted segment
            if self.ts_ok:
                self.rexmit_ts = self._ts_now(now)
        self._send_segment(seq, flags, payload, now, room if gso and length else 0)
        used = length + (1 if flags & FIN else 0)
        return used

    def _send_burst(self, seq: int, count: int, mss: int, data_end: int, now: float) -> bool:
        """Send ``count`` new full segments of ``mss`` bytes from ``seq`` over the cached path in
        one loop: what ``_send_range`` -> ``_send_segment`` -> ``OutputPath.transmit`` do per
        segment (timestamps, no SACK blocks, no offload), with the per-flow constants of the
        TCP and IPv4 checksums and the header fields computed once.  False (nothing sent) when
        the path is stale or too small; the caller then takes the ordinary path."""
        path = self.path
        send = path.send_parts
        total = mss + 52  # IPv4 total length: 20 + 32 (TCP with NOP NOP TS) + payload
        if send is None or total > path.mtu or not path.valid(now):
            return False
        rcv_nxt = self.rcv_nxt
        window = self._window_field()
        self.last_ack_sent = rcv_nxt
        self.ack_pending = 0
        self.ack_now = False
        self.t_delack = None
        self.segs_out += count
        ack = rcv_nxt & MASK
        ts_val = (int(now * 1000.0) + self.ts_offset) & MASK
        ts_ecr = self.ts_recent or 0
        lport = self.local_port
        rport = self.remote_port
        base = self.csum_base + 32 + mss + ack + 0x8000 + window + _TS_PREFIX_SUM + ts_val + ts_ecr
        start = seq - self.snd_buf_seq
        chunk = bytes(self.snd_buf[start:start + count * mss])
        prefix = path.prefix
        middle = path.middle
        addresses = path.addresses
        ip_base = path.base + total
        ident = path.ident
        odd = mss & 1
        from_bytes = _from_bytes
        pack = _frame_pack
        pos = 0
        for _ in range(count):
            payload = chunk[pos:pos + mss]
            pos += mss
            flags = (ACK | PSH) if seq + mss == data_end else ACK
            wseq = seq & MASK
            value = base + wseq + flags + (from_bytes(payload, "big") << 8 if odd else from_bytes(payload, "big"))
            ident = (ident + 1) & 0xFFFF
            send((pack(prefix, total, ident, middle, 0xFFFF - ((ip_base + ident) % 0xFFFF or 0xFFFF), addresses,
                       lport, rport, wseq, ack, 0x80, flags, window, 0xFFFF - (value % 0xFFFF or 0xFFFF), 0,
                       _TS_PREFIX, ts_val, ts_ecr), payload), now)
            seq += mss
        path.ident = ident
        path.host.counters["ip_out_requests"] += count
        iface = path.iface
        iface.tx_frames += count
        iface.tx_bytes += count * (total + 14)
        return True

    def _output(self, now: float) -> None:
        """Send what the windows, Nagle and the state allow; then a pending ACK, if any."""
        st = self.state
        sent = False
        if st in _CAN_SEND_DATA:
            if self.in_recovery and self.sack_ok:
                sent = self._output_sack_recovery(now)
            mss = self.mss - self._sack_overhead()
            cc = self.cc
            nodelay = self.config.nodelay
            seg_max = mss
            gso = 0
            if self.snd_buf_seq + len(self.snd_buf) - self.snd_nxt > mss:
                largest = self.layer.max_segment(self.remote_ip)
                if largest > GSO_HEADROOM + 2 * mss:
                    gso = seg_max = (largest - GSO_HEADROOM) // mss * mss
                self.gso = gso
            # full-sized new segments in a row take _send_burst (one header pack per frame)
            fast = not gso and self.ts_ok and mss == self.mss and self.path is not None
            while True:
                snd_nxt = self.snd_nxt
                data_end = self.snd_buf_seq + len(self.snd_buf)
                if snd_nxt > data_end:
                    break  # FIN already sent
                avail = data_end - snd_nxt
                wnd = self.snd_wnd
                cwnd = cc.cwnd
                if not self.in_recovery and 0 < self.dupacks < 3:
                    cwnd += self.dupacks * mss  # limited transmit (RFC 3042)
                if cwnd < wnd:
                    wnd = cwnd
                if self.in_recovery and self.sack_ok:
                    usable = cwnd - self.scoreboard.pipe(self.snd_una, self.snd_max, self.high_rxt, mss)
                    if usable < mss and avail > usable:
                        usable = 0
                    right = self.snd_una + self.snd_wnd - snd_nxt
                    if right < usable:
                        usable = right
                else:
                    usable = self.snd_una + wnd - snd_nxt
                    if fast and snd_nxt >= self.snd_max:
                        k = (avail if avail < usable else usable) // mss
                        if k and self.fin_queued and snd_nxt + k * mss == data_end:
                            k -= 1
                        if k > 1 and self._send_burst(snd_nxt, k, mss, data_end, now):
                            sent = True
                            snd_nxt += k * mss
                            self.snd_nxt = self.snd_max = snd_nxt
                            if self.t_rexmit is None:
                                self.t_rexmit = now + self._current_rto()
                                self.t_persist = None
                            continue
                n = avail
                if n > seg_max:
                    n = seg_max
                if n > usable:
                    n = usable if usable > 0 else 0
                if n > mss and n < avail:
                    n -= n % mss  # an offloaded segment: whole MSS pieces, no runt mid-stream
                fin = self.fin_queued and snd_nxt + n == data_end
                if n <= 0 and not fin:
                    break
                if n < mss and n < avail:
                    # sender SWS avoidance: a window-limited runt only if it is big enough
                    if n < (self.max_snd_wnd >> 1) or n <= 0:
                        break
                elif (n < mss and not fin and not nodelay and snd_nxt == self.snd_max
                      and self.snd_max > self.snd_una):
                    break  # Nagle: one small segment in flight at a time
                if fin and n == 0 and usable < 0:
                    break
                used = self._send_range(snd_nxt, n, now, gso)
                sent = True
                snd_nxt += used
                self.snd_nxt = snd_nxt
                if snd_nxt > self.snd_max:
                    if self.rtt_seq is None and not self.ts_ok and snd_nxt - used >= self.snd_max:
                        self.rtt_seq = snd_nxt - 1  # time this new segment (RFC 6298 3)
                        self.rtt_time = now
                    self.snd_max = snd_nxt
                if self.t_rexmit is None:
                    self.t_rexmit = now + self._current_rto()
                    self.t_persist = None
            self._maybe_arm_persist(now)
        if self.ack_now and not sent:
            if st != CLOSED and st != SYN_SENT and st != LISTEN:
                self._send_ack(now)
        elif sent:
            self.ack_now = False

    def _output_sack_recovery(self, now: float) -> bool:
        """RFC 6675 5 (step 4.3 onwards): while cwnd - pipe >= 1 SMSS, send NextSeg()."""
        sb = self.scoreboard
        mss = self.mss
        sent = False
        for _ in range(64):
            pipe = sb.pipe(self.snd_una, self.snd_max, self.high_rxt, mss)
            if self.cc.cwnd - pipe < mss:
                break
            nxt = sb.next_retransmit(self.snd_una, self.high_rxt, mss, rule3=True)
            if nxt is None:
                break  # rule 2 (new data) is the caller's ordinary loop
            start, length = nxt
            used = self._send_range(start, length, now)
            self.high_rxt = start + min(used, length)
            sent = True
        return sent

    def _current_rto(self) -> float:
        rto = self.rto * (1 << self.backoff) if self.backoff < 16 else self.config.rto_max
        cfg = self.config
        return cfg.rto_max if rto > cfg.rto_max else rto

    def _maybe_arm_persist(self, now: float) -> None:
        """Data waits, nothing is in flight and the window forbids sending: probe later."""
        if (self.t_rexmit is None and self.t_persist is None and self.snd_max == self.snd_una
                and (self.snd_buf_seq + len(self.snd_buf) > self.snd_nxt
                     or (self.fin_queued and self.snd_nxt <= self.snd_buf_seq + len(self.snd_buf)))):
            interval = self._current_rto() * (1 << min(self.persist_backoff, 10))
            if interval > self.config.rto_max:
                interval = self.config.rto_max
            if interval < 0.2:
                interval = 0.2
            self.t_persist = now + interval

    # == timers ==================================================================================

    def on_timer(self, now: float) -> None:
        if self.state == CLOSED:
            return
        if self.t_2msl is not None and now >= self.t_2msl:
            self.t_2msl = None
            why = "2MSL timeout" if self.state == TIME_WAIT else "FIN-WAIT-2 timeout"
            self._close_now(now, why, None)
            return
        if self.t_rexmit is not None and now >= self.t_rexmit:
            self.t_rexmit = None
            self._retransmit_timeout(now)
            if self.state == CLOSED:
                return
        if self.t_persist is not None and now >= self.t_persist:
            self.t_persist = None
            self._persist_fire(now)
        if self.t_delack is not None and now >= self.t_delack:
            self.t_delack = None
            if self.ack_pending or self.ack_now:
                self.ack_now = True
                self._output(now)
        if self.t_keep is not None and now >= self.t_keep:
            self.t_keep = None
            self._keepalive_fire(now)
            if self.state == CLOSED:
                return
        self._update_deadline()

    def _give_up(self, now: float) -> bool:
        cfg = self.config
        if self.state == SYN_SENT:
            limit = cfg.syn_retries
        elif self.state == SYN_RECEIVED:
            limit = cfg.synack_retries
        else:
            limit = cfg.retries2
        if self.rexmit_count >= limit:
            return True
        if cfg.user_timeout and self.first_rexmit is not None and now - self.first_rexmit >= cfg.user_timeout:
            return True
        return False

    def _retransmit_timeout(self, now: float) -> None:
        st = self.state
        if self._give_up(now):
            if st == SYN_SENT:
                err = TimeoutError(110, "TCP connect timed out")
            else:
                err = TimeoutError(110, "TCP connection timed out (no ACK)")
                if st in _SYNCHRONIZED:
                    self._send_rst(self.snd_nxt, now)
            self._close_now(now, "retransmission limit", err if st != SYN_RECEIVED or not self.passive else None)
            return
        self.rexmit_count += 1
        self.timeouts += 1
        if self.first_rexmit is None:
            self.first_rexmit = now
        self.backoff += 1
        self.rtt_seq = None
        if st in (SYN_SENT, SYN_RECEIVED):
            self.retransmits += 1
            self._send_syn(now)
            self.t_rexmit = now + self._current_rto()
            return
        if self.snd_max == self.snd_una:
            return
        cc = self.cc
        cc.on_timeout(now, self.snd_max - self.snd_una)
        self.in_recovery = False
        self.dupacks = 0
        self.recover = self.snd_max
        if self.scoreboard is not None:
            self.scoreboard.clear()
        self.high_rxt = self.snd_una
        self.snd_nxt = self.snd_una  # go back N
        self.t_rexmit = now + self._current_rto()
        self._output(now)

    def _persist_fire(self, now: float) -> None:
        if self.state not in _CAN_SEND_DATA:
            return
        data_end = self.snd_buf_seq + len(self.snd_buf)
        if self.snd_wnd == 0:
            # A peer that answers keeps being probed (RFC 9293 3.8.6.1); one silent through
            # retries2 probes and for longer than R2 (100 s, RFC 9293 3.8.3) is gone, as Linux's
            # probe timer gives up after tcp_retries2.  An answered probe moves last_recv, and
            # probes are at most rto_max apart, so a live peer never looks silent this long.
            if (self.persist_backoff >= self.config.retries2
                    and now - self.last_recv > max(self.config.rto_max, 100.0)):
                self._send_rst(self.snd_nxt, now)
                self._close_now(now, "zero-window probes unanswered",
                                TimeoutError(110, "TCP connection timed out (zero-window probes unanswered)"))
                return
            # zero-window probe: an old sequence number makes the peer answer with its window
            self._send_segment(self.snd_una - 1, ACK, b"", now)
            self.persist_backoff += 1
        elif self.snd_nxt < data_end and self.snd_max == self.snd_una:
            # window open but too small for SWS avoidance and nothing in flight: send anyway
            n = min(data_end - self.snd_nxt, self.snd_wnd, self.mss)
            used = self._send_range(self.snd_nxt, n, now)
            self.snd_nxt += used
            if self.snd_nxt > self.snd_max:
                self.snd_max = self.snd_nxt
            self.t_rexmit = now + self._current_rto()
            return
        self._maybe_arm_persist(now)

    def _arm_keepalive(self, now: float) -> None:
        if self.config.keepalive and self.state in (ESTABLISHED, CLOSE_WAIT):
            self.t_keep = self.last_recv + self.config.keepidle
        else:
            self.t_keep = None

    def _keepalive_fire(self, now: float) -> None:
        cfg = self.config
        if not cfg.keepalive or self.state not in (ESTABLISHED, CLOSE_WAIT):
            return
        idle = now - self.last_recv
        if idle < cfg.keepidle:
            self.t_keep = self.last_recv + cfg.keepidle
            return
        if self.keep_probes >= cfg.keepcnt:
            self._send_rst(self.snd_nxt, now)
            self._close_now(now, "keepalive timeout", TimeoutError(110, "TCP keepalive timed out"))
            return
        self.keep_probes += 1
        self._send_segment(self.snd_una - 1, ACK, b"", now)
        self.t_keep = now + cfg.keepintvl

    # == input ===================================================================================

    def segment_arrives(self, seg, now: float) -> None:
        """RFC 9293 3.10.7, for every state but CLOSED and LISTEN (the layer handles those)."""
        self.segs_in += 1
        st = self.state
        if st == SYN_SENT:
            self._arrive_syn_sent(seg, now)
        else:
            self._arrive_synchronized(seg, now)
        if self.state != CLOSED:
            layer = self.layer
            if layer.batching and not self.ack_now and (seg.payload or self.gso):
                # the IP layer polls after each batch of datagrams (a read of up to 64 frames),
                # so a batch is answered once: a batch of pure ACKs releases its data in one
                # large segment (with segmentation offload), and in-order data is ACKed once
                # at the end of its batch (flush) instead of every second segment.  That is
                # a stretch ACK as Linux sends after GRO has merged a batch: RFC 9293 and RFC
                # 1122 4.2.3.2 let one ACK cover several segments, and RFC 5681's "SHOULD ACK
                # every second full-sized segment" is kept in spirit: the ACK leaves right
                # after the batch, never waits for the delayed-ACK timer when two full
                # segments are unacknowledged, and covers at most STRETCH_ACK_SEGMENTS
                # segments (an ACK goes out within the batch beyond that: see
                # _receive_data).  Anything that wants an immediate ACK (out of order data,
                # a hole filled, a FIN, a duplicate, a window update after a read) sets
                # ack_now and is answered at once.  The sender's slow start counts the bytes
                # such an ACK covers (congestion.SS_ACK_LIMIT), as Linux does.
                if not self.deferred:
                    self.deferred = True
                    layer.deferred.append(self)
            else:
                self._output(now)
                self._update_deadline()

    def flush(self, now: float) -> None:
        """Send what the batch of segments that just arrived allows (see ``segment_arrives``)."""
        self.deferred = False
        if self.state != CLOSED:
            if self.ack_pending >= 2 * self.rcv_mss:
                self.ack_now = True
            self._output(now)
            self._update_deadline()

    def _challenge_ack(self, now: float) -> None:
        if self.layer.challenge_ack_allowed(now):
            self._send_ack(now)
        else:
            self.layer.count("challenge-ack-rate-limited")

    def _arrive_syn_sent(self, seg, now: float) -> None:
        flags = seg.flags
        if flags & ACK:
            ack = self.snd_una + (((seg.ack - self.snd_una + HALF) & MASK) - HALF)
            if ack <= self.iss or ack > self.snd_max:
                if not flags & RST:
                    self.layer.send_reset_for(self.local_ip, self.remote_ip, seg, now)
                self.layer.count("syn-sent-bad-ack")
                return
        else:
            ack = None
        if flags & RST:
            if ack is not None:
                self._close_now(now, "RST in SYN-SENT",
                                ConnectionRefusedError(111, "TCP connection refused"))
            else:
                self.layer.count("rst-without-ack")
            return
        if not flags & SYN:
            self.layer.count("syn-sent-no-syn")
            return
        self.irs = seg.seq
        self.rcv_nxt = seg.seq + 1
        self.last_ack_sent = self.rcv_nxt
        self._negotiate(seg, now, offered=False)
        if ack is not None:
            self.snd_una = ack
            self.snd_wnd = seg.window << self.snd_wscale
            self.snd_wl1 = self.rcv_nxt - 1
            self.snd_wl2 = ack
            self.max_snd_wnd = self.snd_wnd
            self.rcv_adv = self.rcv_nxt + min(self.config.rcvbuf, 0xFFFF << self.rcv_wscale)
            if seg.ts_val is not None and self.ts_ok and seg.ts_ecr:
                rtt = self._ts_rtt(seg.ts_ecr, now)
                if rtt is not None:
                    self._rtt_sample(rtt)
            elif self.rexmit_count == 0:
                self._rtt_sample(now - self.first_rexmit)
            self._established(now, "SYN-ACK received")
            self.ack_now = True
        else:
            # simultaneous open
            self.snd_wnd = seg.window
            self.snd_wl1 = seg.seq
            self.max_snd_wnd = seg.window
            self.rcv_adv = self.rcv_nxt + min(self.config.rcvbuf, 0xFFFF)
            self._set_state(SYN_RECEIVED, now, "simultaneous open")
            self._send_syn(now)
            self.t_rexmit = now + self._current_rto()

    def _established(self, now: float, why: str) -> None:
        self.t_rexmit = None
        self.backoff = 0
        self.rexmit_count = 0
        self.first_rexmit = None
        self._set_state(ESTABLISHED, now, why)
        self.last_recv = now
        self._arm_keepalive(now)
        if self.fin_queued:
            self._set_state(FIN_WAIT_1, now, "queued close")
        self._notify("connected")

    def _ts_rtt(self, ts_ecr: int, now: float):
        """The RTT a timestamp echo measures (RFC 7323 4), or None when it is ambiguous.

        Karn's rule for timestamps: an echo older than our latest retransmission is not used.
        The receiver takes TSval only from in-window, in-order segments (RFC 7323 4.3), so
        when the ACK of data (or of a SYN) that got through was lost, the ACK that our
        retransmission elicits -- the retransmission being a duplicate to the receiver --
        still echoes the earlier transmission: it measures the outage (the whole backed-off
        RTO), not the path.  Taken as samples, a few of these pushed SRTT and the RTO to
        seconds on a 4 ms path, so the next loss cost seconds more, and so on."""
        rtt = ((self._ts_now(now) - ts_ecr) & MASK) / 1000.0
        if rtt > 120.0:
            return None  # not an echo of ours (or from long before): no sample
        rexmit_ts = self.rexmit_ts
        if rexmit_ts is not None and ((ts_ecr - rexmit_ts) & MASK) >= HALF:
            return None
        return rtt

    def _rtt_sample(self, r: float) -> None:
        """RFC 6298 2.2-2.4."""
        if r < 0:
            return
        if self.srtt is None:
            self.srtt = r
            self.rttvar = r / 2.0
        else:
            self.rttvar += (abs(self.srtt - r) - self.rttvar) * 0.25
            self.srtt += (r - self.srtt) * 0.125
        var = 4.0 * self.rttvar
        rto = self.srtt + (var if var > G else G)
        cfg = self.config
        if rto < cfg.rto_min:
            rto = cfg.rto_min
        elif rto > cfg.rto_max:
            rto = cfg.rto_max
        self.rto = rto
        self.backoff = 0

    def _arrive_synchronized(self, seg, now: float) -> None:
        flags = seg.flags
        rcv_nxt = self.rcv_nxt
        seq = rcv_nxt + (((seg.seq - rcv_nxt + HALF) & MASK) - HALF)
        payload = seg.payload
        seg_len = len(payload)
        layer = self.layer
        st = self.state

        # header prediction for the bare ACK of a bulk sender (as Linux's tcp_rcv_established
        # fast path): ESTABLISHED, only the ACK flag, no data, in sequence, new data ACKed,
        # no SACK blocks, no recovery, timestamps that pass PAWS.  Such a segment passes
        # every check below (acceptable, no RST/SYN, ACK within SND.UNA..SND.MAX) and carries
        # no text or FIN, so it goes straight to ACK processing.
        if (st == ESTABLISHED and flags == ACK and not seg_len and seq == rcv_nxt
                and not seg.sack_blocks and not self.in_recovery):
            ts_val = seg.ts_val
            ts_recent = self.ts_recent
            if self.ts_ok and (ts_val is None or ts_recent is None
                               or ((ts_val - ts_recent) & MASK) >= HALF):
                pass  # the full path (PAWS, ts_recent)
            else:
                snd_una = self.snd_una
                ack = snd_una + (((seg.ack - snd_una + HALF) & MASK) - HALF)
                if snd_una < ack <= self.snd_max:
                    self._process_ack(seg, seq, ack, 0, now)
                    if ts_val is not None and self.ts_ok and seq <= self.last_ack_sent:
                        self.ts_recent = ts_val
                        self.ts_recent_age = now
                    self.last_recv = now
                    if self.keep_probes:
                        self.keep_probes = 0
                    if self.t_keep is not None or self.config.keepalive:
                        self._arm_keepalive(now)
                    return

        # RFC 7323 5.3: PAWS, before the sequence check
        if (self.ts_ok and seg.ts_val is not None and not flags & RST and self.ts_recent is not None
                and ((seg.ts_val - self.ts_recent) & MASK) >= HALF):
            if now - self.ts_recent_age > PAWS_IDLE:
                self.ts_recent = seg.ts_val
            else:
                layer.count("paws")
                self.ack_now = True
                return

        # 1. sequence number acceptability
        rcv_wnd = self.rcv_adv - rcv_nxt
        if rcv_wnd < 0:
            rcv_wnd = 0
        seg_size = seg_len + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
        if seg_size == 0:
            ok = (seq == rcv_nxt) if rcv_wnd == 0 else (rcv_nxt <= seq < rcv_nxt + rcv_wnd)
        elif rcv_wnd == 0:
            ok = False
        else:
            end = seq + seg_size - 1
            ok = (rcv_nxt <= seq < rcv_nxt + rcv_wnd) or (rcv_nxt <= end < rcv_nxt + rcv_wnd)
        if not ok:
            if st == TIME_WAIT and flags & SYN and not flags & ACK and seq > rcv_nxt:
                layer.reopen_from_time_wait(self, seg, now)
                return
            if flags & RST:
                layer.count("rst-out-of-window")
                return
            if st == SYN_RECEIVED and flags & SYN and not flags & ACK and seq == self.irs:
                self._send_syn(now)  # our SYN-ACK was lost: the peer's SYN came again
                layer.count("syn-retransmitted")
                return
            if st == TIME_WAIT and flags & FIN:
                self.t_2msl = now + 2 * self.config.msl  # RFC 9293: restart the 2 MSL timeout
            if seg_size and seq < rcv_nxt:
                self.dup_segments += 1
            layer.count("out-of-window")
            self.ack_now = True
            return

        # 2. RST (RFC 5961 3.2: exact match resets, otherwise challenge)
        if flags & RST:
            if seq != rcv_nxt:
                self._challenge_ack(now)
                return
            if st == SYN_RECEIVED:
                if self.passive:
                    self._close_now(now, "RST in SYN-RECEIVED (back to LISTEN)", None)
                else:
                    self._close_now(now, "RST in SYN-RECEIVED",
                                    ConnectionRefusedError(111, "TCP connection refused"))
            elif st == TIME_WAIT:
                layer.count("rst-in-time-wait-ignored")  # RFC 1337
            elif st in (CLOSING, LAST_ACK):
                self._close_now(now, "RST", None)
            else:
                self._close_now(now, "RST received",
                                ConnectionResetError(104, "TCP connection reset by peer"))
            return

        # 4. SYN in a synchronized state (RFC 5961 4.2: challenge ACK)
        if flags & SYN:
            if st == TIME_WAIT:
                self.ack_now = True
                return
            self._challenge_ack(now)
            return

        # 5. ACK
        if not flags & ACK:
            layer.count("no-ack")
            return
        ack = self.snd_una + (((seg.ack - self.snd_una + HALF) & MASK) - HALF)
        if st == SYN_RECEIVED:
            if not (self.snd_una < ack <= self.snd_max):
                layer.send_reset_for(self.local_ip, self.remote_ip, seg, now)
                return
            listener = self.listener
            if listener is not None and listener.accept_queue_full():
                layer.count("accept-queue-full")
                return
            self.snd_una = ack
            self.snd_wnd = seg.window << self.snd_wscale
            self.snd_wl1 = seq
            self.snd_wl2 = ack
            self.max_snd_wnd = self.snd_wnd
            self.rcv_adv = self.rcv_nxt + min(self.config.rcvbuf, 0xFFFF << self.rcv_wscale)
            if self.ts_ok and seg.ts_ecr:
                rtt = self._ts_rtt(seg.ts_ecr, now)
                if rtt is not None:
                    self._rtt_sample(rtt)
            elif self.rexmit_count == 0 and self.first_rexmit is not None:
                self._rtt_sample(now - self.first_rexmit)
            self._established(now, "ACK of SYN-ACK")
            if listener is not None:
                listener.handshake_done(self, now)
            st = self.state
            if st == FIN_WAIT_1:
                self._output(now)
        elif st == TIME_WAIT:
            if flags & FIN:
                self.ack_now = True
                self.t_2msl = now + 2 * self.config.msl
            return
        else:
            if ack > self.snd_max:
                layer.count("ack-of-unsent")
                self.ack_now = True
                return
            if ack < self.snd_una - self.max_snd_wnd:
                self._challenge_ack(now)
                return
            self._process_ack(seg, seq, ack, seg_len, now)
            if self.state == CLOSED:
                return
            st = self.state
            fin_acked = self.fin_queued and self.snd_una > self.snd_buf_seq + len(self.snd_buf)
            if fin_acked:
                if st == FIN_WAIT_1:
                    self._set_state(FIN_WAIT_2, now, "FIN acked")
                    st = FIN_WAIT_2
                    if self.user_closed:
                        self.t_2msl = now + self.config.fin_timeout
                elif st == CLOSING:
                    self._enter_time_wait(now, "FIN acked")
                    return
                elif st == LAST_ACK:
                    self._close_now(now, "FIN acked", None)
                    return

        # timestamps: remember the peer's clock (RFC 7323 4.3)
        if self.ts_ok and seg.ts_val is not None and seq <= self.last_ack_sent:
            if ((seg.ts_val - (self.ts_recent or 0)) & MASK) < HALF or self.ts_recent is None:
                self.ts_recent = seg.ts_val
                self.ts_recent_age = now
        self.last_recv = now
        if self.keep_probes:
            self.keep_probes = 0
        if self.t_keep is not None or self.config.keepalive:
            self._arm_keepalive(now)

        # 7. segment text
        if (seg_len and self.user_closed and st in (FIN_WAIT_1, FIN_WAIT_2)
                and seq + seg_len > self.rcv_nxt):
            # RFC 1122 4.2.2.13: new data for an application that closed can never be read;
            # answer with RST (as Linux does) so the peer stops sending. Its ACK field is its
            # RCV.NXT: the RST's sequence number matches exactly (RFC 5961 3.2).
            self._send_rst(ack, now)
            layer.count("data-after-close")
            self._close_now(now, "data after close", None)
            return
        fin = flags & FIN
        if seg_len and st in _RECEIVES_DATA:
            fin = self._receive_data(seq, payload, fin, now)
        elif seg_len:
            layer.count("data-after-fin")
            self.ack_now = True
            if fin and seq + seg_len != self.rcv_nxt:
                fin = 0

        # 8. FIN
        if fin:
            fseq = seq + seg_len
            if fseq == self.rcv_nxt:
                self._fin_arrives(now)
            elif fseq > self.rcv_nxt and self.reorder is not None:
                self.reorder.fin = fseq  # out of order: remember it until the hole fills

    def _fin_arrives(self, now: float) -> None:
        if self.fin_received:
            self.ack_now = True
            return
        self.rcv_nxt += 1
        self.fin_received = True
        self.ack_now = True
        st = self.state
        if st in (SYN_RECEIVED, ESTABLISHED):
            self._set_state(CLOSE_WAIT, now, "FIN received")
        elif st == FIN_WAIT_1:
            if self.snd_una > self.snd_buf_seq + len(self.snd_buf):
                self._enter_time_wait(now, "FIN received")
            else:
                self._set_state(CLOSING, now, "FIN received (simultaneous close)")
        elif st == FIN_WAIT_2:
            self._enter_time_wait(now, "FIN received")
        self._notify("readable")

    def _enter_time_wait(self, now: float, why: str) -> None:
        self.t_rexmit = self.t_persist = self.t_keep = None
        self._set_state(TIME_WAIT, now, why)
        if not self.layer.time_wait_allowed():
            self.ack_now = True
            self._output(now)
            self._close_now(now, "TIME-WAIT table full", None)
            return
        self.t_2msl = now + 2 * self.config.msl
        self.reorder = None
        self.snd_buf = bytearray()

    def _process_ack(self, seg, seq: int, ack: int, seg_len: int, now: float) -> None:
        snd_una = self.snd_una
        mss = self.mss
        cc = self.cc
        sb = self.scoreboard
        new_sack = 0
        if sb is None and self.sack_ok and seg.sack_blocks:
            sb = self.scoreboard = Scoreboard()  # created on first use: idle connections stay small
        if sb is not None and seg.sack_blocks:
            blocks = []
            for left, right in seg.sack_blocks:
                l_abs = snd_una + (((left - snd_una + HALF) & MASK) - HALF)
                r_abs = l_abs + ((right - left) & MASK)
                blocks.append((l_abs, r_abs))
            new_sack = sb.update(ack if ack > snd_una else snd_una, self.snd_max, blocks)
        wnd = seg.window << self.snd_wscale
        if ack > snd_una:
            acked = ack - snd_una
            self.bytes_acked += acked
            data_end = self.snd_buf_seq + len(self.snd_buf)
            drop = (ack if ack < data_end else data_end) - self.snd_buf_seq
            if drop > 0:
                if drop == len(self.snd_buf):
                    self.snd_buf = bytearray()
                else:
                    del self.snd_buf[:drop]
                self.snd_buf_seq += drop
            rtt = None
            if self.ts_ok and seg.ts_ecr:
                rtt = self._ts_rtt(seg.ts_ecr, now)
            elif self.rtt_seq is not None and ack > self.rtt_seq:
                rtt = now - self.rtt_time
                self.rtt_seq = None
            if rtt is not None:
                self._rtt_sample(rtt)
            self.snd_una = ack
            if self.snd_nxt < ack:
                self.snd_nxt = ack
            if sb is not None:
                sb.update(ack, self.snd_max, ())
            self.rexmit_count = 0
            self.first_rexmit = None
            self.dupacks = 0
            if self.in_recovery:
                if ack >= self.recover:
                    self.in_recovery = False
                    if self.sack_ok:
                        cc.on_recovery_exit(now)
                    else:
                        flight = self.snd_max - ack
                        cc.cwnd = min(cc.ssthresh, max(flight, mss) + mss)
                elif self.sack_ok:
                    if self.high_rxt < ack:
                        self.high_rxt = ack
                else:
                    # NewReno partial ACK (RFC 6582 3.2 step 3)
                    self._send_range(ack, min(mss, self.snd_buf_seq + len(self.snd_buf) - ack), now)
                    self.fast_retransmits += 1
                    cwnd = cc.cwnd - acked + mss
                    cc.cwnd = cwnd if cwnd > mss else mss
            else:
                cc.on_ack(acked, now, rtt)
            self.t_rexmit = None if ack == self.snd_max else now + self._current_rto()
            if drop > 0:
                # like Linux's write-space threshold: wake writers when half the buffer is free,
                # not on every ACK (fewer, larger appends to the send buffer)
                size = self.config.sndbuf
                if size - len(self.snd_buf) >= size >> 1 or not self.snd_buf:
                    self._notify("writable")
        elif (ack == snd_una and seg_len == 0 and not seg.flags & (SYN | FIN)
              and self.snd_max > snd_una and (wnd == self.snd_wnd or new_sack)):
            self.dupacks += 1
            if not self.in_recovery:
                if (self.dupacks >= 3 or (sb is not None and sb.is_lost(snd_una, mss))) \
                        and snd_una >= self.recover:
                    self._enter_recovery(now)
            elif not self.sack_ok:
                cc.cwnd += mss  # NewReno inflation
        # window update (RFC 9293 3.10.7.4)
        if self.snd_wl1 < seq or (self.snd_wl1 == seq and self.snd_wl2 <= ack):
            self.snd_wnd = wnd
            self.snd_wl1 = seq
            self.snd_wl2 = ack
            if wnd > self.max_snd_wnd:
                self.max_snd_wnd = wnd
            if wnd:
                self.t_persist = None
                self.persist_backoff = 0

    def _enter_recovery(self, now: float) -> None:
        cc = self.cc
        mss = self.mss
        flight = self.snd_max - self.snd_una
        cc.on_congestion(now, flight)
        self.recover = self.snd_max
        self.in_recovery = True
        self.rtt_seq = None
        self.fast_retransmits += 1
        una = self.snd_una
        length = min(mss, self.snd_buf_seq + len(self.snd_buf) - una)
        if self.sack_ok:
            if self.scoreboard is None:
                self.scoreboard = Scoreboard()
            cc.cwnd = cc.ssthresh
            holes = self.scoreboard.holes(una)
            if holes:
                length = min(length, holes[0][1] - una)
            used = self._send_range(una, length, now)
            self.high_rxt = una + min(used, length)
        else:
            self._send_range(una, length, now)
            cc.cwnd = cc.ssthresh + 3 * mss
        self.t_rexmit = now + self._current_rto()

    def _receive_data(self, seq: int, payload, fin: int, now: float) -> int:
        """Deliver in-window data; returns the FIN flag if it is still meaningful."""
        rcv_nxt = self.rcv_nxt
        end = seq + len(payload)
        right = self.rcv_adv
        if end > right:  # trim what lies beyond the window (and a FIN with it)
            payload = payload[:right - seq] if right > seq else payload[:0]
            end = right
            fin = 0
        if seq < rcv_nxt:
            payload = payload[rcv_nxt - seq:]
            seq = rcv_nxt
            self.dup_segments += 1
            self.ack_now = True
        n = len(payload)
        if n <= 0:
            return fin
        if n > self.rcv_mss:
            # a segment larger than our MSS came through receive offload: it stands for
            # several segments, so it never raises the ACK-every-two-segments threshold
            self.rcv_mss = n if n < self.adv_mss else self.adv_mss
        if seq == rcv_nxt:
            self.rcv_buf += payload
            rcv_nxt += n
            self.bytes_received += n
            reorder = self.reorder
            if reorder is not None and reorder.runs:
                self.ack_now = True  # filling a hole: ACK at once (RFC 5681 4.2)
                while True:
                    more = reorder.pop_ready(rcv_nxt)
                    if more is None:
                        break
                    if more:
                        self.rcv_buf += more
                        rcv_nxt += len(more)
                        self.bytes_received += len(more)
                self.rcv_nxt = rcv_nxt
                if reorder.fin is not None and reorder.fin == rcv_nxt:
                    self._notify("readable")
                    self._fin_arrives(now)  # the FIN that waited behind the hole
                    return 0
            self.rcv_nxt = rcv_nxt
            pending = self.ack_pending = self.ack_pending + n
            if pending >= 2 * self.rcv_mss:
                # with batching the ACK waits for the end of the batch (see segment_arrives
                # and flush) unless the stretch grew past its bound
                if (not self.layer.batching or pending >= STRETCH_ACK_SEGMENTS * self.rcv_mss
                        or pending >= self.config.rcvbuf >> 2):
                    self.ack_now = True
            elif self.t_delack is None:
                self.t_delack = now + self.config.delack
            self._notify("readable")
        else:
            if self.reorder is None:
                self.reorder = ReorderQueue()
            self.reorder.add(seq, payload)
            self.ooo_segments += 1
            self.ack_now = True  # out of order: immediate duplicate ACK (with SACK)
            if fin:
                self.reorder.fin = end
                fin = 0
        return fin

    # == ICMP ====================================================================================

    def icmp_error(self, icmp_type: int, code: int, info: int, wire_seq: int, now: float) -> None:
        seq = self.snd_una + (((wire_seq - self.snd_una + HALF) & MASK) - HALF)
        if not (self.snd_una <= seq <= self.snd_max) and self.state != SYN_SENT:
            self.layer.count("icmp-bad-seq")  # RFC 5927 4.1: must quote data in flight
            return
        if icmp_type == 3 and code == 4:
            mtu = info & 0xFFFF
            if mtu < 68:
                self.layer.count("icmp-bad-mtu")
                return
            new_mss = mtu - 40 - (TS_OPTION_LEN if self.ts_ok else 0)
            if new_mss < 88:
                new_mss = 88
            if new_mss < self.mss:
                self.mss = new_mss
                if self.cc is not None:
                    self.cc.set_mss(new_mss)
                # resend what was in flight in smaller segments (no congestion response)
                if self.state in _CAN_SEND_DATA and self.snd_max > self.snd_una:
                    self.snd_nxt = self.snd_una
                    self.rtt_seq = None
                    self._output(now)
                    self._update_deadline()
            return
        hard = icmp_type == 3 and code in (2, 3, 4)
        if icmp_type == 3 and code == 3:
            err = ConnectionRefusedError(111, "TCP connection refused (ICMP port unreachable)")
        elif icmp_type == 3 and code in (0, 1, 5, 6, 7, 9, 10, 11, 12, 13):
            err = OSError(113, "No route to host (ICMP unreachable)")
        elif icmp_type == 11:
            err = OSError(113, "No route to host (ICMP time exceeded)")
        else:
            return
        if self.state == SYN_SENT and hard:
            self._close_now(now, f"ICMP {icmp_type}/{code}", err)
        else:
            self.soft_error = err  # RFC 1122 4.2.3.9: soft errors are reported, not fatal

    # == introspection ===========================================================================

    def info(self) -> dict:
        """Like ``ss -ti``: state, windows, RTT, retransmissions."""
        cc = self.cc
        return {
            "state": self.state,
            "local": (self.local_ip, self.local_port),
            "remote": (self.remote_ip, self.remote_port),
            "mss": self.mss,
            "snd_wnd": self.snd_wnd,
            "rcv_wnd": max(0, self.rcv_adv - self.rcv_nxt),
            "cwnd": cc.cwnd if cc else None,
            "ssthresh": cc.ssthresh if cc else None,
            "congestion": cc.name if cc else self.config.congestion,
            "srtt_ms": None if self.srtt is None else round(self.srtt * 1000, 3),
            "rto_ms": round(self._current_rto() * 1000, 1),
            "unacked": self.snd_max - self.snd_una,
            "send_queue": len(self.snd_buf),
            "recv_queue": len(self.rcv_buf),
            "retransmits": self.retransmits,
            "fast_retransmits": self.fast_retransmits,
            "timeouts": self.timeouts,
            "bytes_acked": self.bytes_acked,
            "bytes_received": self.bytes_received,
            "options": [name for name, on in (("ts", self.ts_ok), ("sack", self.sack_ok),
                                               ("wscale", self.ws_ok)) if on],
            "wscale": (self.snd_wscale, self.rcv_wscale) if self.ws_ok else None,
            "events": list(self.log),
        }
