#!/usr/bin/env bash
# The embedded demo (creates .venv and installs requirements.txt when needed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh requirements.txt
export TF_CPP_MIN_LOG_LEVEL=2
workdir="${1:-runs/demo}"
python main.py --config=configs/demo.py --workdir="$workdir" --mode=info
