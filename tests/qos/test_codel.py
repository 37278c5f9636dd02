"""CoDel's drop schedule (RFC 8289) and FQ-CoDel's flow scheduling (RFC 8290)."""

from __future__ import annotations

from math import sqrt

import pytest
from hypothesis import given, settings, strategies as st

from pynetstack.qos.codel import FqCodel

from .shaping import frame


def run_standing_queue(arrival_gap, service_gap, duration, target=0.005, interval=0.100):
    """One flow arriving every ``arrival_gap`` s, served every ``service_gap`` s: returns the
    drop times and the sojourn times of what left."""
    drops, sojourns = [], []
    fq = FqCodel(limit=100000, target=target, interval=interval,
                 on_drop=lambda packet, reason: drops.append((clock[0], reason)))
    clock = [0.0]
    data = frame()
    next_arrival = next_service = 0.0
    while clock[0] < duration:
        now = clock[0] = min(next_arrival, next_service)
        if now == next_arrival:
            fq.enqueue(data, now)
            next_arrival += arrival_gap
        if now == next_service:
            packet = fq.dequeue(now)
            if packet is not None:
                sojourns.append(now - packet[1])
            next_service += service_gap
    return drops, sojourns


def test_no_drops_while_sojourn_stays_below_target():
    drops, sojourns = run_standing_queue(0.002, 0.001, 5.0)
    assert drops == [] and max(sojourns) < 0.005


def test_drop_schedule_follows_the_control_law():
    # arrivals at twice the service rate: the sojourn time grows from the start
    drops, _ = run_standing_queue(0.001, 0.002, 1.5)
    times = [t for t, reason in drops]
    assert all(reason == "codel" for _, reason in drops)
    # the sojourn passes 5 ms at about t = 10 ms; the first drop comes one interval later
    assert times[0] == pytest.approx(0.010 + 0.100, abs=0.004)
    # then the n-th drop follows the one before by interval / sqrt(n) (to the service granularity)
    for n, (before, after) in enumerate(zip(times, times[1:]), start=1):
        assert after - before == pytest.approx(0.100 / sqrt(n), abs=0.0025), n


def test_dropping_stops_once_the_queue_drains():
    fq = FqCodel(limit=100000)
    drops = []
    fq.on_drop = lambda packet, reason: drops.append(reason)
    data = frame()
    for i in range(400):
        fq.enqueue(data, i * 0.001)
    now = 0.4
    while fq.dequeue(now) is not None:
        now += 0.0005
    assert drops and fq.packets == 0 and not fq.new_flows and not fq.old_flows
    count = len(drops)
    for _ in range(50):  # a light load afterwards: no more drops
        fq.enqueue(data, now)
        assert fq.dequeue(now + 0.0001) is not None
        now += 0.01
    assert len(drops) == count


def jain(values):
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values))


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(min_value=64, max_value=1514), min_size=2, max_size=8))
def test_drr_shares_bytes_within_a_quantum(sizes):
    # one flow per packet size, all backlogged: bytes served per flow differ by at most a
    # quantum plus one packet
    fq = FqCodel(limit=100000, target=60.0, interval=600.0)
    frames = [frame(size, sport=1000 + i) for i, size in enumerate(sizes)]
    served = {id(f): 0 for f in frames}
    for _ in range(40 * len(frames)):  # more than any flow can be served: none runs dry
        for f in frames:
            fq.enqueue(f, 0.0)
    for _ in range(40 * len(frames)):
        packet = fq.dequeue(0.0)
        served[id(packet[0])] += packet[2]
    if len(set(fq.flow_key(f) for f in frames)) == len(frames):  # no two flows in one bucket
        assert max(served.values()) - min(served.values()) <= fq.quantum + 1514


def test_eight_equal_flows_are_fair():
    fq = FqCodel(limit=100000, target=60.0, interval=600.0)
    frames = [frame(sport=2000 + i) for i in range(8)]
    served = {id(f): 0 for f in frames}
    for _ in range(200):
        for f in frames:
            fq.enqueue(f, 0.0)
    for _ in range(1000):
        packet = fq.dequeue(0.0)
        served[id(packet[0])] += packet[2]
    assert jain(list(served.values())) >= 0.99


def test_a_sparse_flow_goes_before_a_backlogged_one():
    fq = FqCodel(limit=100000)
    bulk, dns = frame(sport=80, dport=5555), frame(80, proto=17, sport=53, dport=3333)
    for _ in range(100):
        fq.enqueue(bulk, 0.0)
    fq.dequeue(0.0)
    fq.enqueue(dns, 0.001)
    assert fq.dequeue(0.001)[0] is dns


def test_overlimit_drops_from_the_fattest_flow():
    fq = FqCodel(limit=10)
    dropped = []
    fq.on_drop = lambda packet, reason: dropped.append((packet[0], reason))
    fat, thin = frame(sport=1), frame(sport=2)
    for _ in range(10):
        fq.enqueue(fat, 0.0)
    assert fq.enqueue(thin, 0.0)
    assert dropped == [(fat, "overlimit")] and fq.packets == 10


def test_ecn_capable_packets_are_marked_not_dropped():
    from pynetstack.wire.checksum import internet_checksum, verify
    data = bytearray(frame(tos=0x02))  # ECT(0)
    data[24:26] = internet_checksum(bytes(data[14:34])).to_bytes(2, "big")
    fq = FqCodel(limit=100000)
    drops = []
    fq.on_drop = lambda packet, reason: drops.append(reason)
    sent = []
    now = 0.0
    for i in range(1500):  # arrivals at twice the service rate, as in the drop schedule test
        fq.enqueue(bytes(data), i * 0.001)
        if i % 2:
            packet = fq.dequeue(i * 0.001)
            sent.append(packet[0])
            now = i * 0.001
    marked = [f for f in sent if f[15] & 3 == 3]
    assert not drops and fq.ecn_marks == len(marked) > 5
    assert all(verify(f[14:34]) for f in marked)
    assert FqCodel(ecn=False).ecn is False and now > 1.0
