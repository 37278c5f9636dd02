"""One tracked connection (``CtEntry``) and its status bits, valued as Linux's IPS_* bits."""

from __future__ import annotations

from . import ct_tcp

S_EXPECTED = 0x1
S_SEEN_REPLY = 0x2
S_ASSURED = 0x4
S_CONFIRMED = 0x8
S_SRC_NAT = 0x10
S_DST_NAT = 0x20
S_SRC_NAT_DONE = 0x80
S_DST_NAT_DONE = 0x100
S_DYING = 0x200

_STATUS_NAMES = ((S_EXPECTED, "expected"), (S_SEEN_REPLY, "seen-reply"), (S_ASSURED, "assured"),
                 (S_CONFIRMED, "confirmed"), (S_SRC_NAT, "snat"), (S_DST_NAT, "dnat"), (S_DYING, "dying"))


class CtEntry:
    """One tracked connection.  ``original``/``reply`` are the tuples of each direction as
    seen on the wire (NAT alters ``reply``), each ``(proto, src, sport, dst, dport)``; an ICMP
    query's tuple holds what Linux's does, its id where the source port is and ``type << 8 |
    code`` where the destination port is (ct_icmp.py).  ``counters`` is [packets, bytes]
    original then reply; ``proto_state`` is a TcpTrack for TCP, None otherwise."""

    __slots__ = ("id", "original", "reply", "status", "deadline", "scheduled", "counters", "mark",
                 "proto_state", "nat", "created")

    def __init__(self, ident, original, reply, deadline, proto_state, now):
        self.id = ident
        self.original = original
        self.reply = reply
        self.status = 0
        self.deadline = deadline
        self.scheduled = 0.0
        self.counters = [0, 0, 0, 0]
        self.mark = 0
        self.proto_state = proto_state
        self.nat = None
        self.created = now

    @property
    def confirmed(self) -> bool:
        return bool(self.status & S_CONFIRMED)

    def status_names(self):
        """The status bits as nft's ``ct status`` names them."""
        return [name for bit, name in _STATUS_NAMES if self.status & bit]

    @property
    def tcp_state(self):
        """The TCP state name, or None for other protocols."""
        ps = self.proto_state
        return ct_tcp.STATE_NAMES[ps.state] if isinstance(ps, ct_tcp.TcpTrack) else None

    def __repr__(self) -> str:
        from .ct_list import format_tuple  # the listing imports this module
        return f"<CtEntry {self.id} {format_tuple(self.original)} / {format_tuple(self.reply)}>"
