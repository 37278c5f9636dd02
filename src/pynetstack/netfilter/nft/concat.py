"""Concatenations: ``ip saddr . tcp dport { 10.0.0.1 . 22, 10.0.0.2 . 80 }`` and sets of type
``ipv4_addr . inet_service``.  A concatenated value is a tuple with one (lo, hi) interval per
part; the packet matches an element when every part falls in its interval."""

from __future__ import annotations

from typing import Callable, List, Tuple

from .expressions import Field


class ConcatType:
    """The datatype of a concatenation: its parts' datatypes, printed ``a . b``."""

    bitmask = False

    def __init__(self, parts: List):
        self.parts = tuple(parts)
        self.name = " . ".join(p.name for p in parts)

    def __eq__(self, other) -> bool:
        return isinstance(other, ConcatType) and other.parts == self.parts

    def __hash__(self) -> int:
        return hash(self.parts)

    def format_element(self, element: Tuple) -> str:
        return " . ".join(d.format_interval(lo, hi) for d, (lo, hi) in zip(self.parts, element))


def concat_field(fields: List[Field]) -> Field:
    """One field reading every part from the packet as a tuple; it needs the first transport
    protocol a part needs."""
    name = " . ".join(f.name for f in fields)
    source = "(" + ", ".join(f.source for f in fields) + ",)"
    protos = [f.proto for f in fields if f.proto is not None]
    field = Field(name, ConcatType([f.dtype for f in fields]), source, protos[0] if protos else None)
    field.ipv4_only = any(f.ipv4_only for f in fields)
    return field


def parse_concat_element(cur, dtype: ConcatType, parse_element) -> Tuple:
    parts = []
    for i, part in enumerate(dtype.parts):
        if i:
            if not cur.at("."):
                raise cur.unexpected("'.'")
            cur.next()
        value = parse_element(cur, part)
        parts.append(value if isinstance(value, tuple) else (value, value))
    return tuple(parts)


def concat_test(elements: List[Tuple]) -> Callable:
    exact = frozenset(tuple(lo for lo, _ in e) for e in elements if all(lo == hi for lo, hi in e))
    ranged = [e for e in elements if not all(lo == hi for lo, hi in e)]

    def test(value) -> bool:
        if value in exact:
            return True
        for element in ranged:
            for v, (lo, hi) in zip(value, element):
                if not lo <= v <= hi:
                    break
            else:
                return True
        return False
    return test
