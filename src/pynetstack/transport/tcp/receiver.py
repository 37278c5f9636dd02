"""The receive side: in-order delivery and reassembly of out-of-order data (RFC 9293 3.10.7.4
step 7, RFC 2018 SACK blocks from ``sack.ReorderQueue``), the window we advertise with receiver
silly-window avoidance (RFC 9293 3.8.6.2.2), the ACK policy (delayed ACKs, RFC 9293 3.8.6.3 and
RFC 5681 4.2; immediate ACKs for out-of-order data and filled holes) and the FIN (step 8).

A mixin of ``TcpConnection``: the fields live in the connection's ``__slots__``.
"""

from __future__ import annotations

from .sack import ReorderQueue
from .state import CLOSE_WAIT, CLOSING, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, RECEIVES_DATA, SYN_RECEIVED

STRETCH_ACK_SEGMENTS = 8      # a batch's stretch ACK covers at most this many full segments


class ReceiverMixin:
    __slots__ = ()

    def readable_bytes(self) -> int:
        return self.rcv_buf.size

    def urgent_remaining(self) -> int:
        """Bytes from the next one the application reads to the end of the peer's urgent data
        (RFC 9293 MUST-32: the application can learn how much urgent data remains); 0 when none
        is pending.  The urgent data is in the stream, in order, as everything else."""
        if self.rcv_up is None:
            return 0
        remaining = self.rcv_up - self._read_seq()
        return remaining if remaining > 0 else 0

    def _read_seq(self) -> int:
        """The sequence number of the next byte the application reads (a FIN counts in
        RCV.NXT but is not in the buffer)."""
        return self.rcv_nxt - self.rcv_buf.size - (1 if self.fin_received else 0)

    def _urgent_arrives(self, up: int) -> None:
        """Step 6 (RFC 9293 3.10.7.4): RCV.UP <- max(RCV.UP, SEG.UP), where SEG.UP is SEG.SEQ plus
        the urgent pointer, the octet after the urgent data (MUST-31); the application hears of
        it (an "urgent" event) whenever the pointer moves ahead of what it has read (MUST-32)."""
        if self.rcv_up is not None and up <= self.rcv_up:
            return
        self.rcv_up = up
        if up > self._read_seq():
            self._notify("urgent")

    def at_eof(self) -> bool:
        return self.fin_received and not self.rcv_buf

    def recv(self, max_bytes: int, now: float) -> bytes:
        """Take up to ``max_bytes`` of in-order data (b"" if none). May send a window update."""
        buf = self.rcv_buf
        if not buf.size:
            return b""
        data = buf.take(max_bytes)
        self._window_after_read(now)
        return data

    def recv_chunk(self, max_bytes: int, now: float) -> bytes:
        """As ``recv``, but the data may come in smaller pieces: large ones as they arrived,
        without joining them (see ``ReceiveBuffer.take_chunk``).  For event handlers."""
        buf = self.rcv_buf
        if not buf.size:
            return b""
        data = buf.take_chunk(max_bytes)
        self._window_after_read(now)
        return data

    def _window_after_read(self, now: float) -> None:
        if self.state in RECEIVES_DATA:
            size = self.config.rcvbuf
            right = self.rcv_nxt + size - self.rcv_buf.size
            threshold = max(2 * self.adv_mss, size >> 2)
            if threshold > size >> 1:
                threshold = size >> 1
            if right - self.rcv_adv >= threshold:
                self.ack_now = True  # the read opened the window a lot: tell the peer now
                self._output(now)
                self._update_deadline()

    def _window_field(self) -> int:
        """The window field of our next segment (scaled), moving RCV.ADV: never shrinks the
        window (RFC 9293 3.8.6.2.2 / RFC 7323 2.4) and opens it in big steps only."""
        size = self.config.rcvbuf
        rcv_nxt = self.rcv_nxt
        right = rcv_nxt + size - self.rcv_buf.size
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

    def _ack_bound(self, mss: int) -> int:
        """The most in-order data an ACK may wait for, in bytes: beyond it ``_receive_data``
        acknowledges at once.  Every second full segment (RFC 5681 4.2); with batching the
        ACK waits for the end of the batch (see segment_arrives and flush) unless one more
        full segment would take the stretch past STRETCH_ACK_SEGMENTS, or a quarter of the
        receive buffer is waiting."""
        if not self.layer.batching:
            return 2 * mss - 1
        quarter = self.config.rcvbuf >> 2
        bound = (quarter if quarter > 2 * mss else 2 * mss) - 1
        stretch = (STRETCH_ACK_SEGMENTS - 1) * mss
        return stretch if stretch < bound else bound

    def _rcv_mss_after(self, size: int) -> int:
        """RCV.MSS (the peer's segment size, as Linux's tcp_measure_rcv_mss) once a segment of
        ``size`` has arrived: a segment larger than our MSS came through receive offload and
        stands for several, so it never raises the ACK-every-two-segments threshold."""
        if size > self.rcv_mss:
            return size if size < self.adv_mss else self.adv_mss
        return self.rcv_mss

    def _receive_data(self, seq: int, payload, fin: int, now: float, gso_size: int = 0) -> int:
        """Deliver in-window data; returns the FIN flag if it is still meaningful.  ``gso_size``:
        the payload is that of several segments this big, merged (gro.py)."""
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
        size = gso_size or n  # the size of the segments (a merged one's: gro.py)
        if size > self.rcv_mss:
            self.rcv_mss = self._rcv_mss_after(size)
        if seq == rcv_nxt:
            self.rcv_buf.append(payload)
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
                        self.rcv_buf.append(more)
                        rcv_nxt += len(more)
                        self.bytes_received += len(more)
                self.rcv_nxt = rcv_nxt
                if reorder.fin is not None and reorder.fin == rcv_nxt:
                    self._notify("readable")
                    self._fin_arrives(now)  # the FIN that waited behind the hole
                    return 0
            self.rcv_nxt = rcv_nxt
            pending = self.ack_pending = self.ack_pending + n
            if pending > self._ack_bound(self.rcv_mss):
                self.ack_now = True
            elif pending < 2 * self.rcv_mss and self.timers.delack is None:
                self.timers.delack = now + self.config.delack
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

    def _fin_arrives(self, now: float) -> None:
        """RFC 9293 3.10.7.4 step 8: the peer's FIN, in sequence."""
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
