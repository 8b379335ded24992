#!/usr/bin/env bash
# Builds tapegrad_bench and, when Debian's libtorch-dev is installed, torch_reference; runs them
# by turns, group of cases by group of cases, BENCH_ROUNDS times (3), and prints the comparison
# table (as in the README), the BatchNorm kernels' bandwidth next to the machine's, and each
# process's peak memory on the mlp case.
# Usage: bash scripts/bench.sh [extra Google Benchmark flags, e.g. --benchmark_min_time=2]
# (BENCH_FILTER=REGEX runs only those cases; BENCH_SIZES=100,1000 runs the op/, layer/NAME/N and
# optim/ rows at those sizes instead of 64 and 1024, and BENCH_DTYPE=float64 in float64: see
# bench/steps.hpp. BENCH_TORCH_KEEP_MEMORY=0 runs libtorch with glibc's malloc as it comes, giving
# freed memory back to the kernel, see below.)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# Fair to libtorch on a shared machine: its OpenMP threads sleep instead of spinning while they
# wait, and OpenBLAS does not start threads of its own next to them.
export OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1
# libtorch allocates through glibc's malloc, which serves large blocks by mmap and gives freed memory
# back to the kernel: depending on what ran before in the process, a step of libtorch can take
# thousands of page faults (`op/reshape/1024/1`: 18 ms with 1,120 faults a step after the other
# rows of its group, 0.31 ms with none on its own). So by default glibc keeps freed memory for
# libtorch (the largest mmap threshold it takes, no trimming), as a caching allocator would: the
# table compares libtorch's compute, not the history of its heap, with tapegrad's caching
# allocator. BENCH_TORCH_KEEP_MEMORY=0 leaves glibc's defaults (the tables before 2026-12-06).
keep_memory="${BENCH_TORCH_KEEP_MEMORY:-1}"
torch_env=()
[ "$keep_memory" = 1 ] && torch_env=(MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=17179869184)

bash "$root/scripts/deps.sh" libbenchmark-dev
cmake --preset bench -S "$root" >/dev/null
cmake --build "$root/build/bench" -j "$(nproc)" >/dev/null
bin="$root/build/bench/bench"
# Runs one side's program with its arguments (libtorch's under torch_env).
run_side() {
  local name="$1"
  shift
  if [ "$name" = torch_reference ]; then env "${torch_env[@]}" "$bin/$name" "$@"; else "$bin/$name" "$@"; fi
}
out="$(mktemp -d)"

# The cases go in groups of a dozen families (op/relu/*, layer/Linear/*, ...), and each round runs
# every group on tapegrad and then on libtorch: both sides of a row are measured within a minute
# or two of each other. (The whole of one side, then the whole of the other, had each side meet a
# different quarter of an hour of this shared host's load.) The table takes each case's median
# over the rounds.
rounds="${BENCH_ROUNDS:-3}"
filter="${BENCH_FILTER:-^(bn2d|bn3d|mlp|tiny|wide_adam|deep_narrow|infer_one|fashion_cnn_step|op/|layer/|optim/)}"
have_torch=0
[ -x "$bin/torch_reference" ] && have_torch=1
mapfile -t families < <("$bin/tapegrad_bench" --benchmark_list_tests --benchmark_filter="$filter" 2>/dev/null |
  awk -F/ '{ f = ($1 == "op" || $1 == "layer" || $1 == "optim") ? $1 "/" $2 : $1; if (!(f in seen)) { seen[f] = 1; print f } }')
groups=()
for ((i = 0; i < ${#families[@]}; i += 12)); do
  groups+=("^($(IFS='|'; echo "${families[*]:i:12}"))/")
done
# op_overhead on its own: the CSV reporter wants every case of a run to have the same counters.
groups+=('^op_overhead/')
for ((round = 0; round < rounds; round++)); do
  for group in "${groups[@]}"; do
    for name in tapegrad_bench torch_reference; do
      [ "$name" = torch_reference ] && [ "$have_torch" = 0 ] && continue
      run_side "$name" --benchmark_format=csv --benchmark_filter="$group" "$@" 2>/dev/null >> "$out/$name.csv"
    done
  done
done
# The mlp case alone, for each process's peak memory (at the default sizes: with BENCH_SIZES each
# program first tries every op case at them, bench/steps.hpp, which would count in its peak).
for name in tapegrad_bench torch_reference; do
  [ "$name" = torch_reference ] && [ "$have_torch" = 0 ] && continue
  BENCH_SIZES= run_side "$name" --benchmark_filter='^mlp/1/' --benchmark_min_time=1 2>&1 >/dev/null | awk '/peak_rss_kb/ {print $2}' \
    > "$out/$name.rss"
done

# Per case, in the order first run: the median over the rounds of real time (ms), with that run's
# bytes/s and page faults per step, from a CSV file.
times() {
  awk -F, '/^name,/ { f = 0; for (i = 1; i <= NF; i++) if ($i == "\"faults\"" || $i == "faults") f = i; next }
           /real_time"?,/ && $3 != "" { name = $1; gsub(/"/, "", name); sub(/\/real_time$/, "", name);
                            if (!(name in count)) order[++cases] = name;
                            k = ++count[name]; ms[name, k] = $3; bytes[name, k] = ($6 == "" ? 0 : $6);
                            faults[name, k] = (f && $f != "" ? $f : "-") }
           END { for (c = 1; c <= cases; c++) {
                   name = order[c]; n = count[name];
                   for (i = 1; i <= n; i++) pick[i] = i;
                   for (i = 2; i <= n; i++)  # insertion sort of the runs by time
                     for (j = i; j > 1 && ms[name, pick[j - 1]] + 0 > ms[name, pick[j]] + 0; j--) {
                       t = pick[j]; pick[j] = pick[j - 1]; pick[j - 1] = t
                     }
                   m = pick[int((n + 1) / 2)];
                   printf "%s %s %s %s\n", name, ms[name, m], bytes[name, m], faults[name, m]
                 } }' "$1"
}
times "$out/tapegrad_bench.csv" > "$out/t.txt"
[ "$have_torch" = 1 ] && times "$out/torch_reference.csv" > "$out/r.txt" || : > "$out/r.txt"

bw1="$("$bin/bandwidth" 1)"
bw2="$("$bin/bandwidth" 2)"

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), memory bandwidth ${bw1} GB/s (1 thread), ${bw2} GB/s (2 threads)"
[ -n "${BENCH_SIZES:-}${BENCH_DTYPE:-}" ] && echo "op/, layer/NAME/N and optim/ rows: sizes ${BENCH_SIZES:-64,1024}, ${BENCH_DTYPE:-float32}"
echo
printf "| %-30s | %11s | %11s | %7s | %14s | %s |\n" case "tapegrad ms" "libtorch ms" "ratio" "faults/step" "tapegrad GB/s"
printf "| %-30s | %11s | %11s | %7s | %14s | %s |\n" "---" "---:" "---:" "---:" "---:" "---:"
while read -r name ms bytes faults; do
  ref="$(awk -v n="$name" '$1 == n {print $2}' "$out/r.txt")"
  ref_faults="$(awk -v n="$name" '$1 == n {print $4}' "$out/r.txt")"
  gbs="$(awk -v b="$bytes" 'BEGIN { if (b > 0) printf "%.1f", b / 1e9; else printf "" }')"
  fmt_faults() { awk -v f="$1" 'BEGIN { if (f == "-" || f == "") printf "-"; else printf "%.0f", f }'; }
  if [ -n "$ref" ]; then
    ratio="$(awk -v a="$ms" -v b="$ref" 'BEGIN { printf "%.2fx", b / a }')"
    printf "| %-30s | %11.4f | %11.4f | %7s | %6s / %-6s | %s |\n" "$name" "$ms" "$ref" "$ratio" \
      "$(fmt_faults "$faults")" "$(fmt_faults "$ref_faults")" "$gbs"
  else
    printf "| %-30s | %11.4f | %11s | %7s | %6s / %-6s | %s |\n" "$name" "$ms" "-" "-" "$(fmt_faults "$faults")" "-" "$gbs"
  fi
done < "$out/t.txt"
echo
echo "ratio = libtorch time / tapegrad time (above 1: tapegrad is faster); faults/step: tapegrad / libtorch."
if [ "$keep_memory" = 1 ]; then
  echo "libtorch ran with glibc's malloc keeping freed memory (BENCH_TORCH_KEEP_MEMORY=0 for glibc's defaults)."
else
  echo "libtorch ran with glibc's malloc defaults (BENCH_TORCH_KEEP_MEMORY=0): its page faults count in its times."
fi
echo "op/* and layer/* are forward + backward on a 64x64 or 1024x1024 input (cross_entropy: rows of 1000 classes), optim/* one step on a 64x64 or 1024x1024 parameter; the last number is the thread count."
echo "op_overhead is the time of the whole chain of 100 ops; per op it is a hundredth of that."
printf "peak memory of the mlp case: tapegrad %s MB" "$(awk '{printf "%.1f", $1 / 1024}' "$out/tapegrad_bench.rss")"
if [ "$have_torch" = 1 ]; then
  printf ", libtorch %s MB\n" "$(awk '{printf "%.1f", $1 / 1024}' "$out/torch_reference.rss")"
else
  printf " (libtorch not installed: apt-get install libtorch-dev)\n"
fi
rm -rf "$out"
