"""The README's Python snippet and its DNS commands work as written (each in a namespace of its
own, as the README asks)."""

from __future__ import annotations

import os
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def block_after(marker: str, language: str) -> str:
    start = README.index(marker)
    match = re.compile(rf"```{language}\n(.*?)```", re.S).search(README, start)
    return match.group(1)


def env():
    bindir = os.path.dirname(sys.executable)  # `pynetstack` of this environment first
    return dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), PATH=bindir + os.pathsep + os.environ["PATH"])


def test_from_python_snippet_runs_as_written(lab):
    ns = lab.netns("readmepy")
    code = block_after("From Python", "python")
    result = lab.run(ns, sys.executable, "-c", code, timeout=60, env=env())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "b'HTTP/1.1 200 OK'", result.stdout
    assert lines[1].startswith("(b'hi', ('10.0.0.2', "), result.stdout
    assert lines[2] == "b'hello kernel'", result.stdout


def _wait_for_servers(script: str) -> str:
    """After each ``pynetstack dns serve --listen ADDR &``, wait (30 s at most) until ADDR is bound,
    instead of a fixed sleep: a PyPy process on a loaded machine can take longer to start. (It
    loads its zones before it binds; a query sent once it is bound waits in the socket.)"""
    lines = []
    for line in script.splitlines(keepends=True):
        lines.append(line)
        served = re.search(r"--listen (\S+) &$", line.rstrip())
        if served:
            lines.append(f"for i in $(seq 300); do ss -Hlun src {served.group(1)} | grep -q . && break; "
                         "sleep 0.1; done\n")
    return "".join(lines)


def test_dns_commands_run_as_written(lab):
    ns = lab.netns("readmedns")
    lab.run(ns, "ip", "addr", "add", "127.0.0.2/8", "dev", "lo")
    script = "set -m\n" + _wait_for_servers(block_after("DNS also runs as a standalone server", "sh"))
    assert os.access(os.path.join(os.path.dirname(sys.executable), "pynetstack"), os.X_OK)
    result = lab.run(ns, "bash", "-c", f"cd {ROOT} && {script}", timeout=60, env=env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("www.example.test. 300 IN A 192.0.2.10") == 2, result.stdout + result.stderr
