#!/usr/bin/env bash
# Build the wheel, install it in a clean venv (no checkout on the path) and run the demo and one
# eval scenario from an empty directory: what a user who runs `pip install mlops-supervisor`
# gets, with the shipped policies, playbooks and scenarios as package data.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work" build' EXIT
rm -rf build
"$PYTHON" -m pip wheel -q --no-deps -w "$work/dist" . 2>/dev/null
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$work"/dist/*.whl 2>"$work/pip.log" || {
  tail -40 "$work/pip.log"
  exit 1
}
mkdir "$work/run"
cd "$work/run"
"$work/venv/bin/mlops-supervisor" demo --out demo-out --registry sim >demo.log 2>&1 || {
  tail -40 demo.log
  exit 1
}
grep -q "verified" demo.log
"$work/venv/bin/mlops-supervisor" eval --out eval-out --systems supervisor \
  --only cov-drift-churn --no-progress >eval.log 2>&1 || {
  tail -40 eval.log
  exit 1
}
echo "wheel smoke: demo and eval ran from an installed wheel"
