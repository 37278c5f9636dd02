"""The firewall against the Linux kernel: the same nft file loaded into a Linux router namespace
and into pynetstack as the router (routerlab.py builds both), the same traffic through each --
a scapy generator of varied packets, nmap scans of several kinds, hping3, curl, ping -- and then
the per-rule packet and byte counters must be equal, and every answer the routers sent
(TCP resets, ICMP errors) must be the same on the wire."""

from __future__ import annotations

import json
import os
import re
import sys
import time

import pytest

from pynetstack.netfilter.nft import load, loads

from . import routerlab as rl
from .waiting import wait_for

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")

# (accept ends only its base chain: the second chain sees what the first accepted)
RULESET = f"""\
table ip fw {{
	chain forward {{
		type filter hook forward priority filter; policy drop;
		ct state established,related counter accept
		ct state invalid counter drop
		iifname "wan0" counter accept
		tcp dport 80 counter accept
		tcp dport 81 counter reject with tcp reset
		tcp dport 82 counter reject
		udp dport 53 counter reject with icmp type host-unreachable
		udp dport 54 counter reject with icmp type admin-prohibited
		icmp type echo-request counter accept
		tcp dport 8000-8100 counter drop
		ip saddr . tcp dport {{ {rl.LAN_HOST} . 9000, {rl.LAN_HOST} . 9001 }} counter jump allowed
		counter
	}}

	chain allowed {{
		tcp dport 9001 counter return
		counter accept
	}}

	chain later {{
		type filter hook forward priority 10; policy accept;
		tcp dport {{ 80, 9000 }} counter
		counter
	}}
}}
"""

# probes of every kind, sent from the LAN host with fixed sequence numbers; for each, the
# answer the router (or the server behind it) sent, as wire fields
GENERATOR = r"""
import json, sys
from scapy.all import IP, TCP, UDP, ICMP, Raw, sr1, conf
conf.verb = 0
dst = sys.argv[1]
probes = [
    IP(dst=dst)/TCP(sport=41001, dport=81, flags="S", seq=1000),
    IP(dst=dst)/TCP(sport=41002, dport=81, flags="S", seq=2000)/Raw(b"x" * 10),
    IP(dst=dst)/TCP(sport=41003, dport=81, flags="FA", seq=3000, ack=777)/Raw(b"y" * 7),
    IP(dst=dst)/TCP(sport=41004, dport=81, flags="PA", seq=4000, ack=0x12345678)/Raw(b"z" * 3),
    IP(dst=dst)/TCP(sport=41005, dport=82, flags="S", seq=5000),
    IP(dst=dst, tos=0x10)/UDP(sport=41006, dport=53)/Raw(b"q" * 20),
    IP(dst=dst)/UDP(sport=41007, dport=54)/Raw(b"q"),
    IP(dst=dst)/ICMP(type=8, id=7, seq=1)/Raw(b"ping"),
    IP(dst=dst)/TCP(sport=41008, dport=8050, flags="S", seq=6000),
    IP(dst=dst)/TCP(sport=41009, dport=9000, flags="S", seq=7000),
    IP(dst=dst)/TCP(sport=41010, dport=9001, flags="S", seq=8000),
    IP(dst=dst, ttl=7)/UDP(sport=41011, dport=7777)/Raw(b"u" * 30),
]
out = []
for probe in probes:
    # (1 s: a stack in a Python thread on a loaded machine, a GC pause, may take more than
    # 0.4 s to answer; a probe that gets no answer by design costs the full wait)
    reply = sr1(probe, timeout=1.0)
    if reply is None:
        out.append(None)
        continue
    fields = {"src": reply[IP].src, "ttl": reply[IP].ttl, "tos": reply[IP].tos, "len": reply[IP].len,
              "df": int(reply[IP].flags.DF)}
    if reply.haslayer(ICMP):
        icmp = reply[ICMP]
        fields.update(icmp=(icmp.type, icmp.code), quoted=reply[IP].len - reply[IP].ihl * 4 - 8)
    elif reply.haslayer(TCP):
        tcp = reply[TCP]
        # (the length from the IP header: a TAP frame carries Ethernet padding after it)
        fields.update(tcp=(str(tcp.flags), tcp.seq, tcp.ack, tcp.window,
                           reply[IP].len - reply[IP].ihl * 4 - tcp.dataofs * 4))
    out.append(fields)
print(json.dumps(out))
"""


@pytest.fixture(scope="module", autouse=True)
def tools(lab):
    missing = rl.missing_tools() + [t for t in ("nmap", "hping3") if not os.path.exists(f"/usr/bin/{t}")
                                     and not os.path.exists(f"/usr/sbin/{t}")]
    if missing:
        pytest.fail("the firewall lab needs: " + ", ".join(missing))


@pytest.fixture(scope="module")
def both(lab, tmp_path_factory):
    path = tmp_path_factory.mktemp("fw") / "fw.nft"
    path.write_text(RULESET)
    # loose: conntrack picks up mid-stream connections, as Linux does by default; no flow table:
    # the file declares none, so Linux runs every packet through the chains (and counts it)
    stack_lab = rl.build_stack(lab, "fs", str(path), str(tmp_path_factory.mktemp("fstack")), loose=True,
                               flowtable=False)
    try:
        linux_lab = rl.build_linux(lab, "fk", str(path), str(tmp_path_factory.mktemp("flinux")))
        for nat in (stack_lab, linux_lab):  # no NAT here: the WAN host routes back to the LAN
            # quickack: both hosts acknowledge every segment at once, so a transfer is the same
            # packets through either router (delayed ACKs would depend on timing)
            lab.ip("-n", nat.wan, "route", "add", "192.168.77.0/24", "via", rl.WAN_GW, "quickack", "1")
            lab.ip("-n", nat.lan, "route", "replace", "default", "via", rl.LAN_GW, "quickack", "1")
            nat.web_server(nat.wan, rl.WAN_HOST, 80, rl.WAN_WEB_BODY, "web")
        yield [stack_lab, linux_lab]
    finally:
        stack_lab.stack.close()


def counters(nat) -> list:
    if nat.router is not None:
        rules = nat.router.ruleset.rules()
    else:
        listing = nat.lab.run(nat.rtr, "nft", "list", "ruleset", check=True).stdout
        # (elements rules added are listed with the time they have left, which a file cannot say)
        rules = loads(re.sub(r" expires [^ ,}]+", "", listing)).rules()
    return [(r.chain.name, r.format().split("counter")[0].strip(), r.counter.packets, r.counter.bytes)
            for r in rules if r.counter is not None]


def load_on_both(both, path) -> None:
    """The same nft file into the kernel router (nft -f) and into pynetstack, with conntrack
    emptied on both: no tuple an earlier test left (a ping's ICMP id is its pid, and pids repeat)."""
    stack_lab, linux_lab = both
    linux_lab.lab.run(linux_lab.rtr, "nft", "-f", str(path), check=True)
    stack_lab.router.load(path=str(path))
    for nat in both:
        nat.conntrack_flush()


def agreed_counters(stack_lab, linux_lab, leave_out=(), timeout: float = 15.0):
    """(ours, kernel) once both routers' counters agree and hold still, or as they are at
    ``timeout``. The kernel has counted a packet when the sender's syscall returns; the stack
    forwards in its own thread, which on a loaded machine (PyPy's GC, a second busy process) may
    still be working through the last packets when the traffic's command has exited. Counters
    only grow, so a stack that counts wrong never agrees and the caller's assertion fails."""
    def read():
        return tuple([c for c in counters(nat) if c[1] not in leave_out] for nat in (stack_lab, linux_lab))
    last = [None]

    def still_and_equal():
        now = read()
        steady, last[0] = now == last[0], now
        return steady and now[0] == now[1]
    wait_for(still_and_equal, timeout, interval=0.2)
    return last[0]


def _steps():
    """(name, run(nat)) for each kind of traffic; counters are compared after each."""
    def generator(nat):
        gen = nat.lan_run(sys.executable, "-c", GENERATOR, rl.WAN_HOST, timeout=30)
        assert gen.returncode == 0, gen.stderr
        return json.loads(gen.stdout)

    def curl(nat):
        got = rl.curl(nat, nat.lan, f"http://{rl.WAN_HOST}/")
        assert got.get("code") == 200 and got["body"] == rl.WAN_WEB_BODY, (nat.kind, got)

    def ping(nat):
        out = nat.lan_run("ping", "-c", "2", "-i", "0.2", "-W", "1", rl.WAN_HOST)
        assert " 2 received" in out.stdout, (nat.kind, out.stdout)

    def hping(nat):
        for flag in ("-S", "-F", "-A", "-X"):  # SYN, FIN, ACK and Xmas probes
            nat.lan_run("hping3", "-c", "1", flag, "-p", "8060", rl.WAN_HOST, timeout=10)

    def nmap(scan):
        def run(nat):
            ports = "T:79-82,8050,U:53,54,7777" if scan == "-sU" else "79-82,8050"
            result = nat.lan_run("nmap", "-n", "-Pn", scan, "-p", ports, "--max-retries", "0", "--host-timeout",
                                 "15s", "--scan-delay", "5ms", rl.WAN_HOST, timeout=30)
            assert result.returncode == 0, result.stderr
        return run
    return [("scapy generator", generator), ("ping", ping), ("hping3", hping)] + [
        (f"nmap {scan}", nmap(scan)) for scan in ("-sS", "-sT", "-sF", "-sA", "-sU")] + [("curl", curl)]


def test_same_traffic_same_counters_same_answers(both):
    answers = {}
    for name, step in _steps():
        for nat in both:
            out = step(nat)
            if out is not None:
                answers[nat.kind] = out
        # A download is not the same packets twice: the server's kernel sends its FIN with the
        # last data or after it, depending on the round-trip time (tcpdump shows both), so the
        # rules established segments reach (the first, the later chain's) may differ after curl.
        timing = ("ct state established,related", "tcp dport { 80, 9000 }", "") if name == "curl" else ()
        ours, kernel = agreed_counters(both[0], both[1], leave_out=timing)
        assert ours == kernel, f"after {name}:\n" + "\n".join(f"{a} | {b}" for a, b in zip(ours, kernel) if a != b)
    stack_answers, linux_answers = answers["stack"], answers["linux"]
    assert linux_answers[5] is not None and stack_answers[5] is not None, (stack_answers, linux_answers)
    # ICMP errors carry precedence 6 and the offending packet's TOS bits, as Linux sends them
    # (0xc0 | tos & 0x1e): probe 5 carries TOS 0x10
    assert stack_answers[5]["tos"] == linux_answers[5]["tos"] == 0xD0
    for i, (ours, kernel) in enumerate(zip(stack_answers, linux_answers)):
        assert ours == kernel, f"probe {i}: stack {ours} linux {kernel}"
    # reject with tcp reset: seq 0 and ack = seq + length for a segment without ACK, else seq = its
    # ack; a FIN without a connection is invalid to conntrack (dropped, no answer)
    assert [a and tuple(a["tcp"]) for a in linux_answers[:4]] == [("RA", 0, 1001, 0, 0), ("RA", 0, 2011, 0, 0),
                                                                 None, ("R", 0x12345678, 0, 0, 0)]
    assert [a and tuple(a["icmp"]) for a in linux_answers[4:8]] == [(3, 3), (3, 1), (3, 13), (0, 0)]


@pytest.mark.parametrize("name", ["host_firewall.nft", "lan_wan_router.nft", "protected_web_server.nft"])
def test_profiles_list_as_the_kernel_lists_them(lab, name):
    ns = lab.netns("fwnft" + re.sub(r"\W", "", name)[:6])
    path = os.path.join(EXAMPLES, name)
    loaded = lab.run(ns, "nft", "-f", path)
    assert loaded.returncode == 0, loaded.stderr
    assert load(path).list_ruleset() == lab.run(ns, "nft", "list", "ruleset", check=True).stdout


def test_nft_f_files_add_to_the_running_ruleset_as_the_kernels_do(lab, tmp_path):
    """Two ``nft -f`` in a row: the second file's chain gains a rule, a new chain joins the table,
    and a third file that starts with ``flush ruleset`` replaces everything."""
    from pynetstack.netfilter.router import _build, _file_source
    files = [_forward_text(["ct state established accept"]),
             "table ip t {\n\tchain c {\n\t\ttcp dport 22 drop\n\t}\n\tchain extra {\n\t\tcounter\n\t}\n}\n",
             "flush ruleset\ntable ip u {\n\tchain c {\n\t\ttype filter hook input priority 0; policy accept;\n\t}\n}\n"]
    ns = lab.netns("fwnftadd")
    sources = []
    for i, text in enumerate(files):
        path = tmp_path / f"{i}.nft"
        path.write_text(text)
        lab.run(ns, "nft", "-f", str(path), check=True)
        source = _file_source(str(path))
        sources = [source] if text.startswith("flush ruleset") else sources + [source]
        assert _build(sources).list_ruleset() == lab.run(ns, "nft", "list", "ruleset", check=True).stdout, i


RANDOM_PACKETS = r"""
import random, sys
from scapy.all import IP, TCP, UDP, ICMP, Raw, send, conf
conf.verb = 0
r = random.Random(int(sys.argv[2]))
CODE = int(sys.argv[4]) if len(sys.argv) > 4 else 0
dst = sys.argv[1]
ports = [22, 80, 443, 1, 53, 65535, 8080, 1000, 45000]
packets = []
for i in range(int(sys.argv[3])):
    kind = r.random()
    ip = IP(dst=dst, ttl=r.choice([64, 3, 200]), tos=r.choice([0, 0xb8, 0x20]))
    if kind < 0.5:
        l4 = TCP(sport=r.randint(20000, 60000), dport=r.choice(ports), seq=r.getrandbits(32),
                 flags=r.choice(["S", "S", "A", "SA", "F", "R", "PA", "FPU"]), ack=r.getrandbits(32))
    elif kind < 0.85:
        l4 = UDP(sport=r.randint(20000, 60000), dport=r.choice(ports))
    else:
        l4 = ICMP(type=r.choice([8, 8, 13, 0, 3]), code=CODE, id=r.randint(1, 60000))
    packets.append(ip / l4 / Raw(b"p" * r.choice([0, 10, 100, 1000])))
send(packets, inter=0.004)
"""


def _random_forward_ruleset(seed: int, lab, ns: str, tmp_path) -> str:
    """Random rules (the parser tests' generator) both nft and pynetstack accept, in a forward
    chain; no limit statements (their buckets depend on timing)."""
    from tests.netfilter.nftgen import random_rules
    good = []
    for rule in random_rules(seed, 40):
        if "limit" in rule or "iif" in rule.split()[0:1]:
            continue
        text = _forward_text([rule])
        try:
            loads(text)
        except ValueError:
            continue
        (tmp_path / "one.nft").write_text(text)
        if lab.run(ns, "nft", "-c", "-f", str(tmp_path / "one.nft")).returncode == 0:
            rule = _with_counter(rule)
            if not rule.startswith("counter"):  # a rule without a match would end the chain for all
                good.append(rule)
    return _forward_text(good)


def _with_counter(rule: str) -> str:
    """The rule with a counter right after its leading matches (what they let through)."""
    from pynetstack.netfilter.nft.expressions import Match
    items = loads(_forward_text([rule])).tables[("ip", "t")].chains["c"].rules[0].items
    if any(item.__class__.__name__ == "Counter" for item in items):
        return rule
    k = 0
    while k < len(items) and isinstance(items[k], Match):
        k += 1
    return " ".join([item.format() for item in items[:k]] + ["counter"] + [item.format() for item in items[k:]])


def _forward_text(rules) -> str:
    body = "".join(f"\t\t{rule}\n" for rule in rules)
    return ("table ip t {\n\tchain c {\n\t\ttype filter hook forward priority 0; policy accept;\n"
            f"{body}\t\tcounter\n\t}}\n\n\tchain sub {{\n\t\tcounter\n\t}}\n}}\n")


@pytest.mark.parametrize("seed", [11, 12])
def test_random_rulesets_count_random_packets_as_the_kernel_does(both, tmp_path, seed):
    stack_lab, linux_lab = both
    text = "flush ruleset\n" + _random_forward_ruleset(seed, linux_lab.lab, linux_lab.rtr, tmp_path)
    path = tmp_path / "random.nft"
    path.write_text(text)
    load_on_both(both, path)
    for nat in both:
        nat.lab.run(nat.wan, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", check=True)
        sent = nat.lan_run(sys.executable, "-c", RANDOM_PACKETS, rl.WAN_HOST, str(seed), "100", timeout=30)
        assert sent.returncode == 0, sent.stderr
    ours, kernel = agreed_counters(stack_lab, linux_lab)
    assert ours == kernel, "\n".join(f"{a} | {b}" for a, b in zip(ours, kernel) if a != b)
    assert len(kernel) > 10 and sum(1 for c in kernel if c[2]) >= 4, kernel  # the rules saw packets
    print(f"seed {seed}: {len(kernel)} counters, {sum(1 for c in kernel if c[2])} non-zero, "
          f"{sum(c[2] for c in kernel)} packets counted")


def test_icmp_query_code_is_in_the_conntrack_tuple_as_in_linux(both, tmp_path):
    """Linux puts an ICMP query's code in the conntrack tuple (so does ct_icmp.py): a timestamp
    request with code 3 and the kernel's answer (a timestamp reply with code 0) are not one flow,
    the answer is invalid.  Both routers count the same."""
    stack_lab, linux_lab = both
    path = tmp_path / "ct.nft"
    path.write_text("flush ruleset\n" + _forward_text(["ct state established counter", "ct state invalid counter"]))
    load_on_both(both, path)
    script = ("from scapy.all import IP, ICMP, Raw, send; import sys\n"
              "send(IP(dst=sys.argv[1])/ICMP(type=13, code=3, id=4242)/Raw(bytes(12)), verbose=0)\n")
    for nat in both:  # a timestamp request with code 3: Linux answers with a timestamp reply, code 0
        nat.lab.run(nat.wan, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", check=True)
        nat.lan_run(sys.executable, "-c", script, rl.WAN_HOST, timeout=30)
    ours, kernel = agreed_counters(stack_lab, linux_lab)
    assert ours == kernel and [c[2] for c in kernel[:2]] == [0, 1], (ours, kernel)


def test_network_firewall_rules_are_nft_rules_the_kernel_takes(lab, tmp_path):
    from pynetstack.netfilter.firewall import NetworkFirewall
    fw = NetworkFirewall(default_action="deny")
    fw.add_rule({"name": "Allow SSH from trusted networks", "action": "allow", "protocol": "tcp", "dst_port": "22",
                 "src_ip": "192.168.1.0/24"})
    fw.add_rule({"name": "web", "action": "allow", "protocol": "tcp", "dst_port": "80,443", "direction": "forward"})
    fw.add_rule({"name": "dns", "action": "reject", "protocol": "udp", "src_port": "53", "direction": "outbound"})
    fw.connection_limit(16)
    path = tmp_path / "fw.nft"
    path.write_text(fw.ruleset_text())
    ns = lab.netns("fwapi")
    loaded = lab.run(ns, "nft", "-f", str(path))
    assert loaded.returncode == 0, loaded.stderr
    assert load(str(path)).list_ruleset() == lab.run(ns, "nft", "list", "ruleset", check=True).stdout


HOST_PROBES = GENERATOR.split("probes = [")[0] + """probes = [
    IP(dst=dst)/TCP(sport=42001, dport=22, flags="S", seq=1000),
    IP(dst=dst)/TCP(sport=42002, dport=80, flags="S", seq=2000),
    IP(dst=dst)/TCP(sport=42003, dport=443, flags="S", seq=3000)/Raw(b"x" * 5),
    IP(dst=dst)/TCP(sport=42004, dport=80, flags="A", seq=4000, ack=99),
    IP(dst=dst)/UDP(sport=42005, dport=53)/Raw(b"q" * 8),
    IP(dst=dst)/ICMP(type=8, id=9, seq=1)/Raw(b"ping"),
    IP(dst=dst)/ICMP(type=13, id=10)/Raw(bytes(12)),
]
""" + "out = []" + GENERATOR.split("out = []")[1]


def test_host_firewall_profile_answers_as_the_kernel_does(lab):
    """examples/host_firewall.nft on the stack as a host and on a Linux host: the same answers."""
    from pynetstack.link.tap import TapDevice
    from pynetstack.netfilter.router import install_router
    from pynetstack.stack import Stack
    path = os.path.join(EXAMPLES, "host_firewall.nft")
    answers = {}
    client = lab.netns("fwhc")
    stack = Stack()
    try:
        stack.add_interface(TapDevice("fwh0", host_address="10.99.45.1/24", netns=client, offload=False),
                            "10.99.45.2/24")
        router = install_router(stack, ruleset_path=path, loose=True, flowtable=False)
        stack.start_background()
        answers["stack"] = json.loads(lab.run(client, sys.executable, "-c", HOST_PROBES, "10.99.45.2",
                                              check=True, timeout=30).stdout)
        ours = [(r.format().split("counter")[0].strip(), r.counter.packets) for r in router.ruleset.rules()
                if r.counter is not None]
    finally:
        stack.close()
    client2, host = lab.netns("fwhk"), lab.netns("fwhh")
    lab.veth(client2, "eth0", host, "eth0", address_a="10.99.45.1/24", address_b="10.99.45.2/24")
    lab.run(host, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", check=True)
    lab.run(host, "nft", "-f", path, check=True)
    answers["linux"] = json.loads(lab.run(client2, sys.executable, "-c", HOST_PROBES, "10.99.45.2",
                                          check=True, timeout=30).stdout)
    # (the kernel lists the meter's elements with their buckets and expiry: not loadable here)
    lab.run(host, "nft", "flush", "set", "inet", "host", "ssh_meter", check=True)
    kernel = [(r.format().split("counter")[0].strip(), r.counter.packets)
              for r in loads(lab.run(host, "nft", "list", "ruleset", check=True).stdout).rules()
              if r.counter is not None]
    assert answers["stack"] == answers["linux"], answers
    assert [a and (a.get("tcp") or a.get("icmp")) for a in answers["linux"]][:6] == [
        ["RA", 0, 1001, 0, 0], ["RA", 0, 2001, 0, 0], ["RA", 0, 3006, 0, 0], ["R", 99, 0, 0, 0], [3, 3], [0, 0]]
    assert ours == kernel


TRACE_RULES = """\
flush ruleset
table ip t {
	chain pre {
		type filter hook prerouting priority raw; policy accept;
		icmp type echo-request meta nftrace set 1
	}

	chain fw {
		type filter hook forward priority filter; policy accept;
		ip protocol icmp jump check
		icmp type echo-request accept
	}

	chain check {
		icmp type echo-reply accept
		ip length 100 return
	}
}
"""


def _trace_steps(lines) -> list:
    """The rule, verdict and policy events of trace lines, without the trace id and the packet
    lines (the kernel's packet line also shows link-layer and IP header fields ours leaves out)."""
    steps = []
    for line in lines:
        words = line.split()
        if len(words) > 4 and words[0] == "trace" and words[4] != "packet:" and " packet: " not in line:
            steps.append(" ".join(words[3:]))
    return steps


def test_nft_monitor_trace_shows_what_the_kernels_shows(both, tmp_path):
    """``meta nftrace set 1`` in a raw chain, then ``nft monitor trace`` while a ping crosses the
    router: the kernel's monitor and the stack's print the same rule and verdict events."""
    stack_lab, linux_lab = both
    path = tmp_path / "trace.nft"
    path.write_text(TRACE_RULES)
    load_on_both(both, path)
    ours: list = []
    stack_lab.router.trace_monitor.subscribers.append(ours.append)
    monitor = linux_lab.lab.popen(linux_lab.rtr, "timeout", "4", "nft", "monitor", "trace", text=True)
    time.sleep(1.0)  # the monitor subscribes
    for nat in both:  # 84 bytes: the end of the jumped-to chain; 100 bytes: its return rule
        for size in ("56", "72"):
            out = nat.lan_run("ping", "-c", "1", "-s", size, "-W", "2", rl.WAN_HOST)
            assert " 1 received" in out.stdout, (nat.kind, out.stdout)
    kernel, _ = monitor.communicate(timeout=15)
    stack_lab.router.trace_monitor.subscribers.remove(ours.append)
    print("kernel:\n" + kernel + "\nstack:\n" + "\n".join(ours))
    assert _trace_steps(ours) == _trace_steps(kernel.splitlines()) != []


METER_RULES = """\
flush ruleset
table ip t {
	set udp_meter {
		type ipv4_addr
		size 65535
		flags dynamic,timeout
		timeout 30s
	}

	chain c {
		type filter hook forward priority filter; policy accept;
		meta l4proto udp add @udp_meter { ip saddr limit rate over 10/second } counter drop
	}
}
"""


def test_dynamic_set_elements_list_as_the_kernel_lists_them(both, tmp_path):
    """A rule adds the LAN host to a dynamic set with its own limit; ``nft list ruleset`` shows
    the element with its statement and the time it has left (compared up to that time)."""
    stack_lab, linux_lab = both
    path = tmp_path / "meter.nft"
    path.write_text(METER_RULES)
    load_on_both(both, path)
    script = "from scapy.all import IP, UDP, send; import sys\nsend(IP(dst=sys.argv[1])/UDP(dport=9999), verbose=0)\n"
    for nat in both:
        nat.lan_run(sys.executable, "-c", script, rl.WAN_HOST, timeout=30)

    def listed():  # the stack's thread adds the element when it gets to the datagram
        with stack_lab.stack.lock:
            text = stack_lab.router.ruleset.list_ruleset(now=stack_lab.stack.now())
        return text if "elements = " in text else ""
    ours = wait_for(listed, timeout=10)
    kernel = linux_lab.lab.run(linux_lab.rtr, "nft", "list", "ruleset", check=True).stdout

    def untimed(text):
        return re.sub(r"expires \S+", "expires T", text)
    assert f"elements = {{ {rl.LAN_HOST} limit rate over 10/second expires " in kernel, kernel
    assert untimed(ours) == untimed(kernel), ours + "\n" + kernel


STATE_RULES = """\
flush ruleset
table ip t {
	set seen {
		type ipv4_addr
		size 1024
		flags dynamic,timeout
		timeout 1m
	}

	chain c {
		type filter hook forward priority filter; policy accept;
		icmp type echo-request quota 168 bytes counter
		icmp type echo-request update @seen { ip saddr } counter
		icmp type echo-request limit rate 1/minute burst 3 packets counter accept
		icmp type echo-request counter drop
		counter
	}
}
"""


def test_nft_f_keeps_counters_limits_and_set_elements_as_the_kernel_does(both, tmp_path):
    """Load a ruleset, ping through it, ``nft -f`` a file that adds a rule, ping again: the kernel
    keeps every old rule's counter, its quota's use, its limit's tokens and the set's element; so
    does the stack."""
    stack_lab, linux_lab = both
    first, more = tmp_path / "state.nft", tmp_path / "more.nft"
    first.write_text(STATE_RULES)
    more.write_text("add rule ip t c tcp dport 7 counter\n")
    load_on_both(both, first)

    def ping(count):
        for nat in both:
            nat.lan_run("ping", "-c", str(count), "-i", "0.2", "-W", "1", rl.WAN_HOST)
        agreed_counters(stack_lab, linux_lab)
    ping(2)
    linux_lab.lab.run(linux_lab.rtr, "nft", "-f", str(more), check=True)
    stack_lab.router.apply(str(more))
    ping(3)
    ours, kernel = agreed_counters(stack_lab, linux_lab)
    print("kernel:", kernel)
    assert ours == kernel, "\n".join(f"{a} | {b}" for a, b in zip(ours, kernel) if a != b)
    assert kernel[1][2] == 5, "the kernel kept the counter across nft -f"
    assert kernel[0][1:3] == ("icmp type echo-request quota 168 bytes used 168 bytes", 2), "and the quota's use"
    with stack_lab.stack.lock:
        listing = stack_lab.router.ruleset.list_ruleset(now=stack_lab.stack.now())
    kernel_listing = linux_lab.lab.run(linux_lab.rtr, "nft", "list", "ruleset", check=True).stdout

    def elements(text):
        return re.sub(r"expires \S+", "expires T", text.split("elements = ")[1].split("}")[0])
    assert elements(listing) == elements(kernel_listing) == f"{{ {rl.LAN_HOST} expires T "


BAD_CHECKSUMS = r"""
import sys
from scapy.all import IP, TCP, UDP, ICMP, Raw, send, conf
conf.verb = 0
dst = sys.argv[1]
send([IP(dst=dst)/TCP(sport=42001, dport=80, flags="S", chksum=0x1234),
      IP(dst=dst)/UDP(sport=42002, dport=7777, chksum=0x1234)/Raw(b"u" * 10),
      IP(dst=dst)/ICMP(type=8, id=4343, chksum=0x1234)/Raw(b"ping"),
      IP(dst=dst)/UDP(sport=42003, dport=7777, chksum=0)/Raw(b"no checksum"),
      IP(dst=dst)/ICMP(type=8, id=4344)/Raw(b"ping")], inter=0.05)
"""


def test_bad_transport_checksums_are_ct_state_invalid_as_in_the_kernel(both, tmp_path):
    """nf_conntrack_checksum=1 (the default): a TCP SYN, a UDP datagram and an echo request with
    bad checksums are invalid on both routers; UDP without a checksum and a good echo are new."""
    stack_lab, linux_lab = both
    path = tmp_path / "ck.nft"
    path.write_text("flush ruleset\n" + _forward_text(["ct state invalid counter drop", "ct state new counter"]))
    load_on_both(both, path)
    for nat in both:
        sent = nat.lan_run(sys.executable, "-c", BAD_CHECKSUMS, rl.WAN_HOST, timeout=30)
        assert sent.returncode == 0, sent.stderr
    ours, kernel = agreed_counters(stack_lab, linux_lab)
    assert ours == kernel, (ours, kernel)
    assert [c[2] for c in kernel[:2]] == [3, 2], kernel
