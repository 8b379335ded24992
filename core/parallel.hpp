// TBB, the one thread pool, and the loops that split work over it.
//
// Every split is fixed by the problem size and a grain, never by the thread count, and every
// reduction combines its partial results in block order: the same program gives the same bits
// with 1 thread and with 2. (One split follows the thread count: an embedding's gradient shares
// out the table's rows, and each row's sum runs in index order whoever adds it; see
// scatter_add_rows in core/ops/shape.cpp.) Work below the grain runs inline on the calling
// thread, so small tensors pay no scheduling cost.
//
// OpenBLAS is held to one thread: tapegrad splits large GEMMs over TBB itself (core/ops/linalg.cpp),
// so the two never fight for the cores.
#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>

namespace tg {

void set_num_threads(int num_threads);  // at least 1; also the cap for TBB inside tapegrad
int get_num_threads();

namespace parallel {

// Elements per task for cheap elementwise work (a few ns per element).
inline constexpr std::size_t kGrain = 32768;

// Calls body(begin, end) over [0, n) in chunks of at most `grain`.
template <class Body>
void for_range(std::size_t n, std::size_t grain, Body&& body) {
  if (n == 0) return;
  if (n <= grain || get_num_threads() == 1) {
    body(std::size_t{0}, n);
    return;
  }
  tbb::parallel_for(
      tbb::blocked_range<std::size_t>(0, n, grain),
      [&](const tbb::blocked_range<std::size_t>& range) { body(range.begin(), range.end()); },
      tbb::simple_partitioner());
}

// y[0, n) = x[0, n), kGrain values a task.
template <class T>
void copy(const T* x, std::size_t n, T* y) {
  for_range(n, kGrain, [&](std::size_t first, std::size_t last) { std::copy(x + first, x + last, y + first); });
}

// Splits [0, n) into ceil(n / block) fixed blocks, computes partial(begin, end) for each (in
// parallel, `grain` blocks a task, when there are more) and folds the partials in block order with
// combine(acc, part). The blocks fix the bits; the grain only who computes them (a sum of 10,000
// floats in two blocks of 8,192 took 2.0 us on one thread and 3.2 on two).
template <class Acc, class Partial, class Combine>
Acc reduce_blocks(std::size_t n, std::size_t block, Acc init, Partial&& partial, Combine&& combine,
                  std::size_t grain = 1) {
  const std::size_t blocks = n == 0 ? 0 : (n + block - 1) / block;
  if (blocks <= 1) return blocks == 0 ? init : combine(init, partial(std::size_t{0}, n));
  std::vector<Acc> parts(blocks);  // each one assigned below (copies of init cost a pass each for large ones)
  for_range(blocks, grain, [&](std::size_t first, std::size_t last) {
    for (std::size_t b = first; b < last; ++b)
      parts[b] = partial(b * block, b + 1 == blocks ? n : (b + 1) * block);
  });
  Acc acc = init;
  for (const Acc& part : parts) acc = combine(std::move(acc), part);
  return acc;
}

}  // namespace parallel
}  // namespace tg
