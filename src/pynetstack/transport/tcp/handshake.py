"""Opening a connection: the three-way handshake (RFC 9293 3.5), active, passive, simultaneous,
and from a SYN cookie (RFC 4987 3.6).

A mixin of ``TcpConnection``: the fields live in the connection's ``__slots__``.
"""

from __future__ import annotations

from ...wire.tcp import ACK, RST, SYN, build_options
from .seq import MASK, unwrap
from .state import ESTABLISHED, FIN_WAIT_1, LISTEN, SYN_RECEIVED, SYN_SENT


class HandshakeMixin:
    __slots__ = ()

    def _init_send(self, iss: int) -> None:
        self.iss = iss
        self.snd_una = self.snd_nxt = self.snd_max = iss
        self.snd_buf_seq = iss + 1

    def _syn_sent(self, now: float) -> None:
        """Our SYN (or SYN-ACK) went out: it takes one sequence number and is timed."""
        self.snd_nxt = self.snd_max = self.iss + 1
        self.timers.rexmit = now + self.rto
        self.first_rexmit = now
        self._update_deadline()

    def open_active(self, iss: int, now: float) -> None:
        """Active OPEN: send a SYN, enter SYN-SENT."""
        cfg = self.config
        self._init_send(iss)
        self.ts_offset = self.layer.ts_offset(self.key)
        self.rcv_wscale = self._choose_rcv_wscale() if cfg.window_scaling else 0
        self._set_state(SYN_SENT, now, "active open")
        self._send_syn(now)
        self._syn_sent(now)

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
        self._syn_sent(now)

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

    def _send_syn(self, now: float) -> None:
        """Our SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED), first or retransmitted."""
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
        window = min(cfg.rcvbuf, 0xFFFF)  # never scaled in a SYN (RFC 7323 2.2)
        ack = self.rcv_nxt & MASK if flags & ACK else 0
        self._write(self.iss & MASK, ack, flags, window, opts, now)

    def _arrive_syn_sent(self, seg, now: float) -> None:
        """RFC 9293 3.10.7.3: a segment in SYN-SENT."""
        flags = seg.flags
        if flags & ACK:
            ack = unwrap(seg.ack, self.snd_una)
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
            self.timers.rexmit = now + self._current_rto()

    def _ack_of_syn(self, seg, seq: int, ack: int, now: float) -> bool:
        """RFC 9293 3.10.7.4 step 5 in SYN-RECEIVED: the ACK of our SYN-ACK.  False when the
        segment is done with (answered with RST, or no room in the accept queue)."""
        layer = self.layer
        if not (self.snd_una < ack <= self.snd_max):
            layer.send_reset_for(self.local_ip, self.remote_ip, seg, now)
            return False
        listener = self.listener
        if listener is not None and listener.accept_queue_full():
            layer.count("accept-queue-full")
            return False
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
        if self.state == FIN_WAIT_1:
            self._output(now)
        return True

    def _established(self, now: float, why: str) -> None:
        self.timers.rexmit = None
        self.backoff = 0
        self.rexmit_count = 0
        self.first_rexmit = None
        self._set_state(ESTABLISHED, now, why)
        self.last_recv = now
        self._arm_keepalive(now)
        if self.fin_queued:
            self._set_state(FIN_WAIT_1, now, "queued close")
        self._notify("connected")
