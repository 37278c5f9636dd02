"""Out-of-order data on the receive side (with the SACK blocks it implies, RFC 2018) and the
SACK scoreboard on the send side (RFC 6675).  Sequence numbers are unwrapped ints."""

from __future__ import annotations

from bisect import bisect_left


class ReorderQueue:
    """Segments that arrived beyond RCV.NXT, merged into disjoint ``[start, end, bytearray]``
    runs.  The caller only admits data inside the receive window, so the queue is bounded by
    the window; ``recent`` remembers which runs changed last, for the SACK block order."""

    __slots__ = ("runs", "recent", "fin")

    def __init__(self):
        self.runs = []      # sorted, disjoint, non-adjacent: [start, end, data]
        self.recent = []    # starts of recently touched runs, most recent first
        self.fin = None     # unwrapped sequence number of an out-of-order FIN

    def __len__(self):
        return len(self.runs)

    def bytes_held(self) -> int:
        return sum(end - start for start, end, _ in self.runs)

    def add(self, start: int, data) -> None:
        end = start + len(data)
        runs = self.runs
        i = bisect_left([r[1] for r in runs], start) if len(runs) > 8 else 0
        while i < len(runs) and runs[i][1] < start:
            i += 1
        # runs[i:] end at or after start; merge every run that overlaps or touches [start, end)
        j = i
        new_start, new_end = start, end
        pieces = []
        while j < len(runs) and runs[j][0] <= end:
            rs, re, rd = runs[j]
            pieces.append((rs, re, rd))
            if rs < new_start:
                new_start = rs
            if re > new_end:
                new_end = re
            j += 1
        if not pieces:
            runs.insert(i, [start, end, bytearray(data)])
        else:
            buf = bytearray(new_end - new_start)
            buf[start - new_start:end - new_start] = data
            for rs, re, rd in pieces:  # existing bytes win (they are identical for an honest peer)
                buf[rs - new_start:re - new_start] = rd
            runs[i:j] = [[new_start, new_end, buf]]
        self._touch(new_start, [p[0] for p in pieces])

    def _touch(self, start, replaced):
        recent = [s for s in self.recent if s not in replaced and s != start]
        recent.insert(0, start)
        del recent[8:]
        self.recent = recent

    def pop_ready(self, rcv_nxt: int):
        """Remove and return the data that now continues ``rcv_nxt`` (or None)."""
        runs = self.runs
        if not runs or runs[0][0] > rcv_nxt:
            return None
        start, end, data = runs.pop(0)
        if start in self.recent:
            self.recent.remove(start)
        if end <= rcv_nxt:
            return b""
        return data[rcv_nxt - start:]

    def drop_below(self, rcv_nxt: int) -> None:
        while self.runs and self.runs[0][1] <= rcv_nxt:
            start = self.runs.pop(0)[0]
            if start in self.recent:
                self.recent.remove(start)

    def sack_blocks(self, limit: int):
        """Up to ``limit`` (start, end) blocks, the most recently changed first (RFC 2018 4)."""
        by_start = {r[0]: r for r in self.runs}
        out = []
        for s in self.recent:
            r = by_start.get(s)
            if r is not None:
                out.append((r[0], r[1]))
                if len(out) == limit:
                    return out
        for r in self.runs:
            if len(out) == limit:
                break
            if (r[0], r[1]) not in out:
                out.append((r[0], r[1]))
        return out


class Scoreboard:
    """What the peer has SACKed above SND.UNA: sorted disjoint ``[start, end]`` ranges."""

    __slots__ = ("ranges", "sacked")

    DUP_THRESH = 3

    def __init__(self):
        self.ranges = []
        self.sacked = 0

    def clear(self):
        self.ranges = []
        self.sacked = 0

    @property
    def highest(self) -> int:
        return self.ranges[-1][1] if self.ranges else 0

    def update(self, una: int, snd_max: int, blocks) -> int:
        """Add SACK blocks (unwrapped), forget what UNA passed. Returns newly SACKed bytes."""
        before = self.sacked
        ranges = self.ranges
        while ranges and ranges[0][1] <= una:
            ranges.pop(0)
        if ranges and ranges[0][0] < una:
            ranges[0][0] = una
        for start, end in blocks:
            if start < una:
                start = una
            if end > snd_max:
                end = snd_max
            if end <= start:
                continue
            i = 0
            while i < len(ranges) and ranges[i][1] < start:
                i += 1
            j = i
            while j < len(ranges) and ranges[j][0] <= end:
                start = min(start, ranges[j][0])
                end = max(end, ranges[j][1])
                j += 1
            ranges[i:j] = [[start, end]]
        self.sacked = sum(e - s for s, e in ranges)
        return self.sacked - before

    def sacked_above(self, seq: int) -> int:
        return sum(e - max(s, seq) for s, e in self.ranges if e > seq)

    def is_lost(self, seq: int, mss: int) -> bool:
        """RFC 6675 IsLost: DupThresh SACKed segments' worth of data (or ranges) above ``seq``."""
        above = 0
        count = 0
        for s, e in self.ranges:
            if e > seq:
                above += e - max(s, seq)
                count += 1
        return count >= self.DUP_THRESH or above > (self.DUP_THRESH - 1) * mss

    def holes(self, una: int):
        """Unsacked ranges below the highest SACKed byte: (start, end) pairs."""
        out = []
        prev = una
        for s, e in self.ranges:
            if s > prev:
                out.append((prev, s))
            prev = e
        return out

    def pipe(self, una: int, snd_max: int, high_rxt: int, mss: int) -> int:
        """RFC 6675 SetPipe, by byte ranges: un-SACKed bytes not deemed lost, plus retransmitted
        bytes that are still outstanding."""
        if not self.ranges:
            return snd_max - una + max(0, min(high_rxt, snd_max) - una)
        pipe = 0
        for a, b in self.holes(una):
            if not self.is_lost(a, mss):
                pipe += b - a
            if high_rxt > a:
                pipe += min(b, high_rxt) - a
        top = self.highest
        if snd_max > top:
            pipe += snd_max - top
        return pipe

    def next_retransmit(self, una: int, high_rxt: int, mss: int, rule3: bool):
        """NextSeg rules 1 and 3: (start, length) of the next hole part to resend, or None."""
        candidate = None
        for a, b in self.holes(una):
            start = a if a > high_rxt else high_rxt
            if start >= b:
                continue
            if self.is_lost(start, mss):
                return start, min(mss, b - start)
            if rule3 and candidate is None:
                candidate = (start, min(mss, b - start))
        return candidate
