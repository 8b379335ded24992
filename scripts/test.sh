#!/usr/bin/env bash
# Runs the whole test suite: installs missing packages (python3-sklearn and dataset-fashion-mnist
# bring the real digits and Fashion-MNIST data for the examples' tests), configures (Release with assertions), builds, runs ctest;
# then runs each fuzz harness for a fixed number of executions (scripts/fuzz.sh) and the whole
# suite again under ASan + LeakSanitizer + UBSan without recovery (scripts/sanitize.sh).
# Exits non-zero on any failure. TAPEGRAD_QUICK=1 runs the first part only.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh python3-sklearn dataset-fashion-mnist
cmake --preset ci >/dev/null
cmake --build --preset ci -j "$(nproc)"
ctest --preset ci -j "$(nproc)"
if [ "${TAPEGRAD_QUICK:-0}" = "1" ]; then exit 0; fi
bash scripts/fuzz.sh
bash scripts/sanitize.sh
