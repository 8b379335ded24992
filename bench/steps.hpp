// What both benchmark programs (tapegrad's and libtorch's) share: the step loop with its page-fault
// counter, so that the two tables measure the same thing.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <cstdint>

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

}  // namespace bench
