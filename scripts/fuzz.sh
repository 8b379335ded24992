#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/, clang with ASan + UBSan), writes the seed corpora with
# tapegrad itself, and runs each harness on its corpus.
#   bash scripts/fuzz.sh                 # a fixed number of executions each (what CI runs)
#   bash scripts/fuzz.sh --time 3600     # an hour per harness; findings land in build/fuzz/findings/
# Exits non-zero when a harness finds a crash, a sanitizer report or a foreign exception.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=20000
seconds=""
if [ "${1:-}" = "--time" ]; then seconds="${2:?--time takes seconds}"; fi

bash scripts/deps.sh clang libclang-rt-14-dev
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"
corpus=build/fuzz/corpus
findings=build/fuzz/findings
mkdir -p "$findings"
./build/fuzz/fuzz/make_corpus "$corpus"
for harness in safetensors optimizer_state csv idx; do
  limit=(-runs="$runs")
  if [ -n "$seconds" ]; then limit=(-max_total_time="$seconds"); fi
  echo "fuzz_$harness: ${limit[*]}"
  ./build/fuzz/fuzz/fuzz_"$harness" "${limit[@]}" -rss_limit_mb=4096 -artifact_prefix="$findings/$harness-" \
    "$corpus/$harness" 2>&1 | tail -n 3
done
echo "fuzz: every harness ran clean"
