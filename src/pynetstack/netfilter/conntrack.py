"""Connection tracking as Linux netfilter does it, sans-I/O: the table and the packet path.

``track(ip, now)`` classifies each packet (new, established, related, invalid) and keeps one
``CtEntry`` per connection, found by its original and its reply tuple in one dict.  A tuple is
``(proto, src, sport, dst, dport)``; an ICMP query's holds its id, type and code (ct_icmp.py),
other protocols without ports use 0.

A new connection's entry is *unconfirmed*: it enters the table only when the lead calls
``confirm`` after the packet survived every hook, so a dropped first packet leaves nothing
(Linux's unconfirmed list).  Timers live in a heap with lazy deletion: refreshing an entry only
moves its deadline; the heap is corrected when an old item surfaces.

The rest of conntrack: the entry and its status bits (ct_entry.py), timeouts (ct_timeouts.py),
TCP's window tracking (ct_tcp.py), ICMP tuples and RELATED errors (ct_icmp.py), the
``conntrack -L`` / ``-E`` text (ct_list.py).  Their names are re-exported here.
"""

from __future__ import annotations

import heapq
from collections import Counter, OrderedDict

from . import ct_tcp
from .ct_entry import (S_ASSURED, S_CONFIRMED, S_DST_NAT, S_DST_NAT_DONE, S_DYING, S_EXPECTED,  # noqa: F401
                       S_SEEN_REPLY, S_SRC_NAT, S_SRC_NAT_DONE, CtEntry)
from .ct_icmp import (ICMP_QUERY_REPLY, ICMP_RELATED_ERRORS, ICMP_REPLY_TYPES, query_tuple,  # noqa: F401
                      quoted_key, request_reply_tuple)
from .ct_list import format_line, format_tuple  # noqa: F401
from .ct_timeouts import ConntrackError, Timeouts  # noqa: F401
from .types import CT_ESTABLISHED, CT_INVALID, CT_NEW, CT_RELATED
from ..wire.checksum import transport_verify, verify

DROP_TABLE_FULL = "conntrack-table-full"
UDP_STREAM_AFTER = 2.0  # Linux: UDP becomes a "stream" (assured) only after 2 s with replies

_INVALID = (None, 0, CT_INVALID)


class Conntrack:
    """The connection table.  ``events``: callables ``cb(kind, entry)`` with kind "NEW",
    "UPDATE" or "DESTROY" (``format_event`` renders the ``conntrack -E`` line);
    ``destroy_hooks``: callables ``cb(entry)`` for every entry that goes away, confirmed or not
    (NAT frees its mappings there)."""

    def __init__(self, max_entries: int = 65536, timeouts=None, liberal: bool = False, loose: bool = False,
                 acct: bool = False, max_unconfirmed: int = 64, checksum: bool = True):
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
        self.checksum = checksum  # nf_conntrack_checksum: a bad TCP/UDP/ICMP checksum makes a packet invalid
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

    def track(self, ip, now: float, prerouting: bool = False):
        """Classify ``ip``: returns ``(entry, direction, ct_state)``; entry None when invalid.

        As in Linux, packets in the original direction are "new" until a reply has been seen
        (a retransmitted SYN is new too, on the same entry); replies and everything after are
        "established"; ICMP errors about a tracked connection are "related".  When the table
        is full and nothing can be early-dropped, ``refused`` names the reason: drop the packet.

        ``prerouting``: the packet came from a device (the PREROUTING hook).  There, as Linux's
        tcp_error, udp_error and icmp_error do with ``checksum`` on, a TCP, UDP or ICMP checksum
        that does not hold makes the packet invalid: no entry is made or touched.  A UDP
        checksum of 0 is none; a datagram the device vouched for (``ip.csum_ok``, checksum
        offload: Linux's CHECKSUM_UNNECESSARY) is not summed, and one summed here is marked so,
        as Linux marks the skb, and the transport does not sum it again.
        """
        self._now = now
        self.refused = None
        proto = ip.protocol
        payload = ip.payload
        seg = None
        if prerouting and not ip.csum_ok and self.checksum and (proto == 6 or proto == 17 or proto == 1):
            if len(payload) >= 8 and not checksum_holds(ip.src, ip.dst, proto, payload):
                self.counters["invalid"] += 1
                self.counters["checksum_invalid"] += 1  # Linux logs "bad checksum" (ICMP: "bad hw icmp checksum")
                return _INVALID
            ip.csum_ok = True
        if proto == 6:
            seg = ct_tcp.parse_segment(payload)
            if seg is None:
                self.counters["invalid"] += 1
                return _INVALID
            key = (6, ip.src, (payload[0] << 8) | payload[1], ip.dst, (payload[2] << 8) | payload[3])
        elif proto == 17:
            if len(payload) < 8 or not 8 <= ((payload[4] << 8) | payload[5]) <= len(payload):
                self.counters["invalid"] += 1  # Linux's udp_error: "truncated/malformed packet"
                return _INVALID
            key = (17, ip.src, (payload[0] << 8) | payload[1], ip.dst, (payload[2] << 8) | payload[3])
        elif proto == 1:
            if len(payload) < 8:
                self.counters["invalid"] += 1
                return _INVALID
            if payload[0] in ICMP_RELATED_ERRORS:
                return self._related(payload, ip.dst)
            key = query_tuple(ip.src, ip.dst, payload)
            if key is None:
                self.counters["invalid"] += 1  # neither a query, nor an answer, nor an error
                return _INVALID
        else:
            key = (proto, ip.src, 0, ip.dst, 0)
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
            # The tuple holds the type: a request in the original direction, its answer in the
            # reply direction.  An answered query keeps its entry until the timeout (Linux since
            # 2.6.31, so that duplicate replies pass; RFC 5508 REQ-1: an ICMP query mapping lives
            # 60 s at least).
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
            reply = request_reply_tuple(key)
            if reply is None:
                self.counters["invalid"] += 1  # an answer with no query: Linux's "can't create new"
                return _INVALID
            proto_state = None
            timeout = self.timeouts.icmp
        else:
            proto_state = None
            timeout = self.timeouts.generic
        if proto != 1:
            reply = (proto, key[3], key[4], key[1], key[2])
        if self.count >= self.max_entries and not self._early_drop():
            self.counters["drop"] += 1
            self.drops[DROP_TABLE_FULL] += 1
            self.refused = DROP_TABLE_FULL
            return _INVALID
        entry = CtEntry(self._next_id, key, reply, now + timeout, proto_state, now)
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

    def _related(self, payload, outer_dst):
        """An ICMP error: RELATED when the datagram it quotes belongs to a tracked connection
        (ct_icmp.quoted_key says which tuple to look for)."""
        key = quoted_key(payload, outer_dst)
        if key is None:
            self.counters["invalid"] += 1
            return _INVALID
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
        return format_line(entry, now, True, self.acct) + f" mark={entry.mark} use=1"

    def format_event(self, kind: str, entry: CtEntry, now=None) -> str:
        """One line of ``conntrack -E``: timeout and TCP state except for DESTROY, mark when set."""
        line = format_line(entry, self._now if now is None else now, kind != "DESTROY", False)
        if entry.mark:
            line += f" mark={entry.mark}"
        return f"{'[' + kind + ']':>9} {line}"

    def _emit(self, kind: str, entry: CtEntry) -> None:
        for listener in self.events:
            listener(kind, entry)


def checksum_holds(src: int, dst: int, proto: int, payload) -> bool:
    """Whether a TCP segment's, UDP datagram's (8 bytes or more) or ICMP message's checksum holds,
    over all of the IP payload, as nf_ip_checksum sums it; a UDP checksum of 0 means none."""
    if proto == 1:
        return verify(payload)
    if proto == 17 and not (payload[6] or payload[7]):
        return True
    return transport_verify(src, dst, proto, payload)
