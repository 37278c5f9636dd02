"""Loss recovery: duplicate ACKs and fast retransmit (RFC 5681 3.2), NewReno (RFC 6582) without
SACK, SACK-based recovery (RFC 6675) with it, and the retransmission timeout's go-back-N
(RFC 6298 5.4-5.6, RFC 5681 3.1).  The congestion window itself is ``congestion.py``'s; the
SACK scoreboard is ``sack.py``'s.

A mixin of ``TcpConnection``: the fields live in the connection's ``__slots__``.
"""

from __future__ import annotations

from .sack import Scoreboard
from .seq import unwrap

DUPACK_THRESHOLD = 3  # RFC 5681 3.2: the third duplicate ACK means a loss
SACK_RECOVERY_BURST = 64  # retransmissions per call of _output_sack_recovery, a bound


class RecoveryMixin:
    __slots__ = ()

    def _take_sack_blocks(self, seg, ack: int, snd_una: int) -> int:
        """Record the SACK blocks of ``seg`` (RFC 2018) in the scoreboard; returns how much
        newly SACKed data they report (that makes an ACK a duplicate in RFC 6675's sense)."""
        sb = self.scoreboard
        if sb is None:
            if not self.sack_ok:
                return 0
            sb = self.scoreboard = Scoreboard()  # created on first use: idle connections stay small
        blocks = []
        for left, right in seg.sack_blocks:
            l_abs = unwrap(left, snd_una)
            blocks.append((l_abs, l_abs + ((right - left) & 0xFFFFFFFF)))
        return sb.update(ack if ack > snd_una else snd_una, self.snd_max, blocks)

    def _duplicate_ack(self, now: float) -> None:
        """RFC 5681 3.2 / RFC 6675 5: count it; the third (or a SACK loss) starts recovery."""
        self.dupacks += 1
        if not self.in_recovery:
            sb = self.scoreboard
            if ((self.dupacks >= DUPACK_THRESHOLD or (sb is not None and sb.is_lost(self.snd_una, self.mss)))
                    and self.snd_una >= self.recover):
                self._enter_recovery(now)
        elif not self.sack_ok:
            self.cc.cwnd += self.mss  # NewReno inflation (RFC 6582 3.2 step 4)

    def _enter_recovery(self, now: float) -> None:
        """Fast retransmit of the first unacknowledged segment; cwnd to ssthresh (+3 for NewReno)."""
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
        self.timers.rexmit = now + self._current_rto()

    def _recovery_ack(self, ack: int, acked: int, now: float) -> None:
        """An ACK of new data during recovery: a full ACK ends it, a partial one retransmits
        the next hole (NewReno, RFC 6582 3.2 step 3) or moves HighRxt (RFC 6675)."""
        cc = self.cc
        mss = self.mss
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
            self._send_range(ack, min(mss, self.snd_buf_seq + len(self.snd_buf) - ack), now)
            self.fast_retransmits += 1
            cwnd = cc.cwnd - acked + mss
            cc.cwnd = cwnd if cwnd > mss else mss

    def _sack_usable(self, cwnd: int, snd_nxt: int, avail: int, mss: int) -> int:
        """RFC 6675 5 step 4: what the pipe leaves of cwnd for new data, within the peer's window."""
        usable = cwnd - self.scoreboard.pipe(self.snd_una, self.snd_max, self.high_rxt, mss)
        if usable < mss and avail > usable:
            usable = 0
        right = self.snd_una + self.snd_wnd - snd_nxt
        return right if right < usable else usable

    def _output_sack_recovery(self, now: float) -> bool:
        """RFC 6675 5 (step 4.3 onwards): while cwnd - pipe >= 1 SMSS, send NextSeg()."""
        sb = self.scoreboard
        mss = self.mss
        sent = False
        for _ in range(SACK_RECOVERY_BURST):
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

    def _timeout_recovery(self, now: float) -> None:
        """RFC 6298 5.4-5.6 and RFC 5681 3.1: after an RTO, slow start from SND.UNA (go back N)."""
        self.cc.on_timeout(now, self.snd_max - self.snd_una)
        self.in_recovery = False
        self.dupacks = 0
        self.recover = self.snd_max
        if self.scoreboard is not None:
            self.scoreboard.clear()
        self.high_rxt = self.snd_una
        self.snd_nxt = self.snd_una
