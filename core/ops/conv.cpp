// Convolution and pooling. conv2d is im2col + GEMM: for each sample and group, the input windows
// become the columns of a (C/g·kH·kW, Ho·Wo) matrix and one GEMM with the weight gives the output
// (a 1×1 kernel at stride 1 without padding multiplies the input itself: identity_columns). The
// columns are built by flat shifts, over the input's phases (the section below), and
// the float32 forward on AVX-512 lets the GEMM gather them itself (gathers_columns).
// Backward, per sample:  d(col) = Wᵀ·dY scattered back by col2im (dX),  dW += dY·colᵀ,  db = Σ dY.
// Where the forward gathers, dX skips d(col): at stride 1 it is the forward convolution of dY with
// the kernel turned (transposes_to_forward), strided or "valid" it is one gathered GEMM per input
// phase (input_grad_by_phase). Depthwise convolutions take a direct path (their section).
// Samples run in parallel for the forward and dX; dW and db sum samples in sample order, so the
// bits never depend on the thread count. 3×3 stride-1 convolutions with 8 channels or more (32 a
// group when grouped) take Winograd F(2×2, 3×3) instead, for the forward, dX and dW (its section
// below); with 8 to 16 output channels a group, or up to 64 from at most 64 input channels (a
// stride-1 3×3 from over 16: to at most 32), the forward and dW at strides 1 and 2 run directly at
// any dilation, 16 output channels to a register (a block of 16 lanes partly idle where the count
// is not a multiple of 16), and so does dX at stride 1 where its channels fit that (their
// section). 1-D forms are the 2-D ones over a height of 1, but for a weight gradient the direct
// kernels do not take: it sums tap by tap, from the input transposed (weight_grad_by_taps); and a
// kernel of 3 at stride 1 from 16 channels or more (32 a group when grouped) takes Winograd
// F(4, 3) along the rows for the forward, dX and dW (its section), where the direct kernels do not.
#include "core/ops/conv.hpp"
#include "core/xtensor.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "core/autograd.hpp"
#include "core/ops/kernels.hpp"
#include "core/ops/linalg_gemm.hpp"
#include "core/ops/shape.hpp"
#include "core/parallel.hpp"

namespace tg {

namespace {

using kernels::Scratch;
using kernels::sum_of_blocks;

// The geometry of one window op over (N, C, H, W).
struct Window {
  std::size_t n, c, h, w;          // input
  std::size_t kh, kw;              // kernel
  std::size_t sh, sw, ph, pw, dh, dw;
  std::size_t oh, ow;              // output
};

std::size_t out_size(const char* op, std::size_t in, std::int64_t kernel, std::int64_t stride, std::int64_t pad,
                     std::int64_t dilation, bool ceil_mode, const Shape& shape, std::int64_t extra_end = 0) {
  const std::int64_t span = dilation * (kernel - 1) + 1;
  const std::int64_t room = std::int64_t(in) + 2 * pad + extra_end - span;
  // PyTorch's pooling_output_shape: floor division, rounded up with ceil_mode, which then lets a
  // window overhang an input smaller than the kernel (room < 0).
  const std::int64_t numerator = room + (ceil_mode ? stride - 1 : 0);
  std::int64_t out = (numerator >= 0 ? numerator / stride : -((stride - 1 - numerator) / stride)) + 1;
  // PyTorch: with ceil_mode the last window must start inside the input or the left padding.
  if (ceil_mode && (out - 1) * stride >= std::int64_t(in) + pad) --out;
  TG_CHECK(out >= 1, op, ": the input ", shape_str(shape), " padded by ", pad, " is smaller than the kernel (",
           kernel, " with dilation ", dilation, ")");
  return std::size_t(out);
}

// The output columns x whose input column x·stride + offset falls inside [0, width): [first, last).
// With it the inner loops of im2col and col2im have no bounds checks and vectorise (stride 1).
struct ColumnRange {
  std::size_t first, last;
};
ColumnRange inside_columns(std::size_t out_width, std::size_t stride, std::ptrdiff_t offset, std::size_t width) {
  // x·stride + offset >= 0  and  x·stride + offset < width
  const std::ptrdiff_t s = std::ptrdiff_t(stride);
  const std::ptrdiff_t lo = offset >= 0 ? 0 : (-offset + s - 1) / s;
  const std::ptrdiff_t hi = std::ptrdiff_t(width) - offset <= 0 ? 0 : (std::ptrdiff_t(width) - offset + s - 1) / s;
  const auto first = std::size_t(std::min<std::ptrdiff_t>(lo, std::ptrdiff_t(out_width)));
  const auto last = std::size_t(std::clamp<std::ptrdiff_t>(hi, std::ptrdiff_t(first), std::ptrdiff_t(out_width)));
  return {first, last};
}

// ---- Columns by flat shifts -------------------------------------------------------------------
// With stride 1 and an output as wide as the input (the "same" convolutions: 3×3 with padding 1,
// ...), a kernel offset (i, j) moves the whole plane by one flat distance, di·W + dj, so the
// output rows that see the input read one contiguous run of it: im2col is one vectorised copy per
// channel and offset (col2im one vectorised add), and the columns that wrapped into the
// neighbouring row (|dj| of them per row, at one edge) are the padding and are zeroed.
//
// A strided convolution becomes one of these over the input's phases: with stride (sh, sw), input
// row y·sh + a is row y of phase a (a < sh), and a kernel offset t = i·dh - ph reads phase
// t mod sh moved by ⌊t / sh⌋ rows; the same for columns. The phases are split out once per sample
// (rows padded or cut to the output's width Wo), so every offset again reads a flat run, and the
// input gradient is merged back from the phases. (`Conv2d_stride2`, 3×3 at stride 2 on 28×28:
// the per-row strided copies of im2col and col2im took 35% of its time.) This holds when no
// offset reads a phase column at or past Wo that lies inside the input (cut columns are never
// read). Otherwise (a "valid" convolution, or any whose output is narrower than what its taps
// read) the phases are split by kernel column instead: phase (a, j) holds, for kernel column j,
// in[c][y·sh + a][x·sw + j·dw - pw] for x < Wo (zero outside the input), so a tap (i, j) reads
// phase (ti mod sh, j) moved by ⌊ti / sh⌋ whole rows, ti = i·dh - ph: kW copies of the input per
// row phase where im2col made kH·kW, and every offset reads a flat run again. (LeNet's
// Conv2d(6, 16, 5) on 14×14 went row by row, 10 values at a time: im2col and col2im were 55% of
// its step.)
struct FlatRun {  // one kernel offset's run (flat_run)
  std::size_t y0, y1, k0, k1;
  std::ptrdiff_t shift;
  ColumnRange inside;
};

// Kernel column j's input column offset j·dw - pw and the output columns whose input column lies
// inside the input: what a phase by column holds.
struct ColumnShift {
  std::ptrdiff_t offset;
  ColumnRange inside;
};

struct Phases {
  bool identity = false;   // stride 1 and Wo == W, or one row (one_row_phases): the input itself, no split
  bool by_column = false;  // phases (a, j) per kernel column j, not (a, b) per column phase b
  std::vector<ColumnShift> columns;  // by column: per kernel column j
  std::size_t count = 0;   // phases: sh·sw, or sh·kW by column
  std::size_t rows = 0, plane = 0;  // the rows of a phase plane (the most any phase has), rows·Wo
  std::vector<std::size_t> height, width;  // the real rows of each row phase, columns of each column phase
  struct Tap {
    std::size_t phase;  // a·sw + b, or a·kW + j by column
    FlatRun run;
  };
  std::vector<Tap> taps;  // per kernel offset (i, j), in the order of im2col's rows
  // Per tap, (Ho·Wo + 31) / 32 words: bit k of word k / 32 is set where output position k reads
  // the plane (k in [k0, k1), its column inside); im2col writes zeros at the others.
  std::vector<std::uint32_t> masks;
};

std::ptrdiff_t floor_div(std::ptrdiff_t a, std::ptrdiff_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// For a shift of (di, dj) in a plane of `rows` rows and Wo columns: the output rows [y0, y1) that
// read plane rows, the flat distance, and the flat range [k0, k1) of output positions whose plane
// position lies inside the plane (the wrapped columns at the two ends of the run are left out).
FlatRun flat_run(const Window& g, std::ptrdiff_t di, std::ptrdiff_t dj, std::size_t rows) {
  const std::ptrdiff_t h = std::ptrdiff_t(rows), oh = std::ptrdiff_t(g.oh), w = std::ptrdiff_t(g.ow);
  FlatRun r;
  r.y0 = std::size_t(std::clamp<std::ptrdiff_t>(-di, 0, oh));
  r.y1 = std::size_t(std::clamp<std::ptrdiff_t>(h - di, std::ptrdiff_t(r.y0), oh));
  r.shift = di * w + dj;
  r.inside = inside_columns(g.ow, 1, dj, g.ow);
  // (No row, or a shift of a whole row or more, |dj| >= Wo, leaves the range empty or all wrapped.)
  const std::ptrdiff_t start = std::ptrdiff_t(r.y0) * w, end = std::ptrdiff_t(r.y1) * w;
  r.k0 = std::size_t(std::clamp<std::ptrdiff_t>(start + std::max<std::ptrdiff_t>(0, -dj), start, end));
  r.k1 = std::size_t(std::clamp<std::ptrdiff_t>(end - std::max<std::ptrdiff_t>(0, dj), std::ptrdiff_t(r.k0), end));
  return r;
}

// Sets bits [from, to) of a bit array in 32-bit words.
void set_bits(std::uint32_t* words, std::size_t from, std::size_t to) {
  for (std::size_t k = from; k < to;) {
    const std::size_t bit = k % 32, count = std::min<std::size_t>(32 - bit, to - k);
    words[k / 32] |= (count == 32 ? ~std::uint32_t(0) : ((std::uint32_t(1) << count) - 1u)) << bit;
    k += count;
  }
}

// Phases::masks from the taps' runs: per tap, a run of bits per output row it reads.
void set_tap_masks(const Window& g, Phases& p) {
  const std::size_t words = (g.oh * g.ow + 31) / 32;
  p.masks.assign(p.taps.size() * words, 0);
  for (std::size_t t = 0; t < p.taps.size(); ++t) {
    const FlatRun& r = p.taps[t].run;
    for (std::size_t y = r.y0; y < r.y1; ++y)
      set_bits(p.masks.data() + t * words, std::max(r.k0, y * g.ow + r.inside.first),
               std::min(r.k1, y * g.ow + r.inside.last));
  }
}

// A single row at column stride 1 (Conv1d's, a height of 1 in and out): nothing wraps, so the
// input row is the plane whatever its width, and tap (i, j) reads it moved by j·dw - pw (a tap
// row other than the input's reads only padding). phases_of's phases by kernel column copied a
// "valid" Conv1d's input kW times per sample, forward and for dW, and its dX went by phase and was
// merged back (perf of Conv1d(64, 64, 3) on (16, 64, 1000), one thread: split_phases 17%,
// merge_phases 7%; forward and backward 10.7 -> 6.8 ms).
Phases one_row_phases(const Window& g) {
  Phases p;
  p.identity = true;
  p.count = 1;
  p.height = {1};
  p.width = {g.w};
  p.rows = 1;
  p.plane = g.w;
  for (std::size_t i = 0; i < g.kh; ++i)
    for (std::size_t j = 0; j < g.kw; ++j) {
      const std::ptrdiff_t dj = std::ptrdiff_t(j * g.dw) - std::ptrdiff_t(g.pw);
      FlatRun r{0, 0, 0, 0, dj, inside_columns(g.ow, 1, dj, g.w)};
      if (i * g.dh == g.ph) r = {0, 1, r.inside.first, r.inside.last, dj, r.inside};  // the input's row
      p.taps.push_back({0, r});
    }
  set_tap_masks(g, p);
  return p;
}

Phases phases_of(const Window& g) {
  if (g.h == 1 && g.oh == 1 && g.sw == 1) return one_row_phases(g);
  Phases p;
  const auto sh = std::ptrdiff_t(g.sh), sw = std::ptrdiff_t(g.sw);
  for (std::size_t a = 0; a < g.sh; ++a) p.height.push_back(g.h > a ? (g.h - a + g.sh - 1) / g.sh : 0);
  for (std::size_t b = 0; b < g.sw; ++b) p.width.push_back(g.w > b ? (g.w - b + g.sw - 1) / g.sw : 0);
  for (std::size_t j = 0; j < g.kw; ++j) {
    const std::ptrdiff_t t = std::ptrdiff_t(j * g.dw) - std::ptrdiff_t(g.pw), dj = floor_div(t, sw);
    const std::size_t real = p.width[std::size_t(t - dj * sw)];
    const bool cut = dj >= 1 && std::max(dj, std::ptrdiff_t(g.ow)) < std::ptrdiff_t(real);  // reads a cut column
    p.by_column = p.by_column || cut;
  }
  p.identity = g.sh == 1 && g.sw == 1 && g.ow == g.w;
  p.count = g.sh * (p.by_column ? g.kw : g.sw);
  for (std::size_t j = 0; p.by_column && j < g.kw; ++j) {
    const std::ptrdiff_t offset = std::ptrdiff_t(j * g.dw) - std::ptrdiff_t(g.pw);
    p.columns.push_back({offset, inside_columns(g.ow, g.sw, offset, g.w)});
  }
  p.rows = p.height[0];
  p.plane = p.rows * g.ow;
  for (std::size_t i = 0; i < g.kh; ++i)
    for (std::size_t j = 0; j < g.kw; ++j) {
      const std::ptrdiff_t ti = std::ptrdiff_t(i * g.dh) - std::ptrdiff_t(g.ph), di = floor_div(ti, sh);
      const std::ptrdiff_t tj = std::ptrdiff_t(j * g.dw) - std::ptrdiff_t(g.pw), dj = floor_div(tj, sw);
      const auto a = std::size_t(ti - di * sh), b = std::size_t(tj - dj * sw);
      if (p.by_column)
        p.taps.push_back({a * g.kw + j, flat_run(g, di, 0, p.height[a])});
      else
        p.taps.push_back({a * g.sw + b, flat_run(g, di, dj, p.height[a])});
    }
  set_tap_masks(g, p);
  return p;
}

// The floats of one sample's (and group's) phase planes: `channels` planes per phase.
std::size_t phase_floats(const Phases& p, std::size_t channels) {
  return p.identity ? 0 : p.count * channels * p.plane;
}

// Stride 2's column phases of one row of w values, n of each: even[x] = row[2x], odd[x] = row[2x + 1],
// zero past the row. (Rows of a 28-wide plane are 14 values a phase: with AVX-512, 16 at a time in
// two permutes; GCC's loops took 8, then one at a time.)
template <class T>
void split_row2(const T* row, std::size_t w, std::size_t n, T* even, T* odd) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    const __m512i pick_even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i pick_odd = _mm512_add_epi32(pick_even, _mm512_set1_epi32(1));
    for (std::size_t x = 0; x < n; x += 16) {
      const std::size_t in = std::min<std::size_t>(w - std::min(w, 2 * x), 32), out = std::min<std::size_t>(n - x, 16);
      const __m512 lo = _mm512_maskz_loadu_ps(kernels::first_lanes16(in), row + 2 * x);
      const __m512 hi = _mm512_maskz_loadu_ps(kernels::first_lanes16(in > 16 ? in - 16 : 0), row + 2 * x + 16);
      _mm512_mask_storeu_ps(even + x, kernels::first_lanes16(out), _mm512_permutex2var_ps(lo, pick_even, hi));
      _mm512_mask_storeu_ps(odd + x, kernels::first_lanes16(out), _mm512_permutex2var_ps(lo, pick_odd, hi));
    }
    return;
  }
#endif
  for (std::size_t x = 0; x < n; ++x) {
    even[x] = 2 * x < w ? row[2 * x] : T(0);
    odd[x] = 2 * x + 1 < w ? row[2 * x + 1] : T(0);
  }
}

// The reverse: row[q] = (q even ? even : odd)[q / 2] for q < min(w, 2n); the rest of the row untouched.
template <class T>
void merge_row2(const T* even, const T* odd, std::size_t w, std::size_t n, T* row) {
  const std::size_t m = std::min(w, 2 * n);
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i second = _mm512_add_epi32(first, _mm512_set1_epi32(8));
    for (std::size_t q = 0; q < m; q += 32) {
      const std::size_t left = std::min<std::size_t>(m - q, 32), x = q / 2;
      const __mmask16 halves = kernels::first_lanes16((left + 1) / 2);  // (lanes read past n: never stored)
      const __m512 e = _mm512_maskz_loadu_ps(halves, even + x), o = _mm512_maskz_loadu_ps(halves, odd + x);
      _mm512_mask_storeu_ps(row + q, kernels::first_lanes16(left), _mm512_permutex2var_ps(e, first, o));
      _mm512_mask_storeu_ps(row + q + 16, kernels::first_lanes16(left > 16 ? left - 16 : 0),
                            _mm512_permutex2var_ps(e, second, o));
    }
    return;
  }
#endif
  // (not (q % 2 ? odd : even)[q / 2]: GCC 12 at -O0 with ASan and UBSan computed a wild address there)
  for (std::size_t q = 0; q < m; ++q) row[q] = q % 2 ? odd[q / 2] : even[q / 2];
}

// The lanes x0 + l (l < 16) of a row that lie in `inside`, and the lane numbers.
#if defined(__AVX512F__)
inline __m512i lane_numbers() { return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
inline __mmask16 lanes_inside(ColumnRange inside, std::size_t x0) {
  const auto clamp = [&](std::size_t v) { return v > x0 ? v - x0 : 0; };
  return __mmask16(kernels::first_lanes16(clamp(inside.last)) & ~kernels::first_lanes16(clamp(inside.first)));
}
#endif

// One input row into its phases by column: row y of phase (a, j), at dst + j·step, is
// dst[x] = src[x·sw + offset_j] for x in inside_j, 0 at the other x < Wo. Float32 at stride 1 on
// AVX-512: a row of up to 16 values in one register, moved into each phase by a permute (LeNet's
// 14-value rows: one load where there were five; 2.3 → 2.05 ms forward and backward), longer
// rows in masked loads and stores, 16 values at a time (GCC's loop and std::fill took one).
template <class T>
void split_row_by_column(const T* src, const Window& g, const std::vector<ColumnShift>& shifts, std::size_t step,
                         T* dst) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>)
    if (g.sw == 1) {
      const __mmask16 out_lanes = kernels::first_lanes16(g.ow);
      if (g.w <= 16 && g.ow <= 16) {
        const __m512 v = _mm512_maskz_loadu_ps(kernels::first_lanes16(g.w), src);
        for (std::size_t j = 0; j < g.kw; ++j) {
          const __m512i from = _mm512_add_epi32(lane_numbers(), _mm512_set1_epi32(std::int32_t(shifts[j].offset)));
          _mm512_mask_storeu_ps(dst + j * step, out_lanes,
                                _mm512_maskz_permutexvar_ps(lanes_inside(shifts[j].inside, 0), from, v));
        }
        return;
      }
      for (std::size_t j = 0; j < g.kw; ++j)
        for (std::size_t x = 0; x < g.ow; x += 16) {
          // (an address, not a pointer: it may lie before the row; nothing is read outside `inside`)
          const auto* from = reinterpret_cast<const float*>(
              reinterpret_cast<std::uintptr_t>(src) + std::uintptr_t((std::ptrdiff_t(x) + shifts[j].offset) * 4));
          const __m512 v = _mm512_maskz_loadu_ps(lanes_inside(shifts[j].inside, x), from);
          _mm512_mask_storeu_ps(dst + j * step + x, kernels::first_lanes16(g.ow - x), v);
        }
      return;
    }
#endif
  for (std::size_t j = 0; j < g.kw; ++j, dst += step) {
    const ColumnRange inside = shifts[j].inside;
    std::fill(dst, dst + inside.first, T(0));
    for (std::size_t x = inside.first; x < inside.last; ++x)
      dst[x] = src[std::ptrdiff_t(x * g.sw) + shifts[j].offset];
    std::fill(dst + inside.last, dst + g.ow, T(0));
  }
}

// The reverse, for gradients: dst[x·sw + offset_j] += (row y of phase (a, j))[x] for x in
// inside_j, in order of j. Float32 at stride 1 on AVX-512: a row of up to 16 values summed in one
// register (the same additions in the same order), longer ones in masked loads and stores.
template <class T>
void merge_row_by_column(const T* src, std::size_t step, const Window& g, const std::vector<ColumnShift>& shifts,
                         T* dst) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>)
    if (g.sw == 1) {
      if (g.w <= 16 && g.ow <= 16) {
        __m512 sum = _mm512_maskz_loadu_ps(kernels::first_lanes16(g.w), dst);
        for (std::size_t j = 0; j < g.kw; ++j) {
          // input column q takes src[q - offset], for q - offset in `inside`
          const ColumnShift& shift = shifts[j];
          const __m512i from = _mm512_sub_epi32(lane_numbers(), _mm512_set1_epi32(std::int32_t(shift.offset)));
          const ColumnRange held{std::size_t(std::ptrdiff_t(shift.inside.first) + shift.offset),
                                 std::size_t(std::ptrdiff_t(shift.inside.last) + shift.offset)};
          const __m512 values = _mm512_maskz_loadu_ps(kernels::first_lanes16(g.ow), src + j * step);
          sum = _mm512_mask_add_ps(sum, lanes_inside(held, 0), sum, _mm512_permutexvar_ps(from, values));
        }
        _mm512_mask_storeu_ps(dst, kernels::first_lanes16(g.w), sum);
        return;
      }
      for (std::size_t j = 0; j < g.kw; ++j) {
        const ColumnRange inside = shifts[j].inside;
        for (std::size_t x = inside.first / 16 * 16; x < inside.last; x += 16) {
          const __mmask16 lanes = lanes_inside(inside, x);
          auto* to = reinterpret_cast<float*>(reinterpret_cast<std::uintptr_t>(dst) +  // (as above)
                                              std::uintptr_t((std::ptrdiff_t(x) + shifts[j].offset) * 4));
          const __m512 values = _mm512_maskz_loadu_ps(lanes, src + j * step + x);
          _mm512_mask_storeu_ps(to, lanes, _mm512_add_ps(_mm512_maskz_loadu_ps(lanes, to), values));
        }
      }
      return;
    }
#endif
  for (std::size_t j = 0; j < g.kw; ++j, src += step) {
    const ColumnRange inside = shifts[j].inside;
    for (std::size_t x = inside.first; x < inside.last; ++x)
      dst[std::ptrdiff_t(x * g.sw) + shifts[j].offset] += src[x];
  }
}

// Splits `channels` input planes into their phases: out[a·sw + b][c][y][x] = in[c][y·sh + a][x·sw + b],
// or by column out[a·kW + j][c][y][x] = in[c][y·sh + a][x·sw + j·dw - pw], zero in the columns
// outside the input (rows past a phase's height are never read).
template <class T>
void split_phases(const T* in, std::size_t channels, const Window& g, const Phases& p, T* out) {
  if (p.by_column) {
    for (std::size_t c = 0; c < channels; ++c)
      for (std::size_t row = 0; row < g.h; ++row) {
        const std::size_t a = row % g.sh, y = row / g.sh;  // phase (a, 0)'s row y; (a, j) is j·channels planes on
        split_row_by_column(in + (c * g.h + row) * g.w, g, p.columns, channels * p.plane,
                            out + (a * g.kw * channels + c) * p.plane + y * g.ow);
      }
    return;
  }
  for (std::size_t c = 0; c < channels; ++c)
    for (std::size_t row = 0; row < g.h; ++row) {
      const T* src = in + (c * g.h + row) * g.w;
      const std::size_t a = row % g.sh, y = row / g.sh;
      T* dst = out + (a * g.sw * channels + c) * p.plane + y * g.ow;  // phase (a, 0); (a, b) is b·channels planes on
      if (g.sw == 2) {
        split_row2(src, g.w, g.ow, dst, dst + channels * p.plane);
        continue;
      }
      for (std::size_t b = 0; b < g.sw; ++b, dst += channels * p.plane) {
        const std::size_t n = std::min(p.width[b], g.ow);
        for (std::size_t x = 0; x < n; ++x) dst[x] = src[x * g.sw + b];
        std::fill(dst + n, dst + g.ow, T(0));
      }
    }
}

// The reverse for gradients: in[c][y·sh + a][x·sw + b] = phases[a·sw + b][c][y][x] (an input column
// cut from its phase was never read: its gradient stays 0). By column, each phase (a, j) is added
// into the input positions it holds, in order of j: `in` must start at zero.
template <class T>
void merge_phases(const T* phases, std::size_t channels, const Window& g, const Phases& p, T* in) {
  if (p.by_column) {
    for (std::size_t c = 0; c < channels; ++c)
      for (std::size_t row = 0; row < g.h; ++row) {
        const std::size_t a = row % g.sh, y = row / g.sh;
        merge_row_by_column(phases + (a * g.kw * channels + c) * p.plane + y * g.ow, channels * p.plane, g, p.columns,
                            in + (c * g.h + row) * g.w);
      }
    return;
  }
  for (std::size_t c = 0; c < channels; ++c)
    for (std::size_t row = 0; row < g.h; ++row) {
      T* dst = in + (c * g.h + row) * g.w;
      const std::size_t a = row % g.sh, y = row / g.sh;
      const T* src = phases + (a * g.sw * channels + c) * p.plane + y * g.ow;
      if (g.sw == 2) {
        merge_row2(src, src + channels * p.plane, g.w, g.ow, dst);
        continue;
      }
      for (std::size_t b = 0; b < g.sw; ++b, src += channels * p.plane) {
        const std::size_t n = std::min(p.width[b], g.ow);
        for (std::size_t x = 0; x < n; ++x) dst[x * g.sw + b] = src[x];
      }
    }
}

// A 1×1 kernel with stride 1 and no padding: the columns are the input plane itself, so the GEMMs
// read the input (and write the input gradient) in place, with no im2col or col2im.
// (`Conv2d_1x1`, 64 -> 128 channels on 14×14, one thread: 11.9-12.0 -> 10.1-10.4 ms.) Not where
// the plane is larger than the output (a transposed convolution's output_padding past the stride).
bool identity_columns(const Window& g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0 && g.h == g.oh && g.w == g.ow;
}

// Zeroes the columns of rows [y0, y1) of `row` that lie outside `inside`.
template <class T>
void zero_wrapped(T* row, const Window& g, const FlatRun& r) {
  for (std::size_t y = r.y0; y < r.y1; ++y) {
    std::fill(row + y * g.ow, row + y * g.ow + r.inside.first, T(0));
    std::fill(row + y * g.ow + r.inside.last, row + (y + 1) * g.ow, T(0));
  }
}

#if defined(__x86_64__)
// row[k] = src[k] where bit k of the mask words is set, else 0, for k < n: one masked load and
// store per 16 values. (src is an address: it may lie before its plane; nothing is read where the
// mask is clear.)
__attribute__((target("avx512f"))) void masked_row(std::uintptr_t src, const std::uint32_t* mask, std::size_t n,
                                                   float* row) {
  for (std::size_t k = 0; k < n; k += 16) {
    const __mmask16 take = __mmask16(k % 32 ? mask[k / 32] >> 16 : mask[k / 32] & 0xFFFFu);
    const __m512 v = _mm512_maskz_loadu_ps(take, reinterpret_cast<const float*>(src + k * sizeof(float)));
    _mm512_mask_storeu_ps(row + k, kernels::first_lanes16(n - k), v);
  }
}
#endif

// im2col for one sample and group: col[(c·kH + i)·kW + j][y·Wo + x] = input[c][y·sh - ph + i·dh][x·sw - pw + j·dw],
// zero where that falls in the padding, from the sample's phase planes `in` (the input itself
// when p.identity).
template <class T>
void im2col(const T* in, std::size_t channels, const Window& g, const Phases& p, T* col) {
  const std::size_t plane = g.oh * g.ow;
#if defined(__x86_64__)
  // float32 on AVX-512: each row in one pass from its tap's mask. (The copy and fills below are
  // libc calls, two per output row for the wrapped columns: 10% of a 5×5 "same" convolution's
  // step went to them and their memset and memmove.)
  if constexpr (std::is_same_v<T, float>)
    if (detail::sgemm_avx512_available()) {
      const std::size_t words = (plane + 31) / 32;
      for (std::size_t tap = 0; tap < p.taps.size(); ++tap)
        for (std::size_t c = 0; c < channels; ++c) {
          const auto src = reinterpret_cast<std::uintptr_t>(in + (p.taps[tap].phase * channels + c) * p.plane) +
                           std::uintptr_t(p.taps[tap].run.shift * std::ptrdiff_t(sizeof(T)));  // (modular)
          masked_row(src, p.masks.data() + tap * words, plane, col + (c * p.taps.size() + tap) * plane);
        }
      return;
    }
#endif
  for (std::size_t tap = 0; tap < p.taps.size(); ++tap) {  // one run per kernel offset, the same for every channel
    const FlatRun& r = p.taps[tap].run;
    for (std::size_t c = 0; c < channels; ++c) {
      T* row = col + (c * p.taps.size() + tap) * plane;
      const T* src = in + (p.taps[tap].phase * channels + c) * p.plane;
      std::fill(row, row + r.k0, T(0));
      if (r.k1 > r.k0)
        std::copy(src + (std::ptrdiff_t(r.k0) + r.shift), src + (std::ptrdiff_t(r.k1) + r.shift), row + r.k0);
      std::fill(row + r.k1, row + plane, T(0));
      zero_wrapped(row, g, r);
    }
  }
}

// The reverse: every column entry added back into the phase position it came from (the phase
// planes must start at zero). `col` is scratch (its wrapped columns are zeroed first).
template <class T>
void col2im(T* col, std::size_t channels, const Window& g, const Phases& p, T* in) {
  const std::size_t plane = g.oh * g.ow;
  // (each input value still takes its additions in kernel-offset order)
  for (std::size_t tap = 0; tap < p.taps.size(); ++tap) {
    const FlatRun& r = p.taps[tap].run;
    if (r.k1 == r.k0) continue;
    for (std::size_t c = 0; c < channels; ++c) {
      T* row = col + (c * p.taps.size() + tap) * plane;
      zero_wrapped(row, g, r);
      T* dst = in + (p.taps[tap].phase * channels + c) * p.plane + (std::ptrdiff_t(r.k0) + r.shift);
      kernels::apply(r.k1 - r.k0, dst, [](auto a, auto b) { return a + b; }, static_cast<const T*>(dst),
                     static_cast<const T*>(row + r.k0));
    }
  }
}

// What im2col reads for one sample's group: its phase planes, split into `split` (phase_floats of
// it) unless they are the input itself.
template <class T>
const T* column_source(const T* x, std::size_t channels, const Window& g, const Phases& p, T* split) {
  if (p.identity) return x;
  split_phases(x, channels, g, p, split);
  return split;
}

// im2col of one sample's group.
template <class T>
void columns(const T* x, std::size_t channels, const Window& g, const Phases& p, T* split, T* col) {
  im2col(column_source(x, channels, g, p, split), channels, g, p, col);
}

// col2im of one sample's group into dx (which holds zeros), through `split` likewise.
template <class T>
void add_columns(T* col, std::size_t channels, const Window& g, const Phases& p, T* split, T* dx) {
  if (p.identity) {
    col2im(col, channels, g, p, dx);
    return;
  }
  std::fill(split, split + phase_floats(p, channels), T(0));
  col2im(col, channels, g, p, split);
  merge_phases(split, channels, g, p, dx);
}

// Whether the forward's GEMM gathers its columns itself, with no im2col (float32 on the AVX-512
// kernel, a product that kernel takes: 8 output channels and positions or more; a batch under 8
// samples cuts each sample's GEMM by columns, gathered_forward). Each row
// (c, i, j) of the columns is a run of a phase plane moved by the offset's flat distance, zero
// where im2col would write zeros: detail::MaskedRows, one mask per offset. The sums are the same
// as through im2col (same kernel, same order). (`Conv1d` 16 -> 32, kernel 5 on 128: im2col's
// copies were 5% of the step.)
template <class T>
bool gathers_columns(const Window& g, std::size_t og) {
#if defined(__x86_64__)
  if constexpr (std::is_same_v<T, float>)
    return og >= 8 && g.oh * g.ow >= 8 && detail::sgemm_avx512_available();
#endif
  (void)g, (void)og;
  return false;
}

// take ? a : b, computed on the bits.
template <class T>
T select_bits(bool take, T a, T b) {
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  const Bits mask = Bits(0) - Bits(take);
  return std::bit_cast<T>((std::bit_cast<Bits>(a) & mask) | (std::bit_cast<Bits>(b) & ~mask));
}

// Samples per parallel task: enough work to pay for a task.
std::size_t samples_per_task(const Window& g, std::size_t work_per_output) {
  return std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(1, g.oh * g.ow * work_per_output));
}

// ---- Depthwise convolution ------------------------------------------------------------------------
// One input channel per group (groups == in_channels: MobileNet's depthwise layers). Each group's
// GEMM is (m × k²)·(k² × plane), far too small for BLAS: Conv2d(64, 64, 3, groups=64) on
// (128, 64, 14, 14) made 24,576 GEMM calls and took 17.6 ms (libtorch 4.4). Instead, directly,
// on a zero-padded copy P of each input plane (as many rows and columns as the windows reach):
//   y[o, oy, ox] = b[o] + Σ_ij w[o, i, j] · P[oy·sh + i·dh, ox·sw + j·dw]
// At stride 1 a batch of output columns takes all its taps in one register, 8 batches side by
// side (passes over memory, one per tap, stalled on store-to-load forwarding), and the input
// gradient is the same correlation of dy padded by (k - 1)·d - p with the kernel flipped. At other
// strides plain row loops: each tap adds w · dy back along the padded rows. The weight gradient is
// Σ over samples and positions of dy · P, per output channel in sample order (parallel over
// channels, with no partial sums: the same bits for any thread count), each tap's sum in a
// register over a plane and in float lanes over 8 samples, then in double. Every sum runs in a
// fixed order. (`Conv2d_depthwise` at one thread: 4.3 ms → 2.9 with the register blocks, padding
// written once per buffer and the weight gradient read in memory order.)
bool depthwise(const Window& g, std::size_t groups) { return groups > 1 && groups == g.c; }

// A padded plane's rows and width, and its size with room for one batch read past the last row.
struct PaddedPlane {
  std::size_t rows, width, size;
};

template <class T>
PaddedPlane padded_plane(const Window& g) {
  const std::size_t rows = (g.oh - 1) * g.sh + (g.kh - 1) * g.dh + 1, width = (g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1;
  return {rows, width, rows * width + kernels::Batch<T>::size};
}


// dst (rows × width, then zeros to `size`) = src (h × w) moved down by `top` and right by `left`
// (either may be negative: rows or columns cut off), zeros around it. Only the rows that hold
// src are written, a batch at a time and every store whole: a row's last batch carries zeros past
// its values, into the columns after them and the next row's start (written after it). So every
// position outside src is only ever written with zeros, and dst must start zeroed (a fresh
// buffer) or hold a plane of the same geometry: the padding is never written again. (Filling the
// padding and copying each 14-value row with std::fill and std::copy, libc calls, took 15% of
// `Conv2d_depthwise`.) Loads are whole unless they would read past the plane.
template <class T>
void pad_plane(const T* src, std::size_t h, std::size_t w, std::ptrdiff_t top, std::ptrdiff_t left,
               const PaddedPlane& p, T* dst) {
  using B = kernels::Batch<T>;
  constexpr std::size_t width = B::size;
  const std::ptrdiff_t x0 = std::max<std::ptrdiff_t>(0, -left);
  const std::ptrdiff_t x1 = std::min<std::ptrdiff_t>(std::ptrdiff_t(w), std::ptrdiff_t(p.width) - left);
  if (x1 <= x0) return;
  const auto a = std::size_t(x0 + left), n = std::size_t(x1 - x0);  // columns [a, a + n) come from src
  const std::ptrdiff_t y0 = std::max<std::ptrdiff_t>(0, -top);
  const std::ptrdiff_t y1 = std::min<std::ptrdiff_t>(std::ptrdiff_t(h), std::ptrdiff_t(p.rows) - top);
  const T* end = src + h * w;
  for (std::ptrdiff_t y = y0; y < y1; ++y) {
    const T* from = src + std::size_t(y) * w + std::size_t(x0);
    T* to = dst + std::size_t(y + top) * p.width + a;
    for (std::size_t c = 0; c < n; c += width) {
      const std::size_t k = std::min(width, n - c);
      B v = from + c + width <= end ? B::load_unaligned(from + c) : kernels::load_partial(from + c, k, T(0));
      if (k < width) v = xsimd::select(kernels::first_lanes<T>(k), v, B(T(0)));
      v.store_unaligned(to + c);
    }
  }
}

// fn.template operator()<K>() for the runtime k in [1, Max]: a loop over k registers compiled
// for each k, so that its accumulators stay in registers (over a runtime count GCC kept them on
// the stack: a load and a store around every multiply-add).
template <std::size_t Max, class Fn>
void with_count(std::size_t k, Fn&& fn) {
  [&]<std::size_t... K>(std::index_sequence<K...>) {
    ((k == K + 1 ? (fn.template operator()<K + 1>(), 0) : 0), ...);
  }(std::make_index_sequence<Max>());
}

// Stride 1: out (rows × ow) = init + Σ over `count` planes c and taps (i, j) of
// k_c[i, j] · P_c[y + i·dh, x + j·dw] (k flipped when `flip`), a batch of columns at a time. A
// batch past the end of a row runs into the next row's positions, which are written after it;
// only a batch past the end of the plane is stored masked. kItems batches (of one row or the
// next) are summed together, each in its own register: one batch at a time, the taps' chain of
// multiply-adds waited on each other's latency.
template <class T>
void correlate_rows(const T* padded, const PaddedPlane& p, std::size_t count, const T* k, bool flip, const Window& g,
                    std::size_t rows, std::size_t ow, T init, T* out) {
  using B = kernels::Batch<T>;
  constexpr std::size_t width = B::size, kItems = 8;
  const std::size_t taps = count * g.kh * g.kw, plane = rows * ow, per_row = (ow + width - 1) / width;
  // Every (plane, tap): where it reads, and its weight (on the stack for up to 32 taps: this runs
  // once per plane).
  std::array<std::size_t, 32> offset_on_stack;
  std::array<T, 32> weight_on_stack;
  std::vector<std::size_t> offset_on_heap(taps > 32 ? taps : 0);
  std::vector<T> weight_on_heap(taps > 32 ? taps : 0);
  std::size_t* offset = taps > 32 ? offset_on_heap.data() : offset_on_stack.data();
  T* weight = taps > 32 ? weight_on_heap.data() : weight_on_stack.data();
  for (std::size_t c = 0, t = 0; c < count; ++c)
    for (std::size_t i = 0; i < g.kh; ++i)
      for (std::size_t j = 0; j < g.kw; ++j, ++t) {
        offset[t] = c * p.size + i * g.dh * p.width + j * g.dw;
        weight[t] = k[c * g.kh * g.kw + (flip ? g.kh * g.kw - 1 - (i * g.kw + j) : i * g.kw + j)];
      }
  // Batches [first, first + K) of the plane, batch b covering row b / per_row from column
  // (b % per_row)·width: each an independent sum over the taps, in tap order.
  auto batches = [&]<std::size_t K>(std::size_t first) {
    const T* at[K];
    std::size_t flat[K];
    B acc[K];
#pragma GCC unroll 16
    for (std::size_t b = 0; b < K; ++b) {
      const std::size_t y = (first + b) / per_row, x = (first + b) % per_row * width;
      at[b] = padded + y * p.width + x;
      flat[b] = y * ow + x;
      acc[b] = B(init);
    }
    for (std::size_t t = 0; t < taps; ++t) {
      const B w(weight[t]);
#pragma GCC unroll 16
      for (std::size_t b = 0; b < K; ++b) acc[b] = xsimd::fma(w, B::load_unaligned(at[b] + offset[t]), acc[b]);
    }
#pragma GCC unroll 16
    for (std::size_t b = 0; b < K; ++b) {
      if (flat[b] + width <= plane)
        acc[b].store_unaligned(out + flat[b]);
      else
        kernels::store_partial(acc[b], out + flat[b], plane - flat[b]);
    }
  };
  const std::size_t total = rows * per_row;
  std::size_t first = 0;
  for (; first + kItems <= total; first += kItems) batches.template operator()<kItems>(first);
  if (first < total)
    with_count<kItems - 1>(total - first, [&]<std::size_t K>() { batches.template operator()<K>(first); });
}

// Stride 1: part[t] += Σ_y,x dy[y, x] · P[y + i·dh, x + j·dw] for tap t = (i, j), in the lanes
// of a batch of columns (the caller folds them). The taps go in groups of at most kTaps, each
// with its accumulator in a register, each batch of dy read once per group; the lanes past a
// row's end are left out (not multiplied by 0: P may hold an inf there).
template <class T>
void dot_rows(const T* dy, const T* padded, const PaddedPlane& p, const Window& g, kernels::Batch<T>* part) {
  using B = kernels::Batch<T>;
  constexpr std::size_t width = B::size, kTaps = 12;
  const std::size_t taps = g.kh * g.kw, groups = (taps + kTaps - 1) / kTaps;
  const std::size_t per_group = (taps + groups - 1) / groups;
  auto group = [&]<std::size_t K>(std::size_t t0) {
    std::size_t offset[K];
    B acc[K];
#pragma GCC unroll 16
    for (std::size_t k = 0; k < K; ++k) {
      const std::size_t t = t0 + k;
      offset[k] = t / g.kw * g.dh * p.width + t % g.kw * g.dw;
      acc[k] = part[t];
    }
    for (std::size_t y = 0; y < g.oh; ++y)
      for (std::size_t x = 0; x < g.ow; x += width) {
        const std::size_t flat = y * g.ow + x, n = std::min(width, g.ow - x);
        const T* at = padded + y * p.width + x;
        if (n == width) {
          const B d = B::load_unaligned(dy + flat);
#pragma GCC unroll 16
          for (std::size_t k = 0; k < K; ++k) acc[k] = xsimd::fma(d, B::load_unaligned(at + offset[k]), acc[k]);
          continue;
        }
        const auto lanes = kernels::first_lanes<T>(n);
        const B d = kernels::load_partial(dy + flat, n, T(0));
#pragma GCC unroll 16
        for (std::size_t k = 0; k < K; ++k)
          acc[k] = xsimd::fma(d, xsimd::select(lanes, B::load_unaligned(at + offset[k]), B(T(0))), acc[k]);
      }
#pragma GCC unroll 16
    for (std::size_t k = 0; k < K; ++k) part[t0 + k] = acc[k];
  };
  for (std::size_t t0 = 0; t0 < taps; t0 += per_group)
    with_count<kTaps>(std::min(per_group, taps - t0), [&]<std::size_t K>() { group.template operator()<K>(t0); });
}

template <class T>
xt::xarray<T> depthwise_forward(const T* x, const T* w, const T* b, const Window& g, std::size_t out_channels) {
  const std::size_t m = out_channels / g.c, plane = g.oh * g.ow, taps = g.kh * g.kw;
  const PaddedPlane p = padded_plane<T>(g);
  xt::xarray<T> out = xt::xarray<T>::from_shape({g.n, out_channels, g.oh, g.ow});
  T* y = out.data();
  parallel::for_range(g.n * g.c, samples_per_task(g, m * taps), [&](std::size_t first, std::size_t last) {
    std::vector<T, Allocator<T>> padded(p.size);  // zeros; pad_plane writes only x's values
    for (std::size_t sc = first; sc < last; ++sc) {  // (sample, channel)
      pad_plane(x + sc * g.h * g.w, g.h, g.w, std::ptrdiff_t(g.ph), std::ptrdiff_t(g.pw), p, padded.data());
      for (std::size_t o = (sc % g.c) * m; o < (sc % g.c + 1) * m; ++o) {
        T* yo = y + ((sc / g.c) * out_channels + o) * plane;
        const T init = b ? b[o] : T(0);
        if (g.sh == 1 && g.sw == 1) {
          correlate_rows(padded.data(), p, 1, w + o * taps, false, g, g.oh, g.ow, init, yo);
          continue;
        }
        std::fill(yo, yo + plane, init);
        for (std::size_t r = 0; r < g.oh; ++r)
          for (std::size_t i = 0; i < g.kh; ++i)
            for (std::size_t j = 0; j < g.kw; ++j) {
              const T weight = w[o * taps + i * g.kw + j];
              const T* in = padded.data() + (r * g.sh + i * g.dh) * p.width + j * g.dw;
              T* out = yo + r * g.ow;
              for (std::size_t c = 0; c < g.ow; ++c) out[c] = std::fma(weight, in[c * g.sw], out[c]);
            }
      }
    }
  });
  return out;
}

template <class T>
xt::xarray<T> depthwise_input_grad(const T* dy, const T* w, const Window& g, std::size_t out_channels) {
  const std::size_t m = out_channels / g.c, plane = g.oh * g.ow, taps = g.kh * g.kw;
  xt::xarray<T> dx = xt::xarray<T>::from_shape({g.n, g.c, g.h, g.w});
  T* d = dx.data();
  // Stride 1: the correlation of the transposed problem (stride 1, output h × w).
  Window t = g;
  t.oh = g.h;
  t.ow = g.w;
  const bool flat = g.sh == 1 && g.sw == 1;
  const PaddedPlane p = padded_plane<T>(flat ? t : g);
  parallel::for_range(g.n * g.c, samples_per_task(g, m * taps), [&](std::size_t first, std::size_t last) {
    std::vector<T, Allocator<T>> padded(flat ? m * p.size : p.size);  // zeros (pad_plane: only dy's values)
    for (std::size_t sc = first; sc < last; ++sc) {
      T* dxc = d + sc * g.h * g.w;
      const std::size_t c = sc % g.c, s = sc / g.c;
      const T* dys = dy + (s * out_channels + c * m) * plane;  // the group's m planes of dy
      if (flat) {
        for (std::size_t o = 0; o < m; ++o)
          pad_plane(dys + o * plane, g.oh, g.ow, std::ptrdiff_t((g.kh - 1) * g.dh) - std::ptrdiff_t(g.ph),
                    std::ptrdiff_t((g.kw - 1) * g.dw) - std::ptrdiff_t(g.pw), p, padded.data() + o * p.size);
        correlate_rows(padded.data(), p, m, w + c * m * taps, true, t, g.h, g.w, T(0), dxc);
        continue;
      }
      // Other strides: each tap adds w · dy back into the padded plane; its inside is dx.
      std::fill(padded.begin(), padded.end(), T(0));
      for (std::size_t o = 0; o < m; ++o)
        for (std::size_t r = 0; r < g.oh; ++r)
          for (std::size_t i = 0; i < g.kh; ++i)
            for (std::size_t j = 0; j < g.kw; ++j) {
              const T weight = w[(c * m + o) * taps + i * g.kw + j];
              T* row = padded.data() + (r * g.sh + i * g.dh) * p.width + j * g.dw;
              const T* dyr = dys + o * plane + r * g.ow;
              for (std::size_t col = 0; col < g.ow; ++col)
                row[col * g.sw] = std::fma(weight, dyr[col], row[col * g.sw]);
            }
      for (std::size_t y = 0; y < g.h; ++y)
        for (std::size_t col = 0; col < g.w; ++col) {
          const std::size_t r = y + g.ph, pc = col + g.pw;  // rows and columns past the windows got nothing
          dxc[y * g.w + col] = r < p.rows && pc < p.width ? padded[r * p.width + pc] : T(0);
        }
    }
  });
  return dx;
}

template <class T>
xt::xarray<T> depthwise_weight_grad(const T* x, const T* dy, const Window& g, std::size_t out_channels) {
  const std::size_t m = out_channels / g.c, plane = g.oh * g.ow, taps = g.kh * g.kw;
  const PaddedPlane p = padded_plane<T>(g);
  xt::xarray<T> dw = xt::xarray<T>::from_shape({out_channels, std::size_t(1), g.kh, g.kw});
  const std::size_t grain = std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(1, g.n * plane * taps));
  parallel::for_range(out_channels, grain, [&](std::size_t first, std::size_t last) {
    std::vector<T, Allocator<T>> padded(p.size);  // zeros; pad_plane writes only x's values
    // Samples outside, channels inside, so that x and dy are read in memory order (a channel's
    // planes one sample after another, 50 KB apart, waited on memory for every plane). Per channel
    // and tap: dot_rows' sums in the lanes of a batch, over kFlush samples at most, then added to
    // double totals (the row loops of other strides add to lane 0 of those directly).
    using B = kernels::Batch<T>;
    constexpr std::size_t width = B::size, kFlush = 8;
    std::vector<B, Allocator<B>> parts((last - first) * taps, B(T(0)));
    Buffer<double> totals((last - first) * taps * width, 0.0);
    for (std::size_t s = 0; s < g.n; ++s) {
      for (std::size_t o = first; o < last; ++o) {
        pad_plane(x + (s * g.c + o / m) * g.h * g.w, g.h, g.w, std::ptrdiff_t(g.ph), std::ptrdiff_t(g.pw), p,
                  padded.data());
        const T* dyo = dy + (s * out_channels + o) * plane;
        if (g.sh == 1 && g.sw == 1) {
          dot_rows(dyo, padded.data(), p, g, parts.data() + (o - first) * taps);
          continue;
        }
        for (std::size_t i = 0; i < g.kh; ++i)
          for (std::size_t j = 0; j < g.kw; ++j) {
            T acc = 0;
            for (std::size_t r = 0; r < g.oh; ++r) {
              const T* in = padded.data() + (r * g.sh + i * g.dh) * p.width + j * g.dw;
              for (std::size_t c = 0; c < g.ow; ++c) acc = std::fma(dyo[r * g.ow + c], in[c * g.sw], acc);
            }
            totals[((o - first) * taps + i * g.kw + j) * width] += acc;
          }
      }
      if ((s + 1) % kFlush != 0 && s + 1 != g.n) continue;
      alignas(64) std::array<T, width> lane;
      for (std::size_t k = 0; k < parts.size(); ++k) {
        parts[k].store_aligned(lane.data());
        parts[k] = B(T(0));
        for (std::size_t l = 0; l < width; ++l) totals[k * width + l] += double(lane[l]);
      }
    }
    for (std::size_t k = 0; k < parts.size(); ++k)
      dw.data()[first * taps + k] = T(std::accumulate(&totals[k * width], &totals[k * width] + width, 0.0));
  });
  return dw;
}

// ---- Output channels 16 at a time, directly -----------------------------------------------------
// A group of 16 output channels (Conv2d(64, 64, 3, groups=4); a first layer 3 → 16) gives the
// GEMMs 16 rows: two of the AVX-512 kernel's 8-row tiles, each reading the gathered input again,
// about 160 GFLOP/s, plus im2col and a half-width kernel for the weight gradient
// (`Conv2d_groups4/1` was 0.86× libtorch, whose oneDNN runs such groups directly); with few
// input channels (16 or fewer a group) Winograd's GEMMs are as thin. At strides 1 and 2 (float32,
// AVX-512; any dilation d) these run directly, 16 output channels at a time in the lanes of one
// register, on each sample's zero-padded planes P (padded_plane, as the depthwise path):
//   forward:  y[·, oy, ox] = b + Σ over (c, i, j) of W[·, c, i, j] · P[c, oy·sh + i·dh, ox·sw + j·dw]
//     a piece of up to 16 output columns of one row in 16 registers; per tap one load of the
//     tap's 16 weights (W transposed to (c, i, j, og), `wt`) and a broadcast multiply-add per
//     column (at sw = 2 every second input value); the piece (column, channel) transposed into
//     y. Undilated rows alone load each input value once for all the columns it meets
//     (direct_piece_row). At stride 1 rows go in pairs (oy and oy + dh:
//     one reads through tap row i + 1 what the other reads through tap row i), up to 14 columns
//     of each in 28 registers, each input value broadcast once for both rows' multiply-adds
//     (direct_piece_pair; forward and backward, one thread, minimum of 6 runs by turns:
//     Conv2d(64, 64, 3, groups=4) on (64, 64, 14, 14) 4.92 → 4.17 ms, 16 → 32 5×5 padding 2 on
//     (64, 16, 28, 28) 22.5 → 19.7, LeNet's 6 → 16 5×5 1.73 → 1.65, 32 → 32 5×5 in 2 groups on
//     16×16 3.86 → 3.27; 3 → 16 on 32×32 even).
//   weight gradient:  dWᵀ[(c, i, j), ·] += Σ over (oy, ox) of P[c, oy·sh + i·dh, ox·sw + j·dw] · dY[·, oy, ox]
//     dY transposed to (position, og); the taps of R rows (c, i) of the kernel in registers (R·kW
//     sums: at most kDirectSums, R at most kDirectRows, or one less where that cuts the kernel's
//     rows with less waste), one load of dY's 16 values and a broadcast multiply-add per tap and
//     position (dilation 1 or 2: dY of 8 positions in registers, each value loaded once for them).
//     It sums into the partials the GEMM path's transposed form uses (kk × og).
// (· is a block of 16 output channels.) The input gradient at stride 1 is a forward over dY
// (transposes_to_forward), from og channels to cg: it runs here when those fit. Every sum runs in
// a fixed order (taps, then positions in order): the bits do not depend on the thread count or
// the cut into tasks. Where it runs (direct_fits): strides 1 and 2, 16 output channels a group
// whatever the input, or 32, 48 or 64 from at most 64 input channels a group (16 at stride 1
// where no row has a pair: oh ≤ dh) and 16 taps (c, i, j) or more, except a stride-1 undilated
// 3×3 (Winograd's) from over 16 input channels (over 32 in a forward or dX writing planes up to
// 14 columns wide: kDirectNarrowWidth) to over 32 output channels; a 1-wide kernel keeps
// the GEMM (1×1: it reads the input in place, with no im2col). Output channels that are not a
// multiple of 16, from 8 up, count as the blocks they fill (direct_lanes: 8 to 16 as 16, 17 to 32
// as 32, ...): the weights, bias and dY's transposed copy are padded with zero lanes and only the
// real channels are stored. With half a register's lanes idle the direct path still beat
// Winograd and the GEMMs (forward and backward, one thread, minimum of 8 runs, two rounds by
// turns): 8 → 8 on (64, 8, 32, 32) (`Conv2d_8ch`) 4.4 → 2.6 ms, on 28×28 3.0 → 1.9, 5×5 5.5 →
// 4.7, 12 → 12 5.8 → 2.9, 8 → 12 4.0 → 2.2, 64 → 8 on 14×14 3.9 → 3.2, 128 → 8 9.4 → 7.8 (256 → 8
// even), 3 → 8 stride 2 on 64×64 1.8 → 1.5, 16 → 8 stride 2 1.6 → 1.2; past 16: 20 → 20 on 28×28
// 11.0 → 9.0, 16 → 24 8.7-9.1 → 7.0-7.5, 64 → 40 5×5 on 16×16 40-41 → 36-38, and 32 → 24, 32 →
// 17, 16 → 33, 48 → 40 and 16 → 40 5×5 even. Below 8 the GEMMs keep them.
// Measured (forward and backward, one thread, minimum of 26-36 steps, against the GEMMs and
// Winograd before): Conv2d(64, 64, 3, groups=4) on (64, 64, 14, 14) 5.3-6.6 → 4.2-4.6 ms; 16 → 16
// on 28×28 (Winograd) 5.8-6.2 → 4.2-4.5, on 8×8 0.69 → 0.40; 3 → 16 on 32×32 1.8 → 1.4; 1 → 16
// 5×5 on 28×28 1.35 → 1.04; 3 → 16 7×7 on 8 × 64×64 3.5-3.8 → 2.8-2.9; 64 → 16 on 14×14 2.2 →
// 2.0; on 16×16 planes 16 → 32 3.1 → 2.6, 16 → 48 4.5 → 3.8, 16 → 64 5.8 → 5.1, 8 → 32 2.4 → 1.9;
// 3 → 32 on 32×32 3.3 → 2.9, 3 → 64 even. The GEMMs win past 64 output channels (128: 0.5×),
// and with 32 or more from fewer taps, where each piece's 16 stores and transpose weigh more than
// its multiply-adds (1 → 32 3×3 on 28×28: 2.9-3.2 against 3.5 directly; 1 → 16 stays direct, 1.5
// against 1.9). Up to 64 input channels the paired rows win against the gathered GEMM (minimum
// of 3-4 runs by turns, one thread): dilated 3×3 (dilation 2) 32 → 32 on (32, 32, 28, 28) 10.7 →
// 7.9 ms, 64 → 64 on 28×28 20.2 → 15.9, 32 → 32 dilation 4 on 32×32 6.2 → 5.6, 5×5 32 → 32 on
// 28×28 16.0 → 10.3, 32 → 64 on 16×16 20.0 → 14.6, 64 → 64 on 14×14 16.5 → 11.0, 7×7 24 → 48
// 34.1 → 23.3; from 96 or 128 input channels it is mixed (5×5 96 → 64 13% faster directly, 3×3
// 128 → 64 37% slower), so 64 is the limit. Against Winograd (3×3 undilated) it wins to 32 output
// channels (32 → 32 on 14×14 9.5 → 8.4, 64 → 32 8.1 → 7.7, 48 → 32 6.7 → 6.0) and loses beyond
// (32 → 64 on 14×14, `Conv2d_32x64`, 15.5 against 16.6; 64 → 64 on 28×28 12.1 against 14.7), except
// in a forward on narrow planes (kDirectNarrowWidth, below).
// The Conv1d form (one output row, no pairs) of a dilated 32 → 32 measured 1.01 ms gathered
// against 1.18 directly: without pairs of rows the limit stays 16 input channels at stride 1.
// At stride 2 (rows alone) the alternative is the GEMM over the input's phases (split, gathered,
// merged back), and the direct path wins from up to 64 input channels (3×3 unless said, minimum
// of 3 runs by turns, one thread): 3 → 16 on (64, 3, 64, 64) 3.08 → 2.21 ms, 16 → 16 on 28×28
// 2.65 → 1.65, 64 → 16 5.21 → 3.28, 16 → 32 5×5 9.30 → 6.94, 8 → 48 on 32×32 3.87 → 3.10, 32 → 32
// 6.44 → 5.33, 48 → 32 5×5 11.1 → 8.8, 64 → 64 11.1 → 10.5; `Conv2d_stride2` (32 → 64) even.

// The direct kernels are compiled on x86-64 and used where the CPU has AVX-512 (decided at run
// time), unless the build leaves them out (TAPEGRAD_DIRECT_CONV=OFF, which the fuzz preset sets:
// its harnesses read files, and clang with ASan spent 11 minutes on these kernels' unrolled
// instances, a third of CI). Without them every convolution takes the GEMM paths.
#if defined(__x86_64__) && !defined(TG_NO_DIRECT_CONV)
#define TG_DIRECT_CONV 1
#else
#define TG_DIRECT_CONV 0
#endif

#if TG_DIRECT_CONV
constexpr std::size_t kDirectChannels = 16, kDirectColumns = 16, kDirectPairColumns = 14, kDirectSums = 28,
                      kDirectRows = 10;
constexpr std::size_t kDirectKernelWidth = 7, kDirectMaxChannels = 64, kDirectMaxInputs = 64, kDirectMinTaps = 16,
                      kDirectUnpairedInputs = 16, kDirectWinogradInputs = 16, kDirectWinogradChannels = 32,
                      kDirectMaxStride = 2;
// A forward (or dX, a forward over dY) writing planes of up to kDirectNarrowWidth columns takes
// Winograd's 3×3 directly from up to kDirectNarrowWinogradInputs input channels: there Winograd's
// input transform gathers each tile's 16 values one by one (winograd_input_gathered, fewer than
// kGatherChunk tiles a row), 15% of `Conv2d_32x64`'s step. The forward alone, minimum of 30 by
// turns, one thread (two): 32 → 64 on (128, 32, 14, 14) 5.77 → 5.03 ms (2.66 → 2.41), on 7×7
// 1.59 → 1.43 (0.80 → 0.70), 20 → 64 on 14×14 4.19 → 3.28, 32 → 40 4.11 → 3.73; on wider planes
// Winograd keeps them (32 → 64 on 20×20 4.82 against 5.61 directly, 28×28 even, 40×40 and 56×56
// 5-10% Winograd's). Forward and backward, in one process by turns, minimum of 30, one thread
// (two): 32 → 64 on (128, 32, 14, 14) 15.7 → 15.2 ms (7.98 → 7.68), on (256, 32, 7, 7) 10.5 → 10.0
// (even), 20 → 64 13.9 → 13.1 (7.98 → 7.40), 32 → 40 10.8 → 10.6 (6.12 → 5.98), 64 → 24 (dX 24
// → 64) 14.6 → 13.9 (8.46 → 8.08). The weight gradient stays Winograd's: directly it lost about
// what the forward won (32 → 64 on 14×14, forward and backward all direct: 13.80 against 13.97).
constexpr std::size_t kDirectNarrowWidth = 14, kDirectNarrowWinogradInputs = 32;
// The fewest output channels a group that run directly: a block of 16 lanes at most half idle.
constexpr std::size_t kDirectFewestChannels = 8;
// A kernel of one row at stride 1 over rows of fewer than kDirectNarrowestRow outputs in a plane of
// at least kDirectNarrowRowsPlane (a Conv1d's samples side by side) runs by the GEMMs, whose
// columns are the whole plane's positions, where the direct kernels' 16 columns a row are mostly
// idle. Forward and backward, one thread (two): Conv1d 32 -> 64, kernel 5, over (8192, 32, 2)
// 13.5 -> 7.4 ms, (4096, 32, 4) 10.5 -> 8.6, kernel 3 7.8 -> 6.1; 16 -> 16 over (8192, 16, 4) 2.6 ->
// 2.2; a 1 × 3 Conv2d 32 -> 64 over (128, 32, 4, 4) 0.75 -> 0.61 (0.62 -> 0.40). On small planes
// the direct kernels keep them (their GEMMs have few columns): 16 -> 16 with 1 × 5 over 6 × 6
// planes took 0.34 ms directly, 0.58 by the GEMMs; 32 -> 32 with 1 × 3 0.85 / 1.06 at two threads;
// and so do strides of 2 (16 -> 16, kernel 5, over (4096, 16, 8): 1.9 ms directly, 2.9 by the GEMMs).
constexpr std::size_t kDirectNarrowestRow = 8, kDirectNarrowRowsPlane = 128;
#endif

// The lanes a group of og output channels takes in the direct kernels: og rounded up to a whole
// block of 16 (the weights, the bias and dY's transposed copy padded with zeros to it).
std::size_t direct_lanes(std::size_t og) { return (og + 15) / 16 * 16; }

// output_width: the width of the planes the pass writes, for a forward (or dX, a forward over dY);
// 0 for the weight gradient.
template <class T>
bool direct_fits(const Window& g, std::size_t cg, std::size_t og, std::size_t output_width = 0) {
#if TG_DIRECT_CONV
  if constexpr (std::is_same_v<T, float>) {
    if (g.kh == 1 && g.sw == 1 && g.ow < kDirectNarrowestRow && g.oh * g.ow >= kDirectNarrowRowsPlane) return false;
    const bool strided = g.sh > 1 || g.sw > 1, paired = !strided && g.oh > g.dh;  // rows in pairs
    const bool winograds = !strided && g.kh == 3 && g.kw == 3 && g.dh == 1 && g.dw == 1;  // Winograd's kernel
    const bool narrow = output_width != 0 && output_width <= kDirectNarrowWidth;
    const std::size_t lanes = direct_lanes(og);
    return og >= kDirectFewestChannels &&
           (lanes == kDirectChannels ||
            (lanes <= kDirectMaxChannels && cg <= (paired || strided ? kDirectMaxInputs : kDirectUnpairedInputs) &&
             cg * g.kh * g.kw >= kDirectMinTaps &&
             (!winograds || cg <= (narrow ? kDirectNarrowWinogradInputs : kDirectWinogradInputs) ||
              lanes <= kDirectWinogradChannels))) &&
           g.sh <= kDirectMaxStride && g.sw <= kDirectMaxStride && g.kw >= 2 && g.kw <= kDirectKernelWidth &&
           detail::sgemm_avx512_available();
  }
#endif
  (void)g, (void)cg, (void)og, (void)output_width;
  return false;
}

#if TG_DIRECT_CONV
// x, hidden from the optimiser. direct_weight_rows reads, for position ox + 1, all but one of the
// values it read for ox: GCC kept them from one to the next in registers, too many, and spilled
// them (perf of `Conv2d_groups4/1`: stack stores and reloads among the multiply-adds). An index
// it cannot see through makes each a broadcast load folded into its multiply-add: 4.5-4.6 → 4.2
// ms for 16 → 16 on 28×28. direct_piece's taps overlap the same way: GCC's registers measured as
// fast on the Zen 5 machine, but on Zen 4 (512-bit operations on 256-bit units) the broadcasts
// from registers take the shuffle unit beside the multiply-adds, and broadcasts folded into them
// ran faster (minimum of 100 steps, one thread: Conv2d(64, 64, 3, groups=4) on (64, 64, 14, 14)
// 8.5-9.3 → 7.7-8.7 ms, 16 → 16 on 28×28 8.1-9.1 → 7.6, 16 → 64 on 16×16 10.6-10.7 → 9.9-10.5,
// 3 → 16 on 32×32 2.62 → 2.46, a "valid" 6 → 16 5×5 even).
inline std::size_t opaque(std::size_t x) {
  asm("" : "+r"(x));
  return x;
}

// out[l][·] = bias + Σ over `channels` planes c and taps (i, j) of
// wt[(c, i, j)·ld + ·] · p[c][i·dh][l·SW + j·dw] for l < L (p: the padded planes from the piece's
// first input position, planes `size` apart; SW the column stride; · the 16 output channels of a
// block).
template <std::size_t L, std::size_t SW = 1>
__attribute__((target("avx512f"), noinline)) void direct_piece(const float* p, std::size_t channels, const Window& g,
                                                               const PaddedPlane& pp, const float* wt, std::size_t ld,
                                                               const float* bias, float* out) {
  __m512 acc[L];
  const __m512 init = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
#pragma GCC unroll 16
  for (std::size_t l = 0; l < L; ++l) acc[l] = init;
  for (std::size_t c = 0; c < channels; ++c, p += pp.size)
    for (std::size_t i = 0; i < g.kh; ++i)
      for (std::size_t j = 0; j < g.kw; ++j, wt += ld) {
        const __m512 w = _mm512_loadu_ps(wt);
        const float* q = p + opaque(i * g.dh * pp.width + j * g.dw);
#pragma GCC unroll 16
        for (std::size_t l = 0; l < L; ++l) acc[l] = _mm512_fmadd_ps(w, _mm512_set1_ps(q[l * SW]), acc[l]);
      }
#pragma GCC unroll 16
  for (std::size_t l = 0; l < L; ++l) _mm512_store_ps(out + l * kDirectChannels, acc[l]);
}

// The compile-time walk both by-value kernels share (direct_piece_row, direct_weight_rows): value M
// of a row of KW taps of dilation D meets tap J at column (M - J·D) / S, where that is whole and
// below N. Each value is broadcast once; the action's tap<N', J>(v) takes every pair it meets,
// taps in ascending order. (An action struct, not a lambda: GCC 12 fails on nested generic lambdas
// with `if constexpr` in a fold.)
template <std::size_t S, std::size_t D, std::size_t N, std::size_t M, std::size_t J, class Action>
__attribute__((target("avx512f"), always_inline)) inline void value_tap(const Action& action, __m512 v) {
  if constexpr (J * D <= M && (M - J * D) % S == 0 && (M - J * D) / S < N)
    action.template tap<(M - J * D) / S, J>(v);
}

template <std::size_t S, std::size_t D, std::size_t N, std::size_t M, class Action, std::size_t... J>
__attribute__((target("avx512f"), always_inline)) inline void value_taps(const float* q, const Action& action,
                                                                         std::index_sequence<J...>) {
  const __m512 v = _mm512_set1_ps(q[M]);
  (value_tap<S, D, N, M, J>(action, v), ...);
}

// Values q[0], q[1], ... of a row, (N - 1)·S + (KW - 1)·D + 1 of them, each into every column it meets.
template <std::size_t KW, std::size_t S, std::size_t D, std::size_t N, class Action, std::size_t... M>
__attribute__((target("avx512f"), always_inline)) inline void row_values(const float* q, const Action& action,
                                                                         std::index_sequence<M...>) {
  (value_taps<S, D, N, M>(q, action, std::make_index_sequence<KW>()), ...);
}

template <std::size_t KW, std::size_t S, std::size_t D, std::size_t N, class Action>
__attribute__((target("avx512f"), always_inline)) inline void row_values(const float* q, const Action& action) {
  row_values<KW, S, D, N>(q, action, std::make_index_sequence<(N - 1) * S + (KW - 1) * D + 1>());
}

struct ForwardTaps {  // column L += weight tap J · the value
  const __m512* w;
  __m512* acc;
  template <std::size_t L, std::size_t J>
  __attribute__((target("avx512f"), always_inline)) void tap(__m512 v) const {
    acc[L] = _mm512_fmadd_ps(w[J], v, acc[L]);
  }
};

// direct_piece for an undilated row of KW taps (dw = 1), input value by input value: a kernel
// row's KW weights in registers, each input value q[m] of the row broadcast once and multiplied
// into every column l it meets (m = l·SW + j), where direct_piece loaded it again for each tap.
// A kernel row costs KW + (L - 1)·SW + KW loads for L·KW multiply-adds (direct_piece: L·KW + KW).
// Each column's sum takes its taps in the same order as direct_piece's (j ascending): the same
// bits. Rows alone (Conv1d, strided rows, a row without a pair) run here. Forward and backward,
// one thread, minimum of 3-4 runs by turns: `Conv1d` (16 → 32, kernel 5) 0.90 → 0.77 ms,
// `Conv1d_stride2` 0.46 → 0.43, `Conv2d_stride2` 22.0 → 20.6, `Conv2d_stem_s2` 2.04 → 1.89,
// `ConvTranspose2d` 19.4 → 16.4.
template <std::size_t L, std::size_t KW, std::size_t SW>
__attribute__((target("avx512f"), noinline)) void direct_piece_row(const float* p, std::size_t channels,
                                                                   const Window& g, const PaddedPlane& pp,
                                                                   const float* wt, std::size_t ld,
                                                                   const float* bias, float* out) {
  __m512 acc[L];
  const __m512 init = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
#pragma GCC unroll 16
  for (std::size_t l = 0; l < L; ++l) acc[l] = init;
  const std::size_t row_step = g.dh * pp.width;
  for (std::size_t c = 0; c < channels; ++c, p += pp.size)
    for (std::size_t i = 0; i < g.kh; ++i, wt += KW * ld) {
      __m512 w[KW];
#pragma GCC unroll 8
      for (std::size_t j = 0; j < KW; ++j) w[j] = _mm512_loadu_ps(wt + j * ld);
      row_values<KW, SW, 1, L>(p + opaque(i * row_step), ForwardTaps{w, acc});
    }
#pragma GCC unroll 16
  for (std::size_t l = 0; l < L; ++l) _mm512_store_ps(out + l * kDirectChannels, acc[l]);
}

// direct_piece for two output rows at once: out[l] for the row of p, out[L + l] for the row below.
// Input row r of the kh + 1 the two read is tap row r of the first and r - 1 of the second, so
// each broadcast value feeds two multiply-adds (one per row's weights). With 2·L sums in
// registers (L at most kDirectPairColumns) a tap costs L + 2 loads for 2·L multiply-adds where
// direct_piece's cost L + 1 for L: alone on a core, 16 → 16 channels 5×5, 165-186 → 199-213
// GFLOP/s (peak 225).
template <std::size_t L>
__attribute__((target("avx512f"), noinline)) void direct_piece_pair(const float* p, std::size_t channels,
                                                                    const Window& g, const PaddedPlane& pp,
                                                                    const float* wt, std::size_t ld,
                                                                    const float* bias, float* out) {
  __m512 top[L], bottom[L];
  const __m512 init = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
#pragma GCC unroll 16
  for (std::size_t l = 0; l < L; ++l) top[l] = bottom[l] = init;
  const std::size_t row_taps = g.kw * ld;  // wt's stride from one tap row to the next
  const std::size_t row_step = g.dh * pp.width;  // from one tap row's input row to the next
  for (std::size_t c = 0; c < channels; ++c, p += pp.size, wt += g.kh * row_taps) {
    for (std::size_t j = 0; j < g.kw; ++j) {  // input row 0: the first row's tap row 0 only
      const __m512 w = _mm512_loadu_ps(wt + j * ld);
      const float* q = p + opaque(j * g.dw);
#pragma GCC unroll 16
      for (std::size_t l = 0; l < L; ++l) top[l] = _mm512_fmadd_ps(w, _mm512_set1_ps(q[l]), top[l]);
    }
    for (std::size_t r = 1; r < g.kh; ++r)
      for (std::size_t j = 0; j < g.kw; ++j) {
        const __m512 w_top = _mm512_loadu_ps(wt + r * row_taps + j * ld);
        const __m512 w_bottom = _mm512_loadu_ps(wt + (r - 1) * row_taps + j * ld);
        const float* q = p + opaque(r * row_step + j * g.dw);
#pragma GCC unroll 16
        for (std::size_t l = 0; l < L; ++l) {
          const __m512 v = _mm512_set1_ps(q[l]);
          top[l] = _mm512_fmadd_ps(w_top, v, top[l]);
          bottom[l] = _mm512_fmadd_ps(w_bottom, v, bottom[l]);
        }
      }
    for (std::size_t j = 0; j < g.kw; ++j) {  // input row kh: the second row's last tap row only
      const __m512 w = _mm512_loadu_ps(wt + (g.kh - 1) * row_taps + j * ld);
      const float* q = p + opaque(g.kh * row_step + j * g.dw);
#pragma GCC unroll 16
      for (std::size_t l = 0; l < L; ++l) bottom[l] = _mm512_fmadd_ps(w, _mm512_set1_ps(q[l]), bottom[l]);
    }
  }
#pragma GCC unroll 16
  for (std::size_t l = 0; l < L; ++l) {
    _mm512_store_ps(out + l * kDirectChannels, top[l]);
    _mm512_store_ps(out + (L + l) * kDirectChannels, bottom[l]);
  }
}

// The weight gradient of kernel rows of dilation 1 or 2 (DW; 1 at stride 2) takes B positions of
// an output row at a time: their B vectors of dY in registers, each padded value of a row's window
// broadcast once and multiplied into every sum (r, j) it meets (value m = ox·SW + j·DW), where the
// kernel for any stride and dilation (direct_weight_rows with SW = 0, below) loads it again for
// each tap. A row costs (B - 1)·SW + (KW - 1)·DW + 1 loads for B·KW multiply-adds (that kernel:
// B·KW), so fewer sums fit
// beside dY's vectors: R·KW at most kDirectValueSums. Each sum takes its positions in order
// either way: the same bits. Forward and backward, one thread, minimum of 3 runs by turns:
// `Conv2d_stride2` 21.7 → 19.8 ms, `Conv2d_groups4` 5.78 → 5.45, `Conv1d` 0.80 → 0.78,
// `Conv2d_5x5` even; 24 sums beside 6 positions measured the same or 2% slower. At dilation 2,
// `Conv2d_dilated` 8.54 → 7.91 ms at one thread, 4.50 → 4.28 at two.
constexpr std::size_t kDirectValueSums = 22, kDirectValueBlock = 8;

struct WeightTaps {  // tap J's sum += the value · dY at position B
  const __m512* d;
  __m512* acc;
  template <std::size_t B, std::size_t J>
  __attribute__((target("avx512f"), always_inline)) void tap(__m512 v) const {
    acc[J] = _mm512_fmadd_ps(v, d[B], acc[J]);
  }
};

// Positions [ox, ox + B) of the rows (at = ox·SW) into the sums.
template <std::size_t KW, std::size_t R, std::size_t B, std::size_t SW, std::size_t DW>
__attribute__((target("avx512f"), always_inline)) inline void weight_block(const float* const* row, std::size_t at,
                                                                           const float* dyt, std::size_t ld,
                                                                           __m512 (*acc)[KW]) {
  __m512 d[B];
#pragma GCC unroll 16
  for (std::size_t b = 0; b < B; ++b) d[b] = _mm512_loadu_ps(dyt + b * ld);
#pragma GCC unroll 16
  for (std::size_t r = 0; r < R; ++r)
    row_values<KW, SW, DW, B>(row[r] + at, WeightTaps{d, acc[r]});
}

// weight_block for the `rest` positions of a row (rest < T + 1).
template <std::size_t KW, std::size_t R, std::size_t SW, std::size_t DW, std::size_t T>
__attribute__((target("avx512f"), always_inline)) inline void weight_tail(std::size_t rest, const float* const* row,
                                                                          std::size_t at, const float* dyt,
                                                                          std::size_t ld, __m512 (*acc)[KW]) {
  if constexpr (T > 0) {
    if (rest == T)
      weight_block<KW, R, T, SW, DW>(row, at, dyt, ld, acc);
    else
      weight_tail<KW, R, SW, DW, T - 1>(rest, row, at, dyt, ld, acc);
  }
}

// part[(r, j)·ld + ·] += Σ over positions (oy, ox) of rows[r][oy·sh·width + ox·sw + j·dw] · dyt[(oy, ox)·ld + ·]
// for r < count, j < KW (rows past `count` repeat the last and are not stored; · the 16 output
// channels of a block). SW = 0: any stride and dilation, a load per tap and position; SW = 1 or 2
// (the column stride) and DW (the column dilation, 1 or 2): each value once for
// kDirectValueBlock positions (above).
template <std::size_t KW, std::size_t R, std::size_t SW = 0, std::size_t DW = 1>
__attribute__((target("avx512f"), noinline)) void direct_weight_rows(const float* const* rows, std::size_t count,
                                                                     const Window& g, std::size_t width,
                                                                     const float* dyt, std::size_t ld, float* part) {
  __m512 acc[R][KW];
  const float* row[R];
#pragma GCC unroll 24
  for (std::size_t r = 0; r < R; ++r) {
    row[r] = rows[std::min(r, count - 1)];
    for (std::size_t j = 0; j < KW; ++j) acc[r][j] = _mm512_setzero_ps();
  }
  for (std::size_t oy = 0; oy < g.oh; ++oy) {
    if constexpr (SW == 0) {
      for (std::size_t ox = 0; ox < g.ow; ++ox, dyt += ld) {
        const __m512 d = _mm512_loadu_ps(dyt);
        const std::size_t at = opaque(ox * g.sw);
#pragma GCC unroll 24
        for (std::size_t r = 0; r < R; ++r)
          for (std::size_t j = 0; j < KW; ++j)
            acc[r][j] = _mm512_fmadd_ps(_mm512_set1_ps(row[r][at + j * g.dw]), d, acc[r][j]);
      }
    } else {
      constexpr std::size_t B = kDirectValueBlock;
      std::size_t ox = 0;
      for (; ox + B <= g.ow; ox += B, dyt += B * ld)
        weight_block<KW, R, B, SW, DW>(row, opaque(ox * SW), dyt, ld, acc);
      weight_tail<KW, R, SW, DW, B - 1>(g.ow - ox, row, ox * SW, dyt, ld, acc);
      dyt += (g.ow - ox) * ld;
    }
#pragma GCC unroll 24
    for (std::size_t r = 0; r < R; ++r) row[r] += g.sh * width;
  }
#pragma GCC unroll 24
  for (std::size_t r = 0; r < R; ++r) {
    if (r >= count) break;
    for (std::size_t j = 0; j < KW; ++j) {
      float* to = part + (r * KW + j) * ld;
      _mm512_storeu_ps(to, _mm512_add_ps(_mm512_loadu_ps(to), acc[r][j]));
    }
  }
}

#endif

// The forward (direct_fits: cg → og channels a group): samples and groups in parallel, and
// rows of the output too when there are fewer than 8 of them. `wt` holds each group's weight
// transposed, (kk, lanes) with lanes = direct_lanes(og), and `b` (if any) each group's bias in
// `lanes` values, both zero past og.
void direct_forward(const float* x, const float* wt, const float* b, const Window& g, std::size_t out_channels,
                    std::size_t groups, float* y) {
#if TG_DIRECT_CONV
  const std::size_t cg = g.c / groups, og = out_channels / groups, kk = cg * g.kh * g.kw, plane = g.oh * g.ow;
  const std::size_t lanes = direct_lanes(og);
  const std::size_t units = g.n * groups;
  if (units == 0) return;  // an empty batch
  const PaddedPlane pp = padded_plane<float>(g);
  const std::size_t cuts = units >= 8 ? 1 : std::min(g.oh, (8 + units - 1) / units);
  const std::size_t rows = (g.oh + cuts - 1) / cuts, blocks = (g.oh + rows - 1) / rows;
  const std::size_t grain = blocks > 1 ? 1 : samples_per_task(g, og * kk);
  // At stride 1 rows go two at a time (direct_piece_pair), in pieces as even as 14 columns at most
  // allow (28: 14 + 14; 16: 8 + 8; 32: 11 + 11 + 10).
  const std::size_t pieces = (g.ow + kDirectPairColumns - 1) / kDirectPairColumns;
  const std::size_t pair_columns = (g.ow + pieces - 1) / pieces;
  parallel::for_range(units * blocks, grain, [&](std::size_t first, std::size_t last) {
    std::vector<float, Allocator<float>> padded(cg * pp.size);  // zeros (pad_plane writes only x's values)
    Scratch<float> piece(2 * kDirectPairColumns * kDirectChannels);
    std::size_t padded_unit = units;
    for (std::size_t task = first; task < last; ++task) {
      const std::size_t u = task / blocks, grp = u % groups, y0 = task % blocks * rows;
      if (u != padded_unit)
        for (std::size_t c = 0; c < cg; ++c)
          pad_plane(x + (u * cg + c) * g.h * g.w, g.h, g.w, std::ptrdiff_t(g.ph), std::ptrdiff_t(g.pw), pp,
                    padded.data() + c * pp.size);
      padded_unit = u;
      for (std::size_t k = 0; k < og; k += kDirectChannels) {  // a block of 16 lanes, `count` of them channels
        const std::size_t count = std::min(kDirectChannels, og - k);
        float* out = y + (u / groups * out_channels + grp * og + k) * plane;
        const float* w = wt + grp * kk * lanes + k;
        const float* bias = b ? b + grp * lanes + k : nullptr;
        const std::size_t y_end = std::min(g.oh, y0 + rows);
        const auto alone = [&](std::size_t oy) {  // one row, pieces of up to 16 columns
          for (std::size_t x0 = 0; x0 < g.ow; x0 += kDirectColumns) {
            const std::size_t n = std::min(kDirectColumns, g.ow - x0);
            const float* from = padded.data() + oy * g.sh * pp.width + x0 * g.sw;
            with_count<kDirectColumns>(n, [&]<std::size_t L>() {
              if (g.dw == 1)  // undilated rows: each input value loaded once
                with_count<kDirectKernelWidth>(g.kw, [&]<std::size_t KW>() {
                  if constexpr (KW >= 2) {
                    if (g.sw == 1)
                      direct_piece_row<L, KW, 1>(from, cg, g, pp, w, lanes, bias, piece.data());
                    else
                      direct_piece_row<L, KW, 2>(from, cg, g, pp, w, lanes, bias, piece.data());
                  }
                });
              else if (g.sw == 1)
                direct_piece<L>(from, cg, g, pp, w, lanes, bias, piece.data());
              else
                direct_piece<L, 2>(from, cg, g, pp, w, lanes, bias, piece.data());
            });
            kernels::transpose_matrix(piece.data(), n, count, kDirectChannels, out + oy * g.ow + x0, plane);
          }
        };
        if (g.sh > 1 || g.sw > 1) {  // strided: rows alone
          for (std::size_t oy = y0; oy < y_end; ++oy) alone(oy);
          continue;
        }
        // Rows oy and oy + dh make a pair (what one reads through tap row i + 1 the other reads
        // through tap row i): in 2·dh rows from `base`, the first dh are the pairs' top rows; a
        // row whose partner lies past the block goes alone.
        for (std::size_t base = y0; base < y_end; base += 2 * g.dh)
          for (std::size_t oy = base; oy < std::min(base + g.dh, y_end); ++oy) {
            if (oy + g.dh >= y_end) {
              alone(oy);
              continue;
            }
            for (std::size_t x0 = 0; x0 < g.ow; x0 += pair_columns) {
              const std::size_t n = std::min(pair_columns, g.ow - x0);
              with_count<kDirectPairColumns>(n, [&]<std::size_t L>() {
                direct_piece_pair<L>(padded.data() + oy * pp.width + x0, cg, g, pp, w, lanes, bias, piece.data());
              });
              for (std::size_t row = 0; row < 2; ++row)
                kernels::transpose_matrix(piece.data() + row * n * kDirectChannels, n, count, kDirectChannels,
                                          out + (oy + row * g.dh) * g.ow + x0, plane);
            }
          }
      }
    }
  });
#else
  (void)x, (void)wt, (void)b, (void)g, (void)out_channels, (void)groups, (void)y;
#endif
}

// One sample's group into the weight gradient's transposed partial (direct_fits): part (kk, lanes)
// += its sums, lanes = direct_lanes(og) (the lanes past og sum zeros). `padded` (cg padded planes,
// holding zeros or an earlier sample's planes) and `dyt` (plane × lanes, zero past og) are the
// caller's scratch.
void direct_weight_grad(const float* x, const float* dy, const Window& g, std::size_t cg, std::size_t og,
                        float* padded, float* dyt, float* part) {
#if TG_DIRECT_CONV
  const PaddedPlane pp = padded_plane<float>(g);
  const std::size_t plane = g.oh * g.ow;
  for (std::size_t c = 0; c < cg; ++c)
    pad_plane(x + c * g.h * g.w, g.h, g.w, std::ptrdiff_t(g.ph), std::ptrdiff_t(g.pw), pp, padded + c * pp.size);
  const std::size_t lanes = direct_lanes(og);
  kernels::transpose_matrix(dy, og, plane, plane, dyt, lanes);
  const std::size_t total = cg * g.kh;  // rows (c, i) of the kernel, R at a time
  // Rows of column dilation 1 or 2 (1 at stride 2) take each value once for several positions.
  const auto run = [&]<std::size_t KW, std::size_t R, bool ByValue>() {
    std::array<const float*, R> rows;
    for (std::size_t r0 = 0; r0 < total; r0 += R) {
      const std::size_t count = std::min(R, total - r0);
      for (std::size_t r = 0; r < count; ++r)
        rows[r] = padded + (r0 + r) / g.kh * pp.size + (r0 + r) % g.kh * g.dh * pp.width;
      for (std::size_t o = 0; o < og; o += kDirectChannels) {  // a block of 16 lanes
        float* to = part + r0 * KW * lanes + o;
        if constexpr (!ByValue)
          direct_weight_rows<KW, R>(rows.data(), count, g, pp.width, dyt + o, lanes, to);
        else if (g.sw == 1 && g.dw == 1)
          direct_weight_rows<KW, R, 1>(rows.data(), count, g, pp.width, dyt + o, lanes, to);
        else if (g.sw == 1)
          direct_weight_rows<KW, R, 1, 2>(rows.data(), count, g, pp.width, dyt + o, lanes, to);
        else
          direct_weight_rows<KW, R, 2>(rows.data(), count, g, pp.width, dyt + o, lanes, to);
      }
    }
  };
  // R, or one less where that cuts the kernel's rows with less waste.
  const auto rows_of = [&]<std::size_t KW, std::size_t R, bool ByValue>() {
    const auto padded_rows = [&](std::size_t r) { return (total + r - 1) / r * r; };
    if (padded_rows(R - 1) < padded_rows(R))
      run.template operator()<KW, R - 1, ByValue>();
    else
      run.template operator()<KW, R, ByValue>();
  };
  with_count<kDirectKernelWidth>(g.kw, [&]<std::size_t KW>() {
    if (g.dw > 2 || (g.dw == 2 && g.sw > 1))
      rows_of.template operator()<KW, std::min(kDirectRows, kDirectSums / KW), false>();
    else
      rows_of.template operator()<KW, std::min(kDirectRows, kDirectValueSums / KW), true>();
  });
#else
  (void)x, (void)dy, (void)g, (void)cg, (void)og, (void)padded, (void)dyt, (void)part;
#endif
}

// ---- Winograd F(2×2, 3×3) ---------------------------------------------------------------------
// A 3×3 convolution with stride 1 and dilation 1 computes each 2×2 block of an output plane from
// the 4×4 block of the input under it with 16 multiplications instead of 36 (Lavin & Gray, "Fast
// Algorithms for Convolutional Neural Networks", 2016). In one dimension, F(2, 3):
//   v = Bᵀd = (d0 - d2, d1 + d2, d2 - d1, d1 - d3)       the input block d0..d3
//   u = G g = (g0, (g0 + g1 + g2)/2, (g0 - g1 + g2)/2, g2)  the kernel g0..g2
//   y = Aᵀ(u ⊙ v) = (m0 + m1 + m2, m1 - m2 - m3)            = (Σ d[k]g[k], Σ d[k+1]g[k])
// and in two, the same along the rows and then the columns. Summed over the input channels, the
// 16 products of a block become 16 GEMMs, one per position ξ of the 4×4 block:
//   M[ξ] (out × tiles) = U[ξ] (out × in) · V[ξ] (in × tiles),
// with U the transformed kernels and V the transformed input blocks of a few samples side by side.
// The forward, dX (a 3×3 convolution of dY with each kernel turned by 180° and the channels
// swapped) and dW (the adjoint of the forward's steps, winograd_weight_grad) take this path when
// both channel counts are at least kWinogradChannels (with fewer the GEMMs are too thin to pay
// for the transforms); grouped, each group's GEMMs run on their own (U block-diagonal) with at
// least kWinogradGroupChannels channels a group. F(2×2, 3×3) is the variant with the smallest rounding error (its
// transforms only add, subtract and halve): the results stay within float rounding of the
// definition (tested against it in double). Measured (bench/, 3×3 "same", forward and backward,
// one thread, against im2col): 8 -> 8 channels on 28×28 7.6 -> 6.4 ms, 16 -> 16 on 28×28 24.7 ->
// 17.1, 8 -> 64 on 28×28 20.7 -> 18.5, 32 -> 64 on 14×14 38 -> 24, 64 -> 64 on 32×32 24.5 -> 12.3,
// 128 -> 128 on 7×7 11.5 -> 7.3. With a single input channel (Conv2d 1 -> 32) the GEMMs have
// depth 1: im2col. A step with 8 to 16 output channels a group, or 17 to 32 from at most 64 input
// channels (33-64 from at most 16; a forward or dX writing planes up to 14 wide, from at most 32), runs directly instead (direct_fits, whose section has the
// measurements), in float32 on AVX-512.
constexpr std::size_t kWinogradChannels = 8;
// Grouped: each group's GEMMs are a group's channels deep; from 32 they pay for the transforms
// (Conv2d(64, 64, 3, groups=2) on (64, 64, 14, 14), forward and backward at one thread: 10.1-12.0
// ms by im2col, two 32-channel Winograd convolutions 7.8-8.9; at 16 channels a group the two are
// even, 6.8-11.8 and 6.9-10.1 on a noisy host).
constexpr std::size_t kWinogradGroupChannels = 32;

constexpr std::size_t kWinogradBlockTiles = 256;  // tiles per block: V and M about 1 MB at 32 -> 64 channels
// Small planes (a 4×4 plane is 4 tiles): a block of 2 samples made GEMMs 8 columns wide, each
// reading all of U for them, and the weight gradient a 1 MB partial per block (128 -> 128
// channels) that took longer to zero and add up than its GEMMs. Blocks of at least 64 tiles and
// the partials below: Conv2d(128, 128, 3) on (8, 128, 4, 4) 1.82 -> 1.13 ms at one thread.
constexpr std::size_t kWinogradMinTiles = 64;
// A block's 16 GEMMs (one per ξ, each writing its own matrix) are shared between the threads from
// this many multiply-adds each (detail::gemm's own threshold): with few blocks, the blocks alone
// left a thread idle.
constexpr std::size_t kWinogradParallelWork = std::size_t(1) << 21;

// Runs gemm(ξ) for ξ = 0..15, in parallel when each GEMM has `work` multiply-adds and the 16 are
// worth sharing. Each ξ's product is its own: the same bits whatever runs them.
template <class Gemm>
void for_each_position(std::size_t work, Gemm&& gemm) {
  parallel::for_range(16, std::max<std::size_t>(1, kWinogradParallelWork / std::max<std::size_t>(1, work)),
                      [&](std::size_t first, std::size_t last) {
                        for (std::size_t xi = first; xi < last; ++xi) gemm(xi);
                      });
}

bool winograd_fits(const Window& g, std::size_t groups, std::size_t in_channels, std::size_t out_channels) {
  const std::size_t fewest = std::min(in_channels, out_channels) / groups;  // per group
  return g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.ph <= 2 && g.pw <= 2 &&
         fewest >= (groups == 1 ? kWinogradChannels : kWinogradGroupChannels);
}

// (G g Gᵀ) of a 3×3 kernel g, its 16 values in ξ order; V is T or a batch of T (kernels side by
// side, one per lane).
template <class V, class T>
void transform_kernel(const V (&g)[3][3], T half, V (&u)[16]) {
  V t[4][3];  // G g
  for (std::size_t j = 0; j < 3; ++j) {
    t[0][j] = g[0][j];
    t[1][j] = (g[0][j] + g[1][j] + g[2][j]) * half;
    t[2][j] = (g[0][j] - g[1][j] + g[2][j]) * half;
    t[3][j] = g[2][j];
  }
  for (std::size_t a = 0; a < 4; ++a) {  // (G g) Gᵀ
    u[a * 4 + 0] = t[a][0];
    u[a * 4 + 1] = (t[a][0] + t[a][1] + t[a][2]) * half;
    u[a * 4 + 2] = (t[a][0] - t[a][1] + t[a][2]) * half;
    u[a * 4 + 3] = t[a][2];
  }
}

// U[ξ][o][c] = (G g Gᵀ)[ξ] for the kernels w (out, in, 3, 3), `in` a group's input channels.
// With for_dx, the kernels of dX = dY ⋆ W': W'[c][o] = W[o][c] turned by 180°, so each group's
// block of U is (in, out / groups): computed as (out, in) and each group's (out / groups, in) block
// of each ξ's matrix transposed. The kernels of a batch of input channels are transformed side by
// side, each ξ stored as a batch: one kernel at a time, 16 scattered stores each (and, for dX, a
// store every `out` values) took a fifth of Conv2d(256, 256, 3)'s step on 7×7.
template <class T>
Scratch<T> winograd_kernels(const T* w, std::size_t out, std::size_t in, std::size_t groups, bool for_dx) {
  using B = kernels::Batch<T>;
  constexpr std::size_t W = B::size;
  const std::size_t matrix = out * in;
  Scratch<T> u(16 * matrix);  // every value written below
  const T half = T(0.5);
  auto tap = [for_dx](std::size_t i, std::size_t j) { return for_dx ? 8 - (i * 3 + j) : i * 3 + j; };
  // In parallel over output channels (each kernel alone: the same bits for any thread count).
  parallel::for_range(out, std::max<std::size_t>(1, parallel::kGrain / (16 * in)), [&](std::size_t first,
                                                                                       std::size_t last) {
    for (std::size_t o = first; o < last; ++o) {
      std::size_t c = 0;
      for (; c + W <= in; c += W) {
        const T* k = w + (o * in + c) * 9;  // W kernels of 9 taps
        alignas(64) T taps[9][W];  // taps[t][lane] = k[lane · 9 + t], through registers
        kernels::transpose_matrix(k, W, 9, 9, &taps[0][0], W);
        B g[3][3], v[16];
        for (std::size_t i = 0; i < 3; ++i)
          for (std::size_t j = 0; j < 3; ++j) g[i][j] = B::load_aligned(taps[tap(i, j)]);
        transform_kernel(g, half, v);
        for (std::size_t xi = 0; xi < 16; ++xi) v[xi].store_unaligned(u.data() + xi * matrix + o * in + c);
      }
      for (; c < in; ++c) {
        const T* k = w + (o * in + c) * 9;
        T g[3][3], v[16];
        for (std::size_t i = 0; i < 3; ++i)
          for (std::size_t j = 0; j < 3; ++j) g[i][j] = k[tap(i, j)];
        transform_kernel(g, half, v);
        for (std::size_t xi = 0; xi < 16; ++xi) u[xi * matrix + o * in + c] = v[xi];
      }
    }
  });
  if (!for_dx) return u;
  Scratch<T> transposed(16 * matrix);
  const std::size_t og = out / groups, block = og * in;
  parallel::for_range(16 * groups, std::max<std::size_t>(1, parallel::kGrain / block), [&](std::size_t first,
                                                                                           std::size_t last) {
    for (std::size_t m = first; m < last; ++m) {
      const std::size_t xi = m / groups, grp = m % groups;
      kernels::transpose_matrix(u.data() + xi * matrix + grp * block, og, in, in,
                                transposed.data() + xi * matrix + grp * block, og);
    }
  });
  return transposed;
}

// out[0, n) = even[0], odd[0], even[1], odd[1], ...
template <class T>
void interleave(const T* even, const T* odd, std::size_t n, T* out) {
  TG_INDEPENDENT_ITERATIONS
  for (std::size_t i = 0; i < n / 2; ++i) {
    out[2 * i] = even[i];
    out[2 * i + 1] = odd[i];
  }
  if (n % 2) out[n - 1] = even[n / 2];
}

// out[0, n) = in[0], in[2], in[4], ...
template <class T>
void deinterleave(const T* in, std::size_t n, T* out) {
  TG_INDEPENDENT_ITERATIONS
  for (std::size_t i = 0; i < n; ++i) out[i] = in[2 * i];
}

// even[i] = in[2i], odd[i] = in[2i + 1] for the n values of in (odd[last] = 0 when n is odd).
template <class T>
void split_pairs(const T* in, std::size_t n, T* even, T* odd) {
  deinterleave(in, (n + 1) / 2, even);
  deinterleave(in + 1, n / 2, odd);
  if (n % 2) odd[n / 2] = T(0);
}

// One convolution by F(2×2, 3×3): y[s][o] = Σ_c x[s][c] ⋆ kernel[o][c] (+ bias[o]), the input
// (samples, in, ih, iw) padded by `top` rows and `left` columns (and zeros beyond its end), the
// output (samples, out, oh, ow). u is from winograd_kernels.
struct WinogradShape {
  std::size_t samples, in, ih, iw, top, left, out, oh, ow;
  std::size_t groups = 1;  // U holds each group's (out / groups, in / groups) block per ξ
};

// The tiling of one winograd_conv: th × tw tiles of 2×2 outputs per plane; the padded input
// plane the tiles read (hp rows of 2·half columns) is kept as its even and its odd columns (two
// hp × half planes), so that gathering one position of every tile is a run of contiguous values.
struct WinogradTiling {
  std::size_t th, tw, tiles, hp, half;
  std::size_t per_block;  // samples per block of GEMM columns
  std::size_t stride;     // of the rows of d: a block's columns plus room for the last chunk
};
constexpr std::size_t kGatherChunk = 8;  // values per fixed-size copy of a gather

// What winograd_input writes, allocated once per parallel task: `split`, the zeroed plane pair
// (its data region is rewritten per plane; the zeros around it stay; room at the end for the last
// chunk of a gather to read past the odd plane), `d`, 16 rows of gathered block values, and `v`,
// the result.
template <class T>
struct WinogradInput {
  std::vector<T, Allocator<T>> split;
  Scratch<T> d, v;  // written before they are read
  WinogradInput(const WinogradShape& z, const WinogradTiling& p)
      : split(2 * p.hp * p.half + kGatherChunk, T(0)), d(16 * p.stride), v(16 * z.in * p.per_block * p.tiles) {}
};

// Small planes, fewer than kGatherChunk tiles a row (float32 on AVX-512): the runs winograd_input
// copies are a few values long, and splitting each plane and copying its runs in chunks cost more
// than the transform (on 4×4 planes, 2×2 tiles: 23% of the step of Conv2d(128, 128, 3)). There
// each of the 16 values of 16 tiles at once is gathered from the input itself, masked (zero in
// the padding), and transformed in registers: the same operations in the same order, so the same
// bits. (Offsets are 32-bit: a block's samples must span fewer than 2^31 values.)
template <class T>
bool gathers_tiles(const WinogradShape& z, const WinogradTiling& p, std::size_t count) {
#if defined(__AVX512F__)
  return std::is_same_v<T, float> && p.tw < kGatherChunk && count * z.in * z.ih * z.iw < (std::size_t(1) << 31);
#else
  (void)z, (void)p, (void)count;
  return false;
#endif
}

#if defined(__AVX512F__)
void winograd_input_gathered(const float* x, const WinogradShape& z, const WinogradTiling& p, std::size_t s0,
                             std::size_t count, float* v) {
  const std::size_t cols = count * p.tiles, batches = (cols + 15) / 16, plane = z.ih * z.iw;
  // Per column t (sample s, tile (ty, tx)): its block's corner, padded (0, 0), as an offset from
  // sample s0's plane of the channel; per batch of 16 columns and tap (r, q), the lanes whose tap
  // lies inside the input.
  std::vector<std::int32_t> corner(batches * 16, 0);
  std::vector<std::uint16_t> inside(batches * 16, 0);
  for (std::size_t t = 0; t < cols; ++t) {
    const std::size_t s = t / p.tiles, tile = t % p.tiles;
    const std::ptrdiff_t y = 2 * std::ptrdiff_t(tile / p.tw) - std::ptrdiff_t(z.top);
    const std::ptrdiff_t x0 = 2 * std::ptrdiff_t(tile % p.tw) - std::ptrdiff_t(z.left);
    corner[t] = std::int32_t(std::ptrdiff_t(s * z.in * plane) + y * std::ptrdiff_t(z.iw) + x0);
    for (std::ptrdiff_t r = 0; r < 4; ++r)
      for (std::ptrdiff_t q = 0; q < 4; ++q)
        if (y + r >= 0 && y + r < std::ptrdiff_t(z.ih) && x0 + q >= 0 && x0 + q < std::ptrdiff_t(z.iw))
          inside[t / 16 * 16 + std::size_t(r * 4 + q)] |= std::uint16_t(1u << (t % 16));
  }
  const std::size_t vs = z.in * cols;
  for (std::size_t c = 0; c < z.in; ++c) {
    const float* base = x + (s0 * z.in + c) * plane;
    float* vc = v + c * cols;
    for (std::size_t b = 0; b < batches; ++b) {
      const __m512i at = _mm512_loadu_si512(corner.data() + b * 16);
      __m512 d[4][4];
      for (std::size_t r = 0; r < 4; ++r)
        for (std::size_t q = 0; q < 4; ++q)
          d[r][q] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), __mmask16(inside[b * 16 + r * 4 + q]),
                                             _mm512_add_epi32(at, _mm512_set1_epi32(std::int32_t(r * z.iw + q))),
                                             base, 4);
      __m512 e[4][4];  // Bᵀ d, then (Bᵀ d) B as winograd_input's loop
      for (std::size_t q = 0; q < 4; ++q) {
        e[0][q] = _mm512_sub_ps(d[0][q], d[2][q]);
        e[1][q] = _mm512_add_ps(d[1][q], d[2][q]);
        e[2][q] = _mm512_sub_ps(d[2][q], d[1][q]);
        e[3][q] = _mm512_sub_ps(d[1][q], d[3][q]);
      }
      const __mmask16 lanes = kernels::first_lanes16(cols - b * 16);
      float* out = vc + b * 16;
      for (std::size_t a = 0; a < 4; ++a) {
        _mm512_mask_storeu_ps(out + (a * 4 + 0) * vs, lanes, _mm512_sub_ps(e[a][0], e[a][2]));
        _mm512_mask_storeu_ps(out + (a * 4 + 1) * vs, lanes, _mm512_add_ps(e[a][1], e[a][2]));
        _mm512_mask_storeu_ps(out + (a * 4 + 2) * vs, lanes, _mm512_sub_ps(e[a][2], e[a][1]));
        _mm512_mask_storeu_ps(out + (a * 4 + 3) * vs, lanes, _mm512_sub_ps(e[a][1], e[a][3]));
      }
    }
  }
}
#endif

// V[ξ][c][t] = (Bᵀ d B)[ξ] (into in.v) for the 4×4 input block d of each tile t = (s, ty, tx) of
// samples [s0, s0 + count).
template <class T>
void winograd_input(const T* x, const WinogradShape z, const WinogradTiling p, std::size_t s0, std::size_t count,
                    WinogradInput<T>& in) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>)
    if (gathers_tiles<T>(z, p, count)) {
      winograd_input_gathered(x, z, p, s0, count, in.v.data());
      return;
    }
#endif
  T* split = in.split.data();
  T* d = in.d.data();
  T* v = in.v.data();
  const std::size_t cols = count * p.tiles, copy_w = std::min(z.iw, 2 * p.half - z.left);
  const std::size_t first_even = z.left % 2;  // the first input column that lands on an even column
  for (std::size_t c = 0; c < z.in; ++c) {
    for (std::size_t s = 0; s < count; ++s) {
      const T* plane = x + ((s0 + s) * z.in + c) * z.ih * z.iw;
      for (std::size_t r = 0; r < z.ih && r + z.top < p.hp; ++r) {
        const T* src = plane + r * z.iw;
        T* even = split + (r + z.top) * p.half;
        T* odd = even + p.hp * p.half;
        deinterleave(src + first_even, (copy_w - first_even + 1) / 2, even + (z.left + first_even) / 2);
        if (copy_w > 1 - first_even)
          deinterleave(src + 1 - first_even, (copy_w - (1 - first_even) + 1) / 2, odd + (z.left + 1 - first_even) / 2);
      }
      // d[r·4 + q][t] = padded[2·ty + r][2·tx + q]: a run of tw values per tile row, copied in
      // fixed chunks (a call to memmove per run of a few values cost more than the transform);
      // the last chunk runs over into the next tile row's place, written after it, or into the
      // room at the end of the row of d.
      for (std::size_t r = 0; r < 4; ++r)
        for (std::size_t q = 0; q < 4; ++q) {
          const T* from = split + ((q % 2) * p.hp + r) * p.half + q / 2;
          T* to = d + (r * 4 + q) * p.stride + s * p.tiles;
          for (std::size_t ty = 0; ty < p.th; ++ty)
            for (std::size_t k = 0; k < p.tw; k += kGatherChunk)
              std::memcpy(to + ty * p.tw + k, from + 2 * ty * p.half + k, kGatherChunk * sizeof(T));
        }
    }
    // Bᵀ d B, tile by tile (vectorised over the tiles).
    T* vc = v + c * cols;
    const std::size_t vs = z.in * cols, ds = p.stride;
    TG_INDEPENDENT_ITERATIONS
    for (std::size_t t = 0; t < cols; ++t) {
      T e[4][4];  // Bᵀ d: down the columns of the block
      for (std::size_t q = 0; q < 4; ++q) {
        const T d0 = d[q * ds + t], d1 = d[(4 + q) * ds + t], d2 = d[(8 + q) * ds + t], d3 = d[(12 + q) * ds + t];
        e[0][q] = d0 - d2;
        e[1][q] = d1 + d2;
        e[2][q] = d2 - d1;
        e[3][q] = d1 - d3;
      }
      for (std::size_t a = 0; a < 4; ++a) {  // (Bᵀ d) B: along the rows
        vc[(a * 4 + 0) * vs + t] = e[a][0] - e[a][2];
        vc[(a * 4 + 1) * vs + t] = e[a][1] + e[a][2];
        vc[(a * 4 + 2) * vs + t] = e[a][2] - e[a][1];
        vc[(a * 4 + 3) * vs + t] = e[a][1] - e[a][3];
      }
    }
  }
}

// y = Aᵀ M A (plus the bias) for the tiles of samples [s0, s0 + count): the four outputs of every
// tile (vectorised over the tiles) into `outputs`, then interleaved into the output rows that exist.
template <class T>
void winograd_output(const T* m, const WinogradShape z, const WinogradTiling p, std::size_t s0, std::size_t count,
                     const T* bias, T* outputs, T* y) {
  const std::size_t cols = count * p.tiles, ms = z.out * cols;
  T *y00 = outputs, *y01 = y00 + cols, *y10 = y01 + cols, *y11 = y10 + cols;
  for (std::size_t o = 0; o < z.out; ++o) {
    const T add = bias ? bias[o] : T(0);
    const T* mo = m + o * cols;
    TG_INDEPENDENT_ITERATIONS
    for (std::size_t t = 0; t < cols; ++t) {
      T s0b[4], s1b[4];  // Aᵀ M: down the columns of the block
      for (std::size_t b = 0; b < 4; ++b) {
        const T m0 = mo[b * ms + t], m1 = mo[(4 + b) * ms + t], m2 = mo[(8 + b) * ms + t], m3 = mo[(12 + b) * ms + t];
        s0b[b] = m0 + m1 + m2;
        s1b[b] = m1 - m2 - m3;
      }
      y00[t] = s0b[0] + s0b[1] + s0b[2] + add;  // (Aᵀ M) A: along the rows
      y01[t] = s0b[1] - s0b[2] - s0b[3] + add;
      y10[t] = s1b[0] + s1b[1] + s1b[2] + add;
      y11[t] = s1b[1] - s1b[2] - s1b[3] + add;
    }
    for (std::size_t s = 0; s < count; ++s) {
      T* yo = y + ((s0 + s) * z.out + o) * z.oh * z.ow;
      for (std::size_t ty = 0; ty < p.th; ++ty) {
        const std::size_t t = s * p.tiles + ty * p.tw;
        interleave(y00 + t, y01 + t, z.ow, yo + 2 * ty * z.ow);
        if (2 * ty + 1 < z.oh) interleave(y10 + t, y11 + t, z.ow, yo + (2 * ty + 1) * z.ow);
      }
    }
  }
}

WinogradTiling winograd_tiling(const WinogradShape& z) {
  WinogradTiling p;
  p.th = (z.oh + 1) / 2;
  p.tw = (z.ow + 1) / 2;
  p.tiles = p.th * p.tw;
  p.hp = 2 * p.th + 2;
  p.half = p.tw + 1;
  // Samples per block: about kWinogradBlockTiles tiles, and at least four blocks when there are
  // enough samples (work for two threads), but not fewer than kWinogradMinTiles tiles a block
  // where the samples have them (the threads then share a block's 16 GEMMs instead). Fixed by the
  // sizes alone: the bits never depend on the thread count.
  const std::size_t fewest = (kWinogradMinTiles + p.tiles - 1) / p.tiles;
  p.per_block = std::max<std::size_t>(
      1, std::min(kWinogradBlockTiles / p.tiles, std::max((z.samples + 3) / 4, fewest)));
  p.stride = p.per_block * p.tiles + kGatherChunk;
  return p;
}

template <class T>
void winograd_conv(const T* x, const WinogradShape& z, const T* u, const T* bias, T* y) {
  const WinogradTiling p = winograd_tiling(z);
  const std::size_t blocks = (z.samples + p.per_block - 1) / p.per_block;
  const std::size_t in_g = z.in / z.groups, out_g = z.out / z.groups;
  const std::size_t work = p.per_block * p.tiles * z.in * out_g;
  parallel::for_range(blocks, std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(1, work)),
                      [&](std::size_t first, std::size_t last) {
    const std::size_t max_cols = p.per_block * p.tiles;
    WinogradInput<T> in(z, p);
    Scratch<T> m(16 * z.out * max_cols), outputs(4 * max_cols);
    for (std::size_t block = first; block < last; ++block) {
      const std::size_t s0 = block * p.per_block, count = std::min(p.per_block, z.samples - s0), cols = count * p.tiles;
      winograd_input(x, z, p, s0, count, in);
      for_each_position(z.out * cols * in_g, [&](std::size_t xi) {
        for (std::size_t grp = 0; grp < z.groups; ++grp)
          detail::gemm<T>(false, false, out_g, cols, in_g, T(1), u + (xi * z.out + grp * out_g) * in_g, in_g,
                          in.v.data() + (xi * z.in + grp * in_g) * cols, cols, T(0),
                          m.data() + (xi * z.out + grp * out_g) * cols, cols);
      });
      winograd_output(m.data(), z, p, s0, count, bias, outputs.data(), y);
    }
  });
}

// The weight gradient of the convolution winograd_conv computes, by the adjoint of each of its
// steps: with M = U ⊙ V per tile and y = Aᵀ M A,
//   dM = A dy Aᵀ (per 2×2 block of dY, zeros past its end),  dU[ξ] = Σ_t dM[ξ][·][t] · V[ξ][·][t]ᵀ
// (16 GEMMs, out × in, summed over the tiles), and dW = Gᵀ dU G per kernel. The samples are cut
// into at most 16 ranges by size only, each transforming at least as many values as its partial
// holds (a partial is 16 out × in matrices to write and add up: 128 -> 128 channels on 4×4 planes
// spent more time on four of them than on their GEMMs). Each range is summed in order into its own
// partial dU (in parallel), the partials added in range order (sum_of_blocks): the same bits for
// any thread count. A single range is dU itself.
template <class T>
void winograd_weight_grad(const T* x, const T* dy, const WinogradShape& z, T* dw) {
  const WinogradTiling p = winograd_tiling(z);
  const std::size_t in_g = z.in / z.groups, out_g = z.out / z.groups;
  const std::size_t matrix = z.out * in_g, max_cols = p.per_block * p.tiles;
  const std::size_t transformed = p.tiles * (z.in + z.out);  // values a sample's V and dM take per ξ
  const std::size_t range = std::max({p.per_block, (z.samples + 15) / 16, (matrix + transformed - 1) / transformed});
  Scratch<T> du(16 * matrix);
  sum_of_blocks(z.samples, range, 16 * matrix, du.data(), [&](std::size_t first, std::size_t last, T* part) {
    WinogradInput<T> in(z, p);  // (the range's first GEMMs write its part, β = 0; the others add)
    Scratch<T> dm(16 * z.out * max_cols), corners(4 * max_cols);
    for (std::size_t s0 = first; s0 < last; s0 += p.per_block) {
      const std::size_t count = std::min(p.per_block, last - s0), cols = count * p.tiles;
      winograd_input(x, z, p, s0, count, in);
      // dM[ξ][o][t] = (A dy Aᵀ)[ξ] for the 2×2 block of dY under tile t.
      const std::size_t ms = z.out * cols;
      T *g00 = corners.data(), *g01 = g00 + cols, *g10 = g01 + cols, *g11 = g10 + cols;
      for (std::size_t o = 0; o < z.out; ++o) {
        for (std::size_t s = 0; s < count; ++s) {
          const T* plane = dy + ((s0 + s) * z.out + o) * z.oh * z.ow;
          for (std::size_t ty = 0; ty < p.th; ++ty) {
            const std::size_t t = s * p.tiles + ty * p.tw;
            split_pairs(plane + 2 * ty * z.ow, z.ow, g00 + t, g01 + t);
            if (2 * ty + 1 < z.oh) {
              split_pairs(plane + (2 * ty + 1) * z.ow, z.ow, g10 + t, g11 + t);
            } else {
              std::fill(g10 + t, g10 + t + p.tw, T(0));
              std::fill(g11 + t, g11 + t + p.tw, T(0));
            }
          }
        }
        T* mo = dm.data() + o * cols;
        TG_INDEPENDENT_ITERATIONS
        for (std::size_t t = 0; t < cols; ++t) {
          const T r[4][2] = {{g00[t], g01[t]},  // A dy: down the columns of the block
                             {g00[t] + g10[t], g01[t] + g11[t]},
                             {g00[t] - g10[t], g01[t] - g11[t]},
                             {-g10[t], -g11[t]}};
          for (std::size_t a = 0; a < 4; ++a) {  // (A dy) Aᵀ: along the rows
            mo[(a * 4 + 0) * ms + t] = r[a][0];
            mo[(a * 4 + 1) * ms + t] = r[a][0] + r[a][1];
            mo[(a * 4 + 2) * ms + t] = r[a][0] - r[a][1];
            mo[(a * 4 + 3) * ms + t] = -r[a][1];
          }
        }
      }
      for_each_position(z.out * in_g * cols, [&](std::size_t xi) {
        for (std::size_t grp = 0; grp < z.groups; ++grp)
          detail::gemm<T>(false, true, out_g, in_g, cols, T(1), dm.data() + xi * ms + grp * out_g * cols, cols,
                          in.v.data() + (xi * z.in + grp * in_g) * cols, cols, s0 == first ? T(0) : T(1),
                          part + xi * matrix + grp * out_g * in_g, in_g);
      });
    }
  });
  // dW = Gᵀ dU G, G = (1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1).
  const T half = T(0.5);
  parallel::for_range(matrix, std::max<std::size_t>(1, parallel::kGrain / 16), [&](std::size_t first,
                                                                                 std::size_t last) {
    for (std::size_t k = first; k < last; ++k) {
      T e[3][4];  // Gᵀ dU
      for (std::size_t b = 0; b < 4; ++b) {
        const T u0 = du[b * matrix + k], u1 = du[(4 + b) * matrix + k];
        const T u2 = du[(8 + b) * matrix + k], u3 = du[(12 + b) * matrix + k];
        e[0][b] = u0 + (u1 + u2) * half;
        e[1][b] = (u1 - u2) * half;
        e[2][b] = (u1 + u2) * half + u3;
      }
      T* out = dw + k * 9;
      for (std::size_t i = 0; i < 3; ++i) {  // (Gᵀ dU) G
        out[i * 3 + 0] = e[i][0] + (e[i][1] + e[i][2]) * half;
        out[i * 3 + 1] = (e[i][1] - e[i][2]) * half;
        out[i * 3 + 2] = (e[i][1] + e[i][2]) * half + e[i][3];
      }
    }
  });
}

// ---- Winograd F(4, 3) along rows --------------------------------------------------------------
// A 1-D convolution (a Conv1d, or a Conv2d with a 1 × 3 kernel, row by row: Inception's
// factorised 1 × 3, or a height of 1) with kernel 3, stride 1 and dilation 1 computes each 4
// outputs of a row from the 6 inputs under them with 6 multiplications
// instead of 12 (Lavin & Gray's F(4, 3), interpolation points 0, ±1, ±2 and ∞):
//   v = Bᵀd  (the input run d0..d5)       u = G g  (the kernel g0..g2)       y = Aᵀ(u ⊙ v)
//   Bᵀ = ( 4  0 -5  0  1  0;   G = ( 1/4    0     0  ;   Aᵀ = (1  1  1  1  1  0;
//          0 -4 -4  1  1  0;         -1/6 -1/6  -1/6 ;          0  1 -1  2 -2  0;
//          0  4 -4 -1  1  0;         -1/6  1/6  -1/6 ;          0  1  1  4  4  0;
//          0 -2 -1  2  1  0;         1/24  1/12  1/6 ;          0  1 -1  8 -8  1)
//          0  2 -1 -2  1  0;         1/24 -1/12  1/6 ;
//          0  4  0 -5  0  1)          0     0     1  )
// Summed over the input channels, each of the 6 positions ξ is one GEMM over a block of tiles:
//   M[ξ] (out × tiles) = U[ξ] (out × in) · V[ξ] (in × tiles),
// as the 2-D Winograd above. The forward, dX (the forward of dY with each kernel reversed and the
// channels swapped, padded by 2 - p) and dW (the adjoint, row_winograd_weight_grad) take it when
// both channel counts are at least kRowWinogradChannels a group (kWinogradGroupChannels when
// grouped), the rows make at least kRowWinogradMinOutputs outputs a channel and the direct
// kernels do not take the layer. F(4, 3) rather than F(2, 3): half the
// multiply-adds of im2col instead of two thirds; its rounding error, float32 against a double
// definition, 64 channels over random rows: 1.0e-6 of the largest output, direct 0.66e-6 (the
// kernel's transform and dW's are computed in double). Tiles are taken in blocks of up to
// kRowWinogradBlockTiles (fewer over many channels: block_tiles) across samples and along rows (a
// long row is cut, not taken whole).
// Measured against im2col and the taps' GEMMs, forward and backward by turns in one process
// (minimum of 20, one thread / two): 64 -> 64 on (16, 64, 500) 3.31 -> 2.31 ms / 1.64 -> 1.16,
// 32 -> 32 0.93 -> 0.75, 128 -> 128 on (32, 128, 100) 5.33 -> 3.78, 256 -> 256 on (64, 256, 32)
// 12.9 -> 9.9, one row of 16000 at 64 -> 64 7.68 -> 4.84 / 5.03 -> 2.51, 64 -> 64 in 2 groups
// 1.84 -> 1.61; 16 -> 128 1.82 -> 1.74 and 17 -> 24 even; 8 -> 128 1.25 -> 1.43 (slower: hence
// at least 16 channels).
constexpr std::size_t kRowWinogradChannels = 16;
constexpr std::size_t kRowWinogradBlockTiles = 256;  // V and M 390 KB each at 64 -> 64 channels
// Outputs per channel (rows × row length, the shorter of the input's and the output's) below
// which the transforms cost more than the multiplications they save: short rows of few samples
// keep the GEMMs (one thread, forward and backward: 128 -> 128 over (1, 128, 10) 0.09 ms by the
// GEMMs, 0.68 by Winograd before its kernel transform was mended; 64 -> 64 over (1, 64, 128)
// 0.068 against 0.081, 24 -> 24 over (32, 24, 20) 0.087 against 0.112; (8, 64, 64) even).
constexpr std::size_t kRowWinogradMinOutputs = 1024;
// Over planes of several rows (a 1 × 3 kernel) the GEMMs of im2col take whole planes at once, and
// each short row costs the transforms about as much as a row of a Conv1d: some 27 cycles a row and
// channel and 1.5 a tile (fitted to the measurements below), against 6 · in · out / 32 cycles of
// multiply-adds a tile saves (in and out a group's channels). So a plane's rows take F(4, 3) where
// they have at least kRowWinogradPlaneTiles tiles and (in · out / (in + out) - 8) · tiles reaches
// kRowWinogradPlaneWork. Measured (forward and backward, GEMMs against F(4, 3), one thread): planes
// of 8 rows, 8192 outputs a channel, rows of 2, 4, 8, 16 and 32 values: 64 -> 128 channels 0.41×,
// 0.60×, 0.76×, 0.92×, 1.23× as fast; 128 -> 128 0.50×, 0.71×, 0.94×, 1.10×, 1.40×; 256 -> 256
// 0.71×, 0.95×, 1.28×, 1.43×, 1.69×. At two threads rows of fewer than 8 tiles lost where one
// thread gained (128 -> 128 over (16, 128, 16, 16) 1.15× / 0.95×, 384 -> 384 over (32, 384, 8, 8)
// 1.20× / 0.96×, 96 -> 96 over (4, 96, 28, 28) 1.06× / 0.98×). Taken: (8, 128, 16, 29) 1.29× /
// 1.10×, (8, 128, 40, 100) 1.54× / 1.50×, (4, 64 -> 128, 80, 50) 1.32× / 1.27×, (16, 96, 8, 32)
// 1.36× / 1.70×, (4, 32 -> 128, 8, 64) 1.30× / 1.23×. (A Conv1d's own GEMMs over many short rows go
// a sample at a time, far slower than a plane's: rows of 2 at 64 -> 128 took 58 ms against
// F(4, 3)'s 25, so a height of 1 keeps the rules above alone.)
constexpr std::size_t kRowWinogradPlaneTiles = 8;
constexpr std::size_t kRowWinogradPlaneWork = 192;

// F(4, 3)'s tiles along a row of `outputs` outputs.
std::size_t row_tiles(std::size_t outputs) { return (outputs + 3) / 4; }

// (in · out / (in + out) - 8) · tiles for `in` and `out` channels (a group's) and rows of `tiles`
// tiles: the multiply-adds F(4, 3) saves over the cost of its transforms, in units of their cost
// (in · out / (in + out) >= 8: both are at least 16).
std::size_t row_winograd_work(std::size_t in, std::size_t out, std::size_t tiles) {
  return (in * out / (in + out) - 8) * tiles;
}

bool row_winograd_fits(const Window& g, std::size_t groups, std::size_t in_channels, std::size_t out_channels) {
  const std::size_t in = in_channels / groups, out = out_channels / groups;  // a group's
  const bool fits = g.kh == 1 && g.ph == 0 && g.sh == 1 && g.oh == g.h && g.kw == 3 && g.sw == 1 && g.dw == 1 &&
                    g.pw <= 2 && std::min(in, out) >= (groups == 1 ? kRowWinogradChannels : kWinogradGroupChannels) &&
                    g.n * g.h * std::min(g.w, g.ow) >= kRowWinogradMinOutputs;
  if (!fits || g.h == 1) return fits;
  const std::size_t tiles = row_tiles(g.ow);
  return tiles >= kRowWinogradPlaneTiles && row_winograd_work(in, out, tiles) >= kRowWinogradPlaneWork;
}

// U[ξ] for the kernels w (out, in, 1, 3), `in` a group's input channels, as winograd_kernels:
// U[ξ][o][c], or with for_dx each group's block (in, out / groups) of the kernels reversed,
// computed as (out, in) and each group's block transposed (written in place at a stride of
// out / groups, 6 · out · in scattered stores took 0.6 ms of a 0.7 ms step of 128 -> 128 channels
// over 10 steps). In double, by multiplications with 1/6 and 1/24.
template <class T>
Scratch<T> row_winograd_kernels(const T* w, std::size_t out, std::size_t in, std::size_t groups, bool for_dx) {
  const std::size_t matrix = out * in, og = out / groups;
  const double sixth = 1.0 / 6, twenty_fourth = 1.0 / 24;
  Scratch<T> u(6 * matrix);  // every value written below
  for (std::size_t k = 0; k < matrix; ++k) {
    const T* tap = w + k * 3;
    const double g0 = double(for_dx ? tap[2] : tap[0]), g1 = double(tap[1]), g2 = double(for_dx ? tap[0] : tap[2]);
    u[k] = T(g0 * 0.25);
    u[matrix + k] = T(-(g0 + g1 + g2) * sixth);
    u[2 * matrix + k] = T(-(g0 - g1 + g2) * sixth);
    u[3 * matrix + k] = T((g0 + 2 * g1 + 4 * g2) * twenty_fourth);
    u[4 * matrix + k] = T((g0 - 2 * g1 + 4 * g2) * twenty_fourth);
    u[5 * matrix + k] = T(g2);
  }
  if (!for_dx) return u;
  Scratch<T> transposed(6 * matrix);
  const std::size_t block = og * in;
  for (std::size_t xi = 0; xi < 6; ++xi)
    for (std::size_t grp = 0; grp < groups; ++grp)
      kernels::transpose_matrix(u.data() + xi * matrix + grp * block, og, in, in,
                                transposed.data() + xi * matrix + grp * block, og);
  return transposed;
}

// One convolution by F(4, 3): y[s][o] = Σ_c x[s][c] ⋆ kernel[o][c] (+ bias[o]), rows of `length`
// values padded by `left` zeros (and zeros past their end), outputs `out_length` long.
// Over planes of `height` rows (a 1 × 3 kernel of a Conv2d), each plane row is a row of its own:
// `samples` counts the rows of every sample (N · height), and row s of channel c lies at
// row(s, c, channels) rows from the start.
struct RowWinogradShape {
  std::size_t samples, in, length, left, out, out_length;
  std::size_t groups = 1, height = 1;
  std::size_t tiles() const { return row_tiles(out_length); }  // a row's
  // Tiles a block: the tiles split evenly into blocks of at most kRowWinogradBlockTiles, and into at
  // least 4 blocks (of at least 64 tiles) where there are enough, so that two threads (or four)
  // share the work evenly: by size only, the same blocks for any thread count. (At two threads,
  // blocks of 256 and a last one of what was left: 128 -> 128 over one 32 x 32 plane, 256 tiles,
  // ran in one block at 0.83× the GEMMs' speed, in 4 at 1.25×; (32, 128, 100), 800 tiles, had blocks
  // of 256, 256, 256 and 32, now 4 of 200. One thread within 2%, but (1, 96, 8, 128) in 4 blocks of
  // 64 instead of one: 6% slower.)
  std::size_t block_tiles() const {
    const std::size_t total = samples * tiles();
    const std::size_t blocks = std::max({std::size_t(1), (total + kRowWinogradBlockTiles - 1) / kRowWinogradBlockTiles,
                                         std::min<std::size_t>(4, total / 64)});
    return std::max<std::size_t>(1, (total + blocks - 1) / blocks);
  }
  std::size_t row(std::size_t s, std::size_t c, std::size_t channels) const {
    return ((s / height) * channels + c) * height + s % height;
  }
};

// Calls run(s, a, b, col) for each sample s whose row the tiles [first, last) (numbered across
// samples) reach: its tiles [a, b), the first of them column col of the block.
template <class Run>
void for_each_row_run(std::size_t tiles, std::size_t first, std::size_t last, Run&& run) {
  for (std::size_t s = first / tiles; s * tiles < last; ++s) {
    const std::size_t a = std::max(first, s * tiles) - s * tiles, b = std::min(last, (s + 1) * tiles) - s * tiles;
    run(s, a, b, s * tiles + a - first);
  }
}

// V[ξ][c][t - first] = (Bᵀ d)[ξ] for the input run d under each tile t of [first, last), tiles
// numbered across samples. A run of a row's tiles reads its padded row by phases (values 4i + r,
// r = 0..3, side by side), so that the transform runs over contiguous values.
template <class T>
void row_winograd_input(const T* x, const RowWinogradShape& z, std::size_t first, std::size_t last, T* phases,
                        T* v) {
  const std::size_t tiles = z.tiles(), cols = last - first, vs = z.in * cols;
  for (std::size_t c = 0; c < z.in; ++c)
    for_each_row_run(tiles, first, last, [&](std::size_t s, std::size_t a, std::size_t b, std::size_t col) {
      const std::size_t n = b - a + 1;  // each phase's values: tiles a..b-1 and the next tile's first two
      const T* row = x + z.row(s, c, z.in) * z.length;
      T *p0 = phases, *p1 = phases + n, *p2 = phases + 2 * n, *p3 = phases + 3 * n;
      // Padded position 4(a + i) + r is input value 4(a + i) + r - left. Runs [inside, end) of
      // four values that all exist are copied without checks (a load group of 4 the compiler
      // vectorises); the rest, at most one run at the start and a few at the end, value by value.
      const std::ptrdiff_t length = std::ptrdiff_t(z.length), left = std::ptrdiff_t(z.left);
      const std::size_t inside = a == 0 && left > 0 ? 1 : 0;
      const std::ptrdiff_t whole = (length + left) / 4 - std::ptrdiff_t(a);  // runs ending inside the row
      const std::size_t end = std::clamp<std::ptrdiff_t>(whole, std::ptrdiff_t(inside), std::ptrdiff_t(n));
      auto checked = [&](std::size_t i) {
        for (std::size_t r = 0; r < 4; ++r) {
          const std::ptrdiff_t j = std::ptrdiff_t(4 * (a + i) + r) - left;
          phases[r * n + i] = j >= 0 && j < length ? row[j] : T(0);
        }
      };
      for (std::size_t i = 0; i < inside; ++i) checked(i);
      const T* src = row + (std::ptrdiff_t(4 * (a + inside)) - left);
      TG_INDEPENDENT_ITERATIONS
      for (std::size_t i = inside; i < end; ++i) {
        const T* q = src + 4 * (i - inside);
        p0[i] = q[0];
        p1[i] = q[1];
        p2[i] = q[2];
        p3[i] = q[3];
      }
      for (std::size_t i = end; i < n; ++i) checked(i);
      T* vc = v + c * cols + col;
      TG_INDEPENDENT_ITERATIONS
      for (std::size_t t = 0; t + 1 < n; ++t) {
        const T d0 = p0[t], d1 = p1[t], d2 = p2[t], d3 = p3[t], d4 = p0[t + 1], d5 = p1[t + 1];
        vc[t] = T(4) * d0 - T(5) * d2 + d4;
        vc[vs + t] = -T(4) * (d1 + d2) + (d3 + d4);
        vc[2 * vs + t] = T(4) * (d1 - d2) + (d4 - d3);
        vc[3 * vs + t] = T(2) * (d3 - d1) + (d4 - d2);
        vc[4 * vs + t] = T(2) * (d1 - d3) + (d4 - d2);
        vc[5 * vs + t] = T(4) * d1 - T(5) * d3 + d5;
      }
    });
}

template <class T>
void row_winograd_conv(const T* x, const RowWinogradShape& z, const T* u, const T* bias, T* y) {
  const std::size_t tiles = z.tiles(), total = z.samples * tiles, per_block = z.block_tiles();
  const std::size_t in_g = z.in / z.groups, out_g = z.out / z.groups;
  const std::size_t blocks = (total + per_block - 1) / per_block;
  const std::size_t work = per_block * z.in * out_g * 6;
  parallel::for_range(blocks, std::max<std::size_t>(1, parallel::kGrain / work), [&](std::size_t first_block,
                                                                                    std::size_t last_block) {
    Scratch<T> phases(4 * (per_block + 1)), v(6 * z.in * per_block), m(6 * z.out * per_block), outputs(4 * per_block);
    for (std::size_t block = first_block; block < last_block; ++block) {
      const std::size_t first = block * per_block, last = std::min(total, first + per_block);
      const std::size_t cols = last - first, ms = z.out * cols;
      row_winograd_input(x, z, first, last, phases.data(), v.data());
      for (std::size_t xi = 0; xi < 6; ++xi)
        for (std::size_t grp = 0; grp < z.groups; ++grp)
          detail::gemm<T>(false, false, out_g, cols, in_g, T(1), u + (xi * z.out + grp * out_g) * in_g, in_g,
                          v.data() + (xi * z.in + grp * in_g) * cols, cols, T(0), m.data() + xi * ms + grp * out_g * cols,
                          cols);
      // y = Aᵀ M (plus the bias), the four outputs of each tile side by side, then into the rows.
      T *y0 = outputs.data(), *y1 = y0 + cols, *y2 = y1 + cols, *y3 = y2 + cols;
      for (std::size_t o = 0; o < z.out; ++o) {
        const T add = bias ? bias[o] : T(0);
        const T* mo = m.data() + o * cols;
        TG_INDEPENDENT_ITERATIONS
        for (std::size_t t = 0; t < cols; ++t) {
          const T m0 = mo[t], m1 = mo[ms + t], m2 = mo[2 * ms + t], m3 = mo[3 * ms + t], m4 = mo[4 * ms + t],
                  m5 = mo[5 * ms + t];
          const T sum12 = m1 + m2, diff12 = m1 - m2, sum34 = m3 + m4, diff34 = m3 - m4;
          y0[t] = m0 + sum12 + sum34 + add;
          y1[t] = diff12 + T(2) * diff34 + add;
          y2[t] = sum12 + T(4) * sum34 + add;
          y3[t] = diff12 + T(8) * diff34 + m5 + add;
        }
        for_each_row_run(tiles, first, last, [&](std::size_t s, std::size_t a, std::size_t b, std::size_t col) {
          T* yo = y + z.row(s, o, z.out) * z.out_length;
          const std::size_t full = std::min(b, z.out_length / 4);  // tiles whose 4 outputs all exist
          const T *f0 = y0 + col - a, *f1 = y1 + col - a, *f2 = y2 + col - a, *f3 = y3 + col - a;
          TG_INDEPENDENT_ITERATIONS
          for (std::size_t t = a; t < full; ++t) {
            yo[4 * t] = f0[t];
            yo[4 * t + 1] = f1[t];
            yo[4 * t + 2] = f2[t];
            yo[4 * t + 3] = f3[t];
          }
          for (std::size_t t = std::max(a, full); t < b; ++t) {  // the row's last tile, cut short
            const T* f[4] = {f0, f1, f2, f3};
            for (std::size_t i = 0; 4 * t + i < z.out_length; ++i) yo[4 * t + i] = f[i][t];
          }
        });
      }
    }
  });
}

// dW of the convolution row_winograd_conv computes, by the adjoint of its steps: with
// M = U ⊙ V per tile and y = Aᵀ M,  dM = A dy (per run of 4 dY values, zeros past the row's end),
// dU[ξ] = Σ_t dM[ξ][·][t] · V[ξ][·][t]ᵀ (6 GEMMs, out × in, summed over the tiles), and dW = Gᵀ dU per
// kernel (in double). The tiles are cut into at most 16 ranges by size only, each summed in order
// into its own partial dU (in parallel) and the partials added in range order (sum_of_blocks): the
// same bits for any thread count.
template <class T>
void row_winograd_weight_grad(const T* x, const T* dy, const RowWinogradShape& z, T* dw) {
  const std::size_t tiles = z.tiles(), total = z.samples * tiles, per_block = z.block_tiles();
  const std::size_t in_g = z.in / z.groups, out_g = z.out / z.groups, matrix = z.out * in_g;
  // a range: whole blocks, at least 1/16 of the tiles, and at least as many values transformed as its partial holds
  const std::size_t per_tile = z.in + z.out;
  std::size_t range = std::max({per_block, (total + 15) / 16, (matrix + per_tile - 1) / per_tile});
  range = (range + per_block - 1) / per_block * per_block;
  Scratch<T> du(6 * matrix);
  sum_of_blocks(total, range, 6 * matrix, du.data(), [&](std::size_t range_first, std::size_t range_last, T* part) {
    Scratch<T> phases(4 * (per_block + 1)), v(6 * z.in * per_block), dm(6 * z.out * per_block);
    for (std::size_t first = range_first; first < range_last; first += per_block) {
      const std::size_t last = std::min(range_last, first + per_block), cols = last - first;
      const std::size_t ms = z.out * cols;
      row_winograd_input(x, z, first, last, phases.data(), v.data());
      for (std::size_t o = 0; o < z.out; ++o) {
        T* mo = dm.data() + o * cols;
        for_each_row_run(tiles, first, last, [&](std::size_t s, std::size_t a, std::size_t b, std::size_t col) {
          const T* row = dy + z.row(s, o, z.out) * z.out_length;
          // A dy for tile t from its four dY values g (zeros past the row's end).
          auto tile = [&](std::size_t t, T g0, T g1, T g2, T g3) __attribute__((always_inline)) {
            const std::size_t k = t - a + col;
            const T even = g0 + g2, odd = g1 + g3, even4 = g0 + T(4) * g2, odd2 = T(2) * g1 + T(8) * g3;
            mo[k] = g0;
            mo[ms + k] = even + odd;
            mo[2 * ms + k] = even - odd;
            mo[3 * ms + k] = even4 + odd2;
            mo[4 * ms + k] = even4 - odd2;
            mo[5 * ms + k] = g3;
          };
          const std::size_t full = std::min(b, z.out_length / 4);
          TG_INDEPENDENT_ITERATIONS
          for (std::size_t t = a; t < full; ++t) tile(t, row[4 * t], row[4 * t + 1], row[4 * t + 2], row[4 * t + 3]);
          for (std::size_t t = std::max(a, full); t < b; ++t) {
            T g[4] = {};
            for (std::size_t i = 0; 4 * t + i < z.out_length; ++i) g[i] = row[4 * t + i];
            tile(t, g[0], g[1], g[2], g[3]);
          }
        });
      }
      for (std::size_t xi = 0; xi < 6; ++xi)
        for (std::size_t grp = 0; grp < z.groups; ++grp)
          detail::gemm<T>(false, true, out_g, in_g, cols, T(1), dm.data() + xi * ms + grp * out_g * cols, cols,
                          v.data() + (xi * z.in + grp * in_g) * cols, cols, first == range_first ? T(0) : T(1),
                          part + xi * matrix + grp * out_g * in_g, in_g);
    }
  });
  // dW = Gᵀ dU, in double.
  for (std::size_t k = 0; k < matrix; ++k) {
    double d[6];
    for (std::size_t xi = 0; xi < 6; ++xi) d[xi] = double(du[xi * matrix + k]);
    T* out = dw + k * 3;
    out[0] = T(d[0] / 4 - (d[1] + d[2]) / 6 + (d[3] + d[4]) / 24);
    out[1] = T((d[2] - d[1]) / 6 + (d[3] - d[4]) / 12);
    out[2] = T((d[3] + d[4] - d[1] - d[2]) / 6 + d[5]);
  }
}

// The forward where the GEMM gathers its columns (gathers_columns): per sample and group, B's row
// (c, i, j) is tap (i, j)'s phase plane of channel c moved by the tap's flat shift, masked; `wt`
// holds each group's weight transposed, y is written whole. With fewer than 8 samples each
// sample's GEMM is also cut into blocks of columns (multiples of 32, about 512 each) that the
// threads share, the phases split first: a single image runs on every thread, and the bits do not
// depend on the cut (each output is the same kernel's sum over the same k). (One 224² image,
// ResNet's 7×7/2 stem: im2col and packing its columns were 24% of the forward.)
void gathered_forward(const float* x, const float* wt, const float* b, const Window& g, const Phases& p,
                      std::size_t out_channels, std::size_t groups, float* y) {
#if defined(__x86_64__)
  const std::size_t cg = g.c / groups, og = out_channels / groups, kk = cg * g.kh * g.kw, plane = g.oh * g.ow;
  const std::size_t units = g.n * groups, floats = phase_floats(p, cg);
  const std::size_t cuts = g.n >= 8 ? 1 : std::max<std::size_t>(1, plane / 512);
  const std::size_t columns = ((plane + cuts - 1) / cuts + 31) / 32 * 32, blocks = (plane + columns - 1) / columns;
  Scratch<float> split(blocks > 1 ? units * floats : 0);
  // Each group's weight packed for the GEMM once, not once per sample (`Conv2d_down_s2`: 4%).
  const std::size_t packed = detail::sgemm_avx512_packed_a_floats(og, kk);
  Scratch<float> a(groups * packed);
  for (std::size_t grp = 0; grp < groups; ++grp)
    detail::sgemm_avx512_pack_a(true, og, kk, wt + grp * og * kk, og, a.data() + grp * packed);
  if (blocks > 1 && !p.identity)
    parallel::for_range(units, 1, [&](std::size_t first, std::size_t last) {
      for (std::size_t u = first; u < last; ++u)
        split_phases(x + u * cg * g.h * g.w, cg, g, p, split.data() + u * floats);
    });
  const std::size_t grain = blocks > 1 ? 1 : samples_per_task(g, out_channels * kk) * groups;
  parallel::for_range(units * blocks, grain, [&](std::size_t first, std::size_t last) {
    Scratch<float> own(blocks > 1 ? 0 : floats);
    std::vector<std::uintptr_t> rows(kk);
    std::vector<const std::uint32_t*> masks(kk);
    for (std::size_t task = first; task < last; ++task) {
      const std::size_t u = task / blocks, s = u / groups, grp = u % groups, column = task % blocks * columns;
      const std::size_t n = std::min(columns, plane - column);
      const float* xs = x + u * cg * g.h * g.w;
      const float* planes =
          blocks > 1 ? (p.identity ? xs : split.data() + u * floats) : column_source(xs, cg, g, p, own.data());
      for (std::size_t row = 0; row < kk; ++row) {
        const Phases::Tap& tap = p.taps[row % p.taps.size()];
        const std::size_t c = row / p.taps.size();
        // (modular arithmetic: shifts go back too; an address, not a pointer: see MaskedRows)
        rows[row] = reinterpret_cast<std::uintptr_t>(planes + (tap.phase * cg + c) * p.plane) +
                    std::uintptr_t((tap.run.shift + std::ptrdiff_t(column)) * std::ptrdiff_t(sizeof(float)));
        masks[row] = p.masks.data() + (row % p.taps.size()) * ((plane + 31) / 32) + column / 32;
      }
      float* out = y + (s * out_channels + grp * og) * plane + column;
      if (b)
        for (std::size_t o = 0; o < og; ++o) std::fill(out + o * plane, out + o * plane + n, b[grp * og + o]);
      detail::sgemm_avx512_rows(og, n, kk, 1.0f, a.data() + grp * packed, {rows.data(), masks.data()},
                                b ? 1.0f : 0.0f, out, plane);
    }
  });
#else
  (void)x, (void)wt, (void)b, (void)g, (void)p, (void)out_channels, (void)groups, (void)y;
#endif
}

template <class T>
xt::xarray<T> conv2d_forward(const Tensor& input, const Tensor& weight, const Tensor& bias, const Window& g,
                             std::size_t out_channels, std::size_t groups) {
  const std::size_t cg = g.c / groups, og = out_channels / groups, kk = cg * g.kh * g.kw, plane = g.oh * g.ow;
  xt::xarray<T> out = xt::xarray<T>::from_shape({g.n, out_channels, g.oh, g.ow});
  const T* x = input.data<T>();
  const T* w = weight.data<T>();
  const T* b = bias.defined() ? bias.data<T>() : nullptr;
  T* y = out.data();
  if (depthwise(g, groups)) return depthwise_forward(x, w, b, g, out_channels);
  if (row_winograd_fits(g, groups, g.c, out_channels) && !direct_fits<T>(g, cg, og, g.ow)) {
    const auto u = row_winograd_kernels(w, out_channels, cg, groups, false);
    row_winograd_conv(x, {g.n * g.h, g.c, g.w, g.pw, out_channels, g.ow, groups, g.h}, u.data(), b, y);
    return out;
  }
  if (winograd_fits(g, groups, g.c, out_channels) && !direct_fits<T>(g, cg, og, g.ow)) {
    const auto u = winograd_kernels(w, out_channels, cg, groups, false);
    winograd_conv(x, {g.n, g.c, g.h, g.w, g.ph, g.pw, out_channels, g.oh, g.ow, groups}, u.data(), b, y);
    return out;
  }
  if (direct_fits<T>(g, cg, og, g.ow)) {  // (kk, lanes) a group, and the bias in `lanes` a group, zero past og
    if constexpr (std::is_same_v<T, float>) {
      const std::size_t lanes = direct_lanes(og);
      Buffer<T> wt(groups * kk * lanes, T(0)), bias(b ? groups * lanes : 0, T(0));
      for (std::size_t grp = 0; grp < groups; ++grp) {
        kernels::transpose_matrix(w + grp * og * kk, og, kk, kk, wt.data() + grp * kk * lanes, lanes);
        if (b) std::copy(b + grp * og, b + (grp + 1) * og, bias.data() + grp * lanes);
      }
      direct_forward(x, wt.data(), b ? bias.data() : nullptr, g, out_channels, groups, y);
    }
    return out;
  }
  // Each group's weight transposed once, (kk, og): the GEMMs read it as op(A) = Wᵀᵀ, whose packing
  // copies rows where W as it lies would be transposed again for every sample (`Conv2d_stride2`:
  // a third as many values as the columns, 4% of its time).
  Scratch<T> wt(out_channels * kk);
  for (std::size_t grp = 0; grp < groups; ++grp)
    kernels::transpose_matrix(w + grp * og * kk, og, kk, kk, wt.data() + grp * og * kk, og);
  const bool in_place = identity_columns(g);
  const Phases phases = phases_of(g);
  if (!in_place && gathers_columns<T>(g, og)) {
    if constexpr (std::is_same_v<T, float>) gathered_forward(x, wt.data(), b, g, phases, out_channels, groups, y);
    return out;
  }
  parallel::for_range(g.n, samples_per_task(g, out_channels * kk), [&](std::size_t first, std::size_t last) {
    Scratch<T> col(in_place ? 0 : kk * plane), split(in_place ? 0 : phase_floats(phases, cg));
    for (std::size_t s = first; s < last; ++s)
      for (std::size_t grp = 0; grp < groups; ++grp) {
        const T* xs = x + (s * g.c + grp * cg) * g.h * g.w;
        T* ys = y + (s * out_channels + grp * og) * plane;
        if (b) {
          for (std::size_t o = 0; o < og; ++o) std::fill(ys + o * plane, ys + (o + 1) * plane, b[grp * og + o]);
        }
        const T* wg = wt.data() + grp * og * kk;
        if (!in_place) columns(xs, cg, g, phases, split.data(), col.data());
        detail::gemm<T>(true, false, og, plane, kk, T(1), wg, og, in_place ? xs : col.data(), plane, b ? T(1) : T(0),
                        ys, plane);
      }
  });
  return out;
}

// db[o] = Σ over samples and positions of dy[s, o], in double; dy is (n, out_channels, plane).
template <class T>
Tensor bias_grad(const T* dy, std::size_t n, std::size_t out_channels, std::size_t plane) {
  // Channels in parallel; a task reads its planes sample by sample (in memory order), each
  // channel's sum taking its samples in order: the same bits for any thread count. (One channel
  // at a time, on one thread: 6% of `Conv2d_1x1`'s step; in parallel, by turns, 10.6 → 10.4 ms at
  // one thread, 6.3 → 6.0 at two.)
  xt::xarray<T> db = xt::xarray<T>::from_shape({out_channels});
  parallel::for_range(out_channels, std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(1, n * plane)),
                      [&](std::size_t first, std::size_t last) {
    std::vector<double> totals(last - first, 0.0);
    for (std::size_t s = 0; s < n; ++s)
      for (std::size_t o = first; o < last; ++o) {
        const T* p = dy + (s * out_channels + o) * plane;
        totals[o - first] += kernels::lane_sum(plane, [p](auto at) { return at(p); });
      }
    for (std::size_t o = first; o < last; ++o) db(o) = T(totals[o - first]);
  });
  return make_tensor<T>(std::move(db));
}

// The input gradient of a stride-1 convolution is itself a convolution: with the kernel turned
// by 180° and its in and out channels swapped, W'[c][o][i][j] = W[o][c][kh-1-i][kw-1-j],
//   dX[c, y, x] = Σ_o,i,j W'[c][o][i][j] · dY[o, y + i·dh - p'h, x + j·dw - p'w],  p' = d·(k - 1) - p,
// dY read as zero outside its plane (the right and bottom too, whatever extra_end was). So it
// runs through conv2d_forward (the gathered forward, one GEMM per sample whose depth is
// og·kh·kw), where the GEMM + col2im path wrote and reread a (cg·kh·kw) × plane matrix through a
// GEMM only og deep. Forward and backward at one thread: `Conv2d(32, 32, 5, padding=2)` on
// (64, 32, 14, 14) 16.0-17.9 → 14.8-15.5 ms, `groups=4` 3×3 on (64, 64, 14, 14) 9.0-12.3 →
// 7.2-9.0, `dilation=2` 22.5-23.7 → 21.4-22.9. Taken where that forward gathers its columns
// (float32 on AVX-512, >= 8 input channels per group) and the input plane is at most 5/4 of the
// output's (a "valid" 5×5 on 14×14 does twice the multiply-adds over dY padded by 4: LeNet's
// Conv2d(6, 16, 5) went 4.1 → 7.4 ms); needs p <= d·(k - 1) in both dims (p' >= 0). A 1×1
// stride-1 convolution without padding multiplies dY in place already.
Window transposed_window(const Window& g, std::size_t out_channels) {
  return {g.n, out_channels, g.oh, g.ow, g.kh, g.kw, 1, 1, g.dh * (g.kh - 1) - g.ph, g.dw * (g.kw - 1) - g.pw,
          g.dh, g.dw, g.h, g.w};
}

template <class T>
bool transposes_to_forward(const Window& g, std::size_t out_channels, std::size_t groups) {
  if (g.sh != 1 || g.sw != 1 || g.ph > g.dh * (g.kh - 1) || g.pw > g.dw * (g.kw - 1) || identity_columns(g))
    return false;
  const Window t = transposed_window(g, out_channels);
  return g.h * g.w <= g.oh * g.ow * 5 / 4 && gathers_columns<T>(t, g.c / groups);
}

template <class T>
xt::xarray<T> transposed_kernels(const T* w, const Window& g, std::size_t out_channels, std::size_t groups) {
  const std::size_t cg = g.c / groups, og = out_channels / groups, taps = g.kh * g.kw;
  xt::xarray<T> wt = xt::xarray<T>::from_shape({g.c, og, g.kh, g.kw});
  for (std::size_t grp = 0; grp < groups; ++grp)
    for (std::size_t o = 0; o < og; ++o)
      for (std::size_t c = 0; c < cg; ++c) {
        const T* from = w + ((grp * og + o) * cg + c) * taps;
        T* to = wt.data() + ((grp * cg + c) * og + o) * taps;
        for (std::size_t t = 0; t < taps; ++t) to[t] = from[taps - 1 - t];
      }
  return wt;
}

// The input gradient of a strided or "valid" convolution, phase by phase. Output position
// k read phase position q = k + shift_t through tap t (its mask), so each phase's gradient is
//   dP_f[c][q] = Σ over o and the taps t of phase f of W[o][c][t] · dY[o][q - shift_t],
// one GEMM per phase, cg × p.plane, whose B rows are dY's planes moved back by the tap's shift and
// masked (where q - shift_t is a position tap t read), gathered by the GEMM itself; the phases are
// then merged into dX. The GEMM + col2im path wrote a (cg·kh·kw) × plane matrix through a GEMM
// og deep, read it back and added it into the phases (`Conv2d_stride2/1`: 21.5 → 20.5 ms). Taken
// where the forward gathers (float32 on AVX-512, >= 8 channels per group on both sides) and there
// are samples to share between the threads (it runs in parallel over samples only).
struct PhaseGrad {
  std::size_t phases, words;  // Phases::count; mask words of a phase plane
  std::vector<std::vector<std::size_t>> taps;  // per phase, its taps (indices into Phases::taps)
  std::vector<std::vector<std::uint32_t>> masks;  // per phase, per tap: where q - shift_t was read
};

PhaseGrad phase_grad(const Window& g, const Phases& p) {
  PhaseGrad d{p.count, (p.plane + 31) / 32, {}, {}};
  d.taps.resize(d.phases);
  d.masks.resize(d.phases);
  const std::size_t plane = g.oh * g.ow, words = (plane + 31) / 32;
  for (std::size_t t = 0; t < p.taps.size(); ++t) {
    const std::size_t f = p.taps[t].phase;
    d.taps[f].push_back(t);
    std::vector<std::uint32_t>& m = d.masks[f];
    m.resize(m.size() + d.words, 0);
    std::uint32_t* bits = m.data() + m.size() - d.words;
    for (std::size_t q = 0; q < p.plane; ++q) {
      const std::ptrdiff_t k = std::ptrdiff_t(q) - p.taps[t].run.shift;
      if (k >= 0 && std::size_t(k) < plane && (p.masks[t * words + std::size_t(k) / 32] >> (std::size_t(k) % 32)) & 1u)
        bits[q / 32] |= std::uint32_t(1) << (q % 32);
    }
  }
  return d;
}

template <class T>
bool grads_by_phase(const Window& g, const Phases& p, std::size_t cg, std::size_t og) {
  // (not p.identity: a single row at a row stride, one_row_phases, has no phases to merge; a single
  // sample takes one of the other paths, whose GEMMs split across threads)
  return !p.identity && (g.sh > 1 || g.sw > 1 || p.by_column) && gathers_columns<T>(g, og) && cg >= 8 && g.n > 1;
}

template <class T>
xt::xarray<T> input_grad_by_phase(const T* dy, const T* w, const Window& g, const Phases& p, std::size_t out_channels,
                                  std::size_t groups) {
  // merge_phases writes every input position unless a phase has columns past Wo (never read, their
  // gradient 0) or adds the phases by column: only then does dx start at zero.
  const bool cut = p.by_column ||
                   std::any_of(p.width.begin(), p.width.end(), [&](std::size_t columns) { return columns > g.ow; });
  xt::xarray<T> dx = cut ? kernels::zeros<T>({g.n, g.c, g.h, g.w}) : xt::xarray<T>::from_shape({g.n, g.c, g.h, g.w});
#if defined(__x86_64__)
  if constexpr (std::is_same_v<T, float>) {
    const std::size_t cg = g.c / groups, og = out_channels / groups, taps = g.kh * g.kw, plane = g.oh * g.ow;
    const PhaseGrad d = phase_grad(g, p);
    // A per group and phase: a[c][o·T + u] = W[o][c][taps[u]], cg × og·T, packed for the GEMM
    // once, not once per sample (`Conv2d_down_s2`: 5%). (Buffers: 128 KB at 64 -> 128 channels is
    // glibc's mmap threshold.)
    std::vector<Buffer<T>> a(groups * d.phases);
    Buffer<T> af;
    for (std::size_t grp = 0; grp < groups; ++grp)
      for (std::size_t f = 0; f < d.phases; ++f) {
        const std::vector<std::size_t>& mine = d.taps[f];
        af.resize(cg * og * mine.size());
        for (std::size_t c = 0; c < cg; ++c)
          for (std::size_t o = 0; o < og; ++o)
            for (std::size_t u = 0; u < mine.size(); ++u)
              af[(c * og + o) * mine.size() + u] = w[((grp * og + o) * cg + c) * taps + mine[u]];
        a[grp * d.phases + f].resize(detail::sgemm_avx512_packed_a_floats(cg, og * mine.size()));
        detail::sgemm_avx512_pack_a(false, cg, og * mine.size(), af.data(), og * mine.size(),
                                    a[grp * d.phases + f].data());
      }
    parallel::for_range(g.n, samples_per_task(g, out_channels * cg * taps), [&](std::size_t first, std::size_t last) {
      Scratch<T> split(phase_floats(p, cg));
      std::vector<std::uintptr_t> rows(og * taps);
      std::vector<const std::uint32_t*> row_masks(og * taps);
      for (std::size_t s = first; s < last; ++s)
        for (std::size_t grp = 0; grp < groups; ++grp) {
          for (std::size_t f = 0; f < d.phases; ++f) {
            T* out = split.data() + f * cg * p.plane;
            const std::vector<std::size_t>& mine = d.taps[f];
            if (mine.empty()) {
              std::fill(out, out + cg * p.plane, T(0));
              continue;
            }
            for (std::size_t o = 0; o < og; ++o)
              for (std::size_t u = 0; u < mine.size(); ++u) {
                const T* plane_o = dy + (s * out_channels + grp * og + o) * plane;
                rows[o * mine.size() + u] = reinterpret_cast<std::uintptr_t>(plane_o) -
                                            std::uintptr_t(p.taps[mine[u]].run.shift * std::ptrdiff_t(sizeof(T)));
                row_masks[o * mine.size() + u] = d.masks[f].data() + u * d.words;
              }
            const std::size_t k = og * mine.size();
            detail::sgemm_avx512_rows(cg, p.plane, k, 1.0f, a[grp * d.phases + f].data(),
                                      {rows.data(), row_masks.data()}, 0.0f, out, p.plane);
          }
          merge_phases(split.data(), cg, g, p, dx.data() + (s * g.c + grp * cg) * g.h * g.w);
        }
    });
  }
#endif
  (void)dy, (void)w, (void)p, (void)out_channels, (void)groups;
  return dx;
}

// dX of a convolution (N, C, H, W) → (N, O, Ho, Wo) from dY: also conv_transpose2d's forward,
// which is this map with the convolution's roles swapped (its section below).
template <class T>
xt::xarray<T> conv2d_input_grad(const Tensor& grad, const Tensor& weight, const Window& g, std::size_t out_channels,
                                std::size_t groups) {
  const std::size_t cg = g.c / groups, og = out_channels / groups, kk = cg * g.kh * g.kw, plane = g.oh * g.ow;
  const T* dy = grad.data<T>();
  const T* w = weight.data<T>();
  if (depthwise(g, groups)) return depthwise_input_grad(dy, w, g, out_channels);
  const Phases phases = phases_of(g);
  // Where dX is a forward over dY (below), that forward's narrow planes count (direct_fits).
  const bool by_phase = grads_by_phase<T>(g, phases, cg, og);
  const bool as_forward = !by_phase && transposes_to_forward<T>(g, out_channels, groups);
  if (row_winograd_fits(g, groups, g.c, out_channels) && !direct_fits<T>(g, og, cg, as_forward ? g.w : 0)) {
    // dX = dY ⋆ W' with padding 2 - p, as the 2-D Winograd's below.
    xt::xarray<T> dx = xt::xarray<T>::from_shape({g.n, g.c, g.h, g.w});
    const auto u = row_winograd_kernels(w, out_channels, cg, groups, true);
    row_winograd_conv(dy, {g.n * g.h, out_channels, g.ow, 2 - g.pw, g.c, g.w, groups, g.h}, u.data(), static_cast<const T*>(nullptr),
                      dx.data());
    return dx;
  }
  if (winograd_fits(g, groups, g.c, out_channels) && !direct_fits<T>(g, og, cg, as_forward ? g.w : 0)) {
    // dX = dY ⋆ W' with padding 2 - p: each dX position sums the dY positions it reached.
    xt::xarray<T> dx = xt::xarray<T>::from_shape({g.n, g.c, g.h, g.w});
    const auto u = winograd_kernels(w, out_channels, cg, groups, true);
    winograd_conv(dy, {g.n, out_channels, g.oh, g.ow, 2 - g.ph, 2 - g.pw, g.c, g.h, g.w, groups}, u.data(),
                  static_cast<const T*>(nullptr), dx.data());
    return dx;
  }
  if (by_phase) return input_grad_by_phase(dy, w, g, phases, out_channels, groups);
  if (as_forward) {
    // dX = dY ⋆ W' (conv2d_forward over dY): no d(columns) matrix and no col2im.
    return conv2d_forward<T>(grad, make_tensor<T>(transposed_kernels(w, g, out_channels, groups)), Tensor(),
                             transposed_window(g, out_channels), g.c, groups);
  }
  xt::xarray<T> dx = kernels::zeros<T>({g.n, g.c, g.h, g.w});
  T* d = dx.data();
  const bool in_place = identity_columns(g);
  parallel::for_range(g.n, samples_per_task(g, out_channels * kk), [&](std::size_t first, std::size_t last) {
    Scratch<T> col(in_place ? 0 : kk * plane), split(in_place ? 0 : phase_floats(phases, cg));
    for (std::size_t s = first; s < last; ++s)
      for (std::size_t grp = 0; grp < groups; ++grp) {
        // d(col) = W_gᵀ · dY_g: (kk, og) · (og, plane)
        T* dxs = d + (s * g.c + grp * cg) * g.h * g.w;
        detail::gemm<T>(true, false, kk, plane, og, T(1), w + grp * og * kk, kk,
                        dy + (s * out_channels + grp * og) * plane, plane, T(0), in_place ? dxs : col.data(), plane);
        if (!in_place) add_columns(col.data(), cg, g, phases, split.data(), dxs);
      }
  });
  return dx;
}

// The samples a block of the weight gradient's sum (kernels::sum_of_blocks) takes (see
// conv2d_weight_grad): by sizes only.
constexpr std::size_t kBlockPositions = 512;

std::size_t weight_grad_block(const Window& g, std::size_t work_per_output) {
  return std::max({samples_per_task(g, work_per_output), (g.n + 15) / 16,
                   std::min((kBlockPositions + g.oh * g.ow - 1) / (g.oh * g.ow), (g.n + 3) / 4)});
}

// The weight gradient of a 1-D convolution (a height of 1, not padded in it), tap by tap:
//   dW[o][c][t] = Σ_p dY[o][p] · x[c][p·s + t·d - pad],
// for each tap t a GEMM of dY_g (og × ow) with X_t (ow × C/g), X_t[p][c] = xᵀ[p·s + t·d][c], where
// xᵀ is the sample's input transposed (positions × C, zero rows for the padding at each end): a
// matrix read where it lies, rows s·C apart. So the only copy is xᵀ, the size of the input, where
// im2col wrote a (C·kw) × ow matrix and the GEMM then transposed all of it into its panels
// (`Conv1d(64, 64, 3)` on (16, 64, 500): im2col and those transposes were 19% of the step). With
// groups == 1 and d == 1, the taps side by side are one matrix, (ow × kw·C): its row p is xᵀ's
// rows p·s, p·s + 1, ... one after another, kw·C values where they lie, rows s·C apart. Those
// rows overlap (a leading dimension under the row's length), which BLAS rejects but sgemm.cpp's
// kernel reads as given: so float32 on AVX-512 makes one GEMM of the taps (taps_in_one_product),
// anything else one per tap. The sums go into (O, kw, C/g) and are turned into (O, C/g, 1, kw)
// at the end. Samples and blocks in order as in conv2d_weight_grad: the same bits for any thread
// count. Taken where each GEMM has 16 columns or more (fewer would be mostly padding in the
// kernel's tiles) and the direct kernels do not take the layer.
template <class T>
bool taps_in_one_product(const Window& g, std::size_t groups) {
#if defined(__x86_64__)
  if constexpr (std::is_same_v<T, float>) return groups == 1 && g.dw == 1 && detail::sgemm_avx512_available();
#endif
  (void)g, (void)groups;
  return false;
}

template <class T>
bool takes_taps(const Window& g, std::size_t groups) {
  const std::size_t columns = taps_in_one_product<T>(g, groups) ? g.kw * g.c : g.c / groups;
  return g.h == 1 && g.kh == 1 && g.ph == 0 && g.oh == 1 && columns >= 16 && !identity_columns(g);
}

template <class T>
xt::xarray<T> weight_grad_by_taps(const T* x, const T* dy, const Window& g, std::size_t out_channels,
                                  std::size_t groups) {
  const std::size_t cg = g.c / groups, og = out_channels / groups, taps = g.kw, positions = g.ow;
  const std::size_t row = taps * cg;  // (O, kw, C/g)'s rows
  // xᵀ's rows: the padding at both ends, and at the right whatever more the last tap reads (extra_end)
  const std::size_t length = std::max(g.w + 2 * g.pw, (positions - 1) * g.sw + (taps - 1) * g.dw + 1);
  const bool one_product = taps_in_one_product<T>(g, groups);
  Scratch<T> sums(out_channels * row);
  sum_of_blocks(g.n, weight_grad_block(g, out_channels * row), out_channels * row, sums.data(),
                [&](std::size_t first, std::size_t last, T* part) {
    Buffer<T> xt(length * g.c, T(0));  // (the padding's rows stay zero)
    for (std::size_t s = first; s < last; ++s) {
      kernels::transpose_matrix(x + s * g.c * g.w, g.c, g.w, g.w, xt.data() + g.pw * g.c, g.c);
      const T beta = s == first ? T(0) : T(1);  // the block's first sample writes its partial
      for (std::size_t grp = 0; grp < groups; ++grp) {
        const T* dys = dy + (s * out_channels + grp * og) * positions;
        T* out = part + grp * og * row;
#if defined(__x86_64__)
        if constexpr (std::is_same_v<T, float>)
          if (one_product) {
            detail::sgemm_avx512(false, false, og, row, positions, 1.0f, dys, positions, xt.data(), g.sw * g.c,
                                 beta, out, row);
            continue;
          }
#endif
        for (std::size_t t = 0; t < taps; ++t)
          detail::gemm<T>(false, false, og, cg, positions, T(1), dys, positions, xt.data() + t * g.dw * g.c + grp * cg,
                          g.sw * g.c, beta, out + t * cg, row);
      }
    }
  });
  xt::xarray<T> dw = xt::xarray<T>::from_shape({out_channels, cg, std::size_t(1), taps});
  for (std::size_t o = 0; o < out_channels; ++o)
    kernels::transpose_matrix(sums.data() + o * row, taps, cg, cg, dw.data() + o * row, taps);
  return dw;
}

// dW of the same convolution from its input x and dY, shaped (O, C / groups, kH, kW).
template <class T>
xt::xarray<T> conv2d_weight_grad(const T* x, const T* dy, const Window& g, std::size_t out_channels,
                                 std::size_t groups) {
  const std::size_t cg = g.c / groups, og = out_channels / groups, kk = cg * g.kh * g.kw, plane = g.oh * g.ow;
  const std::vector<std::size_t> weight_shape{out_channels, cg, g.kh, g.kw};
  if (depthwise(g, groups)) return depthwise_weight_grad(x, dy, g, out_channels);
  if (row_winograd_fits(g, groups, g.c, out_channels) && !direct_fits<T>(g, cg, og)) {
    xt::xarray<T> dw = xt::xarray<T>::from_shape(weight_shape);
    row_winograd_weight_grad(x, dy, {g.n * g.h, g.c, g.w, g.pw, out_channels, g.ow, groups, g.h}, dw.data());
    return dw;
  }
  if (winograd_fits(g, groups, g.c, out_channels) && !direct_fits<T>(g, cg, og)) {
    xt::xarray<T> dw = xt::xarray<T>::from_shape(weight_shape);
    winograd_weight_grad(x, dy, {g.n, g.c, g.h, g.w, g.ph, g.pw, out_channels, g.oh, g.ow, groups}, dw.data());
    return dw;
  }
  if (takes_taps<T>(g, groups) && !direct_fits<T>(g, cg, og))
    return weight_grad_by_taps(x, dy, g, out_channels, groups);
  const Phases phases = phases_of(g);
  // dW_g = Σ_s dY_g[s] · col[s]ᵀ. The samples are cut into at most 16 blocks, by size only; each
  // block sums its samples in order into its own partial dW (in parallel), and the partials are
  // added in block order (sum_of_blocks): the same bits for any thread count. A block spans at
  // least kBlockPositions output positions where that leaves 4 blocks or more: adding a partial
  // in costs about as much as a GEMM over 50 positions (`Conv2d_down_s2`, 8×8 outputs: 16
  // blocks of 2 samples, 9.9 -> 9.7 ms at one thread in 4 blocks of 8). Where the GEMM's tiles fit it
  // better the partials hold dW_gᵀ = Σ_s col[s] · dY_g[s]ᵀ, transposed once at the end
  // (`Conv1d` 16 -> 32, kernel 5: 32 × 80 pads to 32 × 96 in the AVX-512 tiles, 80 × 32 not),
  // and so do those with at most 32 output channels a group: the GEMM then reads the columns
  // where they lie and packs only dY, where the other way it packed colᵀ, transposing it (one
  // sample's GEMM, one thread: 32 × 800 over 196 positions, a 5×5 "same", 56 → 43 us; 32 × 288
  // over 784, dilated 3×3, 91 → 66; 16 × 150 over 100, LeNet's 5×5, 4.0 → 3.1).
  // Where the forward runs directly (direct_fits) the partials hold dW_gᵀ as well, summed directly.
  const bool direct = direct_fits<T>(g, cg, og);
  const std::size_t lanes = direct ? direct_lanes(og) : og;  // the partials' row length (direct_weight_grad's)
  const std::size_t wn = groups * kk * lanes;
  const bool transposed = direct || detail::gemm_prefers_transposed<T>(og, kk);
  const bool in_place = identity_columns(g), no_columns = direct || in_place;
  const std::size_t block = weight_grad_block(g, out_channels * kk);
  xt::xarray<T> dw = xt::xarray<T>::from_shape(weight_shape);
  Scratch<T> sums(transposed ? wn : 0);  // dW_gᵀ, transposed into dw below
  T* total = transposed ? sums.data() : dw.data();
  sum_of_blocks(g.n, block, wn, total, [&](std::size_t first, std::size_t last, T* part) {
    Scratch<T> col(no_columns ? 0 : kk * plane), split(no_columns ? 0 : phase_floats(phases, cg));
    Buffer<T> padded(direct ? cg * padded_plane<T>(g).size : 0);  // zeros (see pad_plane)
    Buffer<T> dyt(direct ? plane * lanes : 0, T(0));  // (zero past og)
    if (direct) std::fill(part, part + wn, T(0));  // (direct_weight_grad adds)
    for (std::size_t s = first; s < last; ++s)
      for (std::size_t grp = 0; grp < groups; ++grp) {
        const T* xs = x + (s * g.c + grp * cg) * g.h * g.w;
        const T* dys = dy + (s * out_channels + grp * og) * plane;
        T* dw_g = part + grp * lanes * kk;
        if constexpr (std::is_same_v<T, float>)
          if (direct) {
            direct_weight_grad(xs, dys, g, cg, og, padded.data(), dyt.data(), dw_g);
            continue;
          }
        if (!in_place) columns(xs, cg, g, phases, split.data(), col.data());
        const T* cols = in_place ? xs : col.data();
        const T beta = s == first ? T(0) : T(1);  // the block's first sample writes its partial
        if (transposed)
          detail::gemm<T>(false, true, kk, og, plane, T(1), cols, plane, dys, plane, beta, dw_g, og);
        else
          detail::gemm<T>(false, true, og, kk, plane, T(1), dys, plane, cols, plane, beta, dw_g, kk);
      }
  });
  if (transposed)
    for (std::size_t grp = 0; grp < groups; ++grp)
      kernels::transpose_matrix(total + grp * lanes * kk, kk, og, lanes, dw.data() + grp * og * kk, kk);
  return dw;
}

template <class T>
Grads conv2d_backward(const Tensor& grad, const Tensor& input, const Tensor& weight, const Window& g,
                      std::size_t out_channels, std::size_t groups, NeedsGrad needs) {
  Grads grads(3);
  if (needs[0]) grads[0] = make_tensor<T>(conv2d_input_grad<T>(grad, weight, g, out_channels, groups));
  if (needs[1])
    grads[1] = make_tensor<T>(conv2d_weight_grad(input.data<T>(), grad.data<T>(), g, out_channels, groups));
  if (needs[2]) grads[2] = bias_grad(grad.data<T>(), g.n, out_channels, g.oh * g.ow);
  return grads;
}

// ---- Samples side by side ------------------------------------------------------------------------
// Where no window crosses rows (a kernel height of 1, with no padding or stride along the height:
// a Conv1d, or a Conv2d with a 1 × k kernel), each sample's rows are independent of each other and
// of the other samples': k samples' (C, H, W) are one plane (C, k·H, W) of k·H rows, and conv2d
// runs k samples as one (a permuted copy of x, and of y back). Samples of few output positions
// need it: every path above goes a sample at a time, each sample's GEMMs padding its few columns
// to the AVX-512 kernel's 16 or 32 and repacking, and under 8 columns going to OpenBLAS, whose
// packing then took more time than the products (`Conv1d(64, 128, 5)` over (4096, 64, 2): 58% of
// the profile in its sgemm_otcopy and kernel). So samples of up to kFewPositions output positions
// are taken kSideBySidePositions at a time, in blocks of k samples with k · oh · ow <=
// kSideBySidePositions and at least 2 blocks (for two threads): k the largest divisor of N there
// where one is at least half the largest k, else an even number of blocks (for two threads) and
// the samples left over, fewer than the blocks, as one last block of their own, the results joined
// by a recorded cat. (A prime N, or 2 · a prime, had kept its samples apart or in pairs: (4093, 64,
// 2), kernel 5, 64 -> 128 took 2.3× as long as (4096, 64, 2) at one thread. With the largest k
// and the rest as a last block, a rest of nearly a block ran on one thread: N = 91 of rows of 8,
// 32 -> 64, 1.26× slower at two threads. Over every N from 90 to 140, forward and backward of
// 64 -> 128 over rows of 4 (kernel 5), 32 -> 64 over rows of 8 (kernel 3) and 64 -> 64 over rows
// of 16 at stride 2, summed: 0.83×, 0.92×, 0.90× the time at one thread, 0.86×, 1.00×, 0.98× at
// two; a prime N 0.56-0.72× at one thread.) By sizes only, the same bits for any thread count.
// Measured against samples apart, forward and backward by turns in one process, 8192 positions a
// channel, 64 -> 128 channels, one thread / two: rows of 2 with kernel 1 6.3× / 8.1× as fast,
// kernel 3 (one Winograd tile a row) 3.8× / 4.1×, kernel 5 8.1× / 8.8× (120 -> 14.7 ms at one
// thread; libtorch 1.13 40-61 ms), kernel 5 at stride 2 3.6× / 4.2×; rows of 4, kernel 5 4.8× /
// 5.1×; rows of 8 (8 outputs), kernel 1 1.5× / 1.6×, kernel 3 1.19× / 1.29×, kernel 5 1.9× / 2.0×,
// at stride 2 3.7× / 3.9×; rows of 16, kernel 1 1.16× / 1.13×, kernel 5 1.33× / 1.27×, at stride 2
// 1.8× / 1.9×; rows of 32 at stride 2 (16 outputs) 1.29× / 1.25×. 16 to 256 channels alike, but
// for F(4, 3) over many channels, whose GEMMs are large and whose transforms a row costs little
// beside them: 256 -> 256 over rows of 8 took 0.83× the speed side by side, 128 -> 128 over rows
// of 16 0.86×. Those keep their samples apart where the rows' F(4, 3) work (row_winograd_work, as
// the planes' rule) reaches kRowWinogradPlaneWork (then 0.98-1.00×). Past 16 positions side by
// side lost or tied (rows of 32: 0.82-1.09×). A single block of all the samples lost at two
// threads (32 samples of rows of 32 at stride 2, 256 channels: 0.93×); blocks of 128 to 2048
// positions measured within noise of each other, 256 took the most cases. (Before the permute
// moved rows of 8 float32 as single values, their copies were slow enough that kernel 1, F(4, 3)
// and the direct kernels lost at 8 outputs: 0.81× for 32 -> 64 with kernel 1.)
// A transposed convolution (whose forward is conv2d_input_grad) takes its samples side by side by
// the same rule, its input's positions counting: ConvTranspose1d(64, 64, 4, stride 2) over (4096,
// 64, 2) 58.2 -> 16.6 ms at one thread (libtorch 81), 256 -> 256 channels 264 -> 28; rows of 8
// 1.27-2.26× (two threads 1.24-2.28×); rows of 16 1.0-1.26×, but 16 -> 16 channels with kernels 3
// and 5 0.89× and 0.92× at one thread (1.15× and 1.12× at two).
constexpr std::size_t kFewPositions = 16, kSideBySidePositions = 256;

std::size_t samples_side_by_side(const Window& g, std::size_t groups, std::size_t out_channels, DType dtype) {
  const std::size_t positions = g.oh * g.ow, og = out_channels / groups;
  if (g.kh != 1 || g.ph != 0 || g.sh != 1 || g.oh != g.h || g.n < 4 || positions > kFewPositions ||
      depthwise(g, groups))
    return 1;
  const bool direct = dtype == kFloat32 && direct_fits<float>(g, g.c / groups, og, g.ow);
  if (row_winograd_fits(g, groups, g.c, out_channels) && !direct &&
      row_winograd_work(g.c / groups, og, row_tiles(g.ow)) >= kRowWinogradPlaneWork)
    return 1;
  const std::size_t largest = std::min(g.n / 2, kSideBySidePositions / positions);
  for (std::size_t k = largest; k > 1 && 2 * k >= largest; --k)
    if (g.n % k == 0) return k;
  // None: an even number of blocks of k, and the samples left over (fewer than the blocks, so N
  // mod k) as a last block (side_by_side); for the few N whose k would be smaller than that, the
  // largest k and what is left.
  const std::size_t fewest = (g.n + largest - 1) / largest, blocks = fewest + fewest % 2, k = g.n / blocks;
  return k >= blocks ? k : largest;
}

// conv(planes) over x's samples k at a time: x (N, C, H, W) as (N / k, C, k·H, W), and the result
// (N / k, O, k·H, W') back as (N, O, H, W'). Both copies are recorded permutes: their backward
// passes permute dY and dX the same way. Where k does not divide N, the whole blocks and the
// samples left over (one block of N mod k) go apart, through recorded narrows and a cat.
template <class Conv>
Tensor side_by_side(const Tensor& x, std::size_t k, Conv&& conv) {
  const auto n = std::int64_t(x.size(0)), c = std::int64_t(x.size(1)), h = std::int64_t(x.size(2)),
             w = std::int64_t(x.size(3));
  auto blocks = [&](const Tensor& part, std::int64_t s) {  // part's samples s at a time
    const std::int64_t m = std::int64_t(part.size(0));
    const Tensor y = conv(permute(part.reshape({m / s, s, c, h, w}), {0, 2, 1, 3, 4}).reshape({m / s, c, s * h, w}));
    const auto o = std::int64_t(y.size(1)), ow = std::int64_t(y.size(3));
    return permute(y.reshape({m / s, o, s, h, ow}), {0, 2, 1, 3, 4}).reshape({m, o, h, ow});
  };
  const auto s = std::int64_t(k), left = n % s;
  if (left == 0) return blocks(x, s);
  const Tensor rest = narrow(x, 0, n - left, left);
  return cat({blocks(narrow(x, 0, 0, n - left), s), left > 1 ? blocks(rest, left) : conv(rest)}, 0);
}

// ---- Dilated kernels by phases ---------------------------------------------------------------
// A kernel dilated by d at stride 1 reads, for output row y = d·y' + r, input rows d·(y' - p/d +
// i) + r: rows of y's own phase r only, where the padding p is a multiple of d. So the convolution
// is dh·dw convolutions of the same kernel, undilated, padding p/d, over the phase planes of x:
// one conv2d over N·dh·dw samples, which takes F(2×2, 3×3) or F(4, 3) where the dilated kernel
// took the GEMMs. Where p is not a multiple of d, or the size, the phase planes hold zeros for x
// read before it (p mod d rows) and after it (the extra_end, and up to a multiple of d), and the
// result's rows past the output's are dropped: both in the one copy each way (phase_planes,
// from_phase_planes, each the other's backward; a separate pad and narrow, tried first, cost as
// much as F(4, 3) saved over (32, 64, 1001) on this machine's 23 GB/s). Against the dilated
// kernels at one thread, sizes or paddings not multiples of d: Conv1d(64, 64, 3, dilation 8,
// padding 8) over (32, 64, 1001) 1.25×, dilation 3 over (32, 64, 1000) 1.47×, 128 channels at
// dilation 4 over (16, 128, 999) 1.59×, Conv2d(64, 64, 3, dilation 2, padding 2) over (16, 64,
// 33, 33) 1.23×, padding 1 over (16, 64, 32, 32) 1.22×, 128 channels at dilation 4 over 30 × 30
// 1.30×. Only where the phases
// take Winograd (a 3 × 3 or 1 × 3 kernel with channels enough, not depthwise, not the direct
// kernels), and not over small planes or few channels (the rule below): otherwise their path does
// the same multiply-adds as the dilated one's, or loses, and the copies cost. Measured forward + backward against the dilated kernels, one
// thread / two: Conv1d(64, 64, 3, dilation 2 or 8, padding d) over (32, 64, 1024) 1.32× / 1.29×
// and 1.31× / 1.34×, (16, 128, 1024) at dilation 4 1.58× / 1.56×, 32 -> 32 over (32, 32, 512)
// 1.00× / 0.98×; a sweep of 40 shapes (16 to 128 channels, rows of 1001-1024 and planes of 15 ×
// 15 to 56 × 56, dilations 2 and 4, about 4M multiply-adds each): geometric mean 1.14× at one
// thread and at two, 64 -> 64 1.00-1.43×, 128 -> 128 1.15-1.82×, none below 0.98× but noise;
// Conv2d(64, 64, 3, dilation 2, padding 2) over (16, 64, 32, 32) 1.21× / 1.20×, 128 channels at
// dilation 4 1.36× / 1.28×. (Where the phases went to the direct kernels it lost: 16 -> 16 over
// rows of 1024 at dilation 4 0.74×, 32 -> 32 over (32, 32, 28, 28) 0.74×.) By sizes only, the
// same bits for any thread count.

// F(2×2, 3×3) over small phase planes lost to the dilated kernels at 64 channels (8 × 8 planes,
// from 15 × 15 at dilation 2 or 30 × 30 at 4: 0.82-0.83×; 14 × 14 1.03×, 15 × 15 1.15×) and won at
// 128 (4 × 4 1.12×, 8 × 8 1.10-1.15×): 3 × 3 kernels take the phases over planes of at least 196
// output positions, or with 128 channels a group in and out. At 32 channels F(4, 3) over the
// phases' rows tied with the dilated kernels (0.90-1.12× over rows of 1001 to 1024 at dilations 2
// and 4, by run), and the copies are a risk on a busy memory: at least 64 channels a group.
constexpr std::size_t kPhasesFewestChannels = 64, kPhasesFewestPositions = 196, kPhasesWideChannels = 128;

// One dim's plan: zeros before and after x in the phase planes, and the undilated convolution's
// padding and extra_end over them. A dim of dilation 1 keeps its own padding.
struct PhaseDim {
  std::size_t before = 0, after = 0, padding = 0, extra_end = 0;
};

PhaseDim phase_dim(std::size_t size, std::size_t dilation, std::size_t padding, std::size_t extra_end) {
  if (dilation == 1) return {0, 0, padding, extra_end};
  const std::size_t before = padding % dilation;
  const std::size_t after = before + extra_end + (dilation - (size + 2 * before + extra_end) % dilation) % dilation;
  return {before, after, (padding - before) / dilation, 0};
}

// Whether conv2d over g runs by phases, and the phases' plan along the height and the width.
bool dilation_by_phases(const Window& g, std::size_t groups, std::size_t out_channels, DType dtype,
                        const Conv2dParams& p, PhaseDim& rows, PhaseDim& cols) {
  if ((g.dh == 1 && g.dw == 1) || g.sh != 1 || g.sw != 1) return false;
  rows = phase_dim(g.h, g.dh, g.ph, std::size_t(p.extra_end[0]));
  cols = phase_dim(g.w, g.dw, g.pw, std::size_t(p.extra_end[1]));
  const std::size_t h = (g.h + rows.before + rows.after) / g.dh, w = (g.w + cols.before + cols.after) / g.dw;
  const Window f{g.n * g.dh * g.dw, g.c, h, w, g.kh, g.kw, 1, 1, rows.padding, cols.padding, 1, 1,
                 h + 2 * rows.padding + rows.extra_end - (g.kh - 1), w + 2 * cols.padding + cols.extra_end - (g.kw - 1)};
  const std::size_t cg = g.c / groups, og = out_channels / groups;
  const bool direct = dtype == kFloat32 && direct_fits<float>(f, cg, og, f.ow);
  const std::size_t fewest = std::min(cg, og);
  const bool planes_pay = f.oh * f.ow >= kPhasesFewestPositions || fewest >= kPhasesWideChannels;
  return !depthwise(f, groups) && !direct && fewest >= kPhasesFewestChannels &&
         (row_winograd_fits(f, groups, f.c, out_channels) || (winograd_fits(f, groups, f.c, out_channels) && planes_pay));
}

// x (N, C, H, W) and its phase planes (N·dh·dw, C, HP, WP): phase (r, s) of sample n is plane
// (n·dh + r)·dw + s, whose value (i, j) is x's (i·dh + r - bh, j·dw + s - bw), zero outside x.
// HP·dh >= H + bh and WP·dw >= W + bw: every value of x has its place.
struct PhasePlanes {
  std::size_t n, c, h, w, dh, dw, bh, bw, hp, wp;
};

// to_planes: x into its phase planes (zeros outside x); otherwise the planes back into x (each
// value of x from its place, the planes' values outside x dropped): each the other's adjoint.
// In parallel over x's rows (and rows of zeros) by phase r, each task taking the dw planes' rows
// of that row in turn, one x row read from L1 dw times (the planes one after the other read x dw
// times from memory: Conv1d at dilation 2 over (32, 64, 1024) took 28.3 ms a step, this way
// 19.8); every value written once. kStride: dw where the compiler is to know it.
template <std::size_t kStride, class T>
void phase_rows(const T* from, T* to, const PhasePlanes& q, bool to_planes) {
  const std::size_t dw = kStride ? kStride : q.dw, units = q.n * q.c * q.hp * q.dh;
  parallel::for_range(units, std::max<std::size_t>(1, parallel::kGrain / (q.wp * dw)),
                      [&](std::size_t first, std::size_t last) {
    for (std::size_t u = first; u < last; ++u) {
      const std::size_t r = u % q.dh, i = u / q.dh % q.hp, c = u / (q.dh * q.hp) % q.c, n = u / (q.dh * q.hp * q.c);
      const std::size_t y = i * q.dh + r;  // x's row + bh
      const bool inside = y >= q.bh && y - q.bh < q.h;
      const T* x_in = from + (inside ? ((n * q.c + c) * q.h + (y - q.bh)) * q.w : 0);
      T* x_out = to + (inside ? ((n * q.c + c) * q.h + (y - q.bh)) * q.w : 0);
      for (std::size_t s = 0; s < dw; ++s) {
        const std::size_t row = (((n * q.dh + r) * dw + s) * q.c + c) * q.hp + i;
        // j's range whose column j·dw + s - bw lies in [0, W)
        const std::size_t lo = s >= q.bw ? 0 : (q.bw - s + dw - 1) / dw;
        const std::size_t hi = std::min(q.wp, q.w + q.bw > s ? (q.w + q.bw - s + dw - 1) / dw : 0);
        if (to_planes) {
          T* out = to + row * q.wp;
          if (!inside) {
            std::fill(out, out + q.wp, T(0));
            continue;
          }
          for (std::size_t j = 0; j < std::min(lo, q.wp); ++j) out[j] = T(0);
          for (std::size_t j = lo; j < hi; ++j) out[j] = x_in[j * dw + s - q.bw];
          for (std::size_t j = std::max(lo, hi); j < q.wp; ++j) out[j] = T(0);
        } else if (inside) {
          const T* in = from + row * q.wp;
          for (std::size_t j = lo; j < hi; ++j) x_out[j * dw + s - q.bw] = in[j];
        }
      }
    }
  });
}

template <class T>
void phase_copy(const T* from, T* to, const PhasePlanes& q, bool to_planes) {
  if (q.dw == 1) return phase_rows<1>(from, to, q, to_planes);
  if (q.dw == 2) return phase_rows<2>(from, to, q, to_planes);
  if (q.dw == 4) return phase_rows<4>(from, to, q, to_planes);
  if (q.dw == 8) return phase_rows<8>(from, to, q, to_planes);
  phase_rows<0>(from, to, q, to_planes);
}

Tensor from_phase_planes(const Tensor& planes, const PhasePlanes& q);

// x's phase planes, recorded (its backward: from_phase_planes of the gradient).
Tensor phase_planes(const Tensor& x, const PhasePlanes& q) {
  Tensor out = dispatch_floating(x.dtype(), "conv2d", [&]<class T>() {
    xt::xarray<T> planes = xt::xarray<T>::from_shape({q.n * q.dh * q.dw, q.c, q.hp, q.wp});
    phase_copy(x.data<T>(), planes.data(), q, true);
    return make_tensor<T>(std::move(planes));
  });
  return record("phase_planes", out, {x}, [q](const Tensor& grad) -> Grads { return {from_phase_planes(grad, q)}; });
}

// (N, C, H, W) from its phase planes, recorded (its backward: phase_planes of the gradient).
Tensor from_phase_planes(const Tensor& planes, const PhasePlanes& q) {
  Tensor out = dispatch_floating(planes.dtype(), "conv2d", [&]<class T>() {
    xt::xarray<T> x = xt::xarray<T>::from_shape({q.n, q.c, q.h, q.w});  // every value written
    phase_copy(planes.data<T>(), x.data(), q, false);
    return make_tensor<T>(std::move(x));
  });
  return record("from_phase_planes", out, {planes}, [q](const Tensor& grad) -> Grads { return {phase_planes(grad, q)}; });
}

// (C, H, W) → (1, C, H, W) for the window ops that accept an unbatched input, as PyTorch's.
Tensor batched(const Tensor& input) { return input.dim() == 3 ? unsqueeze(input, 0) : input; }
Tensor unbatched_like(const Tensor& out, const Tensor& input) { return input.dim() == 3 ? squeeze(out, 0) : out; }

}  // namespace

Tensor conv2d(const Tensor& input_in, const Tensor& weight, const Tensor& bias, const Conv2dParams& p) {
  TG_CHECK(input_in.dim() == 3 || input_in.dim() == 4, "conv2d: expected input (N, C, H, W) or (C, H, W), got ",
           shape_str(input_in.shape()));
  TG_CHECK(weight.dim() == 4, "conv2d: expected weight (out_channels, in_channels / groups, kH, kW), got ",
           shape_str(weight.shape()));
  TG_CHECK(is_floating(input_in.dtype()) && weight.dtype() == input_in.dtype() &&
               (!bias.defined() || bias.dtype() == input_in.dtype()),
           "conv2d: input, weight and bias must share one floating-point dtype, got ", dtype_name(input_in.dtype()),
           ", ", dtype_name(weight.dtype()), bias.defined() ? std::string(", ") + dtype_name(bias.dtype()) : "");
  TG_CHECK(p.groups >= 1, "conv2d: groups must be positive, got ", p.groups);
  TG_CHECK(p.extra_end[0] >= 0 && p.extra_end[1] >= 0, "conv2d: extra_end padding must be non-negative");
  for (int d = 0; d < 2; ++d)
    TG_CHECK(p.stride[d] >= 1 && p.dilation[d] >= 1 && p.padding[d] >= 0, "conv2d: stride and dilation must be "
             "positive and padding non-negative, got stride ", p.stride[d], ", padding ", p.padding[d], ", dilation ",
             p.dilation[d]);
  const Tensor input = batched(input_in);
  const Shape& s = input.shape();
  const Shape& ws = weight.shape();
  const auto groups = std::size_t(p.groups);
  TG_CHECK(s[1] % groups == 0 && ws[0] % groups == 0, "conv2d: in_channels (", s[1], ") and out_channels (", ws[0],
           ") must be divisible by groups (", groups, ")");
  TG_CHECK(ws[1] * groups == s[1], "conv2d: weight ", shape_str(ws), " expects ", ws[1] * groups,
           " input channels (groups ", groups, "), got input ", shape_str(input_in.shape()));
  TG_CHECK(!bias.defined() || bias.shape() == Shape{ws[0]}, "conv2d: bias must have shape [", ws[0], "], got ",
           bias.defined() ? shape_str(bias.shape()) : "");
  Window g{s[0], s[1], s[2], s[3], ws[2], ws[3], std::size_t(p.stride[0]), std::size_t(p.stride[1]),
           std::size_t(p.padding[0]), std::size_t(p.padding[1]), std::size_t(p.dilation[0]),
           std::size_t(p.dilation[1]), 0, 0};
  g.oh = out_size("conv2d", g.h, std::int64_t(g.kh), p.stride[0], p.padding[0], p.dilation[0], false, input_in.shape(),
                  p.extra_end[0]);
  g.ow = out_size("conv2d", g.w, std::int64_t(g.kw), p.stride[1], p.padding[1], p.dilation[1], false, input_in.shape(),
                  p.extra_end[1]);
  const std::size_t out_channels = ws[0];
  if (PhaseDim rows, cols; dilation_by_phases(g, groups, out_channels, input.dtype(), p, rows, cols)) {
    Conv2dParams undilated = p;
    undilated.padding = {std::int64_t(rows.padding), std::int64_t(cols.padding)};
    undilated.extra_end = {std::int64_t(rows.extra_end), std::int64_t(cols.extra_end)};
    undilated.dilation = {1, 1};
    const PhasePlanes x{g.n, g.c, g.h, g.w, g.dh, g.dw, rows.before, cols.before,
                        (g.h + rows.before + rows.after) / g.dh, (g.w + cols.before + cols.after) / g.dw};
    const Tensor planes = conv2d(phase_planes(input, x), weight, bias, undilated);
    const PhasePlanes y{g.n, out_channels, g.oh, g.ow, g.dh, g.dw, 0, 0, planes.size(2), planes.size(3)};
    return unbatched_like(from_phase_planes(planes, y), input_in);
  }
  if (const std::size_t k = samples_side_by_side(g, groups, out_channels, input.dtype()); k > 1)
    return side_by_side(input, k, [&](const Tensor& planes) { return conv2d(planes, weight, bias, p); });
  Tensor out = dispatch_floating(input.dtype(), "conv2d", [&]<class T>() {
    return make_tensor<T>(conv2d_forward<T>(input, weight, bias, g, out_channels, groups));
  });
  out = record("conv2d", out, {input, weight, bias}, {input, weight},
               [input, weight, g, out_channels, groups](const Tensor& grad, NeedsGrad needs) -> Grads {
                 return dispatch_floating(grad.dtype(), "conv2d", [&]<class T>() {
                   return conv2d_backward<T>(grad, input, weight, g, out_channels, groups, needs);
                 });
               });
  return unbatched_like(out, input_in);
}

Tensor conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias, std::int64_t stride,
              std::int64_t padding, std::int64_t dilation, std::int64_t groups) {
  TG_CHECK(input.dim() == 2 || input.dim() == 3, "conv1d: expected input (N, C, L) or (C, L), got ",
           shape_str(input.shape()));
  TG_CHECK(weight.dim() == 3, "conv1d: expected weight (out_channels, in_channels / groups, k), got ",
           shape_str(weight.shape()));
  Conv2dParams p;
  p.stride = {1, stride};
  p.padding = {0, padding};
  p.dilation = {1, dilation};
  p.groups = groups;
  return squeeze(conv2d(unsqueeze(input, -2), unsqueeze(weight, 2), bias, p), -2);
}

// ---- Transposed convolution ------------------------------------------------------------------
// conv_transpose2d is the input gradient of a convolution, run forward: the convolution G whose
// input is the result (N, O, Ho, Wo), whose output is x (N, C, H, W) and whose weight is the
// transposed convolution's own (C, O / groups, kH, kW), with the same stride, padding, dilation
// and groups. So its forward is conv2d_input_grad(x) of G (every dX path above: phases for a
// strided one, the forward with the kernel turned at stride 1, Winograd, depthwise), its input
// gradient is G's forward over dY, and its weight gradient is G's weight gradient with dY as G's
// input and x as G's output gradient. output_padding only makes Ho larger, as PyTorch's: the rows
// it adds reach no input at the bottom (G's output stays H rows).
Tensor conv_transpose2d(const Tensor& input_in, const Tensor& weight, const Tensor& bias,
                        const ConvTranspose2dParams& p) {
  TG_CHECK(input_in.dim() == 3 || input_in.dim() == 4,
           "conv_transpose2d: expected input (N, C, H, W) or (C, H, W), got ", shape_str(input_in.shape()));
  TG_CHECK(weight.dim() == 4, "conv_transpose2d: expected weight (in_channels, out_channels / groups, kH, kW), got ",
           shape_str(weight.shape()));
  TG_CHECK(is_floating(input_in.dtype()) && weight.dtype() == input_in.dtype() &&
               (!bias.defined() || bias.dtype() == input_in.dtype()),
           "conv_transpose2d: input, weight and bias must share one floating-point dtype, got ",
           dtype_name(input_in.dtype()), ", ", dtype_name(weight.dtype()),
           bias.defined() ? std::string(", ") + dtype_name(bias.dtype()) : "");
  TG_CHECK(p.groups >= 1, "conv_transpose2d: groups must be positive, got ", p.groups);
  for (int d = 0; d < 2; ++d) {
    TG_CHECK(p.stride[d] >= 1 && p.dilation[d] >= 1 && p.padding[d] >= 0 && p.output_padding[d] >= 0,
             "conv_transpose2d: stride and dilation must be positive, padding and output_padding non-negative, got "
             "stride ", p.stride[d], ", padding ", p.padding[d], ", output_padding ", p.output_padding[d],
             ", dilation ", p.dilation[d]);
    TG_CHECK(p.output_padding[d] < p.stride[d] || p.output_padding[d] < p.dilation[d],
             "conv_transpose2d: output_padding must be smaller than either stride or dilation, got output_padding ",
             p.output_padding[d], ", stride ", p.stride[d], ", dilation ", p.dilation[d]);
  }
  const Tensor input = batched(input_in);
  const Shape& s = input.shape();
  const Shape& ws = weight.shape();
  const auto groups = std::size_t(p.groups);
  TG_CHECK(ws[0] == s[1], "conv_transpose2d: weight ", shape_str(ws), " expects ", ws[0],
           " input channels, got input ", shape_str(input_in.shape()));
  TG_CHECK(ws[0] % groups == 0, "conv_transpose2d: in_channels (", ws[0], ") must be divisible by groups (", groups,
           ")");
  const std::size_t out_channels = ws[1] * groups;
  TG_CHECK(!bias.defined() || bias.shape() == Shape{out_channels}, "conv_transpose2d: bias must have shape [",
           out_channels, "], got ", bias.defined() ? shape_str(bias.shape()) : "");
  std::array<std::int64_t, 2> size{};  // (H - 1)·stride - 2·padding + dilation·(k - 1) + output_padding + 1
  for (int d = 0; d < 2; ++d)
    size[d] = (std::int64_t(s[2 + d]) - 1) * p.stride[d] - 2 * p.padding[d] +
              p.dilation[d] * (std::int64_t(ws[2 + d]) - 1) + p.output_padding[d] + 1;
  TG_CHECK(size[0] >= 1 && size[1] >= 1, "conv_transpose2d: the input ", shape_str(input_in.shape()),
           " gives an output of ", size[0], " x ", size[1], " per channel (too small)");
  const Window g{s[0], out_channels, std::size_t(size[0]), std::size_t(size[1]), ws[2], ws[3],
                 std::size_t(p.stride[0]), std::size_t(p.stride[1]), std::size_t(p.padding[0]),
                 std::size_t(p.padding[1]), std::size_t(p.dilation[0]), std::size_t(p.dilation[1]), s[2], s[3]};
  const std::size_t channels = s[1];
  // (the forward of a transposed convolution is conv2d_input_grad: its samples side by side as that
  // one's, with the input's channels as g's output channels)
  if (const std::size_t k = samples_side_by_side(g, groups, channels, input.dtype()); k > 1)
    return side_by_side(input, k, [&](const Tensor& planes) { return conv_transpose2d(planes, weight, bias, p); });
  Tensor out = dispatch_floating(input.dtype(), "conv_transpose2d", [&]<class T>() {
    xt::xarray<T> y = conv2d_input_grad<T>(input, weight, g, channels, groups);
    if (bias.defined()) {
      const T* b = bias.data<T>();
      const std::size_t plane = g.h * g.w;
      parallel::for_range(g.n * g.c, std::max<std::size_t>(1, 32768 / plane), [&](std::size_t first, std::size_t last) {
        for (std::size_t i = first; i < last; ++i) {
          T* row = y.data() + i * plane;
          const T add = b[i % g.c];
          for (std::size_t k = 0; k < plane; ++k) row[k] += add;
        }
      });
    }
    return make_tensor<T>(std::move(y));
  });
  out = record("conv_transpose2d", out, {input, weight, bias}, {input, weight},
               [input, weight, g, channels, groups](const Tensor& grad, NeedsGrad needs) -> Grads {
                 return dispatch_floating(grad.dtype(), "conv_transpose2d", [&]<class T>() {
                   Grads grads(3);
                   if (needs[0]) grads[0] = make_tensor<T>(conv2d_forward<T>(grad, weight, Tensor(), g, channels, groups));
                   if (needs[1])
                     grads[1] = make_tensor<T>(conv2d_weight_grad(grad.data<T>(), input.data<T>(), g, channels, groups));
                   if (needs[2]) grads[2] = bias_grad(grad.data<T>(), g.n, g.c, g.h * g.w);
                   return grads;
                 });
               });
  return unbatched_like(out, input_in);
}

Tensor conv_transpose1d(const Tensor& input, const Tensor& weight, const Tensor& bias, std::int64_t stride,
                        std::int64_t padding, std::int64_t output_padding, std::int64_t groups, std::int64_t dilation) {
  TG_CHECK(input.dim() == 2 || input.dim() == 3, "conv_transpose1d: expected input (N, C, L) or (C, L), got ",
           shape_str(input.shape()));
  TG_CHECK(weight.dim() == 3, "conv_transpose1d: expected weight (in_channels, out_channels / groups, k), got ",
           shape_str(weight.shape()));
  ConvTranspose2dParams p;
  p.stride = {1, stride};
  p.padding = {0, padding};
  p.output_padding = {0, output_padding};
  p.dilation = {1, dilation};
  p.groups = groups;
  return squeeze(conv_transpose2d(unsqueeze(input, -2), unsqueeze(weight, 2), bias, p), -2);
}

// ---- pooling --------------------------------------------------------------------------------------

namespace {

Window pool_window(const char* op, const Tensor& input, const Pool2dParams& p, bool max) {
  TG_CHECK(input.dim() == 4, op, ": expected input (N, C, H, W) or (C, H, W), got ", shape_str(input.shape()));
  TG_CHECK(is_floating(input.dtype()), op, ": expected a floating-point input, got ", dtype_name(input.dtype()));
  for (int d = 0; d < 2; ++d) {
    TG_CHECK(p.kernel[d] >= 1 && p.stride[d] >= 1 && p.dilation[d] >= 1, op,
             ": kernel, stride and dilation must be positive, got kernel ", p.kernel[d], ", stride ", p.stride[d],
             ", dilation ", p.dilation[d]);
    TG_CHECK(p.padding[d] >= 0 && 2 * p.padding[d] <= p.kernel[d], op,
             ": padding must be at most half the kernel size, got padding ", p.padding[d], " for kernel ", p.kernel[d]);
  }
  const Shape& s = input.shape();
  Window g{s[0], s[1], s[2], s[3], std::size_t(p.kernel[0]), std::size_t(p.kernel[1]), std::size_t(p.stride[0]),
           std::size_t(p.stride[1]), std::size_t(p.padding[0]), std::size_t(p.padding[1]),
           max ? std::size_t(p.dilation[0]) : 1, max ? std::size_t(p.dilation[1]) : 1, 0, 0};
  g.oh = out_size(op, g.h, p.kernel[0], p.stride[0], p.padding[0], std::int64_t(g.dh), p.ceil_mode, s);
  g.ow = out_size(op, g.w, p.kernel[1], p.stride[1], p.padding[1], std::int64_t(g.dw), p.ceil_mode, s);
  return g;
}

#if defined(__AVX512F__)
// ---- max_pool2d's taps in registers (float32 on AVX-512) ----------------------------------------
// A row's outputs 16 at a time: best/where come in holding each window's first value inside the
// plane and go out holding its first maximum (or last NaN), every tap (i, j) compared in the
// scalar loop's order, so the results are the same bits. Lanes whose input at (i, j) lies in the
// padding are masked off. A stride of 1 reads a run of 16 values (a masked load); a stride sw up
// to 8 reads sw runs and moves every sw-th value into its lane (vpermps); a longer one gathers.
// (The scalar loop over a row of 7-13 outputs stored best and where on every tap, and the next
// tap's vector loads of them waited on those stores: MaxPool2d(5, 1, 2) over (2, 16, 13, 13),
// forward and backward, 0.22 ms against libtorch's 0.16-0.27, now 0.04-0.08. Gathers, the compare
// after them 52% of the forward's samples, left MaxPool2d(3) over (8, 16, 24, 24) at 1.1x
// libtorch's speed; the runs take 0.08-0.11 ms against 0.16-0.26.)
constexpr std::size_t kStridedRuns = 8;

// Tap column j of a block of 16 outputs of a row (block c0 = 16·index): the lanes whose input is
// inside the row, and for strides 2..kStridedRuns the runs of 16 values to load (run q holds
// values 16q .. 16q + 15 from the block's first input; lane l takes value sw·l).
struct TapLanes {
  __mmask16 inside = 0;  // 0: the tap lies in the padding for every output of the block
  std::uint8_t first_run = 0, end_run = 0;
  __mmask16 run[kStridedRuns] = {};
};

// What every row and plane share, so made once per call: each block's taps ([block · kw + j]),
// and for a stride sw each lane's step from the block's first input (sw·l) and, up to
// kStridedRuns, where its value sits: lane sw·l % 16 of run sw·l / 16.
struct TapPlan {
  std::vector<TapLanes> taps;
  alignas(64) std::int32_t lane_step[16] = {};
  alignas(64) std::int32_t value_lane[16] = {};
  __mmask16 from_run[kStridedRuns] = {};
};

TapPlan tap_plan(const Window& g) {
  TapPlan plan;
  for (std::size_t l = 0; l < 16; ++l) {
    plan.lane_step[l] = std::int32_t(g.sw * l);
    plan.value_lane[l] = std::int32_t(g.sw * l % 16);
    if (g.sw <= kStridedRuns) plan.from_run[g.sw * l / 16] |= __mmask16(1u << l);
  }
  std::vector<TapLanes>& taps = plan.taps;
  taps.resize((g.ow + 15) / 16 * g.kw);
  for (std::size_t j = 0; j < g.kw; ++j) {
    const ColumnRange columns = inside_columns(g.ow, g.sw, std::ptrdiff_t(j * g.dw) - std::ptrdiff_t(g.pw), g.w);
    for (std::size_t c0 = 0; c0 < g.ow; c0 += 16) {
      const std::size_t lo = std::max(columns.first, c0), hi = std::min(columns.last, c0 + 16);
      if (lo >= hi) continue;
      TapLanes& t = taps[c0 / 16 * g.kw + j];
      t.inside = __mmask16(kernels::first_lanes16(hi - c0) & ~kernels::first_lanes16(lo - c0));
      if (g.sw == 1 || g.sw > kStridedRuns) continue;
      // Values sw·(lo - c0) .. sw·(hi - c0 - 1): every one in the row.
      const std::size_t first = g.sw * (lo - c0), end = g.sw * (hi - c0 - 1) + 1;
      t.first_run = std::uint8_t(first / 16);
      t.end_run = std::uint8_t((end + 15) / 16);
      for (std::size_t q = t.first_run; q < t.end_run; ++q)
        t.run[q] = __mmask16(kernels::first_lanes16(std::min(end, 16 * q + 16) - 16 * q) &
                             ~kernels::first_lanes16(std::max(first, 16 * q) - 16 * q));
    }
  }
  return plan;
}

// Output row oy of the plane at src: the taps of rows first_row.. of each window (plan: tap_plan(g)).
void max_taps_in_registers(const float* src, const Window& g, std::size_t oy, std::size_t first_row,
                           const TapPlan& plan, float* best, std::uint32_t* where) {
  const __m512i lane_step = _mm512_load_si512(plan.lane_step);
  const __m512i value_lane = _mm512_load_si512(plan.value_lane);
  // The value at input index `start` + l·sw (as a number: a run's first lanes may lie before the
  // plane, masked off, and no pointer is made before the array).
  auto at = [src](std::ptrdiff_t start) {
    return reinterpret_cast<const float*>(reinterpret_cast<std::uintptr_t>(src) + std::uintptr_t(start) * sizeof(float));
  };
  for (std::size_t c0 = 0; c0 < g.ow; c0 += 16) {
    const __mmask16 lanes = kernels::first_lanes16(g.ow - c0);
    __m512 b = _mm512_maskz_loadu_ps(lanes, best + c0);
    __m512i w = _mm512_maskz_loadu_epi32(lanes, where + c0);
    const TapLanes* block = plan.taps.data() + c0 / 16 * g.kw;
    for (std::size_t i = first_row; i < g.kh; ++i) {
      const std::ptrdiff_t iy = std::ptrdiff_t(oy * g.sh + i * g.dh) - std::ptrdiff_t(g.ph);
      if (iy < 0 || iy >= std::ptrdiff_t(g.h)) continue;
      for (std::size_t j = 0; j < g.kw; ++j) {
        const TapLanes& t = block[j];
        if (!t.inside) continue;
        // Input index of lane l: (c0 + l)·sw + (j·dw - pw) in row iy; >= 0 in every lane inside.
        const std::ptrdiff_t start = iy * std::ptrdiff_t(g.w) + std::ptrdiff_t(c0 * g.sw + j * g.dw) - std::ptrdiff_t(g.pw);
        const __m512i k = _mm512_add_epi32(_mm512_set1_epi32(int(start)), lane_step);
        __m512 v;
        if (g.sw == 1) {
          v = _mm512_maskz_loadu_ps(t.inside, at(start));
        } else if (g.sw <= kStridedRuns) {
          v = _mm512_setzero_ps();
          for (std::size_t q = t.first_run; q < t.end_run; ++q)
            v = _mm512_mask_permutexvar_ps(v, plan.from_run[q], value_lane,
                                           _mm512_maskz_loadu_ps(t.run[q], at(start + std::ptrdiff_t(16 * q))));
        } else {
          v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), t.inside, k, src, 4);
        }
        const __mmask16 take = _mm512_mask_cmp_ps_mask(t.inside, v, b, _CMP_GT_OQ) |
                               _mm512_mask_cmp_ps_mask(t.inside, v, v, _CMP_UNORD_Q);
        b = _mm512_mask_mov_ps(b, take, v);
        w = _mm512_mask_mov_epi32(w, take, k);
      }
    }
    _mm512_mask_storeu_ps(best + c0, lanes, b);
    _mm512_mask_storeu_epi32(where + c0, lanes, w);
  }
}
#endif

// The index max pooling records for a window with no input value (wholly in the padding).
constexpr std::uint32_t kNoInput = std::numeric_limits<std::uint32_t>::max();

// The flat index (within its plane) of each window's first maximum (or last NaN), kNoInput for a
// window wholly in the padding; what the backward and return_indices read.
using ArgMax = std::vector<std::uint32_t, Allocator<std::uint32_t>>;
struct MaxPooled {
  Tensor out;
  std::shared_ptr<const ArgMax> argmax;
  Window g;
};

// A max pooling's output recorded with its backward: each output's gradient added at its window's
// maximum, per plane in output order (planes in parallel: the same bits for any thread count).
Tensor record_max_pool(const char* op, const MaxPooled& m, const Tensor& input) {
  return record(op, m.out, {input}, [argmax = m.argmax, g = m.g, shape = input.shape()](const Tensor& grad) -> Grads {
    return {dispatch_floating(grad.dtype(), "max pooling", [&]<class T>() {
      xt::xarray<T> dx = xt::xarray<T>::from_shape(shape);  // each plane zeroed by its task (xt::zeros: one serial pass)
      const T* dy = grad.data<T>();
      const std::size_t planes = g.n * g.c, cells = g.oh * g.ow;
      parallel::for_range(planes, std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(1, g.h * g.w)),
                          [&](std::size_t first, std::size_t last) {
        std::fill(dx.data() + first * g.h * g.w, dx.data() + last * g.h * g.w, T(0));
        for (std::size_t plane = first; plane < last; ++plane)
          for (std::size_t o = 0; o < cells; ++o)
            if (const std::uint32_t at = (*argmax)[plane * cells + o]; at != kNoInput)
              dx.data()[plane * g.h * g.w + at] += dy[plane * cells + o];
      });
      return make_tensor<T>(std::move(dx));
    })};
  });
}

// PyTorch's return_indices: each window's maximum as a flat index into its (H, W) plane, int64
// (N, C, Ho, Wo); -1 for a window wholly in the padding (PyTorch's points outside the plane).
Tensor argmax_indices(const MaxPooled& m) {
  xt::xarray<std::int64_t> indices = xt::xarray<std::int64_t>::from_shape({m.g.n, m.g.c, m.g.oh, m.g.ow});
  std::transform(m.argmax->begin(), m.argmax->end(), indices.begin(),
                 [](std::uint32_t at) { return at == kNoInput ? std::int64_t(-1) : std::int64_t(at); });
  return make_tensor<std::int64_t>(std::move(indices));
}

// The first maximum (or the last NaN, PyTorch's rule) of rows [y0, y1) and columns [x0, x1) of a
// plane `w` wide, and its flat index, in two passes over the window (in L1 after the first): its
// largest value and whether it holds a NaN, by batches in two independent maxima; then the first
// batch, in row-major order, holding that value (or the last holding a NaN), and in it the first
// such lane (the last). The value returned is the input's own (a -0 found before a 0 stays -0); a
// window of -inf only gives its first position. One pass carrying each lane's index beside its
// maximum (a select and a blend per batch, a chain of dependent compares) made AdaptiveMaxPool2d(1)
// over (128, 64, 14, 14) forward and backward 1.16 ms at one thread and 0.56 at two, two passes
// 0.59 and 0.19 (minimum of 3 runs by turns); one running maximum compared value after value had
// taken 18 ms. (xsimd's v != v is an ordered compare, false for NaN: isnan it is.)
template <class T>
std::pair<T, std::uint32_t> window_max(const T* src, std::size_t w, std::size_t y0, std::size_t y1, std::size_t x0,
                                       std::size_t x1) {
  using B = kernels::Batch<T>;
  constexpr std::size_t kLanes = B::size;
  constexpr T kLowest = -std::numeric_limits<T>::infinity();
  // The window as runs in row-major order: one run when it is as wide as the plane.
  const bool whole = x0 == 0 && x1 == w;
  const std::size_t runs = whole ? 1 : y1 - y0, length = whole ? (y1 - y0) * w : x1 - x0;
  const auto run = [&](std::size_t r) { return whole ? y0 * w : (y0 + r) * w + x0; };
  const auto batch = [&](const T* p, std::size_t k) {  // values k .. k + kLanes of a run (-inf past it)
    return k + kLanes <= length ? B::load_unaligned(p + k) : kernels::load_partial(p + k, length - k, kLowest);
  };
  B high0(kLowest), high1(kLowest);
  auto nan = xsimd::isnan(B(T(0)));  // all false
  for (std::size_t r = 0; r < runs; ++r) {
    const T* p = src + run(r);
    std::size_t k = 0;
    for (; k + 2 * kLanes <= length; k += 2 * kLanes) {
      const B v0 = B::load_unaligned(p + k), v1 = B::load_unaligned(p + k + kLanes);
      high0 = xsimd::max(high0, v0);
      high1 = xsimd::max(high1, v1);
      nan = nan || xsimd::isnan(v0) || xsimd::isnan(v1);
    }
    for (; k < length; k += kLanes) {  // the run's last batch or two
      const B v = batch(p, k);
      high0 = xsimd::max(high0, v);
      nan = nan || xsimd::isnan(v);
    }
  }
  if (xsimd::any(nan)) {
    for (std::size_t r = runs; r-- > 0;) {
      const T* p = src + run(r);
      for (std::size_t k = (length - 1) / kLanes * kLanes;; k -= kLanes) {
        if (xsimd::any(xsimd::isnan(batch(p, k))))
          for (std::size_t l = std::min(kLanes, length - k); l-- > 0;)
            if (p[k + l] != p[k + l]) return {p[k + l], std::uint32_t(run(r) + k + l)};
        if (k == 0) break;
      }
    }
  }
  alignas(64) std::array<T, kLanes> lanes;
  xsimd::max(high0, high1).store_aligned(lanes.data());
  const T largest = kernels::row_max(lanes.data(), kLanes);
  for (std::size_t r = 0; r < runs; ++r) {
    const T* p = src + run(r);
    for (std::size_t k = 0; k < length; k += kLanes)
      if (xsimd::any(batch(p, k) == B(largest)))
        for (std::size_t l = 0; l < std::min(kLanes, length - k); ++l)
          if (p[k + l] == largest) return {p[k + l], std::uint32_t(run(r) + k + l)};
  }
  return {kLowest, std::uint32_t(y0 * w + x0)};  // not reached: the largest value is one of them
}

// Whether max pooling searches each window on its own (window_max: two passes over its rows in
// batches, and some 16 steps to set up and finish) rather than comparing each tap across a row's
// outputs, up to 16 at a time (kh·kw compares, each a gather where the stride is past the runs
// that max_taps_in_registers reads): few outputs a row against a large window. A global
// MaxPool2d(7) over 7×7 planes, (64, 256, 7, 7) forward and backward at one thread: 2.7 ms with 49
// taps each gathered into one lane of 16 (libtorch 1.65).
bool window_at_a_time(const Window& g) {
  if (g.dh != 1 || g.dw != 1) return false;
  const std::size_t per_tap = g.sw == 1 ? 1 : g.sw <= 8 ? 2 : 8;  // a load, a few runs, a gather
  const std::size_t taps = g.kh * g.kw * per_tap / std::min<std::size_t>(g.ow, 16);
  return taps > 2 * g.kh * ((g.kw + 15) / 16) + 16;
}

// max_pool2d's values and each window's maximum (input batched), not recorded.
#if defined(__AVX512F__)
// One output row of 2×2 windows at stride 2, inside the plane (float32): 16 windows at a time, the
// two input rows' even and odd columns split by permutes, the four taps compared in window order
// with the scalar loop's rule (a larger value or a NaN takes the place). GCC vectorised that loop
// 16 windows at a time and ran a 14-wide row (a 28-wide plane) one window at a time:
// `MaxPool2d(2)` on (128, 32, 28, 28) took 4 ms, on 32-wide planes of as many values 1.
void max_pool_pairs_row(const float* r0, const float* r1, std::size_t w, std::size_t ow, std::uint32_t top,
                        float* best, std::uint32_t* where) {
  const __m512i pick_even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i pick_odd = _mm512_add_epi32(pick_even, _mm512_set1_epi32(1));
  const __m512i twice = _mm512_slli_epi32(lane_numbers(), 1);
  for (std::size_t x = 0; x < ow; x += 16) {
    const std::size_t out = std::min<std::size_t>(ow - x, 16), in = 2 * out;
    const __mmask16 low = kernels::first_lanes16(std::min<std::size_t>(in, 16));
    const __mmask16 high = kernels::first_lanes16(in > 16 ? in - 16 : 0);
    const __m512 top_lo = kernels::load16(low, r0 + 2 * x), top_hi = kernels::load16(high, r0 + 2 * x + 16);
    const __m512 bot_lo = kernels::load16(low, r1 + 2 * x), bot_hi = kernels::load16(high, r1 + 2 * x + 16);
    const __m512i k = _mm512_add_epi32(_mm512_set1_epi32(int(top + 2 * x)), twice);
    __m512 b = _mm512_permutex2var_ps(top_lo, pick_even, top_hi);
    __m512i at = k;
    auto consider = [&](__m512 v, __m512i index) {
      const __mmask16 take = _mm512_cmp_ps_mask(v, b, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
      b = _mm512_mask_mov_ps(b, take, v);
      at = _mm512_mask_mov_epi32(at, take, index);
    };
    consider(_mm512_permutex2var_ps(top_lo, pick_odd, top_hi), _mm512_add_epi32(k, _mm512_set1_epi32(1)));
    consider(_mm512_permutex2var_ps(bot_lo, pick_even, bot_hi), _mm512_add_epi32(k, _mm512_set1_epi32(int(w))));
    consider(_mm512_permutex2var_ps(bot_lo, pick_odd, bot_hi), _mm512_add_epi32(k, _mm512_set1_epi32(int(w) + 1)));
    const __mmask16 stored = kernels::first_lanes16(out);
    _mm512_mask_storeu_ps(best + x, stored, b);
    _mm512_mask_storeu_epi32(where + x, stored, at);
  }
}
#endif

MaxPooled max_pool2d_values(const Tensor& input, const Pool2dParams& p) {
  const Window g = pool_window("max_pool2d", input, p, true);
  TG_CHECK(!p.divisor_override, "max_pool2d: divisor_override is avg_pool2d's option, got ", p.divisor_override.value_or(0));
  const std::size_t planes = g.n * g.c;
  auto argmax = std::make_shared<ArgMax>(planes * g.oh * g.ow);
  Tensor out = dispatch_floating(input.dtype(), "max_pool2d", [&]<class T>() {
    xt::xarray<T> y = xt::xarray<T>::from_shape({g.n, g.c, g.oh, g.ow});
    const T* x = input.data<T>();
    const bool inside = g.ph == 0 && g.pw == 0 && (g.oh - 1) * g.sh + (g.kh - 1) * g.dh < g.h &&
                        (g.ow - 1) * g.sw + (g.kw - 1) * g.dw < g.w;
    const bool pairs = g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.dh == 1 && g.dw == 1;
    const bool per_window = window_at_a_time(g);
#if defined(__AVX512F__)
    const TapPlan plan = std::is_same_v<T, float> ? tap_plan(g) : TapPlan();
#endif
    parallel::for_range(planes, std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(1, g.h * g.w)),
                        [&](std::size_t first, std::size_t last) {
      for (std::size_t plane = first; plane < last; ++plane) {
        const T* src = x + plane * g.h * g.w;
        if (per_window) {  // each window cut to the plane (padding never wins): never empty, dilation 1
          for (std::size_t oy = 0; oy < g.oh; ++oy) {
            const std::ptrdiff_t top = std::ptrdiff_t(oy * g.sh) - std::ptrdiff_t(g.ph);
            const std::size_t y0 = std::size_t(std::max<std::ptrdiff_t>(top, 0));
            const std::size_t y1 = std::min(g.h, std::size_t(top + std::ptrdiff_t(g.kh)));
            for (std::size_t ox = 0; ox < g.ow; ++ox) {
              const std::ptrdiff_t left = std::ptrdiff_t(ox * g.sw) - std::ptrdiff_t(g.pw);
              const std::size_t x0 = std::size_t(std::max<std::ptrdiff_t>(left, 0));
              const std::size_t x1 = std::min(g.w, std::size_t(left + std::ptrdiff_t(g.kw)));
              const auto [best, where] = window_max(src, g.w, y0, y1, x0, x1);
              y.data()[(plane * g.oh + oy) * g.ow + ox] = best;
              (*argmax)[(plane * g.oh + oy) * g.ow + ox] = where;
            }
          }
          continue;
        }
        if (inside && pairs) {
          // The common 2x2 window with stride 2: the four values of each window compared in
          // registers, in window order, with the same first-maximum / last-NaN rule as below.
          for (std::size_t oy = 0; oy < g.oh; ++oy) {
            const std::size_t o = (plane * g.oh + oy) * g.ow;
            const std::size_t top = 2 * oy * g.w;
            const T* r0 = src + top;
            const T* r1 = r0 + g.w;
            T* best = y.data() + o;
            std::uint32_t* where = argmax->data() + o;
#if defined(__AVX512F__)
            if constexpr (std::is_same_v<T, float>) {
              max_pool_pairs_row(r0, r1, g.w, g.ow, std::uint32_t(top), best, where);
              continue;
            }
#endif
            for (std::size_t ox = 0; ox < g.ow; ++ox) {
              const std::uint32_t k = std::uint32_t(top + 2 * ox);
              T b = r0[2 * ox];
              std::uint32_t w = k;
              auto consider = [&](T v, std::uint32_t at) {
                // Selected with bit masks, not a conditional the compiler may turn into a branch
                // (on real data it is a coin flip).
                const bool take = (v > b) | (v != v);
                b = select_bits(take, v, b);
                w ^= (w ^ at) & (0u - std::uint32_t(take));
              };
              consider(r0[2 * ox + 1], k + 1);
              consider(r1[2 * ox], k + std::uint32_t(g.w));
              consider(r1[2 * ox + 1], k + std::uint32_t(g.w) + 1);
              best[ox] = b;
              where[ox] = w;
            }
          }
          continue;
        }
        // Every other window: one output row at a time, each window offset (i, j) compared across
        // the outputs of the row whose input at (i, j) lies inside the plane (padding never wins:
        // PyTorch's windows leave it out), so the loop over ox has no branches (on real data the
        // comparison is a coin flip) and vectorises. Each output starts from the first value of its
        // window inside the plane (compared with itself again: no change). A window at a time,
        // with bounds checks, took 21.9 ms for MaxPool2d(3, 2, padding 1) on (128, 32, 28, 28).
        for (std::size_t oy = 0; oy < g.oh; ++oy) {
          const std::size_t o = (plane * g.oh + oy) * g.ow;
          T* best = y.data() + o;
          std::uint32_t* where = argmax->data() + o;
          auto input_row = [&](std::size_t i) {  // -1 when the row is padding
            const std::ptrdiff_t iy = std::ptrdiff_t(oy * g.sh + i * g.dh) - std::ptrdiff_t(g.ph);
            return iy < 0 || iy >= std::ptrdiff_t(g.h) ? std::ptrdiff_t(-1) : iy;
          };
          // A dilated window can lie wholly in the padding (kernel 2, dilation 2, padding 1 over
          // one row): its output is -inf and its gradient goes nowhere (kNoInput), where
          // PyTorch's kernel gives -inf and an index outside the plane.
          std::size_t first_row = 0;
          while (first_row < g.kh && input_row(first_row) < 0) ++first_row;
          if (first_row == g.kh) {
            std::fill_n(best, g.ow, -std::numeric_limits<T>::infinity());
            std::fill_n(where, g.ow, kNoInput);
            continue;
          }
          const std::size_t top = std::size_t(input_row(first_row)) * g.w;
          // From output column `direct` on, the window's first tap (j = 0) is inside the plane: a
          // plain strided copy (a search per column made MaxPool1d(2) 22% slower).
          const std::size_t direct = std::min(g.ow, (g.pw + g.sw - 1) / g.sw);
          for (std::size_t ox = 0; ox < direct; ++ox) {
            std::ptrdiff_t ix = std::ptrdiff_t(ox * g.sw) - std::ptrdiff_t(g.pw);
            while (ix < 0) ix += std::ptrdiff_t(g.dw);
            // ix must come before `end`, one step past the window's last tap.
            const std::ptrdiff_t end = std::ptrdiff_t(ox * g.sw + g.kw * g.dw) - std::ptrdiff_t(g.pw);
            const bool inside = ix < std::ptrdiff_t(g.w) && ix < end;
            best[ox] = inside ? src[top + std::size_t(ix)] : -std::numeric_limits<T>::infinity();
            where[ox] = inside ? std::uint32_t(top + std::size_t(ix)) : kNoInput;
          }
          for (std::size_t ox = direct; ox < g.ow; ++ox) {
            const std::size_t k = top + ox * g.sw - g.pw;
            best[ox] = src[k];
            where[ox] = std::uint32_t(k);
          }
#if defined(__AVX512F__)
          if constexpr (std::is_same_v<T, float>) {
            max_taps_in_registers(src, g, oy, first_row, plan, best, where);
            continue;
          }
#endif
          for (std::size_t i = first_row; i < g.kh; ++i) {
            const std::ptrdiff_t iy = input_row(i);
            if (iy < 0) continue;
            for (std::size_t j = 0; j < g.kw; ++j) {
              const std::ptrdiff_t offset = std::ptrdiff_t(std::size_t(iy) * g.w + j * g.dw) - std::ptrdiff_t(g.pw);
              const ColumnRange columns =
                  inside_columns(g.ow, g.sw, std::ptrdiff_t(j * g.dw) - std::ptrdiff_t(g.pw), g.w);
              for (std::size_t ox = columns.first; ox < columns.last; ++ox) {
                const std::size_t k = std::size_t(std::ptrdiff_t(ox * g.sw) + offset);
                const T v = src[k], b = best[ox];
                // The first maximum, or the last NaN, as PyTorch's (its kernel takes v when
                // v > best or v is NaN); bitwise | keeps it free of branches.
                const std::uint32_t take = std::uint32_t(v > b) | std::uint32_t(v != v);
                best[ox] = select_bits(bool(take), v, b);
                where[ox] ^= (where[ox] ^ std::uint32_t(k)) & (0u - take);
              }
            }
          }
        }
      }
    });
    return make_tensor<T>(std::move(y));
  });
  return {out, argmax, g};
}

// adaptive_max_pool2d's values and each window's maximum (input batched), not recorded: PyTorch's
// adaptive windows (as adaptive_avg_pool2d's), each searched in row-major order for its first
// maximum or last NaN (PyTorch's rule).
MaxPooled adaptive_max_pool2d_values(const Tensor& input, std::array<std::int64_t, 2> output_size) {
  const char* op = "adaptive_max_pool2d";
  TG_CHECK(input.dim() == 4, op, ": expected input (N, C, H, W) or (C, H, W), got ", shape_str(input.shape()));
  TG_CHECK(is_floating(input.dtype()), op, ": expected a floating-point input, got ", dtype_name(input.dtype()));
  TG_CHECK(output_size[0] >= 0 && output_size[1] >= 0, op, ": output_size must be non-negative, got (", output_size[0],
           ", ", output_size[1], ")");
  const Shape& s = input.shape();
  TG_CHECK(s[2] > 0 && s[3] > 0, op, ": expected non-empty spatial dims, got ", shape_str(s));
  TG_CHECK(s[2] * s[3] < kNoInput, op, ": a plane of ", s[2], " x ", s[3], " values is too large");
  const Window g{s[0], s[1], s[2], s[3], 1, 1, 1, 1, 0, 0, 1, 1, std::size_t(output_size[0]), std::size_t(output_size[1])};
  std::vector<std::size_t> y0(g.oh), y1(g.oh), x0(g.ow), x1(g.ow);
  for (std::size_t oy = 0; oy < g.oh; ++oy) {
    y0[oy] = oy * g.h / g.oh;
    y1[oy] = ((oy + 1) * g.h + g.oh - 1) / g.oh;
  }
  for (std::size_t ox = 0; ox < g.ow; ++ox) {
    x0[ox] = ox * g.w / g.ow;
    x1[ox] = ((ox + 1) * g.w + g.ow - 1) / g.ow;
  }
  const std::size_t planes = g.n * g.c, cells = g.oh * g.ow;
  auto argmax = std::make_shared<ArgMax>(planes * cells);
  Tensor out = dispatch_floating(input.dtype(), op, [&]<class T>() {
    xt::xarray<T> y = xt::xarray<T>::from_shape({g.n, g.c, g.oh, g.ow});
    const T* x = input.data<T>();
    parallel::for_range(planes, std::max<std::size_t>(1, parallel::kGrain / (g.h * g.w)), [&](std::size_t first,
                                                                                             std::size_t last) {
      for (std::size_t plane = first; plane < last; ++plane) {
        const T* src = x + plane * g.h * g.w;
        for (std::size_t oy = 0; oy < g.oh; ++oy)
          for (std::size_t ox = 0; ox < g.ow; ++ox) {
            const auto [best, where] = window_max(src, g.w, y0[oy], y1[oy], x0[ox], x1[ox]);
            y.data()[plane * cells + oy * g.ow + ox] = best;
            (*argmax)[plane * cells + oy * g.ow + ox] = where;
          }
      }
    });
    return make_tensor<T>(std::move(y));
  });
  return {out, argmax, g};
}

}  // namespace

Tensor max_pool2d(const Tensor& input_in, const Pool2dParams& p) {
  const Tensor input = batched(input_in);
  return unbatched_like(record_max_pool("max_pool2d", max_pool2d_values(input, p), input), input_in);
}

std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& input_in, const Pool2dParams& p) {
  const Tensor input = batched(input_in);
  const MaxPooled m = max_pool2d_values(input, p);
  return {unbatched_like(record_max_pool("max_pool2d", m, input), input_in), unbatched_like(argmax_indices(m), input_in)};
}

Tensor adaptive_max_pool2d(const Tensor& input_in, std::array<std::int64_t, 2> output_size) {
  const Tensor input = batched(input_in);
  return unbatched_like(record_max_pool("adaptive_max_pool2d", adaptive_max_pool2d_values(input, output_size), input),
                        input_in);
}

std::pair<Tensor, Tensor> adaptive_max_pool2d_with_indices(const Tensor& input_in, std::array<std::int64_t, 2> output_size) {
  const Tensor input = batched(input_in);
  const MaxPooled m = adaptive_max_pool2d_values(input, output_size);
  return {unbatched_like(record_max_pool("adaptive_max_pool2d", m, input), input_in),
          unbatched_like(argmax_indices(m), input_in)};
}

namespace {

// The windows of average pooling: for output (oy, ox) the input rows [y0, y1) and columns [x0, x1)
// and the divisor. Adaptive pooling has its own windows (below).
struct AvgWindows {
  std::vector<std::size_t> y0, y1, x0, x1;
  std::vector<double> divisor;  // per output cell of a plane
};

AvgWindows fixed_windows(const Window& g, bool count_include_pad, std::optional<std::int64_t> divisor_override) {
  AvgWindows a;
  for (std::size_t oy = 0; oy < g.oh; ++oy) {
    const std::ptrdiff_t start = std::ptrdiff_t(oy * g.sh) - std::ptrdiff_t(g.ph);
    const std::ptrdiff_t end = std::min<std::ptrdiff_t>(start + std::ptrdiff_t(g.kh), std::ptrdiff_t(g.h + g.ph));
    a.y0.push_back(std::size_t(std::max<std::ptrdiff_t>(start, 0)));
    a.y1.push_back(std::size_t(std::min<std::ptrdiff_t>(end, std::ptrdiff_t(g.h))));
    a.divisor.push_back(double(end - start));  // padded window height (for count_include_pad)
  }
  std::vector<double> widths;
  for (std::size_t ox = 0; ox < g.ow; ++ox) {
    const std::ptrdiff_t start = std::ptrdiff_t(ox * g.sw) - std::ptrdiff_t(g.pw);
    const std::ptrdiff_t end = std::min<std::ptrdiff_t>(start + std::ptrdiff_t(g.kw), std::ptrdiff_t(g.w + g.pw));
    a.x0.push_back(std::size_t(std::max<std::ptrdiff_t>(start, 0)));
    a.x1.push_back(std::size_t(std::min<std::ptrdiff_t>(end, std::ptrdiff_t(g.w))));
    widths.push_back(double(end - start));
  }
  std::vector<double> divisor;
  for (std::size_t oy = 0; oy < g.oh; ++oy)
    for (std::size_t ox = 0; ox < g.ow; ++ox)
      divisor.push_back(divisor_override ? double(*divisor_override)
                        : count_include_pad ? a.divisor[oy] * widths[ox]
                                            : double((a.y1[oy] - a.y0[oy]) * (a.x1[ox] - a.x0[ox])));
  a.divisor = std::move(divisor);
  return a;
}

// Whether windows [lo[i], hi[i]) tile [0, size): each position in exactly one window.
bool tiles(const std::vector<std::size_t>& lo, const std::vector<std::size_t>& hi, std::size_t size) {
  if (lo.empty() || lo.front() != 0 || hi.back() != size) return false;
  for (std::size_t i = 0; i + 1 < lo.size(); ++i)
    if (hi[i] != lo[i + 1]) return false;
  return true;
}

// The double sum of a window's run of n contiguous values: SIMD lanes for a long run (a global
// average pool's whole plane), one chain for a short one. The choice depends on n only.
template <class T>
double run_sum(const T* p, std::size_t n) {
  if (n >= 32) return kernels::lane_sum(n, [p](auto at) { return at(p); });
  double total = 0;
  for (std::size_t i = 0; i < n; ++i) total += double(p[i]);
  return total;
}

// The longest run of windows [first, last) of one width (shorter than run_sum's lanes) whose starts
// are `step` apart: the windows of a stride away from the padding. Their sums go tap by tap over
// the whole run (a vectorised pass per tap), not window by window in a chain of `width` adds:
// AvgPool2d(3, 1, 1) forward and backward at one thread, over (8, 32, 32, 32) 1.16 -> 0.73 ms,
// over rows of 512 (4, 16, 1, 512) 0.100 -> 0.034 ms.
struct EvenWindows {
  std::size_t first = 0, last = 0, width = 0, step = 0;
};

EvenWindows even_windows(const std::vector<std::size_t>& lo, const std::vector<std::size_t>& hi) {
  EvenWindows best;
  for (std::size_t first = 0; first < lo.size();) {
    const std::size_t width = hi[first] - lo[first];
    const std::size_t step = first + 1 < lo.size() ? lo[first + 1] - lo[first] : 0;
    std::size_t last = first + 1;
    while (last < lo.size() && hi[last] - lo[last] == width && lo[last] - lo[last - 1] == step) ++last;
    if (width < 32 && last - first > best.last - best.first) best = {first, last, width, step};
    first = last == first + 1 ? last : last - 1;  // (the run's last window may start the next run)
  }
  // A shorter run costs more in its passes' set-up than in its chains (3x3 windows over 16 x 16
  // planes ran 12% slower tap by tap): none.
  return best.last - best.first >= 24 ? best : EvenWindows{};
}

// The even run's sums t[i] (window first + i), tap by tap; and the backward's transpose, each
// column's shares added in the windows' order (taps last to first). Not inlined, and rows without
// a run keep their plain loop: inlined, the taps' loops slowed small planes' rows by 5-9%.
template <class V>
[[gnu::noinline]] void even_run_sums(const V* values, const EvenWindows& even, double* t) {
  const std::size_t n = even.last - even.first;
  std::fill(t, t + n, 0.0);
  for (std::size_t j = 0; j < even.width; ++j) {
    const V* v = values + j;
    if (even.step == 1) {
      for (std::size_t i = 0; i < n; ++i) t[i] += double(v[i]);
    } else {
      for (std::size_t i = 0; i < n; ++i) t[i] += double(v[i * even.step]);
    }
  }
}

// columns[ix] = 0 + Σ_r top[r·w + ix] in Acc: Block columns at a time, their sums in registers
// through the rows (a pass per row over the sums in memory was 28% of AvgPool2d(3, 1, 1)'s forward).
template <std::size_t Block, class T, class Acc>
[[gnu::always_inline]] inline void column_block(const T* top, std::size_t rows, std::size_t w, Acc* columns) {
  Acc acc[Block] = {};
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t k = 0; k < Block; ++k) acc[k] += Acc(top[r * w + k]);
  std::copy(acc, acc + Block, columns);
}

template <class T, class Acc>
void column_sums(const T* top, std::size_t rows, std::size_t w, Acc* columns) {
  std::size_t ix = 0;
  for (; ix + 16 <= w; ix += 16) column_block<16>(top + ix, rows, w, columns + ix);
  for (; ix + 4 <= w; ix += 4) column_block<4>(top + ix, rows, w, columns + ix);
  for (; ix < w; ++ix) column_block<1>(top + ix, rows, w, columns + ix);
}

// totals[ox] = the double sum of values[x0[ox] .. x1[ox]): the even run's by taps, the others
// each in a chain of its own (run_sum).
template <class V>
[[gnu::always_inline]] inline void window_sums(const V* values, const AvgWindows& a, const EvenWindows& even,
                                               std::size_t ow, double* totals) {
  if (even.last == even.first) {
    for (std::size_t ox = 0; ox < ow; ++ox) totals[ox] = run_sum(values + a.x0[ox], a.x1[ox] - a.x0[ox]);
    return;
  }
  for (std::size_t ox = 0; ox < even.first; ++ox) totals[ox] = run_sum(values + a.x0[ox], a.x1[ox] - a.x0[ox]);
  even_run_sums(values + a.x0[even.first], even, totals + even.first);
  for (std::size_t ox = even.last; ox < ow; ++ox) totals[ox] = run_sum(values + a.x0[ox], a.x1[ox] - a.x0[ox]);
}

template <class T>
[[gnu::noinline]] void even_run_shares(const T* shares, const EvenWindows& even, T* to) {
  const std::size_t n = even.last - even.first;
  for (std::size_t j = even.width; j-- > 0;) {
    T* r = to + j;
    if (even.step == 1) {
      for (std::size_t i = 0; i < n; ++i) r[i] += shares[i];
    } else {
      for (std::size_t i = 0; i < n; ++i) r[i * even.step] += shares[i];
    }
  }
}

Tensor avg_pool(const char* op, const Tensor& input, const Window& g, std::shared_ptr<const AvgWindows> a) {
  const std::size_t planes = g.n * g.c, cells = g.oh * g.ow;
  const std::size_t grain = std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(1, g.h * g.w));
  const EvenWindows even = even_windows(a->x0, a->x1);
  // float32 multiplies by each divisor's double reciprocal (a division per output was 30% of the
  // forward of AvgPool2d(3, 1, 1)); the product rounded to float is the quotient rounded to float
  // but for a double rounding once in some 2^28 cases (1 ulp). float64 divides.
  auto inverse = std::make_shared<std::vector<double>>(a->divisor.size());
  for (std::size_t i = 0; i < a->divisor.size(); ++i) (*inverse)[i] = 1.0 / a->divisor[i];
  auto divide = [inverse, a]<class T>(double v, std::size_t cell) {
    if constexpr (std::is_same_v<T, float>) return T(v * (*inverse)[cell]);
    else return T(v / a->divisor[cell]);
  };
  Tensor out = dispatch_floating(input.dtype(), op, [&]<class T>() {
    xt::xarray<T> y = xt::xarray<T>::from_shape({g.n, g.c, g.oh, g.ow});
    const T* x = input.data<T>();
    // A window as wide as the plane sums its rows as one contiguous run; narrower ones share the
    // column sums of their rows (column_sums: 16 columns at a time through the rows), each
    // window then adding its columns' sums: window by window, row by row, a short chain each
    // (AvgPool2d(3, stride 1) spent half its step there).
    const bool whole_rows = g.ow == 1 && a->x1[0] - a->x0[0] == g.w;
    parallel::for_range(planes, grain, [&](std::size_t first, std::size_t last) {
      std::vector<double> totals(g.ow);  // one output row's sums, divided in one vectorised pass
      Buffer<double> columns(whole_rows ? 0 : g.w);
      for (std::size_t plane = first; plane < last; ++plane)
        for (std::size_t oy = 0; oy < g.oh; ++oy) {
          const std::size_t rows = a->y1[oy] - a->y0[oy];
          const T* top = x + (plane * g.h + a->y0[oy]) * g.w;
          if (whole_rows) {
            totals[0] = run_sum(top, rows * g.w);
          } else if (rows == 1) {  // (the column sums would be the row itself)
            window_sums(top, *a, even, g.ow, totals.data());
          } else {
            column_sums(top, rows, g.w, columns.data());
            window_sums(columns.data(), *a, even, g.ow, totals.data());
          }
          T* out = y.data() + plane * cells + oy * g.ow;
          for (std::size_t ox = 0; ox < g.ow; ++ox) out[ox] = divide.template operator()<T>(totals[ox], oy * g.ow + ox);
        }
    });
    return make_tensor<T>(std::move(y));
  });
  // Windows that tile the plane (pooling by the kernel's own stride, a global average, ...) give
  // every input position exactly one share: it is written, not added to a zeroed gradient.
  // Their rows are then one gather of the output row's shares: owner[ix] = the window of column ix.
  const bool tiled = tiles(a->y0, a->y1, g.h) && tiles(a->x0, a->x1, g.w);
  std::vector<std::uint32_t> owner(tiled ? g.w : 0);
  for (std::size_t ox = 0; tiled && ox < g.ow; ++ox)
    std::fill(owner.begin() + std::ptrdiff_t(a->x0[ox]), owner.begin() + std::ptrdiff_t(a->x1[ox]), std::uint32_t(ox));
  // Overlapping windows: input row iy takes the shares of output rows [first_out[iy], end_out[iy])
  // (windows move down with oy, so those rows are consecutive; none for a row no window holds).
  std::vector<std::uint32_t> first_out(tiled ? 0 : g.h, 0), end_out(tiled ? 0 : g.h, 0);
  for (std::size_t oy = g.oh; !tiled && oy-- > 0;)
    for (std::size_t iy = a->y0[oy]; iy < a->y1[oy]; ++iy) {
      first_out[iy] = std::uint32_t(oy);
      end_out[iy] = std::max(end_out[iy], std::uint32_t(oy + 1));
    }
  return record(op, out, {input}, [a, g, op, grain, tiled, even, divide, owner = std::move(owner), first_out = std::move(first_out),
                                   end_out = std::move(end_out), shape = input.shape()](const Tensor& grad) -> Grads {
    return {dispatch_floating(grad.dtype(), op, [&]<class T>() {
      xt::xarray<T> dx = xt::xarray<T>::from_shape(shape);  // every row written once, below
      const T* dy = grad.data<T>();
      const std::size_t planes = g.n * g.c, cells = g.oh * g.ow;
      parallel::for_range(planes, grain, [&](std::size_t first, std::size_t last) {
        std::vector<T> shares(g.ow);  // one output row's dy / divisor, in one vectorised pass
        // Overlapping windows: what each output row adds to each input column, summed once (window
        // by window, a short scalar loop per window and input row: 59% of AdaptiveAvgPool2d(3)'s
        // step on 14×14 planes), then each input row the sum of its output rows' in vectorised
        // passes, written once (added to a zeroed gradient, output row by output row, the zeroing
        // was one serial pass and every row was read and written again for each of its windows).
        Buffer<T> row_shares(tiled ? 0 : g.oh * g.w);
        for (std::size_t plane = first; plane < last; ++plane) {
          for (std::size_t oy = 0; oy < g.oh; ++oy) {
            const T* g_row = dy + plane * cells + oy * g.ow;
            for (std::size_t ox = 0; ox < g.ow; ++ox) shares[ox] = divide.template operator()<T>(double(g_row[ox]), oy * g.ow + ox);
            if (!tiled) {
              T* to = row_shares.data() + oy * g.w;
              std::fill(to, to + g.w, T(0));
              auto add_windows = [&](std::size_t first, std::size_t last) {
                for (std::size_t ox = first; ox < last; ++ox)
                  for (std::size_t ix = a->x0[ox]; ix < a->x1[ox]; ++ix) to[ix] += shares[ox];
              };
              if (even.last == even.first) {
                add_windows(0, g.ow);
              } else {  // (in the windows' order: each column's shares add up as they did one by one)
                add_windows(0, even.first);
                even_run_shares(shares.data() + even.first, even, to + a->x0[even.first]);
                add_windows(even.last, g.ow);
              }
              continue;
            }
            // A window as wide as the plane: its rows are one run, one fill (a global average over
            // 7×7 planes made 7 short fills a plane, 2.2× the time).
            if (g.ow == 1) {
              T* top = dx.data() + (plane * g.h + a->y0[oy]) * g.w;
              std::fill(top, top + (a->y1[oy] - a->y0[oy]) * g.w, shares[0]);
              continue;
            }
            for (std::size_t iy = a->y0[oy]; iy < a->y1[oy]; ++iy) {
              T* row = dx.data() + (plane * g.h + iy) * g.w;
              for (std::size_t ix = 0; ix < g.w; ++ix) row[ix] = shares[owner[ix]];
            }
          }
          // Each input row: 0 + the shares of its output rows, in their order (the sum the zeroed
          // gradient got one output row at a time); 0 for a row no window holds.
          for (std::size_t iy = 0; !tiled && iy < g.h; ++iy)
            column_sums(row_shares.data() + first_out[iy] * g.w, end_out[iy] - first_out[iy], g.w,
                        dx.data() + (plane * g.h + iy) * g.w);
        }
      });
      return make_tensor<T>(std::move(dx));
    })};
  });
}

}  // namespace

Tensor avg_pool2d(const Tensor& input_in, const Pool2dParams& p) {
  const Tensor input = batched(input_in);
  const Window g = pool_window("avg_pool2d", input, p, false);
  TG_CHECK(p.dilation[0] == 1 && p.dilation[1] == 1, "avg_pool2d: dilation is max pooling's option, got (",
           p.dilation[0], ", ", p.dilation[1], ")");
  TG_CHECK(!p.divisor_override || *p.divisor_override != 0, "avg_pool2d: divisor_override must be non-zero, got 0");
  auto windows = std::make_shared<const AvgWindows>(fixed_windows(g, p.count_include_pad, p.divisor_override));
  return unbatched_like(avg_pool("avg_pool2d", input, g, windows), input_in);
}

Tensor adaptive_avg_pool2d(const Tensor& input_in, std::array<std::int64_t, 2> output_size) {
  const Tensor input = batched(input_in);
  TG_CHECK(input.dim() == 4, "adaptive_avg_pool2d: expected input (N, C, H, W) or (C, H, W), got ",
           shape_str(input_in.shape()));
  TG_CHECK(is_floating(input.dtype()), "adaptive_avg_pool2d: expected a floating-point input, got ",
           dtype_name(input.dtype()));
  TG_CHECK(output_size[0] >= 0 && output_size[1] >= 0, "adaptive_avg_pool2d: output_size must be non-negative, got (",
           output_size[0], ", ", output_size[1], ")");  // 0 gives an empty result, as in PyTorch
  const Shape& s = input.shape();
  TG_CHECK(s[2] > 0 && s[3] > 0, "adaptive_avg_pool2d: expected non-empty spatial dims, got ", shape_str(s));
  Window g{s[0], s[1], s[2], s[3], 1, 1, 1, 1, 0, 0, 1, 1, std::size_t(output_size[0]), std::size_t(output_size[1])};
  AvgWindows a;
  for (std::size_t oy = 0; oy < g.oh; ++oy) {
    a.y0.push_back(oy * g.h / g.oh);
    a.y1.push_back(((oy + 1) * g.h + g.oh - 1) / g.oh);
  }
  for (std::size_t ox = 0; ox < g.ow; ++ox) {
    a.x0.push_back(ox * g.w / g.ow);
    a.x1.push_back(((ox + 1) * g.w + g.ow - 1) / g.ow);
  }
  for (std::size_t oy = 0; oy < g.oh; ++oy)
    for (std::size_t ox = 0; ox < g.ow; ++ox) a.divisor.push_back(double((a.y1[oy] - a.y0[oy]) * (a.x1[ox] - a.x0[ox])));
  return unbatched_like(avg_pool("adaptive_avg_pool2d", input, g, std::make_shared<const AvgWindows>(std::move(a))),
                        input_in);
}

namespace {

// (N, C, L) or (C, L) as (N, C, 1, L) or (C, 1, L), through a 2-D op, and back.
template <class Op>
Tensor as_1d(const char* op, const Tensor& input, Op&& pool2d) {
  TG_CHECK(input.dim() == 2 || input.dim() == 3, op, ": expected input (N, C, L) or (C, L), got ",
           shape_str(input.shape()));
  return squeeze(pool2d(unsqueeze(input, -2)), -2);
}

}  // namespace

Tensor max_pool1d(const Tensor& input, std::int64_t kernel, std::int64_t stride, std::int64_t padding,
                  std::int64_t dilation, bool ceil_mode) {
  Pool2dParams p;
  p.kernel = {1, kernel};
  p.stride = {1, stride};
  p.padding = {0, padding};
  p.dilation = {1, dilation};
  p.ceil_mode = ceil_mode;
  return as_1d("max_pool1d", input, [&](const Tensor& x) { return max_pool2d(x, p); });
}

Tensor avg_pool1d(const Tensor& input, std::int64_t kernel, std::int64_t stride, std::int64_t padding,
                  bool ceil_mode, bool count_include_pad) {
  Pool2dParams p;
  p.kernel = {1, kernel};
  p.stride = {1, stride};
  p.padding = {0, padding};
  p.ceil_mode = ceil_mode;
  p.count_include_pad = count_include_pad;
  return as_1d("avg_pool1d", input, [&](const Tensor& x) { return avg_pool2d(x, p); });
}

Tensor adaptive_avg_pool1d(const Tensor& input, std::int64_t output_size) {
  return as_1d("adaptive_avg_pool1d", input, [&](const Tensor& x) { return adaptive_avg_pool2d(x, {1, output_size}); });
}

Tensor adaptive_max_pool1d(const Tensor& input, std::int64_t output_size) {
  return as_1d("adaptive_max_pool1d", input, [&](const Tensor& x) { return adaptive_max_pool2d(x, {1, output_size}); });
}

}  // namespace tg
