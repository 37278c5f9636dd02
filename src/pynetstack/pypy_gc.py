"""PyPy's garbage-collector settings for a process that moves packets.

PyPy reads them from the environment once, when the interpreter starts, so a program sets them
by starting itself again (``reexec``) and a parent passes them to its children
(``environment``).  CPython has no such settings and is never restarted.

* ``PYPY_GC_MIN=256MB``: no full collection while the heap is below 256 MB.  A stack that
  receives copies every segment at least once (the frame, then the payload for the
  application), and PyPy's default starts a full collection once the heap has grown by about
  1.8 times what survived the last one: with the small live heap of a stack (10-20 MB), one
  every 15 MB or so, about 100 per gigabyte received, each marking the whole heap.  Measured
  with ``gc.hooks`` on 1 GB uploaded to the HTTP service over a TAP with offloads: 1.3 s of
  full collections in 2.8 s of CPU by default, 0.1 s with this setting (and 300 -> 600 MB/s).
  The price is memory: the heap may grow to 256 MB before its first full collection.
  A larger nursery (``PYPY_GC_NURSERY``) would save more collections but is a trap: with a
  nursery of 4 MB or more a 64 KB object is allocated in it, young and movable, and handing
  it to C (hashlib, a write) costs PyPy a copy: sha256 of fresh 64 KB buffers 45 -> 77 us.
* ``PYPY_GC_INCREMENT_STEP=1GB``.  Debian 12's PyPy 7.3.11 has a bug in its incremental marking
  (fixed in 7.3.16) that crashes a process now and then; marking in one step leaves it no window.

A setting already in the environment is kept: the user's word wins.
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional

SETTINGS = {"PYPY_GC_MIN": "256MB", "PYPY_GC_INCREMENT_STEP": "1GB"}
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
