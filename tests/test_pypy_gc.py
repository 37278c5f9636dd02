"""PyPy's collector settings (pynetstack/pypy_gc.py): a program started without them starts
itself again with them on PyPy (same arguments), keeps a setting the user gave, and is never
restarted on CPython."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from pynetstack import pypy_gc

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
PROGRAM = f"""
import json, os, sys
sys.path.insert(0, {SRC!r})
from pynetstack import pypy_gc
pypy_gc.reexec([os.path.abspath(__file__)] + sys.argv[1:])
print(json.dumps({{"argv": sys.argv[1:],
                  "env": {{name: os.environ.get(name) for name in pypy_gc.SETTINGS}}}}))
"""


def _run(tmp_path, env_extra):
    script = tmp_path / "program.py"
    script.write_text(PROGRAM)
    env = {name: value for name, value in os.environ.items() if name not in pypy_gc.SETTINGS}
    env.update(env_extra)
    run = subprocess.run([sys.executable, str(script), "one", "two words"], stdout=subprocess.PIPE, text=True,
                         env=env, timeout=60, check=True)
    return json.loads(run.stdout)


def test_environment_adds_what_is_missing_and_keeps_what_is_given():
    env = pypy_gc.environment({"PYPY_GC_MIN": "64MB", "OTHER": "x"})
    assert env["PYPY_GC_MIN"] == "64MB" and env["OTHER"] == "x"
    assert all(name in env for name in pypy_gc.SETTINGS)


def test_a_program_restarts_itself_with_the_settings_on_pypy_only(tmp_path):
    got = _run(tmp_path, {})
    assert got["argv"] == ["one", "two words"]
    if pypy_gc.IS_PYPY:
        assert got["env"] == pypy_gc.SETTINGS
    else:
        assert set(got["env"].values()) == {None}


def test_a_setting_the_user_gave_is_kept(tmp_path):
    got = _run(tmp_path, {"PYPY_GC_MIN": "64MB"})
    if pypy_gc.IS_PYPY:
        assert got["env"]["PYPY_GC_MIN"] == "64MB"
        assert got["env"]["PYPY_GC_INCREMENT_STEP"] == pypy_gc.SETTINGS["PYPY_GC_INCREMENT_STEP"]
