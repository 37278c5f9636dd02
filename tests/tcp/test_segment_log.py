"""The wire-level regression guard of conftest.py can fail: it covers the state and simulation
tests, and a one-bit change of one segment changes the digest."""

import json

from .conftest import FIXTURE, SegmentLog


def test_fixture_covers_the_state_and_simulation_tests():
    table = json.loads(FIXTURE.read_text())
    modules = {node.split("::")[0].rsplit("/", 1)[-1] for node in table}
    assert {"test_states.py", "test_simulation.py", "test_stack_sim.py"} <= modules
    assert len(table) >= 150 and all(count > 0 for count, _ in table.values())


def test_one_changed_bit_changes_the_digest():
    segments = [(1, 2, b"\x00\x50\x9c\x40" + bytes(16), 100.0), (2, 1, b"\x9c\x40\x00\x50" + bytes(16), 100.5)]
    logs = [SegmentLog(), SegmentLog(), SegmentLog()]
    for i, (src, dst, data, now) in enumerate(segments):
        logs[0].add(b">", src, dst, data, now)
        logs[1].add(b">", src, dst, data if i else data[:-1] + b"\x01", now)
        logs[2].add(b">", src, dst, data, now + (1e-6 if i else 0))
    assert len({log.digest() for log in logs}) == 3
