"""threshold and detection_filter: per rule and tracked address, counted in a time window.

    threshold: type limit      alert on the first `count` matches in each window
               type threshold  alert on every `count`-th match in the window
               type both       alert once per window, when the matches reach `count`
    detection_filter           alert on every match once the matches exceed `count`

The table is bounded (``max_entries``; the oldest entry goes when a new one needs room)."""

from __future__ import annotations

from typing import Dict, Tuple


class Thresholds:
    def __init__(self, max_entries: int = 65536):
        self.entries: Dict[Tuple, list] = {}  # key -> [window start, count]
        self.max_entries = max_entries
        self.suppressed = 0

    def _entry(self, kind: str, rule, spec: dict, src: int, dst: int, now: float) -> list:
        track = spec["track"]
        who = src if track == "by_src" else dst if track == "by_dst" else (src, dst) if track == "by_both" else 0
        key = (kind, rule.gid, rule.sid, who)
        entry = self.entries.get(key)
        if entry is None or now - entry[0] >= spec["seconds"]:
            if entry is None and len(self.entries) >= self.max_entries:
                del self.entries[next(iter(self.entries))]
            entry = self.entries[key] = [now, 0]
        return entry

    def allow(self, rule, src: int, dst: int, now: float) -> bool:
        """Count a match of ``rule``; True when it should raise an alert."""
        spec = rule.detection_filter
        if spec is not None:
            entry = self._entry("df", rule, spec, src, dst, now)
            entry[1] += 1
            if entry[1] <= spec["count"]:
                self.suppressed += 1
                return False
        spec = rule.threshold
        if spec is None:
            return True
        entry = self._entry("th", rule, spec, src, dst, now)
        entry[1] += 1
        kind, count = spec["type"], spec["count"]
        if kind == "limit":
            ok = entry[1] <= count
        elif kind == "threshold":
            ok = entry[1] % count == 0
        else:  # both
            ok = entry[1] == count
        if not ok:
            self.suppressed += 1
        return ok
