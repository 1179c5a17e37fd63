#!/usr/bin/env bash
# The embedded demo: generate the synthetic action/scene dataset, train DEVIAS and the Two-Token
# baseline on it, evaluate both on seen / unseen / scene-only splits and print the comparison table.
# Creates .venv and installs requirements.txt when needed (setup time is not part of the demo's budget).
#   bash scripts/demo.sh [workdir]      (default runs/demo; an existing run resumes or is re-used)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh requirements.txt
export TF_CPP_MIN_LOG_LEVEL=2
workdir="${1:-runs/demo}"
start=$(date +%s)
if [ ! -f data/synthetic/train.txt ]; then
  python scripts/make_synthetic_dataset.py --out=data/synthetic --workers=2 --train_per_action=80
fi
for method in devias two_token; do
  echo "== training ${method} (log: ${workdir}/${method}/metrics.jsonl, curves: training_curves.png)"
  python main.py --config=configs/demo.py:method=${method} --workdir="${workdir}/${method}" --mode=train
done
python scripts/compare_runs.py "${workdir}/devias" "${workdir}/two_token"
echo "demo finished in $(( $(date +%s) - start )) s"
