"""Maglev: balance, minimal disruption, weights, fallback, the same table on two balancers."""

from __future__ import annotations

import time
from collections import Counter

from pynetstack.lb.maglev import MaglevHashing, build_table, is_prime, mix64
from pynetstack.lb.schedulers import make_scheduler


class Dest:
    def __init__(self, i, weight=1):
        self.addr, self.port, self.weight, self.overloaded, self.name = 0x0A000100 + i, 80, weight, False, f"s{i}"


def test_balance_within_one_percent_when_m_is_over_100_n():
    dests = [Dest(i) for i in range(20)]
    counts = Counter(d.name for d in build_table(dests, 65537))
    ideal = 65537 / 20
    assert all(abs(c - ideal) / ideal < 0.01 for c in counts.values()), counts


def test_weights_share_the_table():
    dests = [Dest(0, 1), Dest(1, 2), Dest(2, 3)]
    counts = Counter(d.name for d in build_table(dests, 65537))
    for d in dests:
        assert abs(counts[d.name] / 65537 - d.weight / 6) < 0.01


def test_removing_one_of_n_moves_about_one_nth_of_flows():
    n = 10
    dests = [Dest(i) for i in range(n)]
    before = build_table(dests, 65537)
    after = build_table(dests[:4] + dests[5:], 65537)
    flows = [mix64(i * 7919) % 65537 for i in range(10000)]
    moved = sum(1 for f in flows if before[f] is not after[f])
    lost = sum(1 for f in flows if before[f] is dests[4])  # these must move
    assert moved >= lost
    assert moved < 1.5 * 10000 / n, moved  # close to 1/N: only a little churn beyond the lost server


def test_two_balancers_pick_the_same_server_for_the_same_flow():
    one, two = MaglevHashing(), MaglevHashing()
    d1, d2 = [Dest(i) for i in range(5)], [Dest(i) for i in range(5)]
    one.update(d1)
    two.update(d2)
    for src in range(0xC0000200, 0xC0000200 + 500):
        assert one.pick(d1, src, 0, 0, 80).name == two.pick(d2, src, 0, 0, 80).name


def test_fallback_past_an_unavailable_server():
    dests = [Dest(i) for i in range(3)]
    plain, fb = make_scheduler("mh"), make_scheduler("mh", ["mh-fallback"])
    for s in (plain, fb):
        s.update(dests)
    src = 0xC0000201
    first = plain.pick(dests, src, 0, 0, 80)
    first.overloaded = True
    assert plain.pick(dests, src, 0, 0, 80) is None
    other = fb.pick(dests, src, 0, 0, 80)
    assert other is not None and other is not first
    first.overloaded = False
    assert fb.pick(dests, src, 0, 0, 80) is first


def test_table_size_must_be_prime_and_build_time():
    assert is_prime(65537) and not is_prime(65536)
    try:
        MaglevHashing(size=1000)
    except ValueError as exc:
        assert "prime" in str(exc)
    else:
        raise AssertionError("a table size that is not prime was taken")
    start = time.perf_counter()
    build_table([Dest(i) for i in range(5)], 65537)
    assert time.perf_counter() - start < 5.0  # generous: this is a test, not the benchmark
