// Reductions. sum and max/min are primitives with their own kernels; mean, var and std are
// composed from them, so their gradients come from the tape. norm has a row kernel and its own
// backward (PyTorch's, 0 at a zero norm); normalize is composed from it. cumsum is a scan.
#include "core/ops/reduce.hpp"
#include "core/xtensor.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <xtensor/xreducer.hpp>

#include "core/autograd.hpp"
#include "core/creation.hpp"
#include "core/ops/elementwise.hpp"
#include "core/ops/kernels.hpp"
#include "core/ops/shape.hpp"

namespace tg {

namespace {

// Values per block of a whole-tensor sum; blocks are summed in double and combined in block order,
// whatever the thread count.
constexpr std::size_t kSumBlock = 8192;

template <class T>
double block_sum(const T* x, std::size_t n) {
  return kernels::lane_sum(n, [x](auto at) { return at(x); });
}

// Σ part(begin, end) over the blocks of kSumBlock of [0, n), in double, added in block order (the
// same bits at any thread count); on one thread below kGrain values.
template <class Part>
double blocked_sum(std::size_t n, Part&& part) {
  return parallel::reduce_blocks(n, kSumBlock, 0.0, part, [](double acc, double p) { return acc + p; },
                                 parallel::kGrain / kSumBlock);
}

template <class T>
T sum_all(const T* x, std::size_t n) {
  return static_cast<T>(blocked_sum(n, [x](std::size_t begin, std::size_t end) { return block_sum(x + begin, end - begin); }));
}

// sum_dim for I columns, 2 <= I <= 8 ((N, 3) over dim 0; a small Linear's bias gradient): the
// columns' sums in double registers over blocks of rows (even and odd rows apart, two chains),
// the blocks added in order, in parallel over blocks: the bits depend on the sizes only. (A masked
// batch add per row of three: 2.4 ms for (300000, 3), 4.6x libtorch's time.)
template <std::size_t I, class T>
void sum_short_columns(const T* x, const kernels::ReduceLayout& l, T* out) {
  using Sums = std::array<double, I>;
  constexpr std::size_t kRows = kSumBlock / 8;
  auto add = [](Sums a, const Sums& b) {
    for (std::size_t i = 0; i < I; ++i) a[i] += b[i];
    return a;
  };
  parallel::for_range(l.outer, std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(1, l.reduced * I)),
                      [&](std::size_t first, std::size_t last) {
                        for (std::size_t o = first; o < last; ++o) {
                          const T* rows = x + o * l.reduced * I;
                          auto block = [rows, &add](std::size_t begin, std::size_t end) {
                            Sums even{}, odd{};
                            std::size_t r = begin;
                            for (; r + 1 < end; r += 2)
                              for (std::size_t i = 0; i < I; ++i) {
                                even[i] += double(rows[r * I + i]);
                                odd[i] += double(rows[(r + 1) * I + i]);
                              }
                            if (r < end)
                              for (std::size_t i = 0; i < I; ++i) even[i] += double(rows[r * I + i]);
                            return add(even, odd);
                          };
                          const Sums total = parallel::reduce_blocks(l.reduced, kRows, Sums{}, block, add,
                                                                     parallel::kGrain / (kRows * I));
                          for (std::size_t i = 0; i < I; ++i) out[o * I + i] = T(total[i]);
                        }
                      });
}

// dst[i] = Σ_{r < count} rows[r·stride + i] for i < width, N batches wide (the last one may be
// partial), the sums in registers: a row a step, each column in row order (the bits of a loop of
// kernels::apply over the rows, whose sums went through memory between rows: (100000, 16) over
// dim 0 took 4 ns a row).
template <std::size_t N, class T>
void column_sums_in_registers(const T* rows, std::size_t count, std::size_t stride, std::size_t width, T* dst) {
  using B = kernels::Batch<T>;
  constexpr std::size_t W = B::size;
  const std::size_t tail = width - (N - 1) * W;  // values in the last batch, 1 to W
  auto load = [tail](const T* at, std::size_t k) {
    return k + 1 < N || tail == W ? B::load_unaligned(at) : kernels::load_partial(at, tail, T(0));
  };
  std::array<B, N> sums;
  for (std::size_t k = 0; k < N; ++k) sums[k] = load(rows + k * W, k);
  for (std::size_t r = 1; r < count; ++r)
    for (std::size_t k = 0; k < N; ++k) sums[k] = sums[k] + load(rows + r * stride + k * W, k);
  for (std::size_t k = 0; k < N; ++k) {
    if (k + 1 < N || tail == W)
      sums[k].store_unaligned(dst + k * W);
    else
      kernels::store_partial(sums[k], dst + k * W, tail);
  }
}

// out[o, i] = sum over r of x[o, r, i]. With one outer row the rows are summed in fixed blocks
// whose sums are added in block order; otherwise each output element is summed in r order by one
// task. Either way the bits depend on the sizes only. 2-8 columns are summed by
// sum_short_columns (blocks of rows, added in order).
template <class T>
void sum_dim(const T* x, const kernels::ReduceLayout& l, T* out) {
  if (l.reduced == 0) {  // a sum over nothing is 0, as in PyTorch
    std::fill_n(out, l.outer * l.inner, T(0));
    return;
  }
  if (l.outer == 0 || l.inner == 0) return;  // no sums to write
  const std::size_t work_per_outer = l.reduced * l.inner;
  if (l.inner == 1) {
    // Rows shorter than two SIMD batches: one double chain per row (the rows' chains overlap); a
    // lane sum's setup and fold cost more than the adding (a sum over the last dim of (65536, 10)
    // ran at 0.36x PyTorch).
    const bool short_rows = l.reduced < 2 * kernels::Batch<T>::size;
    parallel::for_range(l.outer, std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(1, l.reduced)),
                        [&](std::size_t first, std::size_t last) {
                          for (std::size_t o = first; o < last; ++o) {
                            const T* row = x + o * l.reduced;
                            if (short_rows) {
                              double total = 0;
                              for (std::size_t i = 0; i < l.reduced; ++i) total += double(row[i]);
                              out[o] = T(total);
                            } else {
                              out[o] = sum_all(row, l.reduced);
                            }
                          }
                        });
    return;
  }
  // A few columns: sums in registers.
  if (kernels::with_known_size<2, 8>(l.inner, [&]<std::size_t I>() { sum_short_columns<I>(x, l, out); })) return;
  // Each row added into the column sums, in row order (a plain SIMD loop: an xtensor assignment
  // per row cost more than the adding in small sums, e.g. 64×64 over dim 0). Up to 8 batches of
  // columns, the sums stay in registers; wider, the sums of up to kStrip columns stay in a buffer
  // on the stack (L1) and go to dst once: with out as the accumulator, two tasks added into the
  // same line of it once a row.
  constexpr std::size_t kStrip = 32768 / sizeof(T);
  auto add_rows = [&](const T* rows, std::size_t count, std::size_t width, T* dst) {
    using B = kernels::Batch<T>;
    if (width <= 8 * B::size) {  // up to 8 batches: the sums in registers
      kernels::with_known_size<1, 8>((width + B::size - 1) / B::size, [&]<std::size_t N>() {
        column_sums_in_registers<N>(rows, count, l.inner, width, dst);
      });
      return;
    }
    alignas(64) std::array<T, kStrip> acc;
    for (std::size_t s = 0; s < width; s += kStrip) {
      const std::size_t w = std::min(kStrip, width - s);
      if (count == 1) std::copy(rows + s, rows + s + w, dst + s);
      const T* sum = rows + s;  // of the rows so far
      for (std::size_t r = 1; r < count; ++r) {
        kernels::apply(w, r + 1 == count ? dst + s : acc.data(), [](B a, B b) { return a + b; }, sum,
                       rows + r * l.inner + s);
        sum = acc.data();
      }
    }
  };
  if (l.outer > 1) {
    parallel::for_range(l.outer, std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(1, work_per_outer)),
                        [&](std::size_t first, std::size_t last) {
                          for (std::size_t o = first; o < last; ++o)
                            add_rows(x + o * work_per_outer, l.reduced, l.inner, out + o * l.inner);
                        });
    return;
  }
  // One outer row, (N, I) over dim 0: blocks of rows, each summed into its own row of sums, the
  // rows added in block order (kernels::sum_of_blocks: by sizes only, the same bits at any thread
  // count); a block in parallel over strips of columns. Strips of 64 columns over all the rows,
  // one a task, read every row in pieces of 256 bytes 4 KB apart, and (1000, 1000) took 47 us at
  // one thread and 100 at two; in blocks of rows, 30-50 at two. At most 64 rows are one block,
  // each column added in row order. Rows of up to 32 KB are read whole (they stream); longer
  // ones in strips of 16 KB or less, as many as it takes ((32, 100000): 170 us at one thread
  // in 16 KB strips, 250 in 32 KB ones, whose sums and input overflow L1).
  const std::size_t rows_per_block = std::max<std::size_t>(64, 4 * parallel::kGrain / l.inner);
  const std::size_t strips = l.inner <= kStrip ? 1 : (2 * l.inner + kStrip - 1) / kStrip;
  constexpr std::size_t kLine = 64 / sizeof(T);
  const std::size_t strip = ((l.inner + strips - 1) / strips + kLine - 1) / kLine * kLine;  // whole lines
  kernels::sum_of_blocks(l.reduced, rows_per_block, l.inner, out, [&](std::size_t first, std::size_t last, T* sums) {
    parallel::for_range(strips, std::max<std::size_t>(1, parallel::kGrain / ((last - first) * strip)),
                        [&](std::size_t s0, std::size_t s1) {
      for (std::size_t column = s0 * strip; column < std::min(l.inner, s1 * strip); column += strip)
        add_rows(x + first * l.inner + column, last - first, std::min(strip, l.inner - column), sums + column);
    });
  });
}

// The input's dims merged into alternating runs of kept and reduced dims (size-1 dims dropped):
// a (N, C, H, W) summed over {0, 2, 3} is [R N][K C][R H·W]. Reducing a whole run at once is one
// pass where a dim at a time would be one pass per dim.
struct Runs {
  std::vector<std::size_t> sizes;
  std::vector<bool> reduced;
};

Runs merge_runs(const Shape& shape, const std::vector<std::size_t>& dims) {
  Runs runs;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    const bool r = std::find(dims.begin(), dims.end(), d) != dims.end();
    if (!runs.sizes.empty() && runs.reduced.back() == r) {
      runs.sizes.back() *= shape[d];
    } else {
      runs.sizes.push_back(shape[d]);
      runs.reduced.push_back(r);
    }
  }
  return runs;
}

// out[a][c][e] = Σ_b Σ_d x[a][b][c][d][e] over the runs [K a][R b][K c][R d][K e] (any of them
// may be 1): two reduced runs in one pass. Each output row out[a][c][:] is one task's, summed in
// double in (b, d) order, so the bits never depend on the thread count.
template <class T>
void sum_two_runs(const T* x, std::size_t a, std::size_t b, std::size_t c, std::size_t d, std::size_t e, T* out) {
  const std::size_t rows = a * c, work = b * d * e;
  parallel::for_range(rows, std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(1, work)),
                      [&](std::size_t first, std::size_t last) {
    Buffer<double> acc(e);
    for (std::size_t row = first; row < last; ++row) {
      const std::size_t ia = row / c, ic = row % c;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (std::size_t ib = 0; ib < b; ++ib) {
        const T* block = x + ((ia * b + ib) * c + ic) * d * e;  // x[ia][ib][ic][:][:]
        if (e == 1) {
          acc[0] += block_sum(block, d);
          continue;
        }
        for (std::size_t id = 0; id < d; ++id)
          for (std::size_t ie = 0; ie < e; ++ie) acc[ie] += double(block[id * e + ie]);
      }
      for (std::size_t ie = 0; ie < e; ++ie) out[row * e + ie] = T(acc[ie]);
    }
  });
}

std::vector<std::size_t> wrap_dims(const char* op, const std::vector<std::int64_t>& dims, const Shape& shape) {
  std::vector<std::size_t> wrapped;
  for (std::int64_t d : dims) {
    const std::size_t w = wrap_dim(op, d, shape.size(), shape);
    TG_CHECK(std::find(wrapped.begin(), wrapped.end(), w) == wrapped.end(), op, ": dim ", d,
             " appears more than once in ", dims);
    wrapped.push_back(w);
  }
  if (dims.empty() || shape.empty()) {  // every dim (a 0-d tensor's dim 0 or -1 is all of it, as in PyTorch)
    wrapped.resize(shape.size());
    std::iota(wrapped.begin(), wrapped.end(), std::size_t{0});
  }
  std::sort(wrapped.begin(), wrapped.end());
  return wrapped;
}

Shape reduced_shape(const Shape& shape, const std::vector<std::size_t>& dims, bool keepdim) {
  Shape out;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    const bool reduced = std::find(dims.begin(), dims.end(), d) != dims.end();
    if (!reduced) out.push_back(shape[d]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

// The gradient of a reduction, spread back over the input's shape.
Tensor spread(const Tensor& grad, const Shape& kept_shape, const Shape& input_shape) {
  return expand(reshape(grad, kernels::as_signed(kept_shape)), kernels::as_signed(input_shape));
}

}  // namespace

// ---- sum and the compositions on it ---------------------------------------------------------

namespace {

// sum's node. Its backward spreads the gradient over the input's shape (an expanded copy); when
// the engine already holds a gradient for the input that nothing else shares (x takes gradients
// from several ops: x - mean(x, 1, true), sum(x, 2, true) * sum(x, 1, true)), the spread is added
// into that in place, one pass against the kept values, instead of an expanded copy and a second
// pass to add it (alternating runs, one thread: op/center_rows/1024 0.86-0.95 → 0.48-0.61 ms,
// op/outer_batched/1024 0.92-1.27 → 0.67-1.07). Either way each value is that gradient plus the
// same kept value: the same bits.
class SumNode final : public Node {
 public:
  SumNode(Shape kept, Shape input) : Node("sum"), kept_(std::move(kept)), input_(std::move(input)) {}

 private:
  Grads apply(const Tensor& grad) override { return {spread(grad, kept_, input_)}; }
  bool add_into_input_gradient(Tensor& gradient, const Tensor& grad) override {
    if (gradient.shape() != input_ || grad.dtype() != gradient.dtype()) return false;
    dispatch_floating(grad.dtype(), "sum", [&]<class T>() {
      using B = kernels::Batch<T>;
      const T* kept = grad.data<T>();
      T* into = gradient.mutable_data<T>();  // bumps the version
      const kernels::BroadcastRows l = kernels::broadcast_rows(input_, input_, kept_);
      const std::size_t row = l.row;
      if (l.walks[1]) {
        kernels::for_broadcast_rows(l, [into, kept, row](std::size_t r, std::size_t, std::size_t offset) {
          kernels::apply(row, into + r * row, [](B a, B b) { return a + b; }, static_cast<const T*>(into + r * row),
                         kept + offset);
        });
      } else {
        kernels::for_broadcast_rows(l, [into, kept, row](std::size_t r, std::size_t, std::size_t offset) {
          const B value(kept[offset]);
          kernels::apply(row, into + r * row, [value](B a) { return a + value; }, static_cast<const T*>(into + r * row));
        });
      }
    });
    return true;
  }
  void release() override {}  // two shapes are all it keeps

  Shape kept_, input_;
};

// The sum of int64 values (counts: sum(eq(predicted, labels))), int64 as in PyTorch, never
// differentiable; each value added into its output position, found by dropping the reduced dims.
Tensor sum_int64(const Tensor& a, const std::vector<std::size_t>& reduce, const Shape& out_shape) {
  const Shape& shape = a.shape();
  std::vector<std::int64_t> totals(checked_numel("sum", out_shape), 0);
  const std::int64_t* x = a.data<std::int64_t>();
  const std::size_t n = a.numel();
  if (totals.size() == 1) {  // everything (counting matches): one vectorised pass per block
    totals[0] = parallel::reduce_blocks(
        n, parallel::kGrain, std::int64_t{0},
        [&](std::size_t begin, std::size_t end) { return std::accumulate(x + begin, x + end, std::int64_t{0}); },
        [](std::int64_t acc, std::int64_t part) { return acc + part; });
    return Tensor(totals, out_shape);
  }
  std::vector<bool> kept(shape.size(), true);
  for (std::size_t d : reduce) kept[d] = false;
  std::vector<std::size_t> index(shape.size(), 0);
  for (std::size_t k = 0; k < n; ++k) {
    std::size_t at = 0;
    for (std::size_t d = 0; d < shape.size(); ++d)
      if (kept[d]) at = at * shape[d] + index[d];
    totals[at] += x[k];
    for (std::size_t d = shape.size(); d-- > 0;) {  // the next row-major index
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return Tensor(totals, out_shape);
}

}  // namespace

Tensor sum(const Tensor& a) { return sum(a, {}, false); }

Tensor sum(const Tensor& a, const std::vector<std::int64_t>& dims, bool keepdim) {
  const Shape& in_shape = a.shape();
  const std::vector<std::size_t> reduce = wrap_dims("sum", dims, in_shape);
  const Shape kept = reduced_shape(in_shape, reduce, true);
  if (a.dtype() == kInt64) return sum_int64(a, reduce, reduced_shape(in_shape, reduce, keepdim));
  Tensor out = dispatch_floating(a.dtype(), "sum", [&]<class T>() {
    const kernels::Input<T> x = kernels::input<T>(a);
    if (reduce.size() == in_shape.size()) {  // everything: one blocked sum
      xt::xarray<T> total = xt::xarray<T>::from_shape(kept);
      total.data()[0] = sum_all(x.data(), x.size());
      return make_tensor<T>(std::move(total));
    }
    // One pass for up to two runs of reduced dims (every broadcast gradient of up to 5 dims, and
    // most beyond); more runs: one pass per dim, last dim first.
    const Runs runs = merge_runs(in_shape, reduce);
    std::size_t reduced_runs = 0;
    for (bool r : runs.reduced) reduced_runs += r ? 1 : 0;
    if (reduced_runs <= 2 && runs.sizes.size() <= 5) {
      // Pad the runs to [K][R][K][R][K].
      std::size_t g[5] = {1, 1, 1, 1, 1};
      std::size_t slot = 0;
      for (std::size_t k = 0; k < runs.sizes.size(); ++k) {
        const std::size_t want = slot % 2 == 1;  // odd slots are reduced
        if (runs.reduced[k] != bool(want)) ++slot;
        g[slot++] = runs.sizes[k];
      }
      xt::xarray<T> result = xt::xarray<T>::from_shape(kept);
      if (g[1] == 1 || g[3] == 1) {  // one reduced run: the column/row kernel
        const std::size_t r = g[1] * g[3];
        const std::size_t outer = g[1] == 1 ? g[0] * g[2] : g[0], inner = g[1] == 1 ? g[4] : g[2] * g[4];
        sum_dim(x.data(), kernels::ReduceLayout{outer, r, inner}, result.data());
      } else {
        sum_two_runs(x.data(), g[0], g[1], g[2], g[3], g[4], result.data());
      }
      return make_tensor<T>(std::move(result));
    }
    kernels::Input<T> source = x;
    xt::xarray<T> current;
    for (auto d = reduce.rbegin(); d != reduce.rend(); ++d) {
      Shape next = source.shape();
      next[*d] = 1;
      xt::xarray<T> result = xt::xarray<T>::from_shape(next);
      sum_dim(source.data(), kernels::reduce_layout(source.shape(), *d), result.data());
      current = std::move(result);
      source = current;
    }
    return make_tensor<T>(std::move(current));
  });
  if (!keepdim) kernels::reshape_in_place(out, reduced_shape(in_shape, reduce, false));
  return record_node(std::move(out), {a}, {}, [&] { return std::make_shared<SumNode>(kept, in_shape); });
}

Tensor mean(const Tensor& a) { return mean(a, {}, false); }

Tensor mean(const Tensor& a, const std::vector<std::int64_t>& dims, bool keepdim) {
  TG_CHECK(is_floating(a.dtype()), "mean: expected a floating-point tensor, got int64 ", shape_str(a.shape()),
           " (as PyTorch's mean; sum counts int64 values, or convert with .to(tg::kFloat64))");
  const std::vector<std::size_t> reduce = wrap_dims("mean", dims, a.shape());
  std::size_t count = 1;
  for (std::size_t d : reduce) count *= a.shape()[d];
  return sum(a, dims, keepdim) / static_cast<double>(count);
}

namespace {

// logsumexp over the last dim of contiguous rows of n > 0 values, a row kernel: per row the max m
// (0 where it is infinite, as below), then m + log Σ e^(x - m) in one more pass over the row; a
// block of rows at a time, each phase over the whole block (kernels::for_row_blocks). Its
// backward is g·e^(x - out), one pass. (The composed form, still used over other dims, took 6 ops
// each way: forward and backward over 64 × 64 5.6 -> 3 µs, over 1024 × 1024 0.62 -> 0.37 ms.)
template <class T>
void logsumexp_rows(const T* x, T* out, std::size_t rows, std::size_t n) {
  using B = kernels::Batch<T>;
  constexpr std::size_t width = B::size;
  const T lowest = -std::numeric_limits<T>::infinity();
  parallel::for_range(rows, std::max<std::size_t>(1, parallel::kGrain / n), [&](std::size_t first, std::size_t last) {
    kernels::for_row_blocks<T>(first, last, n, [&](std::size_t block, std::size_t count) {
      if (n < width) {
        // Rows shorter than a batch (kernels::exp_rows' way): the block's values are one run,
        // exponentiated a batch at a time against a run of their rows' shifts, then each row's sum
        // in order. (A batch per row of 3 values computed 16 exponentials for 3: 0.7x libtorch.)
        alignas(64) std::array<T, kernels::kRowBlock * width> shift, exps;
        const T* values = x + block * n;
        for (std::size_t r = 0; r < count; ++r) {
          T largest = values[r * n];
          for (std::size_t i = 1; i < n; ++i) largest = std::max(largest, values[r * n + i]);
          std::fill_n(shift.data() + r * n, n, std::isinf(largest) ? T(0) : largest);
        }
        kernels::apply(count * n, exps.data(), [](B v, B m) { return kernels::exp_lanes(v - m); }, values, shift.data());
        for (std::size_t r = 0; r < count; ++r) {
          T total = exps[r * n];
          for (std::size_t i = 1; i < n; ++i) total += exps[r * n + i];
          out[block + r] = shift[r * n] + std::log(total);
        }
        return;
      }
      std::array<T, kernels::kRowBlock> shift;
      for (std::size_t r = 0; r < count; ++r) {
        const T largest = kernels::row_max(x + (block + r) * n, n);
        shift[r] = std::isinf(largest) ? T(0) : largest;
      }
      for (std::size_t r = 0; r < count; ++r) {
        const T* row = x + (block + r) * n;
        const B m(shift[r]);
        B total(T(0));
        std::size_t i = 0;
        for (; i + width <= n; i += width) total += kernels::exp_lanes(B::load_unaligned(row + i) - m);
        if (i < n) total += kernels::exp_lanes(kernels::load_partial(row + i, n - i, lowest) - m);
        out[block + r] = shift[r] + std::log(kernels::sum_lanes(total));
      }
    });
  });
}

}  // namespace

Tensor logsumexp(const Tensor& a, const std::vector<std::int64_t>& dims, bool keepdim) {
  TG_CHECK(is_floating(a.dtype()), "logsumexp: expected a floating-point tensor, got ", dtype_name(a.dtype()));
  const std::vector<std::size_t> reduce = wrap_dims("logsumexp", dims, a.shape());
  if (reduce.size() == 1 && reduce[0] + 1 == a.dim() && a.shape().back() > 0) {  // over the last dim: rows
    const std::size_t n = a.shape().back(), rows = a.numel() / n;
    const Shape out_shape = reduced_shape(a.shape(), reduce, keepdim);
    Tensor out = dispatch_floating(a.dtype(), "logsumexp", [&]<class T>() {
      xt::xarray<T> result = xt::xarray<T>::from_shape(out_shape);
      logsumexp_rows(a.data<T>(), result.data(), rows, n);
      return make_tensor<T>(std::move(result));
    });
    // ∂out/∂x = e^(x - out): softmax of the row.
    return record("logsumexp", out, {a}, {a, out}, [a, out, n](const Tensor& grad) -> Grads {
      return {dispatch_floating(grad.dtype(), "logsumexp", [&]<class T>() {
        using B = kernels::Batch<T>;
        xt::xarray<T> dx = xt::xarray<T>::from_shape(a.shape());
        const T *x = a.data<T>(), *total = out.data<T>(), *g = grad.data<T>();
        parallel::for_range(out.numel(), std::max<std::size_t>(1, parallel::kGrain / n),
                            [&](std::size_t first, std::size_t last) {
          if (n < B::size) {  // short rows: blocks of rows as one run, against runs of their shifts and scales
            kernels::for_row_blocks<T>(first, last, n, [&](std::size_t block, std::size_t count) {
              alignas(64) std::array<T, kernels::kRowBlock * B::size> shift, scale;
              for (std::size_t r = 0; r < count; ++r) {
                std::fill_n(shift.data() + r * n, n, total[block + r]);
                std::fill_n(scale.data() + r * n, n, g[block + r]);
              }
              kernels::apply(count * n, dx.data() + block * n, [](B v, B m, B c) { return c * kernels::exp_lanes(v - m); },
                             x + block * n, shift.data(), scale.data());
            });
            return;
          }
          for (std::size_t r = first; r < last; ++r) {
            const B shift(total[r]), scale(g[r]);
            kernels::apply(n, dx.data() + r * n, [&](B v) { return scale * kernels::exp_lanes(v - shift); }, x + r * n);
          }
        });
        return make_tensor<T>(std::move(dx));
      })};
    });
  }
  // Over an empty dim the sum of exponentials is 0: -inf, as in PyTorch (there is no max to shift by).
  for (std::size_t d : reduce)
    if (a.shape()[d] == 0) return log(sum(exp(a), dims, keepdim));
  // log Σ exp(x) = m + log Σ exp(x - m) with m the max over the dims, a constant for the gradient
  // (which is then softmax(x) exactly). An infinite max is replaced by 0, as PyTorch does, so that
  // all -inf gives -inf and a +inf gives +inf rather than NaN.
  Tensor shift = a.detach();
  for (std::size_t d : reduce) shift = std::get<0>(max(shift, std::int64_t(d), true));
  shift = unary("logsumexp", shift, [](auto m) { return pick(xsimd::isinf(m), 0, m); });
  const Tensor total = log(sum(exp(a - shift), dims, keepdim));
  return total + (keepdim ? shift : reshape(shift, kernels::as_signed(total.shape())));
}

Tensor var(const Tensor& a, const std::vector<std::int64_t>& dims, bool unbiased, bool keepdim) {
  const std::vector<std::size_t> reduce = wrap_dims("var", dims, a.shape());
  std::size_t count = 1;
  for (std::size_t d : reduce) count *= a.shape()[d];
  // Bessel's correction. The divisor does not go below 0, as in PyTorch: with one value the
  // unbiased variance is 0/0 = NaN, and so is any variance of no values.
  const double divisor = std::max(0.0, static_cast<double>(count) - (unbiased ? 1.0 : 0.0));
  Tensor centred, out;
  {
    NoGradGuard no_grad;
    centred = a - mean(a, dims, true);
    out = sum(centred * centred, dims, keepdim) / divisor;
  }
  // dx = 2·(x - mean)·g / divisor in one pass, as PyTorch's var_backward: the mean's own term,
  // -Σ dx / n, is 0 and is left out (through a NaN or an infinity it would spread NaN to the row).
  const Shape kept = reduced_shape(a.shape(), reduce, true);
  return record("var", out, {a}, [centred, divisor, kept](const Tensor& grad) -> Grads {
    const Tensor g = grad.shape() == kept ? grad : reshape(grad, kernels::as_signed(kept));
    return {binary("var", centred, g, [scale = 2.0 / divisor](auto c, auto v) {
      return c * v * decltype(c)(scalar_like(c, scale));
    })};
  });
}

Tensor std(const Tensor& a, const std::vector<std::int64_t>& dims, bool unbiased, bool keepdim) {
  wrap_dims("std", dims, a.shape());  // errors name std, not the var it is built on
  const Tensor variance = var(a, dims, unbiased, keepdim);
  // sqrt, except that the gradient is 0 where the deviation is 0 (all values equal), as PyTorch's
  // std_backward: sqrt's 1/(2·0) = inf times var's centred values, all 0, would be NaN.
  Tensor out = unary("std", variance, [](auto v) { return xsimd::sqrt(v); });
  return record("std", out, {variance}, {out}, [out](const Tensor& grad) -> Grads {
    return {pointwise("std", [](auto g, auto o) {
      using T = element_of<decltype(o)>;
      return pick(o == T(0), T(0), g / (o + o));
    }, grad, out)};
  });
}

// ---- vector norms ---------------------------------------------------------------------------

namespace {

// The largest (Largest) or smallest |x| of n values, NaN if one is NaN: a batch at a time, the
// NaNs tracked apart (what max and min do with NaN differs between instruction sets).
template <bool Largest, class T>
double extreme_abs(const T* x, std::size_t n) {
  using B = kernels::Batch<T>;
  constexpr std::size_t width = B::size;
  const T neutral = Largest ? T(0) : std::numeric_limits<T>::infinity();
  B found(neutral);
  typename B::batch_bool_type nan(false);
  auto take = [&](const B& values) {
    const B v = xsimd::abs(values);
    nan = nan || xsimd::isnan(v);
    found = Largest ? xsimd::max(found, v) : xsimd::min(found, v);
  };
  std::size_t i = 0;
  for (; i + width <= n; i += width) take(B::load_unaligned(x + i));
  if (i < n) take(kernels::load_partial(x + i, n - i, neutral));
  if (xsimd::any(nan)) return std::numeric_limits<double>::quiet_NaN();
  return double(kernels::fold_lanes(found, [](T a, T b) { return Largest ? std::max(a, b) : std::min(a, b); }));
}

// The p-norm of each of `rows` contiguous rows of n values, accumulated in double (as PyTorch's
// CPU kernel: the squares of floats beyond 1.8e19 do not overflow), a long row in fixed blocks
// added in order (the same bits for any thread count). p = inf and -inf take the largest and the
// smallest |x| (NaN if the row has one), p = 0 counts the non-zero values.
template <class T>
void row_norms(const T* x, std::size_t rows, std::size_t n, double p, T* out) {
  auto row_norm = [&](const T* row) -> double {
    if (p == 2.0 || p == 1.0) {
      const double total = blocked_sum(n, [row, p](std::size_t begin, std::size_t end) {
        if (p == 1.0) return kernels::lane_sum<double>(end - begin, [r = row + begin](auto at) { return xsimd::abs(at(r)); });
        return kernels::lane_sum<double>(end - begin, [r = row + begin](auto at) {
          const auto v = at(r);
          return v * v;
        });
      });
      return p == 2.0 ? std::sqrt(total) : total;
    }
    if (std::isinf(p)) {  // max and min are exact: any order of the blocks gives the same bits
      const bool largest = p > 0;
      return parallel::reduce_blocks(
          n, kSumBlock, largest ? 0.0 : std::numeric_limits<double>::infinity(),
          [row, largest](std::size_t begin, std::size_t end) {
            return largest ? extreme_abs<true>(row + begin, end - begin) : extreme_abs<false>(row + begin, end - begin);
          },
          [largest](double acc, double part) {
            if (std::isnan(acc) || std::isnan(part)) return std::numeric_limits<double>::quiet_NaN();
            return largest ? std::max(acc, part) : std::min(acc, part);
          },
          parallel::kGrain / kSumBlock);
    }
    if (p == 0.0) return double(std::count_if(row, row + n, [](T v) { return v != T(0); }));
    const double total = blocked_sum(n, [row, p](std::size_t begin, std::size_t end) {
      double part = 0.0;
      for (std::size_t i = begin; i < end; ++i) part += std::pow(std::abs(double(row[i])), p);
      return part;
    });
    return std::pow(total, 1.0 / p);
  };
  parallel::for_range(rows, std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(n, 1)),
                      [&](std::size_t first, std::size_t last) {
                        for (std::size_t r = first; r < last; ++r) out[r] = T(row_norm(x + r * n));
                      });
}

// The gradient of the p-norm `norm` (kept dims) of x for the incoming gradient `grad` (kept dims),
// as PyTorch 1.13's norm_backward: 0 wherever the norm is 0 (where sqrt's 1/(2·0) would give NaN);
//   p = 2:    x · g / ‖x‖              p = 1:  sgn(x) · g
//   p = ±inf: sgn(x) · g / k at the k values with |x| = ‖x‖ (or NaN, when ‖x‖ is), 0 elsewhere
//   other p:  sgn(x) · |x|^(p-1) · g / ‖x‖^(p-1), and 0 where x = 0
//   p = 0:    0 (a count)
Tensor norm_backward(const Tensor& x, const Tensor& norm, const Tensor& grad, double p,
                     const std::vector<std::int64_t>& dims) {
  NoGradGuard no_grad;
  if (p == 0.0) return zeros_like(x);
  if (p == 1.0) return binary("norm", x, grad, [](auto v, auto g) { return sgn(v) * g; });
  if (std::isinf(p)) {  // the values at the extreme (NaN ones when the norm is NaN), g shared evenly
    const Tensor at_extreme = binary("norm", x, norm, [](auto v, auto m) {
      using T = element_of<decltype(v)>;
      return pick((xsimd::abs(v) == m) | (xsimd::isnan(v) & xsimd::isnan(m)), T(1), T(0));
    });
    const Tensor share = binary("norm", grad, sum(at_extreme, dims, true), [](auto g, auto k) { return g / k; });
    return binary("norm", x, binary("norm", at_extreme, share, [](auto e, auto s) { return e * s; }),
                  [](auto v, auto s) { return sgn(v) * s; });
  }
  const Tensor scale = binary("norm", grad, norm, [p](auto g, auto m) {
    using T = element_of<decltype(m)>;
    if (p == 2.0) return pick(m == T(0), T(0), g / m);
    return pick(m == T(0), T(0), g / xsimd::pow(m, decltype(m)(T(p - 1))));
  });
  if (p == 2.0) return binary("norm", x, scale, [](auto v, auto s) { return v * s; });
  return binary("norm", x, scale, [p](auto v, auto s) {
    using T = element_of<decltype(v)>;
    return pick(v == T(0), T(0), sgn(v) * xsimd::pow(xsimd::abs(v), decltype(v)(T(p - 1))) * s);
  });
}

}  // namespace

Tensor norm(const Tensor& a, double p, const std::vector<std::int64_t>& dims, bool keepdim) {
  TG_CHECK(is_floating(a.dtype()), "norm: expected a floating-point tensor, got ", dtype_name(a.dtype()), " ",
           shape_str(a.shape()));
  TG_CHECK(p >= 0 || p == -std::numeric_limits<double>::infinity(), "norm: p must be 0, positive or ±infinity, got ",
           p);
  const Shape& shape = a.shape();
  const std::vector<std::size_t> reduce = wrap_dims("norm", dims, shape);
  std::size_t n = 1;
  for (std::size_t d : reduce) n *= shape[d];
  TG_CHECK(n > 0 || !std::isinf(p), "norm: the ", p > 0 ? "" : "-", "infinity norm of no values (dims ", dims,
           " of ", shape_str(shape), ") is undefined, as in PyTorch");
  // The reduced dims last (a copy unless they are already), then one norm per row.
  std::vector<std::int64_t> order;
  for (std::size_t d = 0; d < shape.size(); ++d)
    if (std::find(reduce.begin(), reduce.end(), d) == reduce.end()) order.push_back(std::int64_t(d));
  for (std::size_t d : reduce) order.push_back(std::int64_t(d));
  bool in_order = true;
  for (std::size_t k = 0; k < order.size(); ++k) in_order = in_order && order[k] == std::int64_t(k);
  Tensor rows_of;
  {
    NoGradGuard no_grad;
    rows_of = in_order ? a : permute(a, order);
  }
  const Shape kept = reduced_shape(shape, reduce, true);
  Tensor out = dispatch_floating(a.dtype(), "norm", [&]<class T>() {
    xt::xarray<T> result = xt::xarray<T>::from_shape(kept);
    row_norms(rows_of.data<T>(), result.size(), n, p, result.data());
    return make_tensor<T>(std::move(result));
  });
  if (!keepdim) kernels::reshape_in_place(out, reduced_shape(shape, reduce, false));
  const std::vector<std::int64_t> kept_dims(reduce.begin(), reduce.end());
  return record("norm", out, {a}, {a, out}, [a, out, p, kept, kept_dims](const Tensor& grad) -> Grads {
    NoGradGuard no_grad;
    const std::vector<std::int64_t> sizes = kernels::as_signed(kept);
    return {norm_backward(a, out.reshape(sizes), grad.reshape(sizes), p, kept_dims)};
  });
}

Tensor normalize(const Tensor& a, double p, std::int64_t dim, double eps) {
  TG_CHECK(eps >= 0, "normalize: eps must not be negative, got ", eps);
  return a / clamp(norm(a, p, {dim}, true), eps, std::nullopt);
}

// ---- cumsum ---------------------------------------------------------------------------------

namespace {

// y[o, r, i] = Σ_{s <= r} x[o, s, i] (reverse: Σ_{s >= r}), each running sum in double (as
// PyTorch's CPU kernel accumulates float), down the reduced dim in order: the same bits for any
// split. Rows (inner = 1) go through scan_rows; otherwise a slab of up to kScanColumns columns at
// a time runs down the rows together, a SIMD batch across columns.
inline constexpr std::size_t kScanColumns = 256;

template <bool Reverse, class T>
void scan_slab(const T* x, T* y, std::size_t reduced, std::size_t inner, std::size_t columns) {
  std::array<double, kScanColumns> total{};
  for (std::size_t step = 0; step < reduced; ++step) {
    const std::size_t r = Reverse ? reduced - 1 - step : step;
    const T* xr = x + r * inner;
    T* yr = y + r * inner;
    for (std::size_t c = 0; c < columns; ++c) {
      total[c] += double(xr[c]);
      yr[c] = T(total[c]);
    }
  }
}

// Rows contiguous rows side by side, each running sum in its own register (kept in an array
// indexed by a runtime column, a store and reload per value took cumsum over 1024 x 1024 5.3 ms):
// kScanRows of them make independent chains of additions that the core overlaps (one row at a
// time, each step waited for the last one's add: forward and backward, one thread, by turns on an
// AMD Zen 5, `op/cumsum/64/1` 5.4-5.7 → 3.7-3.9 µs, `op/cumsum/1024/1` 1.82-2.03 → 0.94-1.05 ms).
// The rest go one at a time; every row's sums are the same in the same order either way.
inline constexpr std::size_t kScanRows = 8;

template <std::size_t Rows, bool Reverse, class T>
void scan_rows(const T* x, T* y, std::size_t reduced) {
  std::array<double, Rows> total{};
  for (std::size_t step = 0; step < reduced; ++step) {
    const std::size_t r = Reverse ? reduced - 1 - step : step;
    for (std::size_t k = 0; k < Rows; ++k) {
      total[k] += double(x[k * reduced + r]);
      y[k * reduced + r] = T(total[k]);
    }
  }
}

template <bool Reverse, class T>
void scan(const T* x, T* y, const kernels::ReduceLayout& l) {
  if (l.outer == 0 || l.reduced == 0 || l.inner == 0) return;
  const std::size_t columns = std::min(l.inner, kScanColumns), per_outer = (l.inner + columns - 1) / columns;
  const std::size_t grain = std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(1, l.reduced * columns));
  parallel::for_range(l.outer * per_outer, grain, [&](std::size_t first, std::size_t last) {
    if (l.inner == 1) {  // rows: kScanRows at a time, then the rest one at a time
      for (; first + kScanRows <= last; first += kScanRows)
        scan_rows<kScanRows, Reverse>(x + first * l.reduced, y + first * l.reduced, l.reduced);
      for (; first < last; ++first) scan_rows<1, Reverse>(x + first * l.reduced, y + first * l.reduced, l.reduced);
      return;
    }
    for (std::size_t slab = first; slab < last; ++slab) {
      const std::size_t o = slab / per_outer, c = slab % per_outer * columns;
      const std::size_t at = o * l.reduced * l.inner + c;
      scan_slab<Reverse>(x + at, y + at, l.reduced, l.inner, std::min(columns, l.inner - c));
    }
  });
}

}  // namespace

Tensor cumsum(const Tensor& a, std::int64_t dim) {
  const std::size_t d = wrap_dim("cumsum", dim, std::max<std::size_t>(a.dim(), 1), a.shape());
  const kernels::ReduceLayout layout = a.dim() == 0 ? kernels::ReduceLayout{} : kernels::reduce_layout(a.shape(), d);
  Tensor out = dispatch_floating(a.dtype(), "cumsum", [&]<class T>() {
    xt::xarray<T> result = xt::xarray<T>::from_shape(a.shape());
    scan<false>(a.data<T>(), result.data(), layout);
    return make_tensor<T>(std::move(result));
  });
  // The gradient of a running sum is the running sum of the gradient from the other end.
  return record("cumsum", out, {a}, [layout, shape = a.shape()](const Tensor& grad) -> Grads {
    return {dispatch_floating(grad.dtype(), "cumsum", [&]<class T>() {
      xt::xarray<T> dx = xt::xarray<T>::from_shape(shape);
      scan<true>(grad.data<T>(), dx.data(), layout);
      return make_tensor<T>(std::move(dx));
    })};
  });
}

// ---- max, min, argmax, argmin ---------------------------------------------------------------

namespace {

// find_extremes for I columns, 2 <= I <= 8 (max over dim 0 of (N, 3)): each column's extreme so
// far and its row in registers over blocks of rows, the blocks' winners compared in order (a later
// block wins only if strictly more extreme, or with the first NaN), in parallel over blocks: the
// first extreme, as a row at a time finds it. (A loop over 3 columns per row, on one thread: 0.6x
// libtorch's time for (300000, 3).)
template <std::size_t I, bool Largest, class T>
void extreme_short_columns(const T* x, const kernels::ReduceLayout& l, T* values, std::int64_t* index) {
  struct Part {
    std::array<T, I> best;
    std::array<std::int64_t, I> at;
  };
  auto wins = [](T v, T b) { return (Largest ? v > b : v < b) || (v != v && b == b); };
  auto combine = [&wins](Part acc, const Part& part) {
    for (std::size_t i = 0; i < I; ++i)
      if (wins(part.best[i], acc.best[i])) acc.best[i] = part.best[i], acc.at[i] = part.at[i];
    return acc;
  };
  Part none;  // before the first block: any value but an equal one wins (the first of ties stays)
  none.best.fill(Largest ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity());
  none.at.fill(0);
  constexpr std::size_t kRows = 1024;
  parallel::for_range(l.outer, std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(1, l.reduced * I)),
                      [&](std::size_t first, std::size_t last) {
                        for (std::size_t o = first; o < last; ++o) {
                          const T* rows = x + o * l.reduced * I;
                          auto block = [rows, &wins](std::size_t begin, std::size_t end) {
                            Part part;
                            for (std::size_t i = 0; i < I; ++i) part.best[i] = rows[begin * I + i];
                            part.at.fill(std::int64_t(begin));
                            for (std::size_t r = begin + 1; r < end; ++r)
                              for (std::size_t i = 0; i < I; ++i) {
                                const T v = rows[r * I + i];
                                const bool take = wins(v, part.best[i]);
                                part.best[i] = take ? v : part.best[i];
                                part.at[i] = take ? std::int64_t(r) : part.at[i];
                              }
                            return part;
                          };
                          const Part found = parallel::reduce_blocks(l.reduced, kRows, none, block, combine,
                                                                     parallel::kGrain / (kRows * I));
                          std::copy(found.best.begin(), found.best.end(), values + o * I);
                          std::copy(found.at.begin(), found.at.end(), index + o * I);
                        }
                      });
}

// For every (outer, inner) position, the first extreme value along the reduced dim and its index
// there, into values and index (outer × inner of each).
template <bool Largest, class T>
void find_extremes(const T* x, const kernels::ReduceLayout& l, T* values, std::int64_t* index) {
  if (l.outer * l.inner == 0) return;  // an empty dim besides the reduced one: nothing to find
  const std::size_t grain = std::max<std::size_t>(1, parallel::kGrain / (l.reduced * l.inner));
  if (l.inner == 1) {
    // Rows: the extreme value in SIMD lanes, then the first position that holds it. A NaN wins,
    // so a row with one gives the first NaN's position. Three short passes over a row that stays
    // in cache, each vectorised, instead of one branchy scalar pass; rows shorter than two batches
    // take one pass of selects (the three passes cost 3x more), unrolled for 2 to 8 values. (max
    // over 2048 rows of two, forward and backward: 8.7 us with the row length and extreme()'s
    // inner of 1 known at run time only, 4.6 with both known to the compiler.) In float32 on
    // AVX-512, rows of 2 to 8 values go 16 at a time, lane i holding row i: value r of every row
    // by one gather (stride N), the same selects across lanes. Every path writes the extreme value
    // beside its index (a second pass had gathered the values through the indices): op/max_pairs/64/1
    // 7.3-8.0 -> 4.0-6.7 us, /1024/1 1.55-1.91 -> 0.93-1.29 ms, max_last/64/1 3.0-4.1 -> 2.6-2.8 us.
    using B = kernels::Batch<T>;
    const std::size_t n = l.reduced;
    if (n < 2 * B::size) {
      auto short_rows = [&]<std::size_t N>() {  // N = 0: n at run time
        parallel::for_range(l.outer, grain, [&](std::size_t first, std::size_t last) {
          std::size_t o = first;
#if defined(__AVX512F__)
          if constexpr (N != 0 && std::is_same_v<T, float>) {
            const __m512i offsets = _mm512_mullo_epi32(
                _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(int(N)));
            for (; o + 16 <= last; o += 16) {
              const float* rows = x + o * N;
              __m512 best = _mm512_i32gather_ps(offsets, rows, 4);
              __m512i at = _mm512_setzero_si512();
              for (std::size_t r = 1; r < N; ++r) {
                const __m512 v = _mm512_i32gather_ps(offsets, rows + r, 4);
                const __mmask16 more = _mm512_cmp_ps_mask(v, best, Largest ? _CMP_GT_OQ : _CMP_LT_OQ);
                const __mmask16 take = _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q) &
                                       (more | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q));
                best = _mm512_mask_mov_ps(best, take, v);
                at = _mm512_mask_mov_epi32(at, take, _mm512_set1_epi32(int(r)));
              }
              _mm512_storeu_ps(values + o, best);
              _mm512_storeu_si512(index + o, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(at)));
              _mm512_storeu_si512(index + o + 8, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(at, 1)));
            }
          }
#endif
          for (; o < last; ++o) {
            const T* row = x + o * (N ? N : n);
            T best = row[0];
            std::size_t at = 0;
            for (std::size_t r = 1; r < (N ? N : n); ++r) {
              const T v = row[r];
              const bool take = !std::isnan(best) && (std::isnan(v) || (Largest ? v > best : v < best));
              best = take ? v : best;
              at = take ? r : at;
            }
            values[o] = best;
            index[o] = std::int64_t(at);
          }
        });
      };
      if (!kernels::with_known_size<2, 8>(n, short_rows)) short_rows.template operator()<0>();
      return;
    }
    const T identity = Largest ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
    parallel::for_range(l.outer, grain, [&](std::size_t first, std::size_t last) {
      for (std::size_t o = first; o < last; ++o) {
        const T* row = x + o * n;
        const T nans = kernels::row_sum(n, T(0), [](B v) { return pick(xsimd::isnan(v), T(1), T(0)); }, row);
        if (nans > 0) {
          index[o] = std::int64_t(std::find_if(row, row + n, [](T v) { return std::isnan(v); }) - row);
          values[o] = row[index[o]];
          continue;
        }
        constexpr std::size_t width = B::size;
        B extreme(identity);
        std::size_t r = 0;
        for (; r + width <= n; r += width)
          extreme = Largest ? xsimd::max(extreme, B::load_unaligned(row + r)) : xsimd::min(extreme, B::load_unaligned(row + r));
        if (r < n) {
          const B tail = kernels::load_partial(row + r, n - r, identity);
          extreme = Largest ? xsimd::max(extreme, tail) : xsimd::min(extreme, tail);
        }
        const T value = kernels::fold_lanes(extreme, [](T a, T b) { return Largest ? std::max(a, b) : std::min(a, b); });
        index[o] = std::int64_t(std::find(row, row + n, value) - row);
        values[o] = row[index[o]];  // not `value`: the lanes' fold may give 0 for the row's -0
      }
    });
    return;
  }
  // A few columns: in registers.
  if (kernels::with_known_size<2, 8>(l.inner,
                                     [&]<std::size_t I>() { extreme_short_columns<I, Largest>(x, l, values, index); }))
    return;
  // Columns (inner > 1): for a run of up to kColumns positions, the extreme so far and its row,
  // updated a row at a time with selects instead of branches, so the loop vectorises (it was a
  // branch and a load through the index per value: max over dim 0 of 64×64 took 5.1 µs). Tasks
  // are (outer, run) pairs, so a reduction over dim 0 is parallel too.
  constexpr std::size_t kColumns = 512;
  const std::size_t runs = (l.inner + kColumns - 1) / kColumns;
  const std::size_t run_grain = std::max<std::size_t>(1, parallel::kGrain / (l.reduced * std::min(l.inner, kColumns)));
  parallel::for_range(l.outer * runs, run_grain, [&](std::size_t first, std::size_t last) {
    T best[kColumns];
    for (std::size_t task = first; task < last; ++task) {
      const std::size_t o = task / runs, i0 = (task % runs) * kColumns, width = std::min(kColumns, l.inner - i0);
      const T* block = x + o * l.reduced * l.inner + i0;
      std::int64_t* at = index + o * l.inner + i0;
      std::copy(block, block + width, best);
      std::fill_n(at, width, 0);
      for (std::size_t r = 1; r < l.reduced; ++r) {
        const T* row = block + r * l.inner;
        for (std::size_t i = 0; i < width; ++i) {  // v wins: more extreme, or a NaN (first) as in PyTorch
          const T v = row[i], b = best[i];
          const bool take = (Largest ? v > b : v < b) || (v != v && b == b);
          best[i] = take ? v : b;
          at[i] = take ? std::int64_t(r) : at[i];
        }
      }
      std::copy(best, best + width, values + o * l.inner + i0);
    }
  });
}

template <bool Largest>
std::tuple<Tensor, Tensor> extreme(const char* op, const Tensor& a, std::optional<std::int64_t> dim, bool keepdim) {
  const Shape in_shape = a.shape();
  // Without a dim the tensor is treated as one flat row.
  const std::size_t d = dim ? wrap_dim(op, *dim, in_shape.size(), in_shape) : 0;
  TG_CHECK(dim ? in_shape.empty() || in_shape[d] > 0 : a.numel() > 0, op, ": cannot reduce over ",
           dim ? "dim " + std::to_string(*dim) + " of size 0" : std::string("an empty tensor"), " in ",
           shape_str(in_shape), " (there is no identity for ", op, ")");
  const kernels::ReduceLayout layout =
      dim ? kernels::reduce_layout(in_shape, d) : kernels::ReduceLayout{1, a.numel(), 1};
  // argmax(x, keepdim=true) without a dim keeps every dim, at size 1, as PyTorch's.
  const Shape out_shape = dim ? reduced_shape(in_shape, {d}, keepdim) : Shape(keepdim ? in_shape.size() : 0, 1);
  Tensor values, indices;
  std::tie(values, indices) = dispatch_floating(a.dtype(), op, [&]<class T>() {
    xt::xarray<T> best = xt::xarray<T>::from_shape(out_shape);
    xt::xarray<std::int64_t> found = xt::xarray<std::int64_t>::from_shape(out_shape);
    find_extremes<Largest>(a.data<T>(), layout, best.data(), found.data());
    return std::make_tuple(make_tensor<T>(std::move(best)), make_tensor<std::int64_t>(std::move(found)));
  });
  if (!dim) {
    // The maximum of the whole tensor: its gradient is shared evenly by every value equal to it
    // (every NaN when it is NaN), as PyTorch's evenly_distribute_backward.
    const std::size_t first = std::size_t(indices.item<std::int64_t>());
    return {record(op, values, {a}, {a}, [a, value = values.item(), first](const Tensor& grad) -> Grads {
              return {dispatch_floating(grad.dtype(), "max", [&]<class T>() {
                const T* x = a.data<T>();
                const std::size_t n = a.numel();
                // A tie is x == best, or x != x when best is NaN: counted, then given its share
                // (with no tie, the whole gradient goes to the forward's first maximum).
                xt::xarray<T> out;
                auto shares = [&](auto ties) {
                  const double count = kernels::lane_sum<T>(n, [&](auto at) { return pick(ties(at(x)), T(1), T(0)); });
                  const T share = grad.data<T>()[0] / T(count);
                  if (count == 1) {
                    out = kernels::zeros<T>(a.shape());
                    out.data()[first] = share;
                    return;
                  }
                  out = xt::xarray<T>::from_shape(a.shape());
                  kernels::apply_parallel(n, out.data(), [&](auto v) { return pick(ties(v), share, T(0)); }, x);
                };
                if (value != value)
                  shares([](auto v) { return xsimd::isnan(v); });  // (a batch's != is ordered: false at NaN)
                else
                  shares([best = T(value)](auto v) { return v == decltype(v)(best); });
                return make_tensor<T>(std::move(out));
              })};
            }),
            indices};
  }
  values = record(op, values, {a}, [indices, layout, in_shape](const Tensor& grad) -> Grads {
    // The gradient goes to the position each value came from (the first, at ties, as PyTorch's).
    return {dispatch_floating(grad.dtype(), "max", [&]<class T>() {
      // Each task zeroes its outer blocks and writes their gradients: in parallel, no shared writes.
      xt::xarray<T> out = xt::xarray<T>::from_shape(in_shape);
      const T* g = grad.data<T>();
      const std::int64_t* index = indices.data<std::int64_t>();
      const std::size_t block = layout.reduced * layout.inner;
      auto scatter = [&]<std::size_t I>() {  // I = 0: inner at run time; 1 known (rows)
        const std::size_t inner = I ? I : layout.inner;
        parallel::for_range(layout.outer, std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(1, block)),
                            [&](std::size_t first, std::size_t last) {
                              std::fill(out.data() + first * block, out.data() + last * block, T(0));
                              for (std::size_t o = first, k = first * inner; o < last; ++o)
                                for (std::size_t i = 0; i < inner; ++i, ++k)
                                  out.data()[o * block + std::size_t(index[k]) * inner + i] = g[k];
                            });
      };
      if (!kernels::with_known_size<1, 1>(layout.inner, scatter)) scatter.template operator()<0>();
      return make_tensor<T>(std::move(out));
    })};
  });
  return {values, indices};
}

}  // namespace

Tensor max(const Tensor& a) { return std::get<0>(extreme<true>("max", a, std::nullopt, false)); }
Tensor min(const Tensor& a) { return std::get<0>(extreme<false>("min", a, std::nullopt, false)); }

std::tuple<Tensor, Tensor> max(const Tensor& a, std::int64_t dim, bool keepdim) {
  return extreme<true>("max", a, dim, keepdim);
}

std::tuple<Tensor, Tensor> min(const Tensor& a, std::int64_t dim, bool keepdim) {
  return extreme<false>("min", a, dim, keepdim);
}

Tensor argmax(const Tensor& a, std::optional<std::int64_t> dim, bool keepdim) {
  NoGradGuard no_grad;
  return std::get<1>(extreme<true>("argmax", a, dim, keepdim));
}

Tensor argmin(const Tensor& a, std::optional<std::int64_t> dim, bool keepdim) {
  NoGradGuard no_grad;
  return std::get<1>(extreme<false>("argmin", a, dim, keepdim));
}

// ---- the engine's un-broadcast --------------------------------------------------------------

Tensor sum_to(const Tensor& a, const Shape& shape) {
  const Shape& from = a.shape();
  TG_CHECK(shape.size() <= from.size(), "sum_to: cannot sum ", shape_str(from), " to the larger rank ",
           shape_str(shape));
  const std::size_t lead = from.size() - shape.size();
  std::vector<std::int64_t> dims;
  for (std::size_t d = 0; d < from.size(); ++d) {
    if (d < lead) {
      dims.push_back(std::int64_t(d));
      continue;
    }
    const std::size_t target = shape[d - lead];
    TG_CHECK(target == from[d] || target == 1, "sum_to: shape ", shape_str(shape),
             " does not broadcast to ", shape_str(from));
    if (target == 1 && from[d] != 1) dims.push_back(std::int64_t(d));
  }
  if (dims.empty()) return reshape(a, kernels::as_signed(shape));
  return reshape(sum(a, dims, true), kernels::as_signed(shape));
}

// ---- mul_sum_to ---------------------------------------------------------------------------------
// The product's dims (size-1 dims dropped) merge into runs whose dims agree on two things: whether
// the result sums over them and whether `other` is broadcast along them. Each run then has one
// stride in each of grad (contiguous), other (0 when broadcast) and the result (0 when summed), and
// the runs are nested loops. The innermost run is either summed, a dot product (in double) with
// other's row or its one value, or kept, a multiply-add of the row into the result's row (in the
// result's type, row after row, as sum's column sums). A kept run is cut across tasks (chosen in
// mul_sum_to): each result value belongs to one task and is summed in one order, whatever the
// thread count.
// (`outer` at 1024, (1024, 1)·(1, 1024) forward and backward, wrote and read back two 4 MB
// products for its two gradients.)

namespace {

struct ProductRun {
  std::size_t size, g, o, r;  // the run's length and the strides of grad, other and the result
};

template <class T>
void mul_sum_runs(const ProductRun* run, std::size_t count, const T* g, const T* o, T* r) {
  if (count == 2 && run[1].size < 8) {  // rows of a few values ((N, 1) · (N, 3)): a scalar loop per row, not
    const ProductRun& outer = run[0];   // a masked batch op (0.6× libtorch's time)
    const std::size_t n = run[1].size, os = run[1].o, rs = run[1].r;
    for (std::size_t i = 0; i < outer.size; ++i) {
      const T* gi = g + i * outer.g;
      const T* oi = o + i * outer.o;
      T* ri = r + i * outer.r;
      if (rs == 0) {  // summed: in double, as the dot products of long rows
        double total = 0;
        for (std::size_t j = 0; j < n; ++j) total += double(gi[j]) * double(oi[j * os]);
        ri[0] += T(total);
      } else {
        for (std::size_t j = 0; j < n; ++j) ri[j * rs] += gi[j] * oi[j * os];
      }
    }
    return;
  }
  if (count > 1) {
    for (std::size_t i = 0; i < run->size; ++i)
      mul_sum_runs(run + 1, count - 1, g + i * run->g, o + i * run->o, r + i * run->r);
    return;
  }
  const std::size_t n = run->size;  // (grad's stride is 1 here; other's and the result's 1 or 0)
  if (run->r == 0) {
    const double total = run->o ? kernels::lane_sum(n, [g, o](auto at) { return at(g) * at(o); })
                                : double(o[0]) * kernels::lane_sum(n, [g](auto at) { return at(g); });
    r[0] += T(total);
  } else if (run->o) {
    kernels::apply(n, r, [](auto acc, auto x, auto y) { return acc + x * y; }, static_cast<const T*>(r), g, o);
  } else {
    const T v = o[0];
    kernels::apply(n, r, [v](auto acc, auto x) { return acc + x * v; }, static_cast<const T*>(r), g);
  }
}

}  // namespace

Tensor mul_sum_to(const Tensor& grad, const Tensor& other, const Shape& shape) {
  const Shape& full = grad.shape();
  const std::size_t rank = full.size();
  TG_CHECK(shape.size() <= rank && other.shape().size() <= rank && grad.dtype() == other.dtype(),
           "mul_sum_to: cannot sum ", shape_str(full), " (", dtype_name(grad.dtype()), ") times ",
           shape_str(other.shape()), " (", dtype_name(other.dtype()), ") to ", shape_str(shape));
  auto padded = [rank](const Shape& s) {
    Shape p(rank - s.size(), 1);
    p.insert(p.end(), s.begin(), s.end());
    return p;
  };
  const Shape self = padded(shape), by = padded(other.shape());
  std::vector<ProductRun> runs;  // (a run is summed where its result stride is 0, broadcast where other's is)
  std::size_t g_stride = 1, o_stride = 1, r_stride = 1;
  for (std::size_t d = rank; d-- > 0;) {  // innermost first, reversed below
    TG_CHECK((self[d] == full[d] || self[d] == 1) && (by[d] == full[d] || by[d] == 1), "mul_sum_to: ",
             shape_str(shape), " or ", shape_str(other.shape()), " does not broadcast to ", shape_str(full));
    if (full[d] != 1) {
      const bool s = self[d] == 1, b = by[d] == 1;
      if (!runs.empty() && (runs.back().r == 0) == s && (runs.back().o == 0) == b)
        runs.back().size *= full[d];
      else
        runs.push_back({full[d], g_stride, b ? 0 : o_stride, s ? 0 : r_stride});
    }
    g_stride *= full[d];
    o_stride *= by[d];
    r_stride *= self[d];
  }
  std::reverse(runs.begin(), runs.end());
  return dispatch_floating(grad.dtype(), "mul_sum_to", [&]<class T>() {
    xt::xarray<T> result = xt::zeros<T>(shape);
    if (grad.numel() == 0) return make_tensor<T>(std::move(result));
    const T* g = grad.data<T>();
    const T* o = other.data<T>();
    T* r = result.data();
    if (runs.empty()) {  // one value
      r[0] = g[0] * o[0];
      return make_tensor<T>(std::move(result));
    }
    // The run cut across tasks: the outermost kept run of at least 4 values, else the largest kept
    // run. (Cutting an inner run shortens the innermost loops: the largest, when it was innermost,
    // made (64, 1, 256)'s gradient 16,384 calls of 16 values per task.)
    std::size_t cut = runs.size();
    for (std::size_t k = 0; k < runs.size() && cut == runs.size(); ++k)
      if (runs[k].r != 0 && runs[k].size >= 4) cut = k;
    if (cut == runs.size())
      for (std::size_t k = 0; k < runs.size(); ++k)
        if (runs[k].r != 0 && (cut == runs.size() || runs[k].size > runs[cut].size)) cut = k;
    const std::size_t work = grad.numel();
    if (cut == runs.size() || work < parallel::kGrain) {
      mul_sum_runs(runs.data(), runs.size(), g, o, r);
      return make_tensor<T>(std::move(result));
    }
    // Tasks take whole units of the cut run that cover a cache line of the result where the run
    // is long enough to leave 8 units: cut finer, two threads added into values of the same lines,
    // which bounced between the cores on every add ((64, 256, 1) · (64, 1, 256)'s first gradient,
    // cut through its innermost values: 17 ms at two threads, 0.6 at one).
    const std::size_t per_index = work / runs[cut].size, bytes = runs[cut].r * sizeof(T);
    const std::size_t unit = std::min((64 + bytes - 1) / bytes, std::max<std::size_t>(1, runs[cut].size / 8));
    const std::size_t units = (runs[cut].size + unit - 1) / unit;
    parallel::for_range(units, std::max<std::size_t>(1, parallel::kGrain / (per_index * unit)),
                        [&](std::size_t first_unit, std::size_t last_unit) {
                          const std::size_t first = first_unit * unit;
                          const std::size_t last = std::min(runs[cut].size, last_unit * unit);
                          std::vector<ProductRun> part = runs;
                          part[cut].size = last - first;
                          std::size_t g0 = first * runs[cut].g, o0 = first * runs[cut].o, r0 = first * runs[cut].r;
                          mul_sum_runs(part.data(), part.size(), g + g0, o + o0, r + r0);
                        });
    return make_tensor<T>(std::move(result));
  });
}

}  // namespace tg
