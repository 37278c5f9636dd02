"""The command line: bad input gets one clear line, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pynetstack.config import ConfigError, validate

ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "pynetstack"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=ENV, cwd=cwd, timeout=60)


def assert_one_clear_error(result, *words):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith(("pynetstack: error:", "usage:")) or "error:" in lines[-1], result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


OK_IFACE = "[[interface]]\ntap = 'pnsx0'\naddress = '10.0.0.2/24'\n"


@pytest.mark.parametrize("content, words", [
    ("[[interface]]\ntap = 'x'\naddress = '10.0.0.300/24'\n", ["interface #1", "address"]),
    ("[[interface]]\ntap = 'x'\ninterface = 'y'\n", ["exactly one of"]),
    ("[[interface]]\ntap = 'x'\nspeed = 10\n", ["unknown key 'speed'"]),
    (OK_IFACE + "mtu = 20\n", ["mtu"]),
    (OK_IFACE + "[[route]]\ndestination = '0.0.0.0/0'\ngateway = 'nowhere'\n", ["route #1", "gateway"]),
    ("this is [not toml\n", ["not valid TOML"]),
    (OK_IFACE + "[services]\nudp_echo = 'seven'\n", ["udp_echo"]),
    ("", ["no interface"]),
    ("[[interface]]\ntap = 5\naddress = '10.0.0.2/24'\n", ["tap must be a string"]),
    (OK_IFACE + "pcap = 5\n", ["pcap must be a string"]),
    (OK_IFACE + "host_address = ['10.0.0.1/24', '10.0.1.1/24']\n", ["host_address"]),
    (OK_IFACE + "host_address = '10.0.0.2/24'\n", ["the stack's own address"]),
    (OK_IFACE + "[[route]]\ndestination = '192.0.2.0/24'\ninterface = 'nope'\n", ["no interface named 'nope'"]),
    (OK_IFACE + "[[route]]\ndestination = '192.0.2.0/24'\ngateway = '10.0.0.1'\nmetric = 'high'\n",
     ["metric must be an integer"]),
    (OK_IFACE + "[[route]]\ndestination = ['192.0.2.0/24', '198.51.100.0/24']\ngateway = '10.0.0.1'\n",
     ["destination"]),
    ("[[interface]]\ntap = 'x'\naddress = '010.0.0.2/24'\n", ["not an IPv4 address: '010.0.0.2'"]),
    (OK_IFACE + "[stack]\nforwarding = 'no'\n", ["forwarding must be true or false"]),
    (OK_IFACE + "mac = '01:00:5e:00:00:01'\n", ["not a unicast address"]),
    (OK_IFACE + "promiscuous = 'yes'\n", ["promiscuous must be true or false"]),
    (OK_IFACE + "[[interface]]\ntap = 'pnsx0'\naddress = '10.0.1.2/24'\n", ["used by interface #1"]),
    (OK_IFACE + "[[interface]]\ntap = 'pnsx1'\naddress = '10.0.0.2/24'\n", ["on interface #1 already"]),
    ("[[interface]]\ntap = 'x'\naddress = '0.0.0.0/0'\n", ["not a usable host address"]),
    ("[[interface]]\ntap = 'x'\n", ["'address' is required"]),
])
def test_bad_config_file(tmp_path, content, words):
    path = tmp_path / "bad.toml"
    path.write_text(content)
    assert_one_clear_error(run_cli("up", "--config", str(path)), str(path), *words)


def test_config_that_is_not_text(tmp_path):
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert_one_clear_error(run_cli("up", "--config", str(path)), str(path), "UTF-8")


def test_missing_config_file(tmp_path):
    assert_one_clear_error(run_cli("up", "--config", str(tmp_path / "nope.toml")), "cannot read")


def test_up_without_device():
    assert_one_clear_error(run_cli("up"), "--tap")


def test_bad_address_flag():
    assert_one_clear_error(run_cli("up", "--tap", "pnsx", "--address", "banana"), "address")


def test_capture_needs_interface():
    assert_one_clear_error(run_cli("capture"), "--interface")


def test_capture_bad_count():
    assert_one_clear_error(run_cli("capture", "-i", "lo", "-c", "0"), "--count")


def test_help_lists_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("up", "capture", "demo"):
        assert command in result.stdout


def test_validate_accepts_a_full_config():
    config = {"stack": {"forwarding": True},
              "interface": [{"tap": "pns0", "address": ["10.0.0.2/24", "10.0.1.2/24"], "host_address": "10.0.0.1/24",
                             "mtu": 9000, "mac": "02:00:00:00:00:01", "pcap": "x.pcap"},
                            {"interface": "veth1", "address": "10.1.0.2/24", "promiscuous": True}],
              "route": [{"destination": "192.0.2.0/24", "gateway": "10.0.0.1", "metric": 5}],
              "gateway": "10.0.0.1",
              "services": {"icmp_echo": True, "udp_echo": 7}}
    assert validate(config) is config


def test_validate_host_address_needs_tap():
    with pytest.raises(ConfigError, match="TAP only"):
        validate({"interface": [{"interface": "veth1", "address": "10.0.0.2/24", "host_address": "10.0.0.1/24"}]})


@pytest.mark.parametrize("args, words", [
    (["up", "--tap", "pnsx", "--address", "10.0.0.2/24", "--mtu", "0"], ["mtu"]),
    (["up", "--tap", "pnsx", "--address", "10.0.0.2/24", "--duration", "-1"], ["--duration"]),
    (["up", "--tap", "pnsx", "--address", "10.0.0.2/24", "--duration", "nan"], ["--duration"]),
    (["up", "--config", "x.toml", "--address", "10.0.0.2/24"], ["--address"]),
    (["up", "--tap", "pnsx", "--address", "10.0.0.2/24", "--gateway", "192.168.9.1"], ["192.168.9.1", "command line"]),
])
def test_bad_flags(args, words):
    assert_one_clear_error(run_cli(*args), *words)
