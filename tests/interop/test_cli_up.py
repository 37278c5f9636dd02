"""`pynetstack up` from a TOML file in a namespace: answers the kernel, stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import sys

from .waiting import wait_for


def _established(table):
    """The output of `pynetstack connections` once it lists the download, else None."""
    return table if table.returncode == 0 and "ESTABLISHED  10.99.3.2:80" in table.stdout else None


def test_up_from_config_and_clean_shutdown(lab, tmp_path):
    host = lab.netns("cli")
    config = tmp_path / "stack.toml"
    config.write_text(
        '[[interface]]\ntap = "pnscli0"\naddress = "10.99.3.2/24"\nhost_address = "10.99.3.1/24"\n'
        'pcap = "cli.pcap"\n\n[services]\nudp_echo = 7\n')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    process = lab.popen(host, sys.executable, "-m", "pynetstack", "up", "--config", str(config), env=env)
    # (30 s: a new PyPy process importing the package on a loaded machine can take over 10)
    assert wait_for(lambda: "pnscli0" in lab.ip("-n", host, "link", "show"), timeout=30), "the stack made no TAP"
    result = lab.run(host, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.99.3.2")
    assert "3 received" in result.stdout, result.stdout
    echoed = lab.run(host, "nc", "-u", "-w", "1", "10.99.3.2", "7", input="via config\n")
    assert echoed.stdout == "via config\n"
    # A slow download keeps one TCP connection open while `connections` asks the stack about it.
    # (The kernel's receive buffer may grow to 32 MB -- tcp_rmem's maximum here -- and take the
    # whole body at once, whatever curl reads; the stack's connection then idles and its 5 s
    # keep-alive timeout may close it before a `connections` started on a loaded machine asks.
    # Capped at 1 MB, the stack keeps sending at curl's pace.)
    lab.run(host, "sysctl", "-qw", "net.ipv4.tcp_rmem=4096 131072 1048576", check=True)
    download = lab.popen(host, "curl", "-s", "-o", "/dev/null", "--limit-rate", "100k",
                         "http://10.99.3.2/bytes/4000000")  # lasts seconds at 100k/s
    table = wait_for(lambda: _established(lab.run(host, sys.executable, "-m", "pynetstack", "connections", env=env)),
                     timeout=20)
    assert table is not None, "`pynetstack connections` never listed the download"
    assert "ESTABLISHED  10.99.3.2:80" in table.stdout and "LISTEN" in table.stdout, table.stdout
    status = lab.run(host, sys.executable, "-m", "pynetstack", "status", env=env)
    assert "pnscli0" in status.stdout and "# the stack on pnscli0 in this network namespace" in status.stdout
    download.terminate()
    # `ip netns exec` runs the stack as its child: signal the whole group, as a terminal would.
    os.killpg(process.pid, signal.SIGTERM)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err.decode()
    assert "stopped after" in out.decode()
    assert "Traceback" not in err.decode()
    assert "pnscli0" not in lab.ip("-n", host, "link", "show"), "the TAP the stack created is gone"
    assert (tmp_path / "cli.pcap").stat().st_size > 24
