#!/usr/bin/env bash
# The main job: set up, then build a lab of namespaces and show the stack working with Linux tools.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/pynetstack demo "$@"
