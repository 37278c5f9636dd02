"""A connection's timers behind one object, and what each does when it fires.

``ConnectionTimers`` holds five absolute deadlines (None when off): retransmission (RFC 6298),
persist (zero-window probes, RFC 9293 3.8.6.1), delayed ACK (RFC 9293 3.8.6.3, RFC 1122
4.2.3.2), keepalive (RFC 1122 4.2.3.6) and linger (2 MSL in TIME-WAIT, RFC 9293 3.3.2; the
FIN-WAIT-2 timeout as Linux's tcp_fin_timeout).  ``next_deadline`` is the earliest of them: the
connection tells its layer that one time, and the layer's heap calls ``on_timer`` then.

``TimerMixin`` (part of ``TcpConnection``) is what happens when each one fires.
"""

from __future__ import annotations

from ...wire.tcp import ACK
from .state import CAN_SEND_DATA, CLOSED, KEEPALIVE_STATES, SYN_RECEIVED, SYN_SENT, SYNCHRONIZED, TIME_WAIT

MIN_PERSIST = 0.2      # a probe interval below this is never useful (Linux: TCP_RTO_MIN)
R2_SECONDS = 100.0     # RFC 9293 3.8.3: R2, the shortest time before giving up on a peer


class ConnectionTimers:
    __slots__ = ("rexmit", "persist", "delack", "keepalive", "linger")

    def __init__(self):
        self.rexmit = self.persist = self.delack = self.keepalive = self.linger = None

    def next_deadline(self):
        """The earliest armed deadline, or None."""
        d = self.rexmit
        for t in (self.persist, self.delack, self.keepalive, self.linger):
            if t is not None and (d is None or t < d):
                d = t
        return d

    def cancel_all(self) -> None:
        self.rexmit = self.persist = self.delack = self.keepalive = self.linger = None

    def armed(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__ if getattr(self, name) is not None}


class TimerMixin:
    __slots__ = ()

    def _update_deadline(self) -> None:
        """Tell the layer the earliest deadline (once per change: its heap keeps stale entries)."""
        d = self.timers.next_deadline()
        self.deadline = d
        if d is not None and d != self._sched:
            self.layer.schedule(self, d)

    def on_timer(self, now: float) -> None:
        if self.state == CLOSED:
            return
        timers = self.timers
        if timers.linger is not None and now >= timers.linger:
            timers.linger = None
            why = "2MSL timeout" if self.state == TIME_WAIT else "FIN-WAIT-2 timeout"
            self._close_now(now, why, None)
            return
        if timers.rexmit is not None and now >= timers.rexmit:
            timers.rexmit = None
            self._retransmit_timeout(now)
            if self.state == CLOSED:
                return
        if timers.persist is not None and now >= timers.persist:
            timers.persist = None
            self._persist_fire(now)
        if timers.delack is not None and now >= timers.delack:
            timers.delack = None
            if self.ack_pending or self.ack_now:
                self.ack_now = True
                self._output(now)
        if timers.keepalive is not None and now >= timers.keepalive:
            timers.keepalive = None
            self._keepalive_fire(now)
            if self.state == CLOSED:
                return
        self._update_deadline()

    # -- retransmission (RFC 6298 5) ----------------------------------------------------------------

    def _give_up(self, now: float) -> bool:
        """R2 of RFC 9293 3.8.3, counted in retransmissions as Linux's tcp_retries2/syn_retries."""
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

    def _timed_out(self, text: str):
        """The error of a connection that gave up: the last soft ICMP error if there was one (it
        says why the peer went silent, RFC 1122 4.2.3.9), else ETIMEDOUT, as Linux's tcp_write_err."""
        return self.soft_error or TimeoutError(110, text)

    def _retransmit_timeout(self, now: float) -> None:
        st = self.state
        if self._give_up(now):
            if st == SYN_SENT:
                err = self._timed_out("TCP connect timed out")
            else:
                err = self._timed_out("TCP connection timed out (no ACK)")
                if st in SYNCHRONIZED:
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
            self.timers.rexmit = now + self._current_rto()
            return
        if self.snd_max == self.snd_una:
            return
        self._timeout_recovery(now)
        self.timers.rexmit = now + self._current_rto()
        self._output(now)

    # -- persist (zero-window probes) ---------------------------------------------------------------

    def _maybe_arm_persist(self, now: float) -> None:
        """Data waits, nothing is in flight and the window forbids sending: probe later."""
        timers = self.timers
        if (timers.rexmit is None and timers.persist is None and self.snd_max == self.snd_una
                and (self.snd_buf_seq + len(self.snd_buf) > self.snd_nxt
                     or (self.fin_queued and self.snd_nxt <= self.snd_buf_seq + len(self.snd_buf)))):
            interval = self._current_rto() * (1 << min(self.persist_backoff, 10))
            if interval > self.config.rto_max:
                interval = self.config.rto_max
            if interval < MIN_PERSIST:
                interval = MIN_PERSIST
            timers.persist = now + interval

    def _persist_fire(self, now: float) -> None:
        if self.state not in CAN_SEND_DATA:
            return
        data_end = self.snd_buf_seq + len(self.snd_buf)
        if self.snd_wnd == 0:
            # A peer that answers keeps being probed (RFC 9293 3.8.6.1); one silent through
            # retries2 probes and for longer than R2 (100 s, RFC 9293 3.8.3) is gone, as Linux's
            # probe timer gives up after tcp_retries2.  An answered probe moves last_recv, and
            # probes are at most rto_max apart, so a live peer never looks silent this long.
            if (self.persist_backoff >= self.config.retries2
                    and now - self.last_recv > max(self.config.rto_max, R2_SECONDS)):
                self._send_rst(self.snd_nxt, now)
                self._close_now(now, "zero-window probes unanswered",
                                self._timed_out("TCP connection timed out (zero-window probes unanswered)"))
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
            self.timers.rexmit = now + self._current_rto()
            return
        self._maybe_arm_persist(now)

    # -- keepalive (RFC 1122 4.2.3.6) ---------------------------------------------------------------

    def _arm_keepalive(self, now: float) -> None:
        if self.config.keepalive and self.state in KEEPALIVE_STATES:
            self.timers.keepalive = self.last_recv + self.config.keepidle
        else:
            self.timers.keepalive = None

    def _keepalive_fire(self, now: float) -> None:
        cfg = self.config
        if not cfg.keepalive or self.state not in KEEPALIVE_STATES:
            return
        idle = now - self.last_recv
        if idle < cfg.keepidle:
            self.timers.keepalive = self.last_recv + cfg.keepidle
            return
        if self.keep_probes >= cfg.keepcnt:
            self._send_rst(self.snd_nxt, now)
            self._close_now(now, "keepalive timeout", self._timed_out("TCP keepalive timed out"))
            return
        self.keep_probes += 1
        self._send_segment(self.snd_una - 1, ACK, b"", now)  # an old sequence number: ACK me
        self.timers.keepalive = now + cfg.keepintvl
