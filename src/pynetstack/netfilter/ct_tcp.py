"""TCP connection tracking in the spirit of Linux ``nf_conntrack_proto_tcp.c``.

Two parts: a state table indexed by (direction, segment kind, old state), and the window check
``in_window`` that follows each side's highest sequence sent (td_end), the highest sequence the
peer's window allows (td_maxend) and the largest window seen (td_maxwin), as in Guido van
Rooij's "Real Stateful TCP Packet Filtering in IP Filter" that Linux implements.
"""

from __future__ import annotations

import struct

from ..wire.tcp import ACK, FIN, MAX_WSCALE, OPT_SACK, OPT_SACK_PERMITTED, OPT_WSCALE, RST, SYN, URG

# States, numbered as Linux numbers them (TCP_CONNTRACK_*)
NONE, SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE, SYN_SENT2 = range(10)
STATE_NAMES = ("NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK",
               "TIME_WAIT", "CLOSE", "SYN_SENT2")
IV = -1  # the segment is invalid in this state
IG = -2  # ignore the segment: accept it without changing anything (possibly a stale or lost exchange)

# Segment kinds (the row index)
K_SYN, K_SYNACK, K_FIN, K_ACK, K_RST, K_NONE = range(6)

_NO, _SS, _SR, _ES, _FW, _CW, _LA, _TW, _CL, _S2 = range(10)
_IV, _IG = IV, IG
# TRANSITIONS[direction][kind][old state] -> new state.  Columns: NO SS SR ES FW CW LA TW CL S2.
TRANSITIONS = (
    (  # original direction
        (_SS, _SS, _IG, _IG, _IG, _IG, _IG, _SS, _SS, _S2),  # SYN: TW/CL reopen, ES ignores (stale)
        (_IV, _IV, _SR, _IV, _IV, _IV, _IV, _IV, _IV, _SR),  # SYN/ACK from the opener: only in sim. open
        (_IV, _IV, _FW, _FW, _LA, _LA, _LA, _TW, _CL, _IV),  # FIN
        (_ES, _IV, _ES, _ES, _CW, _CW, _TW, _TW, _CL, _IV),  # ACK (NO->ES only with loose pickup)
        (_IV, _CL, _CL, _CL, _CL, _CL, _CL, _CL, _CL, _CL),  # RST
        (_IV, _IV, _IV, _IV, _IV, _IV, _IV, _IV, _IV, _IV),  # no flags
    ),
    (  # reply direction
        (_IV, _S2, _IV, _IV, _IV, _IV, _IV, _SS, _IV, _S2),  # SYN: simultaneous open
        (_IV, _SR, _IG, _IG, _IG, _IG, _IG, _IG, _IG, _SR),  # SYN/ACK
        (_IV, _IV, _FW, _FW, _LA, _LA, _LA, _TW, _CL, _IV),  # FIN
        (_IV, _IG, _SR, _ES, _CW, _CW, _TW, _TW, _CL, _IG),  # ACK
        (_IV, _CL, _CL, _CL, _CL, _CL, _CL, _CL, _CL, _CL),  # RST
        (_IV, _IV, _IV, _IV, _IV, _IV, _IV, _IV, _IV, _IV),  # no flags
    ),
)

# Per-side flags (IP_CT_TCP_FLAG_*)
F_WINDOW_SCALE = 0x01
F_SACK_PERM = 0x02
F_CLOSE_INIT = 0x04
F_BE_LIBERAL = 0x08
F_DATA_UNACKNOWLEDGED = 0x10
F_MAXACK_SET = 0x20

MAXACKWINCONST = 66000  # the slack Linux allows for ACKs below the receiver's window
_M32 = 0xFFFFFFFF

# Valid flag combinations ignoring PSH, ECE and CWR (Linux's tcp_valid_flags)
_VALID_FLAGS = frozenset((SYN, SYN | URG, SYN | ACK, RST, RST | ACK, FIN | ACK, FIN | ACK | URG, ACK, ACK | URG))
_CORE_FLAGS = SYN | ACK | FIN | RST | URG

_hdr = struct.Struct("!HHIIBBH")


def _before(a: int, b: int) -> bool:
    """Sequence-space a < b (RFC 1982 style, 32-bit)."""
    return ((a - b) & _M32) > 0x7FFFFFFF


def _after(a: int, b: int) -> bool:
    return ((b - a) & _M32) > 0x7FFFFFFF


class TcpSide:
    """What one direction has shown: td_end (highest seq sent + 1), td_maxend (highest seq the
    other side's window allowed), td_maxwin (largest window), td_maxack, window scale, flags."""

    __slots__ = ("td_end", "td_maxend", "td_maxwin", "td_maxack", "td_scale", "flags")

    def __init__(self):
        self.td_end = self.td_maxend = self.td_maxwin = self.td_maxack = self.td_scale = self.flags = 0


class TcpTrack:
    """The protocol-private part of a TCP conntrack entry."""

    __slots__ = ("state", "seen", "last_kind", "last_dir")

    def __init__(self):
        self.state = NONE
        self.seen = (TcpSide(), TcpSide())
        self.last_kind = K_NONE
        self.last_dir = 0


class Segment:
    """The fields of a TCP segment conntrack needs, parsed once."""

    __slots__ = ("seq", "ack", "flags", "window", "end", "wscale", "sack_perm", "sack", "kind")

    def __init__(self, seq, ack, flags, window, end, wscale, sack_perm, sack, kind):
        self.seq, self.ack, self.flags, self.window, self.end = seq, ack, flags, window, end
        self.wscale, self.sack_perm, self.sack, self.kind = wscale, sack_perm, sack, kind


def parse_segment(payload):
    """A Segment from the L4 bytes, or None when the header is truncated or its flags are an
    impossible combination (both are INVALID in Linux's tcp_error)."""
    if len(payload) < 20:
        return None
    _sport, _dport, seq, ack, off, flags, window = _hdr.unpack_from(payload)
    hlen = (off >> 4) << 2
    if hlen < 20 or hlen > len(payload):
        return None
    if (flags & _CORE_FLAGS) not in _VALID_FLAGS:
        return None
    wscale = None
    sack_perm = False
    sack = None
    if hlen > 20:
        wscale, sack_perm, sack = _scan_options(payload, hlen, ack)
    end = (seq + len(payload) - hlen + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)) & _M32
    if flags & RST:
        kind = K_RST
    elif flags & SYN:
        kind = K_SYNACK if flags & ACK else K_SYN
    elif flags & FIN:
        kind = K_FIN
    elif flags & ACK:
        kind = K_ACK
    else:
        kind = K_NONE
    return Segment(seq, ack, flags, window, end, wscale, sack_perm, sack, kind)


def _scan_options(payload, hlen: int, ack: int):
    """Window scale, SACK-permitted and the highest SACKed edge above ``ack`` (or None)."""
    wscale = None
    sack_perm = False
    sack = None
    i = 20
    while i < hlen:
        kind = payload[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= hlen:
            break
        length = payload[i + 1]
        if length < 2 or i + length > hlen:
            break
        if kind == OPT_WSCALE and length == 3:
            wscale = min(payload[i + 2], MAX_WSCALE)
        elif kind == OPT_SACK_PERMITTED and length == 2:
            sack_perm = True
        elif kind == OPT_SACK and length >= 10 and (length - 2) % 8 == 0:
            for j in range(i + 2, i + length, 8):
                right = int.from_bytes(payload[j + 4:j + 8], "big")
                if _after(right, ack if sack is None else sack):
                    sack = right
        i += length
    return wscale, sack_perm, sack


def new_track(seg: Segment, loose: bool):
    """Start tracking from the first segment: a SYN, or (``loose``) any ACK picked up
    mid-stream.  Returns the TcpTrack, or None when the segment cannot open a connection."""
    new_state = TRANSITIONS[0][seg.kind][NONE]
    if new_state == SYN_SENT:
        track = TcpTrack()
        sender = track.seen[0]
        sender.td_end = sender.td_maxend = seg.end
        sender.td_maxwin = seg.window or 1
        if seg.wscale is not None:
            sender.td_scale = seg.wscale
            sender.flags |= F_WINDOW_SCALE
        if seg.sack_perm:
            sender.flags |= F_SACK_PERM
    elif new_state == ESTABLISHED and loose:
        # History lost: believe this segment and be liberal in both directions (as Linux does).
        track = TcpTrack()
        sender = track.seen[0]
        sender.td_end = seg.end
        sender.td_maxwin = seg.window or 1
        sender.td_maxend = (seg.end + sender.td_maxwin) & _M32
        sender.flags = track.seen[1].flags = F_SACK_PERM | F_BE_LIBERAL
    else:
        return None
    track.state = NONE
    return track


def in_window(track: TcpTrack, direction: int, seg: Segment, liberal: bool) -> bool:
    """Linux's tcp_in_window: is the segment inside what the two windows allow?  Updates the
    sides' window data when it is (or when the check is liberal)."""
    sender = track.seen[direction]
    receiver = track.seen[1 - direction]
    seq, ack, end, win, flags = seg.seq, seg.ack, seg.end, seg.window, seg.flags
    sack = seg.sack if (seg.sack is not None and receiver.flags & F_SACK_PERM) else ack
    state = track.state

    if sender.td_maxwin == 0:
        if flags & SYN:
            # SYN/ACK answering a SYN, or a SYN from the reply side in a simultaneous open.
            sender.td_end = sender.td_maxend = end
            sender.td_maxwin = win or 1
            _take_options(sender, seg)
            # RFC 7323 2.2: window scaling only when both sides offer it.
            if not (sender.flags & F_WINDOW_SCALE and receiver.flags & F_WINDOW_SCALE):
                sender.td_scale = receiver.td_scale = 0
            if not flags & ACK:
                return True
        else:
            # Mid-stream: this side's history is lost to us.
            sender.td_end = end
            swin = win << sender.td_scale
            sender.td_maxwin = swin or 1
            sender.td_maxend = (end + sender.td_maxwin) & _M32
            if receiver.td_maxwin == 0:
                receiver.td_end = receiver.td_maxend = sack
            elif sack == ((receiver.td_end + 1) & _M32):
                receiver.td_end = sack  # likely the answer to a keepalive
    elif (((state == SYN_SENT and direction == 0) or (state == SYN_RECV and direction == 1))
          and _after(end, sender.td_end)):
        # A reinitialised connection (RFC 793: a new SYN with larger sequence numbers).
        sender.td_end = sender.td_maxend = end
        sender.td_maxwin = win or 1
        _take_options(sender, seg)

    if not flags & ACK:
        ack = sack = receiver.td_end
    elif flags & RST and ack == 0:
        ack = sack = receiver.td_end  # broken stacks send RST|ACK with a zero ack
    if flags & RST and seq == 0 and state == SYN_SENT:
        seq = end = sender.td_end  # RST answering a SYN

    # The four conditions of the window check (_before/_after inlined: this is the hot path).
    # I: seq is not beyond what the receiver's window allowed; II: the segment's end is not
    # older than a window ago; III: the ACK is not for data never sent; IV: nor far below.
    td_end_r = receiver.td_end
    maxwin_r = receiver.td_maxwin
    maxackwin = sender.td_maxwin if sender.td_maxwin > MAXACKWINCONST else MAXACKWINCONST
    ok = (((seq - sender.td_maxend - 1) & _M32) > 0x7FFFFFFF
          and (maxwin_r == 0 or ((sender.td_end - maxwin_r - 1 - end) & _M32) > 0x7FFFFFFF)
          and ((sack - td_end_r - 1) & _M32) > 0x7FFFFFFF
          and ((td_end_r - maxackwin - 1 - sack) & _M32) > 0x7FFFFFFF)
    if not ok:
        # liberal: accept, but learn nothing from an out-of-window segment
        return bool(liberal or sender.flags & F_BE_LIBERAL)
    if not flags & SYN:
        win <<= sender.td_scale
    swin = win + ((sack - ack) & _M32)
    if sender.td_maxwin < swin:
        sender.td_maxwin = swin
    if ((sender.td_end - end) & _M32) > 0x7FFFFFFF:  # end after td_end
        sender.td_end = end
        sender.flags |= F_DATA_UNACKNOWLEDGED
    if flags & ACK:
        if not sender.flags & F_MAXACK_SET:
            sender.td_maxack = ack
            sender.flags |= F_MAXACK_SET
        elif ((sender.td_maxack - ack) & _M32) > 0x7FFFFFFF:
            sender.td_maxack = ack
    if maxwin_r != 0 and ((sender.td_maxend - end) & _M32) > 0x7FFFFFFF:
        receiver.td_maxwin += (end - sender.td_maxend) & _M32
    right = (sack + win) & _M32
    if ((receiver.td_maxend - 1 - right) & _M32) > 0x7FFFFFFF:
        receiver.td_maxend = (right + 1) & _M32 if win == 0 else right
    if ack == td_end_r:
        receiver.flags &= ~F_DATA_UNACKNOWLEDGED
    return True


def _take_options(side: TcpSide, seg: Segment) -> None:
    side.flags &= ~(F_WINDOW_SCALE | F_SACK_PERM)
    side.td_scale = 0
    if seg.wscale is not None:
        side.td_scale = seg.wscale
        side.flags |= F_WINDOW_SCALE
    if seg.sack_perm:
        side.flags |= F_SACK_PERM


# Results of ``packet`` besides a new state
REOPEN = -3  # a SYN reopens a TIME_WAIT/CLOSE connection: kill the entry, track the SYN as new


def packet(track: TcpTrack, direction: int, seg: Segment, liberal: bool) -> int:
    """Run one segment of a tracked connection through the state table and the window check.

    Returns the new state, IV (invalid: the state is unchanged), IG (ignored: accepted but
    nothing changes) or REOPEN.
    """
    old = track.state
    kind = seg.kind
    new = TRANSITIONS[direction][kind][old]
    if new == SYN_SENT and old >= TIME_WAIT:
        # RFC 1122 4.2.2.13: a SYN may reopen a connection in TIME-WAIT; Linux lets it when the
        # connection was closed with FINs or the last segment was this side's RST.
        if ((track.seen[0].flags | track.seen[1].flags) & F_CLOSE_INIT
                or (track.last_dir == direction and track.last_kind == K_RST) or old == CLOSE):
            return REOPEN
        new = IG
    if new == IG:
        track.last_dir = direction
        track.last_kind = kind
        return IG
    if new == IV:
        return IV
    if kind == K_RST and old != SYN_SENT:
        # An RST must not be below what the other side has acknowledged (blind RST injection).
        other = track.seen[1 - direction]
        if other.flags & F_MAXACK_SET and _before(seg.seq, other.td_maxack):
            return IV
    if not in_window(track, direction, seg, liberal):
        return IV
    track.last_dir = direction
    track.last_kind = kind
    if new != old and new == FIN_WAIT:
        track.seen[direction].flags |= F_CLOSE_INIT
    track.state = new
    return new
