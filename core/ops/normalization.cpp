// layer_norm, group_norm (instance_norm on it) and batch_norm, fused: a statistics pass and a
// normalise pass; batch_norm's backward is a reduction pass and an input-gradient pass, layer_norm's
// one pass (a row's sums need only the row). All split over TBB in fixed blocks so the bits never
// depend on the thread count.
#include "core/ops/normalization.hpp"
#include "core/xtensor.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <memory>
#include <numeric>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/autograd.hpp"
#include "core/creation.hpp"
#include "core/ops/elementwise.hpp"
#include "core/ops/kernels.hpp"
#include "core/ops/reduce.hpp"
#include "core/parallel.hpp"

namespace tg {

// ---- layer_norm ------------------------------------------------------------------------------
//
// Rows of n = prod(normalized_shape) values, each normalised on its own (parallel over rows; a
// row's arithmetic never depends on the thread count), in the centred form (as batch_norm):
//   forward:  μ = Σx/n, σ² = Σ(x-μ)²/n, r = 1/√(σ²+ε), x̂ = (x-μ)·r, y = x̂·w + b
//   backward: ĝ = g·w;  dx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂));  dw = Σ_rows g·x̂, db = Σ_rows g
// Sums are double. The mean's terms are double too; every other term is in the input's type
// (for float32: twice the SIMD lanes of double, no conversions), at most eight float terms joining
// each double sum at once (kernels::lane_sum), which is exact enough for centred terms. x - μ is
// taken as (x - c) - δ with c = μ rounded to the input's type and δ = μ - c: x - c is exact or
// rounded once even for a mean that is large next to the spread, which the folded x·r + (b - μ·r)
// PyTorch uses is not. A few float32 roundings per value.
// The weight and bias gradients are sums over rows into the double partials of fixed blocks of
// rows, the blocks combined in block order: each row's terms on their own for rows of up to 2 KB,
// four rows' terms added in the input's type first for longer ones.

namespace {

// x - μ for a mean μ held in double, computed in T as (x - c) - δ (c = μ rounded to T, δ = μ - c);
// for double, c = μ and δ = 0. x is a T or a batch of T.
template <class T>
struct Centre {
  T c, delta;
  explicit Centre(double mu) : c(T(mu)), delta(T(mu - double(T(mu)))) {}
  template <class V>
  V of(const V& x) const {
    return (x - c) - delta;
  }
};

constexpr std::size_t kLayerNormBlockElements = 1 << 15;

// The per-row numbers of a group of up to eight rows (a batch of doubles): their sums are taken row
// by row, then their means and scales are computed together, one vector division and square root
// for the group. Row by row they were a chain of scalar divisions and a square root, most of the
// time of a short row (LayerNorm over 16 values). The same bits: IEEE division and square root
// round the same in a vector.
struct RowGroup {
  using D = kernels::Batch<double>;
  static constexpr std::size_t kRows = D::size;
  alignas(64) std::array<double, kRows> values{};
  double& operator[](std::size_t q) { return values[q]; }
  double operator[](std::size_t q) const { return values[q]; }
  static RowGroup of(const D& b) {
    RowGroup g;
    b.store_aligned(g.values.data());
    return g;
  }
  D batch() const { return D::load_aligned(values.data()); }
  RowGroup over(double n) const { return of(batch() / D(n)); }
  RowGroup times(const double* p, std::size_t count) const {  // p: the group's count values
    RowGroup other;
    std::copy(p, p + count, other.values.begin());
    return of(batch() * other.batch());
  }
  // 1/√(Σ(x - μ)²/n + ε) of each row's sum of squares.
  RowGroup inverse_std(double n, double eps) const { return of(D(1.0) / xsimd::sqrt(batch() / D(n) + D(eps))); }
};

// Rows per group: eight for rows of at most 2 KB, whose per-row divisions weigh; longer rows go one
// at a time (grouped, (4096, 1024) ran 1.4x slower: each pass over a group's rows left the
// hardware prefetcher's stream).
template <class T>
std::size_t rows_per_group(std::size_t n) {
  return n * sizeof(T) <= 2048 ? RowGroup::kRows : 1;
}

template <class T>
Tensor layer_norm_forward(const Tensor& input, const Tensor& weight, const Tensor& bias, std::size_t rows,
                          std::size_t n, double eps, Buffer<double>& mean, Buffer<double>& rstd) {
  xt::xarray<T> y = xt::xarray<T>::from_shape(input.shape());
  const T* x = input.data<T>();
  // Missing weight or bias as ones and zeros, so that the loops below have no branches.
  const Buffer<T> ones(weight.defined() ? 0 : n, T(1)), no_shift(bias.defined() ? 0 : n, T(0));
  const T* w = weight.defined() ? weight.data<T>() : ones.data();
  const T* b = bias.defined() ? bias.data<T>() : no_shift.data();
  T* out = y.data();
  const std::size_t group = rows_per_group<T>(n);
  parallel::for_range(rows, std::max<std::size_t>(1, kLayerNormBlockElements / std::max<std::size_t>(n, 1)),
                      [&](std::size_t first, std::size_t last) {
    for (std::size_t r0 = first; r0 < last; r0 += group) {
      const std::size_t count = std::min(group, last - r0);
      // The mean's terms in double: float partial sums of values far from zero would lose the
      // digits of their spread. The other sums are of centred terms, whose float partials do not.
      RowGroup mu, squares;
      for (std::size_t q = 0; q < count; ++q)
        mu[q] = kernels::lane_sum(n, [xr = x + (r0 + q) * n](auto at) { return at(xr); });
      mu = mu.over(double(n));
      for (std::size_t q = 0; q < count; ++q) {
        const Centre<T> centre(mu[q]);
        squares[q] = kernels::lane_sum<T>(n, [xr = x + (r0 + q) * n, centre](auto at) {
          const auto d = centre.of(at(xr));
          return d * d;
        });
      }
      const RowGroup inv = squares.inverse_std(double(n), eps);
      for (std::size_t q = 0; q < count; ++q) {
        const std::size_t r = r0 + q;
        mean[r] = mu[q];
        rstd[r] = inv[q];
        const Centre<T> centre(mu[q]);
        const T inv_t = T(inv[q]);
        kernels::apply(n, out + r * n, [centre, inv_t](auto xv, auto wv, auto bv) {
          return centre.of(xv) * inv_t * wv + bv;
        }, x + r * n, w, b);
      }
    }
  });
  return make_tensor<T>(std::move(y));
}

// What dx of one row needs: its g, x and dx, and its numbers from the sums.
template <class T>
struct RowGrad {
  const T* g;
  const T* x;
  T* dx;
  Centre<T> centre{0.0};
  T inv, mean_g, scaled_mean_gx;
};

// A row's dx (with InputGrad) and, with WeightGrads, its terms of Σ g·x̂ and Σ g added into the
// double partials gx and gsum, in one pass while g and x are in registers. A pass of their own
// had read both again; four rows' terms added in T first (a batch of four rows at a time, four
// streams of dx) came out slower still. LayerNorm over 256 of (64, 128, 256), backward at one
// thread, by turns: 0.79-0.90 → 0.70-0.86 ns a value (four rows at a time: 1.12-1.25).
template <class T, bool InputGrad, bool WeightGrads>
void grad_row(std::size_t n, const T* w, const RowGrad<T>& row, double* gx, double* gsum) {
  using B = kernels::Batch<T>;
  using D = kernels::Batch<double>;
  constexpr std::size_t width = B::size;
  auto add_into = [](double* p, const B& v, std::size_t count) {
    if (count == width) {
      const auto halves = kernels::widen(v);
      (D::load_unaligned(p) + halves[0]).store_unaligned(p);
      if constexpr (width > D::size) (D::load_unaligned(p + D::size) + halves[1]).store_unaligned(p + D::size);
      return;
    }
    alignas(64) std::array<T, width> lanes;
    v.store_aligned(lanes.data());
    for (std::size_t i = 0; i < count; ++i) p[i] += double(lanes[i]);
  };
  auto step = [&](std::size_t k, std::size_t count, auto load, auto store) {
    const B gv = load(row.g + k), xc = row.centre.of(load(row.x + k));
    if constexpr (InputGrad) store(row.inv * ((gv * load(w + k) - row.mean_g) - xc * row.scaled_mean_gx), row.dx + k);
    if constexpr (WeightGrads) {
      add_into(gx + k, gv * xc * row.inv, count);
      add_into(gsum + k, gv, count);
    }
  };
  std::size_t k = 0;
  for (; k + width <= n; k += width)
    step(k, width, [](const T* p) { return B::load_unaligned(p); }, [](const B& v, T* p) { v.store_unaligned(p); });
  if (k < n) {
    const std::size_t left = n - k;
    step(k, left, [left](const T* p) { return kernels::load_partial(p, left, T(0)); },
         [left](const B& v, T* p) { kernels::store_partial(v, p, left); });
  }
}

// grad_row for the gradients the caller needs (at least one of the two).
template <class T>
void grad_row(bool input_grad, bool weight_grads, std::size_t n, const T* w, const RowGrad<T>& row, double* gx,
              double* gsum) {
  if (input_grad && weight_grads)
    grad_row<T, true, true>(n, w, row, gx, gsum);
  else if (input_grad)
    grad_row<T, true, false>(n, w, row, gx, gsum);
  else
    grad_row<T, false, true>(n, w, row, gx, gsum);
}

template <class T>
Grads layer_norm_backward(const Tensor& grad, const Tensor& input, const Tensor& weight, std::size_t rows,
                          std::size_t n, const Buffer<double>& mean, const Buffer<double>& rstd,
                          NeedsGrad needs) {
  const T* g = grad.data<T>();
  const T* x = input.data<T>();
  const Buffer<T> ones(weight.defined() ? 0 : n, T(1));
  const T* w = weight.defined() ? weight.data<T>() : ones.data();
  const bool input_grad = needs[0], weight_grads = needs[1] || needs[2];
  xt::xarray<T> dx = input_grad ? xt::xarray<T>::from_shape(input.shape()) : xt::xarray<T>();
  T* d = dx.data();
  const std::size_t group = rows_per_group<T>(n);

  // A block's rows eight at a time, `group` at a time within them: their sums, then row by row
  // their dx (grad_row) and, for rows of at most 2 KB, in the same pass their terms of the weight
  // and bias gradients. Longer rows take those terms four rows at a time after the eight rows'
  // dx (weight_grad_rows), while the rows are in L2: a row's terms straight into the doubles
  // cost LayerNorm over 1024 of (1024, 1024) 0.87-1.16 → 1.23-1.61 ms (with n doubles of each sum
  // next to the rows, a pass no longer fits L1).
  struct Sums {
    Buffer<double> gx, g;
  };
  auto weight_grad_rows = [&](std::size_t first, std::size_t last, Sums& part) {
    std::size_t r = first;
    for (; r + 4 <= last; r += 4) {
      const T* gr = g + r * n;
      const T* xr = x + r * n;
      const Centre<T> c[4] = {Centre<T>(mean[r]), Centre<T>(mean[r + 1]), Centre<T>(mean[r + 2]),
                              Centre<T>(mean[r + 3])};
      const T inv[4] = {T(rstd[r]), T(rstd[r + 1]), T(rstd[r + 2]), T(rstd[r + 3])};
      for (std::size_t k = 0; k < n; ++k) {
        T gx[4];
        for (std::size_t q = 0; q < 4; ++q) gx[q] = gr[q * n + k] * c[q].of(xr[q * n + k]) * inv[q];
        part.gx[k] += double((gx[0] + gx[1]) + (gx[2] + gx[3]));
        part.g[k] += double((gr[k] + gr[n + k]) + (gr[2 * n + k] + gr[3 * n + k]));
      }
    }
    for (; r < last; ++r) {
      const T* gr = g + r * n;
      const T* xr = x + r * n;
      const Centre<T> c(mean[r]);
      const T inv = T(rstd[r]);
      for (std::size_t k = 0; k < n; ++k) {
        part.gx[k] += double(gr[k] * c.of(xr[k]) * inv);
        part.g[k] += double(gr[k]);
      }
    }
  };
  const bool fused = group > 1;
  auto rows_of_block = [&](std::size_t first, std::size_t last, Sums& part) {
    for (std::size_t r8 = first; r8 < last; r8 += 8) {
      const std::size_t end = std::min(last, r8 + 8);
      for (std::size_t r0 = r8; r0 < end; r0 += group) {
        const std::size_t count = std::min(group, end - r0);
        RowGroup mean_g, scaled_mean_gx;
        if (input_grad) {
          RowGroup sum_g, sum_gx;
          for (std::size_t q = 0; q < count; ++q) {
            const std::size_t r = r0 + q;
            const T* gr = g + r * n;
            const T* xr = x + r * n;
            const Centre<T> centre(mean[r]);
            sum_g[q] = kernels::lane_sum<T>(n, [gr, w](auto at) { return at(gr) * at(w); });
            sum_gx[q] = rstd[r] * kernels::lane_sum<T>(n, [gr, w, xr, centre](auto at) {
              return at(gr) * at(w) * centre.of(at(xr));
            });
          }
          mean_g = sum_g.over(double(n));
          scaled_mean_gx = sum_gx.times(rstd.data() + r0, count).over(double(n));
        }
        if (!input_grad && !fused) continue;
        for (std::size_t q = 0; q < count; ++q) {
          const std::size_t r = r0 + q;
          const RowGrad<T> row{g + r * n, x + r * n, d + r * n, Centre<T>(mean[r]), T(rstd[r]), T(mean_g[q]),
                               T(scaled_mean_gx[q])};
          grad_row<T>(input_grad, fused && weight_grads, n, w, row, part.gx.data(), part.g.data());
        }
      }
      if (!fused && weight_grads) weight_grad_rows(r8, end, part);
    }
  };

  // One pass over fixed blocks of rows (at most 16, cut by sizes only: the same bits for any thread
  // count), `group` rows at a time. Each block keeps partials of n doubles for the weight and bias
  // gradients, combined in block order. (Long rows had made blocks of one row: LayerNorm over
  // (64, 14, 14) on 128 samples, 128 partials of 200 KB, written, copied and added; 3.8-4.7 →
  // 1.7-2.3 ms, libtorch 2.4.)
  const std::size_t block = std::max({std::size_t(1), kLayerNormBlockElements / std::max<std::size_t>(n, 1),
                                      (rows + 15) / 16});
  const std::size_t sums_size = weight_grads ? n : 0;
  const Sums zero{Buffer<double>(sums_size, 0.0), Buffer<double>(sums_size, 0.0)};
  const Sums total = parallel::reduce_blocks(
      rows, block, zero,
      [&](std::size_t first, std::size_t last) {
        Sums part = zero;
        rows_of_block(first, last, part);
        return part;
      },
      [](Sums acc, const Sums& part) {
        for (std::size_t k = 0; k < acc.g.size(); ++k) {
          acc.gx[k] += part.gx[k];
          acc.g[k] += part.g[k];
        }
        return acc;
      });

  Grads grads(3);
  if (input_grad) grads[0] = make_tensor<T>(std::move(dx));
  auto as_tensor = [&](const Buffer<double>& values, const Tensor& like) {
    xt::xarray<T> out = xt::xarray<T>::from_shape(like.shape());
    std::transform(values.begin(), values.end(), out.data(), [](double v) { return T(v); });
    return make_tensor<T>(std::move(out));
  };
  if (needs[1]) grads[1] = as_tensor(total.gx, weight);
  if (needs[2]) grads[2] = as_tensor(total.g, weight);
  return grads;
}

}  // namespace

Tensor layer_norm(const Tensor& input, const std::vector<std::int64_t>& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  const Shape& shape = input.shape();
  const std::size_t k = normalized_shape.size();
  bool fits = k >= 1 && k <= shape.size();
  for (std::size_t i = 0; fits && i < k; ++i) fits = std::int64_t(shape[shape.size() - k + i]) == normalized_shape[i];
  TG_CHECK(fits, "layer_norm: expected input with trailing dims ", normalized_shape, ", got ", shape_str(shape));
  const Shape row_shape(shape.end() - std::ptrdiff_t(k), shape.end());
  for (const Tensor* p : {&weight, &bias})
    TG_CHECK(!p->defined() || (p->shape() == row_shape && p->dtype() == input.dtype()), "layer_norm: ",
             p == &weight ? "weight" : "bias", " must be ", dtype_name(input.dtype()), " ", shape_str(row_shape),
             ", got ", dtype_name(p->dtype()), " ", shape_str(p->shape()));
  TG_CHECK(eps >= 0, "layer_norm: eps must be non-negative, got ", eps);
  std::size_t n = 1;
  for (std::size_t i = shape.size() - k; i < shape.size(); ++i) n *= shape[i];
  const std::size_t rows = n == 0 ? 0 : input.numel() / n;
  auto mean = std::make_shared<Buffer<double>>(rows);
  auto rstd = std::make_shared<Buffer<double>>(rows);
  Tensor out = dispatch_floating(input.dtype(), "layer_norm", [&]<class T>() {
    return layer_norm_forward<T>(input, weight, bias, rows, n, eps, *mean, *rstd);
  });
  return record("layer_norm", out, {input, weight, bias}, {input, weight},
                [input, weight, rows, n, mean, rstd](const Tensor& grad, NeedsGrad needs) -> Grads {
                  return dispatch_floating(grad.dtype(), "layer_norm", [&]<class T>() {
                    return layer_norm_backward<T>(grad, input, weight, rows, n, *mean, *rstd, needs);
                  });
                });
}

// ---- group_norm ------------------------------------------------------------------------------
//
// (N, C, *) in N·G rows of m = (C/G)·S values (S = the product of the dims after C), each a run of
// C/G channels of S values; a row is normalised on its own as layer_norm's (the same centred form
// and double sums), then each channel's run gets its own weight and bias:
//   forward:  y = x̂·w[c] + b[c]
//   backward: per (n, c) the double sums s1 = Σ g and s2 = Σ g·(x - μ) over the run; per row
//             mean(ĝ) = Σ_c w[c]·s1 / m and mean(ĝ·x̂) = r²·Σ_c w[c]·s2 / m;
//             dx = r·(g·w[c] − mean(ĝ) − x̂·mean(ĝ·x̂)) in a second pass over the row (in cache
//             when the row is);  dw[c] = Σ_n r·s2,  db[c] = Σ_n s1, summed in sample order.
// Rows run in parallel, each row's arithmetic on its own and the per-channel sums in sample order:
// the same bits for any thread count.

namespace {

struct GroupShape {
  std::size_t n, channels, groups, inner;  // inner = S
  std::size_t per_group() const { return channels / groups; }
  std::size_t rows() const { return n * groups; }
  std::size_t row() const { return per_group() * inner; }  // m
};

std::size_t group_rows_per_task(const GroupShape& s) {
  return std::max<std::size_t>(1, kLayerNormBlockElements / std::max<std::size_t>(s.row(), 1));
}

// mean and rstd per row; `variance` (when given) the biased variance per row too.
template <class T>
Tensor group_norm_forward(const Tensor& input, const Tensor& weight, const Tensor& bias, const GroupShape& s,
                          double eps, Buffer<double>& mean, Buffer<double>& rstd, double* variance) {
  xt::xarray<T> y = xt::xarray<T>::from_shape(input.shape());
  const T* x = input.data<T>();
  const T* w = weight.defined() ? weight.data<T>() : nullptr;
  const T* b = bias.defined() ? bias.data<T>() : nullptr;
  T* out = y.data();
  const std::size_t m = s.row(), cpg = s.per_group();
  parallel::for_range(s.rows(), group_rows_per_task(s), [&](std::size_t first, std::size_t last) {
    for (std::size_t r = first; r < last; ++r) {
      const T* xr = x + r * m;
      const double mu = m == 0 ? 0.0 : kernels::lane_sum(m, [xr](auto at) { return at(xr); }) / double(m);
      const Centre<T> centre(mu);
      const double squares = kernels::lane_sum<T>(m, [xr, centre](auto at) {
        const auto d = centre.of(at(xr));
        return d * d;
      });
      const double var = m == 0 ? 0.0 : squares / double(m), inv = 1.0 / std::sqrt(var + eps);
      mean[r] = mu;
      rstd[r] = inv;
      if (variance) variance[r] = var;
      const std::size_t c0 = (r % s.groups) * cpg;
      for (std::size_t k = 0; k < cpg; ++k) {
        const T scale = T(inv) * (w ? w[c0 + k] : T(1)), shift = b ? b[c0 + k] : T(0);
        kernels::apply(s.inner, out + r * m + k * s.inner,
                       [centre, scale, shift](auto xv) { return centre.of(xv) * scale + shift; },
                       xr + k * s.inner);
      }
    }
  });
  return make_tensor<T>(std::move(y));
}

template <class T>
Grads group_norm_backward(const Tensor& grad, const Tensor& input, const Tensor& weight, const GroupShape& s,
                          const Buffer<double>& mean, const Buffer<double>& rstd, NeedsGrad needs) {
  const T* g = grad.data<T>();
  const T* x = input.data<T>();
  const T* w = weight.defined() ? weight.data<T>() : nullptr;
  const std::size_t m = s.row(), cpg = s.per_group(), inner = s.inner;
  xt::xarray<T> dx = needs[0] ? xt::xarray<T>::from_shape(input.shape()) : xt::xarray<T>();
  T* d = dx.data();
  // Per (n, c): Σ g and Σ g·(x - μ) over the channel's run.
  Buffer<double> s1(s.n * s.channels), s2(s.n * s.channels);
  parallel::for_range(s.rows(), group_rows_per_task(s), [&](std::size_t first, std::size_t last) {
    for (std::size_t r = first; r < last; ++r) {
      const Centre<T> centre(mean[r]);
      const std::size_t c0 = (r % s.groups) * cpg, at0 = r * cpg;  // (n, c0) in s1 and s2
      double sum_g = 0, sum_gx = 0;
      for (std::size_t k = 0; k < cpg; ++k) {
        const T* gr = g + r * m + k * inner;
        const T* xr = x + r * m + k * inner;
        s1[at0 + k] = kernels::lane_sum<T>(inner, [gr](auto at) { return at(gr); });
        s2[at0 + k] = kernels::lane_sum<T>(inner, [gr, xr, centre](auto at) { return at(gr) * centre.of(at(xr)); });
        const double wk = w ? double(w[c0 + k]) : 1.0;
        sum_g += wk * s1[at0 + k];
        sum_gx += wk * s2[at0 + k];
      }
      if (!needs[0] || m == 0) continue;
      const double inv = rstd[r];
      const T mean_g = T(sum_g / double(m)), scaled_mean_gx = T(inv * inv * sum_gx / double(m)), inv_t = T(inv);
      for (std::size_t k = 0; k < cpg; ++k) {
        const T wk = w ? w[c0 + k] : T(1);
        kernels::apply(inner, d + r * m + k * inner,
                       [centre, inv_t, wk, mean_g, scaled_mean_gx](auto gv, auto xv) {
                         return inv_t * ((gv * wk - mean_g) - centre.of(xv) * scaled_mean_gx);
                       },
                       g + r * m + k * inner, x + r * m + k * inner);
      }
    }
  });
  Grads grads(3);
  if (needs[0]) grads[0] = make_tensor<T>(std::move(dx));
  for (int which : {1, 2}) {
    if (!needs[std::size_t(which)]) continue;
    xt::xarray<T> out = xt::xarray<T>::from_shape({s.channels});
    for (std::size_t c = 0; c < s.channels; ++c) {
      double total = 0;
      for (std::size_t n = 0; n < s.n; ++n) {
        const std::size_t at = n * s.channels + c;
        total += which == 1 ? rstd[n * s.groups + c / cpg] * s2[at] : s1[at];
      }
      out(c) = T(total);
    }
    grads[std::size_t(which)] = make_tensor<T>(std::move(out));
  }
  return grads;
}

// group_norm under the name `op` (in errors and on the tape), each (sample, group) row's mean and
// biased variance also written to `stats` when given (instance_norm's running statistics).
Tensor group_norm_named(const char* op, const Tensor& input, std::int64_t num_groups, const Tensor& weight,
                        const Tensor& bias, double eps, std::vector<std::pair<double, double>>* stats) {
  const Shape& shape = input.shape();
  TG_CHECK(shape.size() >= 2, op, ": expected input (N, C, *) of at least 2 dims, got ", shape_str(shape));
  TG_CHECK(is_floating(input.dtype()), op, ": expected a floating-point input, got ", dtype_name(input.dtype()));
  TG_CHECK(num_groups >= 1 && shape[1] % std::size_t(num_groups) == 0, op, ": the ", shape[1],
           " channels of input ", shape_str(shape), " must split into num_groups (", num_groups, ") equal groups");
  for (const Tensor* p : {&weight, &bias})
    TG_CHECK(!p->defined() || (p->shape() == Shape{shape[1]} && p->dtype() == input.dtype()), op, ": ",
             p == &weight ? "weight" : "bias", " must be ", dtype_name(input.dtype()), " [", shape[1], "], got ",
             dtype_name(p->dtype()), " ", shape_str(p->shape()));
  TG_CHECK(eps >= 0, op, ": eps must be non-negative, got ", eps);
  std::size_t inner = 1;
  for (std::size_t i = 2; i < shape.size(); ++i) inner *= shape[i];
  const GroupShape s{shape[0], shape[1], std::size_t(num_groups), inner};
  auto mean = std::make_shared<Buffer<double>>(s.rows());
  auto rstd = std::make_shared<Buffer<double>>(s.rows());
  Buffer<double> variance(stats ? s.rows() : 0);
  Tensor out = dispatch_floating(input.dtype(), op, [&]<class T>() {
    return group_norm_forward<T>(input, weight, bias, s, eps, *mean, *rstd, stats ? variance.data() : nullptr);
  });
  if (stats) {
    stats->resize(s.rows());
    for (std::size_t r = 0; r < s.rows(); ++r) (*stats)[r] = {(*mean)[r], variance[r]};
  }
  return record(op, out, {input, weight, bias}, {input, weight},
                [op, input, weight, s, mean, rstd](const Tensor& grad, NeedsGrad needs) -> Grads {
                  return dispatch_floating(grad.dtype(), op, [&]<class T>() {
                    return group_norm_backward<T>(grad, input, weight, s, *mean, *rstd, needs);
                  });
                });
}

}  // namespace

Tensor group_norm(const Tensor& input, std::int64_t num_groups, const Tensor& weight, const Tensor& bias, double eps) {
  return group_norm_named("group_norm", input, num_groups, weight, bias, eps, nullptr);
}

// ---- batch_norm kernels -----------------------------------------------------------------------
//
// Every layout is (outer, C, inner): (N, C) is (N, C, 1), (N, C, L) is (N, C, L) and (N, L, C) is
// (N·L, C, 1). Element (o, c, i) sits at (o·C + c)·inner + i.
//  - inner = 1: rows of C channels. Work goes by blocks of rows and the inner loop runs across
//    channels, so it vectorises; each block keeps its own per-channel partial sums.
//  - inner > 1: each (o, c) is a contiguous run of `inner` values, summed with several lanes.
// Sums are doubles, combined in block order. Terms are in the input's type: a few float terms at
// most are added together before they join a double sum (twice the lanes of double, no
// conversions, and the error of a few float roundings per term for any batch size).

namespace {

// Per-channel arrays come from tensor memory (Allocator): a dozen glibc vectors of C doubles each
// had the heap grow past its trim threshold and shrink back every step (BatchNorm1d(4096): 16 page
// faults a step).
using Doubles = Buffer<double>;

struct Layout {
  std::size_t outer = 1, channels = 1, inner = 1;
  std::size_t count() const { return outer * inner; }  // values per channel
};

constexpr std::size_t kBlockElements = 1 << 16;  // elements per task

std::size_t rows_per_block(const Layout& l) { return std::max<std::size_t>(1, kBlockElements / l.channels); }
std::size_t outers_per_task(const Layout& l) {
  return std::max<std::size_t>(1, kBlockElements / (l.channels * l.inner));
}

// Channels per strip: rows of more channels are taken a strip at a time (every row of a block for
// one strip, then the next strip), so that the per-channel arrays a pass reads (up to five of C
// values) and the double sums it adds to stay in L1. A row of 4096 channels had them in L2:
// BatchNorm1d over (64, 4096) ran at 40% of the speed of (1024, 1024) per value.
constexpr std::size_t kStripChannels = 512;

// Per-channel sums of two terms, Σ u and Σ v. term(at, channel) returns the pair {u, v} for one
// element or for a batch of them: at(p) reads an input p (laid out as x) there, channel(a) reads a
// per-channel array a (C values) for that element's channel. One term serves both layouts:
//  - inner = 1: rows of C channels; batches run across channels, four rows added in T before they
//    join the double sums. The hardware prefetcher loses each row's stream after C values (perf:
//    BatchNorm1d over (8192, 512) read x at 15 GB/s of this machine's 27), so every input in
//    `inputs` is fetched a group of four rows ahead, a cache line at a time.
//  - inner > 1: each (o, c) is a contiguous run of `inner` values, both sums of a run in one pass
//    with the channel's values as scalars; a run's last partial batch reads only the values that
//    exist and its terms are masked to them (runs of 16 had gone to a scalar loop, twice). Runs
//    shorter than a batch are summed one value at a time.
// Either way each lane adds at most eight terms in T before they join a double sum, and the double
// sums are combined in a fixed order: the same bits for any thread count.
template <class T, std::size_t N, class Term>
void channel_sums(const Layout& l, const std::array<const T*, N>& inputs, Term&& term, Doubles& sum_u, Doubles& sum_v) {
  using B = kernels::Batch<T>;
  using D = kernels::Batch<double>;
  constexpr std::size_t W = B::size;
  constexpr std::size_t kRows = 4;
  const std::size_t C = l.channels;
  sum_u.assign(C, 0.0);
  sum_v.assign(C, 0.0);
  // acc[0, W) += the W lanes of `sum`, widened to double.
  auto add_lanes = [](double* acc, const B& sum) {
    const auto halves = kernels::widen(sum);
    for (std::size_t h = 0; h < W; h += D::size)
      (D::load_unaligned(acc + h) + halves[h / D::size]).store_unaligned(acc + h);
  };
  if (l.inner == 1) {
    const std::size_t block = rows_per_block(l);
    const std::size_t blocks = (l.outer + block - 1) / block;
    Buffer<double> parts(blocks * 2 * C, 0.0);
    const bool far_inputs = N * l.outer * C * sizeof(T) > (std::size_t(1) << 20);  // not in L2: prefetch
    parallel::for_range(blocks, 1, [&](std::size_t first, std::size_t last) {
      for (std::size_t b = first; b < last; ++b) {
        double* u_acc = parts.data() + b * 2 * C;
        double* v_acc = u_acc + C;
        const std::size_t row_end = std::min(l.outer, (b + 1) * block);
        for (std::size_t strip = 0; strip < C; strip += kStripChannels) {
          const std::size_t strip_end = std::min(C, strip + kStripChannels);
          for (std::size_t r = b * block; r < row_end; r += kRows) {
            const std::size_t rows = std::min(kRows, row_end - r);
            const bool ahead = far_inputs && r + 2 * kRows <= l.outer;
            std::size_t c = strip;
            for (; c + W <= strip_end; c += W) {
              if (ahead)
                for (const T* p : inputs)
                  for (std::size_t q = 0; q < kRows; ++q) __builtin_prefetch(p + (r + kRows + q) * C + c);
              B u(T(0)), v(T(0));
              for (std::size_t q = 0; q < rows; ++q) {
                const std::size_t k = (r + q) * C + c;
                const auto terms = term([k](const T* p) { return B::load_unaligned(p + k); },
                                        [c](const T* a) { return B::load_unaligned(a + c); });
                u += terms.first;
                v += terms.second;
              }
              add_lanes(u_acc + c, u);
              add_lanes(v_acc + c, v);
            }
            for (; c < strip_end; ++c) {
              T u = 0, v = 0;
              for (std::size_t q = 0; q < rows; ++q) {
                const std::size_t k = (r + q) * C + c;
                const auto terms = term([k](const T* p) { return p[k]; }, [c](const T* a) { return a[c]; });
                u += terms.first;
                v += terms.second;
              }
              u_acc[c] += double(u);
              v_acc[c] += double(v);
            }
          }
        }
      }
    });
    for (std::size_t b = 0; b < blocks; ++b)
      for (std::size_t c = 0; c < C; ++c) {
        sum_u[c] += parts[b * 2 * C + c];
        sum_v[c] += parts[b * 2 * C + C + c];
      }
    return;
  }
  // acc += the lanes of `sum`, widened to double (for float: its two halves added first).
  auto widen_add = [](D& acc, const B& sum) {
    if constexpr (std::is_same_v<T, double>) {
      acc += sum;
    } else {
      const auto halves = kernels::widen(sum);
      acc += halves[0] + halves[1];
    }
  };
  Buffer<double> parts(l.outer * 2 * C, 0.0);
  parallel::for_range(l.outer, outers_per_task(l), [&](std::size_t first, std::size_t last) {
    for (std::size_t o = first; o < last; ++o)
      for (std::size_t c = 0; c < C; ++c) {
        const std::size_t base = (o * C + c) * l.inner;
        auto channel = [c](const T* a) { return a[c]; };
        if (l.inner < W) {  // runs shorter than a batch: each term in double
          double su = 0, sv = 0;
          for (std::size_t i = 0; i < l.inner; ++i) {
            const auto terms = term([k = base + i](const T* p) { return p[k]; }, channel);
            su += double(terms.first);
            sv += double(terms.second);
          }
          parts[(o * 2) * C + c] = su;
          parts[(o * 2 + 1) * C + c] = sv;
          continue;
        }
        // Two batches at a time into two accumulators per sum (one chain each had halved the
        // speed of long runs: bn3d 2.8 -> 4.4 ms), then the rest: a whole batch and a masked one.
        D u_sum(0.0), v_sum(0.0);
        std::size_t i = 0;
        auto at = [base](std::size_t j) { return [k = base + j](const T* p) { return B::load_unaligned(p + k); }; };
        while (i + 2 * W <= l.inner) {
          B u(T(0)), v(T(0)), u2(T(0)), v2(T(0));
          for (std::size_t q = 0; q < kRows && i + 2 * W <= l.inner; ++q, i += 2 * W) {
            const auto first_terms = term(at(i), channel), second_terms = term(at(i + W), channel);
            u += first_terms.first;
            v += first_terms.second;
            u2 += second_terms.first;
            v2 += second_terms.second;
          }
          widen_add(u_sum, u + u2);
          widen_add(v_sum, v + v2);
        }
        if (i < l.inner) {
          B u(T(0)), v(T(0));
          if (i + W <= l.inner) {
            const auto terms = term(at(i), channel);
            u += terms.first;
            v += terms.second;
            i += W;
          }
          if (i < l.inner) {
            const std::size_t n = l.inner - i;
            const auto terms =
                term([k = base + i, n](const T* p) { return kernels::load_partial(p + k, n, T(0)); }, channel);
            const auto exists = kernels::first_lanes<T>(n);
            u += xsimd::select(exists, B(terms.first), B(T(0)));
            v += xsimd::select(exists, B(terms.second), B(T(0)));
          }
          widen_add(u_sum, u);
          widen_add(v_sum, v);
        }
        const auto add = [](double a, double b) { return a + b; };
        parts[(o * 2) * C + c] = kernels::fold_lanes(u_sum, add);
        parts[(o * 2 + 1) * C + c] = kernels::fold_lanes(v_sum, add);
      }
  });
  for (std::size_t o = 0; o < l.outer; ++o)
    for (std::size_t c = 0; c < C; ++c) {
      sum_u[c] += parts[(o * 2) * C + c];
      sum_v[c] += parts[(o * 2 + 1) * C + c];
    }
}

// out[k] = value(c, k) for every element, in parallel. An output of kStreamBytes or more is
// computed a run at a time into a scratch block in L1 and written out with streaming stores (bn2d,
// (8192, 512): the normalise pass and the input gradient each read 16 MB and write 16 MB). Rows
// of more than 1024 channels go a strip at a time (as channel_sums) only when the output stays
// in cache, where their per-channel arrays would not stay in L1 (whole rows of 2048 and 4096
// channels took 1.16-1.26x the time). Rows of up to 1024 channels, and any from memory, go whole:
// a strip's short runs of each row lost the hardware prefetcher's streams (BatchNorm1d(1000) over
// (4096, 1000) took 1.5x the time per value of (8192, 512); forward + backward whole, 0.66-0.86x
// the time for 768-4096 channels at 8 MB and more, 0.85-0.94x for 600-1024 channels at 1-6 MB).
template <class T, class Value>
void channel_map(const Layout& l, T* out, Value&& value) {
  const std::size_t C = l.channels;
  const bool stream = l.outer * C * l.inner * sizeof(T) >= kernels::kStreamBytes;
  constexpr std::size_t kScratch = 2048;
  // values [base, base + n) of channel c (or, for rows, channels [c, c + n) from base)
  auto run = [&](std::size_t base, std::size_t n, auto&& at) __attribute__((always_inline)) {
    if (!stream) {
      for (std::size_t i = 0; i < n; ++i) out[base + i] = at(i);
      return;
    }
    alignas(64) std::array<T, kScratch> scratch;
    for (std::size_t done = 0; done < n; done += kScratch) {
      const std::size_t count = std::min(kScratch, n - done);
      for (std::size_t i = 0; i < count; ++i) scratch[i] = at(done + i);
      kernels::stream_copy(scratch.data(), count, out + base + done);
    }
  };
  if (l.inner == 1) {
    const std::size_t strip_channels = stream || C <= 2 * kStripChannels ? C : kStripChannels;
    parallel::for_range(l.outer, rows_per_block(l), [&](std::size_t first, std::size_t last) {
      for (std::size_t strip = 0; strip < C; strip += strip_channels) {
        const std::size_t width = std::min(strip_channels, C - strip);
        for (std::size_t r = first; r < last; ++r) {
          const std::size_t base = r * C + strip;
          run(base, width, [&](std::size_t c) { return value(strip + c, base + c); });
        }
      }
      if (stream) kernels::stream_fence();
    });
    return;
  }
  parallel::for_range(l.outer, outers_per_task(l), [&](std::size_t first, std::size_t last) {
    for (std::size_t o = first; o < last; ++o)
      for (std::size_t c = 0; c < C; ++c) {
        const std::size_t base = (o * C + c) * l.inner;
        run(base, l.inner, [&](std::size_t i) { return value(c, base + i); });
      }
    if (stream) kernels::stream_fence();
  });
}

// Per channel, x - mean_c in the input's type, as Centre (layer_norm) does for one mean: arrays,
// so that loops across channels vectorise.
template <class T>
struct ChannelCentres {
  Buffer<T> c, delta;
  explicit ChannelCentres(const Doubles& mean) : c(mean.size()), delta(mean.size()) {
    for (std::size_t i = 0; i < mean.size(); ++i) {
      const Centre<T> centre(mean[i]);
      c[i] = centre.c;
      delta[i] = centre.delta;
    }
  }
  T of(std::size_t channel, T x) const { return (x - c[channel]) - delta[channel]; }
};

// Per channel, S = Σ(x - K) and Q = Σ(x - K)² around a shift K held as ChannelCentres (c + δ),
// every term in the input's type.
template <class T>
void shifted_sums(const T* x, const Layout& l, const ChannelCentres<T>& shift, Doubles& s, Doubles& q) {
  channel_sums<T>(
      l, std::array{x},
      [x, &shift](auto at, auto channel) {
        const auto d = (at(x) - channel(shift.c.data())) - channel(shift.delta.data());
        return std::pair{d, d * d};
      },
      s, q);
}

// Batch mean and biased variance per channel, in one pass over x when it can:
//   mean = K + S/M,  var = Q/M - (S/M)²  (S, Q of shifted_sums, M values per channel)
// around a pilot K, the mean of about the channel's first kPilot values, rounded to T. The terms
// are in the input's type (for float32: twice the lanes of double and no conversions; the
// statistics pass reads x at memory speed), so Q/M carries the error of a few roundings,
// relative: as long as the pilot is within a standard deviation of the mean ((S/M)² ≤ var), var
// keeps it. A batch whose first values are unlike the rest (sorted, or an outlier first) fails
// that test, and the sums of every channel are taken again, around the mean just found (exact to
// a few roundings of the spread): two passes then, as PyTorch always does.
template <class T>
void batch_statistics(const T* x, const Layout& l, Doubles& mean, Doubles& var) {
  const std::size_t C = l.channels;
  mean.assign(C, 0.0);
  var.assign(C, 0.0);
  if (l.count() == 0) return;  // an empty batch (a process of a synchronised batch_norm may have one)
  // The pilot: the first values of the first outer rows, about kPilot per channel, summed across
  // channels (independent sums that vectorise, not one long chain per channel).
  constexpr std::size_t kPilot = 16;
  const std::size_t pilot_inner = std::min(l.inner, kPilot);
  const std::size_t pilot_outer = std::min(l.outer, (kPilot + l.inner - 1) / l.inner);
  for (std::size_t o = 0; o < pilot_outer; ++o)
    if (l.inner == 1)
      for (std::size_t c = 0; c < C; ++c) mean[c] += double(x[o * C + c]);
    else
      for (std::size_t c = 0; c < C; ++c)
        for (std::size_t i = 0; i < pilot_inner; ++i) mean[c] += double(x[(o * C + c) * l.inner + i]);
  for (std::size_t c = 0; c < C; ++c)  // rounded to T, so that the shift is exact (δ = 0)
    mean[c] = double(T(mean[c] / double(pilot_outer * pilot_inner)));
  const double m = double(l.count());
  Doubles s, q;
  for (int pass = 0; pass < 2; ++pass) {
    const ChannelCentres<T> shift(mean);
    shifted_sums(x, l, shift, s, q);
    bool far = false;
    for (std::size_t c = 0; c < C; ++c) {
      const double centre = s[c] / m;
      var[c] = std::max(0.0, q[c] / m - centre * centre);
      far = far || centre * centre > var[c];
      mean[c] = (double(shift.c[c]) + double(shift.delta[c])) + centre;
    }
    if (!far) return;
  }
}

// The statistics of every process's batch together: each process's count, mean and biased
// variance are gathered and merged in process order with Chan et al.'s pairwise update
//   n = n_a + n_b,  δ = μ_b - μ_a,  μ = μ_a + δ·n_b/n,  M2 = M2_a + M2_b + δ²·n_a·n_b/n
// (M2 = n·var), which keeps the digits a Σx, Σx² formula would lose to a large mean. Returns the
// total count.
double synchronise_statistics(const BatchNormSync& sync, double local_count, Doubles& mean, Doubles& var) {
  const std::size_t C = mean.size();
  std::vector<double> mine(1 + 2 * C);
  mine[0] = local_count;
  for (std::size_t c = 0; c < C; ++c) {
    mine[1 + c] = mean[c];
    mine[1 + C + c] = var[c] * local_count;
  }
  const std::vector<double> all = sync.all_gather(mine);
  TG_CHECK(all.size() % mine.size() == 0 && !all.empty(), "SyncBatchNorm: the processes gathered ", all.size(),
           " values, not a multiple of ", mine.size(), " (do all processes have ", C, " channels?)");
  double n = 0;
  std::vector<double> m2(C, 0.0);
  mean.assign(C, 0.0);
  for (std::size_t r = 0; r < all.size() / mine.size(); ++r) {
    const double* other = all.data() + r * mine.size();
    const double n_b = other[0];
    if (n_b == 0) continue;
    const double total = n + n_b;
    for (std::size_t c = 0; c < C; ++c) {
      const double delta = other[1 + c] - mean[c];
      mean[c] += delta * n_b / total;
      m2[c] += other[1 + C + c] + delta * delta * n * n_b / total;
    }
    n = total;
  }
  for (std::size_t c = 0; c < C; ++c) var[c] = n > 0 ? m2[c] / n : 0.0;
  return n;
}

template <class T>
Doubles to_doubles(const Tensor& t) {
  const T* p = t.data<T>();
  return Doubles(p, p + t.numel());
}

void check_channel_tensor(const BatchNormConfig& config, const char* what, const Tensor& t, std::size_t channels,
                          DType dtype) {
  if (!t.defined()) return;
  TG_CHECK(t.shape() == Shape{channels}, config.name, ": ", what, " has shape ", shape_str(t.shape()),
           ", expected [", channels, "] (one value per channel)");
  TG_CHECK(t.dtype() == dtype, config.name, ": ", what, " is ", dtype_name(t.dtype()), " but the input is ",
           dtype_name(dtype));
}

// Backward. With x̂ = (x - μ)·σ⁻¹ (σ⁻¹ = inv_std), y = γ·x̂ + β and M values per channel:
//   dβ = Σ g,  dγ = Σ g·x̂ = σ⁻¹·Σ g·(x - μ).
// With batch statistics μ and σ depend on every x of the channel:
//   ∂μ/∂x = 1/M,  ∂σ⁻¹/∂x = -σ⁻³·(x - μ)/M, so
//   dx = γ·σ⁻¹·(g - ḡ - x̂·Σ(g·x̂)/M) = A·(g - ḡ) + B·(x - μ)
// with ḡ = Σg/M, A = γσ⁻¹ and B = -A·σ⁻²·Σ(g·(x - μ))/M. It is evaluated in this centred form, in
// double, and rounded once: the expanded form A·g + B·x + D cancels (B·x against D) when the mean
// is large next to the spread or the batch is tiny, and loses most float32 digits there. With
// running statistics μ and σ are constants: dx = A·g. One reduction pass gives Σg and Σg·(x - μ);
// one more pass writes dx.
// Synchronised (sync set, batch statistics): μ and σ are over all M values of every process, so
// Σg and Σg·(x - μ) in dx are summed over every process too (M is then the total count); dγ and
// dβ stay this process's own sums.
template <class T>
Grads batch_norm_backward(const Tensor& grad, const Tensor& input, const Tensor& weight, const Layout& l,
                          const Doubles& mean, const Doubles& inv_std, bool batch_stats, const BatchNormSync* sync,
                          double total_count, NeedsGrad needs) {
  const std::size_t C = l.channels;
  const T* g = grad.data<T>();
  const T* x = input.data<T>();
  const Doubles gamma = weight.defined() ? to_doubles<T>(weight) : Doubles(C, 1.0);
  const ChannelCentres<T> centres(mean);
  Doubles sum_g, sum_g_centred;
  channel_sums<T>(
      l, std::array{g, x},
      [g, x, &centres](auto at, auto channel) {
        const auto gk = at(g);
        return std::pair{gk, gk * ((at(x) - channel(centres.c.data())) - channel(centres.delta.data()))};
      },
      sum_g, sum_g_centred);
  Grads grads(3);
  if (needs[0]) {
    const double m = total_count;
    Doubles all_g = sum_g, all_g_centred = sum_g_centred;
    if (sync && batch_stats) {
      std::vector<double> both(2 * C);
      std::copy(sum_g.begin(), sum_g.end(), both.begin());
      std::copy(sum_g_centred.begin(), sum_g_centred.end(), both.begin() + std::ptrdiff_t(C));
      sync->all_reduce_sum(both);
      std::copy(both.begin(), both.begin() + std::ptrdiff_t(C), all_g.begin());
      std::copy(both.begin() + std::ptrdiff_t(C), both.end(), all_g_centred.begin());
    }
    Buffer<T> a(C), b(C), g_mean(C);
    for (std::size_t c = 0; c < C; ++c) {
      const double a_c = gamma[c] * inv_std[c];
      a[c] = T(a_c);
      b[c] = T(batch_stats ? -a_c * inv_std[c] * inv_std[c] * all_g_centred[c] / m : 0.0);
      g_mean[c] = T(batch_stats ? all_g[c] / m : 0.0);
    }
    xt::xarray<T> dx = xt::xarray<T>::from_shape(input.shape());
    if (batch_stats)
      channel_map(l, dx.data(), [&](std::size_t c, std::size_t k) {
        return a[c] * (g[k] - g_mean[c]) + b[c] * centres.of(c, x[k]);
      });
    else
      channel_map(l, dx.data(), [&](std::size_t c, std::size_t k) { return a[c] * g[k]; });
    grads[0] = make_tensor<T>(std::move(dx));
  }
  if (needs[1]) {
    xt::xarray<T> dgamma = xt::xarray<T>::from_shape({C});
    for (std::size_t c = 0; c < C; ++c) dgamma(c) = T(inv_std[c] * sum_g_centred[c]);
    grads[1] = make_tensor<T>(std::move(dgamma));
  }
  if (needs[2]) {
    xt::xarray<T> dbeta = xt::xarray<T>::from_shape({C});
    for (std::size_t c = 0; c < C; ++c) dbeta(c) = T(sum_g[c]);
    grads[2] = make_tensor<T>(std::move(dbeta));
  }
  return grads;
}

}  // namespace

Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, const BatchNormConfig& config) {
  const Shape& shape = input.shape();
  TG_CHECK(shape.size() >= 2, config.name, ": expected input with at least 2 dimensions (N, C, ...), got ",
           shape.size(), "D input ", shape_str(shape));
  TG_CHECK(!config.channels_last || shape.size() == 3, config.name, ": channels_last takes 3D (N, L, C) input, got ",
           shape_str(shape));
  TG_CHECK(is_floating(input.dtype()), config.name, ": expected a floating-point input, got ",
           dtype_name(input.dtype()));
  Layout l;
  if (config.channels_last) {
    l = {shape[0] * shape[1], shape[2], 1};
  } else {
    l = {shape[0], shape[1], 1};  // (N, C, d1, d2, ...) is (N, C, d1·d2·...)
    for (std::size_t d = 2; d < shape.size(); ++d) l.inner *= shape[d];
  }
  const std::size_t C = l.channels;
  check_channel_tensor(config, "weight", weight, C, input.dtype());
  check_channel_tensor(config, "bias", bias, C, input.dtype());
  check_channel_tensor(config, "running_mean", running_mean, C, input.dtype());
  check_channel_tensor(config, "running_var", running_var, C, input.dtype());
  const bool batch_stats = config.use_batch_stats;
  const BatchNormSync* sync = batch_stats ? config.sync.get() : nullptr;
  if (batch_stats && !sync) {
    TG_CHECK(l.count() != 1, config.name, ": Expected more than 1 value per channel when training, got input size ",
             shape_str(shape));
  } else if (!batch_stats) {
    TG_CHECK(running_mean.defined() && running_var.defined(), config.name,
             ": running_mean and running_var are required to normalise with running statistics");
  }
  TG_CHECK(!config.update_running || (batch_stats && running_mean.defined() && running_var.defined()), config.name,
           ": updating running statistics needs batch statistics and both running tensors");
  // No values (an empty batch, or no channels): an empty result and the running statistics as they
  // were, as PyTorch's. (With a sync, every process must still take part in the reduction below.)
  // Its gradients are zeros of each input's shape (weight and bias get theirs, as PyTorch's).
  if (input.numel() == 0 && !sync) {
    Tensor empty = dispatch_floating(input.dtype(), config.name, [&]<class T>() {
      return make_tensor<T>(xt::xarray<T>::from_shape(shape));
    });
    return record(config.name, empty, {input, weight, bias}, [input, weight, bias](const Tensor&) -> Grads {
      return {zeros_like(input), weight.defined() ? zeros_like(weight) : Tensor(),
              bias.defined() ? zeros_like(bias) : Tensor()};
    });
  }

  // Per-channel mean and 1/sqrt(var + eps), from the batch or from the running statistics.
  Doubles mean, var;
  dispatch_floating(input.dtype(), config.name, [&]<class T>() {
    if (batch_stats) {
      batch_statistics(input.data<T>(), l, mean, var);
    } else {
      mean = to_doubles<T>(running_mean);
      var = to_doubles<T>(running_var);
    }
  });
  double total_count = double(l.count());
  if (sync) {
    total_count = synchronise_statistics(*sync, total_count, mean, var);
    TG_CHECK(total_count > 1, config.name, ": Expected more than 1 value per channel when training, got ",
             total_count, " over all processes (this one's input ", shape_str(shape), ")");
  }
  Doubles inv_std(C);
  for (std::size_t c = 0; c < C; ++c) inv_std[c] = 1.0 / std::sqrt(var[c] + config.eps);

  if (config.update_running) {
    // running = (1 - momentum)·running + momentum·batch, the variance unbiased by n/(n-1) unless
    // the MindSpore-CPU behaviour (biased) is asked for.
    const double n = total_count;
    const double correction = config.unbiased_running_var ? n / (n - 1) : 1.0;
    NoGradGuard no_grad;
    Tensor rm = running_mean, rv = running_var;
    dispatch_floating(input.dtype(), config.name, [&]<class T>() {
      T* pm = rm.mutable_data<T>();
      T* pv = rv.mutable_data<T>();
      for (std::size_t c = 0; c < C; ++c) {
        pm[c] = T((1 - config.momentum) * double(pm[c]) + config.momentum * mean[c]);
        pv[c] = T((1 - config.momentum) * double(pv[c]) + config.momentum * var[c] * correction);
      }
    });
  }

  // y = (x - mean_c)·scale_c + bias_c with scale = weight·inv_std, centred (the folded
  // x·scale + offset would cancel for a mean that is large next to the spread).
  Tensor out = dispatch_floating(input.dtype(), config.name, [&]<class T>() {
    Buffer<T> scale(C);
    const Buffer<T> b = bias.defined() ? Buffer<T>(bias.data<T>(), bias.data<T>() + C) : Buffer<T>(C);
    const T* w = weight.defined() ? weight.data<T>() : nullptr;
    for (std::size_t c = 0; c < C; ++c) scale[c] = T((w ? double(w[c]) : 1.0) * inv_std[c]);
    const ChannelCentres<T> centres(mean);
    xt::xarray<T> y = xt::xarray<T>::from_shape(shape);
    const T* x = input.data<T>();
    channel_map(l, y.data(), [&](std::size_t c, std::size_t k) { return centres.of(c, x[k]) * scale[c] + b[c]; });
    return make_tensor<T>(std::move(y));
  });

  return record(config.name, out, {input, weight, bias}, {input, weight},
                [input, weight, l, mean, inv_std, batch_stats, name = config.name,
                 sync = sync ? config.sync : nullptr, total_count](const Tensor& grad, NeedsGrad needs) -> Grads {
                  return dispatch_floating(grad.dtype(), name, [&]<class T>() {
                    return batch_norm_backward<T>(grad, input, weight, l, mean, inv_std, batch_stats, sync.get(),
                                                  total_count, needs);
                  });
                });
}

namespace nn::functional {

Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  TG_CHECK(running_mean.defined() == running_var.defined(),
           "batch_norm: running_mean and running_var must be given together");
  BatchNormConfig config;
  config.use_batch_stats = training;
  config.update_running = training && running_mean.defined();
  config.momentum = momentum;
  config.eps = eps;
  return tg::batch_norm(input, running_mean, running_var, weight, bias, config);
}

// ---- instance_norm ---------------------------------------------------------------------------
//
// With the input's statistics it is group_norm with a group per channel (the same kernels); the
// running statistics, when given, move towards the mean over samples of each (sample, channel)'s
// mean and unbiased variance, as PyTorch's (which runs batch_norm over (1, N·C, *) and averages
// the N copies of each running statistic back). With the running statistics it is batch_norm's
// evaluation path.
Tensor instance_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                     const Tensor& bias, bool use_input_stats, double momentum, double eps) {
  const Shape& shape = input.shape();
  TG_CHECK(shape.size() >= 3, "instance_norm: expected input (N, C, *) with at least one spatial dim, got ",
           shape_str(shape));
  TG_CHECK(running_mean.defined() == running_var.defined(),
           "instance_norm: running_mean and running_var must be given together");
  BatchNormConfig config;
  config.name = "instance_norm";
  config.eps = eps;
  for (const Tensor* t : {&running_mean, &running_var})
    check_channel_tensor(config, t == &running_mean ? "running_mean" : "running_var", *t, shape[1], input.dtype());
  if (!use_input_stats) {
    TG_CHECK(running_mean.defined(), "instance_norm: use_input_stats=false needs running_mean and running_var");
    config.use_batch_stats = false;
    return tg::batch_norm(input, running_mean, running_var, weight, bias, config);
  }
  const std::size_t spatial = std::accumulate(shape.begin() + 2, shape.end(), std::size_t{1}, std::multiplies<>());
  TG_CHECK(spatial > 1, "instance_norm: expected more than 1 spatial element when training, got input size ",
           shape_str(shape));
  const bool update = running_mean.defined() && shape[0] > 0;  // an empty batch leaves them as they were
  std::vector<std::pair<double, double>> stats;
  Tensor out = group_norm_named("instance_norm", input, std::int64_t(shape[1]), weight, bias, eps,
                                update ? &stats : nullptr);
  if (update) {
    NoGradGuard no_grad;
    Tensor rm = running_mean, rv = running_var;
    const std::size_t n = shape[0], channels = shape[1];
    const double unbiased = double(spatial) / double(spatial - 1);
    dispatch_floating(input.dtype(), "instance_norm", [&]<class T>() {
      T* pm = rm.mutable_data<T>();
      T* pv = rv.mutable_data<T>();
      for (std::size_t c = 0; c < channels; ++c) {
        double mean = 0, var = 0;  // over the samples, in sample order
        for (std::size_t i = 0; i < n; ++i) {
          mean += stats[i * channels + c].first;
          var += stats[i * channels + c].second * unbiased;
        }
        pm[c] = T((1 - momentum) * double(pm[c]) + momentum * mean / double(n));
        pv[c] = T((1 - momentum) * double(pv[c]) + momentum * var / double(n));
      }
    });
  }
  return out;
}

}  // namespace nn::functional
}  // namespace tg
