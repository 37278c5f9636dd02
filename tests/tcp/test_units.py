"""Sequence arithmetic, congestion controllers, RTO rules, SACK bookkeeping."""

from hypothesis import given, strategies as st

from pynetstack.transport.tcp import congestion
from pynetstack.transport.tcp.sack import ReorderQueue, Scoreboard
from pynetstack.transport.tcp.seq import (MASK, seq_add, seq_diff, seq_ge, seq_gt, seq_in_window,
                                          seq_le, seq_lt, unwrap)

from .rig import Rig


def test_seq_compare_across_wrap():
    assert seq_lt(0xFFFFFFF0, 0x10) and seq_gt(0x10, 0xFFFFFFF0)
    assert seq_le(5, 5) and seq_ge(5, 5)
    assert seq_diff(0x10, 0xFFFFFFF0) == 0x20
    assert seq_add(0xFFFFFFFF, 2) == 1
    assert seq_in_window(3, 0xFFFFFFFE, 10) and not seq_in_window(9, 0xFFFFFFFE, 10)


@given(st.integers(0, 1 << 40), st.integers(-(1 << 31) + 1, (1 << 31) - 1))
def test_unwrap_recovers_nearby_values(reference, delta):
    value = reference + delta
    if value >= 0:
        assert unwrap(value & MASK, reference) == value


@given(st.integers(0, MASK), st.integers(-(1 << 31), (1 << 31) - 1))
def test_seq_comparisons_against_integer_distance(b, distance):
    """Brute-force reference: a is ``distance`` after b on the circle; every comparison must
    say what the signed integer distance says."""
    a = (b + distance) & MASK
    assert seq_diff(a, b) == distance
    assert (seq_lt(a, b), seq_le(a, b), seq_gt(a, b), seq_ge(a, b)) == (
        distance < 0, distance <= 0, distance > 0, distance >= 0)


def test_initial_window_rfc6928():
    assert congestion.initial_window(1460) == 14600
    assert congestion.initial_window(536) == 5360
    assert congestion.initial_window(9000) == 18000


def test_reno_slow_start_then_avoidance():
    cc = congestion.Reno(1000)
    cc.ssthresh = 20_000
    cc.on_ack(5000, 0.0, 0.1)
    assert cc.cwnd == 15_000  # ABC counts a stretch ACK's bytes...
    cc.cwnd = 10_000
    cc.on_ack(12_000, 0.0, 0.1)
    assert cc.cwnd == 20_000  # ...up to ssthresh
    cc.cwnd, cc.ssthresh = 10_000, 100_000
    cc.on_ack(40_000, 0.0, 0.1)
    assert cc.cwnd == 10_000 + congestion.SS_ACK_LIMIT * 1000  # and at most L per ACK
    cc.cwnd, cc.ssthresh = 12_000, 20_000
    while cc.cwnd < 20_000:
        cc.on_ack(2000, 0.0, 0.1)
    assert cc.cwnd == 20_000
    for _ in range(10):
        cc.on_ack(2000, 0.0, 0.1)  # one cwnd of ACKed bytes -> +1 MSS
    assert cc.cwnd == 21_000
    cc.on_congestion(0.0, 21_000)
    assert cc.ssthresh == 10_500
    cc.on_timeout(0.0, 8000)
    assert cc.cwnd == 1000 and cc.ssthresh == 4000


def test_cubic_reduces_by_beta_and_regrows_to_wmax():
    cc = congestion.Cubic(1000)
    cc.ssthresh = 10_000
    cc.cwnd = 100_000
    cc.on_congestion(0.0, 100_000)
    assert cc.ssthresh == 70_000 and abs(cc.w_max - 100) < 1e-9
    cc.cwnd = cc.ssthresh
    t = 0.0
    samples = []
    while t < 20.0:
        cc.on_ack(cc.cwnd // 10, t, 0.1)  # ten ACKs per RTT
        t += 0.01
        samples.append((t, cc.cwnd))
    k = ((100 - 70) / 0.4) ** (1 / 3)  # RFC 9438 eq. 2, in seconds
    near_k = [w for (tt, w) in samples if abs(tt - k) < 0.3]
    assert all(95_000 <= w <= 101_500 for w in near_k), near_k[:5]
    assert samples[-1][1] > 150_000  # convex growth beyond the plateau


def test_cubic_fast_convergence():
    cc = congestion.Cubic(1000)
    cc.cwnd = 100_000
    cc.on_congestion(0.0, 0)
    cc.cwnd = 80_000
    cc.on_congestion(1.0, 0)
    assert abs(cc.w_max - 80 * 1.7 / 2) < 1e-9


def test_rto_bounds_and_karn():
    rig = Rig(rto_min=0.2, rto_max=3.0)
    conn, iss = rig.passive_open()
    for r in (0.5, 0.5, 0.5):
        conn._rtt_sample(r)
    assert 0.5 < conn.rto < 1.5
    conn._rtt_sample(100.0)
    assert conn.rto == 3.0  # upper bound
    conn.backoff = 10
    assert conn._current_rto() == 3.0
    # Karn: a retransmitted segment is never timed
    rig2 = Rig(timestamps=False)
    c2, iss2 = rig2.passive_open()
    c2.send(b"k" * 10, rig2.now)
    assert c2.rtt_seq is not None
    rig2.advance(1.0)
    assert c2.rtt_seq is None


def test_reorder_queue_merges_and_orders_sack_blocks():
    q = ReorderQueue()
    q.add(100, b"a" * 10)
    q.add(200, b"b" * 10)
    q.add(105, b"c" * 10)  # overlaps the first run: merged, old bytes win
    assert [(s, e) for s, e, _ in q.runs] == [(100, 115), (200, 210)]
    assert bytes(q.runs[0][2]) == b"a" * 10 + b"c" * 5
    assert q.sack_blocks(3) == [(100, 115), (200, 210)]
    q.add(115, b"d" * 85)  # bridges both runs
    assert [(s, e) for s, e, _ in q.runs] == [(100, 210)]
    assert q.pop_ready(90) is None
    assert bytes(q.pop_ready(100)) == b"a" * 10 + b"c" * 5 + b"d" * 85 + b"b" * 10


def test_scoreboard_pipe_and_loss():
    sb = Scoreboard()
    una, high = 0, 10_000
    sb.update(una, high, [(1000, 3000), (4000, 10_000)])
    assert sb.holes(una) == [(0, 1000), (3000, 4000)]
    assert sb.is_lost(0, 1000) and sb.is_lost(3000, 1000)
    assert sb.pipe(una, high, 0, 1000) == 0
    assert sb.next_retransmit(una, 0, 1000, True) == (0, 1000)
    assert sb.next_retransmit(una, 1000, 1000, True) == (3000, 1000)
    assert sb.pipe(una, high, 1000, 1000) == 1000
    sb.update(3000, high, [])
    assert sb.holes(3000) == [(3000, 4000)] and sb.sacked == 6000
