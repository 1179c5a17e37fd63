#!/usr/bin/env bash
# Runs the test suite on CPU (creates .venv and installs requirements-dev.txt when needed).
# Extra arguments go to pytest: bash scripts/test.sh -k convert
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh requirements-dev.txt
export JAX_PLATFORMS=cpu TF_CPP_MIN_LOG_LEVEL=2 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec python -m pytest "$@"
