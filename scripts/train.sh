#!/usr/bin/env bash
# Trains an example model: installs missing packages, configures (Release), builds the spirals
# example and runs it. It writes spirals.png (the decision boundary) in the current directory.
# Extra arguments go to the program (try --help).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

bash "$root/scripts/deps.sh"
cmake --preset release -S "$root" >/dev/null
cmake --build "$root/build/release" -j "$(nproc)" --target spirals
"$root/build/release/examples/spirals" --png "$PWD/spirals.png" "$@"
