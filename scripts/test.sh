#!/usr/bin/env bash
# Runs the test suite on CPU (creates .venv and installs requirements-dev.txt when needed).
# Extra arguments go to pytest: bash scripts/test.sh -k convert
# Tests run in up to 4 pytest-xdist workers (one per core, at least 1); TEST_WORKERS=0 runs them in
# this process (pytest's own output order, easier to debug).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh requirements-dev.txt
export JAX_PLATFORMS=cpu TF_CPP_MIN_LOG_LEVEL=2 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
workers="${TEST_WORKERS:-$(python -c 'import os; print(max(1, min(4, len(os.sched_getaffinity(0)))))')}"
if [ "$workers" -gt 0 ]; then
  exec python -m pytest -n "$workers" "$@"
fi
exec python -m pytest "$@"
