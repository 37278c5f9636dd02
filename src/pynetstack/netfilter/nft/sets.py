"""Named sets: ``set NAME { type ipv4_addr; flags interval; elements = { ... } }`` in a table,
used by rules as ``ip saddr @NAME``."""

from __future__ import annotations

from typing import List, Optional

from . import datatypes as T
from .cursor import Cursor
from .errors import NftError, unsupported

SET_TYPES = {"ipv4_addr": T.IPV4, "inet_service": T.SERVICE, "inet_proto": T.PROTOCOL, "ifname": T.IFNAME,
             "mark": T.MARK, "icmp_type": T.ICMP_TYPE}
DESCRIPTIONS = {"ipv4_addr": "IPv4 address", "inet_service": "internet network service",
                "inet_proto": "Internet protocol", "ifname": "network interface name", "mark": "packet mark",
                "icmp_type": "ICMP type", "integer": "integer", "ct_state": "conntrack state",
                "ct_status": "conntrack status", "tcp_flag": "TCP flag", "dscp": "Differentiated Services Code Point",
                "pkt_type": "packet type", "ct_dir": "conntrack direction", "icmp_code": "icmp code",
                "inet_proto_or_l4": "Internet protocol"}
# how many elements nft prints on one line of a named set, by type (then ",\n\t\t\t     ")
PER_LINE = {"inet_service": 10, "inet_proto": 10, "mark": 10, "ipv4_addr": 2}


class NamedSet:
    __slots__ = ("name", "table", "type_name", "typeof", "dtype", "interval", "constant", "elements",
                 "handle", "loc", "dynamic", "timeout_flag", "size", "timeout_ms", "gc_interval_ms", "_runtime",
                 "flushes")

    def __init__(self, name: str, table, loc=None):
        self.name = name
        self.table = table
        self.type_name = ""
        self.typeof: Optional[str] = None
        self.dtype = None
        self.interval = False
        self.constant = False
        self.elements: List = []  # (lo, hi) intervals, or strings for ifname sets
        self.handle = 0
        self.loc = loc
        self.dynamic = False  # rules add elements (add/update @name)
        self.timeout_flag = False
        self.size: Optional[int] = None
        self.timeout_ms: Optional[int] = None  # elements' default lifetime
        self.gc_interval_ms: Optional[int] = None
        self._runtime = None
        self.flushes = 0  # ``flush set`` commands so far: a set flushed since is not the one before

    def used_by_rules(self) -> None:
        """A rule adds to this set: nft then makes it dynamic (and gives it a size)."""
        self.dynamic = True
        if self.timeout_ms is not None:
            self.timeout_flag = True
        if self.size is None:
            from .dynamic import DEFAULT_SET_SIZE
            self.size = DEFAULT_SET_SIZE

    @property
    def is_dynamic(self) -> bool:
        return self.dynamic or self.timeout_flag or self.timeout_ms is not None

    def runtime(self):
        """The elements rules added (a DynamicTable, bounded by the set's size)."""
        if self._runtime is None:
            from .dynamic import DEFAULT_SET_SIZE, DynamicTable
            self._runtime = DynamicTable(self.size or DEFAULT_SET_SIZE)
        return self._runtime

    def format(self, handles: bool = False, now: Optional[float] = None) -> str:
        lines = [f"\tset {self.name} {{" + (f" # handle {self.handle}" if handles else "")]
        from .dynamic import format_time
        lines.append(f"\t\ttypeof {self.typeof}" if self.typeof else f"\t\ttype {self.type_name}")
        if self.size:
            lines.append(f"\t\tsize {self.size}")
        flags = [f for f, on in (("constant", self.constant), ("interval", self.interval), ("dynamic", self.dynamic),
                                 ("timeout", self.timeout_flag)) if on]
        if flags:
            lines.append("\t\tflags " + ",".join(flags))
        if self.timeout_ms is not None:
            lines.append(f"\t\ttimeout {format_time(self.timeout_ms)}")
        if self.gc_interval_ms is not None:
            lines.append(f"\t\tgc-interval {format_time(self.gc_interval_ms)}")
        texts = [self._format_element(e) for e in sorted(self.elements)]
        if now is not None and self._runtime is not None:
            texts += self._dynamic_elements(now)
        if texts:
            per_line = PER_LINE.get(self.type_name, 1)
            out = ""
            for i, text in enumerate(texts):
                if i:
                    out += ",\n\t\t\t     " if i % per_line == 0 else ", "
                out += text
            lines.append(f"\t\telements = {{ {out} }}")
        lines.append("\t}")
        return "\n".join(lines)

    def _dynamic_elements(self, now: float) -> List[str]:
        """The elements rules added, as the kernel lists them: the key, its statement, the time
        left (``192.0.2.1 limit rate over 10/second expires 27s412ms``); expired ones are gone."""
        from .dynamic import format_time
        out = []
        for key, element in self._runtime.entries.items():
            if element.expires is not None and element.expires <= now:
                continue
            text = self._format_element(tuple((k, k) for k in key) if isinstance(key, tuple) else (key, key))
            state = element.state
            if state is not None:
                text += " " + state.format()
            if element.expires is not None:
                text += f" expires {format_time(max(0, int((element.expires - now) * 1000)))}"
            out.append(text)
        return out

    def _format_element(self, e) -> str:
        if hasattr(self.dtype, "format_element"):
            return self.dtype.format_element(e)
        if self.dtype is T.IFNAME:
            return f'"{e}"'
        return self.dtype.format_interval(e[0], e[1])


def parse_set_body(cur: Cursor, nset: NamedSet, parse_element, fields) -> None:
    """The ``{ ... }`` of a set declaration (the cursor is past its ``{``)."""
    while True:
        cur.skip_separators()
        tok = cur.peek()
        if cur.accept("}"):
            break
        if tok.kind != "word":
            raise cur.unexpected()
        cur.next()
        if tok.value == "type":
            name = cur.word("datatype")
            if cur.at("."):  # a concatenation: ipv4_addr . inet_service
                from .concat import ConcatType
                names = [name.value]
                while cur.at("."):
                    cur.next()
                    part = cur.word("datatype")
                    if part.value not in SET_TYPES or part.value == "ifname":
                        raise unsupported(f"sets of type {part.value} in a concatenation", part.loc)
                    names.append(part.value)
                if names[0] not in SET_TYPES or names[0] == "ifname":
                    raise unsupported(f"sets of type {names[0]} in a concatenation", name.loc)
                nset.type_name = " . ".join(names)
                nset.dtype = ConcatType([SET_TYPES[n] for n in names])
                cur.end_statement()
                continue
            if name.value not in SET_TYPES:
                if name.value in DESCRIPTIONS or "." in name.value:
                    raise unsupported(f"sets of type {name.value}", name.loc)
                raise NftError(f"unknown datatype {name.value}", name.loc)
            nset.type_name, nset.dtype = name.value, SET_TYPES[name.value]
        elif tok.value == "typeof":
            first = cur.word("expression")
            key = first.value
            if key in ("ip", "tcp", "udp", "meta", "icmp"):
                key += " " + cur.word("field").value
            field = fields.get(key)
            type_name = {v: k for k, v in SET_TYPES.items()}.get(field.dtype) if field else None
            if type_name is None:
                raise unsupported(f"typeof {key}", cur.span(first))
            nset.typeof, nset.type_name, nset.dtype = field.name, type_name, field.dtype
        elif tok.value == "flags":
            while True:
                flag = cur.word("set flag")
                if flag.value == "interval":
                    nset.interval = True
                elif flag.value == "constant":
                    nset.constant = True
                elif flag.value == "dynamic":
                    nset.dynamic = True
                elif flag.value == "timeout":
                    nset.timeout_flag = True
                else:
                    raise unsupported(f"set flag {flag.value}", flag.loc)
                if not cur.accept(","):
                    break
        elif tok.value == "elements":
            cur.expect("=", "'='")
            if nset.dtype is None:
                raise NftError("set definition does not specify key", nset.loc)
            cur.expect("{")
            nset.elements = _parse_elements(cur, nset, parse_element)
        elif tok.value == "size":
            value = cur.word("number")
            if not value.value.isdigit():
                raise cur.unexpected("number", value)
            nset.size = int(value.value) or None  # nft lists no size for "size 0"
        elif tok.value in ("timeout", "gc-interval"):
            from .dynamic import parse_time
            value = cur.word("time")
            ms = parse_time(value.value, value.loc)
            if tok.value == "timeout":
                nset.timeout_ms = ms
            else:
                nset.gc_interval_ms = ms
        elif tok.value in ("policy", "auto-merge", "comment", "counter"):
            raise unsupported(f"set {tok.value}", tok.loc)
        else:
            raise cur.unexpected("", tok)
        cur.end_statement()
    if nset.dtype is None:
        raise NftError("set definition does not specify key", nset.loc)


def _parse_elements(cur: Cursor, nset: NamedSet, parse_element) -> List:
    out: List = []
    while True:
        cur.skip_separators()
        if cur.accept("}"):
            return out
        first = cur.peek()
        if hasattr(nset.dtype, "format_element"):
            from .concat import parse_concat_element
            value = parse_concat_element(cur, nset.dtype, parse_element)
            if value not in out:
                out.append(value)
            cur.skip_separators()
            if cur.accept("}"):
                return out
            cur.expect(",", "comma or '}'")
            continue
        value = parse_element(cur, nset.dtype)
        if nset.dtype is not T.IFNAME and value[0] != value[1] and not nset.interval:
            raise NftError("You must add 'flags interval' to your set declaration if you want to add "
                           f"{'prefix' if _was_prefix(cur, first) else 'range'} elements", cur.span(first))
        if nset.interval and value not in out:
            for lo, hi in out:
                if lo <= value[1] and value[0] <= hi:
                    raise NftError("conflicting intervals specified", cur.span(first))
        if value not in out:
            out.append(value)
        if cur.at("timeout", "expires", "comment", "counter", "limit", "ct"):
            raise unsupported(f"set element {cur.peek().value}", cur.peek().loc)
        cur.skip_separators()
        if cur.accept("}"):
            return out
        cur.expect(",", "comma or '}'")


def _was_prefix(cur: Cursor, first) -> bool:
    i = cur.tokens.index(first) if first in cur.tokens else -1
    return 0 <= i < len(cur.tokens) - 1 and cur.tokens[i + 1].kind == "/"
