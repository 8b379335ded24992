#!/usr/bin/env bash
# Runs the whole test suite: installs missing packages, configures (Release with assertions),
# builds, and runs ctest. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
cmake --preset ci >/dev/null
cmake --build --preset ci -j "$(nproc)"
ctest --preset ci -j "$(nproc)"
