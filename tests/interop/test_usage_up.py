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


def test_sigterm_ends_a_timed_run_cleanly(lab):
    """`up --duration` stopped early by SIGTERM (kill, systemd, a test harness) closes the stack as
    Ctrl-C does: the control socket goes, the closing report is printed, exit status 0."""
    import glob
    import signal
    import time

    from pynetstack import control
    ns = lab.netns("tstterm")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    inode = os.stat(f"/run/netns/{ns}").st_ino
    pattern = os.path.join(control.CONTROL_DIR, f"{inode}-tstt0.sock")
    for stale in glob.glob(pattern):  # left by a killed stack in a namespace that had this inode
        os.unlink(stale)
    process = lab.popen(ns, sys.executable, "-m", "pynetstack", "up", "--tap", "tstt0", "--address",
                        "10.97.0.2/24", "--duration", "60", env=env)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not glob.glob(pattern):
        time.sleep(0.05)
    assert glob.glob(pattern), "the stack never made its control socket"
    os.killpg(process.pid, signal.SIGTERM)  # `ip netns exec` runs the stack as its child
    out, err = process.communicate(timeout=15)
    assert process.returncode == 0, (process.returncode, err.decode())
    assert b"stopped after" in out, out
    assert not glob.glob(pattern), "the control socket was left behind"
