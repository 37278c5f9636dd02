"""Connection tracking as Linux netfilter does it, sans-I/O.

``track(ip, now)`` classifies each packet (new, established, related, invalid) and keeps one
``CtEntry`` per connection, found by its original and its reply tuple in one dict.  A tuple is
``(proto, src, sport, dst, dport)``; ICMP queries put their identifier in both port fields (the
reply of an echo request has the same id), other protocols without ports use 0.

A new connection's entry is *unconfirmed*: it enters the table only when the lead calls
``confirm`` after the packet survived every hook, so a dropped first packet leaves nothing
(Linux's unconfirmed list).  Timers live in a heap with lazy deletion: refreshing an entry only
moves its deadline; the heap is corrected when an old item surfaces.
"""

from __future__ import annotations

import heapq
from collections import Counter, OrderedDict

from ..wire.addr import ip_to_str
from . import ct_tcp
from .types import CT_ESTABLISHED, CT_INVALID, CT_NEW, CT_RELATED

# Status bits, valued as Linux's IPS_* bits
S_EXPECTED = 0x1
S_SEEN_REPLY = 0x2
S_ASSURED = 0x4
S_CONFIRMED = 0x8
S_SRC_NAT = 0x10
S_DST_NAT = 0x20
S_SRC_NAT_DONE = 0x80
S_DST_NAT_DONE = 0x100
S_DYING = 0x200

DROP_TABLE_FULL = "conntrack-table-full"
UDP_STREAM_AFTER = 2.0  # Linux: UDP becomes a "stream" (assured) only after 2 s with replies

# ICMP query types and their answers; errors that can be RELATED to a connection
ICMP_QUERY_REPLY = {8: 0, 13: 14, 15: 16, 17: 18}
ICMP_REPLY_TYPES = frozenset(ICMP_QUERY_REPLY.values())
ICMP_RELATED_ERRORS = frozenset((3, 4, 11, 12))

_PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp"}
_INVALID = (None, 0, CT_INVALID)

_TIMEOUT_KEYS = ("tcp_syn_sent", "tcp_syn_recv", "tcp_established", "tcp_fin_wait", "tcp_close_wait",
                 "tcp_last_ack", "tcp_time_wait", "tcp_close", "tcp_syn_sent2", "udp", "udp_stream",
                 "icmp", "generic")
_TCP_STATE_KEYS = (None, "tcp_syn_sent", "tcp_syn_recv", "tcp_established", "tcp_fin_wait",
                   "tcp_close_wait", "tcp_last_ack", "tcp_time_wait", "tcp_close", "tcp_syn_sent2")


class ConntrackError(ValueError):
    """Bad configuration given to conntrack or NAT."""


class Timeouts:
    """Idle timeouts in seconds.  The default profile is the RFC minimum for a NAT: UDP 300 s
    (RFC 4787 REQ-5: at least 2 min, 5 min recommended), TCP established 7440 s and transitory
    240 s (RFC 5382 REQ-5), ICMP query 60 s (RFC 5508 REQ-1).  ``Timeouts.linux()`` has the
    kernel's defaults (the nf_conntrack_*_timeout sysctls).  Overrides: a dict by key name."""

    __slots__ = _TIMEOUT_KEYS + ("tcp",)

    RFC = dict(tcp_syn_sent=240, tcp_syn_recv=240, tcp_established=7440, tcp_fin_wait=240,
               tcp_close_wait=240, tcp_last_ack=240, tcp_time_wait=240, tcp_close=240, tcp_syn_sent2=240,
               udp=300, udp_stream=300, icmp=60, generic=600)
    LINUX = dict(tcp_syn_sent=120, tcp_syn_recv=60, tcp_established=432000, tcp_fin_wait=120,
                 tcp_close_wait=60, tcp_last_ack=30, tcp_time_wait=120, tcp_close=10, tcp_syn_sent2=120,
                 udp=30, udp_stream=120, icmp=30, generic=600)

    def __init__(self, overrides=None, base=None):
        values = dict(self.RFC if base is None else base)
        for key, value in (overrides or {}).items():
            if key not in values:
                raise ConntrackError(f"unknown conntrack timeout {key!r} (known: {', '.join(_TIMEOUT_KEYS)})")
            if not isinstance(value, (int, float)) or value <= 0:
                raise ConntrackError(f"conntrack timeout {key} must be a positive number of seconds, not {value!r}")
            values[key] = value
        for key, value in values.items():
            setattr(self, key, value)
        # by TCP state number, for the hot path
        self.tcp = tuple(0 if k is None else values[k] for k in _TCP_STATE_KEYS)

    @classmethod
    def linux(cls, overrides=None) -> Timeouts:
        return cls(overrides, base=cls.LINUX)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in _TIMEOUT_KEYS}


_STATUS_NAMES = ((S_EXPECTED, "expected"), (S_SEEN_REPLY, "seen-reply"), (S_ASSURED, "assured"),
                 (S_CONFIRMED, "confirmed"), (S_SRC_NAT, "snat"), (S_DST_NAT, "dnat"), (S_DYING, "dying"))


class CtEntry:
    """One tracked connection.  ``original``/``reply`` are the tuples of each direction as
    seen on the wire (NAT alters ``reply``); ``counters`` is [packets, bytes] original then
    reply; ``proto_state`` is a TcpTrack for TCP, [request type, 1] for ICMP."""

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
        return f"<CtEntry {self.id} {format_tuple(self.original)} / {format_tuple(self.reply)}>"


class Conntrack:
    """The connection table.  ``events``: callables ``cb(kind, entry)`` with kind "NEW",
    "UPDATE" or "DESTROY" (``format_event`` renders the ``conntrack -E`` line);
    ``destroy_hooks``: callables ``cb(entry)`` for every entry that goes away, confirmed or not
    (NAT frees its mappings there)."""

    def __init__(self, max_entries: int = 65536, timeouts=None, liberal: bool = False, loose: bool = False,
                 acct: bool = False, max_unconfirmed: int = 64):
        if not isinstance(max_entries, int) or max_entries < 1:
            raise ConntrackError(f"max_entries must be a positive integer, not {max_entries!r}")
        if timeouts is None or isinstance(timeouts, dict):
            timeouts = Timeouts(timeouts)
        elif not isinstance(timeouts, Timeouts):
            raise ConntrackError("timeouts must be a Timeouts or a dict of overrides")
        self.max_entries = max_entries
        self.timeouts = timeouts
        self.liberal = liberal  # nf_conntrack_tcp_be_liberal
        self.loose = loose  # nf_conntrack_tcp_loose: pick up connections from a mid-stream ACK
        self.acct = acct  # nf_conntrack_acct: show counters in conntrack -L
        self.max_unconfirmed = max_unconfirmed
        self.table = {}  # tuple -> CtEntry, both directions
        self.count = 0  # confirmed entries
        self.counters = Counter()  # conntrack -S names
        self.drops = Counter()  # drop reason -> packets
        self.refused = None  # the drop reason of the last track() call that refused a flow
        self.events = []
        self.destroy_hooks = []
        self._heap = []
        self._unassured = OrderedDict()  # id -> entry, oldest first: early-drop candidates
        self._unconfirmed = OrderedDict()  # original tuple -> entry
        self._next_id = 1
        self._now = 0.0

    # -- the packet path -------------------------------------------------------------------------

    def track(self, ip, now: float):
        """Classify ``ip``: returns ``(entry, direction, ct_state)``; entry None when invalid.

        As in Linux, packets in the original direction are "new" until a reply has been seen
        (a retransmitted SYN is new too, on the same entry); replies and everything after are
        "established"; ICMP errors about a tracked connection are "related".  When the table
        is full and nothing can be early-dropped, ``refused`` names the reason: drop the packet.
        """
        self._now = now
        self.refused = None
        proto = ip.protocol
        payload = ip.payload
        seg = None
        if proto == 6:
            seg = ct_tcp.parse_segment(payload)
            if seg is None:
                self.counters["invalid"] += 1
                return _INVALID
            sport = (payload[0] << 8) | payload[1]
            dport = (payload[2] << 8) | payload[3]
        elif proto == 17:
            if len(payload) < 8:
                self.counters["invalid"] += 1
                return _INVALID
            sport = (payload[0] << 8) | payload[1]
            dport = (payload[2] << 8) | payload[3]
        elif proto == 1:
            if len(payload) < 8:
                self.counters["invalid"] += 1
                return _INVALID
            itype = payload[0]
            if itype in ICMP_RELATED_ERRORS:
                return self._related(payload)
            if itype not in ICMP_QUERY_REPLY and itype not in ICMP_REPLY_TYPES:
                self.counters["invalid"] += 1
                return _INVALID
            sport = dport = (payload[4] << 8) | payload[5]
        else:
            sport = dport = 0
        key = (proto, ip.src, sport, ip.dst, dport)
        entry = self.table.get(key)
        if entry is not None and entry.deadline <= now:
            self._destroy(entry)  # expired between two polls
            entry = None
        if entry is None:
            return self._new(key, ip, seg, now)
        self.counters["found"] += 1
        direction = 0 if entry.original == key else 1
        status = entry.status
        timeouts = self.timeouts
        if proto == 6:
            track = entry.proto_state
            old_state = track.state
            new_state = ct_tcp.packet(track, direction, seg, self.liberal)
            if new_state < 0:
                if new_state == ct_tcp.IG:
                    self.counters["ignore"] += 1
                    return entry, direction, CT_ESTABLISHED if direction or status & S_SEEN_REPLY else CT_NEW
                if new_state == ct_tcp.REOPEN:
                    self._destroy(entry)
                    return self._new(key, ip, seg, now)
                self.counters["invalid"] += 1
                return _INVALID
            if seg.kind == ct_tcp.K_RST:
                timeout = timeouts.tcp_close
                if not status & S_SEEN_REPLY:
                    # The only answer was an RST: no connection was ever established (Linux
                    # deletes the entry at once).
                    self._account(entry, direction, ip)
                    self._destroy(entry)
                    return entry, direction, CT_ESTABLISHED if direction else CT_NEW
            else:
                timeout = timeouts.tcp[new_state]
            if (status & S_SEEN_REPLY and not status & S_ASSURED and new_state == ct_tcp.ESTABLISHED
                    and (old_state == ct_tcp.SYN_RECV or old_state == ct_tcp.ESTABLISHED)):
                status |= S_ASSURED
                self._unassured.pop(entry.id, None)
            changed = old_state != new_state
        elif proto == 17:
            changed = False
            if status & S_SEEN_REPLY and now - entry.created >= UDP_STREAM_AFTER:
                timeout = timeouts.udp_stream
                if not status & S_ASSURED:
                    status |= S_ASSURED
                    self._unassured.pop(entry.id, None)
            else:
                timeout = timeouts.udp
        elif proto == 1:
            changed = False
            query = entry.proto_state
            itype = payload[0]
            if itype != (query[0] if direction == 0 else ICMP_QUERY_REPLY[query[0]]):
                self.counters["invalid"] += 1
                return _INVALID
            # An answered query keeps its entry until the timeout (Linux since 2.6.31, so that
            # duplicate replies pass; RFC 5508 REQ-1: an ICMP query mapping lives 60 s at least).
            timeout = timeouts.icmp
        else:
            changed = False
            timeout = timeouts.generic
        if direction and not status & S_SEEN_REPLY:
            status |= S_SEEN_REPLY
        if status != entry.status:
            changed = True
            entry.status = status
        counters = entry.counters
        i = direction << 1
        counters[i] += 1
        counters[i + 1] += 20 + len(ip.options) + len(payload)
        deadline = now + timeout
        entry.deadline = deadline
        if deadline < entry.scheduled and status & S_CONFIRMED:
            entry.scheduled = deadline
            heapq.heappush(self._heap, (deadline, entry.id, entry))
        if changed and self.events and status & S_CONFIRMED:
            self._emit("UPDATE", entry)  # state, seen-reply or assured changed (not a mere refresh)
        return entry, direction, CT_ESTABLISHED if direction or status & S_SEEN_REPLY else CT_NEW

    def _account(self, entry, direction, ip) -> None:
        counters = entry.counters
        i = direction << 1
        counters[i] += 1
        counters[i + 1] += 20 + len(ip.options) + len(ip.payload)

    def _new(self, key, ip, seg, now):
        proto = key[0]
        if proto == 6:
            track = ct_tcp.new_track(seg, self.loose)
            if track is None or ct_tcp.packet(track, 0, seg, self.liberal) < 0:
                self.counters["invalid"] += 1
                return _INVALID
            proto_state = track
            timeout = self.timeouts.tcp[track.state]
        elif proto == 17:
            proto_state = None
            timeout = self.timeouts.udp
        elif proto == 1:
            itype = ip.payload[0]
            if itype not in ICMP_QUERY_REPLY:
                self.counters["invalid"] += 1  # an answer with no query, or not a query at all
                return _INVALID
            proto_state = [itype, 1]
            timeout = self.timeouts.icmp
        else:
            proto_state = None
            timeout = self.timeouts.generic
        if self.count >= self.max_entries and not self._early_drop():
            self.counters["drop"] += 1
            self.drops[DROP_TABLE_FULL] += 1
            self.refused = DROP_TABLE_FULL
            return _INVALID
        entry = CtEntry(self._next_id, key, (proto, key[3], key[4], key[1], key[2]), now + timeout,
                        proto_state, now)
        self._next_id += 1
        self._account(entry, 0, ip)
        unconfirmed = self._unconfirmed
        stale = unconfirmed.pop(key, None)
        if stale is not None:  # an earlier first packet of this flow that was never confirmed
            self._destroy(stale)
        if len(unconfirmed) >= self.max_unconfirmed:
            self._destroy(unconfirmed.popitem(last=False)[1])
        unconfirmed[key] = entry
        self.counters["new"] += 1
        return entry, 0, CT_NEW

    def _related(self, payload):
        """An ICMP error: RELATED when the datagram it quotes belongs to a tracked connection.
        The quote travelled the other way, so its tuple inverted is one of the entry's."""
        if len(payload) < 8 + 20:
            self.counters["invalid"] += 1
            return _INVALID
        ihl = (payload[8] & 0x0F) << 2
        if payload[8] >> 4 != 4 or ihl < 20 or len(payload) < 8 + ihl + 8:
            self.counters["invalid"] += 1
            return _INVALID
        iproto = payload[17]
        isrc = int.from_bytes(payload[20:24], "big")
        idst = int.from_bytes(payload[24:28], "big")
        l4 = 8 + ihl
        if iproto == 6 or iproto == 17:
            isport = (payload[l4] << 8) | payload[l4 + 1]
            idport = (payload[l4 + 2] << 8) | payload[l4 + 3]
        elif iproto == 1:
            if payload[l4] not in ICMP_QUERY_REPLY and payload[l4] not in ICMP_REPLY_TYPES:
                self.counters["invalid"] += 1  # an error about an error is never related
                return _INVALID
            isport = idport = (payload[l4 + 4] << 8) | payload[l4 + 5]
        else:
            isport = idport = 0
        key = (iproto, idst, idport, isrc, isport)
        entry = self.table.get(key)
        if entry is None or entry.status & S_DYING:
            self.counters["invalid"] += 1
            return _INVALID
        self.counters["found"] += 1
        return entry, 0 if entry.original == key else 1, CT_RELATED

    def confirm(self, entry: CtEntry, now: float) -> bool:
        """Insert a NEW packet's entry once the packet survived all hooks.  False (counted as
        insert_failed) when one of its tuples is already taken, e.g. by a NAT clash."""
        status = entry.status
        if status & S_CONFIRMED:
            return True
        if status & S_DYING:
            return False
        self._unconfirmed.pop(entry.original, None)
        table = self.table
        if entry.original in table or entry.reply in table:
            self.counters["insert_failed"] += 1
            self.counters["drop"] += 1
            self._destroy(entry)
            return False
        table[entry.original] = entry
        table[entry.reply] = entry
        entry.status = status | S_CONFIRMED
        self.count += 1
        if not status & S_ASSURED:
            self._unassured[entry.id] = entry
        entry.deadline += now - entry.created  # the timeout runs from confirmation, as in Linux
        entry.scheduled = entry.deadline
        heapq.heappush(self._heap, (entry.deadline, entry.id, entry))
        self.counters["insert"] += 1
        if self.events:
            self._emit("NEW", entry)
        return True

    def abandon(self, entry: CtEntry) -> None:
        """Forget an unconfirmed entry whose packet was dropped (optional: the next ``poll``
        forgets every unconfirmed entry anyway)."""
        if not entry.status & (S_CONFIRMED | S_DYING):
            self._unconfirmed.pop(entry.original, None)
            self._destroy(entry)

    def unconfirmed(self, key):
        """The unconfirmed entry whose original tuple is ``key`` (for NAT's inbound lookup)."""
        return self._unconfirmed.get(key)

    # -- timers and table management ---------------------------------------------------------------

    def poll(self, now: float) -> int:
        """Expire entries whose deadline passed; returns how many went.  Unconfirmed entries
        left over from earlier packets are forgotten (their packets were dropped)."""
        self._now = now
        while self._unconfirmed:
            self._destroy(self._unconfirmed.popitem(last=False)[1])
        heap = self._heap
        expired = 0
        while heap and heap[0][0] <= now:
            when, _ident, entry = heapq.heappop(heap)
            if entry.scheduled != when or entry.status & S_DYING:
                continue  # a stale item: the entry was rescheduled or is gone
            if entry.deadline > now:
                entry.scheduled = entry.deadline
                heapq.heappush(heap, (entry.deadline, entry.id, entry))
                continue
            self._destroy(entry)
            expired += 1
        if len(heap) > 2 * self.count + 1024:
            self._rebuild_heap()
        return expired

    def _rebuild_heap(self) -> None:
        live = [(e.deadline, e.id, e) for e in self.entries()]
        for _d, _i, e in live:
            e.scheduled = e.deadline
        heapq.heapify(live)
        self._heap = live

    def next_deadline(self):
        """The earliest time ``poll`` may have work (possibly early: rescheduled entries)."""
        return self._heap[0][0] if self._heap else None

    def _early_drop(self) -> bool:
        """Make room by destroying the oldest unassured entry (Linux's early_drop)."""
        unassured = self._unassured
        while unassured:
            entry = unassured.popitem(last=False)[1]
            if not entry.status & (S_DYING | S_ASSURED):
                self._destroy(entry)
                self.counters["early_drop"] += 1
                return True
        return False

    def _destroy(self, entry: CtEntry) -> None:
        status = entry.status
        if status & S_DYING:
            return
        entry.status = status | S_DYING
        if status & S_CONFIRMED:
            table = self.table
            if table.get(entry.original) is entry:
                del table[entry.original]
            if table.get(entry.reply) is entry:
                del table[entry.reply]
            self.count -= 1
            self._unassured.pop(entry.id, None)
            if self.events:
                self._emit("DESTROY", entry)
        for hook in self.destroy_hooks:
            hook(entry)

    def delete(self, entry: CtEntry) -> None:
        """Remove one entry (``conntrack -D``)."""
        self._unconfirmed.pop(entry.original, None)
        self._destroy(entry)

    def delete_where(self, predicate) -> int:
        """Remove every confirmed entry for which ``predicate(entry)`` holds; returns how many."""
        doomed = [e for e in self.entries() if predicate(e)]
        for entry in doomed:
            self._destroy(entry)
        return len(doomed)

    def flush(self) -> None:
        """Remove every entry (``conntrack -F``)."""
        self.delete_where(lambda e: True)
        while self._unconfirmed:
            self._destroy(self._unconfirmed.popitem(last=False)[1])
        self._heap = []

    def entries(self):
        """The confirmed entries, each once."""
        return [e for k, e in self.table.items() if k is e.original or k == e.original]

    def __len__(self) -> int:
        return self.count

    def stats(self) -> dict:
        """``conntrack -S`` counters plus the table size (``conntrack -C``) and its bound."""
        out = {name: self.counters[name] for name in
               ("found", "invalid", "ignore", "insert", "insert_failed", "drop", "early_drop", "error",
                "search_restart", "expect_new", "expect_create", "expect_delete")}
        out["entries"] = self.count
        out["max"] = self.max_entries
        out["new"] = self.counters["new"]
        return out

    # -- conntrack -L / -E ---------------------------------------------------------------------------

    def format_entry(self, entry: CtEntry, now: float) -> str:
        """One line of ``conntrack -L``."""
        return _format(entry, now, True, self.acct) + f" mark={entry.mark} use=1"

    def format_event(self, kind: str, entry: CtEntry, now=None) -> str:
        """One line of ``conntrack -E``: timeout and TCP state except for DESTROY, mark when set."""
        line = _format(entry, self._now if now is None else now, kind != "DESTROY", False)
        if entry.mark:
            line += f" mark={entry.mark}"
        return f"{'[' + kind + ']':>9} {line}"

    def _emit(self, kind: str, entry: CtEntry) -> None:
        for listener in self.events:
            listener(kind, entry)


def format_tuple(t) -> str:
    proto, src, sport, dst, dport = t
    if proto == 6 or proto == 17:
        return f"src={ip_to_str(src)} dst={ip_to_str(dst)} sport={sport} dport={dport}"
    return f"src={ip_to_str(src)} dst={ip_to_str(dst)}"


def _format(entry: CtEntry, now: float, live: bool, acct: bool) -> str:
    proto = entry.original[0]
    parts = [f"{_PROTO_NAMES.get(proto, 'unknown'):<8} {proto}"]
    if live:
        parts.append(str(max(0, int(entry.deadline - now))))
        if proto == 6:
            parts.append(ct_tcp.STATE_NAMES[entry.proto_state.state])
    if proto == 1:
        qtype = entry.proto_state[0]
        parts.append(f"{format_tuple(entry.original)} type={qtype} code=0 id={entry.original[2]}")
    else:
        parts.append(format_tuple(entry.original))
    if acct:
        parts.append(f"packets={entry.counters[0]} bytes={entry.counters[1]}")
    if not entry.status & S_SEEN_REPLY:
        parts.append("[UNREPLIED]")
    if proto == 1:
        parts.append(f"{format_tuple(entry.reply)} type={ICMP_QUERY_REPLY[qtype]} code=0 id={entry.reply[2]}")
    else:
        parts.append(format_tuple(entry.reply))
    if acct:
        parts.append(f"packets={entry.counters[2]} bytes={entry.counters[3]}")
    if entry.status & S_ASSURED:
        parts.append("[ASSURED]")
    return " ".join(parts)
