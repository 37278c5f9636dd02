"""A throw-away lab of network namespaces for the demo and the interop tests.

Every namespace, veth and process the lab makes is removed by ``close()``; names carry the
process id, and namespaces left behind by a lab whose process died are removed on start.
Traffic stays inside these namespaces: nothing here touches the host's own interfaces.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from typing import Dict, List, Optional

PREFIX = "pns"
REQUIRED_TOOLS = {"ip": "iproute2", "ping": "iputils-ping", "arping": "arping", "tcpdump": "tcpdump",
                  "nc": "netcat-openbsd", "socat": "socat", "dig": "dnsutils",
                  "curl": "curl"}


class LabError(RuntimeError):
    pass


def missing_tools(tools: Optional[Dict[str, str]] = None) -> List[str]:
    """'tool (Debian package)' for every required tool that is not installed."""
    tools = tools or REQUIRED_TOOLS
    return [f"{tool} (Debian package {pkg})" for tool, pkg in tools.items() if shutil.which(tool) is None]


def can_run() -> Optional[str]:
    """None when a lab can be built here, else the reason it cannot."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, TAP devices)"
    missing = missing_tools()
    if missing:
        return "missing tools: " + ", ".join(missing)
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing"
    return None


def _sweep_stale() -> None:
    result = subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in result.stdout.splitlines():
        match = re.match(rf"({PREFIX}(\d+)-\S+)", line)
        if match and not os.path.exists(f"/proc/{match.group(2)}"):
            subprocess.run(["ip", "netns", "del", match.group(1)], stderr=subprocess.DEVNULL)


class Lab:
    def __init__(self, tag: str = ""):
        reason = can_run()
        if reason:
            raise LabError(reason)
        _sweep_stale()
        self.tag = f"{PREFIX}{os.getpid()}-{tag}" if tag else f"{PREFIX}{os.getpid()}-"
        self.namespaces: List[str] = []
        self.processes: List[subprocess.Popen] = []

    def netns(self, role: str) -> str:
        """Create the namespace for ``role`` (loopback up) and return its name."""
        name = f"{self.tag}{role}"
        self.ip("netns", "add", name)
        self.namespaces.append(name)
        self.ip("-n", name, "link", "set", "lo", "up")
        # IPv4 only: no IPv6 router solicitations or MLD reports muddying captures and counters.
        for key in ("all", "default"):
            with open(os.devnull, "w") as quiet:
                subprocess.run(["ip", "netns", "exec", name, "sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1"],
                               stdout=quiet, stderr=quiet)
        return name

    def ip(self, *args: str) -> str:
        result = subprocess.run(["ip"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if result.returncode:
            raise LabError(f"ip {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def veth(self, ns_a: str, name_a: str, ns_b: str, name_b: str, address_a: Optional[str] = None,
             address_b: Optional[str] = None, mtu: int = 1500) -> None:
        """A veth pair with one end in each namespace; addresses go to the kernel's side."""
        self.ip("link", "add", name_a, "netns", ns_a, "mtu", str(mtu), "type", "veth",
                "peer", "name", name_b, "netns", ns_b, "mtu", str(mtu))
        for ns, name, address in ((ns_a, name_a, address_a), (ns_b, name_b, address_b)):
            if address:
                self.ip("-n", ns, "addr", "add", address, "dev", name)
            self.ip("-n", ns, "link", "set", name, "up")

    def run(self, ns: str, *argv: str, timeout: float = 30, input: Optional[str] = None,
            check: bool = False, env: Optional[dict] = None) -> subprocess.CompletedProcess:
        """Run a command inside ``ns`` and wait (bounded by ``timeout``)."""
        result = subprocess.run(["ip", "netns", "exec", ns] + list(argv), input=input, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, timeout=timeout, env=env)
        if check and result.returncode:
            raise LabError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def popen(self, ns: str, *argv: str, **kwargs) -> subprocess.Popen:
        """Start a command inside ``ns`` in the background; ``close()`` stops it."""
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        process = subprocess.Popen(["ip", "netns", "exec", ns] + list(argv), start_new_session=True, **kwargs)
        self.processes.append(process)
        return process

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(timeout=5)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(process.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    process.wait()
        self.processes.clear()
        for name in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)
        self.namespaces.clear()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
