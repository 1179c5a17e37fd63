#!/usr/bin/env bash
# Runs the test suite on CPU (creates .venv and installs requirements-dev.txt when needed).
#   bash scripts/test.sh            the fast tier: every test not marked slow (minutes)
#   bash scripts/test.sh --all      both tiers: adds the slow tier (learning checks, multi-process runs,
#                                   long oracles, end-to-end training); what CI runs (.ci/run)
#   bash scripts/test.sh --slow     the slow tier only
# Other arguments go to pytest: bash scripts/test.sh -k convert
# Tests run in up to 4 pytest-xdist workers (one per core, at least 1); TEST_WORKERS=0 runs them in
# this process (pytest's own output order, easier to debug).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tier=(-m "not slow")
args=()
for arg in "$@"; do
  case "$arg" in
    --all) tier=() ;;
    --slow) tier=(-m slow) ;;
    *) args+=("$arg") ;;
  esac
done
source scripts/setup.sh requirements-dev.txt
export JAX_PLATFORMS=cpu TF_CPP_MIN_LOG_LEVEL=2 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
workers="${TEST_WORKERS:-$(python -c 'import os; print(max(1, min(4, len(os.sched_getaffinity(0)))))')}"
if [ "$workers" -gt 0 ]; then
  exec python -m pytest -n "$workers" "${tier[@]}" "${args[@]}"
fi
exec python -m pytest "${tier[@]}" "${args[@]}"
