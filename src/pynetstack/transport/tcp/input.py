"""Segment arrival (RFC 9293 3.10.7): ``segment_arrives`` for every state but CLOSED and LISTEN
(the layer handles those).  SYN-SENT is ``handshake._arrive_syn_sent``; the synchronized states
go through the RFC's steps in order, one named method each:

    PAWS (RFC 7323 5.3)          _paws_rejects (options.py)
    1. sequence number           _check_sequence
    2. RST bit                   _rst_arrives        (RFC 5961 3.2: challenge ACK unless exact)
    4. SYN bit                   _syn_arrives        (RFC 5961 4.2: challenge ACK)
    5. ACK field                 _ack_arrives        (handshake._ack_of_syn in SYN-RECEIVED,
                                                      sender._process_ack otherwise)
    6. URG bit                   _urgent_arrives     (receiver.py)
    7. segment text              _segment_text       (receiver._receive_data)
    8. FIN bit                   _fin_bit            (receiver._fin_arrives)

(Step 3, security/compartment, is obsolete. Urgent data stays in line, as RFC 6093 recommends
and SO_OOBINLINE does; step 6 tells the application where it ends.) Before the steps, header
prediction (``_predicted_ack``) takes the bare ACK of a bulk transfer straight to ACK
processing, and ``_predicted_data`` the next in-order data segment of a bulk receive straight
to step 7.

A mixin of ``TcpConnection``: the fields live in the connection's ``__slots__``.
"""

from __future__ import annotations

from ...wire.tcp import ACK, FIN, PSH, RST, SYN, URG
from .seq import seq_lt, unwrap
from .state import (CLOSED, CLOSING, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, LAST_ACK, RECEIVES_DATA,
                    SYN_RECEIVED, SYN_SENT, TIME_WAIT)

_ACK_PSH = ACK | PSH


class InputMixin:
    __slots__ = ()

    def segment_arrives(self, seg, now: float) -> None:
        """RFC 9293 3.10.7, for every state but CLOSED and LISTEN (the layer handles those)."""
        self.segs_in += 1
        if self.state == SYN_SENT:
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
        """RFC 5961 7: challenge ACKs are rate limited (per layer)."""
        if self.layer.challenge_ack_allowed(now):
            self._send_ack(now)
        else:
            self.layer.count("challenge-ack-rate-limited")

    def _acceptable_arrived(self, seg, seq: int, now: float) -> None:
        """After step 5: remember the peer's clock (RFC 7323 4.3); the peer is alive, so
        keepalive starts over."""
        if self.ts_ok and seg.ts_val is not None and seq <= self.last_ack_sent:
            self._remember_timestamp(seg.ts_val, now)
        self.last_recv = now
        if self.keep_probes:
            self.keep_probes = 0
        if self.timers.keepalive is not None or self.config.keepalive:
            self._arm_keepalive(now)

    def _arrive_synchronized(self, seg, now: float) -> None:
        """RFC 9293 3.10.7.4, the steps in order (see the module's docstring)."""
        flags = seg.flags
        rcv_nxt = self.rcv_nxt
        seq = unwrap(seg.seq, rcv_nxt)
        payload = seg.payload
        seg_len = len(payload)
        if self.state == ESTABLISHED and seq == rcv_nxt and not seg.sack_blocks and not self.in_recovery:
            if flags == ACK and not seg_len:
                if self._predicted_ack(seg, seq, now):
                    return  # header prediction took it
            elif (flags == ACK or flags == _ACK_PSH) and seg_len and self._predicted_data(seg, seq, payload, now):
                return
        if (self.ts_ok and seg.ts_val is not None and not flags & RST and self.ts_recent is not None
                and seq_lt(seg.ts_val, self.ts_recent) and self._paws_rejects(seg, now)):
            return
        # step 1; a segment at RCV.NXT with the window open is acceptable without the table
        if not (seq == rcv_nxt and self.rcv_adv > rcv_nxt) and not self._check_sequence(seg, seq, seg_len, now):
            return
        if flags & RST:  # step 2
            self._rst_arrives(seq, now)
            return
        if flags & SYN:  # step 4
            self._syn_arrives(now)
            return
        if not flags & ACK:  # step 5
            self.layer.count("no-ack")
            return
        ack = self._ack_arrives(seg, seq, seg_len, now)
        if ack is None:
            return
        self._acceptable_arrived(seg, seq, now)
        if flags & URG and self.state in RECEIVES_DATA:  # step 6
            self._urgent_arrives(seq + seg.urgent)
        fin = self._segment_text(seg, seq, ack, now)  # step 7
        if fin:  # step 8
            self._fin_bit(seq + seg_len, now)

    def _predicted_ack(self, seg, seq: int, now: float) -> bool:
        """Header prediction for the bare ACK of a bulk sender (as Linux's tcp_rcv_established
        fast path): ESTABLISHED, only the ACK flag, no data, in sequence, no SACK blocks, no
        recovery (the caller checked those), new data ACKed, timestamps that pass PAWS.  Such
        a segment passes every step (acceptable, no RST/SYN, ACK within SND.UNA..SND.MAX) and
        carries no text or FIN.  False: take the full path."""
        ts_val = seg.ts_val
        ts_recent = self.ts_recent
        if self.ts_ok and (ts_val is None or ts_recent is None or seq_lt(ts_val, ts_recent)):
            return False  # the full path (PAWS, ts_recent)
        snd_una = self.snd_una
        ack = unwrap(seg.ack, snd_una)
        if not snd_una < ack <= self.snd_max:
            return False
        self._process_ack(seg, seq, ack, 0, now)
        if ts_val is not None and self.ts_ok and seq <= self.last_ack_sent:
            self.ts_recent = ts_val  # newer than TS.Recent: checked above
            self.ts_recent_age = now
        self.last_recv = now  # as _acceptable_arrived, inline on this path
        if self.keep_probes:
            self.keep_probes = 0
        if self.timers.keepalive is not None or self.config.keepalive:
            self._arm_keepalive(now)
        return True

    def _predicted_data(self, seg, seq: int, payload, now: float) -> bool:
        """Header prediction for the next in-order data segment of a bulk receiver (Linux's
        other fast path): ESTABLISHED, ACK (and PSH) only, at RCV.NXT with the window open,
        acknowledging nothing new and leaving the send window as it is, no SACK blocks, no
        recovery (the caller checked those), timestamps that pass PAWS.  Such a segment passes
        steps 1 to 5 without a change but the window-update bookkeeping, so it goes straight
        to step 7.  False: take the full path."""
        ts_val = seg.ts_val
        ts_recent = self.ts_recent
        if self.ts_ok and (ts_val is None or ts_recent is None or seq_lt(ts_val, ts_recent)):
            return False
        snd_una = self.snd_una
        if (unwrap(seg.ack, snd_una) != snd_una or seg.window << self.snd_wscale != self.snd_wnd
                or self.rcv_adv <= seq):
            return False
        # step 5's window update (RFC 9293 3.10.7.4): the same window, newer SND.WL1/WL2
        if self.snd_wl1 < seq or (self.snd_wl1 == seq and self.snd_wl2 <= snd_una):
            self.snd_wl1 = seq
            self.snd_wl2 = snd_una
            if self.snd_wnd:
                self.timers.persist = None
                self.persist_backoff = 0
        # _acceptable_arrived, inline
        if ts_val is not None and self.ts_ok and seq <= self.last_ack_sent:
            self.ts_recent = ts_val  # not older than TS.Recent: checked above
            self.ts_recent_age = now
        self.last_recv = now
        if self.keep_probes:
            self.keep_probes = 0
        if self.timers.keepalive is not None or self.config.keepalive:
            self._arm_keepalive(now)
        self._receive_data(seq, payload, 0, now, seg.gso_size)  # step 7 (no FIN: step 8 has nothing to do)
        return True

    def _check_sequence(self, seg, seq: int, seg_len: int, now: float) -> bool:
        """Step 1: the acceptability test (RFC 9293 3.10.7.4 table 6).  False: the segment was
        answered (an ACK, unless it is a RST) and dropped."""
        flags = seg.flags
        rcv_nxt = self.rcv_nxt
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
        if ok:
            return True
        st = self.state
        layer = self.layer
        if st == TIME_WAIT and flags & SYN and not flags & ACK and seq > rcv_nxt:
            layer.reopen_from_time_wait(self, seg, now)
            return False
        if flags & RST:
            layer.count("rst-out-of-window")
            return False
        if st == SYN_RECEIVED and flags & SYN and not flags & ACK and seq == self.irs:
            self._send_syn(now)  # our SYN-ACK was lost: the peer's SYN came again
            layer.count("syn-retransmitted")
            return False
        if st == TIME_WAIT and flags & FIN:
            self.timers.linger = now + 2 * self.config.msl  # RFC 9293: restart the 2 MSL timeout
        if seg_size and seq < rcv_nxt:
            self.dup_segments += 1
        layer.count("out-of-window")
        self.ack_now = True
        return False

    def _rst_arrives(self, seq: int, now: float) -> None:
        """Step 2 (RFC 5961 3.2): a RST at exactly RCV.NXT resets, any other gets a challenge."""
        if seq != self.rcv_nxt:
            self._challenge_ack(now)
            return
        st = self.state
        if st == SYN_RECEIVED:
            if self.passive:
                self._close_now(now, "RST in SYN-RECEIVED (back to LISTEN)", None)
            else:
                self._close_now(now, "RST in SYN-RECEIVED",
                                ConnectionRefusedError(111, "TCP connection refused"))
        elif st == TIME_WAIT:
            self.layer.count("rst-in-time-wait-ignored")  # RFC 1337
        elif st in (CLOSING, LAST_ACK):
            self._close_now(now, "RST", None)
        else:
            self._close_now(now, "RST received",
                            ConnectionResetError(104, "TCP connection reset by peer"))

    def _syn_arrives(self, now: float) -> None:
        """Step 4: a SYN in a synchronized state (RFC 5961 4.2: challenge ACK)."""
        if self.state == TIME_WAIT:
            self.ack_now = True
            return
        self._challenge_ack(now)

    def _ack_arrives(self, seg, seq: int, seg_len: int, now: float):
        """Step 5: the ACK field.  Returns the unwrapped SEG.ACK, or None when the segment is
        done with (dropped, answered, or the connection ended)."""
        st = self.state
        ack = unwrap(seg.ack, self.snd_una)
        if st == SYN_RECEIVED:
            return ack if self._ack_of_syn(seg, seq, ack, now) else None
        if st == TIME_WAIT:
            if seg.flags & FIN:
                self.ack_now = True
                self.timers.linger = now + 2 * self.config.msl
            return None
        if ack > self.snd_max:
            self.layer.count("ack-of-unsent")
            self.ack_now = True
            return None
        if ack < self.snd_una - self.max_snd_wnd:
            self._challenge_ack(now)  # RFC 5961 5.2: too old to be believed
            return None
        self._process_ack(seg, seq, ack, seg_len, now)
        st = self.state
        if st == CLOSED:
            return None
        if self.fin_queued and self.snd_una > self.snd_buf_seq + len(self.snd_buf):  # our FIN is acked
            if st == FIN_WAIT_1:
                self._set_state(FIN_WAIT_2, now, "FIN acked")
                if self.user_closed:
                    self.timers.linger = now + self.config.fin_timeout
            elif st == CLOSING:
                self._enter_time_wait(now, "FIN acked")
                return None
            elif st == LAST_ACK:
                self._close_now(now, "FIN acked", None)
                return None
        return ack

    def _segment_text(self, seg, seq: int, ack: int, now: float) -> int:
        """Step 7: deliver the data.  Returns the FIN bit if it still counts (0 otherwise)."""
        payload = seg.payload
        seg_len = len(payload)
        st = self.state
        if (seg_len and self.user_closed and st in (FIN_WAIT_1, FIN_WAIT_2)
                and seq + seg_len > self.rcv_nxt):
            # RFC 1122 4.2.2.13: new data for an application that closed can never be read;
            # answer with RST (as Linux does) so the peer stops sending. Its ACK field is its
            # RCV.NXT: the RST's sequence number matches exactly (RFC 5961 3.2).
            self._send_rst(ack, now)
            self.layer.count("data-after-close")
            self._close_now(now, "data after close", None)
            return 0
        fin = seg.flags & FIN
        if seg_len and st in RECEIVES_DATA:
            fin = self._receive_data(seq, payload, fin, now, seg.gso_size)
        elif seg_len:
            self.layer.count("data-after-fin")
            self.ack_now = True
            if fin and seq + seg_len != self.rcv_nxt:
                fin = 0
        return fin

    def _fin_bit(self, fin_seq: int, now: float) -> None:
        """Step 8: a FIN at RCV.NXT closes the receive side; one beyond a hole waits for it."""
        if fin_seq == self.rcv_nxt:
            self._fin_arrives(now)
        elif fin_seq > self.rcv_nxt and self.reorder is not None:
            self.reorder.fin = fin_seq  # out of order: remember it until the hole fills
