#!/usr/bin/env bash
# The whole test suite: unit, simulation and interop tests on CPython, then the same on PyPy
# (every device kind, the services and DNS on the stack: a PyPy user's path is tested as well).
# Interop tests need root (network namespaces, TAP devices); a skipped interop test fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PYNETSTACK_REQUIRE_INTEROP=1
status=0
echo "== CPython: all tests"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@" || status=1
if [ -x .venv-pypy/bin/python ]; then
  echo "== PyPy: all tests"
  .venv-pypy/bin/python -m pytest -q -p no:cacheprovider "$@" || status=1
else
  echo "PyPy is missing (Debian package pypy3): the PyPy half of the suite cannot run" >&2
  status=1
fi
exit $status
