"""Receive segment coalescing: software GRO for TCP (Linux's ``tcp_gro_receive``, in the layer).

The IP layer hands TCP a batch of datagrams at a time (a read of up to 64 frames; see
``IPv4Host.delivers_in_batches``) and polls after it.  Within one batch, consecutive in-order
data segments of one established connection are merged into one segment before the connection
sees them, so a bulk receive pays TCP's per-segment work (demultiplexing, header prediction,
the receive buffer, the ACK decision) once per merged segment instead of once per frame, as a
NIC's GRO or LRO gives the kernel, and as this stack's TAP offload gives it already.

A merge starts with a parsed segment (``Tcp.parse`` checked it); a later segment joins it,
its checksum verified, only if Linux's GRO would merge it:

- ACK, or ACK and PSH, with data, and nothing else (no SYN, FIN, RST, URG, ECE or CWR); a
  merge starts with a plain ACK segment of an established connection, in order (at RCV.NXT,
  no hole waiting to be filled), whose ACK number is acceptable (SND.UNA to SND.MAX: one that
  acknowledges what was never sent is answered once per segment);
- no options, or exactly NOP NOP timestamps; the option bytes (so the timestamps) the same as
  the first segment's, and so are the ACK number and the window;
- it starts where the held data ends and is no longer than the first segment; one shorter
  than the first, or with PSH, ends the merge (it joins, and the merged segment goes on);
- within the receive window, and up to the segment after which the connection would
  acknowledge at once (``_ack_bound`` in receiver.py: the stretch an ACK may cover): that one
  joins and ends the merge, so the ACKs leave after the same data as without merging, with
  the same RCV.NXT (and so TCP's Last.ACK.sent and TS.Recent come out the same); segments of
  the TAP's receive offload (64 KB) are merged already and stay as they are.

Anything else for the connection first releases what is held, then takes its ordinary path, so
the connection sees its segments in the order they came.  What is held at the end of the batch
is released when the layer polls (``TcpLayer.poll``), before the applications read and the
batch's ACKs leave.  The merged segment is the first one with the others' data appended, PSH
if the last had it, and counts as that many segments in the connection's ``segs_in``.
"""

from __future__ import annotations

import struct
import sys

from ...wire.checksum import transport_verify
from ...wire.tcp import ACK, HEADER_LEN, PROTO, PSH
from .seq import unwrap
from .state import ESTABLISHED

# Where merging is on unless TcpConfig(coalesce=...) says otherwise: CPython, where it takes a
# segment's TCP work from ~3 us to well under one.  PyPy's JIT makes that work cheap already
# (~1.7 us with the checksum's 0.8 left out), and there the merge, the join and a merged
# segment's processing cost more than they save (in-process replay, 150,000 segments: 4.5 us
# per segment merged against 3.3 without); see the README's TCP figures.
COALESCE_PAYS = sys.implementation.name != "pypy"
_ACK_PSH = ACK | PSH
_head = struct.Struct("!HHIIBBH").unpack_from  # ports, SEQ, ACK, data offset, flags, window


class _Held:
    """The segments held for one connection: the first one (whose header the merged segment
    keeps), the payloads, where the next must start (wire sequence number), the bytes left
    before the ACK point and in the receive window."""

    __slots__ = ("conn", "seg", "hlen", "parts", "next_seq", "size", "ack_left", "window_left")

    def __init__(self, conn, seg, size: int, ack_left: int, window_left: int):
        self.conn = conn
        self.seg = seg
        self.hlen = HEADER_LEN + len(seg.options)
        self.parts = [seg.payload]
        self.next_seq = (seg.seq + size) & 0xFFFFFFFF
        self.size = size  # the first segment's length: no later one may be longer
        self.ack_left = ack_left  # below 0: the connection acknowledges right after this data
        self.window_left = window_left


class SegmentMerge:
    """The segments a TCP layer holds during one batch, by connection key.  ``extend`` takes a
    segment that continues a merge straight from its bytes (no parsed header object: that is
    where the saving is); ``hold`` takes a parsed segment that does not, and starts a merge."""

    __slots__ = ("layer", "held", "merged")

    def __init__(self, layer):
        self.layer = layer
        self.held = {}
        self.merged = 0  # segments that joined another (statistics)

    def extend(self, remote: int, local: int, data, check: bool, now: float) -> bool:
        """Append the segment ``data`` (the IPv4 payload, not parsed yet) to the merge held for
        its connection if it continues it, checksum verified; False: parse it (which counts a
        bad checksum) and give it to ``hold``."""
        if len(data) < HEADER_LEN:
            return False
        sport, dport, seq, ack, offset, flags, window = _head(data)
        key = (local, dport, remote, sport)
        held = self.held.get(key)
        if held is None:
            return False
        hlen = (offset >> 4) << 2
        n = len(data) - hlen
        first = held.seg
        if ((flags != ACK and flags != _ACK_PSH) or not 0 < n <= held.size or n > held.window_left
                or seq != held.next_seq
                or ack != first.ack or window != first.window or hlen != held.hlen
                or (hlen != HEADER_LEN and data[HEADER_LEN:hlen] != first.options)
                or (check and not transport_verify(remote, local, PROTO, data))):
            return False
        parts = held.parts
        parts.append(data[hlen:])
        held.next_seq = (seq + n) & 0xFFFFFFFF
        held.window_left -= n
        held.ack_left -= n
        self.merged += 1
        if flags & PSH or n < held.size or held.ack_left < 0:
            first.flags = flags
            del self.held[key]
            self._release(held, now)
        return True

    def hold(self, local: int, remote: int, seg, now: float) -> bool:
        """A parsed segment that did not continue what is held for its connection: release
        that, then hold ``seg`` if a merge can start with it.  False: the caller processes it."""
        key = (local, seg.dst_port, remote, seg.src_port)
        if self.held:
            held = self.held.pop(key, None)
            if held is not None:
                self._release(held, now)
        # a merge starts with a plain ACK segment with data (PSH would end it at once)
        n = len(seg.payload)
        options = seg.options
        if not n or seg.flags != ACK or (options and (seg.ts_val is None or len(options) != 12)):
            return False
        conn = self.layer.connections.get(key)
        if (conn is None or conn.state != ESTABLISHED or seg.seq != conn.rcv_nxt & 0xFFFFFFFF
                or (conn.reorder is not None and conn.reorder.runs)
                or not conn.snd_una <= unwrap(seg.ack, conn.snd_una) <= conn.snd_max):
            return False
        # the ACK point and the window as the connection will see them after this segment; if
        # it acknowledges right after this one (a segment of receive offload, a stretch already
        # long) or no other fits in the window, there is nothing to merge
        ack_left = conn._ack_bound(conn._rcv_mss_after(n)) - conn.ack_pending - n
        window_left = conn.rcv_adv - conn.rcv_nxt - n
        if ack_left < 0 or window_left < n:
            return False
        self.held[key] = _Held(conn, seg, n, ack_left, window_left)
        return True

    def release_all(self, now: float) -> None:
        """The end of the batch: every held segment goes on, in the order they were first held."""
        held, self.held = self.held, {}
        for h in held.values():
            self._release(h, now)

    def _release(self, held: _Held, now: float) -> None:
        seg = held.seg
        parts = held.parts
        if len(parts) > 1:
            seg.payload = b"".join(parts)
            seg.gso_size = held.size
            held.conn.segs_in += len(parts) - 1
        layer = self.layer
        layer.dispatch(held.conn.key[0], held.conn.key[2], seg, now)
