#!/usr/bin/env bash
# Creates .venv (if missing) and installs the given requirements file into it, once per change of
# that file. Usage: source scripts/setup.sh requirements.txt
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="${1:-requirements.txt}"
venv="$repo/.venv"
if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating $venv"
  python3 -m venv "$venv"
fi
stamp="$venv/.installed-$(basename "$requirements")"
digest="$(cat "$repo/$requirements" "$repo/requirements.txt" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  echo "[setup] installing $requirements into $venv (first run takes a few minutes)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$repo/$requirements"
  echo "$digest" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
