// Shape ops. Selections along one dim (narrow, slice, index_select, cat's pieces) share one
// gather kernel and its adjoint, a scatter-add; reshape-like ops share the values under a new shape.
#include "core/ops/shape.hpp"
#include "core/xtensor.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <limits>
#include <numeric>
#include <span>
#include <type_traits>
#include <unordered_map>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <xtensor/xmanipulation.hpp>

#include "core/autograd.hpp"
#include "core/creation.hpp"
#include "core/ops/elementwise.hpp"
#include "core/ops/kernels.hpp"
#include "core/ops/linalg_gemm.hpp"
#include "core/ops/reduce.hpp"

namespace tg {

std::size_t wrap_dim(const char* op, std::int64_t dim, std::size_t rank, const Shape& shape) {
  const auto r = static_cast<std::int64_t>(std::max<std::size_t>(rank, 1));
  TG_CHECK(dim >= -r && dim < r, op, ": dim ", dim, " is out of range for a ", rank, "D tensor ",
           shape_str(shape), " (expected a dim in [", -r, ", ", r - 1, "])");
  return static_cast<std::size_t>(dim < 0 ? dim + r : dim);
}

std::size_t wrap_sized_dim(const char* op, std::int64_t dim, const Shape& shape) {
  TG_CHECK(!shape.empty(), op, ": cannot be applied to a 0-d tensor (shape []), which has no dim ", dim);
  return wrap_dim(op, dim, shape.size(), shape);
}

namespace {

// Whether rows are consecutive (narrow, slice with step 1, select): then each outer row's
// selection is one contiguous run of rows.size()·inner values, copied or added as one.
bool consecutive(const std::vector<std::size_t>& rows) {
  for (std::size_t k = 1; k < rows.size(); ++k)
    if (rows[k] != rows[0] + k) return false;
  return true;
}

// Runs shorter than this are copied value by value: a memmove call per run of one or two values
// cost more than the copy (a stack of two (1000, 1000) along the last dim made 2M of them: 20 ms).
inline constexpr std::size_t kShortRun = 16;

// dst[o·dst_stride + j] = src[o·src_stride + j] for o < count, j < n: `count` runs of n short values,
// n from 1 to 8 known to the compiler (the loop over a run unrolled: split((100000, 8), 2, -1)'s
// four copies of pairs, the products and the gradients took 1.84 ms with n at run time only, 1.13
// known). Always inlined, as both were before the size dispatch made them larger: called out of
// line, stack((1000, 1000) twice, -1) took 1.23 ms, not 1.05.
template <class T>
[[gnu::always_inline]] inline void copy_short_runs(const T* src, std::size_t src_stride, T* dst,
                                                   std::size_t dst_stride, std::size_t count, std::size_t n) {
  auto runs = [&]<std::size_t N>() {  // N = 0: n at run time
    for (std::size_t o = 0; o < count; ++o)
      for (std::size_t j = 0; j < (N ? N : n); ++j) dst[o * dst_stride + j] = src[o * src_stride + j];
  };
  if (!kernels::with_known_size<1, 8>(n, runs)) runs.template operator()<0>();
}

#if defined(__AVX512F__)
// y[2i] = a[i], y[2i + 1] = b[i] for i < n (float32 stacked along a new last dim): 16 of each
// through two permutes and two stores. The run-of-one copy stored one value every 8 bytes, and its
// speed moved with the loop's alignment: `op/stack_last/1024/2` 0.6 → 1.0 ms after an unrelated
// change elsewhere in this file.
inline void interleave_pairs(const float* a, const float* b, float* y, std::size_t n) {
  const __m512i low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i high = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 va = _mm512_loadu_ps(a + i), vb = _mm512_loadu_ps(b + i);
    _mm512_storeu_ps(y + 2 * i, _mm512_permutex2var_ps(va, low, vb));
    _mm512_storeu_ps(y + 2 * i + 16, _mm512_permutex2var_ps(va, high, vb));
  }
  for (; i < n; ++i) {
    y[2 * i] = a[i];
    y[2 * i + 1] = b[i];
  }
}

// Whether rows step by two (a slice with step 2: rows[k] = rows[0] + 2k), at least two of them.
bool every_other(const std::vector<std::size_t>& rows) {
  if (rows.size() < 2) return false;
  for (std::size_t k = 1; k < rows.size(); ++k)
    if (rows[k] != rows[0] + 2 * k) return false;
  return true;
}

// y[i] = x[2i] for i < n (float32 values at even offsets, x[:, ::2] of the last dim): 16 at a
// time from two loads and a permute, where the index loop moved one value per load of its index
// (x[:, ::2] of (1024, 1024), its sum, and the backward: 0.81 ms, now 0.22; libtorch's view 0.60).
inline void take_evens(const float* x, float* y, std::size_t n) {
  const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  std::size_t i = 0;
  for (; i + 17 <= n; i += 16)  // (x[2i + 31] <= x[2n - 2], the last value read)
    _mm512_storeu_ps(y + i, _mm512_permutex2var_ps(_mm512_loadu_ps(x + 2 * i), evens, _mm512_loadu_ps(x + 2 * i + 16)));
  for (; i < n; ++i) y[i] = x[2 * i];
}

// y[2i] = x[i], y[2i + 1] = 0 for i < n: a gradient spread back over every other place, the places
// between zeroed in the same pass.
inline void spread_evens(const float* x, float* y, std::size_t n) {
  const __m512i low = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  const __m512i high = _mm512_setr_epi32(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    _mm512_storeu_ps(y + 2 * i, _mm512_maskz_permutexvar_ps(0x5555, low, v));
    _mm512_storeu_ps(y + 2 * i + 16, _mm512_maskz_permutexvar_ps(0x5555, high, v));
  }
  for (; i < n; ++i) {
    y[2 * i] = x[i];
    y[2 * i + 1] = 0.0f;
  }
}
#endif

// The same with += : dst[o·dst_stride + j] += src[o·src_stride + j].
template <class T>
[[gnu::always_inline]] inline void add_short_runs(const T* src, std::size_t src_stride, T* dst,
                                                  std::size_t dst_stride, std::size_t count, std::size_t n) {
  auto runs = [&]<std::size_t N>() {
    for (std::size_t o = 0; o < count; ++o)
      for (std::size_t j = 0; j < (N ? N : n); ++j) dst[o * dst_stride + j] += src[o * src_stride + j];
  };
  if (!kernels::with_known_size<1, 8>(n, runs)) runs.template operator()<0>();
}

// out[o, k, i] = in[o, rows[k], i] for the (outer, rows, inner) view of a tensor along one dim.
Tensor gather_rows(const Tensor& in, std::size_t dim, const std::vector<std::size_t>& rows) {
  const kernels::ReduceLayout l = kernels::reduce_layout(in.shape(), dim);
  Shape out_shape = in.shape();
  out_shape[dim] = rows.size();
  const bool run = consecutive(rows);
#if defined(__AVX512F__)
  const bool evens = !run && l.inner == 1 && every_other(rows);
#endif
  return dispatch_all(in.dtype(), [&]<class T>() {
    const T* x = in.data<T>();
    xt::xarray<T> out = xt::xarray<T>::from_shape(out_shape);
    T* y = out.data();
    // Parallel over the (outer, row) pairs, not the outer rows alone: a selection along dim 0 is
    // one outer row. A task walks its pairs an outer row at a time.
    const std::size_t count = rows.size(), pairs = l.outer * count;
    if (run && count * l.inner < kShortRun) {  // (a narrow of the last dim's first values)
      const std::size_t length = count * l.inner, skip = count == 0 ? 0 : rows[0] * l.inner;
      parallel::for_range(l.outer, std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(1, length)),
                          [&](std::size_t first, std::size_t last) {
                            copy_short_runs(x + first * l.reduced * l.inner + skip, l.reduced * l.inner,
                                            y + first * length, length, last - first, length);
                          });
      return make_tensor<T>(std::move(out));
    }
    const std::size_t grain = std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(1, l.inner));
    parallel::for_range(pairs, grain, [&](std::size_t first, std::size_t last) {
      for (std::size_t i = first; i < last;) {
        const std::size_t o = i / count, stop = std::min(last, (o + 1) * count);
        const T* src = x + o * l.reduced * l.inner;
        T* dst = y + i * l.inner;
        if (run) {
          std::copy_n(src + (rows[0] + i - o * count) * l.inner, (stop - i) * l.inner, dst);
#if defined(__AVX512F__)
        } else if (std::is_same_v<T, float> && l.inner == 1 && evens) {
          take_evens(reinterpret_cast<const float*>(src + rows[i - o * count]), reinterpret_cast<float*>(dst), stop - i);
#endif
        } else if (l.inner == 1) {
          for (std::size_t k = i - o * count; k < stop - o * count; ++k) *dst++ = src[rows[k]];
        } else if (l.inner < kShortRun) {  // (an embedding of 4 values a row): the size dispatched once
          auto short_rows = [&]<std::size_t N>() {  // N = 0: inner at run time
            const std::size_t n = N ? N : l.inner;
            for (std::size_t k = i - o * count; k < stop - o * count; ++k, dst += n)
              for (std::size_t j = 0; j < n; ++j) dst[j] = src[rows[k] * n + j];
          };
          if (!kernels::with_known_size<1, 8>(l.inner, short_rows)) short_rows.template operator()<0>();
        } else {
          for (std::size_t k = i - o * count; k < stop - o * count; ++k, dst += l.inner)
            std::copy_n(src + rows[k] * l.inner, l.inner, dst);
        }
        i = stop;
      }
    });
    return make_tensor<T>(std::move(out));
  });
}

// The adjoint of gather_rows: out[o, rows[k], i] += in[o, k, i] for out of the (outer, reduced,
// inner) layout of `shape` along dim.
template <class T>
void scatter_add_rows(const T* x, T* y, const kernels::ReduceLayout& l, const std::vector<std::size_t>& rows) {
  // Each task owns whole outer rows, and rows[] is walked in order: repeated indices accumulate
  // in the same order for any thread count.
  const bool run = consecutive(rows);
  // A selection along dim 0 (index_select(x, 0, i), an embedding's gradient) is one outer row, so
  // one task: there the inner values are cut into pieces of at least kPiece, each task walking
  // rows[] in order over its own piece (`op/index_select/1024` had taken as long at two threads
  // as at one).
  constexpr std::size_t kPiece = 64, kLineRow = 16;
  const std::size_t piece = !run && l.outer == 1 && l.inner >= 2 * kPiece
                                ? std::max(kPiece, (parallel::kGrain / std::max<std::size_t>(1, rows.size()) + 15) / 16 * 16)
                                : l.inner;
  const int threads = get_num_threads();
  if (!run && l.outer == 1 && piece == l.inner && l.inner >= kLineRow && threads > 1 &&
      rows.size() * l.inner >= parallel::kGrain) {
    // Rows of 16 to 127 values into one outer row (an embedding's gradient): each task owns a
    // range of destination rows and walks rows[] in order, adding only the rows in its range.
    // Every row's sum is then in rows[] order whatever the ranges, so they may follow the thread
    // count (the bits do not). Each task reads every index: worth it from a cache line a row
    // (`layer/Embedding/2`, rows of 64, 0.19 -> 0.12-0.17 ms); with rows of 4 (`op/index_rows4`)
    // the two tasks each took as long as one task for all (reading the indices and dY twice).
    const auto tasks = std::size_t(threads);
    parallel::for_range(tasks, 1, [&](std::size_t first, std::size_t last) {
      const std::size_t lo = first * l.reduced / tasks, span = last * l.reduced / tasks - lo;
      for (std::size_t k = 0; k < rows.size(); ++k) {
        if (rows[k] - lo >= span) continue;
        T* row = y + rows[k] * l.inner;
        const T* src = x + k * l.inner;
        for (std::size_t i = 0; i < l.inner; ++i) row[i] += src[i];
      }
    });
    return;
  }
  if (piece < l.inner) {
    const std::size_t pieces = (l.inner + piece - 1) / piece;
    parallel::for_range(pieces, 1, [&](std::size_t first, std::size_t last) {
      const std::size_t begin = first * piece, end = std::min(l.inner, last * piece);
      const T* src = x;
      for (std::size_t k = 0; k < rows.size(); ++k, src += l.inner) {
        T* row = y + rows[k] * l.inner;
        for (std::size_t i = begin; i < end; ++i) row[i] += src[i];
      }
    });
    return;
  }
  const std::size_t grain = std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(1, rows.size() * l.inner));
  parallel::for_range(l.outer, grain, [&](std::size_t first, std::size_t last) {
    if (run && !rows.empty() && rows.size() * l.inner < kShortRun) {
      const std::size_t length = rows.size() * l.inner, row = l.reduced * l.inner;
      add_short_runs(x + first * length, length, y + first * row + rows[0] * l.inner, row, last - first, length);
      return;
    }
    for (std::size_t o = first; o < last; ++o) {
      if (run) {
        if (rows.empty()) continue;
        T* dst = y + (o * l.reduced + rows[0]) * l.inner;
        const T* src = x + o * rows.size() * l.inner;
        kernels::apply(rows.size() * l.inner, dst, [](auto a, auto b) { return a + b; }, static_cast<const T*>(dst),
                       src);
        continue;
      }
      const T* src = x + o * rows.size() * l.inner;
      T* dst = y + o * l.reduced * l.inner;
      if (l.inner == 1) {  // single values (a strided slice of the last dim): no loop per value
        for (std::size_t k = 0; k < rows.size(); ++k) dst[rows[k]] += src[k];
        continue;
      }
      for (std::size_t k = 0; k < rows.size(); ++k, src += l.inner) {
        T* row = dst + rows[k] * l.inner;
        for (std::size_t i = 0; i < l.inner; ++i) row[i] += src[i];
      }
    }
  });
}

// The same into zeros: a new tensor of `shape`. Consecutive rows are written with the zeros
// around them in one pass.
Tensor scatter_rows(const Tensor& in, std::size_t dim, const std::vector<std::size_t>& rows, const Shape& shape) {
  return dispatch_floating(in.dtype(), "scatter", [&]<class T>() {
    const kernels::ReduceLayout l = kernels::reduce_layout(shape, dim);
#if defined(__AVX512F__)
    if (std::is_same_v<T, float> && l.inner == 1 && every_other(rows)) {  // x[..., a::2]'s gradient
      xt::xarray<T> out = xt::xarray<T>::from_shape(shape);
      const float* x = reinterpret_cast<const float*>(in.data<T>());
      float* y = reinterpret_cast<float*>(out.data());
      const std::size_t count = rows.size(), start = rows[0], end = start + 2 * count - 1;
      parallel::for_range(l.outer, std::max<std::size_t>(1, parallel::kGrain / l.reduced), [&](std::size_t first, std::size_t last) {
        for (std::size_t o = first; o < last; ++o) {
          float* dst = y + o * l.reduced;
          const float* src = x + o * count;
          std::fill(dst, dst + start, 0.0f);
          spread_evens(src, dst + start, count - 1);
          dst[end - 1] = src[count - 1];
          std::fill(dst + end, dst + l.reduced, 0.0f);
        }
      });
      return make_tensor<T>(std::move(out));
    }
#endif
    if (rows.empty() || !consecutive(rows)) {
      // The zeros in parallel (the additions may be one task: an embedding's rows; `Embedding/2`
      // 0.23 -> 0.17 ms).
      xt::xarray<T> out = kernels::zeros<T>(shape);
      scatter_add_rows(in.data<T>(), out.data(), l, rows);
      return make_tensor<T>(std::move(out));
    }
    xt::xarray<T> out = xt::xarray<T>::from_shape(shape);
    const T* x = in.data<T>();
    T* y = out.data();
    const std::size_t before = rows[0] * l.inner, run = rows.size() * l.inner, row = l.reduced * l.inner;
    const std::size_t grain = std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(1, row));
    parallel::for_range(l.outer, grain, [&](std::size_t first, std::size_t last) {
      // A short run: the task's rows zeroed in one pass, then the runs written in (three calls a
      // row, to fill, copy and fill, cost more: narrow((20000, 10, 2), 1, 2, 5)'s gradient).
      if (run < kShortRun) {
        std::fill(y + first * row, y + last * row, T(0));
        copy_short_runs(x + first * run, run, y + first * row + before, row, last - first, run);
        return;
      }
      for (std::size_t o = first; o < last; ++o) {
        T* dst = y + o * row;
        std::fill(dst, dst + before, T(0));
        std::copy_n(x + o * run, run, dst + before);
        std::fill(dst + before + run, dst + row, T(0));
      }
    });
    return make_tensor<T>(std::move(out));
  });
}

// gather_rows' node. Its backward is scatter_rows, or, when the engine already holds a gradient for
// the input that nothing else shares, the rows added into that in place: a sequence cut into
// steps (select(x, 0, t) for every t, as the recurrent layers do) then costs one tensor of the
// whole sequence, not one per step (quadratic in its length).
class RowSelectionNode final : public Node {
 public:
  RowSelectionNode(const char* op, std::size_t dim, std::vector<std::size_t> rows, Shape shape)
      : Node(op), dim_(dim), rows_(std::move(rows)), shape_(std::move(shape)) {}

 private:
  Grads apply(const Tensor& grad) override { return {scatter_rows(grad, dim_, rows_, shape_)}; }
  bool add_into_input_gradient(Tensor& gradient, const Tensor& grad) override {
    if (gradient.shape() != shape_) return false;
    dispatch_floating(grad.dtype(), "scatter", [&]<class T>() {
      scatter_add_rows(grad.data<T>(), gradient.mutable_data<T>(), kernels::reduce_layout(shape_, dim_), rows_);
    });
    return true;
  }
  void release() override { std::vector<std::size_t>().swap(rows_); }

  std::size_t dim_;
  std::vector<std::size_t> rows_;
  Shape shape_;
};

// gather_rows recorded on the tape.
Tensor select_rows(const char* op, const Tensor& a, std::size_t dim, std::vector<std::size_t> rows) {
  Tensor out = gather_rows(a, dim, rows);
  return record_node(std::move(out), {a}, {},
                     [&] { return std::make_shared<RowSelectionNode>(op, dim, std::move(rows), a.shape()); });
}

// `a`'s values under another shape of the same size, shared (no copy), recorded. Both handles are
// listed in the storage's reshape_aliases, so that an in-place op that would give one of them a
// history refuses to run (see in_place in tensor_methods.cpp).
Tensor with_shape(const char* op, const Tensor& a, const Shape& shape) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = a.impl()->storage;
  impl->shape = shape;
  Tensor out = record(op, Tensor(std::move(impl)), {a}, [shape = a.shape()](const Tensor& grad) -> Grads {
    return {reshape(grad, kernels::as_signed(shape))};
  });
  Storage& storage = *out.impl()->storage;
  const std::lock_guard<std::mutex> lock(storage.aliases_mutex);
  auto& aliases = storage.reshape_aliases;
  std::erase_if(aliases, [](const auto& alias) { return alias.expired(); });
  if (std::none_of(aliases.begin(), aliases.end(), [&](const auto& alias) { return alias.lock() == a.impl(); }))
    aliases.push_back(a.impl());
  aliases.push_back(out.impl());
  return out;
}

// `Bytes<N>`: N bytes copied as one value (an array of std::byte, which may alias the values it
// moves). A row of the input that stays a row of the output (the pairs of (A, B, 2) → (B, A, 2))
// is permuted as one such value through the tiled walk below.
template <std::size_t N>
struct Bytes {
  std::byte bytes[N];
};

// dst = src (contiguous, of dims in_dims) with its dims in `order`, written contiguously; no two
// dims that stay adjacent (permute_copy merged them).
//  - If the input's last dim stays last, every output row is a contiguous run of the input: copied
//    as such.
//  - Otherwise the two dims that matter are the input's last (contiguous to read) and the output's
//    last (contiguous to write): tiles of kTile × kTile over those two, so that both the reads and
//    the writes of a tile stay in cache; the other dims are an outer loop. Parallel over (outer
//    position, tile row), each task writing its own part of the output.
template <class T>
void permute_values(const T* src, const std::vector<std::size_t>& in_dims, const std::vector<std::size_t>& merged_order,
                    T* dst) {
  constexpr std::size_t kTile = sizeof(T) > 8 ? 32 : 64;  // a tile buffer of at most 32 KB
  const std::size_t rank = in_dims.size();
  std::vector<std::size_t> in_stride(rank, 1);
  for (std::size_t d = rank - 1; d-- > 0;) in_stride[d] = in_stride[d + 1] * in_dims[d + 1];
  std::vector<std::size_t> dims_out(rank), src_stride(rank), out_stride(rank, 1);
  for (std::size_t i = 0; i < rank; ++i) {
    dims_out[i] = in_dims[merged_order[i]];
    src_stride[i] = in_stride[merged_order[i]];
  }
  for (std::size_t i = rank - 1; i-- > 0;) out_stride[i] = out_stride[i + 1] * dims_out[i + 1];

  // The input offset and output offset of outer index `index` over the output dims in `outer`.
  auto offsets = [&](std::size_t index, const std::vector<std::size_t>& outer) {
    if (outer.size() == 1) return std::pair{index * src_stride[outer[0]], index * out_stride[outer[0]]};
    std::size_t from = 0, to = 0;
    for (std::size_t k = outer.size(); k-- > 0;) {
      const std::size_t i = outer[k];
      const std::size_t coordinate = index % dims_out[i];
      index /= dims_out[i];
      from += coordinate * src_stride[i];
      to += coordinate * out_stride[i];
    }
    return std::pair{from, to};
  };

  const std::size_t last = rank - 1;
  if (merged_order[last] == rank - 1) {  // the input's last dim stays last: rows copied whole
    // The output's rows in order, each read at its input offset: the broadcast's row walk
    // (kernels::for_broadcast_rows, an odometer per task; a division per dim and row cost 20%).
    kernels::BroadcastRows rows;
    rows.sizes.assign(dims_out.begin(), dims_out.end() - 1);
    rows.stride[0].assign(src_stride.begin(), src_stride.end() - 1);
    rows.stride[1].assign(rank - 1, 0);
    rows.row = dims_out[last];
    const std::size_t row = rows.row;
    kernels::for_broadcast_rows(rows, [src, dst, row](std::size_t r, std::size_t from, std::size_t) {
      if (row < kShortRun) copy_short_runs(src + from, 0, dst + r * row, 0, 1, row);  // (pairs: a memmove each)
      else std::copy_n(src + from, row, dst + r * row);
    });
    return;
  }
  // p: the output position of the input's last dim (stride 1 to read).
  const std::size_t p = std::size_t(std::find(merged_order.begin(), merged_order.end(), rank - 1) - merged_order.begin());
  std::vector<std::size_t> outer;
  for (std::size_t i = 0; i < rank; ++i)
    if (i != p && i != last) outer.push_back(i);
  std::size_t outer_count = 1;
  for (std::size_t i : outer) outer_count *= dims_out[i];
  const std::size_t rows = dims_out[p], cols = dims_out[last];
  const std::size_t row_tiles = (rows + kTile - 1) / kTile;
  const std::size_t read_stride = src_stride[last];  // input step along the output's last dim
  const std::size_t write_stride = out_stride[p];    // output step along the input's last dim
  const bool tiny = rows * cols <= kShortRun * kShortRun / 4;
  if (tiny && outer.size() == 1 && read_stride == rows && write_stride == cols) {
    // Tiny matrices one after another ((N, 2, 3) → (N, 3, 2)): each a block of rows·cols values on
    // both sides, transposed value by value; sizes from 2 to 4 known to the compiler (unrolled).
    const std::size_t size = rows * cols;
    auto blocks = [&]<std::size_t R, std::size_t C>() {
      const std::size_t r = R ? R : rows, c = C ? C : cols;
      parallel::for_range(outer_count, std::max<std::size_t>(1, parallel::kGrain / size),
                          [&](std::size_t first, std::size_t end) {
                            for (std::size_t o = first; o < end; ++o) {
                              const T* from = src + o * size;
                              T* to = dst + o * size;
                              for (std::size_t a = 0; a < r; ++a)
                                for (std::size_t b = 0; b < c; ++b) to[a * c + b] = from[b * r + a];
                            }
                          });
    };
    // (the generic loop: 0.84 ms for permute_small's two transposes, unrolled 0.30)
    const bool unrolled = kernels::with_known_size<2, 4>(rows, [&]<std::size_t R>() {
      return kernels::with_known_size<2, 4>(cols, [&]<std::size_t C>() { blocks.template operator()<R, C>(); });
    });
    if (!unrolled) blocks.template operator()<0, 0>();
    return;
  }
  const std::size_t tasks = outer_count * row_tiles;
  const std::size_t per_task = kTile * cols;
  parallel::for_range(tasks, std::max<std::size_t>(1, parallel::kGrain / per_task), [&](std::size_t first, std::size_t end) {
    for (std::size_t t = first; t < end; ++t) {
      const auto [from, to] = offsets(t / row_tiles, outer);
      const std::size_t a0 = (t % row_tiles) * kTile, a1 = std::min(rows, a0 + kTile);
      if (tiny) {  // a tiny matrix within a larger tensor ((2, N, 3) → (N, 3, 2)): value by value
        for (std::size_t a = a0; a < a1; ++a)
          for (std::size_t b = 0; b < cols; ++b) dst[to + a * write_stride + b] = src[from + b * read_stride + a];
        continue;
      }
      // Blocks transposed in registers (kernels::transpose_matrix), a 64-column strip of the tile
      // at a time (the columns of the input it reads stay in L2): float, and on AVX-512 any 8-byte
      // value as a double's bits (float64, pairs of float32). (perf of op/transpose/1024/1 with
      // the buffered tile below: the copy into the buffer became a memmove call per 64 values and
      // the copy out a strided scalar loop, 0.9 ms per 4 MB.)
      constexpr bool as_float = std::is_same_v<T, float>;
#if defined(__AVX512F__)
      constexpr bool as_double = sizeof(T) == 8;
#else
      constexpr bool as_double = false;
#endif
      if constexpr (as_float || as_double) {
        using V = std::conditional_t<as_float, float, double>;
        for (std::size_t b0 = 0; b0 < cols; b0 += kTile)
          kernels::transpose_matrix(reinterpret_cast<const V*>(src + from + b0 * read_stride + a0),
                                    std::min(cols, b0 + kTile) - b0, a1 - a0, read_stride,
                                    reinterpret_cast<V*>(dst + to + a0 * write_stride + b0), write_stride);
        continue;
      }
      // Each tile goes through a local buffer: read along a (contiguous in the input), written
      // along b (contiguous in the output). Reading and writing the strided side directly would
      // touch kTile lines 4 KB apart at power-of-two sizes, which share a cache set and evict
      // each other.
      T tile[kTile][kTile];
      for (std::size_t b0 = 0; b0 < cols; b0 += kTile) {
        const std::size_t b1 = std::min(cols, b0 + kTile);
        for (std::size_t b = b0; b < b1; ++b) {
          const T* column = src + from + b * read_stride;
          for (std::size_t a = a0; a < a1; ++a) tile[b - b0][a - a0] = column[a];
        }
        for (std::size_t a = a0; a < a1; ++a) {
          T* row = dst + to + a * write_stride;
          for (std::size_t b = b0; b < b1; ++b) row[b] = tile[b - b0][a - a0];
        }
      }
    }
  });
}

// out = a with its dims in `order` (out dim i is a's dim order[i]), written contiguously. Adjacent
// input dims that stay adjacent are merged first ((N, C, H, W) → (N, H, W, C) is a 3-D problem
// (N, C, H·W) → (N, H·W, C)); then permute_values does the copy.
template <class T>
xt::xarray<T> permute_copy(const kernels::Input<T>& in, const std::vector<std::size_t>& order) {
  Shape out_shape;
  for (std::size_t d : order) out_shape.push_back(in.shape()[d]);
  xt::xarray<T> out = xt::xarray<T>::from_shape(out_shape);
  if (out.size() == 0) return out;
  if (order.empty()) {  // a 0-d tensor: its one value
    out.data()[0] = in.data()[0];
    return out;
  }
  // Merge runs: output positions i, i+1 with order[i+1] == order[i] + 1 are one dim.
  std::vector<std::size_t> in_dims(in.shape().begin(), in.shape().end());
  std::vector<std::size_t> merged_order;  // in terms of merged input dims
  std::vector<std::size_t> group_of(in_dims.size());
  {
    std::vector<std::vector<std::size_t>> groups;  // runs of input dims, in output order
    for (std::size_t i = 0; i < order.size(); ++i) {
      if (i > 0 && order[i] == order[i - 1] + 1) groups.back().push_back(order[i]);
      else groups.push_back({order[i]});
    }
    // The merged input dims are the groups sorted by their first input dim.
    std::vector<std::size_t> by_input(groups.size());
    std::iota(by_input.begin(), by_input.end(), 0);
    std::sort(by_input.begin(), by_input.end(),
              [&](std::size_t x, std::size_t y) { return groups[x][0] < groups[y][0]; });
    std::vector<std::size_t> merged_dims(groups.size()), position(groups.size());
    for (std::size_t m = 0; m < by_input.size(); ++m) {
      position[by_input[m]] = m;
      std::size_t size = 1;
      for (std::size_t d : groups[by_input[m]]) size *= in_dims[d];
      merged_dims[m] = size;
    }
    for (std::size_t g = 0; g < groups.size(); ++g) merged_order.push_back(position[g]);
    in_dims = merged_dims;
  }
  // A last dim that stays last, of 8, 16 or 32 bytes (2, 4 or 8 float32, 1 to 4 float64): its rows
  // are values of the tiled walk, not runs of the row walk (op/transpose_pairs/1024/1: a copy call
  // per 8-byte row, 1.6 ns each, twice libtorch's time; (64, 32, 64, 8) → (64, 64, 32, 8), the
  // copies of a Conv1d's samples side by side over rows of 8: 886 → 158 us, 9.5 → 53 GB/s).
  const std::size_t row_bytes = in_dims.back() * sizeof(T);
  if (in_dims.size() > 1 && merged_order.back() == in_dims.size() - 1 &&
      (row_bytes == 8 || row_bytes == 16 || row_bytes == 32)) {
    in_dims.pop_back();
    merged_order.pop_back();
    auto as_rows = [&]<std::size_t N>() {
      permute_values(reinterpret_cast<const Bytes<N>*>(in.data()), in_dims, merged_order,
                     reinterpret_cast<Bytes<N>*>(out.data()));
    };
    if (row_bytes == 8) as_rows.template operator()<8>();
    else if (row_bytes == 16) as_rows.template operator()<16>();
    else as_rows.template operator()<32>();
    return out;
  }
  permute_values(in.data(), in_dims, merged_order, out.data());
  return out;
}

}  // namespace

Tensor permute(const Tensor& a, const std::vector<std::int64_t>& dims) {
  const Shape& shape = a.shape();
  TG_CHECK(dims.size() == shape.size(), "permute: expected ", shape.size(), " dims for shape ",
           shape_str(shape), ", got ", dims);
  std::vector<std::size_t> order;
  for (std::int64_t d : dims) {
    const std::size_t w = wrap_dim("permute", d, shape.size(), shape);
    TG_CHECK(std::find(order.begin(), order.end(), w) == order.end(), "permute: dim ", d,
             " repeats in ", dims);
    order.push_back(w);
  }
  Tensor out = dispatch_all(a.dtype(), [&]<class T>() {
    return make_tensor<T>(permute_copy(kernels::input<T>(a), order));
  });
  return record("permute", out, {a}, [order](const Tensor& grad) -> Grads {
    std::vector<std::int64_t> inverse(order.size());
    for (std::size_t i = 0; i < order.size(); ++i) inverse[order[i]] = std::int64_t(i);
    return {permute(grad, inverse)};
  });
}

Tensor transpose(const Tensor& a, std::int64_t dim0, std::int64_t dim1) {
  const std::size_t rank = a.dim();
  const std::size_t d0 = wrap_dim("transpose", dim0, rank, a.shape());
  const std::size_t d1 = wrap_dim("transpose", dim1, rank, a.shape());
  std::vector<std::int64_t> order(rank);
  std::iota(order.begin(), order.end(), 0);
  if (rank > 0) std::swap(order[d0], order[d1]);
  return permute(a, order);
}

Tensor reshape(const Tensor& a, const std::vector<std::int64_t>& shape) {
  Shape target;
  std::size_t known = 1;
  std::optional<std::size_t> inferred;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      TG_CHECK(!inferred, "reshape: only one dim can be -1, got ", shape);
      inferred = i;
      target.push_back(1);
      continue;
    }
    TG_CHECK(shape[i] >= 0, "reshape: invalid size ", shape[i], " in ", shape);
    target.push_back(std::size_t(shape[i]));
  }
  known = checked_numel("reshape", target);  // the inferred dim counts 1 here
  if (inferred) {
    TG_CHECK(known != 0 && a.numel() % known == 0, "reshape: shape ", shape, " is invalid for input of size ",
             a.numel(), " ", shape_str(a.shape()));
    target[*inferred] = a.numel() / known;
  } else {
    TG_CHECK(known == a.numel(), "reshape: shape ", shape, " is invalid for input of size ", a.numel(), " ",
             shape_str(a.shape()));
  }
  return with_shape("reshape", a, target);
}

Tensor flatten(const Tensor& a, std::int64_t start_dim, std::int64_t end_dim) {
  const Shape& shape = a.shape();
  if (shape.empty()) return reshape(a, {1});
  const std::size_t start = wrap_dim("flatten", start_dim, shape.size(), shape);
  const std::size_t end = wrap_dim("flatten", end_dim, shape.size(), shape);
  TG_CHECK(start <= end, "flatten: start_dim ", start_dim, " comes after end_dim ", end_dim);
  std::vector<std::int64_t> target;
  std::int64_t merged = 1;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (d < start || d > end) target.push_back(std::int64_t(shape[d]));
    else merged *= std::int64_t(shape[d]);
    if (d == end) target.push_back(merged);
  }
  return reshape(a, target);
}

Tensor squeeze(const Tensor& a, std::optional<std::int64_t> dim) {
  const Shape& shape = a.shape();
  std::vector<std::int64_t> target;
  // Without a dim every size-1 dim goes; with one, only that dim (if its size is 1).
  const std::size_t only = dim ? wrap_dim("squeeze", *dim, shape.size(), shape) : shape.size();
  for (std::size_t d = 0; d < shape.size(); ++d)
    if (shape[d] != 1 || (dim && only != d)) target.push_back(std::int64_t(shape[d]));
  return reshape(a, target);
}

Tensor unsqueeze(const Tensor& a, std::int64_t dim) {
  const Shape& shape = a.shape();
  const std::size_t d = wrap_dim("unsqueeze", dim, shape.size() + 1, shape);
  std::vector<std::int64_t> target = kernels::as_signed(shape);
  target.insert(target.begin() + std::ptrdiff_t(d), 1);
  return reshape(a, target);
}

Tensor expand(const Tensor& a, const std::vector<std::int64_t>& shape) {
  const Shape& from = a.shape();
  TG_CHECK(shape.size() >= from.size(), "expand: the target ", shape, " has fewer dims than ", shape_str(from));
  Shape target(shape.size());
  const std::size_t lead = shape.size() - from.size();
  for (std::size_t d = 0; d < shape.size(); ++d) {
    const std::size_t have = d < lead ? 1 : from[d - lead];
    const std::int64_t want = shape[d];
    TG_CHECK(want == -1 ? d >= lead : (want >= 0 && (have == 1 || std::size_t(want) == have)),
             "expand: cannot expand ", shape_str(from), " to ", shape, " (dim ", d, ")");
    target[d] = want == -1 ? have : std::size_t(want);
  }
  checked_numel("expand", target);
  if (target == from) return a;
  Tensor out = dispatch_all(a.dtype(), [&]<class T>() {
    return make_tensor<T>(kernels::broadcast_to(kernels::input<T>(a), target));
  });
  // The engine sums the output-shaped gradient back to the input's shape.
  return record("expand", out, {a}, [](const Tensor& grad) -> Grads { return {grad}; });
}

namespace {

// fn(o, begin, end) over [0, run) of each of `outer` runs, in parallel: each run cut into chunks
// of about kGrain values (a cat along dim 0 is one long run).
template <class Fn>
void for_runs(std::size_t outer, std::size_t run, Fn&& fn) {
  const std::size_t chunks = std::max<std::size_t>(1, (run + parallel::kGrain - 1) / parallel::kGrain);
  const std::size_t chunk = (run + chunks - 1) / chunks;
  parallel::for_range(outer * chunks, std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(1, chunk)),
                      [&](std::size_t first, std::size_t last) {
                        for (std::size_t i = first; i < last; ++i) {
                          const std::size_t begin = (i % chunks) * chunk;
                          fn(i / chunks, begin, std::min(run, begin + chunk));
                        }
                      });
}

// Σ_k grad.narrow(d, starts[k], rows), in one pass over the output (two or more slices).
Tensor sum_of_slices(const Tensor& grad, std::size_t d, const std::vector<std::size_t>& starts, std::size_t rows) {
  const kernels::ReduceLayout l = kernels::reduce_layout(grad.shape(), d);
  Shape shape = grad.shape();
  shape[d] = rows;
  return dispatch_floating(grad.dtype(), "cat", [&]<class T>() {
    xt::xarray<T> out = xt::xarray<T>::from_shape(shape);
    const T* g = grad.data<T>();
    T* y = out.data();
    const std::size_t run = rows * l.inner;
    if (run < kShortRun) {  // (stack({x, x}, -1)): value by value over a block of outer rows
      const std::size_t row = l.reduced * l.inner;
      parallel::for_range(l.outer, std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(1, row)),
                          [&](std::size_t first, std::size_t last) {
                            // The first slice copied, each next one added (in order, as the long
                            // runs), over blocks of rows whose sums stay in L1. (Over a whole task's
                            // 64 KB: 1.2 ms of stack_last/1024/1's 1.9.)
                            constexpr std::size_t kBlock = 256;
                            for (std::size_t b = first; b < last; b += kBlock) {
                              const std::size_t count = std::min(last, b + kBlock) - b;
                              const T* src = g + b * row;
                              T* dst = y + b * run;
                              copy_short_runs(src + starts[0] * l.inner, row, dst, run, count, run);
                              for (std::size_t k = 1; k < starts.size(); ++k)
                                add_short_runs(src + starts[k] * l.inner, row, dst, run, count, run);
                            }
                          });
      return make_tensor<T>(std::move(out));
    }
    auto add = [](auto a, auto b) { return a + b; };
    for_runs(l.outer, run, [&](std::size_t o, std::size_t begin, std::size_t end) {
      auto slice = [&](std::size_t k) { return g + (o * l.reduced + starts[k]) * l.inner + begin; };
      T* dst = y + o * run + begin;
      kernels::apply(end - begin, dst, add, slice(0), slice(1));
      for (std::size_t k = 2; k < starts.size(); ++k)
        kernels::apply(end - begin, dst, add, static_cast<const T*>(dst), slice(k));
    });
    return make_tensor<T>(std::move(out));
  });
}

}  // namespace

Tensor cat(const std::vector<Tensor>& tensors, std::int64_t dim) {
  TG_CHECK(!tensors.empty(), "cat: expected at least one tensor");
  const Shape& first = tensors[0].shape();
  for (std::size_t i = 0; i < tensors.size(); ++i)
    TG_CHECK(tensors[i].dim() > 0, "cat: a 0-d tensor (at position ", i, ") cannot be concatenated");
  const std::size_t d = wrap_dim("cat", dim, first.size(), first);
  Shape out_shape = first;
  out_shape[d] = 0;
  for (const Tensor& t : tensors) {
    TG_CHECK(t.dtype() == tensors[0].dtype(), "cat: expected one dtype, got ", dtype_name(tensors[0].dtype()),
             " and ", dtype_name(t.dtype()));
    bool fits = t.dim() == first.size();
    for (std::size_t k = 0; fits && k < first.size(); ++k) fits = k == d || t.shape()[k] == first[k];
    TG_CHECK(fits, "cat: shapes ", shape_str(first), " and ", shape_str(t.shape()),
             " differ outside dim ", dim);
    out_shape[d] += t.shape()[d];
  }
  // Each piece is scattered into its rows of the output.
  Tensor out = dispatch_all(tensors[0].dtype(), [&]<class T>() { return make_tensor<T>(xt::xarray<T>::from_shape(out_shape)); });
  std::vector<std::size_t> offsets, sizes;
  std::size_t offset = 0;
  const kernels::ReduceLayout l = kernels::reduce_layout(out_shape, d);
  dispatch_all(out.dtype(), [&]<class T>() {
    T* y = std::get<xt::xarray<T>>(out.impl()->storage->values).data();  // fresh, so not yet recorded
    for (const Tensor& t : tensors) {
      offsets.push_back(offset);
      sizes.push_back(t.shape()[d]);
      offset += t.shape()[d];
    }
    const std::size_t row = l.reduced * l.inner;  // one output row: each piece's run in turn
    if (row < kShortRun) {  // short runs (a stack along the last dim): piece by piece over a block of rows
      std::vector<const T*> x;
      for (const Tensor& t : tensors) x.push_back(t.data<T>());
      const std::size_t grain = std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(1, row));
#if defined(__AVX512F__)
      if constexpr (std::is_same_v<T, float>)
        if (x.size() == 2 && row == 2) {
          parallel::for_range(l.outer, grain, [&](std::size_t first, std::size_t last) {
            interleave_pairs(x[0] + first, x[1] + first, y + 2 * first, last - first);
          });
          return;
        }
#endif
      parallel::for_range(l.outer, grain,
                          [&](std::size_t first, std::size_t last) {
                            for (std::size_t k = 0; k < x.size(); ++k) {
                              const std::size_t run = sizes[k] * l.inner;
                              copy_short_runs(x[k] + first * run, run, y + first * row + offsets[k] * l.inner, row,
                                              last - first, run);
                            }
                          });
      return;
    }
    for (std::size_t k = 0; k < tensors.size(); ++k) {
      const std::size_t run = sizes[k] * l.inner;
      const T* x = tensors[k].data<T>();
      for_runs(l.outer, run, [&](std::size_t o, std::size_t begin, std::size_t end) {
        std::copy(x + o * run + begin, x + o * run + end, y + (o * l.reduced + offsets[k]) * l.inner + begin);
      });
    }
  });
  // An input given more than once (cat({x, x})) gets the sum of its slices, taken in one pass,
  // not one copy per slice added up afterwards by the engine.
  std::vector<std::size_t> first_of(tensors.size());
  std::unordered_map<const void*, std::size_t> first_index;  // (a stack of many steps: no quadratic search)
  for (std::size_t i = 0; i < tensors.size(); ++i)
    first_of[i] = first_index.emplace(tensors[i].impl().get(), i).first->second;
  return record("cat", out, tensors, [d, offsets, sizes, first_of](const Tensor& grad, NeedsGrad needs) -> Grads {
    Grads grads(offsets.size());
    for (std::size_t i = 0; i < offsets.size(); ++i) {
      if (!needs[i] || first_of[i] != i) continue;
      std::vector<std::size_t> slices;  // the rows of grad where input i's pieces start
      for (std::size_t j = i; j < offsets.size(); ++j)
        if (first_of[j] == i) slices.push_back(offsets[j]);
      grads[i] = slices.size() == 1 ? narrow(grad, std::int64_t(d), std::int64_t(offsets[i]), std::int64_t(sizes[i]))
                                    : sum_of_slices(grad, d, slices, sizes[i]);
    }
    return grads;
  });
}

Tensor stack(const std::vector<Tensor>& tensors, std::int64_t dim) {
  TG_CHECK(!tensors.empty(), "stack: expected at least one tensor");
  for (const Tensor& t : tensors)
    TG_CHECK(t.shape() == tensors[0].shape(), "stack: expected tensors of one shape, got ",
             shape_str(tensors[0].shape()), " and ", shape_str(t.shape()));
  const std::size_t d = wrap_dim("stack", dim, tensors[0].dim() + 1, tensors[0].shape());
  // A tensor given more than once is unsqueezed once, so that cat sees the repeats and sums their
  // gradient slices in one pass.
  std::vector<Tensor> pieces;
  std::unordered_map<const void*, Tensor> unsqueezed;
  for (const Tensor& t : tensors) {
    auto [it, fresh] = unsqueezed.try_emplace(t.impl().get());
    if (fresh) it->second = unsqueeze(t, std::int64_t(d));
    pieces.push_back(it->second);
  }
  return cat(pieces, std::int64_t(d));
}

Tensor narrow(const Tensor& a, std::int64_t dim, std::int64_t start, std::int64_t length) {
  const std::size_t d = wrap_sized_dim("narrow", dim, a.shape());
  const auto size = std::int64_t(a.shape()[d]);
  // A negative start counts from the end, as PyTorch's (start in [-size, size]). start <= size -
  // length, not start + length <= size: that sum can overflow.
  const std::int64_t first = start < 0 && start >= -size ? start + size : start;
  TG_CHECK(first >= 0 && length >= 0 && length <= size && first <= size - length, "narrow: start ", start,
           " and length ", length, " are out of range for dim ", dim, " of size ", size, " in ", shape_str(a.shape()));
  std::vector<std::size_t> rows(static_cast<std::size_t>(length));
  std::iota(rows.begin(), rows.end(), std::size_t(first));
  return select_rows("narrow", a, d, std::move(rows));
}

Tensor slice(const Tensor& a, std::int64_t dim, std::optional<std::int64_t> start, std::optional<std::int64_t> end,
             std::int64_t step) {
  const std::size_t d = wrap_sized_dim("slice", dim, a.shape());
  TG_CHECK(step > 0, "slice: step must be positive, got ", step);
  const auto size = std::int64_t(a.shape()[d]);
  // Python's rules: negative bounds count from the end, then both are clamped to [0, size].
  auto bound = [size](std::optional<std::int64_t> v, std::int64_t fallback) {
    std::int64_t b = v.value_or(fallback);
    if (b < 0) b += size;
    return std::clamp<std::int64_t>(b, 0, size);
  };
  const std::int64_t begin = bound(start, 0), stop = bound(end, size);
  std::vector<std::size_t> rows;
  for (std::int64_t i = begin; i < stop; i += step) rows.push_back(std::size_t(i));
  return select_rows("slice", a, d, std::move(rows));
}

Tensor select(const Tensor& a, std::int64_t dim, std::int64_t index) {
  const std::size_t d = wrap_sized_dim("select", dim, a.shape());
  const auto size = std::int64_t(a.shape()[d]);
  TG_CHECK(index >= -size && index < size, "select: index ", index, " is out of range for dim ", dim,
           " of size ", size, " in ", shape_str(a.shape()));
  return squeeze(narrow(a, dim, index < 0 ? index + size : index, 1), std::int64_t(d));
}

Tensor index_select(const Tensor& a, std::int64_t dim, const Tensor& index) {
  const std::size_t d = wrap_dim("index_select", dim, a.dim(), a.shape());
  TG_CHECK(index.dtype() == kInt64 && index.dim() <= 1, "index_select: expected a 1-D int64 index, got ",
           dtype_name(index.dtype()), " ", shape_str(index.shape()));
  if (a.dim() == 0) {  // PyTorch's convention: a 0-d input is one row, and the result is 0-d (0 for no index)
    TG_CHECK(index.numel() <= 1, "index_select: a 0-d input takes an index of at most one element, got ",
             shape_str(index.shape()));
    TG_CHECK(index.numel() == 0 || index.data<std::int64_t>()[0] == 0, "index_select: index ",
             index.data<std::int64_t>()[0], " is out of range for dim ", dim, " of size 1 in []");
    const Tensor picked = index_select(reshape(a, {1}), 0, reshape(index, {-1}));
    if (index.numel() == 1) return reshape(picked, std::vector<std::int64_t>{});
    return is_floating(a.dtype()) ? sum(picked) : zeros({}, a.dtype());
  }
  const auto size = std::int64_t(a.shape()[d]);
  std::vector<std::size_t> rows;
  rows.reserve(index.numel());
  for (std::int64_t i : std::span<const std::int64_t>(index.data<std::int64_t>(), index.numel())) {
    TG_CHECK(i >= 0 && i < size, "index_select: index ", i, " is out of range for dim ", dim, " of size ", size,
             " in ", shape_str(a.shape()));
    rows.push_back(std::size_t(i));
  }
  return select_rows("index_select", a, d, std::move(rows));
}

// ---- gather ---------------------------------------------------------------------------------

namespace {

// Where gather's values come from in `a`: index entry (o, j, i), for o over index's dims before
// dim, j along dim and i over the dims after it, reads a at outer[o] + index·stride + inner[i]
// (index may be smaller than a in every dim but dim, so both tables follow index's sizes).
struct GatherLayout {
  std::vector<std::size_t> outer, inner;
  std::size_t n = 0, stride = 0, size = 0;  // index's extent along dim; a's stride and size along it
};

GatherLayout gather_layout(const Shape& a, const Shape& index, std::size_t d) {
  std::vector<std::size_t> strides(a.size(), 1);
  for (std::size_t k = a.size(); k-- > 1;) strides[k - 1] = strides[k] * a[k];
  auto offsets = [&](std::size_t from, std::size_t to) {  // row-major over index's dims [from, to)
    std::vector<std::size_t> offs{0};
    for (std::size_t k = from; k < to; ++k) {
      std::vector<std::size_t> next;
      next.reserve(offs.size() * index[k]);
      for (std::size_t base : offs)
        for (std::size_t c = 0; c < index[k]; ++c) next.push_back(base + c * strides[k]);
      offs = std::move(next);
    }
    return offs;
  };
  return {offsets(0, d), offsets(d + 1, a.size()), index[d], strides[d], a[d]};
}

// fn(k, place) for the index entries k of slabs [first, last) of index's dims up to dim, in order;
// false if an entry is outside [0, size). The entries are checked a chunk of about 1024 at a
// time, by their largest as unsigned (a negative one wraps to a huge one), before fn sees any of
// them, and a chunk with one outside is skipped (the caller throws): no branch or clamp per
// entry. (Gathering along the last dim took 3.6 ms for 1024 x 1024 entries with a branch per
// entry, 1.9 without; scatter_add's loop with a clamp and a flag per entry 2.2, checked by
// chunks 1.9.) Checked = false, for an index checked already (gather's backward), skips that.
// start(o) comes before slab o's first entry (see own_run); NoStart does nothing.
struct NoStart {
  void operator()(std::size_t) const {}
};

template <bool Checked, class Fn, class Start = NoStart>
bool for_gathered(const GatherLayout& l, const std::int64_t* at, std::size_t first, std::size_t last, Fn&& fn,
                  Start&& start = {}) {
  const std::size_t inner = l.inner.size(), top = l.size - 1, slab = l.n * inner;
  const std::size_t rows = std::max<std::size_t>(1, 1024 / std::max<std::size_t>(inner, 1));  // entries along dim a chunk
  bool in_range = true;
  for (std::size_t o = first; o < last; ++o) {
    start(o);
    const std::size_t base = l.outer[o], k0 = o * slab;
    for (std::size_t j0 = 0; j0 < l.n; j0 += rows) {
      const std::size_t j1 = std::min(l.n, j0 + rows);
      if constexpr (Checked) {
        std::uint64_t largest = 0;
        for (std::size_t k = k0 + j0 * inner; k < k0 + j1 * inner; ++k) largest = std::max(largest, std::uint64_t(at[k]));
        if (largest > top) {
          in_range = false;
          continue;
        }
      }
      if (inner == 1) {  // along the last dim (or inner dims of one)
        for (std::size_t j = j0; j < j1; ++j) fn(k0 + j, base + std::size_t(at[k0 + j]) * l.stride);
        continue;
      }
      for (std::size_t j = j0; j < j1; ++j)
        for (std::size_t i = 0; i < inner; ++i) {
          const std::size_t k = k0 + j * inner + i;
          fn(k, base + std::size_t(at[k]) * l.stride + l.inner[i]);
        }
    }
  }
  return in_range;
}

// fn(k, place) for every entry of index (laid out by l), in parallel over the slabs of index's
// dims up to dim, each slab in order: entries that share a place differ only along dim, so they
// lie in one slab and are taken in index order whatever the thread count. False if an entry was
// outside [0, size) (its chunk was skipped; the caller throws). Checked = false: for_gathered's.
template <bool Checked = true, class Fn, class Start = NoStart>
bool for_each_entry(const GatherLayout& l, const Tensor& index, Fn&& fn, Start&& start = {}) {
  const std::size_t slab = l.n * l.inner.size();
  const std::size_t grain = std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(slab, 1));
  std::atomic<bool> in_range{true};
  parallel::for_range(l.outer.size(), grain, [&](std::size_t first, std::size_t last) {
    if (!for_gathered<Checked>(l, index.data<std::int64_t>(), first, last, fn, start))
      in_range.store(false, std::memory_order_relaxed);
  });
  return in_range.load();
}

// The run of `a` (of `numel` values, `bytes` each) that slab o of index alone reaches, as the
// length of a[outer[o], outer[o] + run): when index has a's sizes in every dim but dim, the
// slabs' runs are disjoint and cover a. An output too large for L2 (over 1 MB) that starts as
// zeros or as a copy of a then writes each run just before its slab's entries (start), while the
// run is still in cache for their additions, instead of in a pass of its own ahead, which leaves
// the output in L3 or memory. 0 otherwise, or when a run is over 256 KB. (Zen 5, one thread, by
// turns, best of 7: gather's forward and backward over 1024 x 1024 took 1.4-1.7 ms with a zeros
// pass ahead, 1.2-1.5 with a row zeroed before each, and scatter_add's likewise with a copy of a;
// over 64 x 64, rows of 256 bytes zeroed by memset one by one took gather from 3.6 to 4.8 us.)
std::size_t own_run(const GatherLayout& l, std::size_t numel, std::size_t bytes) {
  const std::size_t run = l.size * l.stride;
  const bool covers = l.outer.size() * l.inner.size() * l.size == numel && l.inner.size() == l.stride;
  return covers && numel * bytes > (1u << 20) && run * bytes <= (256u << 10) ? run : 0;
}

#if defined(__AVX512F__)
// Sixteen int64 entries (low: the first 8, high: the next 8) as int32 lanes, each clamped to
// last (all lanes of it; below 2^31); outside gets the lanes of an entry past last (a negative
// one is a huge one as unsigned).
__m512i narrow_entries(__m512i low, __m512i high, __m512i last, __mmask8& outside) {
  outside |= _mm512_cmpgt_epu64_mask(low, last) | _mm512_cmpgt_epu64_mask(high, last);
  const __m256i first = _mm512_cvtepi64_epi32(_mm512_min_epu64(low, last));
  const __m256i second = _mm512_cvtepi64_epi32(_mm512_min_epu64(high, last));
  return _mm512_inserti64x4(_mm512_castsi256_si512(first), second, 1);
}

// y[j] = row[min(at[j], top)] for j < n, sixteen float32 values a vgatherdps (the entries
// narrowed to 32 bits, when top < 2^31), then eight a vgatherqps; false if an entry was outside
// [0, top]. (Scalar, the gather along the last dim of 1024 x 1024 took 1.0 ms of its 2.1 forward
// and backward on an Intel Xeon. On an AMD Zen 5, 1M values in cache took 0.61 ms by vgatherqps
// alone, 0.47 by scalar loads and 0.48 by vgatherdps.) Next (or null) is the row of the next
// call, brought into L1 a line every sixteen entries: its values are wanted in random order, too
// soon for the hardware's prefetcher. (1024 entries a row of 1024, out of cache: 0.50-0.53 ms
// without, 0.42 with, on a Zen 5; gather's forward and backward, 1.9-2.0 ms -> 1.4-1.7.)
bool gather_floats(const float* row, const std::int64_t* at, std::size_t n, std::size_t top, float* y,
                   const float* next) {
  const __m512i last = _mm512_set1_epi64(std::int64_t(top));
  const std::size_t ahead = next ? std::min(n, top + 1) : 0;  // the values of next to bring in
  __mmask8 outside = 0;
  std::size_t j = 0;
  if (top <= std::size_t(std::numeric_limits<std::int32_t>::max()))
    for (; j + 16 <= n; j += 16) {
      if (j < ahead) _mm_prefetch(reinterpret_cast<const char*>(next + j), _MM_HINT_T0);
      const __m512i entries = narrow_entries(_mm512_loadu_si512(at + j), _mm512_loadu_si512(at + j + 8), last, outside);
      _mm512_storeu_ps(y + j, _mm512_i32gather_ps(entries, row, 4));
    }
  for (; j + 8 <= n; j += 8) {
    const __m512i entry = _mm512_loadu_si512(at + j);
    outside |= _mm512_cmpgt_epu64_mask(entry, last);
    _mm256_storeu_ps(y + j, _mm512_i64gather_ps(_mm512_min_epu64(entry, last), row, 4));
  }
  bool in_range = outside == 0;
  for (; j < n; ++j) {
    const auto entry = std::uint64_t(at[j]);
    in_range = in_range && entry <= top;
    y[j] = row[std::min<std::size_t>(entry, top)];
  }
  return in_range;
}

// gather_floats for a row of at most 64 floats: the row sits in four registers and each sixteen
// entries pick their values with two vpermt2ps (entries 0-31 and 32-63) and a blend by bit 5,
// with no load per value. (vgatherdps costs about 2 cycles a value on Zen 5: perf of gather's
// forward and backward over 64 x 64 put the forward at 36% of 4.5 us; with the permutes the
// whole step took 3.4-3.5 us.) Entries past the row are flagged as gather_floats does; their
// lanes get the row's last value.
bool gather_short_row(const float* row, std::size_t size, const std::int64_t* at, std::size_t n, float* y) {
  __m512 part[4];
  for (std::size_t q = 0; q < 4; ++q) {
    const std::size_t have = size > 16 * q ? std::min<std::size_t>(16, size - 16 * q) : 0;
    part[q] = _mm512_maskz_loadu_ps(kernels::first_lanes16(have), row + 16 * q);
  }
  const __m512i last = _mm512_set1_epi64(std::int64_t(size) - 1);
  __mmask8 outside = 0;
  // Sixteen entries (low and high, 8 each) to their values; whole batches load and store plainly.
  auto pick = [&](__m512i low, __m512i high) {
    const __m512i entries = narrow_entries(low, high, last, outside);
    const __m512 first = _mm512_permutex2var_ps(part[0], entries, part[1]);
    const __m512 second = _mm512_permutex2var_ps(part[2], entries, part[3]);
    return _mm512_mask_blend_ps(_mm512_test_epi32_mask(entries, _mm512_set1_epi32(32)), first, second);
  };
  std::size_t j = 0;
  for (; j + 16 <= n; j += 16) _mm512_storeu_ps(y + j, pick(_mm512_loadu_si512(at + j), _mm512_loadu_si512(at + j + 8)));
  if (j < n) {  // the last few: masked, the lanes past n read as entry 0
    const std::size_t count = n - j;
    const __m512i low = _mm512_maskz_loadu_epi64(__mmask8(kernels::first_lanes16(std::min<std::size_t>(count, 8))), at + j);
    const __m512i high = _mm512_maskz_loadu_epi64(__mmask8(kernels::first_lanes16(count > 8 ? count - 8 : 0)), at + j + 8);
    _mm512_mask_storeu_ps(y + j, kernels::first_lanes16(count), pick(low, high));
  }
  return outside == 0;
}
#endif

}  // namespace

Tensor gather(const Tensor& a, std::int64_t dim, const Tensor& index) {
  TG_CHECK(index.dtype() == kInt64, "gather: expected an int64 index, got ", dtype_name(index.dtype()), " ",
           shape_str(index.shape()));
  TG_CHECK(index.dim() == a.dim(), "gather: index ", shape_str(index.shape()), " must have as many dims as the input ",
           shape_str(a.shape()));
  const std::size_t d = wrap_dim("gather", dim, std::max<std::size_t>(a.dim(), 1), a.shape());
  for (std::size_t k = 0; k < a.dim(); ++k)
    TG_CHECK(k == d || index.shape()[k] <= a.shape()[k], "gather: index ", shape_str(index.shape()),
             " is larger than the input ", shape_str(a.shape()), " in dim ", k);
  // A 0-d input (and index) is one value along dim 0, as PyTorch's.
  auto layout = std::make_shared<const GatherLayout>(
      gather_layout(a.dim() == 0 ? Shape{1} : a.shape(), index.dim() == 0 ? Shape{1} : index.shape(), d));
  const std::int64_t* at = index.data<std::int64_t>();
  TG_CHECK(index.numel() == 0 || layout->size > 0, "gather: index ", at[0], " is out of range for dim ", dim,
           " of size 0 in ", shape_str(a.shape()));
  const std::size_t slab = layout->n * layout->inner.size();
  const std::size_t grain = std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(slab, 1));
  Tensor out = dispatch_all(a.dtype(), [&]<class T>() {
    xt::xarray<T> values = xt::xarray<T>::from_shape(index.shape());
    const T* x = a.data<T>();
    T* y = values.data();
    std::atomic<bool> in_range{true};
    parallel::for_range(layout->outer.size(), grain, [&](std::size_t first, std::size_t last) {
#if defined(__AVX512F__)
      if constexpr (std::is_same_v<T, float>) {
        if (layout->inner.size() == 1 && layout->stride == 1) {  // along the last dim
          const std::size_t n = layout->n;
          for (std::size_t o = first; o < last; ++o)
            if (!(layout->size <= 64 ? gather_short_row(x + layout->outer[o], layout->size, at + o * n, n, y + o * n)
                                     : gather_floats(x + layout->outer[o], at + o * n, n, layout->size - 1, y + o * n,
                                                     o + 1 < last ? x + layout->outer[o + 1] : nullptr)))
              in_range.store(false, std::memory_order_relaxed);
          return;
        }
      }
#endif
      if (!for_gathered<true>(*layout, at, first, last, [&](std::size_t k, std::size_t place) { y[k] = x[place]; }))
        in_range.store(false, std::memory_order_relaxed);
    });
    if (!in_range.load()) {
      const auto size = std::int64_t(layout->size);
      for (std::int64_t entry : std::span<const std::int64_t>(at, index.numel()))
        TG_CHECK(entry >= 0 && entry < size, "gather: index ", entry, " is out of range for dim ", dim, " of size ",
                 size, " in ", shape_str(a.shape()));
    }
    return make_tensor<T>(std::move(values));
  });
  // The gradient adds each value back where it came from. Entries that share a place differ only
  // along dim, so they lie in one slab of index's dims up to dim: the slabs go to the threads,
  // each added in order (the same bits for any thread count).
  auto backward = [layout, index, shape = a.shape(), numel = a.numel()](const Tensor& grad) -> Grads {
    return {dispatch_floating(grad.dtype(), "gather", [&]<class T>() {
      const std::size_t run = own_run(*layout, numel, sizeof(T));
      xt::xarray<T> dx = run ? xt::xarray<T>::from_shape(shape) : kernels::zeros<T>(shape);
      const T* g = grad.data<T>();
      T* dst = dx.data();
      for_each_entry<false>(*layout, index, [&](std::size_t k, std::size_t place) { dst[place] += g[k]; },
                            [&](std::size_t o) {
                              if (run) kernels::apply(run, dst + layout->outer[o], [] { return kernels::Batch<T>(T(0)); });
                            });
      return make_tensor<T>(std::move(dx));
    })};
  };
  return record("gather", out, {a}, {index}, std::move(backward));
}

// ---- scatter, scatter_add, index_add --------------------------------------------------------

namespace {

// scatter's and scatter_add's checks (PyTorch's): an int64 index of a's rank, no larger than a in
// any dim but dim, nor than src in any dim; src of a's dtype and rank. Returns dim, wrapped.
std::size_t check_scatter(const char* op, const Tensor& a, std::int64_t dim, const Tensor& index, const Tensor* src) {
  TG_CHECK(index.dtype() == kInt64, op, ": expected an int64 index, got ", dtype_name(index.dtype()), " ",
           shape_str(index.shape()));
  TG_CHECK(index.dim() == a.dim(), op, ": index ", shape_str(index.shape()), " must have as many dims as the input ",
           shape_str(a.shape()));
  const std::size_t d = wrap_dim(op, dim, std::max<std::size_t>(a.dim(), 1), a.shape());
  for (std::size_t k = 0; k < a.dim(); ++k)
    TG_CHECK(k == d || index.shape()[k] <= a.shape()[k], op, ": index ", shape_str(index.shape()),
             " is larger than the input ", shape_str(a.shape()), " in dim ", k);
  if (src) {
    TG_CHECK(src->dtype() == a.dtype(), op, ": src must have the input's dtype ", dtype_name(a.dtype()), ", got ",
             dtype_name(src->dtype()));
    TG_CHECK(src->dim() == a.dim(), op, ": src ", shape_str(src->shape()), " must have as many dims as the input ",
             shape_str(a.shape()));
    for (std::size_t k = 0; k < a.dim(); ++k)
      TG_CHECK(index.shape()[k] <= src->shape()[k], op, ": index ", shape_str(index.shape()), " is larger than src ",
               shape_str(src->shape()), " in dim ", k);
  }
  TG_CHECK(index.numel() == 0 || a.dim() == 0 || a.shape()[d] > 0, op, ": index ", index.data<std::int64_t>()[0],
           " is out of range for dim ", dim, " of size 0 in ", shape_str(a.shape()));
  return d;
}

// src's leading corner of index's shape (src itself when the shapes agree), recorded, so that its
// gradient reaches src's shape.
Tensor leading_corner(const Tensor& src, const Shape& shape) {
  Tensor corner = src;
  for (std::size_t k = 0; k < shape.size(); ++k)
    if (corner.shape()[k] != shape[k]) corner = narrow(corner, std::int64_t(k), 0, std::int64_t(shape[k]));
  return corner;
}

// A copy of a's values (any dtype), in parallel.
template <class T>
xt::xarray<T> copy_of(const Tensor& a) {
  xt::xarray<T> values = xt::xarray<T>::from_shape(a.shape());
  parallel::copy(a.data<T>(), values.size(), values.data());
  return values;
}

// The scatter ops' forward: a copy of `a`, and write(out, src, k, place) for every index entry k,
// src the values of `from` (index's shape) or null.
template <class Write>
Tensor scatter_copy(const char* op, const Tensor& a, std::int64_t dim, std::size_t d, const Tensor& index,
                    const Tensor* from, Write&& write) {
  const GatherLayout layout =
      gather_layout(a.dim() == 0 ? Shape{1} : a.shape(), index.dim() == 0 ? Shape{1} : index.shape(), d);
  return dispatch_all(a.dtype(), [&]<class T>() {
    const std::size_t run = own_run(layout, a.numel(), sizeof(T));
    xt::xarray<T> values = run ? xt::xarray<T>::from_shape(a.shape()) : copy_of<T>(a);
    T* y = values.data();
    const T* x = a.data<T>();
    const T* src = from ? from->data<T>() : nullptr;
    auto entry = [&](std::size_t k, std::size_t place) { write(y, src, k, place); };
    // (Without runs, no start at all: an empty one cost scatter_add over 64 x 64 0.3-0.5 us.)
    const bool in_range =
        run ? for_each_entry(layout, index, entry, [&](std::size_t o) { std::copy_n(x + layout.outer[o], run, y + layout.outer[o]); })
            : for_each_entry(layout, index, entry);
    if (!in_range) {
      const auto size = std::int64_t(layout.size);
      for (std::int64_t entry : std::span<const std::int64_t>(index.data<std::int64_t>(), index.numel()))
        TG_CHECK(entry >= 0 && entry < size, op, ": index ", entry, " is out of range for dim ", dim, " of size ", size,
                 " in ", shape_str(a.shape()));
    }
    return make_tensor<T>(std::move(values));
  });
}

}  // namespace

Tensor scatter(const Tensor& a, std::int64_t dim, const Tensor& index, const Tensor& src) {
  const std::size_t d = check_scatter("scatter", a, dim, index, &src);
  const Tensor from = leading_corner(src, index.shape());
  Tensor out = scatter_copy("scatter", a, dim, d, index, &from,
                            [](auto* y, const auto* src, std::size_t k, std::size_t place) { y[place] = src[k]; });
  return record("scatter", out, {a, from}, {index}, [index, d](const Tensor& grad, NeedsGrad needs) -> Grads {
    const auto dim = std::int64_t(d);
    return {needs[0] ? scatter(grad, dim, index, 0.0) : Tensor(), needs[1] ? gather(grad, dim, index) : Tensor()};
  });
}

Tensor scatter(const Tensor& a, std::int64_t dim, const Tensor& index, double value) {
  const std::size_t d = check_scatter("scatter", a, dim, index, nullptr);
  Tensor out = scatter_copy("scatter", a, dim, d, index, nullptr, [value](auto* y, const auto*, std::size_t, std::size_t place) {
    y[place] = static_cast<std::remove_pointer_t<decltype(y)>>(value);
  });
  return record("scatter", out, {a}, {index}, [index, d](const Tensor& grad) -> Grads {
    return {scatter(grad, std::int64_t(d), index, 0.0)};
  });
}

Tensor scatter_add(const Tensor& a, std::int64_t dim, const Tensor& index, const Tensor& src) {
  const std::size_t d = check_scatter("scatter_add", a, dim, index, &src);
  const Tensor from = leading_corner(src, index.shape());
  Tensor out = scatter_copy("scatter_add", a, dim, d, index, &from,
                            [](auto* y, const auto* src, std::size_t k, std::size_t place) { y[place] += src[k]; });
  return record("scatter_add", out, {a, from}, {index}, [index, d](const Tensor& grad, NeedsGrad needs) -> Grads {
    return {needs[0] ? grad : Tensor(), needs[1] ? gather(grad, std::int64_t(d), index) : Tensor()};
  });
}

Tensor index_add(const Tensor& a, std::int64_t dim, const Tensor& index, const Tensor& source, double alpha) {
  TG_CHECK(index.dtype() == kInt64 && index.dim() <= 1, "index_add: expected a 1-D int64 index, got ",
           dtype_name(index.dtype()), " ", shape_str(index.shape()));
  TG_CHECK(source.dtype() == a.dtype(), "index_add: source must have the input's dtype ", dtype_name(a.dtype()),
           ", got ", dtype_name(source.dtype()));
  // A 0-d input is one entry along dim 0, as PyTorch's.
  const Shape shape = a.dim() == 0 ? Shape{1} : a.shape();
  const std::size_t d = wrap_dim("index_add", dim, a.dim(), a.shape());
  Shape expected = shape;
  expected[d] = index.numel();
  const Shape source_shape = source.dim() == 0 ? Shape{1} : source.shape();
  TG_CHECK(source_shape == expected, "index_add: source ", shape_str(source.shape()), " must be the input ",
           shape_str(a.shape()), " with ", index.numel(), " entries along dim ", dim, " (", shape_str(expected), ")");
  const auto size = std::int64_t(shape[d]);
  std::vector<std::size_t> rows;
  rows.reserve(index.numel());
  for (std::int64_t i : std::span<const std::int64_t>(index.data<std::int64_t>(), index.numel())) {
    TG_CHECK(i >= 0 && i < size, "index_add: index ", i, " is out of range for dim ", dim, " of size ", size, " in ",
             shape_str(a.shape()));
    rows.push_back(std::size_t(i));
  }
  TG_CHECK(alpha == 1.0 || is_floating(a.dtype()), "index_add: alpha ", alpha, " needs a floating-point input, got ",
           dtype_name(a.dtype()));
  const Tensor scaled = alpha == 1.0 ? source : source.detach() * alpha;
  Tensor out = dispatch_all(a.dtype(), [&]<class T>() {
    xt::xarray<T> values = copy_of<T>(a);
    scatter_add_rows(scaled.data<T>(), values.data(), kernels::reduce_layout(shape, d), rows);
    return make_tensor<T>(std::move(values));
  });
  return record("index_add", out, {a, source}, {index},
                [index, d, alpha, source_shape = source.shape()](const Tensor& grad, NeedsGrad needs) -> Grads {
    if (!needs[1]) return {grad, Tensor()};
    Tensor picked = index_select(grad, std::int64_t(d), index);
    if (picked.shape() != source_shape) picked = reshape(picked, kernels::as_signed(source_shape));  // (a 0-d input)
    return {needs[0] ? grad : Tensor(), alpha == 1.0 ? picked : picked * alpha};
  });
}

// ---- tril, triu -----------------------------------------------------------------------------

namespace {

// a's matrices (its last two dims) with the values above diagonal k (Lower: kept on and below it)
// or below it (Upper: kept on and above it) set to 0: column j of row i is kept when j - i <= k
// (Lower) or j - i >= k (Upper). Any dtype; the gradient is the same mask of the gradient.
template <bool Lower>
Tensor triangle(const char* op, const Tensor& a, std::int64_t k) {
  TG_CHECK(a.dim() >= 2, op, ": expected a tensor of at least 2 dims, got ", shape_str(a.shape()));
  const std::size_t rows = a.shape()[a.dim() - 2], cols = a.shape()[a.dim() - 1];
  const std::size_t matrices = rows * cols == 0 ? 0 : a.numel() / (rows * cols);
  k = std::clamp<std::int64_t>(k, -std::int64_t(rows) - 1, std::int64_t(cols) + 1);  // no overflow below
  auto mask = [rows, cols, matrices, k]<class T>(const T* x, T* y) {
    const std::size_t grain = std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(1, cols));
    parallel::for_range(matrices * rows, grain, [&](std::size_t first, std::size_t last) {
      for (std::size_t row = first; row < last; ++row) {
        const auto i = std::int64_t(row % rows);
        // Kept columns: [0, i + k] (Lower) or [i + k, cols) (Upper), clipped to [0, cols].
        const std::int64_t edge = std::clamp<std::int64_t>(Lower ? i + k + 1 : i + k, 0, std::int64_t(cols));
        const T* in = x + row * cols;
        T* out = y + row * cols;
        if constexpr (Lower) {
          std::copy(in, in + edge, out);
          std::fill(out + edge, out + cols, T(0));
        } else {
          std::fill(out, out + edge, T(0));
          std::copy(in + edge, in + cols, out + edge);
        }
      }
    });
  };
  Tensor out = dispatch_all(a.dtype(), [&]<class T>() {
    xt::xarray<T> result = xt::xarray<T>::from_shape(a.shape());
    mask(a.data<T>(), result.data());
    return make_tensor<T>(std::move(result));
  });
  return record(op, out, {a}, [mask, op](const Tensor& grad) -> Grads {
    return {dispatch_floating(grad.dtype(), op, [&]<class T>() {
      xt::xarray<T> dx = xt::xarray<T>::from_shape(grad.shape());
      mask(grad.data<T>(), dx.data());
      return make_tensor<T>(std::move(dx));
    })};
  });
}

}  // namespace

Tensor tril(const Tensor& a, std::int64_t diagonal) { return triangle<true>("tril", a, diagonal); }
Tensor triu(const Tensor& a, std::int64_t diagonal) { return triangle<false>("triu", a, diagonal); }

}  // namespace tg

namespace tg {

// masked_select keeps which positions it picked as bits, 16 positions a word (2 bytes for 16
// values where a list of positions took 8 per picked value). With float32 values and mask on
// AVX-512 a word is one comparison, and the picked values of 16 positions are one compress (the
// gradient one expand, which also writes the zeros): `masked_select` at 64 × 64, forward and
// backward, one thread, 5.5 → 2.2 us, at 1024 × 1024 1.40 → 0.48 ms (minimum of 6 by turns).
// Elsewhere the set bits are walked one by one (no branch per value: a random mask mispredicted
// half of them, 6.6 ms for 1M values, when the loop tested each).
namespace {

struct MaskBits {
  std::vector<std::uint16_t> words;  // bit j of words[w]: position 16·w + j is picked
  std::size_t picked = 0;
};

#if defined(__x86_64__)
// The bits of a float32 mask, 16 values a comparison.
__attribute__((target("avx512f"))) MaskBits float_mask_bits(const float* m, std::size_t n) {
  MaskBits b{std::vector<std::uint16_t>((n + 15) / 16), 0};
  for (std::size_t w = 0; w < b.words.size(); ++w) {
    const __m512 v = kernels::load16(kernels::first_lanes16(n - 16 * w), m + 16 * w);
    const __mmask16 k = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ);  // NaN counts, -0 not
    b.words[w] = std::uint16_t(k);
    b.picked += std::size_t(std::popcount(b.words[w]));
  }
  return b;
}

// out = the picked values of x (n of them), in order.
__attribute__((target("avx512f"))) void compress_floats(const float* x, const MaskBits& b, std::size_t n,
                                                        float* out) {
  for (std::size_t w = 0; w < b.words.size(); ++w) {
    const __mmask16 k = b.words[w];
    const __m512 v = kernels::load16(kernels::first_lanes16(n - 16 * w), x + 16 * w);
    const auto count = std::size_t(std::popcount(b.words[w]));
    _mm512_mask_storeu_ps(out, kernels::first_lanes16(count), _mm512_maskz_compress_ps(k, v));
    out += count;
  }
}

// dx (n values) = the gradients g of the picked values at their positions, zero elsewhere.
__attribute__((target("avx512f"))) void expand_floats(const float* g, const MaskBits& b, std::size_t n,
                                                      float* dx) {
  for (std::size_t w = 0; w < b.words.size(); ++w) {
    const auto count = std::size_t(std::popcount(b.words[w]));
    const __m512 picked = _mm512_maskz_loadu_ps(kernels::first_lanes16(count), g);
    const __m512 v = _mm512_maskz_expand_ps(__mmask16(b.words[w]), picked);
    _mm512_mask_storeu_ps(dx + 16 * w, kernels::first_lanes16(n - 16 * w), v);
    g += count;
  }
}
#endif

// Whether float32 values take the 16-lane loops.
bool float_lanes() {
#if defined(__x86_64__)
  return detail::sgemm_avx512_available();
#else
  return false;
#endif
}

// fn(position, k) for every picked position, k counting them from 0.
template <class Fn>
void for_each_picked(const MaskBits& b, Fn&& fn) {
  std::size_t k = 0;
  for (std::size_t w = 0; w < b.words.size(); ++w)
    for (unsigned bits = b.words[w]; bits != 0; bits &= bits - 1)
      fn(16 * w + std::size_t(std::countr_zero(bits)), k++);
}

}  // namespace

Tensor masked_select(const Tensor& input, const Tensor& mask) {
  // The input and the mask broadcast against each other, as in PyTorch; an expanded input sums its
  // gradient back through expand.
  const Shape shape = kernels::broadcast_shape("masked_select", input.shape(), mask.shape());
  const Tensor a = input.shape() == shape ? input : expand(input, shape);
  const Tensor full_mask = mask.shape() == shape ? mask : expand(mask.detach(), shape);
  const std::size_t n = a.numel();
  const bool lanes = float_lanes() && a.dtype() == kFloat32;
  MaskBits bits;
#if defined(__x86_64__)
  if (lanes && full_mask.dtype() == kFloat32) bits = float_mask_bits(full_mask.data<float>(), n);
#endif
  if (bits.words.empty() && n > 0)
    std::visit(
        [&](const auto& m) {
          bits.words.assign((n + 15) / 16, 0);
          const auto* v = m.data();
          for (std::size_t i = 0; i < n; ++i) bits.words[i / 16] |= std::uint16_t(unsigned(v[i] != 0) << (i % 16));
          for (std::uint16_t word : bits.words) bits.picked += std::size_t(std::popcount(word));
        },
        flat_values(full_mask));
  Tensor out = dispatch_all(a.dtype(), [&]<class T>() {
    xt::xarray<T> picked = xt::xarray<T>::from_shape({bits.picked});
    const T* x = a.data<T>();
#if defined(__x86_64__)
    if constexpr (std::is_same_v<T, float>)
      if (lanes) {
        compress_floats(x, bits, n, picked.data());
        return make_tensor<T>(std::move(picked));
      }
#endif
    for_each_picked(bits, [&](std::size_t i, std::size_t k) { picked.data()[k] = x[i]; });
    return make_tensor<T>(std::move(picked));
  });
  auto backward = [bits = std::move(bits), shape = a.shape(), lanes, n](const Tensor& grad) -> Grads {
    return {dispatch_floating(grad.dtype(), "masked_select", [&]<class T>() {
      const T* g = grad.data<T>();
#if defined(__x86_64__)
      if constexpr (std::is_same_v<T, float>)
        if (lanes) {
          xt::xarray<T> dx = xt::xarray<T>::from_shape(shape);  // every value written
          expand_floats(g, bits, n, dx.data());
          return make_tensor<T>(std::move(dx));
        }
#endif
      xt::xarray<T> dx = kernels::zeros<T>(shape);
      for_each_picked(bits, [&](std::size_t i, std::size_t k) { dx.data()[i] = g[k]; });
      return make_tensor<T>(std::move(dx));
    })};
  };
  return record("masked_select", out, {a}, std::move(backward));
}

Tensor masked_fill(const Tensor& a, const Tensor& mask, double value) {
  // The mask as a's dtype (non-zero stays non-zero, NaN too), at its own size: it broadcasts in the
  // kernel, never expanded to the output's size.
  const Tensor keep = mask.dtype() == a.dtype() ? mask.detach() : mask.to(a.dtype());
  // (k == 0, not k != 0: xsimd's != is an ordered compare, false for a NaN k, which is set.)
  Tensor out = binary("masked_fill", a, keep, [value](auto x, auto k) {
    return pick(k == decltype(k)(0), x, scalar_like(x, value));
  });
  return record("masked_fill", out, {a}, {keep}, [keep](const Tensor& grad) -> Grads {
    return {binary("masked_fill", grad, keep, [](auto g, auto k) { return pick(k == decltype(k)(0), g, 0); })};
  });
}

std::vector<Tensor> split(const Tensor& a, std::int64_t split_size, std::int64_t dim) {
  TG_CHECK(split_size > 0, "split: split_size must be positive, got ", split_size);
  const std::size_t d = wrap_sized_dim("split", dim, a.shape());
  const auto size = std::int64_t(a.shape()[d]);
  std::vector<Tensor> pieces;
  for (std::int64_t start = 0; start < size; start += split_size)
    pieces.push_back(narrow(a, std::int64_t(d), start, std::min(split_size, size - start)));
  if (pieces.empty()) pieces.push_back(a);  // an empty dim: one empty piece, as PyTorch
  return pieces;
}

std::vector<Tensor> chunk(const Tensor& a, std::int64_t chunks, std::int64_t dim) {
  TG_CHECK(chunks > 0, "chunk: chunks must be positive, got ", chunks);
  const std::size_t d = wrap_sized_dim("chunk", dim, a.shape());
  const auto size = std::int64_t(a.shape()[d]);
  if (size == 0) {  // chunks empty pieces, as PyTorch's
    std::vector<Tensor> pieces;
    for (std::int64_t i = 0; i < chunks; ++i) pieces.push_back(narrow(a, std::int64_t(d), 0, 0));
    return pieces;
  }
  return split(a, (size + chunks - 1) / chunks, std::int64_t(d));
}

Tensor embedding(const Tensor& indices, const Tensor& weight, std::optional<std::int64_t> padding_idx) {
  TG_CHECK(indices.dtype() == kInt64, "embedding: indices must be int64, got ", dtype_name(indices.dtype()), " ",
           shape_str(indices.shape()));
  TG_CHECK(weight.dim() == 2, "embedding: weight must be (num_embeddings, embedding_dim), got ",
           shape_str(weight.shape()));
  const auto rows_count = std::int64_t(weight.shape()[0]);
  TG_CHECK(!padding_idx || (*padding_idx >= -rows_count && *padding_idx < rows_count), "embedding: padding_idx ",
           padding_idx.value_or(0), " is outside [", -rows_count, ", ", rows_count, ")");
  if (padding_idx && *padding_idx < 0) *padding_idx += rows_count;  // from the end, as PyTorch's
  // Checked here, before index_select, so that the message names embedding and its table size.
  const std::int64_t* ids = indices.data<std::int64_t>();
  for (std::size_t k = 0, n = indices.numel(); k < n; ++k)
    TG_CHECK(ids[k] >= 0 && ids[k] < rows_count, "embedding: index ", ids[k], " is out of range for ", rows_count,
             " embeddings");
  const Tensor flat = reshape(indices, {-1});
  Tensor rows = index_select(weight, 0, flat);
  if (padding_idx) {
    // Padding rows take their values from a detached copy: the same numbers, no gradient.
    const Tensor keep = unsqueeze(ne(flat, double(*padding_idx)), 1);
    rows = where(keep, rows, index_select(weight.detach(), 0, flat));
  }
  std::vector<std::int64_t> shape(indices.shape().begin(), indices.shape().end());
  shape.push_back(std::int64_t(weight.shape()[1]));
  return reshape(rows, shape);
}

namespace {

// (*, C, H, W) as (B, C, H, W) dims, B the product of the leading ones (1 for 3-D input).
std::vector<std::int64_t> batched_chw(const char* op, const Tensor& a) {
  TG_CHECK(a.dim() >= 3, op, " expects input of at least 3 dims (*, C, H, W), got ", shape_str(a.shape()));
  const Shape& s = a.shape();
  const std::size_t r = s.size();
  std::int64_t batch = 1;
  for (std::size_t d = 0; d + 3 < r; ++d) batch *= std::int64_t(s[d]);
  return {batch, std::int64_t(s[r - 3]), std::int64_t(s[r - 2]), std::int64_t(s[r - 1])};
}

// `a`'s leading dims followed by c, h, w.
Shape with_leading(const Tensor& a, std::size_t c, std::size_t h, std::size_t w) {
  Shape shape(a.shape().begin(), a.shape().end() - 3);
  for (std::size_t d : {c, h, w}) shape.push_back(d);
  return shape;
}

// Between the channel layout (planes, r, r, h, w) and the shuffled one (planes, h, r, w, r):
// Up reads the first and writes the second, else the reverse. Each shuffled row (y, i) of w·r
// values interleaves the r channel rows (i, j) at y, a row at a time with r known to the compiler
// up to 4 (the interleaving vectorises); parallel over (plane, y). (As reshape, permute, reshape
// the inner 14 × 2 transposes went value by value: `PixelShuffle` 2x on (64, 128, 14, 14), forward
// and backward, 3.5 ms at one thread.)
template <class T, bool Up, std::size_t R>
void shuffle_rows(const T* src, T* dst, std::size_t planes, std::size_t h, std::size_t w, std::size_t r_runtime) {
  const std::size_t r = R ? R : r_runtime, plane = r * r * h * w;
  parallel::for_range(planes * h, std::max<std::size_t>(1, parallel::kGrain / (r * r * w)), [&](std::size_t first,
                                                                                                std::size_t last) {
    for (std::size_t t = first; t < last; ++t) {
      const std::size_t p = t / h, y = t % h;
      for (std::size_t i = 0; i < r; ++i) {
        const std::size_t wide = p * plane + (y * r + i) * w * r;
        for (std::size_t j = 0; j < r; ++j) {
          const std::size_t narrow = p * plane + ((i * r + j) * h + y) * w;
          if constexpr (Up)
            for (std::size_t x = 0; x < w; ++x) dst[wide + x * r + j] = src[narrow + x];
          else
            for (std::size_t x = 0; x < w; ++x) dst[narrow + x] = src[wide + x * r + j];
        }
      }
    }
  });
}

template <bool Up>
Tensor shuffle(const char* op, const Tensor& a, std::size_t planes, std::size_t h, std::size_t w, std::size_t r,
               const Shape& out_shape) {
  Tensor out = dispatch_all(a.dtype(), [&]<class T>() {
    xt::xarray<T> y = xt::xarray<T>::from_shape(out_shape);
    const T* x = a.data<T>();
    if (!kernels::with_known_size<1, 4>(r, [&]<std::size_t R>() { shuffle_rows<T, Up, R>(x, y.data(), planes, h, w, r); }))
      shuffle_rows<T, Up, 0>(x, y.data(), planes, h, w, r);
    return make_tensor<T>(std::move(y));
  });
  return record(op, out, {a}, [planes, h, w, r, in_shape = a.shape()](const Tensor& grad) -> Grads {
    return {shuffle<!Up>(Up ? "pixel_shuffle" : "pixel_unshuffle", grad, planes, h, w, r, in_shape)};
  });
}

}  // namespace

// out[c, h·r + i, w·r + j] = in[c·r² + i·r + j, h, w].
Tensor pixel_shuffle(const Tensor& a, std::int64_t upscale_factor) {
  const std::vector<std::int64_t> d = batched_chw("pixel_shuffle", a);
  const std::int64_t b = d[0], c = d[1], h = d[2], w = d[3];
  const std::int64_t r = upscale_factor;
  TG_CHECK(r > 0, "pixel_shuffle expects a positive upscale_factor, but got ", r);
  TG_CHECK(c % (r * r) == 0, "pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of "
           "upscale_factor, but input.size(-3)=", c, " is not divisible by ", r * r);
  return shuffle<true>("pixel_shuffle", a, std::size_t(b * c / (r * r)), std::size_t(h), std::size_t(w),
                       std::size_t(r), with_leading(a, std::size_t(c / (r * r)), std::size_t(h * r), std::size_t(w * r)));
}

// The inverse: out[c·r² + i·r + j, h, w] = in[c, h·r + i, w·r + j].
Tensor pixel_unshuffle(const Tensor& a, std::int64_t downscale_factor) {
  const std::vector<std::int64_t> d = batched_chw("pixel_unshuffle", a);
  const std::int64_t b = d[0], c = d[1], h = d[2], w = d[3];
  const std::int64_t r = downscale_factor;
  TG_CHECK(r > 0, "pixel_unshuffle expects a positive downscale_factor, but got ", r);
  TG_CHECK(h % r == 0, "pixel_unshuffle expects height to be divisible by downscale_factor, but input.size(-2)=", h,
           " is not divisible by ", r);
  TG_CHECK(w % r == 0, "pixel_unshuffle expects width to be divisible by downscale_factor, but input.size(-1)=", w,
           " is not divisible by ", r);
  return shuffle<false>("pixel_unshuffle", a, std::size_t(b * c), std::size_t(h / r), std::size_t(w / r),
                        std::size_t(r), with_leading(a, std::size_t(c * r * r), std::size_t(h / r), std::size_t(w / r)));
}

}  // namespace tg
