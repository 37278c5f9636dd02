"""A NAT router lab of real Linux hosts, built twice: with pynetstack as the router and with a
Linux router namespace in its place, both loaded with the same nft file.

    LAN namespace ---- router ---- WAN namespace
    192.168.77.2       .77.1 | 198.51.100.1     198.51.100.2 (and .3, for RFC 5780)

The router's interfaces are called lan0 and wan0 in both builds, so the one file (which names
them) means the same thing to both. The WAN host has no route back to the LAN: only NAT works.
Both builds use the same addresses, each in its own namespaces.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import time
from typing import List, Optional, Tuple

from pynetstack import lab as labmod
from pynetstack.link.packet import PacketDevice
from pynetstack.link.tap import TapDevice
from pynetstack.netfilter.router import install_router
from pynetstack.stack import Stack

LAN_HOST, LAN_GW = "192.168.77.2", "192.168.77.1"
WAN_HOST, WAN_HOST2, WAN_GW = "198.51.100.2", "198.51.100.3", "198.51.100.1"
LAN_WEB_BODY, WAN_WEB_BODY = "lan web server\n", "wan web server\n"

# What a Linux admin writes: masquerade out of the WAN, a port forward, and hairpin NAT so that
# LAN clients can use the public address too (the server then sees the router's public address,
# and its answers come back through the router, where they are translated back).
RULESET = f"""\
table ip nat {{
	chain prerouting {{
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr {WAN_GW} tcp dport 8080 counter dnat to {LAN_HOST}:80
	}}
	chain postrouting {{
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan0" counter masquerade
		ip saddr 192.168.77.0/24 ip daddr 192.168.77.0/24 ct status dnat counter snat to {WAN_GW}
	}}
}}
"""


TOOLS = {"nft": "nftables", "iperf3": "iperf3", "turnserver": "coturn", "turnutils_natdiscovery": "coturn",
         "traceroute": "traceroute", "conntrack": "conntrack", "ss": "iproute2", "timeout": "coreutils",
         "ethtool": "ethtool"}


def missing_tools() -> List[str]:
    """The tools this lab needs beyond the base lab's, with their Debian packages, if missing."""
    return labmod.missing_tools(TOOLS)


class NatLab:
    """One build of the lab: ``kind`` is "stack" or "linux"."""

    def __init__(self, lab, kind: str, lan: str, wan: str, rtr: str, wan_iface: str, workdir: str,
                 stack=None, router=None):
        self.lab, self.kind, self.lan, self.wan, self.rtr = lab, kind, lan, wan, rtr
        self.wan_iface = wan_iface  # the WAN host's interface towards the router
        self.workdir = workdir
        self.stack, self.router = stack, router

    def lan_run(self, *argv, **kwargs) -> subprocess.CompletedProcess:
        return self.lab.run(self.lan, *argv, **kwargs)

    def wan_run(self, *argv, **kwargs) -> subprocess.CompletedProcess:
        return self.lab.run(self.wan, *argv, **kwargs)

    def conntrack_list(self) -> List[str]:
        if self.router is not None:
            return self.router.conntrack_list()
        result = self.lab.run(self.rtr, "conntrack", "-L", timeout=10)
        return [line for line in result.stdout.splitlines() if line.strip()]

    def conntrack_flush(self) -> None:
        """Forget every tracked connection (``conntrack -F``), so a test that sends fixed tuples
        finds none of an earlier test's: a ping's ICMP id is its pid, and pids repeat."""
        if self.router is not None:
            with self.stack.lock:
                self.router.conntrack.flush()
        else:
            self.lab.run(self.rtr, "conntrack", "-F", check=True, timeout=10)

    def web_server(self, ns: str, address: str, port: int, body: str, name: str) -> str:
        """Start ``python3 -m http.server`` on address:port serving ``body``; return its log path."""
        root = os.path.join(self.workdir, name)
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, "index.html"), "w") as f:
            f.write(body)
        log = os.path.join(self.workdir, name + ".log")
        with open(log, "w") as out:
            self.lab.popen(ns, "python3", "-m", "http.server", str(port), "--bind", address, "--directory", root,
                           stdout=out, stderr=out)
        wait_listening(self.lab, ns, "tcp", port)
        return log


def wait_listening(lab, ns: str, proto: str, port: int, timeout: float = 10.0) -> None:
    flag = "-Hltn" if proto == "tcp" else "-Hlun"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = lab.run(ns, "ss", flag, f"sport = :{port}", timeout=5).stdout
        if out.strip():
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {proto} port {port} in {ns}")


def segmentation_offload(lab, ns: str, iface: str, on: bool) -> None:
    """TSO and GSO of a host's interface towards the router. Off in both builds: with them on,
    a host hands its veth (and the stack's packet socket) TCP frames of up to 64 KB, which the
    stack cannot forward yet (it drops each as ipv4-fragmentation-needed, and a download through
    it crawls at 0.25 Mbit/s; Linux forwards them when their segments fit the egress MTU and
    segments on output); off, the host segments itself."""
    state = "on" if on else "off"
    lab.run(ns, "ethtool", "-K", iface, "tso", state, "gso", state, check=True)


def stack_router(lab, lan: str, wan: str, rtr: str, lan_hosts: Tuple[str, str], wan_hosts: Tuple[str, str],
                 tap: str = "eth0", veth: Tuple[str, str] = ("eth0", "wan0"), route_back: Optional[str] = None) -> Stack:
    """A forwarding stack (not started) between a LAN host behind the TAP ``tap`` (its end in
    ``lan``) and a WAN host on the veth ``veth`` (one end in ``wan``, the other in ``rtr``, which
    the stack reaches through AF_PACKET). ``lan_hosts`` and ``wan_hosts``: (the host's address,
    the stack's) on /24s; the stack's interfaces are lan0 and wan0. The LAN host routes everything
    via the stack; the WAN host routes ``route_back`` via it (None: no route back, only NAT works)."""
    lab.veth(wan, veth[0], rtr, veth[1], address_a=f"{wan_hosts[0]}/24")
    stack = Stack(forwarding=True)
    try:
        # offload=False: no TSO on the TAP (see segmentation_offload)
        stack.add_interface(TapDevice(tap, host_address=f"{lan_hosts[0]}/24", netns=lan, offload=False),
                            f"{lan_hosts[1]}/24", name="lan0")
        stack.add_interface(PacketDevice(veth[1], promiscuous=True, netns=rtr), f"{wan_hosts[1]}/24", name="wan0")
        lab.ip("-n", lan, "route", "add", "default", "via", lan_hosts[1])
        if route_back is not None:
            lab.ip("-n", wan, "route", "add", route_back, "via", wan_hosts[1])
    except BaseException:
        stack.close()
        raise
    return stack


def build_stack(lab, tag: str, rules_path: Optional[str], workdir: str, **router_options) -> NatLab:
    """The LAN behind a TAP, the WAN behind a veth the stack reaches through AF_PACKET."""
    lan = lab.netns(f"{tag}lan")
    wan = lab.netns(f"{tag}wan")
    rtr = lab.netns(f"{tag}rtr")
    stack = stack_router(lab, lan, wan, rtr, (LAN_HOST, LAN_GW), (WAN_HOST, WAN_GW))
    try:
        lab.ip("-n", wan, "addr", "add", f"{WAN_HOST2}/24", "dev", "eth0")
        segmentation_offload(lab, wan, "eth0", False)
        router = install_router(stack, ruleset_path=rules_path, **router_options)
        stack.start_background()
    except BaseException:
        stack.close()
        raise
    return NatLab(lab, "stack", lan, wan, rtr, "eth0", workdir, stack, router)


def build_linux(lab, tag: str, rules_path: str, workdir: str) -> NatLab:
    """The same lab with a Linux router namespace (two veths, forwarding on, ``nft -f`` the file)."""
    lan = lab.netns(f"{tag}lan")
    wan = lab.netns(f"{tag}wan")
    rtr = lab.netns(f"{tag}rtr")
    lab.veth(lan, "eth0", rtr, "lan0", address_a=f"{LAN_HOST}/24", address_b=f"{LAN_GW}/24")
    lab.veth(wan, "eth0", rtr, "wan0", address_a=f"{WAN_HOST}/24", address_b=f"{WAN_GW}/24")
    lab.ip("-n", wan, "addr", "add", f"{WAN_HOST2}/24", "dev", "eth0")
    for ns in (lan, wan):  # the hosts send as they do in the stack's build
        segmentation_offload(lab, ns, "eth0", False)
    lab.ip("-n", lan, "route", "add", "default", "via", LAN_GW)
    lab.run(rtr, "sysctl", "-qw", "net.ipv4.ip_forward=1", check=True)
    # Linux limits ICMP errors per destination (one a second after a burst): a traceroute right
    # after another test's TTL expiry would see "*". The stack's limit is global, 1000/s.
    lab.run(rtr, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", check=True)
    lab.run(rtr, "nft", "-f", rules_path, check=True)
    return NatLab(lab, "linux", lan, wan, rtr, "eth0", workdir)


class Capture:
    """tcpdump in a namespace, bounded by a time limit and, if given, a packet count."""

    def __init__(self, lab, ns: str, iface: str, expression: str, count: Optional[int] = None,
                 timeout: float = 20.0):
        argv = ["timeout", str(timeout), "tcpdump", "-n", "-l", "--immediate-mode", "-s", "128",
                "-B", "4096", "-i", iface]
        if count is not None:
            argv += ["-c", str(count)]
        # stdout to a file: a pipe nobody reads yet fills up and stalls tcpdump
        self.output = tempfile.TemporaryFile(mode="w+")
        self.process = lab.popen(ns, *argv, expression, text=True, stdout=self.output)
        # tcpdump says "listening on" once its filter is attached
        deadline = time.monotonic() + 5
        line = ""
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if "listening on" in line or not line:
                break
        assert "listening on" in line, f"tcpdump did not start: {line!r}"

    def so_far(self) -> str:
        """What tcpdump has printed until now (it prints each packet as it reads it: -l), read
        without moving the file offset the tcpdump process shares."""
        fd = self.output.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def lines(self, wait: float = 10.0) -> List[str]:
        """The packets, once tcpdump has its count (or its time is up)."""
        try:
            _, self.stderr = self.process.communicate(timeout=wait)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            _, self.stderr = self.process.communicate()
        self.output.seek(0)
        out = self.output.read()
        self.output.close()
        return [line for line in out.splitlines() if line.strip()]

    def stop(self) -> List[str]:
        """Stop it now (as ^C does: it prints what it has) and return the packets."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        return self.lines()


def curl(nat: NatLab, ns: str, url: str, timeout: float = 5.0) -> dict:
    """GET ``url``; the body, HTTP code and curl's own local/remote endpoints."""
    result = nat.lab.run(ns, "curl", "-s", "--max-time", str(timeout), "-w",
                         "\n%{http_code} %{local_ip} %{local_port} %{remote_ip} %{remote_port}", url,
                         timeout=timeout + 5)
    body, _, tail = result.stdout.rpartition("\n")
    fields = tail.split()
    out = {"rc": result.returncode, "body": body, "stderr": result.stderr}
    if len(fields) == 5:
        out.update(code=int(fields[0]), local=(fields[1], int(fields[2] or 0)),
                   remote=(fields[3], int(fields[4] or 0)))
    return out


def last_client(log_path: str) -> Optional[str]:
    """The client address of the last request in an http.server log."""
    with open(log_path) as f:
        found = re.findall(r"^(\d+\.\d+\.\d+\.\d+) - - \[", f.read(), re.M)
    return found[-1] if found else None


def iperf3(nat: NatLab, seconds: int = 3, reverse: bool = False) -> float:
    """Mbit/s of one TCP stream LAN -> WAN (WAN -> LAN if ``reverse``), the receiver's figure."""
    server = nat.lab.popen(nat.wan, "iperf3", "-s", "-1", "-B", WAN_HOST, "-p", "5201")
    wait_listening(nat.lab, nat.wan, "tcp", 5201)
    result = nat.lan_run("iperf3", "-c", WAN_HOST, "-p", "5201", "-t", str(seconds), "-J", "--connect-timeout",
                         "3000", *(["-R"] if reverse else []), timeout=seconds + 20)
    try:
        server.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    report = json.loads(result.stdout)
    return report["end"]["sum_received"]["bits_per_second"] / 1e6


def conntrack_fields(line: str) -> dict:
    """The original and reply tuples of a ``conntrack -L`` line."""
    pairs = re.findall(r"(src|dst|sport|dport)=(\S+)", line)
    original = dict(pairs[:4])
    reply = dict(pairs[4:8])
    proto = line.split()[0]
    return {"proto": proto, "original": original, "reply": reply}
