#!/usr/bin/env bash
# Builds and runs an example training program: installs missing packages, configures (Release),
# builds the example and trains it. Extra arguments go to the program.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target xor
./build/release/examples/xor "$@"
