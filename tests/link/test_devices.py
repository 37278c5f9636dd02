"""Memory link, fault injector and the recording device."""

from __future__ import annotations

import hashlib

import pytest

from pynetstack.link.faults import FaultInjector
from pynetstack.link.memory import memory_pair
from pynetstack.link.pcap import PcapDevice, read_pcap


def run_faults(seed, **settings):
    a, b = memory_pair()
    faulty = FaultInjector(a, seed=seed, **settings)
    now = 0.0
    for i in range(1000):
        faulty.send(i.to_bytes(4, "big") * 10, now)
        now += 0.001
        faulty.poll(now)
    faulty.poll(now + 100)
    return [bytes(f) for f in b.receive(now, batch=10**6)], faulty.stats


def test_same_seed_same_faults():
    settings = dict(loss=0.1, duplicate=0.05, reorder=0.1, corrupt=0.05, delay=0.01, jitter=0.005)
    first, _ = run_faults(3, **settings)
    again, _ = run_faults(3, **settings)
    other, _ = run_faults(4, **settings)
    assert first == again
    assert first != other


def test_loss_rate_is_near_setting():
    frames, stats = run_faults(1, loss=0.2)
    assert 150 < stats["lost"] < 250
    assert len(frames) == 1000 - stats["lost"]


def test_reorder_and_duplicate_happen():
    frames, stats = run_faults(2, reorder=0.2, duplicate=0.1, delay=0.002)
    ids = [int.from_bytes(f[:4], "big") for f in frames]
    assert len(ids) == 1000 + stats["duplicated"]
    assert ids != sorted(ids)
    assert sorted(set(ids)) == list(range(1000))


def test_corruption_flips_one_bit():
    frames, stats = run_faults(5, corrupt=0.1)
    damaged = [(f, i.to_bytes(4, "big") * 10) for i, f in enumerate(frames) if f != i.to_bytes(4, "big") * 10]
    assert len(damaged) == stats["corrupted"] > 0
    for frame, original in damaged:
        assert sum(bin(x ^ y).count("1") for x, y in zip(frame, original)) == 1


def test_rate_limit_serializes_frames():
    a, b = memory_pair()
    faulty = FaultInjector(a, rate_bps=8000)  # 1000 bytes per second
    for _ in range(10):
        faulty.send(bytes(100), 0.0)
    faulty.poll(0.55)
    assert len(b.receive(0.55, batch=100)) == 5
    assert faulty.next_deadline() == pytest.approx(0.6)


def test_bad_fault_settings_are_refused():
    a, _ = memory_pair()
    with pytest.raises(ValueError, match="loss"):
        FaultInjector(a, loss=1.5)


def test_pcap_device_records_both_directions(tmp_path):
    a, b = memory_pair()
    path = tmp_path / "d.pcap"
    recorded = PcapDevice(a, str(path))
    recorded.send(b"out" * 20, 0.0)
    b.send(b"in!" * 20, 0.0)
    assert recorded.receive(0.0) == [b"in!" * 20]
    recorded.close()
    assert sorted(hashlib.sha1(f).hexdigest() for _, _, f in read_pcap(str(path))) == sorted(
        hashlib.sha1(f).hexdigest() for f in (b"out" * 20, b"in!" * 20))


def test_wrappers_pass_frames_given_in_parts(tmp_path):
    a, b = memory_pair()
    path = tmp_path / "parts.pcap"
    recorded = PcapDevice(a, str(path))
    recorded.send_parts((b"head" * 5, b"body" * 20), 0.0)
    faulty = FaultInjector(b, seed=1)
    faulty.send_parts((b"back" * 5, b"again" * 20), 0.0)
    assert b.receive(0.0) == [b"head" * 5 + b"body" * 20]
    assert a.receive(0.0) == [b"back" * 5 + b"again" * 20]
    recorded.close()
    assert [f for _, _, f in read_pcap(str(path))] == [b"head" * 5 + b"body" * 20]
    assert faulty.gso_max == 0
