"""The stack as a router between real Linux hosts: a LAN namespace behind a TAP, a WAN namespace
behind a veth the stack reaches through AF_PACKET.  The kernel's own tools confirm it."""

from __future__ import annotations

import re

import pytest

from .routerlab import stack_router
from .waiting import listening, wait_for

LAN_HOST, LAN_STACK = "192.168.77.2", "192.168.77.1"
WAN_HOST, WAN_STACK = "198.51.100.2", "198.51.100.1"


class RouterLab:
    def __init__(self, lab, stack, lan, wan, rtr):
        self.lab, self.stack, self.lan, self.wan, self.rtr = lab, stack, lan, wan, rtr

    def lan_run(self, *argv, **kwargs):
        return self.lab.run(self.lan, *argv, **kwargs)

    def wan_run(self, *argv, **kwargs):
        return self.lab.run(self.wan, *argv, **kwargs)


@pytest.fixture(scope="module")
def router_lab(lab):
    lan = lab.netns("rlan")
    wan = lab.netns("rwan")
    rtr = lab.netns("rrtr")
    stack = stack_router(lab, lan, wan, rtr, (LAN_HOST, LAN_STACK), (WAN_HOST, WAN_STACK), tap="pnsrl0",
                         veth=("pnsrw0", "pnsrw1"), route_back="192.168.77.0/24")
    stack.start_background()
    try:
        yield RouterLab(lab, stack, lan, wan, rtr)
    finally:
        stack.close()


def _received(output: str) -> int:
    match = re.search(r"(\d+) (?:packets )?received", output)
    return int(match.group(1)) if match else -1


def test_ping_through_the_router(router_lab):
    result = router_lab.lan_run("ping", "-c", "3", "-i", "0.2", "-W", "2", WAN_HOST)
    assert _received(result.stdout) == 3, result.stdout + result.stderr
    # the kernel on the WAN side saw one hop: its reply arrives with TTL 64 - 1
    assert "ttl=63" in result.stdout


def test_ttl_expiry_is_reported_by_the_router(router_lab):
    result = router_lab.lan_run("ping", "-c", "1", "-t", "1", "-W", "2", WAN_HOST)
    assert f"From {LAN_STACK}" in result.stdout and "Time to live exceeded" in result.stdout, result.stdout


def test_an_absent_wan_host_is_reported_host_unreachable(router_lab):
    # A Linux router answers ICMP host unreachable once ARP for the next hop gives up (3 s)
    result = router_lab.lan_run("ping", "-c", "1", "-W", "8", "198.51.100.77", timeout=20)
    assert f"From {LAN_STACK}" in result.stdout and "Destination Host Unreachable" in result.stdout, result.stdout


def test_tcp_through_the_router(router_lab):
    server = router_lab.lab.popen(router_lab.wan, "socat", "-u", "TCP-LISTEN:5001,reuseaddr", "SYSTEM:wc -c")
    assert wait_for(listening(router_lab.lab, router_lab.wan, 5001)), "socat not listening"
    payload = "x" * 200000
    result = router_lab.lan_run("socat", "-u", "STDIN", f"TCP:{WAN_HOST}:5001", input=payload, timeout=30)
    assert result.returncode == 0, result.stderr
    out, _ = server.communicate(timeout=10)
    assert int(out) == len(payload)


def test_tcp_from_a_sender_with_segmentation_offload(router_lab):
    """The WAN host's kernel hands its veth 64 KB TCP segments (TSO/GSO on, the veth default):
    the stack cuts them to the LAN's MTU on the way, as Linux's GSO does on forwarding."""
    lab = router_lab.lab
    lab.run(router_lab.wan, "ethtool", "-K", "pnsrw0", "tso", "on", "gso", "on")
    server = lab.popen(router_lab.lan, "socat", "-u", "TCP-LISTEN:5002,reuseaddr", "SYSTEM:wc -c")
    assert wait_for(listening(lab, router_lab.lan, 5002)), "socat not listening"
    payload = "y" * 3_000_000
    before = router_lab.stack.host.counters["ip_forward_segmented"]
    result = router_lab.wan_run("socat", "-u", "STDIN", f"TCP:{LAN_HOST}:5002", input=payload, timeout=60)
    assert result.returncode == 0, result.stderr
    out, _ = server.communicate(timeout=30)
    assert int(out) == len(payload)
    assert router_lab.stack.host.counters["ip_forward_segmented"] > before, "no coalesced segment came: test void"
    assert router_lab.stack.drops.get("ipv4-fragmentation-needed", 0) == 0


def test_a_flood_of_new_flows_from_random_sources_leaves_the_table_bounded(router_lab):
    """hping3 --rand-source (bounded: 3 s) through the router with conntrack: the table stays at
    its bound (early drop), the drops are counted, and ordinary traffic still gets through."""
    from pynetstack.netfilter.router import install_router
    stack = router_lab.stack
    router = install_router(stack, max_entries=500)
    try:
        router_lab.lab.run(router_lab.lan, "timeout", "3", "hping3", "--udp", "--rand-source", "-p", "9",
                           "--flood", "-q", WAN_HOST, timeout=20)
        with stack.lock:
            entries = router.conntrack.count
            stats = router.conntrack.stats()
        assert entries <= 500 and stats["early_drop"] > 0, stats
        result = router_lab.lan_run("ping", "-c", "3", "-i", "0.2", "-W", "2", WAN_HOST)
        assert _received(result.stdout) == 3, result.stdout
    finally:
        with stack.lock:
            stack.host.hooks.unregister(router.ruleset_function)
            stack.host.hooks.unregister(router.ct_function)
        stack.router = None
