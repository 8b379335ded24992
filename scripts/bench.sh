#!/usr/bin/env bash
# Builds tapegrad_bench and, when Debian's libtorch-dev is installed, torch_reference; runs them
# one after the other and prints the comparison table (as in the README), the BatchNorm kernels'
# bandwidth next to the machine's, and each process's peak memory on the mlp case.
# Usage: bash scripts/bench.sh [extra Google Benchmark flags, e.g. --benchmark_min_time=2]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

bash "$root/scripts/deps.sh" libbenchmark-dev
cmake --preset bench -S "$root" >/dev/null
cmake --build "$root/build/bench" -j "$(nproc)" >/dev/null
bin="$root/build/bench/bench"
out="$(mktemp -d)"

run() {  # run NAME: all cases as CSV, then the mlp case alone for its peak memory
  # op_overhead runs on its own: the CSV reporter wants every case to have the same counters.
  for filter in '^(bn2d|bn3d|mlp|tiny)/' '^op_overhead/'; do
    "$bin/$1" --benchmark_format=csv --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
      --benchmark_filter="$filter" "${@:2}" 2>/dev/null >> "$out/$1.csv"
  done
  "$bin/$1" --benchmark_filter='^mlp/1/' --benchmark_min_time=1 2>&1 >/dev/null | awk '/peak_rss_kb/ {print $2}' \
    > "$out/$1.rss"
}
run tapegrad_bench "$@"
have_torch=0
if [ -x "$bin/torch_reference" ]; then
  run torch_reference "$@"
  have_torch=1
fi

# Median real time (ms) and bytes/s per case from a CSV file.
times() {
  awk -F, '/_median"?,/ { name = $1; gsub(/"/, "", name); sub(/\/real_time_median/, "", name);
                            printf "%s %s %s\n", name, $3, ($6 == "" ? 0 : $6) }' "$1"
}
times "$out/tapegrad_bench.csv" > "$out/t.txt"
[ "$have_torch" = 1 ] && times "$out/torch_reference.csv" > "$out/r.txt" || : > "$out/r.txt"

bw1="$("$bin/bandwidth" 1)"
bw2="$("$bin/bandwidth" 2)"

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), memory bandwidth ${bw1} GB/s (1 thread), ${bw2} GB/s (2 threads)"
echo
printf "| %-14s | %12s | %12s | %9s | %s |\n" case "tapegrad ms" "libtorch ms" "ratio" "tapegrad GB/s"
printf "| %-14s | %12s | %12s | %9s | %s |\n" "---" "---:" "---:" "---:" "---:"
while read -r name ms bytes; do
  ref="$(awk -v n="$name" '$1 == n {print $2}' "$out/r.txt")"
  gbs="$(awk -v b="$bytes" 'BEGIN { if (b > 0) printf "%.1f", b / 1e9; else printf "" }')"
  if [ -n "$ref" ]; then
    ratio="$(awk -v a="$ms" -v b="$ref" 'BEGIN { printf "%.2fx", b / a }')"
    printf "| %-14s | %12.4f | %12.4f | %9s | %s |\n" "$name" "$ms" "$ref" "$ratio" "$gbs"
  else
    printf "| %-14s | %12.4f | %12s | %9s | %s |\n" "$name" "$ms" "-" "-" "$gbs"
  fi
done < "$out/t.txt"
echo
echo "ratio = libtorch time / tapegrad time (above 1: tapegrad is faster)."
echo "op_overhead is the time of the whole chain of 100 ops; per op it is a hundredth of that."
printf "peak memory of the mlp case: tapegrad %s MB" "$(awk '{printf "%.1f", $1 / 1024}' "$out/tapegrad_bench.rss")"
if [ "$have_torch" = 1 ]; then
  printf ", libtorch %s MB\n" "$(awk '{printf "%.1f", $1 / 1024}' "$out/torch_reference.rss")"
else
  printf " (libtorch not installed: apt-get install libtorch-dev)\n"
fi
rm -rf "$out"
