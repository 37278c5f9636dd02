"""`pynetstack up` as a new user runs it on interfaces of a namespace of their own."""

from __future__ import annotations

import os
import sys


def _up(lab, ns, *flags):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return lab.run(ns, sys.executable, "-m", "pynetstack", "up", *flags, "--duration", "0.5", env=env, timeout=60)


def test_up_on_an_interface_that_is_down_says_so(lab):
    ns = lab.netns("tstdown")
    lab.ip("-n", ns, "link", "add", "tstd0", "type", "veth", "peer", "name", "tstd1")  # veths start down
    result = _up(lab, ns, "--interface", "tstd0", "--address", "10.98.0.2/24", "--pcap", "/dev/null")
    assert result.returncode == 0, result.stderr
    assert "warning: tstd0 is down" in result.stderr and "ip link set tstd0 up" in result.stderr, result.stderr
    lab.ip("-n", ns, "link", "set", "tstd0", "up")
    result = _up(lab, ns, "--interface", "tstd0", "--address", "10.98.0.2/24")
    assert result.returncode == 0 and "is down" not in result.stderr, result.stderr
