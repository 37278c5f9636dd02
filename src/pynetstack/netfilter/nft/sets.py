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
                 "handle", "loc")

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

    def format(self, handles: bool = False) -> str:
        lines = [f"\tset {self.name} {{" + (f" # handle {self.handle}" if handles else "")]
        lines.append(f"\t\ttypeof {self.typeof}" if self.typeof else f"\t\ttype {self.type_name}")
        flags = [f for f, on in (("constant", self.constant), ("interval", self.interval)) if on]
        if flags:
            lines.append("\t\tflags " + ",".join(flags))
        if self.elements:
            per_line = PER_LINE.get(self.type_name, 1)
            texts = [self._format_element(e) for e in sorted(self.elements)]
            out = ""
            for i, text in enumerate(texts):
                if i:
                    out += ",\n\t\t\t     " if i % per_line == 0 else ", "
                out += text
            lines.append(f"\t\telements = {{ {out} }}")
        lines.append("\t}")
        return "\n".join(lines)

    def _format_element(self, e) -> str:
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
        elif tok.value in ("size", "timeout", "gc-interval", "policy", "auto-merge", "comment", "counter"):
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
        cur.skip_separators()
        if cur.accept("}"):
            return out
        cur.expect(",", "comma or '}'")


def _was_prefix(cur: Cursor, first) -> bool:
    i = cur.tokens.index(first) if first in cur.tokens else -1
    return 0 <= i < len(cur.tokens) - 1 and cur.tokens[i + 1].kind == "/"
