"""ECMP: the flow hash, hash-threshold spread and disruption (RFC 2992), resilient groups."""

import random
from fractions import Fraction

import pytest

from pynetstack.net.route import NextHop, Route, RouteError, RoutingTable
from pynetstack.net.route_ecmp import HASH_SPACE, ResilientGroup, flow_hash, upper_bounds
from pynetstack.net.route_policy import RoutingPolicy


class Dev:
    def __init__(self, name):
        self.name = name
        self.up = True


def flows(count, seed=1):
    rng = random.Random(seed)
    return [(rng.getrandbits(32), rng.getrandbits(32), 6, rng.getrandbits(16), rng.getrandbits(16))
            for _ in range(count)]


def hops(n, weights=None):
    devs = [Dev(f"eth{i}") for i in range(n)]
    return devs, [NextHop(d, 0x0A000001 + i, weight=(weights[i] if weights else 1)) for i, d in enumerate(devs)]


def test_hash_is_31_bits_deterministic_and_seeded():
    values = [flow_hash(7, 1, *f) for f in flows(2000)]
    assert all(0 <= v < HASH_SPACE for v in values)
    assert values == [flow_hash(7, 1, *f) for f in flows(2000)]
    other_seed = [flow_hash(8, 1, *f) for f in flows(2000)]
    assert sum(a == b for a, b in zip(values, other_seed)) < 5  # the seed changes the split
    assert max(values) > HASH_SPACE * 0.99 and min(values) < HASH_SPACE * 0.01


def test_hash_policy_l3_ignores_ports_and_l4_uses_them():
    src, dst = 0x0A000001, 0xC0000201
    l3 = {flow_hash(1, 0, src, dst, 6, sport, 80) for sport in range(1000, 1100)}
    l4 = {flow_hash(1, 1, src, dst, 6, sport, 80) for sport in range(1000, 1100)}
    assert len(l3) == 1 and len(l4) == 100
    assert flow_hash(1, 1, src, dst, 6, 1, 2) != flow_hash(1, 1, src, dst, 17, 1, 2)


@pytest.mark.parametrize("weights", [[1, 1, 1], [1, 2, 3, 4], [10, 1]])
def test_spread_follows_the_weights(weights):
    devs, nexthops = hops(len(weights), weights)
    route = Route(0, 0, nexthops=nexthops)
    policy = RoutingPolicy(hash_seed=42, hash_policy=1)
    counts = dict.fromkeys(devs, 0)
    sample = flows(10000)
    for f in sample:
        counts[route.select(policy.flow_hash(*f)).interface] += 1
    total = sum(weights)
    for dev, weight in zip(devs, weights):
        share = counts[dev] / len(sample)
        assert abs(share - weight / total) < 0.02, (dev.name, share, weight / total)


def test_upper_bounds_cover_the_hash_space_in_proportion():
    bounds = upper_bounds([1, 3])
    assert bounds == [HASH_SPACE // 4 - 1, HASH_SPACE - 1]
    assert upper_bounds([1, 1, 1])[-1] == HASH_SPACE - 1


def disrupted_fraction(n, removed):
    """RFC 2992 section 4, for hash-threshold with n equal regions, region ``removed`` (0-based)
    deleted: a flow stays only where its old region and its new region belong to the same next
    hop. Region i < removed keeps [i/(n-1), (i+1)/n); region i > removed keeps [i/n, i/(n-1))."""
    kept = sum(Fraction(n - 1 - i, n * (n - 1)) for i in range(removed))
    kept += sum(Fraction(i, n * (n - 1)) for i in range(removed + 1, n))
    return 1 - kept


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8])
def test_rfc2992_disruption_when_a_next_hop_goes(n):
    for removed in range(n):
        fraction = disrupted_fraction(n, removed)
        # the removed hop's own 1/n, plus the boundary shifts, and RFC 2992's bounds
        assert Fraction(1, n) <= fraction <= Fraction(1, 2)
        assert fraction >= Fraction(1, 4)
        devs, nexthops = hops(n)
        table = RoutingTable()
        route = table.add(Route(0, 0, nexthops=nexthops))
        policy = RoutingPolicy(hash_seed=3)
        hashes = [policy.flow_hash(*f[:2]) for f in flows(10000, seed=removed)]
        before = [route.select(h).interface for h in hashes]
        table.set_interface_state(devs[removed], False)
        after = [route.select(h).interface for h in hashes]
        moved = {i for i, (a, b) in enumerate(zip(before, after)) if a is not b}
        # exactly the flows whose hash lies where the old and new region owners differ
        survivors = [d for d in devs if d is not devs[removed]]
        predicted = {i for i, h in enumerate(hashes)
                     if devs[h * n // HASH_SPACE] is not survivors[h * (n - 1) // HASH_SPACE]}
        assert moved == predicted
        assert abs(len(moved) / len(hashes) - float(fraction)) < 0.02
        assert all(i in moved for i, d in enumerate(before) if d is devs[removed])


def test_disruption_extremes():
    assert disrupted_fraction(4, 3) == Fraction(1, 2)  # the last region: every boundary shifts
    assert disrupted_fraction(3, 1) == Fraction(1, 3)


# ---------------------------------------------------------------------- resilient groups
def owners(group, hashes, now):
    return [group.select(h, now) for h in hashes]


def test_resilient_buckets_follow_weights():
    _, nexthops = hops(2, [1, 3])
    group = ResilientGroup(1, nexthops, buckets=64)
    assert group.bucket_counts() == {nexthops[0]: 16, nexthops[1]: 48}
    with pytest.raises(RouteError, match="buckets"):
        ResilientGroup(2, nexthops, buckets=0)
    with pytest.raises(RouteError, match="at least one"):
        ResilientGroup(3, [])


def test_resilient_removal_moves_only_the_removed_hops_flows():
    _, nexthops = hops(4)
    group = ResilientGroup(1, nexthops, buckets=128, idle_timer=60)
    hashes = [flow_hash(5, 1, *f) for f in flows(5000)]
    before = owners(group, hashes, now=1.0)
    group.remove(nexthops[2], now=2.0)
    after = owners(group, hashes, now=2.0)
    for b, a in zip(before, after):
        if b is nexthops[2]:
            assert a is not nexthops[2]
        else:
            assert a is b  # no other flow moved
    counts = group.bucket_counts()
    assert sorted(counts.values()) == [42, 43, 43] and nexthops[2] not in counts
    with pytest.raises(RouteError, match="not in"):
        group.remove(nexthops[2])


def test_resilient_device_down_is_a_removal():
    devs, nexthops = hops(3)
    group = ResilientGroup(1, nexthops, buckets=30)
    table = RoutingTable()
    route = table.add(Route(0, 0, nhgroup=group))
    hashes = list(range(0, 3000, 7))
    before = [route.select(h, 1.0) for h in hashes]
    table.set_interface_state(devs[0], False)
    after = [route.select(h, 1.0) for h in hashes]
    assert all(new is old for old, new in zip(before, after) if old is not nexthops[0])
    assert all(new is not nexthops[0] for new in after)
    assert nexthops[0] not in group.bucket_counts()
    assert "nhid 1" in repr(route)


def test_resilient_addition_takes_only_idle_buckets():
    _, nexthops = hops(3)
    first_two = nexthops[:2]
    group = ResilientGroup(1, list(first_two), buckets=16, idle_timer=10)
    busy = list(range(0, 14))  # flows hashing to buckets 0..13 stay active; 14 and 15 never used
    owners(group, busy, now=0.0)
    before = [group.owner(b) for b in range(16)]
    group.add(nexthops[2], now=1.0)
    assert nexthops[2] not in group.bucket_counts()  # adding moves nothing by itself
    group.poll(now=1.0)  # the idle buckets may go to the new hop, never the busy ones
    moved = [b for b in range(16) if group.owner(b) is not before[b]]
    assert moved == [14, 15]
    assert all(group.owner(b) is nexthops[2] for b in moved)
    assert group.bucket_counts()[nexthops[2]] == 2  # it wants 5
    owners(group, busy, now=5.0)  # still busy
    group.poll(now=12.0)
    assert group.bucket_counts()[nexthops[2]] == 2
    group.poll(now=16.0)  # idle for 11 s now
    assert sorted(group.bucket_counts().values()) == [5, 5, 6]


def test_resilient_unbalanced_timer_forces_migration():
    _, nexthops = hops(2)
    group = ResilientGroup(1, [nexthops[0]], buckets=8, idle_timer=100, unbalanced_timer=5)
    owners(group, range(8), now=0.0)
    group.add(nexthops[1], now=1.0)
    group.poll(now=3.0)
    assert nexthops[1] not in group.bucket_counts()
    group.poll(now=6.5)
    assert group.bucket_counts() == {nexthops[0]: 4, nexthops[1]: 4}


def test_group_membership_change_reaches_the_table_on_invalidate():
    devs, nexthops = hops(3)
    group = ResilientGroup(1, nexthops[:2], buckets=8, idle_timer=0)
    table = RoutingTable()
    route = table.add(Route(0, 0, nhgroup=group))
    group.add(nexthops[2], now=1.0)
    table.invalidate()
    assert len(route.nexthops) == 3
    group.poll(now=2.0)
    assert nexthops[2] in group.bucket_counts()
    table.set_interface_state(devs[2], False)  # the table now follows the new member's device
    assert nexthops[2] not in group.bucket_counts()
    assert all(route.select(h, 3.0) is not nexthops[2] for h in range(8))


def test_resilient_addition_takes_only_from_over_served_hops():
    _, nexthops = hops(3)
    a, b, c = nexthops
    group = ResilientGroup(1, [a, b], buckets=3, idle_timer=0)
    assert group.bucket_counts() == {a: 2, b: 1}
    b_bucket = next(i for i in range(3) if group.owner(i) is b)
    group.add(c, now=1.0)
    group.poll(now=5.0)  # every bucket is idle; b is at its share (1 of 3) and keeps its bucket
    assert group.bucket_counts() == {a: 1, b: 1, c: 1}
    assert group.owner(b_bucket) is b
