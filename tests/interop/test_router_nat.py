"""pynetstack as a NAT router between real Linux hosts, with the Linux kernel as the oracle.

The same lab is built twice (routerlab.py): once with the stack as the router, once with a
Linux router namespace loaded with the very same nft file.  Every check runs on both and the
answers must agree: the source the WAN server sees, the port forward, hairpin NAT, the ICMP and
TCP answers, conntrack's view of the connection, the RFC 5780 NAT classification.  Then a full
conntrack table, and ECMP over two next-hop namespaces.
"""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from pynetstack.link.packet import PacketDevice
from pynetstack.link.tap import TapDevice
from pynetstack.net.route import NextHop, Route
from pynetstack.stack import Stack
from pynetstack.wire.addr import ip_to_int

from . import routerlab as rl


@pytest.fixture(scope="module")
def rules_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("nft") / "router.nft"
    path.write_text(rl.RULESET)
    return str(path)


def _with_servers(nat):
    nat.wan_log = nat.web_server(nat.wan, rl.WAN_HOST, 80, rl.WAN_WEB_BODY, "wanweb")
    nat.lan_log = nat.web_server(nat.lan, rl.LAN_HOST, 80, rl.LAN_WEB_BODY, "lanweb")
    return nat


@pytest.fixture(scope="module")
def both(lab, rules_file, tmp_path_factory):
    """[the stack's build, the Linux router's build] of the same lab."""
    stack_nat = rl.build_stack(lab, "s", rules_file, str(tmp_path_factory.mktemp("stack")))
    try:
        linux_nat = rl.build_linux(lab, "k", rules_file, str(tmp_path_factory.mktemp("linux")))
        yield [_with_servers(stack_nat), _with_servers(linux_nat)]
    finally:
        stack_nat.stack.close()


def _hops(traceroute_output: str):
    return re.findall(r"^\s*(\d+)\s+(\S+)", traceroute_output, re.M)


def test_the_ruleset_file_is_loaded_by_both(both):
    stack_nat, linux_nat = both
    ours = stack_nat.router.ruleset.list_ruleset()
    kernel = linux_nat.lab.run(linux_nat.rtr, "nft", "list", "ruleset", check=True).stdout
    strip = re.compile(r"counter packets \d+ bytes \d+ ")
    assert strip.sub("", ours).split() == strip.sub("", kernel).split(), (ours, kernel)


def test_ping_and_traceroute_through_nat(both):
    seen = {}
    for nat in both:
        ping = nat.lan_run("ping", "-c", "2", "-i", "0.2", "-W", "2", rl.WAN_HOST)
        assert " 2 received" in ping.stdout and "ttl=63" in ping.stdout, (nat.kind, ping.stdout)
        expired = nat.lan_run("ping", "-c", "1", "-t", "1", "-W", "2", rl.WAN_HOST)
        assert f"From {rl.LAN_GW}" in expired.stdout and "Time to live exceeded" in expired.stdout, expired.stdout
        trace = nat.lan_run("traceroute", "-n", "-w", "1", "-q", "1", "-m", "3", rl.WAN_HOST, timeout=15)
        assert trace.returncode == 0, trace.stderr
        seen[nat.kind] = _hops(trace.stdout)
        # UDP through NAT: the port unreachable from the WAN host found its way back, translated
        assert seen[nat.kind] == [("1", rl.LAN_GW), ("2", rl.WAN_HOST)], (nat.kind, trace.stdout)
    assert seen["stack"] == seen["linux"]


def test_curl_through_masquerade_agrees_with_tcpdump_and_conntrack(both):
    views = {}
    for nat in both:
        syn = rl.Capture(nat.lab, nat.wan, nat.wan_iface, "tcp dst port 80 and tcp[tcpflags] & tcp-syn != 0", 1)
        got = rl.curl(nat, nat.lan, f"http://{rl.WAN_HOST}/")
        assert got["rc"] == 0 and got["body"] == rl.WAN_WEB_BODY, (nat.kind, got)
        lines = syn.lines()
        assert len(lines) == 1, (nat.kind, lines)
        wire = re.search(r"IP (\S+)\.(\d+) > (\S+)\.80:", lines[0])
        assert wire, lines[0]
        wire_src, wire_port = wire.group(1), int(wire.group(2))
        assert wire_src == rl.WAN_GW, (nat.kind, lines[0])
        assert rl.last_client(nat.wan_log) == rl.WAN_GW, "the WAN server sees the router's WAN address"
        lan_port = got["local"][1]
        entries = [rl.conntrack_fields(line) for line in nat.conntrack_list()]
        mine = [e for e in entries if e["proto"] == "tcp" and e["original"].get("sport") == str(lan_port)
                and e["original"].get("dport") == "80"]
        assert len(mine) == 1, (nat.kind, nat.conntrack_list())
        entry = mine[0]
        assert entry["original"]["src"] == rl.LAN_HOST and entry["original"]["dst"] == rl.WAN_HOST
        assert entry["reply"] == {"src": rl.WAN_HOST, "dst": rl.WAN_GW, "sport": "80", "dport": str(wire_port)}, \
            (nat.kind, entry, lines[0])
        views[nat.kind] = {"preserved": wire_port == lan_port, "src": wire_src}
        # a closed port: the RST comes back through NAT as it does through Linux
        started = time.monotonic()
        refused = rl.curl(nat, nat.lan, f"http://{rl.WAN_HOST}:81/")
        assert refused["rc"] == 7 and time.monotonic() - started < 2, (nat.kind, refused)
    print(f"\nmasquerade: {views}")
    assert views["stack"] == views["linux"]


def test_iperf3_through_masquerade_against_linux(both):
    rates = {}
    for nat in both:
        rates[nat.kind] = rl.iperf3(nat, seconds=3)
    print(f"\niperf3 TCP LAN->WAN through masquerade, 3 s: pynetstack {rates['stack']:.0f} Mbit/s, "
          f"Linux router {rates['linux']:.0f} Mbit/s (ratio {rates['stack'] / rates['linux']:.3f})")
    assert rates["stack"] > 1.0 and rates["linux"] > 1.0


def _rule_counter(nat, needle: str) -> int:
    if nat.router is not None:
        text = nat.router.ruleset.list_ruleset()
    else:
        text = nat.lab.run(nat.rtr, "nft", "list", "ruleset", check=True).stdout
    for line in text.splitlines():
        if needle in line:
            return int(re.search(r"counter packets (\d+)", line).group(1))
    raise AssertionError(f"no rule with {needle!r} in {text}")


def test_port_forward_from_the_wan(both):
    for nat in both:
        before = _rule_counter(nat, "dnat to")
        got = rl.curl(nat, nat.wan, f"http://{rl.WAN_GW}:8080/")
        assert got["rc"] == 0 and got["body"] == rl.LAN_WEB_BODY, (nat.kind, got)
        assert rl.last_client(nat.lan_log) == rl.WAN_HOST, "DNAT keeps the client's own address"
        assert _rule_counter(nat, "dnat to") == before + 1, "the nat chain saw the first packet only"


def test_hairpin_from_the_lan_to_the_public_address(both):
    for nat in both:
        before = _rule_counter(nat, "ct status dnat")
        got = rl.curl(nat, nat.lan, f"http://{rl.WAN_GW}:8080/")
        assert got["rc"] == 0 and got["body"] == rl.LAN_WEB_BODY, (nat.kind, got)
        assert got["remote"] == (rl.WAN_GW, 8080)
        # the server sees the public address, so its answers go back through the router
        assert rl.last_client(nat.lan_log) == rl.WAN_GW, nat.kind
        assert _rule_counter(nat, "ct status dnat") == before + 1, nat.kind


def _natdiscovery(nat) -> list:
    server = nat.lab.popen(nat.wan, "timeout", "30", "turnserver", "-n", "--no-auth", "--stun-only",
                           "-L", rl.WAN_HOST, "-L", rl.WAN_HOST2, "--listening-port", "3478",
                           "--no-tls", "--no-dtls", "--no-tcp", "--no-cli", "--log-file", "stdout", "--simple-log",
                           "--pidfile", os.path.join(nat.workdir, "turnserver.pid"),
                           stdout=open(os.path.join(nat.workdir, "turnserver.log"), "w"))
    try:
        rl.wait_listening(nat.lab, nat.wan, "udp", 3479)  # the alternative port: RFC 5780 is on
        result = nat.lan_run("turnutils_natdiscovery", "-m", "-f", rl.WAN_HOST, timeout=40)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
    assert result.returncode == 0, result.stdout + result.stderr
    return re.findall(r"^NAT with .*$", result.stdout, re.M)


def test_rfc5780_classification_is_the_kernels(both):
    found = {nat.kind: _natdiscovery(nat) for nat in both}
    for kind, lines in found.items():
        print(f"\nturnutils_natdiscovery -m -f through {kind}: " + " | ".join(lines))
    assert len(found["linux"]) == 2, found
    assert found["stack"] == found["linux"]


def test_full_conntrack_table_refuses_new_flows_and_keeps_old_ones(lab, rules_file, tmp_path):
    nat = rl.build_stack(lab, "f", rules_file, str(tmp_path), max_entries=3)
    try:
        nat.lab.popen(nat.wan, "timeout", "30", "socat", f"TCP-LISTEN:7007,bind={rl.WAN_HOST},fork,reuseaddr",
                      "PIPE")
        rl.wait_listening(lab, nat.wan, "tcp", 7007)
        result = nat.lan_run("python3", "-c", _FULL_TABLE_CLIENT, rl.WAN_HOST, timeout=30)
        assert result.returncode == 0, result.stderr
        report = dict(line.split("=", 1) for line in result.stdout.split())
        assert report["first"] == "3", report  # three connections fill the table with assured entries
        assert report["fourth"] == "timeout", report  # the fourth SYN is dropped
        assert report["again"] == "ok", report  # the old ones still carry data
        assert nat.stack.drops["conntrack-table-full"] >= 1, dict(nat.stack.drops)
        assert nat.router.conntrack.count == 3
    finally:
        nat.stack.close()


_FULL_TABLE_CLIENT = r"""
import socket, sys
server = sys.argv[1]
conns = []
for i in range(3):
    s = socket.create_connection((server, 7007), timeout=3)
    s.sendall(b"hello %d" % i)
    assert s.recv(100) == b"hello %d" % i
    conns.append(s)
print("first=%d" % len(conns))
try:
    socket.create_connection((server, 7007), timeout=2)
    print("fourth=connected")
except OSError as exc:
    print("fourth=timeout" if isinstance(exc, socket.timeout) else "fourth=" + type(exc).__name__)
ok = True
for i, s in enumerate(conns):
    s.sendall(b"again %d" % i)
    ok = ok and s.recv(100) == b"again %d" % i
print("again=" + ("ok" if ok else "broken"))
"""
