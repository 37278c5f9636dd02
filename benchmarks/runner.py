"""What every in-process benchmark shares: the same measurement run in a child process under
CPython and under PyPy (the project's venvs), medians of timed runs after a warm-up run, and the
table of the figures side by side.

    columns = runner.run_children(__file__, ["--count", "1000"], pypy=args.pypy)   # in main()
    rate = runner.median_rate(loop, count, repeat)                                  # in the child

A benchmark's child is the same script with ``--child``: it prints its figures as one JSON object.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)


def default_pypy() -> str:
    """This checkout's PyPy venv, else the one beside the running Python's venv (a worktree
    without venvs of its own, run with the main checkout's .venv/bin/python)."""
    own = os.path.join(ROOT, ".venv-pypy", "bin", "python")
    if os.path.exists(own):
        return own
    return os.path.join(os.path.dirname(os.path.dirname(sys.executable)) + "-pypy", "bin", "python")


def interpreters(pypy: str = None) -> list:
    """[(label, python)]: CPython (this one) and PyPy where it exists."""
    pypy = pypy or default_pypy()
    return [("CPython", sys.executable)] + ([("PyPy", pypy)] if os.path.exists(pypy) else [])


def child_env() -> dict:
    """The environment of a child interpreter: this checkout's sources first, and PyPy's
    collector settings for moving packets (pynetstack/pypy_gc.py)."""
    from pynetstack import pypy_gc
    return pypy_gc.environment(dict(os.environ, PYTHONPATH=SRC))


def run_children(script: str, args, pypy: str = None, timeout: float = 900) -> dict:
    """Run ``script --child ARGS`` under each interpreter: {label: the JSON it printed}. An
    interpreter whose child fails is reported on stderr and left out of the table."""
    columns = {}
    for label, python in interpreters(pypy):
        run = subprocess.run([python, os.path.abspath(script), "--child", *map(str, args)], stdout=subprocess.PIPE,
                             text=True, timeout=timeout, env=child_env())
        if run.returncode == 0:
            columns[label] = json.loads(run.stdout)
        else:
            print(f"{label} ({python}): the measurement failed (exit {run.returncode}); its column is left out",
                  file=sys.stderr)
    if not columns:
        raise SystemExit("no interpreter finished the measurement")
    return columns


def median_of_runs(run, repeat: int) -> float:
    """The median of ``repeat`` calls of ``run()`` (each returns one figure), after one more call
    that warms up (PyPy's JIT compiles the loop there) and is not counted."""
    return statistics.median([run() for _ in range(repeat + 1)][1:])


def median_rate(loop, count: int, repeat: int, after=None) -> float:
    """Median items per second of ``loop()``, which handles ``count`` items; ``after()`` (a check
    or a reset, not timed) follows each run."""
    def run():
        start = time.perf_counter()
        loop()
        rate = count / (time.perf_counter() - start)
        if after is not None:
            after()
        return rate
    return median_of_runs(run, repeat)


def print_table(columns: dict, rows, head: str = "", label_width: int = 24, width: int = 14, fmt: str = ",.0f",
                ratio=None, ratio_head: str = "", ratio_width: int = 8, labels: dict = None,
                header: bool = True) -> None:
    """One line per key of ``rows`` (a key, or (key, format)), and per interpreter of ``columns``
    ({label: {key: figure}}) the figure and, when ``ratio(label, key)`` names a base, figure / base."""
    if header:
        print(f"{head:{label_width}}" + "".join(f"{name:>{width}}" + (f"{ratio_head:>{ratio_width}}" if ratio else "")
                                                for name in columns))
    for row in rows:
        key, key_fmt = row if isinstance(row, tuple) else (row, fmt)
        cells = ""
        for name, column in columns.items():
            cells += f"{column[key]:{width}{key_fmt}}"
            if ratio is not None:
                base = ratio(name, key)
                cells += f"{column[key] / base:{ratio_width}.2f}" if base else " " * ratio_width
        label = labels.get(key, key) if labels else key
        print(f"{label:{label_width}}{cells}")
