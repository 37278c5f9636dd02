"""Slice 2: the SQLite store: a million samples in and out, rollups against a reference computed
in plain Python, retention, the disk bound, queries, and nothing committed lost to kill -9."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pynetstack.monitor.store import Store, StoreError, percentile

T0 = 1_699_999_200.0  # wall-clock seconds, on an hour boundary


@pytest.fixture()
def store(tmp_path):
    s = Store(str(tmp_path / "m.db"))
    yield s
    s.close()


def test_a_million_samples_are_written_and_read_back(tmp_path):
    s = Store(str(tmp_path / "big.db"), max_bytes=1 << 30)
    keys = [f'pynetstack_x_total{{n="{i}"}}' for i in range(1000)]
    batches = [(T0 + t, {key: float(t * 1000 + i) for i, key in enumerate(keys)}) for t in range(1000)]
    assert s.append_many(batches) == 1_000_000
    s.close()
    s = Store(str(tmp_path / "big.db"))  # reopened: everything was committed
    back = s.dump(T0, T0 + 1000)
    assert len(back) == 1000
    assert sum(len(points) for points in back.values()) == 1_000_000
    for i in (0, 517, 999):
        assert back[keys[i]] == [(T0 + t, float(t * 1000 + i)) for t in range(1000)]
    assert s.range(keys[3], T0 + 10, T0 + 12) == [(T0 + 10, 10003.0), (T0 + 11, 11003.0), (T0 + 12, 12003.0)]
    s.close()


def reference_rollup(points, width):
    """(bucket start, count, sum, min, max, last) per bucket, in plain Python."""
    buckets = {}
    for t, v in points:
        buckets.setdefault(int(t // width) * width, []).append((t, v))
    return [(float(b), len(vs), sum(v for _, v in vs), min(v for _, v in vs), max(v for _, v in vs),
             max(vs)[1]) for b, vs in sorted(buckets.items())]


def test_rollups_equal_a_reference_computation(store):
    rng = random.Random(7)
    keys = ["a", 'b{x="1"}', "c_total"]
    points = {key: [] for key in keys}
    samples = []
    t = T0 - 17
    while t < T0 + 3 * 3600:  # three hours of samples at irregular intervals (1 to 20 s apart)
        values = {key: round(rng.uniform(-100, 100), 3) for key in keys}
        for key, value in values.items():
            points[key].append((t, value))
        samples.append((t, values))
        t += rng.choice((1.0, 2.5, 5.0, 20.0))
    store.append_many(samples)
    end = T0 + 3 * 3600
    store.maintain(end - 1000)  # in two steps: the watermark carries on where it stopped
    store.maintain(end)
    for key in keys:
        done = [(t, v) for t, v in points[key] if t < (end // 60) * 60]
        got = store.rollups(key, 60, 0, end)
        want = reference_rollup(done, 60)
        assert [row[:2] for row in got] == [row[:2] for row in want]
        for g, w in zip(got, want):
            assert g[2] == pytest.approx(w[2]) and g[3:] == w[3:]
        hours = store.rollups(key, 3600, 0, end)
        want_h = reference_rollup([(t, v) for t, v in points[key] if t < (end // 3600) * 3600], 3600)
        assert [(r[0], r[1], r[3], r[4], r[5]) for r in hours] == [(r[0], r[1], r[3], r[4], r[5]) for r in want_h]
        assert [r[2] for r in hours] == pytest.approx([r[2] for r in want_h])


def test_retention_deletes_what_is_older_than_each_level(tmp_path):
    s = Store(str(tmp_path / "r.db"), retention_raw=600, retention_minute=7200, retention_hour=86400)
    s.append_many((T0 + t, {"m": float(t)}) for t in range(0, 4 * 3600, 10))
    now = T0 + 4 * 3600
    s.maintain(now)
    raw = s.range("m", 0, now, resolution=0)
    assert raw[0][0] >= now - 600 and raw[-1][0] == now - 10
    minutes = s.rollups("m", 60, 0, now)
    assert minutes[0][0] >= now - 7200 and len(minutes) == 120
    assert len(s.rollups("m", 3600, 0, now)) == 4
    # the finest level that still holds the start answers a range query
    assert s.range("m", now - 300, now) == [p for p in raw if p[0] >= now - 300]
    assert s.range("m", now - 3600, now) == [(r[0], r[5]) for r in minutes if r[0] >= now - 3600]
    assert s.range("m", now - 4 * 3600, now) == [(T0 + h * 3600, h * 3600 + 3590.0) for h in range(4)]
    s.close()


def test_the_disk_bound_drops_the_oldest_raw_samples_first(tmp_path):
    path = str(tmp_path / "d.db")
    s = Store(path, max_bytes=400_000)
    s.append_many((T0 + t, {f"s{i}": float(t) for i in range(50)}) for t in range(0, 3000))
    assert s.size() > 1_000_000
    s.maintain(T0 + 3000)
    assert s.size() <= 400_000
    raw = s.range("s0", 0, T0 + 3000, resolution=0)
    assert raw and raw[-1][0] == T0 + 2999 and raw[0][0] > T0 + 1000  # the newest kept, the oldest gone
    assert len(s.rollups("s0", 60, 0, T0 + 3000)) == 50  # made before the raw data went
    s.close()


def test_rate_counts_a_reset_from_zero_and_percentiles_interpolate(store):
    store.append_many([(T0, {"c": 100.0}), (T0 + 10, {"c": 200.0}), (T0 + 20, {"c": 50.0}), (T0 + 30, {"c": 150.0})])
    assert store.rate("c", T0, T0 + 30) == pytest.approx((100 + 50 + 100) / 30)
    assert store.rates("c", T0, T0 + 30) == [(T0 + 10, 10.0), (T0 + 20, 5.0), (T0 + 30, 10.0)]
    assert store.percentiles("c", T0, T0 + 30, (0, 50, 100)) == {0: 50.0, 50: 125.0, 100: 200.0}
    assert store.rate("missing", T0, T0 + 30) is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=50), st.floats(0, 100))
def test_percentile_matches_a_brute_force_reference(values, q):
    ordered = sorted(values)
    # reference: numpy's "linear" method written out
    h = (len(ordered) - 1) * q / 100
    lo, hi = int(h // 1), min(int(h // 1) + 1, len(ordered) - 1)
    assert percentile(ordered, q) == pytest.approx(ordered[lo] + (h - lo) * (ordered[hi] - ordered[lo]), abs=1e-6)


def test_a_file_that_is_not_a_database_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="bad.db"):
        Store(str(bad))


WRITER = """
import sys
from pynetstack.monitor.store import Store
s = Store(sys.argv[1])
i = 0
while True:
    s.append(1.7e9 + i, {'m': float(i), 'n{a="b"}': float(-i)})
    print(i, flush=True)  # printed only once the sample is committed
    i += 1
"""


def test_kill_9_mid_write_loses_nothing_that_was_committed(tmp_path):
    path = str(tmp_path / "k.db")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-c", WRITER, path], stdout=subprocess.PIPE, env=env, text=True)
    committed = -1
    try:
        for line in proc.stdout:
            committed = int(line)
            if committed >= 300:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert committed >= 300
    s = Store(path)
    points = s.range("m", 0, 2e9, resolution=0)
    assert len(points) >= committed + 1
    assert points[:committed + 1] == [(1.7e9 + i, float(i)) for i in range(committed + 1)]
    assert len(s.range('n{a="b"}', 0, 2e9, resolution=0)) == len(points)  # whole samples, never half
    s.close()


def test_increase_counts_a_series_born_inside_the_window_from_zero(store):
    store.append_many([(T0, {"old": 5.0}), (T0 + 1, {"old": 6.0}), (T0 + 2, {"old": 9.0, "new": 50.0}),
                       (T0 + 3, {"old": 9.0, "new": 60.0})])
    assert store.increase("old", T0, T0 + 3) == 4.0  # counted since the first sample only: 5 was before
    assert store.increase("new", T0, T0 + 3) == 60.0  # did not exist before T0 + 2: from zero
    assert store.increase("new", T0 + 2.5, T0 + 3) == 0.0  # born before this window
