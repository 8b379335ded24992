// Internal loop helpers shared by the op files: elementwise maps, broadcasting zips and the
// (outer, reduced, inner) view of a reduction.
//
// An elementwise kernel is a lambda over xsimd batches: [](auto x) { return xsimd::exp(x); }, or
// with two inputs [](auto x, auto y) { return x * y; }. The loops below run it a batch at a time,
// the last partial batch too (through a padded copy), so every element goes through the same code
// whatever the chunk a thread gets: results are bitwise identical for any thread count. Only the
// batch form of a lambda is compiled, which keeps the op files quick to build.
#pragma once

#include "../xtensor.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>

#include <xtensor/xadapt.hpp>
#include <xtensor/xnoalias.hpp>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "../parallel.hpp"
#include "../tensor.hpp"

namespace tg::kernels {

#if defined(__x86_64__)
// The first `count` of 16 lanes (all of them from 16 on): the mask of a partial AVX-512 load or
// store. (Compiled for AVX-512 whatever the file's flags; callers run it only where the CPU has it.)
__attribute__((target("avx512f"))) inline __mmask16 first_lanes16(std::size_t count) {
  return count >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << count) - 1u);
}

// The lanes of p under `lanes` (zero elsewhere; nothing read there), as a plain load when that is
// all of them. On Zen 4 a stream of masked loads alone runs at half the memory's speed (16 lanes
// of 64 MB: 17-18 GB/s masked, 32-35 plain, one core; it seems not to train the prefetchers):
// `MaxPool2d(2)` on (128, 32, 28, 28), all its loads masked, took 2.4 ms, with plain ones 1.4.
__attribute__((target("avx512f"), always_inline)) inline __m512 load16(__mmask16 lanes, const float* p) {
  return lanes == __mmask16(0xFFFF) ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(lanes, p);
}
#endif

// e^x of a batch (or of a number). float on AVX-512: k = round(x·log2 e), r = x - k·ln 2 in two
// steps (Cody-Waite: ln 2 as 0.693359375, exact in float, plus a small correction), e^r by the
// degree-7 polynomial of Cephes' expf (|r| <= 0.35), times 2^k by vscalefps, which rounds a result
// below 2^-126 once into the subnormals and overflows to inf exactly where e^x leaves float's range.
// x is clamped to 89 first (e^89 rounds to inf), and below -104 the result is 0 (-inf gives 0, NaN
// stays NaN). 1.01 ulp from exp in double over every 7th float of [-120, 120]. xsimd::exp gives 0 below
// -88.38 and inf above 88.38, where e^x is still a float (e^88.7 = 3.3e38, e^-100 = 3.8e-44, as
// PyTorch gives), and took 15% longer. double, and builds without AVX-512, use xsimd::exp, which
// has the same early ends (inf above 88.38 and 709.4, 0 below -87.34 and -708.4, where e^x is a
// subnormal: e^-720 = 2.0e-313): lanes beyond 87 (float) and 708 (double) take e^(x/2)², x/2 exact.
template <class B>
B exp_lanes(const B& x) {
  if constexpr (std::is_arithmetic_v<B>) {
    return std::exp(x);
  } else {
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<typename B::value_type, float> && B::size == 16) {
      // Lanes below -104 (-inf among them: a masked logit, a row tail padded with -inf) come out 0
      // by a mask, computed as e^0: e^-104 rounds to 0 anyway, and vscalefps with a result below
      // 2^-126 takes a microcode assist, about 300 cycles an instruction here (softmax over
      // 100 x 100, whose rows end in a padded batch, took 13.9 us, against 2.5 for 64 x 64). min(c,
      // x) returns x when it is NaN (the second operand), and NaN is not below -104.
      const __mmask16 zero = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-104.0f), _CMP_LT_OQ);
      const __m512 v = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_maskz_mov_ps(__mmask16(~zero), x));
      const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(v, _mm512_set1_ps(1.44269504088896341f)),
                                            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), v);
      r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
      constexpr float c[] = {5.0000001201e-1f, 1.6666665459e-1f, 4.1665795894e-2f,
                             8.3334519073e-3f, 1.3981999507e-3f, 1.9875691500e-4f};
      __m512 p = _mm512_set1_ps(c[5]);
      for (int i = 4; i >= 0; --i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c[i]));
      p = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));  // 1 + r + r²·P(r)
      return B(_mm512_maskz_scalef_ps(__mmask16(~zero), p, k));
    }
#endif
    using T = typename B::value_type;
    const B y = xsimd::exp(x);
    const auto far = xsimd::abs(x) > B(std::is_same_v<T, float> ? T(87) : T(708));  // (NaN is not)
    if (!xsimd::any(far)) return y;
    const B half = xsimd::exp(x * B(T(0.5)));
    return xsimd::select(far, half * half, y);
  }
}

// Outputs of at least this many bytes are written with streaming (non-temporal) stores: a normal
// store first reads its cache line (write-allocate), so writing y costs as much memory traffic as
// reading x; a streaming store skips that read. Only for outputs too large to stay in a 32 MB L3
// for the next op anyway: one read of x and g and a write of dx over 16 MB each took 0.76 ms with
// normal stores and 0.57 with streaming ones on this machine.
inline constexpr std::size_t kStreamBytes = 8 << 20;

// dst[0, n) = src[0, n), the aligned middle with streaming stores (x86 with SSE2 and up: the
// widest the build targets; elsewhere a plain copy). A task that streams calls stream_fence()
// before it ends, so its values are visible to other threads once it completes (streaming stores
// are not ordered with the others; a fence per copy stalled bn3d's 2 KB runs: 2.45 → 3.9 ms).
template <class T>
void stream_copy(const T* src, std::size_t n, T* dst) {
#if defined(__AVX512F__)
  constexpr std::size_t bytes = 64;
#elif defined(__AVX__)
  constexpr std::size_t bytes = 32;
#elif defined(__SSE2__)
  constexpr std::size_t bytes = 16;
#else
  constexpr std::size_t bytes = 0;
#endif
  if constexpr (bytes == 0 || !(std::is_same_v<T, float> || std::is_same_v<T, double>)) {
    std::copy(src, src + n, dst);
  } else {
    constexpr std::size_t width = bytes / sizeof(T);
    std::size_t head = (bytes - reinterpret_cast<std::uintptr_t>(dst) % bytes) % bytes / sizeof(T);
    if (reinterpret_cast<std::uintptr_t>(dst) % sizeof(T) != 0) head = n;  // (never: T-aligned storage)
    head = std::min(head, n);
    std::copy(src, src + head, dst);
    std::size_t i = head;
    for (; i + width <= n; i += width) {
#if defined(__AVX512F__)
      if constexpr (std::is_same_v<T, float>) _mm512_stream_ps(dst + i, _mm512_loadu_ps(src + i));
      else _mm512_stream_pd(dst + i, _mm512_loadu_pd(src + i));
#elif defined(__AVX__)
      if constexpr (std::is_same_v<T, float>) _mm256_stream_ps(dst + i, _mm256_loadu_ps(src + i));
      else _mm256_stream_pd(dst + i, _mm256_loadu_pd(src + i));
#elif defined(__SSE2__)
      if constexpr (std::is_same_v<T, float>) _mm_stream_ps(dst + i, _mm_loadu_ps(src + i));
      else _mm_stream_pd(dst + i, _mm_loadu_pd(src + i));
#endif
    }
    std::copy(src + i, src + n, dst + i);
  }
}

inline void stream_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// A 1-D xtensor view of n values at `data`, no ownership.
template <class T>
auto span(T* data, std::size_t n) {
  return xt::adapt(data, n, xt::no_ownership(), std::array<std::size_t, 1>{n});
}

template <class T>
using Batch = xsimd::batch<T>;

// Before a loop whose buffers never overlap (an optimizer's parameter, gradient and state; a
// convolution's transforms): without it GCC gives up on the alias checks of loops with this many
// streams and leaves them scalar. Nothing under clang (the fuzzing build), whose counterpart turns
// a vectorisation it cannot do into a -Werror failure.
#if defined(__clang__)
#define TG_INDEPENDENT_ITERATIONS
#else
#define TG_INDEPENDENT_ITERATIONS _Pragma("GCC ivdep")
#endif

// The first n (< width) values at p in a batch, the other lanes set to `pad`; and the reverse.
// With AVX-512, float and double take one masked load or store (lanes past n are never touched);
// otherwise the values go through a buffer on the stack, whose bytewise copy then stalls the
// vector load that reads it (store-to-load forwarding fails): the flat col2im of
// `Conv1d_stride2`, adding runs of 62 values, spent 40% of its time on those tails.
template <class T>
Batch<T> load_partial(const T* p, std::size_t n, T pad) {
#if defined(__AVX512F__)
  if constexpr (Batch<T>::size == 16 && std::is_same_v<T, float>)
    return Batch<T>(_mm512_mask_loadu_ps(_mm512_set1_ps(pad), first_lanes16(n), p));
  if constexpr (Batch<T>::size == 8 && std::is_same_v<T, double>)
    return Batch<T>(_mm512_mask_loadu_pd(_mm512_set1_pd(pad), __mmask8(first_lanes16(n)), p));
#endif
  alignas(64) std::array<T, Batch<T>::size> buffer;
  buffer.fill(pad);
  std::copy(p, p + n, buffer.begin());
  return Batch<T>::load_aligned(buffer.data());
}
// The lanes below n of a batch of T, as a mask (n <= Batch<T>::size).
template <class T>
auto first_lanes(std::size_t n) {
  alignas(64) static constexpr auto lane = [] {
    std::array<T, Batch<T>::size> numbers{};
    for (std::size_t i = 0; i < numbers.size(); ++i) numbers[i] = T(i);
    return numbers;
  }();
  return Batch<T>::load_aligned(lane.data()) < Batch<T>(T(n));
}

// A batch's lanes in double: its first Batch<double>::size lanes, then the rest (a float batch
// holds two doubles' worth; a double batch is itself, then zeros).
template <class T>
std::array<Batch<double>, 2> widen(const Batch<T>& b) {
  if constexpr (std::is_same_v<T, double>) {
    return {b, Batch<double>(0.0)};
  } else {
#if defined(__AVX512F__)
    // Two conversions in registers: through the stack, GCC left the function out of line (a call
    // per batch, 19% of LayerNorm's backward).
    if constexpr (Batch<T>::size == 16) {
      const __m512 v = b;
      const __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
      return {Batch<double>(_mm512_cvtps_pd(_mm512_castps512_ps256(v))), Batch<double>(_mm512_cvtps_pd(high))};
    }
#endif
    static_assert(Batch<T>::size == 2 * Batch<double>::size);
    alignas(64) std::array<T, Batch<T>::size> lanes;
    b.store_aligned(lanes.data());
    return {Batch<double>::load_aligned(lanes.data()), Batch<double>::load_aligned(lanes.data() + Batch<double>::size)};
  }
}

// Batch<P>::size values at p as a batch of P. Float to double by one vcvtps2pd from memory where
// AVX-512 is compiled in: xsimd's converting load, left to GCC's tuning for Intel cores (256-bit
// vectors preferred), went through two 32-byte stores and a 64-byte reload, a failed
// store-forward per batch (89% of lane_sum's samples, every float32 sum at half speed).
template <class P, class T>
Batch<P> load_as(const T* p) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<P, double> && std::is_same_v<T, float> && Batch<P>::size == 8)
    return Batch<P>(_mm512_cvtps_pd(_mm256_loadu_ps(p)));
#endif
  return Batch<P>::load_unaligned(p);
}

// The first n values at p as a batch of P (converted as load_as does), zeros in the other lanes;
// n < Batch<P>::size.
template <class P, class T>
Batch<P> load_partial_as(const T* p, std::size_t n) {
  if constexpr (std::is_same_v<P, T>) {
    return load_partial(p, n, T(0));
  } else {
#if defined(__AVX512F__) && defined(__AVX512VL__)
    if constexpr (std::is_same_v<P, double> && std::is_same_v<T, float> && Batch<P>::size == 8)
      return Batch<P>(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(__mmask8(first_lanes16(n)), p)));
#endif
    alignas(64) std::array<P, Batch<P>::size> values{};
    for (std::size_t h = 0; h < n; ++h) values[h] = static_cast<P>(p[h]);
    return Batch<P>::load_aligned(values.data());
  }
}
template <class T>
void store_partial(const Batch<T>& b, T* p, std::size_t n) {
#if defined(__AVX512F__)
  if constexpr (Batch<T>::size == 16 && std::is_same_v<T, float>) {
    _mm512_mask_storeu_ps(p, first_lanes16(n), b);
    return;
  }
  if constexpr (Batch<T>::size == 8 && std::is_same_v<T, double>) {
    _mm512_mask_storeu_pd(p, __mmask8(first_lanes16(n)), b);
    return;
  }
#endif
  alignas(64) std::array<T, Batch<T>::size> buffer;
  b.store_aligned(buffer.data());
  std::copy(buffer.begin(), buffer.begin() + n, p);
}

// out[i] = fn(in[i]...) for i < n, a batch at a time; the inputs are pointers of one type T.
template <class T, class Fn, class... In>
void apply(std::size_t n, T* out, Fn&& fn, const In*... in) {
  constexpr std::size_t width = Batch<T>::size;
  // fn is called in one place, the tail's partial batch too (padded with ones: harmless for every
  // kernel, no division by zero, log(1) = 0), so that GCC inlines it however large it is: with a
  // second call for the tail it left xsimd's cos out of line in sin's backward (1.3x slower).
  for (std::size_t i = 0; i < n; i += width) {
    const bool whole = i + width <= n;
    const auto result = fn((whole ? Batch<T>::load_unaligned(in + i) : load_partial(in + i, n - i, T(1)))...);
    if (whole)
      result.store_unaligned(out + i);
    else
      store_partial(Batch<T>(result), out + i, n - i);
  }
}

// The same with two outputs: fn returns a pair of batches, (out0[i], out1[i]) = fn(in[i]...), for
// a kernel whose second result shares the work of the first (a value and its derivative).
template <class T, class Fn, class... In>
void apply_pair(std::size_t n, T* out0, T* out1, Fn&& fn, const In*... in) {
  constexpr std::size_t width = Batch<T>::size;
  for (std::size_t i = 0; i < n; i += width) {  // (one call of fn, the tail padded with ones: as apply)
    const bool whole = i + width <= n;
    const auto [first, second] = fn((whole ? Batch<T>::load_unaligned(in + i) : load_partial(in + i, n - i, T(1)))...);
    if (whole) {
      first.store_unaligned(out0 + i);
      second.store_unaligned(out1 + i);
    } else {
      store_partial(Batch<T>(first), out0 + i, n - i);
      store_partial(Batch<T>(second), out1 + i, n - i);
    }
  }
}

// The lanes of a batch folded in lane order (fixed, so deterministic).
template <class T, class Fold>
T fold_lanes(const Batch<T>& b, Fold&& fold) {
  alignas(64) std::array<T, Batch<T>::size> lanes;
  b.store_aligned(lanes.data());
  T acc = lanes[0];
  for (std::size_t i = 1; i < lanes.size(); ++i) acc = fold(acc, lanes[i]);
  return acc;
}

// The sum of a batch's lanes by xsimd's horizontal add: a fixed tree of shuffles (the same bits
// every time), four additions deep for 16 lanes where fold_lanes chains fifteen. A short row's
// sum waits on it: softmax's backward over rows of 64 spent about 45 cycles a row in the chain.
template <class T>
T sum_lanes(const Batch<T>& b) {
  return xsimd::hadd(b);
}

// Σ over a row of fn(x[i]...), in batch lanes; the tail's padding lanes get `pad` values, which
// the caller chooses so that fn gives 0 there.
template <class T, class Fn, class... In>
T row_sum(std::size_t n, T pad, Fn&& fn, const In*... in) {
  constexpr std::size_t width = Batch<T>::size;
  Batch<T> total(T(0));
  std::size_t i = 0;
  for (; i + width <= n; i += width) total += fn(Batch<T>::load_unaligned(in + i)...);
  if (i < n) total += fn(load_partial(in + i, n - i, pad)...);
  return sum_lanes(total);
}

// Σ over i < n of a term, accumulated in double. The term is a generic lambda of a loader: at(p)
// gives the values at p + i as a batch of P, so one expression is the whole kernel:
//   lane_sum(n, [&](auto at) { auto d = at(x) - at(t); return d * d; })
// P = double (the default) converts float values on load: every term in double. P = float keeps
// the term in float (twice the lanes and no conversions); then each lane adds kFlushBatches terms
// in float before they join the double sums, so the error stays that of a few float roundings per
// term, whatever n is. Two batch accumulators, then the rest: a whole batch and the last values as
// one batch (zeros past the end, the terms there masked to 0: a term may be anything at zero), all
// combined in a fixed order (the lanes last, by xsimd's horizontal add, a tree instead of a chain
// of seven additions): accurate, deterministic for any thread count, and vectorised also for rows
// shorter than two batches (LayerNorm over 16 values had gone to a scalar loop).
template <class P = double, class Term>
double lane_sum(std::size_t n, Term&& term) {
  using B = Batch<P>;
  using D = Batch<double>;
  constexpr std::size_t width = B::size, kFlushBatches = 4;
  D first(0.0), second(0.0);
  std::size_t i = 0;
  auto at_batch = [&i](std::size_t offset) {
    return [j = i + offset](const auto* p) { return load_as<P>(p + j); };
  };
  // first and second += the lanes of a float sum, widened to double in halves.
  auto widen_add = [&](const B& sum) {
    const auto halves = widen(sum);
    first += halves[0];
    second += halves[1];
  };
  if constexpr (std::is_same_v<P, double>) {
    for (; i + 2 * width <= n; i += 2 * width) {
      first += term(at_batch(0));
      second += term(at_batch(width));
    }
  } else {
    while (i + 2 * width <= n) {
      B part_a(P(0)), part_b(P(0));
      for (std::size_t k = 0; k < kFlushBatches && i + 2 * width <= n; ++k, i += 2 * width) {
        part_a += term(at_batch(0));
        part_b += term(at_batch(width));
      }
      widen_add(part_a + part_b);
    }
  }
  if (i < n) {
    B rest(P(0));
    if (i + width <= n) {
      rest += term(at_batch(0));
      i += width;
    }
    if (i < n) {
      const std::size_t left = n - i;
      const auto last = term([j = i, left](const auto* p) { return load_partial_as<P>(p + j, left); });
      rest += xsimd::select(first_lanes<P>(left), B(last), B(P(0)));
    }
    widen_add(rest);
  }
  return sum_lanes(first + second);  // a fixed tree of shuffles: the same bits every time
}

// The largest value of a row (-inf for an empty one).
template <class T>
T row_max(const T* x, std::size_t n) {
  constexpr std::size_t width = Batch<T>::size;
  const T lowest = -std::numeric_limits<T>::infinity();
  Batch<T> largest(lowest);
  std::size_t i = 0;
  for (; i + width <= n; i += width) largest = xsimd::max(largest, Batch<T>::load_unaligned(x + i));
  if (i < n) largest = xsimd::max(largest, load_partial(x + i, n - i, lowest));
  // The lanes' largest by halves (four steps deep for 16 lanes, not a chain of fifteen). max is
  // exact, so the order never changes it for a row without NaN; a row with a NaN comes out all NaN
  // from each caller (softmax, log_softmax, logsumexp, cross_entropy) whatever its largest is.
#if defined(__AVX512F__)
  // In registers, by shuffles: through the stack, the halving loop was 12% of softmax over 64 × 64.
  if constexpr (std::is_same_v<T, float> && width == 16) return _mm512_reduce_max_ps(largest);
  if constexpr (std::is_same_v<T, double> && width == 8) return _mm512_reduce_max_pd(largest);
#endif
  alignas(64) std::array<T, width> lanes;
  largest.store_aligned(lanes.data());
  for (std::size_t half = width / 2; half > 0; half /= 2)
    for (std::size_t q = 0; q < half; ++q) lanes[q] = std::max(lanes[q], lanes[q + half]);
  return lanes[0];
}

// Row kernels (softmax and its kin) take their rows a block at a time: at most kRowBlock rows and
// about 4 KB, so the block stays in L1 from one phase to the next, and each phase (every row's
// max, then every row's exponentials and their sum, then the caller's map) runs over the whole
// block. The rows of a phase are independent, so the core overlaps one row's chain of latencies
// (max → exp → sum → 1/sum) with the next row's; a row at a time, 64-value rows stalled on it
// (softmax's forward over 64 × 64: 2.7 → 2.1 us). Blocks of 16 KB cost 1024-value rows 20%
// (log_softmax/1024/1 0.65-0.67 ms at 4 KB, 0.79-0.82 at 16: a block's input, exponentials and
// output no longer fit L1 together). Every row's result is the same whatever the block, so the
// bits do not depend on the thread count.
inline constexpr std::size_t kRowBlock = 64, kRowBlockBytes = 4 << 10;

// fn(row, rows) for each block of rows within [first, last), rows of n values of T.
template <class T, class Fn>
void for_row_blocks(std::size_t first, std::size_t last, std::size_t n, Fn&& fn) {
  const std::size_t block = std::clamp<std::size_t>(kRowBlockBytes / std::max<std::size_t>(1, n * sizeof(T)), 1,
                                                    kRowBlock);
  for (std::size_t row = first; row < last; row += block) fn(row, std::min(block, last - row));
}

// The most values a block of for_row_blocks holds (rows of n values of T): a scratch array that
// size takes any block's exponentials.
template <class T>
constexpr std::size_t row_block_values(std::size_t n) {
  return std::max(kRowBlockBytes / sizeof(T), n);
}

// Each row's max (the shift of its exponentials) and the sum of its exponentials.
template <class T>
struct RowExps {
  std::array<T, kRowBlock> max, sum;
};

// e^(x - max) of a block of contiguous rows (rows <= kRowBlock), once per value, stored in out,
// with each row's max and sum, for a caller that also wants log-probabilities, (x - max) - log
// sum, or that divides later (cross_entropy's backward). A row of all -inf subtracts 0 instead,
// which gives NaN everywhere (0/0), and a row with a +inf gives NaN everywhere (inf - inf), as
// PyTorch's softmax, log_softmax and cross_entropy. The sum adds the stored values a batch at a time
// (the tail's padding lanes are e^-inf = 0).
template <class T>
void exp_rows(const T* in, T* out, std::size_t n, std::size_t rows, RowExps<T>& exps) {
  using B = Batch<T>;
  constexpr std::size_t width = B::size;
  const T lowest = -std::numeric_limits<T>::infinity();
  if (n > 0 && n < width) {
    // Rows shorter than a batch: the block's values are one run, exponentiated a whole batch at a
    // time against a run of their rows' shifts; maxima and sums one row at a time in the order the
    // lanes would fold them (the same bits as below). Row by row, a batch per row of 3 values
    // computed 16 exponentials for 3 and folded 16 lanes twice.
    alignas(64) std::array<T, kRowBlock * width> shift;
    for (std::size_t r = 0; r < rows; ++r) {
      const T* x = in + r * n;
      T largest = x[0];
      for (std::size_t i = 1; i < n; ++i) largest = largest < x[i] ? x[i] : largest;
      exps.max[r] = largest == lowest ? T(0) : largest;
      std::fill_n(shift.data() + r * n, n, exps.max[r]);
    }
    apply(rows * n, out, [](B x, B s) { return exp_lanes(x - s); }, in, shift.data());
    for (std::size_t r = 0; r < rows; ++r) {
      const T* e = out + r * n;
      T total = e[0];
      for (std::size_t i = 1; i < n; ++i) total += e[i];
      exps.sum[r] = total;
    }
    return;
  }
  for (std::size_t r = 0; r < rows; ++r) {
    const T largest = row_max(in + r * n, n);
    exps.max[r] = largest == lowest ? T(0) : largest;
  }
  for (std::size_t r = 0; r < rows; ++r) {
    const T* x = in + r * n;
    T* e = out + r * n;
    const B shift(exps.max[r]);
    B total(T(0));
    std::size_t i = 0;
    for (; i + width <= n; i += width) {
      const B v = exp_lanes(B(B::load_unaligned(x + i) - shift));
      v.store_unaligned(e + i);
      total += v;
    }
    if (i < n) {
      const B v = exp_lanes(B(load_partial(x + i, n - i, lowest) - shift));
      store_partial(v, e + i, n - i);
      total += v;
    }
    exps.sum[r] = sum_lanes(total);
  }
}

// Softmax of a block of contiguous rows: exp_rows, then times 1/sum in place (a multiplication per
// value, as PyTorch's kernel, not a division: vdivps was 18% of cross_entropy/64's time).
template <class T>
void softmax_rows(const T* in, T* out, std::size_t n, std::size_t rows) {
  using B = Batch<T>;
  RowExps<T> exps;
  exp_rows(in, out, n, rows, exps);
  for (std::size_t r = 0; r < rows; ++r) {
    const T inverse = T(1) / exps.sum[r];
    const T* e = out + r * n;
    apply(n, out + r * n, [inverse](B v) { return v * B(inverse); }, e);
  }
}

// The same, split over threads above the grain.
template <class T, class Fn, class... In>
void apply_parallel(std::size_t n, T* out, Fn&& fn, const In*... in) {
  parallel::for_range(n, parallel::kGrain, [&](std::size_t begin, std::size_t end) {
    apply(end - begin, out + begin, fn, (in + begin)...);
  });
}

template <class T, class Fn, class... In>
void apply_pair_parallel(std::size_t n, T* out0, T* out1, Fn&& fn, const In*... in) {
  parallel::for_range(n, parallel::kGrain, [&](std::size_t begin, std::size_t end) {
    apply_pair(end - begin, out0 + begin, out1 + begin, fn, (in + begin)...);
  });
}

// A kernel's read-only input: a shape and the values, taken from a tensor handle (input<T>(t)) or
// an array. Kernels never read a tensor's xt::xarray directly: a tensor and its reshapes share one
// array, whose own shape is that of whichever handle asked for it last.
template <class T>
class Input {
 public:
  Input(const Shape& shape, const T* data, std::size_t size) : shape_(&shape), data_(data), size_(size) {}
  Input(const xt::xarray<T>& array) : Input(array.shape(), array.data(), array.size()) {}  // NOLINT: implicit
  const Shape& shape() const { return *shape_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::size_t dimension() const { return shape_->size(); }

 private:
  const Shape* shape_;
  const T* data_;
  std::size_t size_;
};

template <class T>
Input<T> input(const Tensor& t) {
  return {t.shape(), t.data<T>(), t.numel()};
}

// A new array of `shape` with out[i] = fn(in[i]...) (inputs of that shape).
template <class T, class Fn, class... In>
xt::xarray<T> map_n(const Shape& shape, Fn&& fn, const Input<In>&... in) {
  xt::xarray<T> out = xt::xarray<T>::from_shape(shape);
  apply_parallel(out.size(), out.data(), fn, in.data()...);
  return out;
}

// A new array of `shape` holding zeros, written in parallel by vector stores: xt::zeros is one
// serial loop, and std::fill becomes memset, whose `rep stosb` on a few MB bypasses the cache (the
// values added into the zeros next came back from memory: `Embedding/1` 7% slower).
template <class T>
xt::xarray<T> zeros(const Shape& shape) {
  return map_n<T>(shape, [] { return Batch<T>(T(0)); });
}

template <class T, class Fn>
xt::xarray<T> map(const Input<T>& in, Fn&& fn) {
  return map_n<T>(in.shape(), fn, in);
}

template <class T, class Fn>
xt::xarray<T> map2(const Input<T>& a, const Input<T>& b, Fn&& fn) {
  return map_n<T>(a.shape(), fn, a, b);
}

// NumPy broadcasting of two shapes; throws "<op>: shapes [..] and [..] cannot be broadcast".
Shape broadcast_shape(const char* op, const Shape& a, const Shape& b);

// The output of a broadcast seen as rows: its dims of size 1 dropped and neighbours merged where
// both operands' strides allow it, the last merged dim being the row. Along the row each operand
// either walks its values (stride 1) or repeats one value; `stride[k]` is operand k's stride for
// each outer dim, 0 where it is broadcast. (N, C) op (C) is rows of C, (N, C, H, W) op (C, 1, 1)
// rows of H·W against one value each, (n, 1) op (1, m) n rows of m against one value each.
struct BroadcastRows {
  SmallVector<std::size_t> sizes;  // the outer dims, outermost first
  SmallVector<std::size_t> stride[2];
  std::size_t row = 1;
  bool walks[2] = {true, true};
  std::size_t count() const {
    std::size_t rows = 1;
    for (std::size_t s : sizes) rows *= s;
    return rows;
  }
};
BroadcastRows broadcast_rows(const Shape& shape, const Shape& a, const Shape& b);

// fn(r, offset_a, offset_b) for every row r of `l`, with the operands' offsets of its first value,
// in parallel over rows. Each task finds its first row's index once; then it walks the innermost
// outer dim in a plain loop and carries into the others like an odometer (a division per dim and
// row had been most of an expand's time).
template <class Fn>
void for_broadcast_rows(const BroadcastRows& l, Fn&& fn) {
  const std::size_t rank = l.sizes.size();
  if (rank == 0) {
    fn(std::size_t(0), std::size_t(0), std::size_t(0));
    return;
  }
  const std::size_t inner = l.sizes[rank - 1], step_a = l.stride[0][rank - 1], step_b = l.stride[1][rank - 1];
  parallel::for_range(l.count(), std::max<std::size_t>(1, parallel::kGrain / l.row),
                      [&l, &fn, rank, inner, step_a, step_b](std::size_t first, std::size_t last) {
                        std::decay_t<Fn> row_fn = fn;  // a local copy: its captures stay in registers across calls
                        // base: the offsets where the innermost outer dim's index is 0.
                        SmallVector<std::size_t> index(rank);
                        std::size_t base[2] = {0, 0};
                        for (std::size_t d = rank, rest = first; d-- > 0; rest /= l.sizes[d]) {
                          index[d] = rest % l.sizes[d];
                          if (d + 1 < rank)
                            for (int k = 0; k < 2; ++k) base[k] += index[d] * l.stride[k][d];
                        }
                        std::size_t j = index[rank - 1];
                        for (std::size_t r = first; r < last; j = 0) {
                          const std::size_t stop = std::min(last, r + (inner - j));
                          for (std::size_t a = base[0] + j * step_a, b = base[1] + j * step_b; r < stop;
                               ++r, a += step_a, b += step_b)
                            row_fn(r, a, b);
                          for (std::size_t d = rank - 1; d-- > 0;) {
                            for (int k = 0; k < 2; ++k) base[k] += l.stride[k][d];
                            if (++index[d] < l.sizes[d]) break;
                            for (int k = 0; k < 2; ++k) base[k] -= l.stride[k][d] * l.sizes[d];
                            index[d] = 0;
                          }
                        }
                      });
}

// `in` repeated to `shape` (which it broadcasts to): a plain strided copy, parallel over rows.
template <class T>
xt::xarray<T> broadcast_to(const Input<T>& in, const Shape& shape);

// dst[j·dst_stride + i] = src[i·src_stride + j] for i < rows, j < cols: a matrix transposed
// through registers (the permute op's tiles, the GEMM's transposed B): on AVX-512 float in 16×16
// blocks and double in 8×8 ones, the edges masked (the double version only moves bits: a pair of
// floats may pass as one double); on AVX float in 8×8 blocks and the edges value by value.
template <class T>
void transpose_matrix(const T* src, std::size_t rows, std::size_t cols, std::size_t src_stride, T* dst,
                      std::size_t dst_stride);

// out = fn(a, b) with NumPy broadcasting. Same shapes and a one-element side run in contiguous,
// parallel chunks; any other broadcast row by row (broadcast_rows), each row a contiguous map
// against the other side's row or its one value: neither side is ever copied to the output's shape.
template <class T, class Fn>
xt::xarray<T> zip(const char* op, const Input<T>& a, const Input<T>& b, Fn&& fn) {
  if (a.shape() == b.shape()) return map2(a, b, fn);
  const Shape shape = broadcast_shape(op, a.shape(), b.shape());
  if (std::find(shape.begin(), shape.end(), std::size_t(0)) != shape.end()) return xt::xarray<T>::from_shape(shape);
  if (b.size() == 1 && shape == a.shape()) {
    const Batch<T> y(b.data()[0]);
    return map(a, [&](const Batch<T>& x) { return fn(x, y); });
  }
  if (a.size() == 1 && shape == b.shape()) {
    const Batch<T> x(a.data()[0]);
    return map(b, [&](const Batch<T>& y) { return fn(x, y); });
  }
  xt::xarray<T> out = xt::xarray<T>::from_shape(shape);
  const BroadcastRows l = broadcast_rows(shape, a.shape(), b.shape());
  // One loop per case (not a branch per row), so that each inlines its row's map; the pointers are
  // captured by value, so that the loop keeps them in registers across the calls.
  T* const dst = out.data();
  const T* const x = a.data();
  const T* const y = b.data();
  const std::size_t row = l.row;
  if (l.walks[0] && l.walks[1]) {
    for_broadcast_rows(l, [dst, x, y, row, &fn](std::size_t r, std::size_t offset_a, std::size_t offset_b) {
      apply(row, dst + r * row, fn, x + offset_a, y + offset_b);
    });
  } else if (l.walks[0]) {
    for_broadcast_rows(l, [dst, x, y, row, &fn](std::size_t r, std::size_t offset_a, std::size_t offset_b) {
      const Batch<T> value(y[offset_b]);
      apply(row, dst + r * row, [&](const Batch<T>& v) { return fn(v, value); }, x + offset_a);
    });
  } else {
    for_broadcast_rows(l, [dst, x, y, row, &fn](std::size_t r, std::size_t offset_a, std::size_t offset_b) {
      const Batch<T> value(x[offset_a]);
      apply(row, dst + r * row, [&](const Batch<T>& v) { return fn(value, v); }, y + offset_b);
    });
  }
  return out;
}

// For n in [Lo, Hi], calls fn.template operator()<N>() with N = n, a size known to the compiler
// (loops over a few columns, short rows or tiny matrices unroll: a runtime trip count of 3 cost
// more than the work), and returns true, or fn's own result when it returns a bool (so calls
// nest, one per size). For any other n it calls nothing and returns false.
template <std::size_t Lo, std::size_t Hi, class Fn>
bool with_known_size(std::size_t n, Fn&& fn) {
  if constexpr (Lo <= Hi) {
    if (n != Lo) return with_known_size<Lo + 1, Hi>(n, std::forward<Fn>(fn));
    if constexpr (std::is_void_v<decltype(fn.template operator()<Lo>())>) {
      fn.template operator()<Lo>();
      return true;
    } else {
      return fn.template operator()<Lo>();
    }
  }
  return false;
}

// A reduction over dim d of a row-major shape sees it as (outer, reduced, inner).
struct ReduceLayout {
  std::size_t outer = 1, reduced = 1, inner = 1;
};
ReduceLayout reduce_layout(const Shape& shape, std::size_t dim);

// Scratch: left uninitialised (every value is written before it is read).
template <class T>
using Scratch = xt::uvector<T, Allocator<T>>;

// A sum over items [0, count) into `total` (`size` values): the items cut into blocks of `block`
// (by sizes only), partial(first, last, out) writing each block's sums into its own array
// (uninitialised: the block's first item writes it; a single block's array is `total` itself),
// the blocks in parallel, then the arrays added in block order, in parallel over the values: the
// same bits for any thread count. (Summing them two at a time into a zeroed accumulator, as
// reduce_blocks does, zeroed every partial and passed over the accumulator once per block: 8% of
// `Conv2d_down_s2`, whose 16 partials are 295 KB each.) A convolution's weight gradient sums
// over samples this way, sum over dim 0 over rows.
template <class T, class Partial>
void sum_of_blocks(std::size_t count, std::size_t block, std::size_t size, T* total, Partial&& partial) {
  const std::size_t blocks = (count + block - 1) / block;
  if (blocks <= 1) {
    if (count == 0)
      std::fill(total, total + size, T(0));
    else
      partial(std::size_t{0}, count, total);
    return;
  }
  Scratch<T> parts(blocks * size);
  parallel::for_range(blocks, 1, [&](std::size_t first, std::size_t last) {
    for (std::size_t b = first; b < last; ++b)
      partial(b * block, std::min(count, (b + 1) * block), parts.data() + b * size);
  });
  constexpr std::size_t kChunk = 1024;  // values summed through L1 at a time
  parallel::for_range((size + kChunk - 1) / kChunk, std::max<std::size_t>(1, parallel::kGrain / (kChunk * blocks)),
                      [&](std::size_t first, std::size_t last) {
    for (std::size_t begin = first * kChunk; begin < std::min(size, last * kChunk); begin += kChunk) {
      const std::size_t n = std::min(kChunk, size - begin);
      T* out = total + begin;
      std::copy_n(parts.data() + begin, n, out);
      for (std::size_t b = 1; b < blocks; ++b)
        apply(n, out, [](auto a, auto c) { return a + c; }, static_cast<const T*>(out),
              static_cast<const T*>(parts.data() + b * size + begin));
    }
  });
}

// Column kernels: softmax and its kin over a dim with inner > 1 (softmax(x, 0) of a matrix, over
// the channels of (N, C, H, W); cross_entropy over (N, C, d1, ...)). One value of a column is
// `inner` values from the next, so the kernels run down the rows a slab of columns at a time, a
// SIMD batch across the columns, each pass while the slab is in L2 (up to 512 KB; over 1024 rows,
// slabs of 128 KB (32 columns) took 1.35 ms, 512 KB (128) 0.59, 1 MB (256) 0.56 at one thread but
// too few slabs for two). A column at a time read one value per cache line: softmax(x, 0) of
// 1024 × 1024 took 23.7 ms (libtorch 3.7). Up to 2048 columns, so that a short reduced dim takes
// whole rows, one contiguous block: log_softmax over the 8 of (128, 8, 1024), forward and
// backward, took 2.13 ms in slabs of 512 columns (runs of 2 KB, 4 KB apart, which the prefetcher
// meets cold) and 1.04 in slabs of 1024. Each column's sums run down its rows in order, so the
// bits depend on neither slab nor thread.
inline constexpr std::size_t kSlabBytes = 512 << 10, kSlabColumns = 2048;

// fn(o, c, columns) for every slab, in parallel: outer block o, its columns [c, c + columns), which
// start at o·reduced·inner + c.
template <class T, class Fn>
void for_column_slabs(const ReduceLayout& l, Fn&& fn) {
  if (l.outer == 0 || l.reduced == 0 || l.inner == 0) return;  // no values
  const std::size_t width = Batch<T>::size;
  const std::size_t fit = kSlabBytes / std::max<std::size_t>(1, l.reduced * sizeof(T)) / width * width;
  const std::size_t columns = std::min(std::clamp(fit, width, kSlabColumns), l.inner);
  const std::size_t per_outer = (l.inner + columns - 1) / columns;
  const std::size_t grain = std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(1, l.reduced * columns));
  parallel::for_range(l.outer * per_outer, grain, [&](std::size_t first, std::size_t last) {
    for (std::size_t slab = first; slab < last; ++slab) {
      const std::size_t o = slab / per_outer, c = slab % per_outer * columns;
      fn(o, c, std::min(columns, l.inner - c));
    }
  });
}

// m[k] = the max of column k < columns, down `reduced` rows `inner` apart from x (reduced >= 1):
// the shift of its exponentials. A column of all -inf shifts by 0 instead, which gives NaN
// everywhere, as the rows (exp_rows).
template <class T>
void column_max(const T* x, std::size_t reduced, std::size_t inner, std::size_t columns, T* m) {
  using B = Batch<T>;
  std::copy_n(x, columns, m);
  for (std::size_t r = 1; r < reduced; ++r)
    apply(columns, m, [](B a, B b) { return xsimd::max(a, b); }, static_cast<const T*>(m), x + r * inner);
  for (std::size_t k = 0; k < columns; ++k)
    if (m[k] == -std::numeric_limits<T>::infinity()) m[k] = 0;
}

// log_total[k] = log Σ_r e^(x - m[k]) down column k (m from column_max), the sum in row order:
// log_softmax's statistics, which cross_entropy over columns shares to have its bits.
template <class T>
void column_log_sums(const T* x, std::size_t reduced, std::size_t inner, std::size_t columns, const T* m, T* log_total) {
  using B = Batch<T>;
  std::fill_n(log_total, columns, T(0));
  for (std::size_t r = 0; r < reduced; ++r)
    apply(columns, log_total, [](B sum, B v, B shift) { return sum + exp_lanes(v - shift); },
          static_cast<const T*>(log_total), x + r * inner, m);
  apply(columns, log_total, [](B v) { return xsimd::log(v); }, static_cast<const T*>(log_total));
}

// A shape as the signed sizes that reshape and expand take.
inline std::vector<std::int64_t> as_signed(const Shape& shape) { return {shape.begin(), shape.end()}; }

// Gives a freshly computed, not yet recorded tensor a new shape of the same size.
inline void reshape_in_place(Tensor& fresh, const Shape& shape) {
  std::visit([&](auto& array) { array.reshape(shape); }, fresh.impl()->storage->values);
  fresh.impl()->shape = shape;
}

}  // namespace tg::kernels

namespace tg {

// The element type of the batches a kernel lambda receives.
template <class B>
using element_of = typename std::decay_t<B>::value_type;

// A double converted to the element type of batch x, so float math stays in float.
template <class B>
auto scalar_like(const B&, double value) {
  return static_cast<element_of<B>>(value);
}

// a where cond holds, else b; a and b may be batches or numbers (broadcast).
template <class Cond, class A, class B>
auto pick(const Cond& cond, const A& a, const B& b) {
  using T = typename Cond::batch_type::value_type;
  return xsimd::select(cond, kernels::Batch<T>(a), kernels::Batch<T>(b));
}

// PyTorch's sgn of real values: -1, 0 or 1, and 0 for NaN (xsimd::sign gives NaN there).
template <class B>
B sgn(const B& x) {
  using T = element_of<B>;
  return pick(x > T(0), T(1), pick(x < T(0), T(-1), T(0)));
}

// log(1 + e) for e in [0, 1] (e = exp(-|x|) in softplus and the logistic losses; NaN gives NaN).
// float: e + e²·R(e), R a degree-9 polynomial fitted to (log1p(e) - e) / e² on [0, 1], within
// 1.3 ulp of log1p in double (xsimd::log1p: 0.75), no division and no range reduction: 0.27 ms
// per million values against xsimd::log1p's 0.9, which for any argument takes two divisions. The
// fit (numpy 1.24, mpmath; the coefficients are the float32 roundings it prints for degree 9):
//   x = 0.5 - 0.5 cos(π (k + 1/2) / 4000), k < 4000; R(x) = (log1p(x) - x) / x², w = x² / log1p(x)
//   least squares of (V c - R)·w, V the Vandermonde matrix, reweighted 200 times by the error
//   (Lawson) towards minimax: truncation 8e-10 relative, 0.13 ulp after rounding c to float.
// double keeps xsimd::log1p (gradient checks need its accuracy more than its speed).
template <class B>
B log1p_unit(const B& e) {
  if constexpr (std::is_same_v<element_of<B>, float>) {
    constexpr float c[] = {-0.49999988079071045f, 0.33332690596580505f, -0.24988579750061035f,
                           0.19897931814193726f,  -0.16129335761070251f, 0.12467123568058014f,
                           -0.08307408541440964f, 0.041981376707553864f, -0.0136314881965518f,
                           0.002072949195280671f};
    B r(c[9]);
    for (int k = 8; k >= 0; --k) r = xsimd::fma(r, e, B(c[k]));
    return xsimd::fma(e * e, r, e);
  } else {
    return xsimd::log1p(e);
  }
}

// A floating-point Tensor computed by kernels::map on one input...
template <class Fn>
Tensor unary(const char* op, const Tensor& a, Fn&& fn) {
  return dispatch_floating(a.dtype(), op,
                           [&]<class T>() { return make_tensor<T>(kernels::map(kernels::input<T>(a), fn)); });
}

// ...or, for a backward's single fused pass, on several floating-point inputs of one shape and
// dtype (the incoming gradient and what the op saved): grad_in[i] = fn(grad[i], saved[i]...).
template <class Fn, class... More>
Tensor pointwise(const char* op, Fn&& fn, const Tensor& first, const More&... more) {
  TG_CHECK(((more.dtype() == first.dtype() && more.shape() == first.shape()) && ...), op,
           ": pointwise inputs must share dtype and shape, got ", dtype_name(first.dtype()), " ",
           shape_str(first.shape()), ((std::string(" and ") + dtype_name(more.dtype()) + " " + shape_str(more.shape())) + ...));
  return dispatch_floating(first.dtype(), op, [&]<class T>() {
    return make_tensor<T>(kernels::map_n<T>(first.shape(), fn, kernels::input<T>(first), kernels::input<T>(more)...));
  });
}

// ...or by kernels::zip on two inputs of one dtype, broadcast.
template <class Fn>
Tensor binary(const char* op, const Tensor& a, const Tensor& b, Fn&& fn) {
  TG_CHECK(a.dtype() == b.dtype(), op, ": expected both inputs to have one dtype, got ",
           dtype_name(a.dtype()), " ", shape_str(a.shape()), " and ", dtype_name(b.dtype()), " ",
           shape_str(b.shape()));
  return dispatch_floating(a.dtype(), op, [&]<class T>() {
    return make_tensor<T>(kernels::zip(op, kernels::input<T>(a), kernels::input<T>(b), fn));
  });
}

}  // namespace tg
