// interpolate, nearest and (bi)linear. Each spatial dim gets a table of (two source indices, two
// weights) per output index, computed once per call as PyTorch's upsampling kernels compute them
// (UpSample.h: nearest_idx, area_pixel_compute_source_index, compute_source_index_and_lambda, in
// the input's type); a 1-D input is a 2-D one of height 1. Each value is PyTorch's
// a0·(b0·x00 + b1·x01) + a1·(b0·x10 + b1·x11), computed along the columns first, then down the
// rows (interpolate_forward). Planes run in parallel and each plane's gradient is summed in a
// fixed order: the same bits for any thread count.
#include "core/ops/interpolate.hpp"
#include "core/xtensor.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/allocator.hpp"
#include "core/autograd.hpp"
#include "core/parallel.hpp"

namespace tg {

namespace {

const char* mode_name(InterpolateMode mode) {
  return mode == InterpolateMode::Nearest ? "nearest" : mode == InterpolateMode::Linear ? "linear" : "bilinear";
}

// Per output index: the two source indices and their weights (nearest: the second weight 0).
template <class T>
struct Taps {
  std::vector<std::size_t> i0, i1;
  std::vector<T> l0, l1;
};

// PyTorch's compute_scales_value: 1 / scale_factor when one was given, else in / out, divided in
// T (float32: (float)in / out, one rounding, as PyTorch's; not a double quotient rounded again).
template <class T>
T scale_of(std::optional<double> scale, std::size_t in, std::size_t out) {
  return scale && *scale > 0 ? T(1.0 / *scale) : T(in) / T(out);
}

template <class T>
Taps<T> taps(std::size_t in, std::size_t out, std::optional<double> scale, bool linear, bool align_corners) {
  Taps<T> t{std::vector<std::size_t>(out), std::vector<std::size_t>(out), std::vector<T>(out), std::vector<T>(out)};
  for (std::size_t o = 0; o < out; ++o) {
    if (!linear) {  // nearest_idx
      std::size_t src = o;
      if (out == 2 * in) {
        src = o >> 1;
      } else if (out != in) {
        const float s = scale_of<float>(scale, in, out);  // nearest_idx computes in float
        src = std::min(std::size_t(std::floor(float(o) * s)), in - 1);
      }
      t.i0[o] = t.i1[o] = src;
      t.l0[o] = T(1);
      t.l1[o] = T(0);
      continue;
    }
    if (out == in && !align_corners) {  // compute_source_index_and_lambda's identity
      t.i0[o] = t.i1[o] = o;
      t.l0[o] = T(1);
      t.l1[o] = T(0);
      continue;
    }
    const T ratio = align_corners ? (out > 1 ? T(in - 1) / T(out - 1) : T(0)) : scale_of<T>(scale, in, out);
    T real = align_corners ? ratio * T(o) : ratio * (T(o) + T(0.5)) - T(0.5);
    if (real < T(0)) real = T(0);
    const auto i0 = std::size_t(real);  // real >= 0: truncation is floor
    t.i0[o] = std::min(i0, in - 1);
    t.i1[o] = std::min(i0 + (i0 < in - 1 ? 1 : 0), in - 1);
    t.l1[o] = real - T(i0);
    t.l0[o] = T(1) - t.l1[o];
  }
  return t;
}

// One pass along the columns as a fixed number of taps per destination value, so the loops run
// without branches and vectorise (gathers): dst[k] = Σ_j weight[j][k] · src[index[j][k]]. A
// destination with fewer taps than the most points its extra ones at a zero past the end of the
// source row (index = the row's length), so no value of the row is ever multiplied by 0 (0 · inf).
// Nearest with weight 1: a plain gather.
template <class T>
struct ColumnPass {
  std::size_t taps = 0, size = 0;     // taps per destination value, destination values
  bool gather_only = false;           // one tap of weight 1 each
  bool padded = false;                // some destination has fewer taps: the source needs its zero
  std::vector<std::uint32_t> index;   // taps × size
  std::vector<T> weight;              // taps × size
};

// The destinations' taps as a flat list: destination k's are entries[start[k] .. start[k + 1]).
template <class T>
struct TapList {
  std::vector<std::size_t> start;
  std::vector<std::pair<std::uint32_t, T>> entries;
};

template <class T>
ColumnPass<T> column_pass(const TapList<T>& list, std::uint32_t zero) {
  ColumnPass<T> c;
  c.size = list.start.size() - 1;
  for (std::size_t k = 0; k < c.size; ++k) c.taps = std::max(c.taps, list.start[k + 1] - list.start[k]);
  for (std::size_t k = 0; k < c.size; ++k) c.padded = c.padded || list.start[k + 1] - list.start[k] < c.taps;
  c.index.assign(c.taps * c.size, zero);
  c.weight.assign(c.taps * c.size, T(0));
  c.gather_only = c.taps == 1;
  for (std::size_t k = 0; k < c.size; ++k)
    for (std::size_t j = 0; j < list.start[k + 1] - list.start[k]; ++j) {
      const auto& [index, weight] = list.entries[list.start[k] + j];
      c.index[j * c.size + k] = index;
      c.weight[j * c.size + k] = weight;
      c.gather_only = c.gather_only && weight == T(1);
    }
  return c;
}

// Destination k's taps summed in order in a register and written once: the loop over k vectorises
// (gathers). Accumulated through dst instead,
// the compiler could not rule out dst aliasing the tables and ran it a value at a time (bilinear
// 2x over (128, 32, 14, 14): 6.4 ms of which 45% stalled on that store).
template <class T, std::size_t Taps>
void run_taps(const ColumnPass<T>& c, const T* __restrict src, T* __restrict dst) {
  const std::uint32_t* __restrict idx = c.index.data();
  const T* __restrict w = c.weight.data();
  const std::size_t n = c.size;
  for (std::size_t k = 0; k < n; ++k) {
    T acc = w[k] * src[idx[k]];
    for (std::size_t j = 1; j < Taps; ++j) acc += w[j * n + k] * src[idx[j * n + k]];
    dst[k] = acc;
  }
}

// src has a zero at src[zero] (the padding of column_pass).
template <class T>
void run_columns(const ColumnPass<T>& c, const T* __restrict src, T* __restrict dst) {
  if (c.gather_only) {
    const std::uint32_t* idx = c.index.data();
    for (std::size_t k = 0; k < c.size; ++k) dst[k] = src[idx[k]];
    return;
  }
  switch (c.taps) {
    case 1: return run_taps<T, 1>(c, src, dst);
    case 2: return run_taps<T, 2>(c, src, dst);
    case 3: return run_taps<T, 3>(c, src, dst);
    case 4: return run_taps<T, 4>(c, src, dst);
    default: break;  // downsampling by more than 2 (more readers per input column)
  }
  for (std::size_t k = 0; k < c.size; ++k) dst[k] = T(0);
  for (std::size_t j = 0; j < c.taps; ++j) {
    const std::uint32_t* __restrict idx = c.index.data() + j * c.size;
    const T* __restrict w = c.weight.data() + j * c.size;
    for (std::size_t k = 0; k < c.size; ++k) dst[k] += w[k] * src[idx[k]];
  }
}

// The per-call tables: the rows' taps, and the column passes both ways (forward: each output
// column reads its one or two input columns; backward: each input column sums the output columns
// that read it, in output order).
template <class T>
struct Plan {
  std::size_t planes, h, w, oh, ow;
  Taps<T> rows;
  ColumnPass<T> forward, backward;
  std::vector<char> row_read;  // per input row: does any output row read it?
};

template <class T>
Plan<T> plan(std::size_t planes, std::size_t h, std::size_t w, std::size_t oh, std::size_t ow, Taps<T> rows,
             const Taps<T>& cols) {
  // Forward: each output column's one or two input columns. Backward: each input column's readers,
  // counted, then filled in output column order. (Flat lists: no allocation per column.)
  auto taps_of = [&](std::size_t ox) { return cols.l1[ox] == T(0) ? 1 : 2; };
  TapList<T> reads{std::vector<std::size_t>(ow + 1, 0), {}}, readers{std::vector<std::size_t>(w + 1, 0), {}};
  for (std::size_t ox = 0; ox < ow; ++ox) {
    reads.start[ox + 1] = reads.start[ox] + std::size_t(taps_of(ox));
    ++readers.start[cols.i0[ox] + 1];
    if (taps_of(ox) == 2) ++readers.start[cols.i1[ox] + 1];
  }
  for (std::size_t c = 0; c < w; ++c) readers.start[c + 1] += readers.start[c];
  reads.entries.resize(reads.start[ow]);
  readers.entries.resize(readers.start[w]);
  std::vector<std::size_t> next(readers.start.begin(), readers.start.end() - 1);
  for (std::size_t ox = 0; ox < ow; ++ox) {
    reads.entries[reads.start[ox]] = {std::uint32_t(cols.i0[ox]), cols.l0[ox]};
    readers.entries[next[cols.i0[ox]]++] = {std::uint32_t(ox), cols.l0[ox]};
    if (taps_of(ox) == 1) continue;
    reads.entries[reads.start[ox] + 1] = {std::uint32_t(cols.i1[ox]), cols.l1[ox]};
    readers.entries[next[cols.i1[ox]]++] = {std::uint32_t(ox), cols.l1[ox]};
  }
  Plan<T> p{planes, h, w, oh, ow, std::move(rows), column_pass<T>(reads, std::uint32_t(w)),
            column_pass<T>(readers, std::uint32_t(ow)), std::vector<char>(h, 0)};
  for (std::size_t oy = 0; oy < oh; ++oy) {
    p.row_read[p.rows.i0[oy]] = 1;
    if (p.rows.l1[oy] != T(0)) p.row_read[p.rows.i1[oy]] = 1;
  }
  return p;
}

std::size_t planes_per_task(std::size_t plane_size) {
  return std::max<std::size_t>(1, 32768 / std::max<std::size_t>(plane_size, 1));
}

// Separable, a plane at a time: each input row that some output row reads is interpolated along
// the columns once (h rows of ow values), then each output row blends its one or two of those
// rows (a copy where it takes one whole). Row by row, four reads and three multiplies per output
// value (and for nearest by 2, each input row interpolated twice) ran `Upsample_nearest` 2x over
// (128, 32, 14, 14) at 3 ms of its 9.6 forward and backward.
template <class T>
xt::xarray<T> interpolate_forward(const T* x, const Plan<T>& p, const Shape& out_shape) {
  xt::xarray<T> y = xt::xarray<T>::from_shape(out_shape);
  T* out = y.data();
  parallel::for_range(p.planes, planes_per_task(p.oh * p.ow), [&](std::size_t first, std::size_t last) {
    Buffer<T> across(p.h * p.ow), padded(p.w + 1, T(0));  // padded: a source row and its zero
    for (std::size_t s = first; s < last; ++s) {
      const T* in = x + s * p.h * p.w;
      for (std::size_t r = 0; r < p.h; ++r) {
        if (!p.row_read[r]) continue;
        const T* src = in + r * p.w;
        if (p.forward.padded) {  // a copy with its zero; otherwise the row is read in place
          std::copy(src, src + p.w, padded.begin());
          src = padded.data();
        }
        run_columns(p.forward, src, across.data() + r * p.ow);
      }
      T* o = out + s * p.oh * p.ow;
      for (std::size_t oy = 0; oy < p.oh; ++oy) {
        const T* r0 = across.data() + p.rows.i0[oy] * p.ow;
        const T* r1 = across.data() + p.rows.i1[oy] * p.ow;
        const T a0 = p.rows.l0[oy], a1 = p.rows.l1[oy];
        T* row = o + oy * p.ow;
        if (a1 == T(0) && a0 == T(1)) {
          std::copy(r0, r0 + p.ow, row);
        } else {
          for (std::size_t ox = 0; ox < p.ow; ++ox) row[ox] = a0 * r0[ox] + a1 * r1[ox];
        }
      }
    }
  });
  return y;
}

// The adjoint, in the reverse order: the output rows' gradients added into their input rows' (h
// rows of ow values, output row order), then each input column sums its readers (the backward
// column pass) with their weights. Scattered one output value at a time, the additions into the same input
// value followed each other through memory (`Upsample_nearest` 2x: 6 of its 9.6 ms).
template <class T>
xt::xarray<T> interpolate_backward(const T* g, const Plan<T>& p, const Shape& in_shape) {
  xt::xarray<T> dx = xt::xarray<T>::from_shape(in_shape);
  T* d = dx.data();
  parallel::for_range(p.planes, planes_per_task(p.oh * p.ow), [&](std::size_t first, std::size_t last) {
    // Rows of ow + 1: each row's last value stays 0 for the padded taps of the column pass.
    const std::size_t stride = p.ow + 1;
    Buffer<T> across(p.h * stride);
    for (std::size_t s = first; s < last; ++s) {
      std::fill(across.begin(), across.end(), T(0));
      const T* gs = g + s * p.oh * p.ow;
      for (std::size_t oy = 0; oy < p.oh; ++oy) {
        const T* row = gs + oy * p.ow;
        T* r0 = across.data() + p.rows.i0[oy] * stride;
        const T a0 = p.rows.l0[oy], a1 = p.rows.l1[oy];
        for (std::size_t ox = 0; ox < p.ow; ++ox) r0[ox] += a0 * row[ox];
        if (a1 == T(0)) continue;
        T* r1 = across.data() + p.rows.i1[oy] * stride;
        for (std::size_t ox = 0; ox < p.ow; ++ox) r1[ox] += a1 * row[ox];
      }
      T* plane = d + s * p.h * p.w;
      for (std::size_t r = 0; r < p.h; ++r) run_columns(p.backward, across.data() + r * stride, plane + r * p.w);
    }
  });
  return dx;
}

}  // namespace

Tensor interpolate(const Tensor& input, const InterpolateOptions& o) {
  const char* mode = mode_name(o.mode);
  TG_CHECK(input.dim() == 3 || input.dim() == 4, "interpolate: expected input (N, C, L) or (N, C, H, W), got ",
           shape_str(input.shape()));
  TG_CHECK(is_floating(input.dtype()), "interpolate: expected a floating-point input, got ", dtype_name(input.dtype()));
  const std::size_t dims = input.dim() - 2;
  TG_CHECK(o.mode != InterpolateMode::Linear || dims == 1, "interpolate: mode linear needs 3-D input (N, C, L), got ",
           shape_str(input.shape()));
  TG_CHECK(o.mode != InterpolateMode::Bilinear || dims == 2,
           "interpolate: mode bilinear needs 4-D input (N, C, H, W), got ", shape_str(input.shape()));
  TG_CHECK(o.mode != InterpolateMode::Nearest || !o.align_corners,
           "interpolate: align_corners can only be set with the linear and bilinear modes, not ", mode);
  TG_CHECK(o.size.empty() != o.scale_factor.empty(),
           "interpolate: give exactly one of size and scale_factor, got ", o.size.size(), " and ", o.scale_factor.size(),
           " values");
  const std::size_t given = o.size.empty() ? o.scale_factor.size() : o.size.size();
  TG_CHECK(given == 1 || given == dims, "interpolate: ", o.size.empty() ? "scale_factor" : "size", " must have 1 or ",
           dims, " values for input ", shape_str(input.shape()), ", got ", given);
  const Shape& s = input.shape();
  Shape out_shape = s;
  std::vector<std::optional<double>> scales(dims);
  for (std::size_t d = 0; d < dims; ++d) {
    const std::size_t in = s[2 + d];
    std::int64_t out = 0;
    if (!o.size.empty()) {
      out = o.size[given == 1 ? 0 : d];
    } else {
      const double f = o.scale_factor[given == 1 ? 0 : d];
      TG_CHECK(f > 0 && std::isfinite(f), "interpolate: scale_factor must be positive and finite, got ", f);
      out = std::int64_t(std::floor(double(in) * f));
      if (!o.recompute_scale_factor) scales[d] = f;
    }
    TG_CHECK(in > 0 && out > 0, "interpolate: input and output sizes must be positive, got input ", shape_str(s),
             " and output size ", out, " in spatial dim ", d);
    out_shape[2 + d] = std::size_t(out);
  }
  const bool linear = o.mode != InterpolateMode::Nearest, corners = o.align_corners.value_or(false);
  const std::size_t h = dims == 2 ? s[2] : 1, w = s.back(), oh = dims == 2 ? out_shape[2] : 1, ow = out_shape.back();
  const std::optional<double> row_scale = dims == 2 ? scales[0] : std::nullopt, col_scale = scales.back();
  const std::size_t planes = s[0] * s[1];
  return dispatch_floating(input.dtype(), "interpolate", [&]<class T>() {
    auto tables = std::make_shared<const Plan<T>>(plan<T>(planes, h, w, oh, ow, taps<T>(h, oh, row_scale, linear, corners),
                                                          taps<T>(w, ow, col_scale, linear, corners)));
    Tensor out = make_tensor<T>(interpolate_forward<T>(input.data<T>(), *tables, out_shape));
    return record("interpolate", out, {input}, [tables, s](const Tensor& grad, NeedsGrad) -> Grads {
      return {make_tensor<T>(interpolate_backward<T>(grad.data<T>(), *tables, s))};
    });
  });
}

}  // namespace tg
