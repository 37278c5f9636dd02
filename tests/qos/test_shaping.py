"""The class tree on the virtual clock: rates, ceilings, borrowing, weights, the voice policer."""

from __future__ import annotations

import pytest

from pynetstack.qos.bucket import TokenBucket, default_burst, parse_rate, parse_size, RateError
from pynetstack.qos.tree import ClassSpec, build_tree, default_tree

from .shaping import frame, make_qdisc, saturate

MBIT = 1e6 / 8
NO_CODEL = dict(target=60.0, interval=600.0)  # rate tests: sojourn times are not the point


def sent_bytes(wire, klass_frames, since=0.0):
    return sum(len(data) for t, data in wire.sent if t >= since and data in klass_frames)


def test_token_bucket_long_run_is_exact():
    bucket = TokenBucket(1000.0, 3000, now=0.0)
    sent = 0
    now = 0.0
    for _ in range(20000):
        while bucket.ready(now):
            bucket.charge(700)
            sent += 700
        now = bucket.ready_at()
    # bytes sent by time T: rate * T + burst, to within one packet
    assert abs(sent - (1000.0 * now + 3000)) <= 700
    assert abs(now - 20000 * 700 / 1000.0) < 10


def test_policer_conformance():
    bucket = TokenBucket(1000.0, 1500, now=0.0)
    assert bucket.conform(1500, 0.0)
    assert not bucket.conform(100, 0.0)
    assert not bucket.conform(200, 0.1)  # 100 tokens by now
    assert bucket.conform(100, 0.1)


@pytest.mark.parametrize("text,expected", [("50mbit", 50e6 / 8), ("1gbit", 1e9 / 8), ("100kbps", 100e3),
                                           (8000, 1000.0)])
def test_parse_rate(text, expected):
    assert parse_rate(text) == pytest.approx(expected)


@pytest.mark.parametrize("bad", ["50 furlongs", "-1mbit", "0", True, "mbit"])
def test_parse_rate_refuses(bad):
    with pytest.raises(RateError):
        parse_rate(bad)


def test_parse_size():
    assert parse_size("15k") == 15360
    assert parse_size(1514) == 1514
    with pytest.raises(RateError):
        parse_size("lots")
    assert default_burst(10 * MBIT) == 5000 + 1514


def test_single_class_rate_within_one_percent():
    tree = build_tree(10 * MBIT, [ClassSpec("bulk", 10 * MBIT, **NO_CODEL)])
    qdisc, wire = make_qdisc(tree)
    data = frame()
    end = saturate(qdisc, [("bulk", data)], 20.0)
    rate = sum(len(d) for t, d in wire.sent if t >= 1.0) / (end - 1.0)
    assert rate == pytest.approx(10 * MBIT, rel=0.01)


def test_ceil_caps_a_class_and_borrowing_fills_the_root():
    tree = build_tree(10 * MBIT, [ClassSpec("a", 2 * MBIT, ceil=5 * MBIT, **NO_CODEL),
                                  ClassSpec("b", 2 * MBIT, ceil=10 * MBIT, **NO_CODEL)])
    qdisc, wire = make_qdisc(tree)
    fa, fb = frame(sport=1), frame(sport=2)
    end = saturate(qdisc, [("a", fa)], 10.0)
    assert sum(len(d) for t, d in wire.sent if t >= 1.0) / (end - 1.0) == pytest.approx(5 * MBIT, rel=0.02)
    assert tree.leaves["a"].borrows > 0 and tree.root.lends > 0
    wire.sent.clear()
    end2 = saturate(qdisc, [("b", fb)], 10.0, start=end)
    assert sum(len(d) for t, d in wire.sent if t >= end + 1.0) / (end2 - end - 1.0) == pytest.approx(
        10 * MBIT, rel=0.02)


def test_spare_bandwidth_is_shared_by_rate():
    # both saturated: each gets its rate, and the spare 6 Mbit/s in the ratio of their quanta (3:1)
    tree = build_tree(10 * MBIT, [ClassSpec("a", 3 * MBIT, ceil=10 * MBIT, **NO_CODEL),
                                  ClassSpec("b", 1 * MBIT, ceil=10 * MBIT, **NO_CODEL)])
    qdisc, wire = make_qdisc(tree)
    fa, fb = frame(sport=1), frame(sport=2)
    end = saturate(qdisc, [("a", fa), ("b", fb)], 20.0)
    got_a = sum(len(d) for t, d in wire.sent if t >= 1.0 and d is fa) / (end - 1.0)
    got_b = sum(len(d) for t, d in wire.sent if t >= 1.0 and d is fb) / (end - 1.0)
    assert got_a + got_b == pytest.approx(10 * MBIT, rel=0.02)
    assert got_a == pytest.approx(7.5 * MBIT, rel=0.05)
    assert got_b == pytest.approx(2.5 * MBIT, rel=0.05)


def test_voice_is_strict_but_policed():
    tree = default_tree(10 * MBIT)
    qdisc, wire = make_qdisc(tree)
    voice, bulk = frame(200, sport=20000, dport=20000), frame(sport=7, dport=9)
    now = 0.0
    voice_delays = []
    # bulk keeps the link full; voice offers 3 Mbit/s against a 1 Mbit/s policer
    while now < 10.0:
        queue = tree.leaves["bulk"].queue
        while queue.packets < 20:
            qdisc.enqueue(bulk, now, klass="bulk")
        qdisc.enqueue(voice, now, klass="voice")
        count = len(wire.sent)
        qdisc.poll(now)
        voice_delays += [0.0 for t, d in wire.sent[count:] if d is voice]
        now += 200 / (3 * MBIT)
    voice_sent = sum(len(d) for t, d in wire.sent if d is voice and t >= 1.0) / 9.0
    assert voice_sent == pytest.approx(1 * MBIT, rel=0.05)
    assert tree.leaves["voice"].drops["policed"] > 0
    total = sum(len(d) for t, d in wire.sent if t >= 1.0) / 9.0
    assert total == pytest.approx(10 * MBIT, rel=0.03)
    stats = qdisc.stats()
    assert stats["sla"]["voice"]["delay_p99_ms"] < 2.0  # strict priority: voice never waits for bulk


def test_queue_is_bounded_and_drops_are_counted_by_reason():
    tree = build_tree(1 * MBIT, [ClassSpec("bulk", 1 * MBIT, limit=50, **NO_CODEL)])
    qdisc, wire = make_qdisc(tree)
    for i in range(200):
        qdisc.enqueue(frame(sport=i % 4), 0.0, klass="bulk")
    assert tree.packets == tree.leaves["bulk"].queue.packets == 50
    assert tree.leaves["bulk"].drops["overlimit"] == 200 - 50 - len(wire.sent)


def test_a_deeper_tree_borrows_level_by_level():
    # root 10 -> A (6) -> a1 (3), a2 (3); root -> b (4); every ceil is the link
    from pynetstack.qos.codel import FqCodel
    from pynetstack.qos.htb import HtbClass, HtbTree

    def leaf(name, rate):
        return HtbClass(name, rate * MBIT, 10 * MBIT, 6000, 6000, quantum=int(1514 * rate),
                        queue=FqCodel(target=60.0, interval=600.0))
    root = HtbClass("root", 10 * MBIT, 10 * MBIT, 6000)
    group = root.add(HtbClass("A", 6 * MBIT, 10 * MBIT, 6000))
    group.add(leaf("a1", 3))
    group.add(leaf("a2", 3))
    root.add(leaf("b", 4))
    tree = HtbTree(root)
    qdisc, wire = make_qdisc(tree)
    f1, fb = frame(sport=1), frame(sport=3)
    end = saturate(qdisc, [("a1", f1)], 10.0)  # alone: borrows from A, then from the root
    assert sum(len(d) for t, d in wire.sent if t >= 1.0) / (end - 1.0) == pytest.approx(10 * MBIT, rel=0.02)
    assert tree.leaves["a1"].borrows and group.lends and root.lends
    wire.sent.clear()
    end2 = saturate(qdisc, [("a1", f1), ("b", fb)], 10.0, start=end)  # with b busy: A's 6 and b's 4
    span = end2 - end - 1.0
    got_a1 = sum(len(d) for t, d in wire.sent if t >= end + 1.0 and d is f1) / span
    got_b = sum(len(d) for t, d in wire.sent if t >= end + 1.0 and d is fb) / span
    assert got_a1 == pytest.approx(6 * MBIT, rel=0.03) and got_b == pytest.approx(4 * MBIT, rel=0.03)
    assert [c.classid for c in root.walk()] == ["1:1", "1:2", "1:3", "1:4", "1:5"]
