"""suricata-verify tests (data in tests/ids/data/verify) and the pynetstack ids command."""

from __future__ import annotations

import json
import os

import pytest

from pynetstack.cli import main
from pynetstack.ids.eve import alert_event
from pynetstack.ids.replay import alerts_of
from pynetstack.ids.rules import load_rules

DATA = os.path.join(os.path.dirname(__file__), "data")
VERIFY = os.path.join(DATA, "verify")
TESTS = sorted(os.listdir(VERIFY))


def _lookup(event, dotted):
    for part in dotted.split("."):
        event = event.get(part) if isinstance(event, dict) else None
    return event


@pytest.mark.parametrize("name", TESTS)
def test_suricata_verify(name):
    base = os.path.join(VERIFY, name)
    with open(os.path.join(base, "test.rules")) as handle:
        ruleset = load_rules(handle.read(), "test.rules", strict=True)
    assert ruleset.loaded and not ruleset.skipped
    with open(os.path.join(base, "expected.json")) as handle:
        expected = json.load(handle)
    checks = expected["checks"]
    events = [alert_event(a) for a in alerts_of(os.path.join(base, "input.pcap"), ruleset, **expected.get("options", {}))]
    for check in checks:
        got = sum(1 for e in events if all(_lookup(e, k) == v for k, v in check["match"].items()))
        assert got == check["count"], check


def test_ids_command_writes_eve_json_and_fast_log(tmp_path, capsys):
    base = os.path.join(VERIFY, "detect-icmp-id-01")
    assert main(["ids", "-r", os.path.join(base, "input.pcap"), "-S", os.path.join(base, "test.rules"),
                 "-l", str(tmp_path)]) == 0
    lines = (tmp_path / "eve.json").read_text().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["event_type"] == "alert" and event["proto"] == "ICMP" and event["flow_id"] > 0
    assert set(event["alert"]) >= {"action", "gid", "signature_id", "rev", "signature", "category", "severity"}
    assert event["alert"]["signature_id"] == 1 and event["alert"]["action"] == "allowed"
    assert event["timestamp"].endswith("+0000") and "T" in event["timestamp"]
    fast = (tmp_path / "fast.log").read_text()
    assert "[**] [1:1:0]" in fast and "{ICMP}" in fast
    assert json.loads(capsys.readouterr().out)["alerts_written"] == 1


def test_ids_check_prints_statistics_and_names_bad_rules(tmp_path, capsys):
    rules = tmp_path / "r.rules"
    rules.write_text('alert tcp any any -> any any (sid:1;)\nalert tls any any -> any any (sid:2;)\n'
                     'alert tcp any any -> any any (sid:x;)\n')
    assert main(["ids", "--check", "-S", str(rules)]) == 1
    err = capsys.readouterr().err
    assert "1 rules successfully loaded, 1 rules failed, 1 rules skipped" in err
    assert "protocol tls" in err and f"{rules}:3: sid: 'x' is not a number" in err
    assert main(["ids", "--strict", "--check", "-S", str(rules)]) == 1
    assert f"{rules}:3:" in capsys.readouterr().err
    out = tmp_path / "out"
    out.mkdir()
    assert main(["ids", "-r", str(tmp_path / "missing.pcap"), "-S", str(rules), "-l", str(out)]) == 1
    assert "missing.pcap" in capsys.readouterr().err
    assert not list(out.iterdir())   # nothing written for a capture that is not there
    (tmp_path / "notes.txt").write_text("not a capture, long enough to be read as one\n")
    assert main(["ids", "-r", str(tmp_path / "notes.txt"), "-S", str(rules), "-l", str(out)]) == 1
    assert "notes.txt: not a pcap or pcapng file" in capsys.readouterr().err
    assert not list(out.iterdir())


def test_ids_config_section_is_checked():
    from pynetstack.config import ConfigError, validate
    base = {"interface": [{"tap": "t0", "address": "10.0.0.2/24"}]}
    with pytest.raises(ValueError, match=r"\[ids\]: unknown key 'rulez'"):
        validate(dict(base, ids={"rulez": []}))
    with pytest.raises(ValueError, match="inline must be bool"):
        validate(dict(base, ids={"inline": "yes"}))
    validate(dict(base, ids={"rules": ["a.rules"], "inline": True, "scan_window": 5}))
    assert issubclass(ConfigError, ValueError)
