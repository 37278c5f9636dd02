"""pynetstack ids -r as Suricata -r: the log directory must exist, outputs are appended to,
a truncated or damaged capture is reported with the file and the packets read before it."""

from __future__ import annotations

import json
import os
import struct

import pytest

from pynetstack.cli import main
from pynetstack.link.pcap import TruncatedCapture, read_pcap

BASE = os.path.join(os.path.dirname(__file__), "data", "verify", "detect-icmp-id-01")
PCAP = os.path.join(BASE, "input.pcap")  # one ICMP packet that rule sid 1 alerts on
RULES = os.path.join(BASE, "test.rules")


def ids(pcap, log_dir):
    return main(["ids", "-r", str(pcap), "-S", RULES, "-l", str(log_dir)])


def test_a_missing_log_directory_is_refused_not_created(tmp_path, capsys):
    out = tmp_path / "no" / "such"
    assert ids(PCAP, out) == 1
    err = capsys.readouterr().err
    assert f'the log directory "{out}" given with -l does not exist' in err
    assert err.count("\n") == 1  # one clear line, before the rules are loaded
    assert not (tmp_path / "no").exists()
    (tmp_path / "file").write_text("")
    assert ids(PCAP, tmp_path / "file") == 1
    assert "is not a directory" in capsys.readouterr().err


def test_outputs_are_appended_to_as_suricata_does(tmp_path, capsys):
    (tmp_path / "eve.json").write_text('{"event_type": "earlier"}\n')
    (tmp_path / "fast.log").write_text("earlier\n")
    assert ids(PCAP, tmp_path) == 0
    assert ids(PCAP, tmp_path) == 0
    events = [json.loads(line) for line in (tmp_path / "eve.json").read_text().splitlines()]
    assert [e["event_type"] for e in events] == ["earlier", "alert", "alert"]
    fast = (tmp_path / "fast.log").read_text().splitlines()
    assert fast[0] == "earlier" and len(fast) == 3 and all("[1:1:" in line for line in fast[1:])


def _with_a_damaged_second_packet(tmp_path, cut):
    """The capture with its one packet record again, cut after ``cut`` bytes."""
    data = open(PCAP, "rb").read()
    damaged = tmp_path / "damaged.pcap"
    damaged.write_bytes(data + data[24:24 + cut])
    return damaged


@pytest.mark.parametrize("cut, detail", [(30, "packet 2 has 14 of 42 bytes"),
                                         (7, "packet 2's header has 7 of 16 bytes")])
def test_a_truncated_capture_is_reported_with_the_packets_read(tmp_path, capsys, cut, detail):
    damaged = _with_a_damaged_second_packet(tmp_path, cut)
    out = tmp_path / "out"
    out.mkdir()
    assert ids(damaged, out) == 1
    captured = capsys.readouterr()
    assert f"{damaged}: truncated or damaged after 1 packets: {detail}" in captured.err
    stats = json.loads(captured.out)
    assert stats["capture_packets"] == 1 and stats["alerts_written"] == 1 and "capture_error" in stats
    assert len((out / "eve.json").read_text().splitlines()) == 1  # the packet before the damage alerted
    with pytest.raises(TruncatedCapture) as info:
        list(read_pcap(str(damaged)))
    assert info.value.packets == 1


def test_a_whole_capture_is_not_reported(tmp_path, capsys):
    assert ids(PCAP, tmp_path) == 0
    assert "truncated" not in capsys.readouterr().err


def _pcapng(packets):
    shb_body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
    blocks = [struct.pack("<II", 0x0A0D0D0A, 12 + len(shb_body)) + shb_body + struct.pack("<I", 12 + len(shb_body))]
    idb_body = struct.pack("<HHI", 101, 0, 65535)  # raw IP
    blocks.append(struct.pack("<II", 1, 12 + len(idb_body)) + idb_body + struct.pack("<I", 12 + len(idb_body)))
    for frame in packets:
        pad = frame + b"\0" * (-len(frame) % 4)
        body = struct.pack("<IIIII", 0, 0, 0, len(frame), len(frame)) + pad
        blocks.append(struct.pack("<II", 6, 12 + len(body)) + body + struct.pack("<I", 12 + len(body)))
    return b"".join(blocks)


def test_a_truncated_pcapng_names_the_packets_read(tmp_path):
    ip = bytes.fromhex("450000140000000040010000c0a80001c0a80002")
    data = _pcapng([ip, ip, ip])
    whole = tmp_path / "whole.pcapng"
    whole.write_bytes(data)
    assert len(list(read_pcap(str(whole)))) == 3
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(data[:-10])
    with pytest.raises(TruncatedCapture, match=r"cut\.pcapng: truncated or damaged after 2 packets"):
        list(read_pcap(str(cut)))
