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
from .waiting import wait_for


@pytest.fixture(scope="module", autouse=True)
def tools(lab):
    missing = rl.missing_tools()
    if missing:  # not a skip: this lab must run wherever the base lab can
        pytest.fail("the router lab needs: " + ", ".join(missing))


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
    seen, tracked = {}, {}
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
        # conntrack's view: the echo query (its id kept), the probes that reached the WAN host
        # (UNREPLIED: an ICMP error is related, not a reply), none for those that expired
        tracked[nat.kind] = sorted(_shape(line) for line in nat.conntrack_list()
                                   if line.startswith("icmp") or re.search(r"dport=3343\d ", line))
    assert seen["stack"] == seen["linux"]
    print(f"\nconntrack after ping and traceroute: {tracked}")
    assert tracked["stack"] == tracked["linux"]
    # traceroute sends its three probes at once: those with TTL 2 and 3 reach the WAN host
    assert len(tracked["linux"]) == 3, tracked


# ICMP queries besides the plain echo, as hping3 sends them: timestamp (13), address mask (17),
# information (15, which hping3 sends only when forced) and an echo request with code 1
ICMP_QUERIES = (("--icmp-ts",), ("--icmp-addr",), ("-1", "-C", "15", "--force-icmp"), ("-1", "-K", "1"))
# and ICMP that opens no connection (Linux: invalid): a router solicitation, an echo reply unasked
ICMP_UNTRACKED = (("-1", "-C", "10", "--force-icmp"), ("-1", "-C", "0", "--force-icmp"))


def test_icmp_query_entries_agree_with_the_kernels_conntrack(both):
    """Each query through masquerade leaves an entry whose ``conntrack -L`` line is the kernel's:
    the request's type, code and id in the original tuple, the answer's type with the same code
    and id in the reply tuple ([UNREPLIED] where the WAN host does not answer that type).  Other
    types leave no entry in either."""
    listed = {}
    for nat in both:
        for args in ICMP_QUERIES + ICMP_UNTRACKED:
            nat.lan_run("hping3", *args, "-c", "1", rl.WAN_HOST, timeout=10)
        lines = [line for line in nat.conntrack_list()
                 if line.startswith("icmp") and " type=8 code=0 " not in line]  # not the pings of other tests
        for line in lines:
            ids = re.findall(r" id=(\d+)", line)
            assert len(ids) == 2 and ids[0] == ids[1], (nat.kind, line)  # masquerade kept each id
        listed[nat.kind] = sorted(_shape(line) for line in lines)
    print(f"\nICMP query entries: {listed}")
    assert listed["stack"] == listed["linux"]
    assert len(listed["linux"]) == len(ICMP_QUERIES), listed["linux"]


def _shape(line: str) -> str:
    """A conntrack -L line without what differs run to run: seconds left, ports, ICMP ids."""
    line = re.sub(r"^(\w+ +\d+) +\d+", r"\1 T", line)
    return re.sub(r"(port|id)=\d+", r"\1=N", line)


def test_curl_through_masquerade_agrees_with_tcpdump_and_conntrack(both):
    views = {}
    syn_only = "tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack == 0"
    for nat in both:
        lan_syn = rl.Capture(nat.lab, nat.lan, "eth0", f"tcp dst port 80 and {syn_only}", 1)
        wan_syn = rl.Capture(nat.lab, nat.wan, nat.wan_iface, f"tcp dst port 80 and {syn_only}", 1)
        got = rl.curl(nat, nat.lan, f"http://{rl.WAN_HOST}/")
        assert got["rc"] == 0 and got["body"] == rl.WAN_WEB_BODY, (nat.kind, got)
        (lan_src, lan_port), (wan_src, wan_port) = (_syn_source(c.lines()) for c in (lan_syn, wan_syn))
        assert (lan_src, lan_port) == (rl.LAN_HOST, got["local"][1]), nat.kind
        assert wan_src == rl.WAN_GW, (nat.kind, wan_src)
        assert rl.last_client(nat.wan_log) == rl.WAN_GW, "the WAN server sees the router's WAN address"
        lines = _closed_connection(nat, f"sport={lan_port} dport=80 ")
        entry = rl.conntrack_fields(lines[0])
        assert entry["original"] == {"src": rl.LAN_HOST, "dst": rl.WAN_HOST, "sport": str(lan_port), "dport": "80"}
        assert entry["reply"] == {"src": rl.WAN_HOST, "dst": rl.WAN_GW, "sport": "80", "dport": str(wan_port)}, \
            (nat.kind, lines[0])
        # the line itself, but for the ports and the seconds left: state, flags, fields in order
        views[nat.kind] = {"port preserved": wan_port == lan_port, "wan source": wan_src,
                           "conntrack": _shape(lines[0])}
        # a closed port: the RST comes back through NAT as it does through Linux
        started = time.monotonic()
        refused = rl.curl(nat, nat.lan, f"http://{rl.WAN_HOST}:81/")
        assert refused["rc"] == 7 and time.monotonic() - started < 2, (nat.kind, refused)
    for kind, view in views.items():
        print(f"\nmasquerade through {kind}: {view}")
    assert views["stack"] == views["linux"]


def _closed_connection(nat, needle: str) -> list:
    """The conntrack line of the TCP connection whose original tuple has ``needle``, once closed."""
    deadline = time.monotonic() + 10  # (a generous bound: a loaded machine may delay the stack's thread)
    while True:  # the last ACK of the close may still be on its way
        lines = [line for line in nat.conntrack_list() if line.startswith("tcp") and needle in line]
        if (len(lines) == 1 and " TIME_WAIT " in lines[0]) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(lines) == 1, (nat.kind, needle, nat.conntrack_list())
    return lines


def _syn_source(lines):
    assert len(lines) == 1, lines
    found = re.search(r"IP (\S+)\.(\d+) > \S+\.80:", lines[0])
    assert found, lines[0]
    return found.group(1), int(found.group(2))


def test_iperf3_through_masquerade_against_linux(both):
    rates = {}
    for nat in both:
        for reverse in (False, True):
            rates[nat.kind, reverse] = rl.iperf3(nat, seconds=3, reverse=reverse)
    flowtable = both[0].stack.host.flowtable.stats()
    for reverse, what in ((False, "upload LAN->WAN"), (True, "download WAN->LAN (-R)")):
        ours, kernel = rates["stack", reverse], rates["linux", reverse]
        print(f"\niperf3 TCP {what} through masquerade, 3 s: pynetstack {ours:.0f} Mbit/s, "
              f"Linux router {kernel:.0f} Mbit/s (ratio {ours / kernel:.3f})")
    print(f"pynetstack flow table: {flowtable}")
    assert all(rate > 1.0 for rate in rates.values()), rates
    assert flowtable["hits"] > 1000, "established flows took the flow table"


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
    entries = {}
    for nat in both:
        before = _rule_counter(nat, "dnat to")
        got = rl.curl(nat, nat.wan, f"http://{rl.WAN_GW}:8080/")
        assert got["rc"] == 0 and got["body"] == rl.LAN_WEB_BODY, (nat.kind, got)
        assert rl.last_client(nat.lan_log) == rl.WAN_HOST, "DNAT keeps the client's own address"
        assert _rule_counter(nat, "dnat to") == before + 1, "the nat chain saw the first packet only"
        line = _closed_connection(nat, f"src={rl.WAN_HOST} dst={rl.WAN_GW} sport={got['local'][1]} dport=8080 ")[0]
        assert f"src={rl.LAN_HOST} dst={rl.WAN_HOST} sport=80 dport={got['local'][1]} " in line, line
        entries[nat.kind] = _shape(line)
    assert entries["stack"] == entries["linux"], entries


def test_hairpin_from_the_lan_to_the_public_address(both):
    entries = {}
    for nat in both:
        before = _rule_counter(nat, "ct status dnat")
        got = rl.curl(nat, nat.lan, f"http://{rl.WAN_GW}:8080/")
        assert got["rc"] == 0 and got["body"] == rl.LAN_WEB_BODY, (nat.kind, got)
        assert got["remote"] == (rl.WAN_GW, 8080)
        # the server sees the public address, so its answers go back through the router
        assert rl.last_client(nat.lan_log) == rl.WAN_GW, nat.kind
        assert _rule_counter(nat, "ct status dnat") == before + 1, nat.kind
        port = got["local"][1]
        line = _closed_connection(nat, f"src={rl.LAN_HOST} dst={rl.WAN_GW} sport={port} dport=8080 ")[0]
        # both translations in one entry: the reply tuple is the server's answer to the public address
        reply = rl.conntrack_fields(line)["reply"]
        assert (reply["src"], reply["dst"], reply["sport"]) == (rl.LAN_HOST, rl.WAN_GW, "80"), (nat.kind, line)
        entries[nat.kind] = _shape(line)
    print(f"\nhairpin conntrack entries: {entries}")
    assert entries["stack"] == entries["linux"], entries


def _natdiscovery(nat, *flags: str) -> list:
    """The classification lines of turnutils_natdiscovery run from the LAN against a STUN-only
    turnserver on the WAN host's two addresses (RFC 5780 needs a second address and port)."""
    with open(os.path.join(nat.workdir, "turnserver.log"), "w") as log:
        server = nat.lab.popen(nat.wan, "timeout", "30", "turnserver", "-n", "--no-auth", "--stun-only",
                               "-L", rl.WAN_HOST, "-L", rl.WAN_HOST2, "--listening-port", "3478",
                               "--no-tls", "--no-dtls", "--no-tcp", "--no-cli", "--log-file", "stdout",
                               "--simple-log", "--pidfile", os.path.join(nat.workdir, "turnserver.pid"),
                               stdout=log)
    try:
        rl.wait_listening(nat.lab, nat.wan, "udp", 3479)  # the alternative port: RFC 5780 is on
        result = nat.lan_run("turnutils_natdiscovery", *(flags or ("-m", "-f")), rl.WAN_HOST, timeout=40)
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


def test_rfc5780_discovery_sees_the_stacks_other_filtering_modes(both):
    """The classification above is not blind: the stack's other filtering modes (RFC 4787
    REQ-8 options, which Linux's conntrack does not offer) are told apart."""
    nat = both[0]
    seen = {}
    try:
        for mode in ("endpoint-independent", "address"):
            nat.router.nat.filtering = mode
            seen[mode] = _natdiscovery(nat, "-f")
    finally:
        nat.router.nat.filtering = "address-and-port"
    print(f"\nturnutils_natdiscovery -f through the stack: {seen}")
    assert seen == {"endpoint-independent": ["NAT with Endpoint Independent Filtering!"],
                    "address": ["NAT with Address Dependent Filtering!"]}


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


# ---------------------------------------------------------------------------------------------- ECMP
FAR_HOST, FAR_NET = "203.0.113.10", "203.0.113.0"
ECMP_GATEWAYS = {"a": "10.20.1.2", "b": "10.20.2.2"}
FLOWS = range(20000, 21000)


class EcmpLab:
    def __init__(self, lab, stack, lan, nexthops, far):
        self.lab, self.stack, self.lan, self.nexthops, self.far = lab, stack, lan, nexthops, far


@pytest.fixture(scope="module")
def ecmp_lab(lab):
    """LAN -- stack -- two next-hop namespaces (a, b) -- a far namespace holding 203.0.113.10."""
    lan = lab.netns("elan")
    rtr = lab.netns("ertr")
    far = lab.netns("efar")
    lab.ip("-n", far, "addr", "add", f"{FAR_HOST}/32", "dev", "lo")
    nexthops = {}
    stack = Stack(forwarding=True)
    try:
        stack.add_interface(TapDevice("eth0", host_address="10.10.0.2/24", netns=lan, offload=False),
                            "10.10.0.1/24", name="lan0")
        # the TAP's queue towards the stack holds one whole send of the flows (2,000 datagrams at
        # ~4,000 a second): at the default 500, a PyPy GC pause of 150 ms in the stack's thread
        # overflows it (tun resizes its ring to txqueuelen)
        lab.ip("-n", lan, "link", "set", "eth0", "txqueuelen", "4000")
        for i, name in enumerate(("a", "b"), start=1):
            ns = lab.netns(f"enh{name}")
            nexthops[name] = ns
            lab.veth(ns, "eth0", rtr, f"nh{name}", address_a=f"{ECMP_GATEWAYS[name]}/24")
            lab.veth(ns, "far0", far, f"via{name}", address_a=f"172.16.{i}.1/24", address_b=f"172.16.{i}.2/24")
            lab.run(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1", check=True)
            lab.ip("-n", ns, "route", "add", f"{FAR_NET}/24", "via", f"172.16.{i}.2")
            lab.ip("-n", ns, "route", "add", "10.10.0.0/24", "via", f"10.20.{i}.1")
            stack.add_interface(PacketDevice(f"nh{name}", promiscuous=True, netns=rtr), f"10.20.{i}.1/24",
                                name=f"nh{name}")
        lab.ip("-n", lan, "route", "add", "default", "via", "10.10.0.1")
        routes = stack.host.routes
        routes.hash_policy = 1  # L4, as sysctl net.ipv4.fib_multipath_hash_policy=1
        routes.hash_seed = 0x5EED  # a fixed seed: the split below is the same on every run
        routes.add(_far_route(stack, "a", "b"))
        stack.start_background()
        # resolve both gateways first, so no flow waits in a neighbour queue
        for gateway in ECMP_GATEWAYS.values():
            ping = lab.run(lan, "ping", "-c", "1", "-W", "2", gateway)
            assert ping.returncode == 0, ping.stdout
        yield EcmpLab(lab, stack, lan, nexthops, far)
    finally:
        stack.close()


def _far_route(stack, *names) -> Route:
    hops = [NextHop(stack.interfaces[f"nh{n}"], ip_to_int(ECMP_GATEWAYS[n])) for n in names]
    return Route(ip_to_int(FAR_NET), 24, nexthops=hops)


_SENDER = r"""
import socket, sys, time
far, first, last, times = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for _ in range(times):
    for port in range(first, last):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("10.10.0.2", port))
        s.sendto(b"flow", (far, 9))
        s.close()
        if port % 5 == 0:
            time.sleep(0.001)  # stay under the TAP's queue (a stack on a cold PyPy JIT reads slowly)
"""


def _rx_packets(lab, ns: str, iface: str) -> int:
    out = lab.run(ns, "cat", f"/sys/class/net/{iface}/statistics/rx_packets", check=True).stdout
    return int(out)


def _send_flows(ecmp, times: int) -> dict:
    """Send each flow ``times`` times; {source port: [next hop of each datagram]}, from tcpdump
    on both next hops."""
    expression = f"udp and dst host {FAR_HOST} and dst port 9"
    captures = {name: rl.Capture(ecmp.lab, ns, "eth0", expression) for name, ns in ecmp.nexthops.items()}
    far_before = sum(_rx_packets(ecmp.lab, ecmp.far, f"via{n}") for n in ecmp.nexthops)
    sent = len(FLOWS) * times
    result = ecmp.lab.run(ecmp.lan, "python3", "-c", _SENDER, FAR_HOST, str(FLOWS[0]), str(FLOWS[-1] + 1), str(times),
                          timeout=30)
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 10
    arrived = 0
    while time.monotonic() < deadline:  # the far host got them all (through either next hop)
        arrived = sum(_rx_packets(ecmp.lab, ecmp.far, f"via{n}") for n in ecmp.nexthops) - far_before
        if arrived >= sent:
            break
        time.sleep(0.05)

    def captured_so_far():
        return sum(len(re.findall(r"IP 10\.10\.0\.2\.\d+ > ", c.so_far())) for c in captures.values())
    # tcpdump on the next hops may still be reading what went through them (a loaded machine)
    wait_for(lambda: captured_so_far() >= sent, timeout=10)
    paths = {}
    for name, capture in captures.items():
        got = capture.stop()
        for sport in re.findall(r"IP 10\.10\.0\.2\.(\d+) > ", "\n".join(got)):
            paths.setdefault(int(sport), []).append(name)
    captured = sum(len(p) for p in paths.values())
    tap_dropped = ecmp.lab.run(ecmp.lan, "cat", "/sys/class/net/eth0/statistics/tx_dropped").stdout.strip()
    assert arrived >= sent and captured == sent, (f"the far host got {arrived} of {sent}, tcpdump saw {captured}; "
                                                  f"stack drops {dict(ecmp.stack.drops)}, TAP drops {tap_dropped}")
    return paths


def test_ecmp_splits_flows_evenly_keeps_each_on_its_path_and_moves_only_the_removed_hops(ecmp_lab):
    ecmp = ecmp_lab
    paths = _send_flows(ecmp, times=2)
    assert set(paths) == set(FLOWS)
    unstable = [port for port, hops in paths.items() if hops[0] != hops[1]]
    assert not unstable, f"flows that changed path: {unstable[:10]}"
    first = {port: hops[0] for port, hops in paths.items()}
    split = {name: sum(1 for hop in first.values() if hop == name) for name in ("a", "b")}
    print(f"\nECMP, L4 hash, {len(FLOWS)} UDP flows each sent twice: next hop a {split['a']}, b {split['b']}")
    assert all(abs(count - len(FLOWS) / 2) <= 0.1 * len(FLOWS) / 2 for count in split.values()), split

    stack = ecmp.stack
    with stack.lock:  # next hop b leaves the group (its link stays up: stale state would show)
        stack.host.routes.replace(_far_route(stack, "a"))
    after = {port: hops[0] for port, hops in _send_flows(ecmp, times=1).items()}
    moved = [port for port in FLOWS if after[port] != first[port]]
    assert all(first[port] == "b" for port in moved), "a flow of next hop a moved"
    assert len(moved) == split["b"] and set(after.values()) == {"a"}
    print(f"next hop b removed: {len(moved)} flows moved, all of them b's")

    with stack.lock:  # b comes back: with the same seed every flow returns to its first path
        stack.host.routes.replace(_far_route(stack, "a", "b"))
    again = {port: hops[0] for port, hops in _send_flows(ecmp, times=1).items()}
    assert again == first
