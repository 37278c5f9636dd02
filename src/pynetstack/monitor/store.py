"""The embedded time-series store: SQLite in WAL mode, raw samples plus 1-minute and 1-hour rollups.

* ``append(t, {series: value})`` writes one sample of every series in one transaction: once it
  returns, a kill -9 loses none of it (WAL with synchronous=NORMAL: the commit is in the log
  before the call returns; only a power cut could take it back).
* ``maintain(now)`` rolls finished minutes and hours up (count, sum, min, max, last), deletes
  what is older than each level's retention, then enforces the disk bound by dropping the oldest
  raw samples (then rollups) and giving pages back (incremental vacuum).
* Queries: ``range``, ``rate``, ``rates`` and ``percentiles``; ``series`` lists the names.

Timestamps are wall-clock seconds (the store outlives the process); rows keep milliseconds.
Rows are keyed (time, series): every sample appends at the end of the B-tree, which ingests
about seven times faster than (series, time) keys; a query for one series scans its time range,
which is cheap for the windows that reports and alerts ask for.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

LEVELS = (("samples", 0), ("rollup_60", 60), ("rollup_3600", 3600))
_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, born INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS samples (ts INTEGER NOT NULL, series INTEGER NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (ts, series)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS events (ts INTEGER NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
"""
MAX_EVENTS = 100_000  # alert changes and top-flow snapshots kept (oldest go first)
_ROLLUP = """
CREATE TABLE IF NOT EXISTS {t} (ts INTEGER NOT NULL, series INTEGER NOT NULL, count INTEGER NOT NULL,
    sum REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL, last REAL NOT NULL, PRIMARY KEY (ts, series)) WITHOUT ROWID;
"""


class StoreError(ValueError):
    """The store file cannot be used (names the file)."""


class Store:
    def __init__(self, path: str, retention_raw: float = 86400.0, retention_minute: float = 7 * 86400.0,
                 retention_hour: float = 365 * 86400.0, max_bytes: int = 100 * 1024 * 1024):
        self.path = path
        self.retention = {"samples": retention_raw, "rollup_60": retention_minute, "rollup_3600": retention_hour}
        self.max_bytes = max_bytes
        try:
            # the stack's loop writes; the monitor's HTTP threads read: one connection, serialized
            self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._run("PRAGMA auto_vacuum=INCREMENTAL")  # takes effect on a new file only
            self._run("PRAGMA journal_mode=WAL")
            self._run("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA + _ROLLUP.format(t="rollup_60") + _ROLLUP.format(t="rollup_3600"))
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: cannot be used as the monitor's store: {exc}") from None
        import threading
        self.lock = threading.RLock()
        self._ids: Dict[str, int] = dict((key, ident) for ident, key in self.db.execute("SELECT id, key FROM series"))

    # -- writing ------------------------------------------------------------------------------------

    def _id(self, key: str, ms: int) -> int:
        ident = self._ids.get(key)
        if ident is None:
            cursor = self.db.execute("INSERT INTO series (key, born) VALUES (?, ?)", (key, ms))
            ident = cursor.lastrowid
            cursor.close()
            self._ids[key] = ident
        return ident

    def append(self, t: float, values: Dict[str, float]) -> None:
        """One sample of each series at ``t``, committed when this returns."""
        self.append_many([(t, values)])

    def append_many(self, samples: Iterable[Tuple[float, Dict[str, float]]]) -> int:
        """Many samples in one transaction (a bulk load); returns the number of values written."""
        with self.lock:
            self._run("BEGIN")
            try:
                rows = []
                for t, values in samples:
                    ms = int(round(t * 1000))
                    rows.extend((ms, self._id(key, ms), float(value)) for key, value in values.items())
                self.db.executemany("INSERT OR REPLACE INTO samples (ts, series, value) VALUES (?, ?, ?)", rows).close()
                self._run("COMMIT")
            except BaseException:
                self._run("ROLLBACK")
                self._ids = dict((key, ident) for ident, key in self.db.execute("SELECT id, key FROM series"))
                raise
            return len(rows)

    def event(self, t: float, kind: str, body: dict) -> None:
        """Record an event (an alert firing or resolving, a top-flows snapshot) as JSON."""
        import json
        with self.lock:
            self._run("INSERT INTO events (ts, kind, body) VALUES (?, ?, ?)",
                      (int(round(t * 1000)), kind, json.dumps(body, sort_keys=True)))

    def events(self, start: float, end: float, kind: Optional[str] = None) -> List[Tuple[float, str, dict]]:
        import json
        with self.lock:
            rows = self.db.execute("SELECT ts, kind, body FROM events WHERE ts >= ? AND ts <= ? ORDER BY ts",
                                   (int(start * 1000), int(end * 1000))).fetchall()
        return [(ts / 1000.0, k, json.loads(body)) for ts, k, body in rows if kind is None or k == kind]

    # -- upkeep -------------------------------------------------------------------------------------

    def maintain(self, now: float) -> None:
        """Roll up finished buckets, apply retention and the disk bound."""
        with self.lock:
            self._run("BEGIN")
            try:
                self._rollup("samples", "rollup_60", 60, now)
                self._rollup("rollup_60", "rollup_3600", 3600, now)
                for table, _ in LEVELS:
                    cutoff = int((now - self.retention[table]) * 1000)
                    self._run(f"DELETE FROM {table} WHERE ts < ?", (cutoff,))
                self._run("DELETE FROM events WHERE ts < ? OR rowid <= (SELECT max(rowid) FROM events) - ?",
                          (int((now - self.retention["rollup_3600"]) * 1000), MAX_EVENTS))
                self._run("COMMIT")
            except BaseException:
                self._run("ROLLBACK")
                raise
            self._bound_disk()

    def _run(self, sql: str, args=()) -> None:
        self.db.execute(sql, args).close()

    def _one(self, sql: str, args=()):
        cursor = self.db.execute(sql, args)
        try:
            return cursor.fetchone()
        finally:
            cursor.close()  # PyPy's sqlite3 keeps a statement open until then (and locks the table)

    def _watermark(self, name: str) -> int:
        row = self._one("SELECT value FROM meta WHERE key = ?", (name,))
        return int(row[0]) if row else -1

    def _rollup(self, source: str, target: str, width: int, now: float) -> None:
        """Buckets [start, end) that finished since the last rollup: end <= now, floored to ``width``."""
        ms = width * 1000
        end = int(now * 1000) // ms * ms
        start = self._watermark(target)
        if start < 0:
            first = self._one(f"SELECT min(ts) FROM {source}")[0]
            if first is None:
                return
            start = first // ms * ms
        if end <= start:
            return
        if source == "samples":
            agg, last = "count(*), sum(value), min(value), max(value)", "value"
        else:
            agg, last = "sum(count), sum(sum), min(min), max(max)", "last"
        # last_value() over each (series, bucket): the bucket's final sample, what rate() needs
        self._run(
            f"INSERT OR REPLACE INTO {target} (series, ts, count, sum, min, max, last) "
            f"SELECT series, bucket, {agg}, final FROM (SELECT *, (ts / {ms}) * {ms} AS bucket, "
            f"last_value({last}) OVER (PARTITION BY series, (ts / {ms}) ORDER BY ts ROWS BETWEEN UNBOUNDED "
            f"PRECEDING AND UNBOUNDED FOLLOWING) AS final FROM {source} WHERE ts >= ? AND ts < ?) "
            f"GROUP BY series, bucket", (start, end))
        self._run("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (target, end))

    def size(self) -> int:
        """Bytes on disk: the database and its write-ahead log."""
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += os.path.getsize(self.path + suffix)
            except OSError:
                pass
        return total

    def _bound_disk(self) -> None:
        self._run("PRAGMA wal_checkpoint(TRUNCATE)")
        for _ in range(20):
            page_size = self._one("PRAGMA page_size")[0]
            pages = self._one("PRAGMA page_count")[0] - self._one("PRAGMA freelist_count")[0]
            if pages * page_size <= self.max_bytes * 0.9:
                break
            for table, _ in LEVELS:  # the finest data goes first: the rollups keep its summary
                span = self._one(f"SELECT min(ts), max(ts) FROM {table}")
                if span[0] is not None and span[0] < span[1]:
                    cut = span[0] + (span[1] - span[0]) // 4 + 1
                    self._run(f"DELETE FROM {table} WHERE ts < ?", (cut,))
                    break
            else:
                break
        # through sqlite3_exec: the module's execute() steps this pragma once, freeing one page
        self.db.executescript("PRAGMA incremental_vacuum;")
        self._run("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self.lock:
            self.db.close()

    # -- reading ------------------------------------------------------------------------------------

    def last_time(self) -> Optional[float]:
        """When the newest raw sample was taken (None for an empty store)."""
        with self.lock:
            newest = self._one("SELECT max(ts) FROM samples")[0]
        return None if newest is None else newest / 1000.0

    def series(self, prefix: str = "") -> List[str]:
        with self.lock:
            return sorted(key for key in self._ids if key.startswith(prefix))

    def refresh(self) -> None:
        """Learn series written by another process (a reader of a live store)."""
        with self.lock:
            self._ids = dict((key, ident) for ident, key in self.db.execute("SELECT id, key FROM series"))

    def range(self, key: str, start: float, end: float, resolution: Optional[int] = None) -> List[Tuple[float, float]]:
        """(t, value) points of ``key`` in [start, end]: raw samples (``resolution`` 0), or the
        ``last`` of 60 s / 3600 s rollups; by default the finest level still holding ``start``."""
        with self.lock:
            ident = self._ids.get(key)
            if ident is None:
                return []
            table, column = self._level(start, resolution)
            rows = self.db.execute(f"SELECT ts, {column} FROM {table} WHERE ts >= ? AND ts <= ? AND series = ? "
                                   "ORDER BY ts", (int(start * 1000), int(end * 1000), ident)).fetchall()
        return [(ts / 1000.0, value) for ts, value in rows]

    def rollups(self, key: str, width: int, start: float, end: float) -> List[tuple]:
        """(t, count, sum, min, max, last) rows of ``key``'s ``width`` (60 or 3600) rollup."""
        with self.lock:
            ident = self._ids.get(key)
            if ident is None:
                return []
            rows = self.db.execute(f"SELECT ts, count, sum, min, max, last FROM rollup_{width} WHERE ts >= ? "
                                   "AND ts <= ? AND series = ? ORDER BY ts",
                                   (int(start * 1000), int(end * 1000), ident)).fetchall()
            return [(row[0] / 1000.0,) + tuple(row[1:]) for row in rows]

    def dump(self, start: float, end: float) -> Dict[str, List[Tuple[float, float]]]:
        """Every raw sample in [start, end] by series: one scan, for exports and checks."""
        with self.lock:
            names = {ident: key for key, ident in self._ids.items()}
            out: Dict[str, List[Tuple[float, float]]] = {}
            for ts, ident, value in self.db.execute("SELECT ts, series, value FROM samples WHERE ts >= ? AND ts <= ?",
                                                    (int(start * 1000), int(end * 1000))):
                out.setdefault(names[ident], []).append((ts / 1000.0, value))
            return out

    def _level(self, start: float, resolution: Optional[int]) -> Tuple[str, str]:
        """The finest level, unless retention trimmed it after ``start`` and a coarser level's data
        truly begins earlier (its first bucket ends before the finer level's first point)."""
        if resolution is None:
            chosen = None
            for table, width in LEVELS:
                first = self._one(f"SELECT min(ts) FROM {table}")[0]
                if first is None:
                    continue
                if chosen is None:
                    chosen = (table, width, first)
                elif chosen[2] > start * 1000 and first + width * 1000 <= chosen[2]:
                    # the finer level was trimmed after ``start``; this one's first bucket is older
                    chosen = (table, width, first)
            table, width = chosen[:2] if chosen else ("samples", 0)
            return table, "value" if width == 0 else "last"
        for table, width in LEVELS:
            if width == resolution:
                return (table, "value" if width == 0 else "last")
        raise ValueError(f"resolution must be 0, 60 or 3600, not {resolution!r}")

    def rate(self, key: str, start: float, end: float) -> Optional[float]:
        """Per-second increase of counter ``key`` over [start, end] (a reset counts from zero)."""
        from .expr import rate
        return rate(self.range(key, start, end))

    def increase(self, key: str, start: float, end: float) -> float:
        """How much counter ``key`` grew over [start, end] (a reset counts from zero).  A series
        born inside the window after the store began (a drop reason seen for the first time)
        counts from zero too: before its first sample it was not there, which is to say 0."""
        points = self.range(key, start, end)
        grew = sum((v1 - v0 if v1 >= v0 else v1) for (_, v0), (_, v1) in zip(points, points[1:]))
        if points:
            with self.lock:
                born, first = self._one("SELECT born, (SELECT min(born) FROM series) FROM series WHERE key = ?",
                                        (key,))
            if born > first and born >= start * 1000 and round(points[0][0] * 1000) == born:
                grew += points[0][1]
        return grew

    def rates(self, key: str, start: float, end: float, resolution: Optional[int] = None) -> List[Tuple[float, float]]:
        """Per-second rate between consecutive points: a throughput curve for plots."""
        points = self.range(key, start, end, resolution)
        out = []
        for (t0, v0), (t1, v1) in zip(points, points[1:]):
            if t1 > t0:
                out.append((t1, (v1 - v0 if v1 >= v0 else v1) / (t1 - t0)))
        return out

    def percentiles(self, key: str, start: float, end: float, qs: Sequence[float] = (50, 90, 99)) -> Dict[float, float]:
        """Percentiles of the raw values in [start, end], interpolated between closest ranks."""
        values = sorted(v for _, v in self.range(key, start, end, resolution=0))
        return {q: percentile(values, q) for q in qs} if values else {}


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of sorted values, linear between closest ranks (numpy's default)."""
    if not 0 <= q <= 100:
        raise ValueError(f"a percentile is within 0..100, not {q}")
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
