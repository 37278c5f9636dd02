#!/usr/bin/env bash
# Peers for benchmarks/bench_tcp_pytcp.py, kept apart from the project's own environments:
#   .venv-peers       CPython venv with PyTCP (pip install pytcp)
#   .venv-peers-pypy  PyPy venv with PyTCP, made only when PyTCP installs and imports there
# Never touches .venv or .venv-pypy.  Idempotent: a venv whose PyTCP imports is left as it is.
#
#   bash benchmarks/setup_peers.sh            # from the repository root (or anywhere)
#   PYTCP_VERSION=2.7.6 bash benchmarks/setup_peers.sh
#   PEER_PYTHON=python3.12 bash benchmarks/setup_peers.sh   # another CPython (newer PyTCP releases)
set -u
cd "$(dirname "$0")/.."

spec="pytcp${PYTCP_VERSION:+==$PYTCP_VERSION}"
quiet_pip() { "$@" 2>&1 | grep -v "^WARNING: Location" ; return "${PIPESTATUS[0]}"; }

# PyTCP needs Python >= 3.10 (its Requires-Python).  Use the interpreter of the project's own
# .venv when it qualifies (same CPython for both stacks), else PEER_PYTHON, else any python3.1x.
cpython=""
base=""
[ -x .venv/bin/python ] && base=$(.venv/bin/python -c 'import sys; print(sys._base_executable)' 2>/dev/null)
for candidate in ${PEER_PYTHON:-} $base python3 python3.13 python3.12 python3.11 python3.10; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    cpython=$(command -v "$candidate"); break
  fi
done

status=0
if [ -z "$cpython" ]; then
  echo "setup_peers: no CPython >= 3.10 found (PyTCP requires it)" >&2
  status=1
elif .venv-peers/bin/python -c "import pytcp" 2>/dev/null; then
  echo "setup_peers: .venv-peers ready ($(.venv-peers/bin/python -c 'import importlib.metadata as m; print("PyTCP", m.version("pytcp"))'))"
else
  rm -rf .venv-peers
  "$cpython" -m venv .venv-peers || status=1
  if [ "$status" = 0 ]; then
    quiet_pip .venv-peers/bin/pip install -q --disable-pip-version-check "$spec" || status=1
    if .venv-peers/bin/python -c "import pytcp" 2>/dev/null; then
      echo "setup_peers: .venv-peers ready ($(.venv-peers/bin/python -c 'import importlib.metadata as m; print("PyTCP", m.version("pytcp"))'))"
    else
      echo "setup_peers: PyTCP does not import in .venv-peers" >&2; status=1
    fi
  fi
fi

# PyPy: only when a PyPy exists and PyTCP installs and imports under it.
if command -v pypy3 >/dev/null 2>&1; then
  if .venv-peers-pypy/bin/python -c "import pytcp" 2>/dev/null; then
    echo "setup_peers: .venv-peers-pypy ready"
  else
    rm -rf .venv-peers-pypy
    log=$(mktemp)
    if pypy3 -m venv .venv-peers-pypy >"$log" 2>&1 &&
       quiet_pip .venv-peers-pypy/bin/pip install -q --disable-pip-version-check "$spec" >"$log" 2>&1 &&
       .venv-peers-pypy/bin/python -c "import pytcp" >>"$log" 2>&1; then
      echo "setup_peers: .venv-peers-pypy ready"
    else
      echo "setup_peers: PyTCP does not run on this PyPy ($(pypy3 -c 'import sys; print(sys.version.split()[0])')):" >&2
      grep -v "^WARNING: Location" "$log" | tail -n 5 | sed 's/^/  /' >&2
      rm -rf .venv-peers-pypy
    fi
    rm -f "$log"
  fi
else
  echo "setup_peers: no pypy3 on PATH: no PyPy peer"
fi
exit "$status"
