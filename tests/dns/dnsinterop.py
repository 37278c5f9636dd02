"""Helpers for the interop tests: start `pynetstack dns serve` and NSD on 127.0.0.1, run dig/kdig."""
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APT_PACKAGE = {"dig": "dnsutils", "kdig": "knot-dnsutils", "nsd": "nsd", "unbound": "unbound",
               "dnsperf": "dnsperf"}


def require(tool: str) -> str:
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if os.path.exists(f"/usr/sbin/{tool}") else None)
    if path is None:
        pytest.fail(f"{tool} is missing: apt-get install {APT_PACKAGE.get(tool, tool)}")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
        for _ in range(50):
            u.bind((host, 0))
            port = u.getsockname()[1]
            try:
                t.bind((host, port))
                return port
            except OSError:
                u.close()
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        raise RuntimeError("no free port")


def wait_udp(host: str, port: int, deadline: float = 30.0) -> None:
    """Wait until something answers a DNS query on host:port (bounded in time: generously, since a
    new PyPy process loading its zones on a loaded machine can take many seconds)."""
    from pynetstack.wire import dns as w
    query = w.make_query(".", w.SOA, id=1, rd=False)
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            try:
                s.sendto(query, (host, port))
                s.recv(4096)
                return
            except OSError:
                time.sleep(0.1)
    raise RuntimeError(f"nothing answers on {host}:{port}")


class Process:
    def __init__(self, args, env=None, cwd=None):
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.stdout.read().decode(errors="replace")


def start_pynetstack(*args, host="127.0.0.1"):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"))
    for _ in range(5):  # a port found free can be taken before the server binds it (ephemeral range)
        port = free_port(host)
        proc = Process([sys.executable, "-m", "pynetstack.dns.cli", "dns", "serve", "--listen",
                        f"{host}:{port}", *args], env=env)
        try:
            wait_udp(host, port)
            return proc, port
        except RuntimeError:
            output = proc.stop()
            if "Address already in use" not in output:
                raise RuntimeError("pynetstack dns serve did not start:\n" + output) from None
    raise RuntimeError("pynetstack dns serve found no free port in five tries")


NSD_CONF = """server:
  ip-address: {host}@{port}
  port: {port}
  database: ""
  pidfile: {dir}/nsd.pid
  zonelistfile: {dir}/zone.list
  xfrdfile: {dir}/xfrd.state
  xfrdir: {dir}
  username: ""
  chroot: ""
  logfile: {dir}/nsd.log
  server-count: 1
  verbosity: 1
  minimal-responses: no
remote-control:
  control-enable: no
"""


def start_nsd(workdir: str, zones, host="127.0.0.1", port=None):
    """zones: (origin, zone file path) pairs. NSD runs in the foreground (-d); stop() ends it."""
    nsd = require("nsd")
    port = port or free_port(host)
    conf = NSD_CONF.format(host=host, port=port, dir=workdir)
    for origin, path in zones:
        conf += f"zone:\n  name: \"{origin}\"\n  zonefile: {path}\n"
    conf_path = os.path.join(workdir, "nsd.conf")
    with open(conf_path, "w") as f:
        f.write(conf)
    check = subprocess.run([require("nsd-checkconf"), conf_path], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"nsd-checkconf: {check.stdout}{check.stderr}")
    proc = Process([nsd, "-d", "-c", conf_path])
    try:
        wait_udp(host, port)
    except RuntimeError:
        log = open(os.path.join(workdir, "nsd.log")).read() if os.path.exists(
            os.path.join(workdir, "nsd.log")) else ""
        raise RuntimeError("nsd did not start:\n" + proc.stop() + log) from None
    return proc, port


def run(tool: str, *args, timeout=15) -> str:
    p = subprocess.run([require(tool), *args], capture_output=True, text=True, timeout=timeout)
    return p.stdout + p.stderr
