#!/usr/bin/env bash
# Builds tapegrad_bench and, when Debian's libtorch-dev is installed, torch_reference; runs them
# one after the other and prints the comparison table (as in the README), the BatchNorm kernels'
# bandwidth next to the machine's, and each process's peak memory on the mlp case.
# Usage: bash scripts/bench.sh [extra Google Benchmark flags, e.g. --benchmark_min_time=2]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# Fair to libtorch on a shared machine: its OpenMP threads sleep instead of spinning while they
# wait, and OpenBLAS does not start threads of its own next to them.
export OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1

bash "$root/scripts/deps.sh" libbenchmark-dev
cmake --preset bench -S "$root" >/dev/null
cmake --build "$root/build/bench" -j "$(nproc)" >/dev/null
bin="$root/build/bench/bench"
out="$(mktemp -d)"

run() {  # run NAME: all cases as CSV, then the mlp case alone for its peak memory
  # op_overhead runs on its own: the CSV reporter wants every case to have the same counters.
  for filter in "${BENCH_FILTER:-^(bn2d|bn3d|mlp|tiny|wide_adam|deep_narrow|infer_one|fashion_cnn_step|op/|layer/|optim/)}" '^op_overhead/'; do
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

# Median real time (ms), bytes/s and page faults per step, per case, from a CSV file.
times() {
  awk -F, '/^name,/ { f = 0; for (i = 1; i <= NF; i++) if ($i == "\"faults\"" || $i == "faults") f = i; next }
           /_median"?,/ { name = $1; gsub(/"/, "", name); sub(/\/real_time_median/, "", name);
                          printf "%s %s %s %s\n", name, $3, ($6 == "" ? 0 : $6), (f && $f != "" ? $f : "-") }' "$1"
}
times "$out/tapegrad_bench.csv" > "$out/t.txt"
[ "$have_torch" = 1 ] && times "$out/torch_reference.csv" > "$out/r.txt" || : > "$out/r.txt"

bw1="$("$bin/bandwidth" 1)"
bw2="$("$bin/bandwidth" 2)"

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), memory bandwidth ${bw1} GB/s (1 thread), ${bw2} GB/s (2 threads)"
echo
printf "| %-28s | %11s | %11s | %7s | %14s | %s |\n" case "tapegrad ms" "libtorch ms" "ratio" "faults/step" "tapegrad GB/s"
printf "| %-28s | %11s | %11s | %7s | %14s | %s |\n" "---" "---:" "---:" "---:" "---:" "---:"
while read -r name ms bytes faults; do
  ref="$(awk -v n="$name" '$1 == n {print $2}' "$out/r.txt")"
  ref_faults="$(awk -v n="$name" '$1 == n {print $4}' "$out/r.txt")"
  gbs="$(awk -v b="$bytes" 'BEGIN { if (b > 0) printf "%.1f", b / 1e9; else printf "" }')"
  fmt_faults() { awk -v f="$1" 'BEGIN { if (f == "-" || f == "") printf "-"; else printf "%.0f", f }'; }
  if [ -n "$ref" ]; then
    ratio="$(awk -v a="$ms" -v b="$ref" 'BEGIN { printf "%.2fx", b / a }')"
    printf "| %-28s | %11.4f | %11.4f | %7s | %6s / %-6s | %s |\n" "$name" "$ms" "$ref" "$ratio" \
      "$(fmt_faults "$faults")" "$(fmt_faults "$ref_faults")" "$gbs"
  else
    printf "| %-28s | %11.4f | %11s | %7s | %6s / %-6s | %s |\n" "$name" "$ms" "-" "-" "$(fmt_faults "$faults")" "-" "$gbs"
  fi
done < "$out/t.txt"
echo
echo "ratio = libtorch time / tapegrad time (above 1: tapegrad is faster); faults/step: tapegrad / libtorch."
echo "op/* and layer/* are forward + backward on a 64x64 or 1024x1024 input (cross_entropy: rows of 1000 classes), optim/* one step on a 64x64 or 1024x1024 parameter; the last number is the thread count."
echo "op_overhead is the time of the whole chain of 100 ops; per op it is a hundredth of that."
printf "peak memory of the mlp case: tapegrad %s MB" "$(awk '{printf "%.1f", $1 / 1024}' "$out/tapegrad_bench.rss")"
if [ "$have_torch" = 1 ]; then
  printf ", libtorch %s MB\n" "$(awk '{printf "%.1f", $1 / 1024}' "$out/torch_reference.rss")"
else
  printf " (libtorch not installed: apt-get install libtorch-dev)\n"
fi
rm -rf "$out"
