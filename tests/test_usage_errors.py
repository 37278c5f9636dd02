"""A new user's mistakes, as a tester met them: each gets one line naming the file, the section
and the problem (exit status 2 for a bad configuration), the stack closes what it had opened,
and the running stack's control commands answer a command for a function it does not run."""

from __future__ import annotations

import socket

import pytest

from pynetstack import config as configmod
from pynetstack.config import ConfigError, build_stack
from pynetstack.link.memory import MemoryDevice
from pynetstack.router_control import answer
from pynetstack.stack import Stack

from .test_cli import run_cli

IFACE = "[[interface]]\ninterface = 'tstnone0'\nname = 'wan0'\naddress = '10.77.0.2/24'\n"  # no such device: a check that lets a mistake through fails fast, creating nothing


def one_line_error(result):
    """The stderr of a run that failed for its configuration: exactly one line, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pynetstack: error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("section, words", [
    ("[ids]\nrules = 'local.rules'\n", ["[ids]", "rules"]),
    ("[ids]\ninline = 'maybe'\n", ["[ids]", "inline"]),
    ("[ids]\nscan_ports = 0\n", ["[ids]", "scan_ports"]),
])
def test_a_bad_ids_value_is_a_configuration_error(tmp_path, section, words):
    path = tmp_path / "stack.toml"
    path.write_text(IFACE + section)
    line = one_line_error(run_cli("up", "--config", str(path)))
    assert f"{path}: [ids]" in line
    for word in words:
        assert word in line


@pytest.fixture
def memory_devices(monkeypatch):
    """build_stack on in-memory devices: what happens after the devices exist, without root."""
    made = []

    def make(table, forwarding=False):
        made.append(MemoryDevice(table.get("tap") or table["interface"]))
        return made[-1]
    monkeypatch.setattr(configmod, "_make_device", make)
    return made


def test_a_broken_ids_rule_names_the_file_once(tmp_path, memory_devices):
    (tmp_path / "local.rules").write_text('alert tcp any any -> any 80 (msg:"ok"; sid:1;)\n'
                                          'alert tcp any any -> any 80 (msg:"bad; sid:2;)\n')
    path = tmp_path / "stack.toml"
    path.write_text(IFACE + "[ids]\nrules = ['local.rules']\n")
    with pytest.raises(ConfigError) as caught:
        build_stack(str(path))
    message = str(caught.value)
    assert message.count(str(path)) == 1, message
    assert "local.rules:2" in message


def test_a_gateway_off_every_network_names_its_route(tmp_path, memory_devices):
    path = tmp_path / "stack.toml"
    path.write_text(IFACE + "[[route]]\ndestination = '10.0.0.0/8'\ngateway = '10.77.0.1'\n"
                    "[[route]]\ndestination = '172.20.0.0/16'\ngateway = '172.16.0.1'\n")
    with pytest.raises(ConfigError, match=r"stack\.toml: route #2: gateway 172\.16\.0\.1 is not on a connected"):
        build_stack(str(path))


def test_a_monitoring_port_in_use_names_the_listen_address(tmp_path, memory_devices):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    path = tmp_path / "stack.toml"
    path.write_text(IFACE + f"[monitoring]\nlisten = '127.0.0.1:{port}'\nstore = 'm.db'\n")
    try:
        with pytest.raises(ConfigError) as caught:
            build_stack(str(path))
    finally:
        busy.close()
    message = str(caught.value)
    assert f"[monitoring] listen 127.0.0.1:{port}" in message and "in use" in message, message


def test_qos_show_on_a_stack_without_qos_is_an_error():
    with Stack() as stack:
        reply = answer(stack, "qos show")
    assert reply is not None and reply.startswith("error: ") and "[qos]" in reply, reply


def test_a_missing_zone_file_is_named_without_a_line_or_errno(tmp_path):
    path = tmp_path / "stack.toml"
    path.write_text(IFACE + "[dns]\nzones = ['nope.zone']\n")
    line = one_line_error(run_cli("up", "--config", str(path)))
    assert line.endswith("nope.zone: cannot read: No such file or directory"), line
    assert "Errno" not in line and ":0:" not in line


def test_a_zone_file_not_in_utf8_is_named(tmp_path):
    (tmp_path / "latin1.zone").write_bytes(b"; caf\xe9\n")
    path = tmp_path / "stack.toml"
    path.write_text(IFACE + "[dns]\nzones = ['latin1.zone']\n")
    line = one_line_error(run_cli("up", "--config", str(path)))
    assert "latin1.zone: cannot read:" in line and "utf-8" in line, line


def test_security_report_counts_across_a_restart_of_the_stack(tmp_path):
    """The store outlives the stack: a restart sets the counters back to zero, and the report
    must count what happened before it too (as Prometheus's increase() does), never a negative."""
    from pynetstack.monitor import reports
    from pynetstack.monitor.store import Store
    store = Store(str(tmp_path / "monitor.db"))
    now = 1_000_000.0
    alerts = [0, 5, 12, 0, 1]  # the stack restarted after the third sample
    for i, value in enumerate(alerts):
        store.append(now - 50 + i * 10, {"pynetstack_ids_alerts": float(value), "pynetstack_conntrack_drop": 0.0})
    report = reports.build(store, "security", 3600, now=now)
    store.close()
    rows = {row[0]: row[1:] for row in report["sections"][1]["rows"]}
    assert rows["pynetstack_ids_alerts"] == ["13", "1"], rows


class _Rule:
    name, summary, expr = "PacketFlood", "", "rate(x[10s]) > 1000"


class _Alert:
    def __init__(self, state, fired_at, resolved_at=None):
        self.rule, self.state, self.value = _Rule(), state, 6240.5
        self.labels = {"alertname": "PacketFlood", "severity": "critical"}
        self.fired_at, self.resolved_at, self.fingerprint = fired_at, resolved_at, "f1"


def _posted(url):
    from pynetstack.monitor.alerts import Notifier
    posted = []
    notifier = Notifier({"webhook": url, "log": False}, sender=lambda u, body: posted.append(body))
    notifier.changed(_Alert("firing", 10.0), wall=1_700_000_000.0)
    notifier.poll(10.0)
    notifier.changed(_Alert("resolved", 10.0, 70.0), wall=1_700_000_060.0)
    notifier.poll(200.0)
    notifier.close()
    return notifier, posted


def test_alerts_posted_to_alertmanagers_api_are_a_list_of_postable_alerts():
    """README: webhook = "http://127.0.0.1:9093/api/v2/alerts": Alertmanager's API takes a JSON
    array of alerts (labels, annotations, startsAt, endsAt only once resolved), not the webhook
    object Alertmanager sends to its receivers; and it wants a firing alert re-sent (it resolves
    one it has not heard of for resolve_timeout, 5 minutes)."""
    notifier, posted = _posted("http://127.0.0.1:9093/api/v2/alerts")
    assert [type(body) for body in posted] == [list, list], posted
    firing, resolved = posted[0][0], posted[1][0]
    assert firing["labels"] == {"alertname": "PacketFlood", "severity": "critical"}
    assert "endsAt" not in firing and firing["startsAt"].startswith("2023-11-14T22:13:20")
    assert resolved["endsAt"].startswith("2023-11-14T22:14:20")
    assert set(firing) <= {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
    assert notifier.repeat_interval <= 60


def test_alerts_posted_to_a_webhook_receiver_keep_the_webhook_format():
    notifier, posted = _posted("http://127.0.0.1:5001/hook")
    assert [body["status"] for body in posted] == ["firing", "resolved"] and posted[0]["version"] == "4"


def test_top_shows_the_conntrack_entries_as_a_count():
    import io

    from rich.console import Console

    from pynetstack.monitor import top
    buffer = io.StringIO()
    Console(file=buffer, width=120).print(top.render({"time": 0, "conntrack": {"entries": 3.0}}))
    assert "conntrack 3 " in buffer.getvalue() and "3.0" not in buffer.getvalue(), buffer.getvalue()


def test_a_route_with_host_bits_is_refused_as_linux_does(tmp_path):
    """`ip route add 10.1.0.5/16 via ...`: "Invalid prefix for given prefix length"."""
    path = tmp_path / "stack.toml"
    path.write_text(IFACE + "[[route]]\ndestination = '10.1.0.5/16'\ngateway = '10.77.0.1'\n")
    line = one_line_error(run_cli("up", "--config", str(path)))
    assert "route #1: destination 10.1.0.5/16 has host bits set" in line and "10.1.0.0/16" in line, line


@pytest.fixture
def only_a_stack_elsewhere(tmp_path, monkeypatch):
    """The control directory holds one live stack, of another network namespace."""
    from pynetstack import control
    monkeypatch.setattr(control, "CONTROL_DIR", str(tmp_path))
    path = tmp_path / "4026599999-lan0.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(1)
    yield str(path)
    sock.close()


@pytest.mark.parametrize("command", ["conntrack flush", "nft load /tmp/x.nft", "lb edit-server tcp 1.2.3.4:80 "
                                     "10.0.0.2:80 weight 0"])
def test_a_change_is_not_sent_to_another_namespaces_stack_unasked(only_a_stack_elsewhere, command):
    from pynetstack.routercli import choose_stack
    with pytest.raises(OSError, match="no stack runs in this network namespace.*give --control"):
        choose_stack(None, command)
    assert choose_stack(only_a_stack_elsewhere, command) == only_a_stack_elsewhere  # named: fine


def test_a_question_to_another_namespaces_stack_says_which_it_asks(only_a_stack_elsewhere, capsys):
    from pynetstack.routercli import choose_stack
    assert choose_stack(None, "conntrack list") == only_a_stack_elsewhere
    assert "ANOTHER network namespace" in capsys.readouterr().err


@pytest.mark.parametrize("flags, expected", [
    (["--mtu", "20"], "--mtu must be an integer within 68..65535, not 20"),
    (["--address", "10.0.0.300/24"], "--address: not an IPv4 address: '10.0.0.300'"),
    (["--mac", "zz"], "--mac 'zz' is not a MAC address"),
    (["--busy-poll", "-3"], "--busy-poll must be microseconds"),
])
def test_a_bad_flag_is_named_as_the_flag(flags, expected):
    result = run_cli("up", "--interface", "tstnone0", "--address", "10.0.0.2/24", *flags)
    assert one_line_error(result).startswith("pynetstack: error: command line: " + expected), result.stderr


@pytest.mark.parametrize("section, expected", [
    ("[qos.class.voice]\nrate = '100mbit'\n", "[qos]: class.voice: rate 100mbit is more than the link's rate (50Mbit)"),
    ("[qos.class.video]\nceil = '60mbit'\n", "[qos]: class.video: ceil 60mbit is more than the link's rate (50Mbit)"),
    ("[[qos.rule]]\nclass = 'video'\nprotocol = 'udp'\ndport = '5010-5004'\n",
     "[qos]: rule #1: dport: '5010-5004' runs backwards: write the lower port first (5004-5010)"),
])
def test_qos_mistakes_name_what_was_written(tmp_path, section, expected):
    path = tmp_path / "stack.toml"
    path.write_text(IFACE + "[qos]\ninterface = 'wan0'\nrate = '50mbit'\n" + section)
    line = one_line_error(run_cli("up", "--config", str(path)))
    assert line.endswith(expected), line


@pytest.mark.parametrize("command, words", [
    ("route get 10.0.0.1 ipproto foo", ["'foo' is wrong", "ipproto", "tcp"]),
    ("route get 10.0.0.1 dport 99999", ["'99999' is wrong", "dport"]),
    ("route get 10.0.0.1 mark 0xZZ", ["'0xZZ' is wrong", "mark"]),
    ("route get 10.0.0.1 sport -1", ["'-1' is wrong", "sport"]),
])
def test_route_get_with_a_bad_selector_names_it(command, words):
    with Stack() as stack:
        reply = answer(stack, command)
    assert reply.startswith("error: route get: ") and "invalid literal" not in reply, reply
    for word in words:
        assert word in reply, reply


def test_route_get_takes_protocol_names_and_hex_marks():
    from pynetstack.link.memory import MemoryDevice as Device
    with Stack() as stack:
        stack.add_interface(Device("eth0"), "10.0.0.2/24")
        assert answer(stack, "route get 10.0.0.1 ipproto udp dport 53 mark 0x10").startswith("10.0.0.1 dev eth0")


def test_route_show_of_an_unknown_table_speaks_to_the_command_line():
    with Stack() as stack:
        reply = answer(stack, "route show table nosuch")
    assert reply == "error: route show: unknown table 'nosuch' (a number, or main, local, default)\n", reply


def test_a_route_destination_that_is_not_a_string_says_so(tmp_path):
    path = tmp_path / "stack.toml"
    path.write_text(IFACE + "[[route]]\ndestination = 5\ngateway = '10.77.0.1'\n")
    line = one_line_error(run_cli("up", "--config", str(path)))
    assert line.endswith("route #1: destination must be a prefix string like '10.1.0.0/16', not 5"), line


def test_capture_to_a_missing_directory_names_the_file_once():
    result = run_cli("capture", "-i", "lo", "-c", "1", "--timeout", "0.2", "-w", "/nonexistent/dir/x.pcap")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.count("/nonexistent/dir/x.pcap") == 1, result.stderr
