"""`pynetstack up` as a router from a TOML file and an nft file, run in a namespace between a LAN
and a WAN namespace (veth, AF_PACKET), asked with `route`, `conntrack` and `nft` like the Linux
tools; bad files get one clear error and no stack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from .waiting import listening, wait_for

RULES = """\
define LAN = 192.168.88.0/24
table ip nat {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "wan0" udp dport 5353 dnat to 192.168.88.2:7
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr $LAN oifname "wan0" counter masquerade
	}
}
table ip raw {
	chain prerouting {
		type filter hook prerouting priority raw; policy accept;
		icmp type echo-request ip length 100 meta nftrace set 1
	}
}
"""
CONFIG = """\
[stack]
forwarding = true

[[interface]]
interface = "pnsc-l1"
name = "lan0"
address = "192.168.88.1/24"

[[interface]]
interface = "pnsc-w1"
name = "wan0"
address = "198.51.100.1/24"

[[route]]
destination = "192.0.2.0/24"
type = "prohibit"

[netfilter]
ruleset = "router.nft"

[services]
udp_echo = false
tcp_echo = false
discard = false
http = false
"""


class Stream:
    """A streaming ``pynetstack`` command (``conntrack -E``, ``nft monitor trace``) read as it prints.

    A new Python process (PyPy on the PyPy half of CI, on a loaded machine) may take seconds to
    import and subscribe, and nothing says when it has: ``until`` makes traffic again and again
    until the wanted line shows, within a generous bound, instead of one ping after a fixed sleep."""

    def __init__(self, lab, ns, *argv, env):
        self.process = lab.popen(ns, sys.executable, "-m", "pynetstack", *argv, env=env)
        self.chunks = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for chunk in iter(lambda: os.read(self.process.stdout.fileno(), 65536), b""):
            self.chunks.append(chunk)

    def text(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")

    def until(self, traffic, wanted, timeout: float = 30.0) -> bool:
        """Make ``traffic`` (again each second) until ``wanted(text)`` holds or ``timeout`` is up."""
        end = time.monotonic() + timeout
        while True:
            traffic()
            if wait_for(lambda: wanted(self.text()), timeout=1.0) or time.monotonic() >= end:
                return wanted(self.text())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=15)
        self.reader.join(5)


def _cli(lab, ns, *argv, env, **kwargs):
    return lab.run(ns, sys.executable, "-m", "pynetstack", *argv, env=env, **kwargs)


def test_router_from_toml_and_nft(lab, tmp_path):
    lan, rtr, wan = lab.netns("clan"), lab.netns("crtr"), lab.netns("cwan")
    lab.veth(lan, "pnsc-l0", rtr, "pnsc-l1", address_a="192.168.88.2/24")
    lab.veth(wan, "pnsc-w0", rtr, "pnsc-w1", address_a="198.51.100.2/24")
    lab.ip("-n", lan, "route", "add", "default", "via", "192.168.88.1")
    (tmp_path / "router.nft").write_text(RULES)
    (tmp_path / "router.toml").write_text(CONFIG)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    control = str(tmp_path / "router.sock")
    process = lab.popen(rtr, sys.executable, "-m", "pynetstack", "up", "--config", str(tmp_path / "router.toml"),
                        "--control", control, env=env)
    # (30 s: a new PyPy process importing the package and parsing its files on a loaded machine)
    assert wait_for(lambda: os.path.exists(control), timeout=30), "the router never made its control socket"
    try:
        result = lab.run(lan, "ping", "-c", "2", "-i", "0.2", "-W", "2", "198.51.100.2")
        assert "2 received" in result.stdout, result.stdout + result.stderr
        # a UDP echo server on the LAN host, reached from the WAN through the port forward
        echo = lab.popen(lan, "socat", "UDP4-RECVFROM:7,fork", "EXEC:cat")
        assert wait_for(listening(lab, lan, 7, udp=True)), "socat not listening"
        reply = lab.run(wan, "socat", "-T", "2", "-", "UDP4:198.51.100.1:5353", input="forwarded\n")
        assert reply.stdout == "forwarded\n", reply.stderr
        echo.terminate()

        listing = _cli(lab, rtr, "conntrack", "-L", "--control", control, env=env)
        assert listing.returncode == 0, listing.stderr
        assert "dport=5353 src=192.168.88.2 dst=198.51.100.2 sport=7" in listing.stdout, listing.stdout
        assert "flow entries have been shown" in listing.stdout

        ruleset = _cli(lab, rtr, "nft", "list", "ruleset", "--control", control, env=env)
        assert 'ip saddr 192.168.88.0/24 oifname "wan0" counter packets 1 bytes 84 masquerade' in ruleset.stdout, \
            ruleset.stdout

        # each ping is a new flow: a NEW event once the listener has registered
        with Stream(lab, rtr, "conntrack", "-E", "--control", control, env=env) as events:
            assert events.until(lambda: lab.run(lan, "ping", "-c", "1", "-p", "aa", "-W", "2", "198.51.100.2"),
                                lambda out: "[NEW] icmp     1 " in out), events.text()
        out = events.text()
        assert "[NEW] icmp     1 " in out and "dst=198.51.100.2 type=8" in out, out

        # nft monitor trace: the echo request a rule marked with meta nftrace, chain by chain
        traced = "ip raw prerouting rule icmp type echo-request ip length 100 meta nftrace set 1 (verdict continue)"

        def pings():
            lab.run(lan, "ping", "-c", "1", "-W", "2", "198.51.100.2")  # 84 bytes: not traced
            lab.run(lan, "ping", "-c", "1", "-s", "72", "-W", "2", "198.51.100.2")  # 100 bytes: traced
        with Stream(lab, rtr, "nft", "monitor", "trace", "--control", control, env=env) as trace:
            assert trace.until(pings, lambda out: traced in out), trace.text()
            # subscribed for certain now: both pings once more (an 84-byte one surely while it
            # listens), the traced one's lines last
            seen = trace.text().count(traced)
            pings()
            assert wait_for(lambda: trace.text().count(traced) > seen, timeout=15), trace.text()
        out = trace.text()
        assert traced in out and "ip raw prerouting policy accept" in out, out
        assert "ip length 100" in out and "ip length 84" not in out, out

        route = _cli(lab, rtr, "route", "get", "192.0.2.7", "--control", control, env=env)
        assert route.returncode == 1 and "Permission denied" in route.stderr
        route = _cli(lab, rtr, "route", "get", "198.51.100.9", "--control", control, env=env)
        assert route.stdout.strip() == "198.51.100.9 dev wan0 src 198.51.100.1 uid 0", route.stdout
        # a prohibit route answers like Linux: ICMP administratively prohibited
        result = lab.run(lan, "ping", "-c", "1", "-W", "2", "192.0.2.7")
        assert "Packet filtered" in result.stdout or "Communication prohibited" in result.stdout, result.stdout

        # replace the ruleset on the running stack (as with Linux's nft -f, the file flushes what
        # runs first): masquerade gone, the LAN is cut off from the WAN
        (tmp_path / "new.nft").write_text("flush ruleset\ntable ip filter {\n\tchain forward {\n\t\ttype filter hook forward "
                                          "priority filter; policy drop;\n\t}\n}\n")
        loaded = _cli(lab, rtr, "nft", "-f", str(tmp_path / "new.nft"), "--control", control, env=env)
        assert loaded.returncode == 0, loaded.stderr
        result = lab.run(lan, "ping", "-c", "1", "-W", "1", "198.51.100.2")
        assert "0 received" in result.stdout
        ruleset = _cli(lab, rtr, "nft", "list", "ruleset", "--control", control, env=env)
        assert "policy drop" in ruleset.stdout and "masquerade" not in ruleset.stdout

        # a broken file is refused with nft's message, and the running ruleset stays
        (tmp_path / "broken.nft").write_text("table ip filter {\n\tchain forward {\n\t\tip saddr 10.0.0.300 drop\n\t}\n}\n")
        broken = _cli(lab, rtr, "nft", "-f", str(tmp_path / "broken.nft"), "--control", control, env=env)
        assert broken.returncode == 1 and "broken.nft:3:" in broken.stderr and "Traceback" not in broken.stderr
        ruleset = _cli(lab, rtr, "nft", "list", "ruleset", "--control", control, env=env)
        assert "policy drop" in ruleset.stdout
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.communicate(timeout=10)


def test_bad_ruleset_stops_the_stack_before_it_starts(lab, tmp_path):
    (tmp_path / "router.nft").write_text(RULES.replace("masquerade", "masqerade"))
    (tmp_path / "router.toml").write_text(CONFIG)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    result = subprocess.run([sys.executable, "-m", "pynetstack", "up", "--config", str(tmp_path / "router.toml")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=30)
    assert result.returncode == 2
    assert "router.nft:9:" in result.stderr and "masqerade" in result.stderr and "Traceback" not in result.stderr
    assert "pnsc-l1" not in subprocess.run(["ip", "link"], stdout=subprocess.PIPE, text=True).stdout


def test_bad_route_config_names_the_key(lab, tmp_path):
    (tmp_path / "router.nft").write_text(RULES)
    (tmp_path / "router.toml").write_text(CONFIG.replace('type = "prohibit"', 'type = "prohibited"'))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    result = subprocess.run([sys.executable, "-m", "pynetstack", "up", "--config", str(tmp_path / "router.toml")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=30)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "route #1: type must be one of unicast, blackhole, unreachable, prohibit, throw" in result.stderr, \
        result.stderr
