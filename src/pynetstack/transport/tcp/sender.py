"""The send side: the send buffer, what may be sent now (RFC 9293 3.8.6: the peer's window and
the congestion window, Nagle's algorithm RFC 1122 4.2.3.4, sender silly-window avoidance RFC
9293 3.8.6.2.1, limited transmit RFC 3042), segmentation offload, and the ACKs that come back
(RFC 9293 3.10.7.4 step 5: SND.UNA, the send window update, RTT samples).

Loss recovery (duplicate ACKs, NewReno, SACK) is ``recovery.py``; the bytes are written by
``emit.py``.  A mixin of ``TcpConnection``: the fields live in the connection's ``__slots__``.
"""

from __future__ import annotations

from ...wire.tcp import ACK, FIN, PSH, SYN
from .state import CAN_SEND_DATA, CLOSED, LISTEN, SYN_SENT, USER_CAN_SEND

GSO_HEADROOM = 80           # IPv4 header + the largest TCP header, below the offload limit


class SenderMixin:
    __slots__ = ()

    def send(self, data, now: float, urgent: bool = False) -> int:
        """Queue up to the free send-buffer space; returns bytes accepted (0 when full).
        ``urgent``: the last byte accepted ends urgent data (RFC 9293 3.8.5, as Linux's
        ``send(MSG_OOB)``): SND.UP moves to the octet after it, and every segment before it
        carries URG and a pointer there until the peer has acknowledged it.

        Raises BrokenPipeError after shutdown/close, or the connection's error."""
        if self.error is not None:
            raise self.error
        if self.fin_queued or self.state not in USER_CAN_SEND:
            raise BrokenPipeError(32, "TCP connection is not open for sending")
        room = self.config.sndbuf - self.snd_buf.size
        if room <= 0:
            return 0
        if len(data) > room:
            data = data[:room]
        self.snd_buf.append(data)
        if urgent and len(data):
            self.snd_up = self.snd_buf_seq + self.snd_buf.size
        if self.state in CAN_SEND_DATA:
            self._output(now)
            self._update_deadline()
        return len(data)

    def send_space(self) -> int:
        return self.config.sndbuf - self.snd_buf.size

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
        data_end = self.snd_buf_seq + self.snd_buf.size
        flags = ACK
        end = seq + length
        if end == data_end:
            if length:
                flags |= PSH
            if self.fin_queued:
                flags |= FIN
        if not length:
            payload = b""
        elif gso:
            # the device finishes the checksum and cuts the segment: hand it the buffer's
            # chunks as they are (a tuple of views, written with writev), not a joined copy
            payload = self.snd_buf.views(start, start + length)
        else:
            payload = self.snd_buf.slice(start, start + length)
        if seq < self.snd_max:
            self.retransmits += 1
            if self.rtt_seq is not None and seq <= self.rtt_seq:
                self.rtt_seq = None  # Karn: never time a retransmitted segment
            if self.ts_ok:
                self.rexmit_ts = self._ts_now(now)
        self._send_segment(seq, flags, payload, now, room if gso and length else 0)
        used = length + (1 if flags & FIN else 0)
        return used

    def _output(self, now: float) -> None:
        """Send what the windows, Nagle and the state allow; then a pending ACK, if any."""
        st = self.state
        sent = False
        if st in CAN_SEND_DATA:
            if self.in_recovery and self.sack_ok:
                sent = self._output_sack_recovery(now)
            mss = self.mss - self._sack_overhead()
            cc = self.cc
            nodelay = self.config.nodelay
            timers = self.timers
            seg_max = mss
            gso = 0
            if self.snd_buf_seq + self.snd_buf.size - self.snd_nxt > mss:
                largest = self.layer.max_segment(self.remote_ip)
                if largest > GSO_HEADROOM + 2 * mss:
                    gso = seg_max = (largest - GSO_HEADROOM) // mss * mss
                self.gso = gso
            # full-sized new segments in a row take _send_burst (one header pack per frame)
            fast = not gso and self.ts_ok and mss == self.mss and self.path is not None
            if self.snd_up is not None:
                if self.snd_up <= self.snd_una:
                    self.snd_up = None  # the urgent data is acknowledged: urgent mode ends
                else:
                    gso, fast = 0, False  # each segment's URG pointer is its own (emit.py)
            while True:
                snd_nxt = self.snd_nxt
                data_end = self.snd_buf_seq + self.snd_buf.size
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
                    usable = self._sack_usable(cwnd, snd_nxt, avail, mss)
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
                            if timers.rexmit is None:
                                timers.rexmit = now + self._current_rto()
                                timers.persist = None
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
                if timers.rexmit is None:
                    timers.rexmit = now + self._current_rto()
                    timers.persist = None
            self._maybe_arm_persist(now)
        if self.ack_now and not sent:
            if st != CLOSED and st != SYN_SENT and st != LISTEN:
                self._send_ack(now)
        elif sent:
            self.ack_now = False

    def _process_ack(self, seg, seq: int, ack: int, seg_len: int, now: float) -> None:
        """An acceptable ACK (SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.MAX): free what it
        acknowledges, take an RTT sample, count duplicates, update the send window."""
        snd_una = self.snd_una
        new_sack = self._take_sack_blocks(seg, ack, snd_una) if seg.sack_blocks else 0
        wnd = seg.window << self.snd_wscale
        if ack > snd_una:
            acked = ack - snd_una
            self.bytes_acked += acked
            data_end = self.snd_buf_seq + self.snd_buf.size
            drop = (ack if ack < data_end else data_end) - self.snd_buf_seq
            if drop > 0:
                self.snd_buf.drop(drop)
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
            sb = self.scoreboard
            if sb is not None:
                sb.update(ack, self.snd_max, ())
            self.rexmit_count = 0
            self.first_rexmit = None
            self.soft_error = None  # the path works again (as Linux's tcp_ack clears sk_err_soft)
            self.dupacks = 0
            if self.in_recovery:
                self._recovery_ack(ack, acked, now)
            else:
                self.cc.on_ack(acked, now, rtt)
            self.timers.rexmit = None if ack == self.snd_max else now + self._current_rto()
            if drop > 0:
                # like Linux's write-space threshold: wake writers when half the buffer is free,
                # not on every ACK (fewer, larger appends to the send buffer)
                size = self.config.sndbuf
                if size - self.snd_buf.size >= size >> 1 or not self.snd_buf.size:
                    self._notify("writable")
        elif (ack == snd_una and seg_len == 0 and not seg.flags & (SYN | FIN)
              and self.snd_max > snd_una and (wnd == self.snd_wnd or new_sack)):
            self._duplicate_ack(now)
        # window update (RFC 9293 3.10.7.4): only from a segment newer than the last update
        if self.snd_wl1 < seq or (self.snd_wl1 == seq and self.snd_wl2 <= ack):
            self.snd_wnd = wnd
            self.snd_wl1 = seq
            self.snd_wl2 = ack
            if wnd > self.max_snd_wnd:
                self.max_snd_wnd = wnd
            if wnd:
                self.timers.persist = None
                self.persist_backoff = 0
