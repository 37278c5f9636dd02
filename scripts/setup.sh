#!/usr/bin/env bash
# Installs everything pynetstack's demo and tests need on Debian 12 (run as root).
# Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(iproute2 iputils-ping arping tcpdump netcat-openbsd socat curl ethtool
              pypy3 pypy3-venv python3-venv dnsutils knot-dnsutils nmap hping3 nsd unbound dnsperf
              nftables iperf3 coturn traceroute conntrack ipvsadm
              prometheus chromium chromium-driver)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages (${missing[*]}); run as root so apt-get can install them" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Daemons from these packages (nsd, unbound) are started by our tests with their own configs,
  # never as system services: policy-rc.d stops the packages from starting them on install.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && own_policy=1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || { [ $own_policy = 1 ] && rm -f "$policy"; exit 1; }
  [ $own_policy = 1 ] && rm -f "$policy"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/pip install -q -e ".[test,bench]" 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import pynetstack, pytest, scapy, dns, hypothesis" || { echo "setup: the CPython venv is incomplete" >&2; exit 1; }
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# PyPy: the unit tests run there too (Python 3.9 language level).
if command -v pypy3 >/dev/null; then
  if [ ! -x .venv-pypy/bin/python ]; then
    pypy3 -m venv .venv-pypy
  fi
  pstamp=.venv-pypy/.installed-$(sha1sum pyproject.toml | cut -c1-12)
  if [ ! -f "$pstamp" ]; then
    .venv-pypy/bin/pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
    .venv-pypy/bin/pip install -q -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
    .venv-pypy/bin/python -c "import pynetstack, pytest, hypothesis" || { echo "setup: the PyPy venv is incomplete" >&2; exit 1; }
    rm -f .venv-pypy/.installed-*
    touch "$pstamp"
  fi
fi
