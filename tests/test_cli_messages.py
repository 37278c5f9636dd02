"""Messages that say what is wrong and which stack they describe: control sockets, status,
capture's flags, pcap paths."""

from __future__ import annotations

import os
import socket

import pytest

from pynetstack import control
from pynetstack.control import ControlServer, describe_socket, find_socket
from pynetstack.link.pcap import PcapWriter
from pynetstack.stack import Stack

from .test_cli import assert_one_clear_error, run_cli


@pytest.fixture
def control_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(control, "CONTROL_DIR", str(tmp_path))
    return tmp_path


def listening(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(1)
    return sock


def test_status_prefers_this_namespace_and_names_the_stack(control_dir):
    here = control_dir / f"{control._netns_id()}-pns0.sock"
    there = control_dir / "4026599999-pns9.sock"
    socks = [listening(there)]
    try:
        only_other = find_socket(None)
        assert only_other == str(there)
        assert "ANOTHER network namespace (net:[4026599999]" in describe_socket(only_other)
        socks.append(listening(here))
        assert find_socket(None) == str(here)
        assert describe_socket(str(here)) == f"the stack on pns0 in this network namespace, control socket {here}"
    finally:
        for sock in socks:
            sock.close()


def test_status_without_access_says_permission_denied(control_dir, monkeypatch):
    real = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path) == str(control_dir) else real(path, mode))
    with pytest.raises(PermissionError, match="permission denied"):
        find_socket(None)


def test_control_path_in_a_missing_directory_is_refused_and_not_created(tmp_path):
    path = tmp_path / "nonexistent" / "dir" / "c.sock"
    with pytest.raises(OSError, match=f"no directory {tmp_path / 'nonexistent' / 'dir'}"):
        ControlServer(object(), str(path))
    assert not (tmp_path / "nonexistent").exists()


def test_status_command_names_the_socket(tmp_path):
    stack = Stack()
    server = ControlServer(stack, str(tmp_path / "x.sock"))
    try:
        result = run_cli("status", "--control", str(tmp_path / "x.sock"))
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == f"# the stack at {tmp_path / 'x.sock'}"
        assert f"control socket {tmp_path / 'x.sock'}" in lines[1]
        assert "tcp connections: 0 (none)" in result.stdout
    finally:
        server.close()
        stack.close()


def test_pcap_path_is_named():
    with pytest.raises(OSError, match="cannot write the pcap file /nonexistent/x.pcap: No such file"):
        PcapWriter("/nonexistent/x.pcap")


@pytest.mark.parametrize("count", ["-1", "0"])
def test_capture_bad_count_says_what_is_wrong(count):
    result = run_cli("capture", "-i", "lo", "-c", count)
    assert_one_clear_error(result, f"--count must be at least 1, not {count}")
    assert "usage:" not in result.stderr


def test_capture_bad_timeout():
    assert_one_clear_error(run_cli("capture", "-i", "lo", "--timeout", "-3"), "--timeout must be a positive")
