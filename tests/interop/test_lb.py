"""The load balancer between real Linux hosts: a client namespace, three real-server namespaces
on one bridge, the stack as the balancer in between, and curl through it.

    client 10.0.0.2 --TAP-- 10.0.0.1 [stack] 10.0.1.1 --veth-- bridge -- rs1 10.0.1.2
                                                                       -- rs2 10.0.1.3
                                                                       -- rs3 10.0.1.4

Each real server is a small Python web server answering with its name and the address it was reached at (its own
for NAT, the virtual address for direct routing).  The counts are the ones IPVS's rules give
(read from the kernel's ip_vs_*.c).  Linux IPVS itself cannot be the oracle here: this kernel has
no IPVS; tests/interop/ipvs_oracle.py runs that comparison on a kernel that has it.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter

import pytest

from pynetstack import lab as labmod
from pynetstack.lb import HealthCheckConfig, VirtualService, install_lb
from pynetstack.link.packet import PacketDevice
from pynetstack.link.tap import TapDevice
from pynetstack.stack import Stack

VIP = "10.0.9.100"
SERVERS = ("10.0.1.2", "10.0.1.3", "10.0.1.4")
TOOLS = {"curl": "curl"}
# A small web server that names itself and the address it was reached at (reads the whole
# request before it answers, so the kernel never resets a connection with unread data)
WEB_SERVER = """
import http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("%s %s\\n" % (sys.argv[1], self.connection.getsockname()[0])).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 80), Handler).serve_forever()
"""


class LbLab:
    def __init__(self, lab):
        self.lab = lab
        self.cli = lab.netns("cli")
        self.sw = lab.netns("sw")
        self.rs = [lab.netns(f"rs{i + 1}") for i in range(3)]
        self.web = {}
        lab.ip("-n", self.sw, "link", "add", "br0", "type", "bridge")
        lab.ip("-n", self.sw, "link", "set", "br0", "up")
        for i, ns in enumerate(self.rs):
            lab.veth(ns, "eth0", self.sw, f"rs{i + 1}p", address_a=f"{SERVERS[i]}/24")
            lab.ip("-n", self.sw, "link", "set", f"rs{i + 1}p", "master", "br0")
            lab.ip("-n", ns, "route", "add", "default", "via", "10.0.1.1")
            # direct routing: the servers hold the VIP but never answer ARP for it
            lab.ip("-n", ns, "addr", "add", f"{VIP}/32", "dev", "lo")
            for key, value in (("arp_ignore", "1"), ("arp_announce", "2")):
                lab.run(ns, "sysctl", "-qw", f"net.ipv4.conf.all.{key}={value}", check=True)
            self.start_web(i)
        lab.veth(self.sw, "lbs0", self.sw, "lbp0")
        lab.ip("-n", self.sw, "link", "set", "lbp0", "master", "br0")
        self.stack = Stack(forwarding=True)
        self.stack.add_interface(TapDevice("lbtap0", host_address="10.0.0.2/24", netns=self.cli, offload=False),
                                 "10.0.0.1/24", name="cli0")
        self.stack.add_interface(PacketDevice("lbs0", promiscuous=True, netns=self.sw), "10.0.1.1/24", name="srv0")
        lab.ip("-n", self.cli, "route", "add", "10.0.9.0/24", "via", "10.0.0.1")
        self.lb = install_lb(self.stack)
        self.stack.start_background()
        for i in range(3):
            self.wait_listening(i)

    def start_web(self, i: int) -> None:
        self.web[i] = self.lab.popen(self.rs[i], sys.executable, "-c", WEB_SERVER, f"rs{i + 1}")

    def stop_web(self, i: int) -> None:
        process = self.web.pop(i)
        os.killpg(process.pid, 15)
        process.wait(5)

    def wait_listening(self, i: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.lab.run(self.rs[i], "ss", "-ltnH", "sport = :80").stdout.strip():
                return
            time.sleep(0.05)
        raise AssertionError(f"rs{i + 1}'s web server does not listen")

    def service(self, scheduler: str, weights=(1, 1, 1), forward: str = "nat", health=None) -> VirtualService:
        with self.stack.lock:
            for key in list(self.lb.services):
                self.lb.remove_service(*key)
            service = VirtualService("tcp", VIP, 80, scheduler=scheduler, forward=forward)
            service.health = health
            for address, weight in zip(SERVERS, weights):
                service.add_server(address, 80, weight=weight)
            self.lb.add_service(service)
        self.stack.wake()
        return service

    def curl(self, n: int, max_time: float = 10.0):
        """``n`` requests one after the other; the answers (empty for a failure)."""
        script = f"for i in $(seq {n}); do curl -s --max-time {max_time} http://{VIP}/ || echo FAILED; done"
        out = self.lab.run(self.cli, "sh", "-c", script, timeout=n * max_time + 10).stdout
        return [line.strip() for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def lblab():
    reason = labmod.can_run() or (", ".join(labmod.missing_tools(TOOLS)) or None)
    if reason:
        pytest.skip(reason)
    with labmod.Lab("lb") as lab:
        the_lab = LbLab(lab)
        try:
            yield the_lab
        finally:
            the_lab.stack.close()


def names(answers):
    return Counter(a.split()[0] for a in answers)


@pytest.mark.parametrize("scheduler, weights, n, expected", [
    ("rr", (1, 1, 1), 30, {"rs1": 10, "rs2": 10, "rs3": 10}),
    ("wrr", (1, 2, 3), 30, {"rs1": 5, "rs2": 10, "rs3": 15}),
    # sequential connections are all inactive when the next arrives: overhead = inactive count
    ("lc", (1, 1, 1), 30, {"rs1": 10, "rs2": 10, "rs3": 10}),
    ("wlc", (1, 1, 2), 32, {"rs1": 8, "rs2": 8, "rs3": 16}),
])
def test_spread_through_the_stack_matches_the_ipvs_rules(lblab, scheduler, weights, n, expected):
    service = lblab.service(scheduler, weights)
    answers = lblab.curl(n)
    assert names(answers) == Counter(expected), answers
    # NAT: the servers were reached at their own addresses; counts as ipvsadm would show them
    assert all(a.split()[1] in SERVERS for a in answers)
    assert sum(s.stats.conns for s in service.servers) == n


@pytest.mark.parametrize("scheduler", ["sh", "dh", "mh"])
def test_hashing_schedulers_keep_the_client_on_one_server(lblab, scheduler):
    lblab.service(scheduler)
    got = names(lblab.curl(10))
    assert len(got) == 1 and "FAILED" not in got, got


def test_direct_routing_servers_are_reached_at_the_vip(lblab):
    lblab.service("rr", forward="dr")
    answers = lblab.curl(6)
    assert names(answers) == Counter({"rs1": 2, "rs2": 2, "rs3": 2}), answers
    assert all(a.split()[1] == VIP for a in answers)  # only the MAC was rewritten


def test_draining_weight_zero(lblab):
    service = lblab.service("rr")
    with lblab.stack.lock:
        service.edit_server(SERVERS[0], 80, weight=0)
    got = names(lblab.curl(6))
    assert got == Counter({"rs2": 3, "rs3": 3}), got


def test_health_check_takes_a_stopped_server_out_and_back(lblab):
    # timeout 2 s (the interval by default): a check answered in over 0.5 s by a Python web server
    # on a loaded machine is not a server going down; a stopped one answers with a reset at once.
    # The timings themselves are tested on the virtual clock (tests/lb/test_health.py); here the
    # waits are generous bounds on a server going out and coming back.
    health = HealthCheckConfig("http", interval=0.5, timeout=2.0, rise=2, fall=3)
    service = lblab.service("rr", health=health)
    time.sleep(1.0)  # a few checks pass: it stays up
    rs1 = service.find(SERVERS[0], 80)
    assert rs1.up, lblab.lb.health.check_of(rs1).last
    lblab.stop_web(0)
    deadline = time.monotonic() + 3 * 0.5 + 10.0
    while rs1.up and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not rs1.up, lblab.lb.health.check_of(rs1).last
    answers = lblab.curl(6)
    assert names(answers) == Counter({"rs2": 3, "rs3": 3}), answers  # none reach it, none fail
    lblab.start_web(0)
    lblab.wait_listening(0)
    deadline = time.monotonic() + 2 * 0.5 + 10.0
    while not rs1.up and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rs1.up
    assert "rs1" in names(lblab.curl(3))
