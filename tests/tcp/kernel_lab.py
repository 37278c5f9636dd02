"""The one rig of the TCP interop tests: a stack on a TAP whose other end is the Linux kernel in
a fresh network namespace, the tools it needs, and the digest helpers both sides compare with.
Root only; the namespace, the TAP and every process are removed on exit."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess

import pytest

from .tcp_harness import digest, expected_bytes_digest  # noqa: F401 (the digest helpers, re-exported)


def require(tools) -> None:
    """Fail (never skip: an interop run must not pass silently) without root or a tool."""
    if os.geteuid() != 0:
        pytest.fail("TCP interop tests need root (network namespaces and a TAP device)")
    missing = [f"{tool} (apt package {pkg})" for tool, pkg in tools.items() if shutil.which(tool) is None]
    if missing:
        pytest.fail("missing tools for TCP interop: " + ", ".join(missing))
    if not os.path.exists("/dev/net/tun"):
        pytest.fail("/dev/net/tun is missing (kernel module tun)")


class KernelLab:
    """``stack`` on TAP ``tap`` at ``stack_address``; the kernel in namespace ``ns`` at ``kernel``."""

    def __init__(self, lab, stack, ns):
        self.lab, self.stack, self.ns = lab, stack, ns

    def sh(self, script: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
        return self.lab.run(self.ns, "sh", "-c", script, timeout=timeout, **kw)

    def sysctl(self, **values):
        for name, value in values.items():
            self.sh(f"sysctl -qw net.ipv4.{name}={value}")


@contextlib.contextmanager
def kernel_lab(name: str, tap: str, kernel: str, stack_address: str, offload: bool = True, install=()):
    """A running stack facing the kernel; ``install``: callables ``f(stack)`` adding services."""
    from pynetstack import lab as labmod
    from pynetstack.link.tap import TapDevice
    from pynetstack.stack import Stack
    with labmod.Lab(name) as lab:
        ns = lab.netns("k")
        stack = Stack()
        stack.add_interface(TapDevice(tap, host_address=f"{kernel}/24", netns=ns, offload=offload),
                            f"{stack_address}/24")
        for add in install:
            add(stack)
        stack.start_background()
        try:
            yield KernelLab(lab, stack, ns)
        finally:
            stack.close()


def sha_of_file(path: str, limit: int) -> str:
    """The digest of the first ``limit`` bytes of a file (what `head -c limit | sha256sum` says)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        left = limit
        while left:
            chunk = f.read(min(1 << 20, left))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()
