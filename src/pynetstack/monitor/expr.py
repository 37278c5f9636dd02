"""Alert expressions: a small, PromQL-shaped subset evaluated over recent samples.

    expr     := [agg "("] vector [")"] op number
    vector   := selector | "rate(" selector "[" duration "]" ")"
    selector := metric_name ["{" label ("="|"!=") "value" {, ...} "}"]
    agg      := sum | max | min | avg ; op := > | >= | < | <= | == | !=

``rate`` is the per-second increase between the first and last samples in the range, a counter
reset counting from zero (as Prometheus' ``rate``, without extrapolation).  Dotted names (the
seed's ``bandwidth_usage.utilization_percent``) are read with underscores.
"""

from __future__ import annotations

import operator
import re
from typing import Dict, List, Optional, Tuple

from .metrics import parse_key

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq,
        "!=": operator.ne}
_AGGS = {"sum": sum, "max": max, "min": min, "avg": lambda values: sum(values) / len(values)}
_EXPR = re.compile(r"^\s*(?:(sum|max|min|avg)\s*\(\s*)?(rate\s*\()?\s*([a-zA-Z_:][a-zA-Z0-9_:.]*)\s*"
                   r"(\{[^}]*\})?\s*(?:\[\s*([0-9.]+(?:ms|s|m|h|d)?)\s*\])?\s*(\))?\s*(\))?\s*"
                   r"(>=|<=|==|!=|>|<)\s*(-?[0-9.]+(?:[eE][-+]?\d+)?)\s*$")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


class Expr:
    __slots__ = ("text", "agg", "rate_range", "name", "matchers", "op", "threshold")

    def __init__(self, text, agg, rate_range, name, matchers, op, threshold):
        self.text, self.agg, self.rate_range, self.name = text, agg, rate_range, name
        self.matchers, self.op, self.threshold = matchers, op, threshold

    def matches(self, name: str, labels: Dict[str, str]) -> bool:
        if name != self.name:
            return False
        for label, negate, value in self.matchers:
            if (labels.get(label, "") == value) == negate:
                return False
        return True

    def window(self) -> float:
        return self.rate_range or 0.0

    def values(self, history: List[Tuple[float, Dict[str, float]]]) -> List[Tuple[Dict[str, str], float]]:
        """(labels, value) per matching series; ``history`` is [(t, {series key: value}), ...], oldest first."""
        if not history:
            return []
        now, latest = history[-1]
        out = []
        for key in latest:
            name, labels = parse_key(key)
            if not self.matches(name, labels):
                continue
            if self.rate_range is None:
                out.append((labels, latest[key]))
                continue
            points = [(t, snap[key]) for t, snap in history if t >= now - self.rate_range - 1e-9 and key in snap]
            value = rate(points)
            if value is not None:
                out.append((labels, value))
        if self.agg and out:
            return [({}, _AGGS[self.agg]([value for _, value in out]))]
        return out

    def evaluate(self, history) -> List[Tuple[Dict[str, str], float]]:
        """The series for which the condition holds now."""
        test = _OPS[self.op]
        return [(labels, value) for labels, value in self.values(history) if test(value, self.threshold)]


def rate(points: List[Tuple[float, float]]) -> Optional[float]:
    """Per-second increase over ``points`` [(t, counter value)], counting a reset from zero."""
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return None
    increase = 0.0
    previous = points[0][1]
    for _, value in points[1:]:
        increase += value - previous if value >= previous else value
        previous = value
    return increase / (points[-1][0] - points[0][0])


def parse_expr(text: str) -> Expr:
    from .config import duration
    match = _EXPR.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"cannot read the expression {text!r} (like: rate(metric{{label=\"v\"}}[10s]) > 1000)")
    agg, is_rate, name, selector, rng, close1, close2, op, number = match.groups()
    closes = (close1 is not None) + (close2 is not None)
    if closes != bool(agg) + bool(is_rate):
        raise ValueError(f"unbalanced parentheses in {text!r}")
    if bool(is_rate) != bool(rng):
        raise ValueError(f"rate() needs a range like [10s] in {text!r}" if is_rate else
                         f"a range [..] needs rate() in {text!r}")
    matchers = []
    if selector:
        inner = selector[1:-1].strip()
        pos = 0
        while pos < len(inner):
            matcher = _MATCHER.match(inner, pos)
            if not matcher:
                raise ValueError(f"bad label matcher in {selector!r}")
            matchers.append((matcher.group(1), matcher.group(2) == "!=", matcher.group(3)))
            pos = matcher.end()
    rate_range = duration(rng, "the rate range") if rng else None
    if rate_range is not None and rate_range <= 0:
        raise ValueError(f"the rate range must be positive in {text!r}")
    return Expr(text, agg, rate_range, name.replace(".", "_"), tuple(matchers), op, float(number))
