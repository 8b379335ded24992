#!/usr/bin/env bash
# Runs the whole test suite: installs missing packages (python3-sklearn brings the real digits
# data for the digits example's test), configures (Release with assertions), builds, runs ctest.
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh python3-sklearn
cmake --preset ci >/dev/null
cmake --build --preset ci -j "$(nproc)"
ctest --preset ci -j "$(nproc)"
