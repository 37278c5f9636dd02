"""PyPy's garbage-collector settings for a process that moves packets.

PyPy reads them from the environment once, when the interpreter starts, so a program sets them
by starting itself again (``reexec``) and a parent passes them to its children
(``environment``).  CPython has no such settings and is never restarted.

* ``PYPY_GC_NURSERY=32MB``.  PyPy sizes its nursery from the CPU's cache, and on this kind of
  virtual machine it takes 1 MB.  A 64 KB segment received with offloads (the frame, then the
  payload copied for the application) fills that in a few frames: 2,300 minor collections and,
  as the large frames that outlive a minor pile up, about 100 full collections per gigabyte,
  half of PyPy's time (``gc.hooks`` on 1 GB received by the discard service: 0.2 s minor and
  1.3 s major out of 2.8 s).  With 32 MB: 65 minor, no full collection, 1.7 GB/s against
  CPython's 1.5 (see the README's TCP table).  The price is 31 MB more memory.
* ``PYPY_GC_INCREMENT_STEP=1GB``.  Debian 12's PyPy 7.3.11 has a bug in its incremental marking
  (fixed in 7.3.16) that crashes a process now and then; marking in one step leaves it no window.

A setting already in the environment is kept: the user's word wins.
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional

SETTINGS = {"PYPY_GC_NURSERY": "32MB", "PYPY_GC_INCREMENT_STEP": "1GB"}
IS_PYPY = sys.implementation.name == "pypy"


def environment(base: Optional[dict] = None) -> dict:
    """``base`` (default: this process's environment) with the settings added where absent."""
    env = dict(os.environ if base is None else base)
    for name, value in SETTINGS.items():
        env.setdefault(name, value)
    return env


def reexec(command: List[str]) -> None:
    """On PyPy, when a setting is missing, replace this process with ``sys.executable
    *command`` started with them (the same process id, arguments and descriptors); otherwise
    return.  Call it first thing in a program's entry point, before any thread or device."""
    if not IS_PYPY or all(name in os.environ for name in SETTINGS):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable] + list(command), environment())
