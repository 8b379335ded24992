#!/usr/bin/env bash
# Builds the whole project with AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer
# (-fno-sanitize-recover: any undefined behaviour fails) in Debug (the asan preset), and runs the
# whole test suite under them.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh python3-sklearn dataset-fashion-mnist
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$(nproc)"
ctest --preset asan -j "$(nproc)"
