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
# the dataset configs/demo.py expects (DEMO_DATA_FLAGS); regenerated when missing or made with other flags
data_flags=$(python -c "from configs.demo import DEMO_DATA_FLAGS; print(' '.join(DEMO_DATA_FLAGS))")
if [ ! -f data/synthetic/train.txt ] || [ "$(cat data/synthetic/demo_flags.txt 2>/dev/null)" != "${data_flags}" ]; then
  rm -rf data/synthetic
  python -m scripts.make_synthetic_dataset --out=data/synthetic --workers=2 ${data_flags}
  echo "${data_flags}" > data/synthetic/demo_flags.txt
fi
for method in devias two_token; do
  echo "== training ${method} (log: ${workdir}/${method}/metrics.jsonl, curves: training_curves.png)"
  python main.py --config=configs/demo.py:method=${method} --workdir="${workdir}/${method}" --mode=train
done
python -m scripts.compare_runs "${workdir}/devias" "${workdir}/two_token"
echo "demo finished in $(( $(date +%s) - start )) s"
