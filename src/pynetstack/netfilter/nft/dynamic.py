"""Stateful statements for DDoS defence, with the kernel's semantics and bounded state:

- ``ct count [over] N`` (nft_connlimit): the connections that passed the rule and are still
  alive; ``over N`` matches when there are more than N (the packet's own counted).
- ``add|update @set { KEY [timeout T] [STATEMENT] }`` and ``meter NAME [size N] { ... }``
  (nft_dynset): the packet's KEY (``ip saddr``...) is put in the set; the element's own
  statement (a ``limit`` token bucket, a ``ct count``, a ``counter``) then runs on the element,
  so ``add @flood { ip saddr limit rate over 20/second } drop`` drops what each source sends
  beyond 20 packets per second.  ``update`` refreshes the element's timeout, ``add`` does not.
  When the set is full the rule does not match (as the kernel); before that, elements that
  timed out or whose state is back to a fresh one (a full bucket, no live connection) are
  evicted, least recently used first, so a flood of spoofed sources cannot pin the table.
- ``ip dscp set V``: rewrites the DSCP bits of the packet (ECN bits kept).

Each statement compiles to ``step(pkt) -> bool`` (False: the rule stops, as a failed match).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from itertools import islice
from typing import Optional

from .errors import Location, NftError
from .statements import Counter, Limit

DEFAULT_SET_SIZE = 65535  # what nft gives a set that rules add elements to
MAX_CONNS_PER_KEY = 4096  # connections remembered per ct count list
EVICT_SCAN = 8  # elements looked at from the least recently used end when the table is full
_S_DYING = 0x200  # conntrack.S_DYING (not imported: the language does not depend on conntrack)

_TIME_UNITS = (("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000), ("ms", 1))
_TIME_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")


def parse_time(text: str, loc: Optional[Location]) -> int:
    """nft's time strings (``90s``, ``1h30m``, ``500ms``, a bare number of seconds) in ms."""
    if text.isdigit():
        return int(text) * 1000
    m = _TIME_RE.match(text)
    if not text or m is None or not any(m.groups()):
        raise NftError("Wrong timeout format", loc)
    d, h, mi, s, ms = (int(g) if g else 0 for g in m.groups())
    return (((d * 24 + h) * 60 + mi) * 60 + s) * 1000 + ms


def format_time(ms: int) -> str:
    out = ""
    for name, size in _TIME_UNITS:
        if ms >= size:
            out += f"{ms // size}{name}"
            ms %= size
    return out or "0s"


class ConnList:
    """The live connections of one ct count (the rule's, or one set element's)."""

    __slots__ = ("conns",)

    def __init__(self):
        self.conns: list = []

    def count(self, pkt, now: float) -> int:
        conns = [c for c in self.conns if not c.status & _S_DYING and c.deadline > now]
        ct = getattr(pkt, "ct", None)
        if ct is not None and not any(c is ct for c in conns) and len(conns) < MAX_CONNS_PER_KEY:
            conns.append(ct)
        self.conns = conns
        return len(conns)

    def idle(self, now: float) -> bool:
        return not any(not c.status & _S_DYING and c.deadline > now for c in self.conns)


class CtCount:
    __slots__ = ("limit", "over", "loc", "conns")

    def __init__(self, limit: int, over: bool, loc: Optional[Location] = None):
        self.limit = limit
        self.over = over
        self.loc = loc
        self.conns = ConnList()

    def format(self) -> str:
        return f"ct count {'over ' if self.over else ''}{self.limit}"

    def fresh(self) -> "CtCount":
        return CtCount(self.limit, self.over, self.loc)

    def check(self, pkt) -> bool:
        count = self.conns.count(pkt, getattr(pkt, "now", 0.0))
        return count > self.limit if self.over else count <= self.limit

    def step(self):
        return self.check


class Quota:
    """``quota [over|until] N UNIT [used N UNIT]`` (nft_quota): every packet that reaches it adds
    its length to ``used``; the plain form matches while ``used`` has not gone past N, ``over``
    once it has (Linux 6.x: past, i.e. ``used > N``).  The listing caps ``used`` at N, as the
    kernel reports it."""

    __slots__ = ("limit", "over", "used", "loc")

    def __init__(self, limit: int, over: bool, used: int = 0, loc: Optional[Location] = None):
        self.limit = limit
        self.over = over
        self.used = used
        self.loc = loc

    def format(self) -> str:
        text = f"quota {'over ' if self.over else ''}{format_bytes(self.limit)}"
        used = min(self.used, self.limit)
        return text + (f" used {format_bytes(used)}" if used else "")

    def step(self):
        def quota(pkt) -> bool:
            self.used += pkt.length
            return (self.used > self.limit) == self.over
        return quota


BYTE_UNITS = (("mbytes", 1 << 20), ("kbytes", 1 << 10), ("bytes", 1))


def format_bytes(n: int) -> str:
    """nft's way: the largest unit that divides ``n`` exactly."""
    for name, size in BYTE_UNITS:
        if n and n % size == 0:
            return f"{n // size} {name}"
    return f"{n} bytes"


class DscpSet:
    __slots__ = ("value", "loc")

    def __init__(self, value: int, loc: Optional[Location] = None):
        self.value = value
        self.loc = loc

    def format(self) -> str:
        from .datatypes import DSCP
        return f"ip dscp set {DSCP.format(self.value)}"

    def step(self):
        bits = self.value << 2

        def set_dscp(pkt) -> bool:
            ip = pkt.ip
            ip.tos = bits | (ip.tos & 3)
            return True
        return set_dscp


class Element:
    __slots__ = ("expires", "state")

    def __init__(self, expires: Optional[float], state):
        self.expires = expires
        self.state = state  # a Limit, CtCount or Counter of this element, or None


def _idle(element: Element, now: float) -> bool:
    """Whether the element holds nothing a fresh one would not (so evicting it loses nothing)."""
    state = element.state
    if state is None:
        return element.expires is None  # a plain member with no timeout stays until deleted
    if isinstance(state, Limit):
        if state.last is None:
            return True
        cap = float(state.burst or 5)
        return state.tokens + (now - state.last) * state.rate / state.unit >= cap
    if isinstance(state, CtCount):
        return state.conns.idle(now)
    return False  # a counter's count would be lost


class DynamicTable:
    """The elements rules put in a set (or meter): key -> Element, at most ``size``."""

    __slots__ = ("size", "entries", "counters")

    def __init__(self, size: int):
        self.size = size
        self.entries: "OrderedDict" = OrderedDict()
        self.counters = {"elements-added": 0, "elements-expired": 0, "elements-evicted": 0, "table-full": 0}

    def get(self, key, now: float) -> Optional[Element]:
        element = self.entries.get(key)
        if element is not None:
            if element.expires is not None and element.expires <= now:
                del self.entries[key]
                self.counters["elements-expired"] += 1
                return None
            self.entries.move_to_end(key)
        return element

    def contains(self, key, pkt) -> bool:
        return self.get(key, getattr(pkt, "now", 0.0)) is not None

    def insert(self, key, now: float, timeout: Optional[float], state) -> Optional[Element]:
        entries = self.entries
        if len(entries) >= self.size and not self._make_room(now):
            self.counters["table-full"] += 1
            return None
        element = entries[key] = Element(None if timeout is None else now + timeout, state)
        self.counters["elements-added"] += 1
        return element

    def _make_room(self, now: float) -> bool:
        for key in list(islice(self.entries, EVICT_SCAN)):  # O(1): only the oldest few are looked at
            element = self.entries[key]
            if element.expires is not None and element.expires <= now:
                del self.entries[key]
                self.counters["elements-expired"] += 1
                return True
            if _idle(element, now):
                del self.entries[key]
                self.counters["elements-evicted"] += 1
                return True
        return False


class SetUpdate:
    """``add|update @SET { KEY [timeout T] [STMT] }`` or ``meter NAME [size N] { ... }``.
    ``set_ref``/``field``/``loc`` as a set match has them, so the loader resolves the set alike."""

    __slots__ = ("op", "set_ref", "field", "timeout_ms", "stmt", "loc", "meter_size", "_table")

    def __init__(self, op: str, name: str, field, timeout_ms: Optional[int], stmt, loc: Optional[Location] = None,
                 meter_size: Optional[int] = None):
        self.op = op  # "add", "update" or "meter"
        self.set_ref = name  # the NamedSet once resolved (meters: their name)
        self.field = field
        self.timeout_ms = timeout_ms
        self.stmt = stmt
        self.loc = loc
        self.meter_size = meter_size
        self._table: Optional[DynamicTable] = None

    def format(self) -> str:
        inner = self.field.name
        if self.timeout_ms is not None:
            inner += f" timeout {format_time(self.timeout_ms)}"
        if self.stmt is not None:
            inner += " " + ("counter" if isinstance(self.stmt, Counter) else self.stmt.format())
        if self.op == "meter":
            return f"meter {self.set_ref} size {self.meter_size or DEFAULT_SET_SIZE} {{ {inner} }}"
        name = self.set_ref if isinstance(self.set_ref, str) else self.set_ref.name
        return f"{self.op} @{name} {{ {inner} }}"

    def table(self) -> DynamicTable:
        if self.op != "meter":
            return self.set_ref.runtime()
        if self._table is None:
            self._table = DynamicTable(self.meter_size or DEFAULT_SET_SIZE)
        return self._table

    def step(self):
        from .expressions import _build
        get = _build(self.field.source, {})
        proto = self.field.proto
        table = self.table()
        nset = None if self.op == "meter" else self.set_ref
        timeout_ms = self.timeout_ms
        if timeout_ms is None and nset is not None:
            timeout_ms = nset.timeout_ms
        timeout = None if timeout_ms is None else timeout_ms / 1000.0
        refresh = self.op == "update" and timeout is not None
        template = self.stmt

        def update(pkt) -> bool:
            if proto is not None and pkt.proto != proto:
                return False
            now = getattr(pkt, "now", 0.0)
            key = get(pkt)
            element = table.get(key, now)
            if element is None:
                state = None
                if template is not None:
                    state = template.fresh() if not isinstance(template, Counter) else Counter()
                element = table.insert(key, now, timeout, state)
                if element is None:
                    return False  # the set is full: as the kernel, the rule does not match
            elif refresh:
                element.expires = now + timeout
            state = element.state
            if state is None:
                return True
            if state.__class__ is Limit:
                return state.admit(now) != state.over
            if state.__class__ is CtCount:
                return state.check(pkt)
            state.packets += 1
            state.bytes += pkt.length
            return True
        return update
