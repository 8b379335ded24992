// What both benchmark programs (tapegrad's and libtorch's) share: the step loop with its page-fault
// counter, so that the two tables measure the same thing.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

namespace bench {

inline long page_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

// Runs step() in the benchmark loop after 3 warm-up steps; reports page faults per step.
template <class Step>
void run_steps(benchmark::State& state, Step&& step) {
  for (int i = 0; i < 3; ++i) step();
  const long before = page_faults();
  for (auto _ : state) step();
  state.counters["faults"] =
      double(page_faults() - before) / double(std::max<std::int64_t>(std::int64_t(state.iterations()), 1));
}

// The sizes N of the op table's rows (op/NAME/N on an N x N input, layer/Linear/N and the other
// square layers, optim/NAME/N, op/cross_entropy/N rows): 64 (overhead-bound) and 1024 (4 MB,
// bandwidth-bound), or the list in BENCH_SIZES, e.g. BENCH_SIZES=100,1000 for sizes that leave
// a remainder in every vector loop. A case whose reshape does not fit a size (bmm's (N/16, 16, N)
// at N = 100) is left out of the table (custom_sizes, below).
inline std::vector<std::int64_t> op_sizes() {
  const char* list = std::getenv("BENCH_SIZES");
  if (list == nullptr || *list == '\0') return {64, 1024};
  std::vector<std::int64_t> sizes;
  for (const char* p = list; *p != '\0';) {
    char* end = nullptr;
    const long long n = std::strtoll(p, &end, 10);
    if (end == p || n < 4) throw std::invalid_argument("BENCH_SIZES: expected sizes of at least 4, got '" + std::string(list) + "'");
    sizes.push_back(n);
    p = *end == ',' ? end + 1 : end;
    if (*end != ',' && *end != '\0') throw std::invalid_argument("BENCH_SIZES: expected a comma, got '" + std::string(list) + "'");
  }
  return sizes;
}

// Whether BENCH_SIZES gives the sizes. At those sizes each program registers only the op cases that
// fit (left_out): Google Benchmark's CSV output takes its header's counters from the first row of
// a run and aborts at a later row with a counter the header lacks, so a failed row (it has none)
// first in a group of bench.sh's ended the whole table (BENCH_SIZES=100,1000: op/sum_mid/100,
// (-1, 8, 100) from 100 x 100, opened a group). The default sizes fit every case.
inline bool custom_sizes() {
  const char* list = std::getenv("BENCH_SIZES");
  return list != nullptr && *list != '\0';
}

// The dtype of the op/, layer/ and optim/ rows: float32, or float64 with BENCH_DTYPE=float64 (the
// training steps, bn2d to fashion_cnn_step, stay float32).
inline bool float64_rows() {
  const char* name = std::getenv("BENCH_DTYPE");
  if (name == nullptr || *name == '\0' || std::string(name) == "float32") return false;
  if (std::string(name) == "float64") return true;
  throw std::invalid_argument("BENCH_DTYPE: expected float32 or float64, got '" + std::string(name) + "'");
}

// A tensor a case needs beside its input (indices, a row of weights), made once per size: each
// call site of fixed() keeps its own table.
template <class Make>
const auto& fixed(std::int64_t n, Make make) {
  static std::map<std::int64_t, decltype(make(n))> made;
  auto found = made.find(n);
  if (found == made.end()) found = made.emplace(n, make(n)).first;
  return found->second;
}

// The classes of op/cross_entropy_mid's (N, C, L) view of an L x L input: N = 4 below 256 and 16
// from there (64 -> (4, 16, 64), 1024 -> (16, 64, 1024)), halved until it divides L.
inline std::int64_t mid_batch(std::int64_t l) {
  std::int64_t batch = l < 256 ? 4 : 16;
  while (l % batch != 0) batch /= 2;
  return batch;
}

}  // namespace bench
