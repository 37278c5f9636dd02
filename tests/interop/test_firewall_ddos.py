"""DDoS defence between real hosts: pynetstack routes between a WAN and a web server on its LAN
(routerlab.py's stack build), with the SYN proxy and per-source meters.  A 10-second spoofed
SYN flood (hping3 --rand-source) runs while a client downloads from the server: the download
completes, no flood SYN reaches the server (tcpdump on its interface), the proxy and conntrack
hold only the real connection's state; and a ping flood from one source is limited to its
configured rate within 5 %."""

from __future__ import annotations

import os
import re
import time

import pytest

from pynetstack.net.hooks import ACCEPT, NetworkFunction
from pynetstack.netfilter.synproxy import SynProxy
from pynetstack.wire.addr import ip_to_int

from . import routerlab as rl

ICMP_RATE = 50  # per second, per source
RULES = f"""\
table ip web {{
	set icmp_meter {{
		type ipv4_addr
		size 1024
		flags dynamic,timeout
		timeout 10s
	}}

	chain forward {{
		type filter hook forward priority filter; policy drop;
		ip daddr {rl.LAN_HOST} icmp type echo-request add @icmp_meter {{ ip saddr limit rate over {ICMP_RATE}/second }} counter drop
		ip daddr {rl.LAN_HOST} icmp type echo-request counter accept
		ct state established,related accept
		ip daddr {rl.LAN_HOST} tcp dport 80 counter accept
		ip saddr {rl.LAN_HOST} accept
	}}
}}
"""
SIZE = 8_000_000


@pytest.fixture(scope="module")
def web(lab, tmp_path_factory):
    if rl.missing_tools() or not os.path.exists("/usr/sbin/hping3"):
        pytest.fail("the DDoS lab needs: " + ", ".join(rl.missing_tools() + ["hping3"]))
    path = tmp_path_factory.mktemp("ddos") / "web.nft"
    path.write_text(RULES)
    nat = rl.build_stack(lab, "dd", str(path), str(tmp_path_factory.mktemp("ddstack")))
    try:
        proxy = nat.stack.register(SynProxy(servers=[rl.LAN_HOST], ports=[80]))
        lab.ip("-n", nat.wan, "route", "add", "192.168.77.0/24", "via", rl.WAN_GW)
        root = tmp_path_factory.mktemp("ddweb")
        (root / "big").write_bytes(os.urandom(SIZE))
        (root / "index.html").write_text("ok\n")
        with open(root / "log", "w") as log:
            lab.popen(nat.lan, "python3", "-m", "http.server", "80", "--bind", rl.LAN_HOST, "--directory",
                      str(root), stdout=log, stderr=log)
        rl.wait_listening(lab, nat.lan, "tcp", 80)
        yield nat, proxy
    finally:
        nat.stack.close()


def test_spoofed_syn_flood_never_reaches_the_server_while_a_download_completes(web):
    nat, proxy = web
    spoofed = rl.Capture(nat.lab, nat.lan, "eth0", f"tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack == 0 "
                         f"and not src host {rl.WAN_HOST}", timeout=20)
    flood = nat.lab.popen(nat.wan, "timeout", "10", "hping3", "-q", "-S", "-p", "80", "--rand-source", "-i", "u400",
                          rl.LAN_HOST)
    time.sleep(1.0)  # the flood is on
    started = time.monotonic()
    got = nat.wan_run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", "--max-time", "30",
                      f"http://{rl.LAN_HOST}/big", timeout=40)
    took = time.monotonic() - started
    flood.wait(timeout=20)
    assert got.stdout.split() == ["200", str(SIZE)], (got.stdout, got.stderr)
    assert spoofed.stop() == [], "flood SYNs reached the server"
    stats = proxy.stats()
    assert stats["syn-answered"] > 5000, stats  # the flood was real (about 2,500 a second)
    assert stats["handshakes"] >= 1 and stats["flows"] <= 3, stats
    assert len(nat.router.conntrack_list()) <= 5, nat.router.conntrack_list()
    print(f"download of {SIZE} bytes in {took:.1f} s under a flood; proxy: {stats}")


class EchoRequestClock(NetworkFunction):
    """Notes the stack's clock at the first and the last echo request it forwards: the limiter
    counts on that clock, so the window it was asked to hold is measured on it too."""

    name = "echo-request-clock"
    hooks = (("forward", -300),)

    def __init__(self, daddr: str):
        self.daddr = ip_to_int(daddr)
        self.first = self.last = None

    def process(self, ctx):
        if ctx.icmp_type == 8 and ctx.ip.dst == self.daddr:
            if self.first is None:
                self.first = ctx.now
            self.last = ctx.now
        return ACCEPT


def test_one_source_is_limited_to_its_rate(web):
    nat, _ = web
    table = nat.router.ruleset.tables[("ip", "web")]
    accept = table.chains["forward"].rules[1]  # before "ct state established": ping keeps one ICMP id
    clock = nat.stack.register(EchoRequestClock(rl.LAN_HOST))
    try:
        before = accept.counter.packets
        ping = nat.lab.run(nat.wan, "ping", "-q", "-c", "800", "-i", "0.005", "-W", "1", rl.LAN_HOST, timeout=30)
    finally:
        with nat.stack.lock:
            nat.stack.host.hooks.unregister(clock)
    sent = int(re.search(r"(\d+) packets transmitted", ping.stdout).group(1))
    passed = accept.counter.packets - before
    took = clock.last - clock.first
    # the burst of 5 at the first request, then ICMP_RATE a second from the first request to the last
    expected = min(sent, 5 + ICMP_RATE * took)
    assert abs(passed - expected) <= 0.05 * expected, (passed, expected, took, ping.stdout)
    assert sent > passed * 2  # it was a flood, and it was cut
    print(f"one source: {sent} pings in {took:.2f} s on the stack's clock, {passed} passed, {expected:.0f} "
          f"expected at {ICMP_RATE}/s")
