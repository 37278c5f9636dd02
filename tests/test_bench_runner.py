"""benchmarks/runner.py, what every in-process benchmark shares: the warm-up run is not counted,
and the table lines figures and ratios up under their interpreter."""

from __future__ import annotations

import importlib.util
import pathlib

RUNNER = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "runner.py"
spec = importlib.util.spec_from_file_location("bench_runner", RUNNER)
runner = importlib.util.module_from_spec(spec)
spec.loader.exec_module(runner)


def test_the_warm_up_run_is_left_out_of_the_median():
    figures = iter([1000.0, 1.0, 3.0, 2.0])
    assert runner.median_of_runs(lambda: next(figures), 3) == 2.0


def test_median_rate_counts_items_per_second_and_calls_after_each_run():
    after = []
    rate = runner.median_rate(lambda: None, 10, 2, after=lambda: after.append(1))
    assert rate > 0 and len(after) == 3


def test_table_with_ratios_against_a_named_row(capsys):
    columns = {"CPython": {"fast": 2000.0, "peer": 1000.0}, "PyPy": {"fast": 9000.0, "peer": 3000.0}}
    runner.print_table(columns, ["fast", ("peer", ".1f")], head="mode", label_width=6, width=10,
                       ratio=lambda c, _: columns[c]["peer"], ratio_head="x peer", labels={"peer": "base"})
    assert capsys.readouterr().out.splitlines() == [
        "mode     CPython  x peer      PyPy  x peer",
        "fast       2,000    2.00     9,000    3.00",
        "base      1000.0    1.00    3000.0    1.00",
    ]


def test_interpreters_are_cpython_first_and_pypy_only_where_it_exists(tmp_path):
    assert [label for label, _ in runner.interpreters(str(tmp_path / "no-pypy"))] == ["CPython"]
    pypy = tmp_path / "pypy"
    pypy.write_text("")
    assert runner.interpreters(str(pypy))[1] == ("PyPy", str(pypy))
