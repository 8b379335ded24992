// Losses. The regression losses and binary_cross_entropy_with_logits are fused elementwise
// kernels (fused_loss); cross_entropy and nll_loss are row kernels with their own backward
// (cross_entropy fuses log-softmax for stability; with the classes at dim 1 of (N, C, d1, ...) it is
// a column kernel of its own, cross_entropy_columns, and with class probabilities as targets one
// node over rows or columns, cross_entropy_probabilities); binary_cross_entropy is a fused pair of ops.
#include "core/ops/loss.hpp"
#include "core/xtensor.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <vector>

#include "core/autograd.hpp"
#include "core/creation.hpp"
#include "core/ops/activation.hpp"
#include "core/ops/distance.hpp"
#include "core/ops/elementwise.hpp"
#include "core/ops/kernels.hpp"
#include "core/ops/math_lanes.hpp"
#include "core/ops/reduce.hpp"
#include "core/ops/shape.hpp"

namespace tg {

const char* reduction_name(Reduction reduction) {
  switch (reduction) {
    case Reduction::None: return "none";
    case Reduction::Sum: return "sum";
    case Reduction::BatchMean: return "batchmean";
    default: return "mean";
  }
}

Tensor reduce_loss(const Tensor& loss, Reduction reduction) {
  TG_CHECK(reduction != Reduction::BatchMean, "reduce_loss: reduction batchmean is kl_div's only");
  switch (reduction) {
    case Reduction::None: return loss;
    case Reduction::Sum: return sum(loss);
    default: return mean(loss);
  }
}

namespace {

// BatchMean is kl_div's alone: any other loss names itself and refuses it.
void check_reduction(const char* op, Reduction reduction) {
  TG_CHECK(reduction != Reduction::BatchMean, op, ": reduction batchmean is kl_div's only (use mean, sum or none)");
}

void check_same_shape(const char* op, const Tensor& input, const Tensor& target) {
  // PyTorch broadcasts here with a warning; a mismatch is nearly always a bug, so it is an error.
  TG_CHECK(input.shape() == target.shape(), op, ": input ", shape_str(input.shape()), " and target ",
           shape_str(target.shape()), " must have the same shape");
}

}  // namespace

// ---- regression losses ----------------------------------------------------------------------

namespace {

// A number as a batch like x, of x's element type.
template <class B>
B splat(const B&, double v) {
  return B(element_of<B>(v));
}

// A loss over equal-shaped input x and target t of one floating dtype that is a sum of terms
// f(x, t), fused: one pass forward and one pass backward per input that needs a gradient,
// d/dx = g·dx(x, t) and d/dt = g·dt(x, t) (g the incoming gradient, times 1/n for the mean).
// Mean and Sum add the terms in double over fixed blocks combined in order (the same bits for any
// thread count); Reduction::None keeps them. The terms are computed in Term: double for the
// polynomial losses (exacter than PyTorch's float terms and free, the pass being memory-bound),
// the element type for the ones with exp and log (twice the SIMD lanes). Mixed or integer dtypes
// return an empty Tensor: the caller composes the loss from ops, which promote or explain.
enum class Terms { Double, Element };
template <Terms terms, class F, class DX, class DT>
Tensor fused_loss(const char* op, const Tensor& input, const Tensor& target, Reduction reduction, F f, DX dx, DT dt) {
  if (input.dtype() != target.dtype() || !is_floating(input.dtype())) return Tensor();
  if (reduction == Reduction::None) {
    const Tensor out = pointwise(op, f, input, target);
    return record(op, out, {input, target}, {input, target},
                  [op, input, target, dx, dt](const Tensor& grad, NeedsGrad needs) -> Grads {
                    Grads grads(2);
                    auto times = [&grad, &input, &target, op](auto d) {
                      return pointwise(op, [d](auto g, auto x, auto t) { return g * d(x, t); }, grad, input, target);
                    };
                    if (needs[0]) grads[0] = times(dx);
                    if (needs[1]) grads[1] = times(dt);
                    return grads;
                  });
  }
  const std::size_t n = input.numel();
  const double scale = reduction == Reduction::Mean ? 1.0 / double(n) : 1.0;
  const Tensor out = dispatch_floating(input.dtype(), op, [&]<class T>() {
    using Term = std::conditional_t<terms == Terms::Double, double, T>;
    const T* x = input.data<T>();
    const T* t = target.data<T>();
    const double total = parallel::reduce_blocks(
        n, parallel::kGrain, 0.0,
        [&](std::size_t begin, std::size_t end) {
          return kernels::lane_sum<Term>(end - begin, [&f, x = x + begin, t = t + begin](auto at) {
            return f(at(x), at(t));
          });
        },
        [](double a, double b) { return a + b; });
    return full({}, n == 0 && reduction == Reduction::Sum ? 0.0 : total * scale, input.dtype());
  });
  return record(op, out, {input, target}, {input, target},
                [op, input, target, scale, dx, dt](const Tensor& grad, NeedsGrad needs) -> Grads {
                  const double factor = scale * grad.item();
                  Grads grads(2);
                  if (needs[0])
                    grads[0] = pointwise(op, [dx, factor](auto x, auto t) { return dx(x, t) * splat(x, factor); },
                                         input, target);
                  if (needs[1])
                    grads[1] = pointwise(op, [dt, factor](auto x, auto t) { return dt(x, t) * splat(x, factor); },
                                         input, target);
                  return grads;
                });
}

}  // namespace

// The losses of the difference d = x - t (so d/dt = -d/dx) follow PyTorch's formulas (its
// loss kernels and their backward in ATen), and at the kinks its choices: l1's sign(0) = 0;
// smooth_l1 and huber take the linear piece from |d| = beta (delta) on, where both give the same.

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_reduction("mse_loss", reduction);
  check_same_shape("mse_loss", input, target);
  auto f = [](auto x, auto t) { return (x - t) * (x - t); };
  auto dx = [](auto x, auto t) { return (x - t) * splat(x, 2.0); };
  auto dt = [](auto x, auto t) { return (x - t) * splat(x, -2.0); };
  Tensor out = fused_loss<Terms::Double>("mse_loss", input, target, reduction, f, dx, dt);
  if (out.defined()) return out;
  const Tensor diff = input - target;
  return reduce_loss(diff * diff, reduction);
}

Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_reduction("l1_loss", reduction);
  check_same_shape("l1_loss", input, target);
  auto f = [](auto x, auto t) { return xsimd::abs(x - t); };
  auto dx = [](auto x, auto t) { return sgn(x - t); };
  auto dt = [](auto x, auto t) { return -sgn(x - t); };
  Tensor out = fused_loss<Terms::Double>("l1_loss", input, target, reduction, f, dx, dt);
  return out.defined() ? out : reduce_loss(abs(input - target), reduction);
}

Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction reduction, double beta) {
  check_reduction("smooth_l1_loss", reduction);
  check_same_shape("smooth_l1_loss", input, target);
  TG_CHECK(beta >= 0, "smooth_l1_loss: beta must be non-negative, got ", beta);
  if (beta == 0.0) return l1_loss(input, target, reduction);
  // |d| < beta: 0.5·d²/beta, else |d| - 0.5·beta;  d/dx: d/beta clamped to [-1, 1].
  auto f = [beta](auto x, auto t) {
    const auto z = xsimd::abs(x - t), b = splat(x, beta);
    return xsimd::select(z < b, splat(x, 0.5) * z * z / b, z - splat(x, 0.5 * beta));
  };
  auto dx = [beta](auto x, auto t) {
    const auto one = splat(x, 1.0);
    return xsimd::max(-one, xsimd::min(one, (x - t) / splat(x, beta)));
  };
  auto dt = [dx](auto x, auto t) { return -dx(x, t); };
  Tensor out = fused_loss<Terms::Double>("smooth_l1_loss", input, target, reduction, f, dx, dt);
  if (out.defined()) return out;
  const Tensor diff = input - target;
  const Tensor size = abs(diff);
  const Tensor quadratic = diff * diff * (0.5 / beta);
  const Tensor linear = size - 0.5 * beta;
  return reduce_loss(where(lt(size, beta), quadratic, linear), reduction);
}

Tensor huber_loss(const Tensor& input, const Tensor& target, Reduction reduction, double delta) {
  check_reduction("huber_loss", reduction);
  check_same_shape("huber_loss", input, target);
  TG_CHECK(delta > 0, "huber_loss: delta must be positive, got ", delta);
  // smooth_l1_loss with beta = delta, times delta: |d| < delta: 0.5·d², else delta·(|d| - 0.5·delta);
  // d/dx: d clamped to [-delta, delta].
  auto f = [delta](auto x, auto t) {
    const auto z = xsimd::abs(x - t), b = splat(x, delta);
    return xsimd::select(z < b, splat(x, 0.5) * z * z, b * (z - splat(x, 0.5 * delta)));
  };
  auto dx = [delta](auto x, auto t) {
    const auto b = splat(x, delta);
    return xsimd::max(-b, xsimd::min(b, x - t));
  };
  auto dt = [dx](auto x, auto t) { return -dx(x, t); };
  Tensor out = fused_loss<Terms::Double>("huber_loss", input, target, reduction, f, dx, dt);
  if (out.defined()) return out;
  const Tensor diff = input - target;
  const Tensor size = abs(diff);
  const Tensor quadratic = diff * diff * 0.5;
  const Tensor linear = (size - 0.5 * delta) * delta;
  return reduce_loss(where(lt(size, delta), quadratic, linear), reduction);
}

// ---- class-index losses ---------------------------------------------------------------------

namespace {

// The checked view of (input, target) that cross_entropy and nll_loss share: rows × classes,
// target indices, per-row weights of the target class (0 for ignored rows) and per-class weights.
// (N, C, d1, ..., dk) input is N·d1·…·dk rows whose classes lie `inner` = d1·…·dk apart; (N, C)
// and (C) inputs have inner = 1.
struct ClassRows {
  std::size_t rows = 0, classes = 0, inner = 1;
  Buffer<std::int64_t> target;
  Buffer<double> class_weight;   // size classes
  Buffer<double> target_weight;  // size rows
  double total_weight = 0.0;          // the mean's denominator
  // f(i, first) for every row i in order, `first` where its class 0 is in the input (class c at
  // first + c·inner). Walked as (sample, position) without a division per row: the division, and
  // the load that waited on it, were a quarter of op/cross_entropy_mid/64's nll_loss passes.
  template <class F>
  void for_each_row(F f) const {
    const std::size_t samples = inner == 0 ? 0 : rows / inner;
    for (std::size_t n = 0, i = 0; n < samples; ++n)
      for (std::size_t j = 0; j < inner; ++j, ++i) f(i, n * classes * inner + j);
  }
};

ClassRows check_class_inputs(const char* op, const Tensor& input, const Tensor& target,
                             const ClassLossOptions& options) {
  const Shape& shape = input.shape();
  TG_CHECK(input.dim() >= 1, op, ": expected input of shape (C), (N, C) or (N, C, d1, ...), got ", shape_str(shape));
  TG_CHECK(is_floating(input.dtype()), op, ": expected floating-point input, got ", dtype_name(input.dtype()));
  TG_CHECK(target.dtype() == kInt64, op, ": expected int64 class indices as target, got ",
           dtype_name(target.dtype()), " ", shape_str(target.shape()));
  ClassRows c;
  c.classes = shape[input.dim() == 1 ? 0 : 1];
  Shape expected_target;  // the input's shape without the class dim
  for (std::size_t d = 0; d < shape.size(); ++d)
    if (d != (input.dim() == 1 ? 0 : 1)) expected_target.push_back(shape[d]);
  for (std::size_t d = 2; d < shape.size(); ++d) c.inner *= shape[d];
  c.rows = input.dim() == 1 ? 1 : shape[0] * c.inner;
  TG_CHECK(target.shape() == expected_target, op, ": target ", shape_str(target.shape()), " does not match input ",
           shape_str(input.shape()), " (expected target ", shape_str(expected_target), ")");
  c.class_weight.assign(c.classes, 1.0);
  if (options.weight.defined()) {
    TG_CHECK(options.weight.shape() == Shape{c.classes}, op, ": weight ", shape_str(options.weight.shape()),
             " must have one entry per class (", c.classes, ")");
    const Tensor w = options.weight.to(kFloat64);
    c.class_weight.assign(w.data<double>(), w.data<double>() + w.numel());
  }
  c.target.assign(target.data<std::int64_t>(), target.data<std::int64_t>() + target.numel());
  c.target_weight.assign(c.rows, 0.0);
  double total_weight = 0.0;  // a local: the member's store and reload each row was a chain of waits
  for (std::size_t i = 0; i < c.rows; ++i) {
    const std::int64_t y = c.target[i];
    if (y == options.ignore_index) continue;
    TG_CHECK(y >= 0 && y < std::int64_t(c.classes), op, ": target ", y, " is out of range for ", c.classes,
             " classes (sample ", i, ")");
    c.target_weight[i] = c.class_weight[std::size_t(y)];
    total_weight += c.target_weight[i];
  }
  c.total_weight = total_weight;
  return c;
}

// Per-row losses for Reduction::None (in `shape`: the target's, or the input's without the class
// dim), or their sum, or their mean over `denominator` (the total target weight, PyTorch's
// weighted mean, for class indices; the sample count for class probabilities).
template <class T>
Tensor reduce_rows(const Buffer<double>& row_loss, double denominator, const Shape& shape, Reduction r) {
  if (r == Reduction::None) {
    xt::xarray<T> out = xt::xarray<T>::from_shape(shape);
    std::transform(row_loss.begin(), row_loss.end(), out.data(), [](double v) { return T(v); });
    return make_tensor<T>(std::move(out));
  }
  double total = 0;
  for (double l : row_loss) total += l;
  if (r == Reduction::Mean) total /= denominator;  // all ignored, or no samples: 0/0 = NaN, as in PyTorch
  return make_tensor<T>(xt::xarray<T>(T(total)));
}

// The factor each of `rows` rows' gradient is multiplied by, from the upstream gradient (the
// same `denominator` as reduce_rows).
template <class T>
Buffer<double> row_scales(const Tensor& grad, std::size_t rows, double denominator, Reduction r) {
  const T* g = grad.data<T>();
  Buffer<double> scale(rows);
  for (std::size_t i = 0; i < rows; ++i)
    scale[i] = r == Reduction::None ? double(g[i]) : r == Reduction::Sum ? double(g[0]) : double(g[0]) / denominator;
  return scale;
}

}  // namespace

namespace {

// (N, C, d1, ..., dk) input with (N, d1, ..., dk) targets is the (N·d1·…·dk, C) case: the class
// dim moves last, the loss runs on rows, and Reduction::None gets the target's shape back. (Only
// cross_entropy with label smoothing over one position, or over more than 2^24 float32 classes,
// takes this way; the rest go down the columns.)
template <class Loss>
Tensor over_extra_dims(const char* op, const Tensor& input, const Tensor& target, const ClassLossOptions& options,
                       Loss&& loss) {
  const Shape& shape = input.shape();
  Shape expected_target{shape[0]};
  std::vector<std::int64_t> order{0};
  for (std::size_t d = 2; d < shape.size(); ++d) {
    expected_target.push_back(shape[d]);
    order.push_back(std::int64_t(d));
  }
  order.push_back(1);
  TG_CHECK(target.shape() == expected_target, op, ": target ", shape_str(target.shape()), " does not match input ",
           shape_str(input.shape()), " (expected target ", shape_str(expected_target), ")");
  const std::int64_t classes = std::int64_t(shape[1]);
  const Tensor rows = reshape(permute(input, order), {-1, classes});
  const Tensor out = loss(rows, reshape(target, {-1}), options);
  return options.reduction == Reduction::None ? reshape(out, kernels::as_signed(target.shape())) : out;
}

// Class probabilities as targets (input's shape, classes at dim 1, or dim 0 for one sample):
// l = -Σ_c w_c·q_c·log p_c with q = (1 - ε)·target + ε/C; the mean is over the samples (N·d1·…).
// One node, fused with the softmax like the class-index kernels: per row, or per column of
// (N, C, d1, ...), the max m and log S = log Σ_c e^(x - m), by log_softmax's own row and column
// statistics, so that log p = (x - m) - log S has the bits of its output; each sample's loss
// summed in double. With Q = Σ_c w_c·q_c, the gradients are
//   ∂l/∂x_c = p_c·Q - w_c·q_c,   ∂l/∂target_c = -(1 - ε)·w_c·log p_c,   ∂l/∂w_c = -q_c·log p_c
// (the second for a target that requires grad, soft labels from another model; the third, rarer,
// summed over the samples in order), each one pass.
// Composed of log_softmax, a product, a sum over the classes and the mean, it took five passes
// forward and four backward.
Tensor cross_entropy_probabilities(const Tensor& input, const Tensor& target, const ClassLossOptions& options) {
  TG_CHECK(input.shape() == target.shape(), "cross_entropy: a floating-point target is read as class probabilities "
           "and must have the input's shape ", shape_str(input.shape()), ", got ", dtype_name(target.dtype()), " ",
           shape_str(target.shape()), " (class indices must be int64)");
  TG_CHECK(target.dtype() == input.dtype(), "cross_entropy: class-probability target is ", dtype_name(target.dtype()),
           " but the input is ", dtype_name(input.dtype()));
  TG_CHECK(options.ignore_index < 0, "cross_entropy: ignore_index (", options.ignore_index,
           ") is not supported for class-probability targets");
  const std::size_t class_dim = input.dim() == 1 ? 0 : 1;
  const std::size_t classes = input.shape()[class_dim];
  TG_CHECK(!options.weight.defined() || options.weight.shape() == Shape{classes}, "cross_entropy: weight ",
           shape_str(options.weight.shape()), " must have one entry per class (", classes, ")");
  const kernels::ReduceLayout l = kernels::reduce_layout(input.shape(), class_dim);  // (samples, classes, positions)
  const std::size_t rows = l.outer * l.inner;
  Shape out_shape = input.shape();  // the input's shape without the class dim
  out_shape.erase(out_shape.begin() + std::ptrdiff_t(class_dim));
  // (A weight that requires grad gets its gradient through the cast.)
  const Tensor weight = options.weight.defined() ? options.weight.to(input.dtype()) : ones({classes}, input.dtype());
  const double eps = options.label_smoothing;
  struct Kept {  // the forward's values the backward reads: m and log S per row; over rows e^(x - m) and S
    Tensor shift, log_total, exps, total;
  } kept;
  // Only the input's gradient reads e^(x - m): without it (a validation loss, a frozen student) the
  // exponentials go to a scratch block each, not to a tensor of the input's size.
  const bool keep_exps = GradMode::is_enabled() && input.requires_grad();
  Tensor out = dispatch_floating(input.dtype(), "cross_entropy", [&]<class T>() {
    using B = kernels::Batch<T>;
    const T* x = input.data<T>();
    const T* t = target.data<T>();
    const T* w = weight.data<T>();
    const T keep = T(1 - eps), spread = T(eps / double(classes));
    xt::xarray<T> shift = xt::xarray<T>::from_shape({rows}), log_total = xt::xarray<T>::from_shape({rows});
    Buffer<double> row_loss(rows, 0.0);
    if (l.inner == 1) {
      xt::xarray<T> e = xt::xarray<T>::from_shape(keep_exps ? input.shape() : Shape{0});
      xt::xarray<T> total = xt::xarray<T>::from_shape({rows});
      parallel::for_range(rows, std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(classes, 1)),
                          [&](std::size_t first, std::size_t last) {
        Buffer<T> scratch(keep_exps ? 0 : kernels::row_block_values<T>(classes));
        kernels::for_row_blocks<T>(first, last, classes, [&](std::size_t block, std::size_t count) {
          kernels::RowExps<T> exps;
          kernels::exp_rows(x + block * classes, keep_exps ? e.data() + block * classes : scratch.data(), classes,
                            count, exps);
          for (std::size_t i = block; i < block + count; ++i) {
            const T m = exps.max[i - block], log_s = std::log(exps.sum[i - block]);
            shift[i] = m;
            log_total[i] = log_s;
            total[i] = exps.sum[i - block];
            const T* xi = x + i * classes;
            const T* ti = t + i * classes;
            row_loss[i] = -kernels::lane_sum<T>(classes, [&](auto at) {
              using P = decltype(at(xi));
              return at(w) * (at(ti) * P(keep) + P(spread)) * ((at(xi) - P(m)) - P(log_s));
            });
          }
        });
      });
      kept.exps = make_tensor<T>(std::move(e));
      kept.total = make_tensor<T>(std::move(total));
    } else {
      kernels::for_column_slabs<T>(l, [&](std::size_t n, std::size_t j, std::size_t width) {
        const std::size_t at = n * classes * l.inner + j, row = n * l.inner + j;
        T* m = shift.data() + row;
        T* lt = log_total.data() + row;
        kernels::column_max(x + at, classes, l.inner, width, m);
        kernels::column_log_sums(x + at, classes, l.inner, width, static_cast<const T*>(m), lt);
        alignas(64) std::array<T, kernels::kSlabColumns> terms;
        for (std::size_t c = 0; c < classes; ++c) {
          const std::size_t o = at + c * l.inner;
          const B wc(w[c]);
          kernels::apply(width, terms.data(),
                         [wc, keep, spread](B v, B tv, B largest, B log_s) {
                           return wc * (tv * B(keep) + B(spread)) * ((v - largest) - log_s);
                         },
                         x + o, t + o, static_cast<const T*>(m), static_cast<const T*>(lt));
          for (std::size_t k = 0; k < width; ++k) row_loss[row + k] -= double(terms[k]);
        }
      });
    }
    kept.shift = make_tensor<T>(std::move(shift));
    kept.log_total = make_tensor<T>(std::move(log_total));
    return reduce_rows<T>(row_loss, double(rows), out_shape, options.reduction);
  });
  return record("cross_entropy", out, {input, target, weight}, {input, target, weight},
                [input, target, weight, kept = std::move(kept), l, eps, reduction = options.reduction](
                    const Tensor& grad, NeedsGrad needs) -> Grads {
    return dispatch_floating(grad.dtype(), "cross_entropy", [&]<class T>() -> Grads {
      using B = kernels::Batch<T>;
      const std::size_t classes = l.reduced, rows = l.outer * l.inner;
      const T* x = input.data<T>();
      const T* t = target.data<T>();
      const T* w = weight.data<T>();
      const T* shift = kept.shift.data<T>();
      const T* log_total = kept.log_total.data<T>();
      const T keep = T(1 - eps), spread = T(eps / double(classes));
      const Buffer<double> scales = row_scales<T>(grad, rows, double(rows), reduction);
      auto scale = [&](std::size_t i) { return T(scales[i]); };
      xt::xarray<T> dx, dt;
      if (needs[0]) dx = xt::xarray<T>::from_shape(input.shape());
      if (needs[1]) dt = xt::xarray<T>::from_shape(input.shape());
      if (l.inner == 1) {
        const T* e = kept.exps.data<T>();
        const T* total = kept.total.data<T>();
        parallel::for_range(rows, std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(classes, 1)),
                            [&](std::size_t first, std::size_t last) {
          for (std::size_t i = first; i < last; ++i) {
            const std::size_t at = i * classes;
            const T s = scale(i);
            if (needs[0]) {
              // p·Q·s with p = e/S: one factor s·Q/S on the kept exponentials.
              const double q_total = kernels::lane_sum<T>(classes, [&](auto at_) {
                using P = decltype(at_(w));
                return at_(w) * (at_(t + at) * P(keep) + P(spread));
              });
              const T factor = T(double(s) * q_total / double(total[i]));
              kernels::apply(classes, dx.data() + at,
                             [factor, s, keep, spread](B ev, B wv, B tv) { return B(factor) * ev - B(s) * (wv * (tv * B(keep) + B(spread))); },
                             e + at, w, t + at);
            }
            if (needs[1]) {
              const T m = shift[i], log_s = log_total[i], factor = -s * keep;
              kernels::apply(classes, dt.data() + at,
                             [m, log_s, factor](B v, B wv) { return B(factor) * wv * ((v - B(m)) - B(log_s)); }, x + at, w);
            }
          }
        });
      } else {
        kernels::for_column_slabs<T>(l, [&](std::size_t n, std::size_t j, std::size_t width) {
          const std::size_t at = n * classes * l.inner + j, row = n * l.inner + j;
          const T* m = shift + row;
          const T* lt = log_total + row;
          alignas(64) std::array<T, kernels::kSlabColumns> s, sq;  // s, and s·Q, per column
          for (std::size_t k = 0; k < width; ++k) s[k] = scale(row + k);
          if (needs[0]) {
            alignas(64) std::array<double, kernels::kSlabColumns> q_total;
            std::fill_n(q_total.data(), width, 0.0);
            for (std::size_t c = 0; c < classes; ++c) {
              const T* tc = t + at + c * l.inner;
              for (std::size_t k = 0; k < width; ++k) q_total[k] += double(w[c] * (tc[k] * keep + spread));
            }
            for (std::size_t k = 0; k < width; ++k) sq[k] = T(double(s[k]) * q_total[k]);
          }
          for (std::size_t c = 0; c < classes; ++c) {
            const std::size_t o = at + c * l.inner;
            const B wc(w[c]);
            if (needs[0])
              kernels::apply(width, dx.data() + o,
                             [wc, keep, spread](B v, B tv, B largest, B log_s, B sv, B sqv) {
                               return kernels::exp_lanes((v - largest) - log_s) * sqv - sv * (wc * (tv * B(keep) + B(spread)));
                             },
                             x + o, t + o, m, lt, static_cast<const T*>(s.data()), static_cast<const T*>(sq.data()));
            if (needs[1])
              kernels::apply(width, dt.data() + o,
                             [wc, keep](B v, B largest, B log_s, B sv) { return -(sv * B(keep)) * wc * ((v - largest) - log_s); },
                             x + o, m, lt, static_cast<const T*>(s.data()));
          }
        });
      }
      Tensor dw;
      if (needs[2]) {  // -Σ_i s_i·q_ic·log p_ic per class, the samples in order
        Buffer<double> sums(classes, 0.0);
        for (std::size_t n = 0; n < l.outer; ++n)
          for (std::size_t c = 0; c < classes; ++c)
            for (std::size_t j = 0; j < l.inner; ++j) {
              const std::size_t at = (n * classes + c) * l.inner + j, row = n * l.inner + j;
              const T log_p = (x[at] - shift[row]) - log_total[row];
              sums[c] -= scales[row] * double(t[at] * keep + spread) * double(log_p);
            }
        xt::xarray<T> values = xt::xarray<T>::from_shape({classes});
        std::transform(sums.begin(), sums.end(), values.data(), [](double v) { return T(v); });
        dw = make_tensor<T>(std::move(values));
      }
      return {needs[0] ? make_tensor<T>(std::move(dx)) : Tensor(), needs[1] ? make_tensor<T>(std::move(dt)) : Tensor(),
              dw};
    });
  });
}

Tensor cross_entropy_rows(const Tensor& input, const Tensor& target, const ClassLossOptions& options);
Tensor cross_entropy_columns(const Tensor& input, ClassRows c, const Tensor& target, const ClassLossOptions& options);
Tensor nll_loss_rows(const char* op, const Tensor& input, ClassRows c, const Tensor& target, Reduction reduction);

}  // namespace

Tensor cross_entropy(const Tensor& input, const Tensor& target, const ClassLossOptions& options) {
  check_reduction("cross_entropy", options.reduction);
  TG_CHECK(options.label_smoothing >= 0.0 && options.label_smoothing <= 1.0,
           "cross_entropy: label_smoothing must be in [0, 1], got ", options.label_smoothing);
  TG_CHECK(input.dim() >= 1, "cross_entropy: expected input of shape (C), (N, C) or (N, C, d1, ...), got ",
           shape_str(input.shape()));
  if (is_floating(target.dtype())) return cross_entropy_probabilities(input, target, options);
  if (input.dim() > 2) {
    // Classes at dim 1 of (N, C, d1, ...): PyTorch's definition, nll_loss(log_softmax(x, 1)), down
    // the columns with no permuted copy either way (cross_entropy_mid/1024 at one thread 0.89 ->
    // 0.62-0.65 ms; the row kernel needs the classes contiguous).
    ClassRows c = check_class_inputs("cross_entropy", input, target, options);
    // Not for one position, d1·… = 1 (log_softmax's row kernel, or the rows), nor for more than
    // 2^24 float32 classes (the class would not fit a lane).
    if (c.inner > 1 && !(input.dtype() == kFloat32 && c.classes > (std::size_t(1) << 24)))
      return cross_entropy_columns(input, std::move(c), target, options);
    if (options.label_smoothing == 0)
      return nll_loss_rows("cross_entropy", log_softmax(input, 1), std::move(c), target, options.reduction);
    return over_extra_dims("cross_entropy", input, target, options, cross_entropy_rows);
  }
  return cross_entropy_rows(input, target, options);
}

Tensor nll_loss(const Tensor& input, const Tensor& target, const ClassLossOptions& options) {
  check_reduction("nll_loss", options.reduction);
  return nll_loss_rows("nll_loss", input, check_class_inputs("nll_loss", input, target, options), target,
                       options.reduction);
}

namespace {

Tensor cross_entropy_rows(const Tensor& input, const Tensor& target, const ClassLossOptions& options) {
  ClassRows c = check_class_inputs("cross_entropy", input, target, options);
  const double eps = options.label_smoothing;
  const Reduction reduction = options.reduction;
  // Per row i with target y: l_i = -(1-ε)·w_y·log p_iy - (ε/C)·Σ_c w_c·log p_ic, fused with the
  // softmax: per row the max m and e^(x - m) once per value (stored with their sum S: the
  // backward reads p = e/S from them, with 1/S folded into its factor, instead of exponentiating
  // again or normalising here), and log p_ic taken as (x_ic - m) - log S, which keeps its digits
  // where p_ic itself underflows.
  Tensor exps;
  Buffer<double> totals(c.rows, 1.0);
  // Without a gradient to come (a validation loss) the exponentials go to a scratch block each.
  const bool keep_exps = GradMode::is_enabled() && input.requires_grad();
  Tensor out = dispatch_floating(input.dtype(), "cross_entropy", [&]<class T>() {
    const T* x = input.data<T>();
    xt::xarray<T> e = xt::xarray<T>::from_shape(keep_exps ? input.shape() : Shape{0});
    const std::size_t n = c.classes;
    Buffer<double> row_loss(c.rows, 0.0);
    parallel::for_range(c.rows, std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(n, 1)),
                        [&](std::size_t first, std::size_t last) {
      Buffer<T> scratch(keep_exps ? 0 : kernels::row_block_values<T>(n));
      kernels::for_row_blocks<T>(first, last, n, [&](std::size_t block, std::size_t rows) {
        kernels::RowExps<T> exps;
        kernels::exp_rows(x + block * n, keep_exps ? e.data() + block * n : scratch.data(), n, rows, exps);
        for (std::size_t i = block; i < block + rows; ++i) {
          const T* row = x + i * n;
          const T largest = exps.max[i - block];
          totals[i] = double(exps.sum[i - block]);
          if (c.target_weight[i] == 0.0 && c.target[i] == options.ignore_index) continue;
          const double log_total = std::log(totals[i]);
          auto log_p = [&](std::size_t k) { return double(row[k] - largest) - log_total; };
          double smooth = 0;
          if (eps > 0)  // the smoothing term reads the whole row; without it only the target's entry
            for (std::size_t k = 0; k < n; ++k) smooth -= c.class_weight[k] * log_p(k);
          row_loss[i] =
              -(1 - eps) * c.target_weight[i] * log_p(std::size_t(c.target[i])) + eps / double(n) * smooth;
        }
      });
    });
    exps = make_tensor<T>(std::move(e));
    return reduce_rows<T>(row_loss, c.total_weight, target.shape(), reduction);
  });
  // With q_ic = (1-ε)·w_y·[c = y] + (ε/C)·w_c the row loss is -Σ_c q_ic·log p_ic, and since
  // ∂log p_ic/∂x_ij = [c = j] - p_ij:  ∂l_i/∂x_ij = p_ij·Σ_c q_ic - q_ij.
  return record("cross_entropy", out, {input},
                [c = std::move(c), exps, totals = std::move(totals), eps, reduction,
                 ignore = options.ignore_index](const Tensor& grad) -> Grads {
    return {dispatch_floating(grad.dtype(), "cross_entropy", [&]<class T>() {
      const Buffer<double> scale = row_scales<T>(grad, c.rows, c.total_weight, reduction);
      using B = kernels::Batch<T>;
      xt::xarray<T> dx = xt::xarray<T>::from_shape(exps.shape());
      const T* ex = exps.data<T>();
      double q_total_smooth = 0;
      for (double w : c.class_weight) q_total_smooth += w;
      q_total_smooth *= eps / double(c.classes);
      const std::size_t n = c.classes;
      parallel::for_range(c.rows, std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(n, 1)),
                          [&](std::size_t first, std::size_t last) {
        for (std::size_t i = first; i < last; ++i) {
          T* row = dx.data() + i * n;
          const T* e_row = ex + i * n;
          if (c.target[i] == ignore) {
            std::fill(row, row + n, T(0));
            continue;
          }
          const std::size_t y = std::size_t(c.target[i]);
          const double q_total = (1 - eps) * c.target_weight[i] + q_total_smooth;
          auto p = [&](std::size_t k) { return double(e_row[k]) / totals[i]; };
          if (eps == 0) {
            // q is (1-ε)·w_y at the target and 0 elsewhere: scale·q_total·e/S, then the target's entry.
            const T factor = T(scale[i] * q_total / totals[i]);
            kernels::apply(n, row, [factor](B v) { return B(factor) * v; }, e_row);
            row[y] = T(scale[i] * (p(y) * q_total - c.target_weight[i]));
            continue;
          }
          for (std::size_t k = 0; k < n; ++k) {
            const double q = (k == y ? (1 - eps) * c.target_weight[i] : 0.0) + eps / double(n) * c.class_weight[k];
            row[k] = T(scale[i] * (p(k) * q_total - q));
          }
        }
      });
      return make_tensor<T>(std::move(dx));
    })};
  });
}

// nll_loss(log_softmax(x, 1)) for x of (N, C, d1, ...) as one node. Per column (sample n,
// position j): the max m, then log S = log Σ_c e^(x - m), a SIMD batch across positions, by
// log_softmax's own column statistics (kernels::column_max and column_log_sums, slab by slab);
// row i's loss is -w·((x_y - m) - log S).
// The backward writes, in one pass over x, what log_softmax's backward gives from nll_loss's
// gradient: g - e^((x - m) - log S)·Σ_c g, with g = -w·s at the target and 0 elsewhere (so the
// same bits as the two ops, without log_softmax's output, nll_loss's gradient of zeros or its sum
// over the classes). The target is compared as a lane of T (the caller keeps float32 to 2^24
// classes). With label smoothing ε, as cross_entropy_rows: the target's term is scaled by 1 - ε and
// each row adds (ε/C)·Σ_c w_c·(-log p_c) (an ignored row adds nothing); the gradient is then
// s·(p_c·Q - q_c) with q_c = (1 - ε)·w_y·[c = y] + (ε/C)·w_c and Q = Σ_c q_c.
Tensor cross_entropy_columns(const Tensor& input, ClassRows c, const Tensor& target, const ClassLossOptions& options) {
  struct Columns {  // the forward's per-row values the backward reads
    Tensor shift, log_total;
  } kept;
  const kernels::ReduceLayout l{c.inner == 0 ? 0 : c.rows / c.inner, c.classes, c.inner};  // (samples, classes, positions)
  const double eps = options.label_smoothing;
  const std::int64_t ignore = options.ignore_index;
  const Reduction reduction = options.reduction;
  Tensor out = dispatch_floating(input.dtype(), "cross_entropy", [&]<class T>() {
    using B = kernels::Batch<T>;
    const T* x = input.data<T>();
    xt::xarray<T> shift = xt::xarray<T>::from_shape({c.rows}), log_total = xt::xarray<T>::from_shape({c.rows});
    Buffer<double> row_loss(c.rows, 0.0);
    kernels::for_column_slabs<T>(l, [&](std::size_t n, std::size_t j, std::size_t width) {
      const T* xs = x + n * c.classes * c.inner + j;
      T* m = shift.data() + n * c.inner + j;
      T* lt = log_total.data() + n * c.inner + j;
      kernels::column_max(xs, c.classes, c.inner, width, m);
      kernels::column_log_sums(xs, c.classes, c.inner, width, static_cast<const T*>(m), lt);
      if (eps == 0) {
        for (std::size_t k = 0; k < width; ++k) {
          const std::size_t i = n * c.inner + j + k;
          if (c.target_weight[i] == 0.0) continue;
          const T log_p = (xs[std::size_t(c.target[i]) * c.inner + k] - m[k]) - lt[k];
          row_loss[i] = -c.target_weight[i] * double(log_p);
        }
        return;
      }
      alignas(64) std::array<double, kernels::kSlabColumns> smooth;  // Σ_c w_c·log p_c per column
      alignas(64) std::array<T, kernels::kSlabColumns> log_p;
      std::fill_n(smooth.data(), width, 0.0);
      for (std::size_t r = 0; r < c.classes; ++r) {
        kernels::apply(width, log_p.data(), [](B v, B largest, B log_sum) { return (v - largest) - log_sum; },
                       xs + r * c.inner, static_cast<const T*>(m), static_cast<const T*>(lt));
        for (std::size_t k = 0; k < width; ++k) smooth[k] += c.class_weight[r] * double(log_p[k]);
      }
      for (std::size_t k = 0; k < width; ++k) {
        const std::size_t i = n * c.inner + j + k;
        if (c.target[i] == ignore) continue;
        const T log_p_y = (xs[std::size_t(c.target[i]) * c.inner + k] - m[k]) - lt[k];
        row_loss[i] = -(1 - eps) * c.target_weight[i] * double(log_p_y) - eps / double(c.classes) * smooth[k];
      }
    });
    kept = {make_tensor<T>(std::move(shift)), make_tensor<T>(std::move(log_total))};
    return reduce_rows<T>(row_loss, c.total_weight, target.shape(), reduction);
  });
  return record("cross_entropy", out, {input}, {input},
                [c = std::move(c), kept = std::move(kept), input, reduction, l, eps, ignore](const Tensor& grad) -> Grads {
    return {dispatch_floating(grad.dtype(), "cross_entropy", [&]<class T>() {
      using B = kernels::Batch<T>;
      const Buffer<double> scale = row_scales<T>(grad, c.rows, c.total_weight, reduction);
      // Per row: Σ_c g = g at the target (-w·s, as nll_loss's gradient), and the target as a lane.
      // With smoothing: -s·Q, -s·(1 - ε)·w_y at the target, and -s·ε/C, times w_c, at every class.
      Buffer<T> total(c.rows), target_class(c.rows), at_target, spread;
      if (eps == 0) {
        for (std::size_t i = 0; i < c.rows; ++i) {
          total[i] = c.target_weight[i] != 0.0 ? T(-c.target_weight[i] * scale[i]) : T(0);
          target_class[i] = c.target_weight[i] != 0.0 ? T(c.target[i]) : T(-1);
        }
      } else {
        at_target.resize(c.rows);
        spread.resize(c.rows);
        double smooth_total = 0;  // (ε/C)·Σ_c w_c
        for (double w : c.class_weight) smooth_total += w;
        smooth_total *= eps / double(c.classes);
        for (std::size_t i = 0; i < c.rows; ++i) {
          const bool ignored = c.target[i] == ignore;
          total[i] = ignored ? T(0) : T(-scale[i] * ((1 - eps) * c.target_weight[i] + smooth_total));
          at_target[i] = ignored ? T(0) : T(-scale[i] * (1 - eps) * c.target_weight[i]);
          spread[i] = ignored ? T(0) : T(-scale[i] * eps / double(c.classes));
          target_class[i] = ignored ? T(-1) : T(c.target[i]);
        }
      }
      xt::xarray<T> dx = xt::xarray<T>::from_shape(input.shape());
      const T* x = input.data<T>();
      kernels::for_column_slabs<T>(l, [&](std::size_t n, std::size_t j, std::size_t width) {
        const std::size_t row = n * c.inner + j, at = n * c.classes * c.inner + j;
        const T* m = kept.shift.data<T>() + row;
        const T* lt = kept.log_total.data<T>() + row;
        for (std::size_t r = 0; r < c.classes; ++r) {
          const B klass = B(T(r));
          if (eps == 0) {
            kernels::apply(width, dx.data() + at + r * c.inner,
                           [klass](B v, B largest, B log_sum, B sum, B y) {
                             const B g = xsimd::select(y == klass, sum, B(T(0)));
                             return g - kernels::exp_lanes((v - largest) - log_sum) * sum;
                           },
                           x + at + r * c.inner, m, lt, static_cast<const T*>(total.data() + row),
                           static_cast<const T*>(target_class.data() + row));
            continue;
          }
          const B weight(T(c.class_weight[r]));
          kernels::apply(width, dx.data() + at + r * c.inner,
                         [klass, weight](B v, B largest, B log_sum, B sum, B y, B target_sum, B each) {
                           const B g = xsimd::select(y == klass, target_sum, B(T(0))) + weight * each;
                           return g - kernels::exp_lanes((v - largest) - log_sum) * sum;
                         },
                         x + at + r * c.inner, m, lt, static_cast<const T*>(total.data() + row),
                         static_cast<const T*>(target_class.data() + row), static_cast<const T*>(at_target.data() + row),
                         static_cast<const T*>(spread.data() + row));
        }
      });
      return make_tensor<T>(std::move(dx));
    })};
  });
}

// c: check_class_inputs(op, input, target, ...), any rank (the classes `c.inner` apart).
Tensor nll_loss_rows(const char* op, const Tensor& input, ClassRows c, const Tensor& target, Reduction reduction) {
  Tensor out = dispatch_floating(input.dtype(), op, [&]<class T>() {
    const T* x = input.data<T>();
    Buffer<double> row_loss(c.rows, 0.0);
    c.for_each_row([&](std::size_t i, std::size_t first) {
      if (c.target_weight[i] != 0.0)
        row_loss[i] = -c.target_weight[i] * double(x[first + std::size_t(c.target[i]) * c.inner]);
    });
    return reduce_rows<T>(row_loss, c.total_weight, target.shape(), reduction);
  });
  // ∂l_i/∂x_iy = -w_y, zero elsewhere.
  return record(op, out, {input},
                [op, c = std::move(c), reduction, shape = input.shape()](const Tensor& grad) -> Grads {
    return {dispatch_floating(grad.dtype(), op, [&]<class T>() {
      const Buffer<double> scale = row_scales<T>(grad, c.rows, c.total_weight, reduction);
      xt::xarray<T> dx = kernels::zeros<T>(shape);
      c.for_each_row([&](std::size_t i, std::size_t first) {
        if (c.target_weight[i] != 0.0)
          dx.data()[first + std::size_t(c.target[i]) * c.inner] = T(-c.target_weight[i] * scale[i]);
      });
      return make_tensor<T>(std::move(dx));
    })};
  });
}

}  // namespace

// ---- binary losses --------------------------------------------------------------------------

Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, Reduction reduction, const Tensor& weight) {
  check_reduction("binary_cross_entropy", reduction);
  check_same_shape("binary_cross_entropy", input, target);
  TG_CHECK(input.dtype() == target.dtype(), "binary_cross_entropy: input is ", dtype_name(input.dtype()),
           " but target is ", dtype_name(target.dtype()));
  // Every value in [0, 1] (NaN is not): one vectorised read in the input's dtype, no copy; the
  // first offending value is looked up only to name it.
  dispatch_floating(input.dtype(), "binary_cross_entropy", [&]<class T>() {
    const T* p = input.data<T>();
    const std::size_t n = input.numel();
    bool inside = true;
    for (std::size_t i = 0; i < n; ++i) inside &= p[i] >= T(0) && p[i] <= T(1);
    if (inside) return;
    const T* bad = std::find_if(p, p + n, [](T v) { return !(v >= T(0) && v <= T(1)); });
    fail("binary_cross_entropy: input values must be in [0, 1], got ", double(*bad),
         " (apply sigmoid, or use binary_cross_entropy_with_logits)");
  });
  // loss = -(y·log p + (1 - y)·log(1 - p)), each log clamped at -100 (PyTorch) so that p = 0 or 1
  // gives a finite loss. A fused op: composed, the gradient of log at p = 0 or 1 is inf, and
  // inf·0 gives NaN even where p equals the target.
  Tensor loss = binary("binary_cross_entropy", input, target, [](auto p, auto y) {
    using B = decltype(p);
    const B floor(element_of<B>(-100));
    return -(y * xsimd::max(kernels::log_lanes(p), floor) + (B(1) - y) * xsimd::max(kernels::log_lanes(B(1) - p), floor));
  });
  // PyTorch's gradients: d/dp = (p - y) / max(p·(1 - p), 1e-12), which is 0 where p equals y and
  // finite elsewhere; d/dy = log(1 - p) - log p with the same clamps.
  loss = record("binary_cross_entropy", loss, {input, target}, {input, target},
                [input, target](const Tensor& grad, NeedsGrad needs) -> Grads {
                  Grads grads(2);
                  if (needs[0])
                    grads[0] = pointwise("binary_cross_entropy", [](auto g, auto p, auto y) {
                                 using B = decltype(p);
                                 // PyTorch's EPSILON is a float constant, also for float64.
                                 return g * ((p - y) / xsimd::max(p * (B(1) - p), B(element_of<B>(1e-12f))));
                               }, grad, input, target);
                  if (needs[1])
                    grads[1] = pointwise("binary_cross_entropy", [](auto g, auto p) {
                                 using B = decltype(p);
                                 const B floor(element_of<B>(-100));
                                 return g * (xsimd::max(kernels::log_lanes(B(1) - p), floor) - xsimd::max(kernels::log_lanes(p), floor));
                               }, grad, input);
                  return grads;
                });
  if (weight.defined()) loss = loss * weight;
  return reduce_loss(loss, reduction);
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, Reduction reduction,
                                        const Tensor& weight, const Tensor& pos_weight) {
  check_reduction("binary_cross_entropy_with_logits", reduction);
  check_same_shape("binary_cross_entropy_with_logits", input, target);
  // With l = 1 + (pos_weight - 1)·y:  loss = (1 - y)·x + l·(log(1 + e^-|x|) + max(-x, 0)),
  // which never overflows (PyTorch's formula; log1p where PyTorch 1.13 takes the log of a sum, so
  // the tail keeps its digits). d/dx = σ(x) - y without pos_weight (the exact σ(0) - y at the kink
  // too), d/dy = -x. Without weights the loss is one fused kernel; with them, composed from ops:
  // the second term is softplus(-x) with no threshold, whose gradient is -σ(-x) = σ(x) - 1.
  if (!weight.defined() && !pos_weight.defined()) {
    auto f = [](auto x, auto y) {
      const auto one = splat(x, 1.0);
      return (one - y) * x + (log1p_unit(kernels::exp_lanes(-xsimd::abs(x))) + xsimd::max(-x, splat(x, 0.0)));
    };
    auto dx = [](auto x, auto y) {
      const auto one = splat(x, 1.0);
      return one / (one + kernels::exp_lanes(-x)) - y;
    };
    auto dy = [](auto x, auto) { return -x; };
    Tensor out = fused_loss<Terms::Element>("binary_cross_entropy_with_logits", input, target, reduction, f, dx, dy);
    if (out.defined()) return out;
  }
  const Tensor log_sigmoid_neg = softplus(-input, 1.0, std::numeric_limits<double>::infinity());
  const Tensor scale = pos_weight.defined() ? 1.0 + (pos_weight - 1.0) * target : Tensor();
  Tensor loss = (1.0 - target) * input + (scale.defined() ? scale * log_sigmoid_neg : log_sigmoid_neg);
  if (weight.defined()) loss = loss * weight;
  return reduce_loss(loss, reduction);
}

// ---- divergence, margin and count losses ------------------------------------------------------

namespace {

void check_same_floating(const char* op, const Tensor& input, const Tensor& target) {
  TG_CHECK(is_floating(input.dtype()) && input.dtype() == target.dtype(), op,
           ": input and target must share one floating-point dtype, got ", dtype_name(input.dtype()), " and ",
           dtype_name(target.dtype()));
}

}  // namespace

Tensor kl_div(const Tensor& input, const Tensor& target, Reduction reduction, bool log_target) {
  check_same_shape("kl_div", input, target);
  check_same_floating("kl_div", input, target);
  // BatchMean: the sum, divided by the batch size below.
  const Reduction summed = reduction == Reduction::BatchMean ? Reduction::Sum : reduction;
  Tensor out;
  if (log_target) {
    // e^t·(t - x); d/dx = -e^t, d/dt = e^t·(t - x + 1).
    auto f = [](auto x, auto t) { return kernels::exp_lanes(t) * (t - x); };
    auto dx = [](auto, auto t) { return -kernels::exp_lanes(t); };
    auto dt = [](auto x, auto t) { return kernels::exp_lanes(t) * (t - x + splat(x, 1.0)); };
    out = fused_loss<Terms::Element>("kl_div", input, target, summed, f, dx, dt);
  } else {
    // t·(log t - x), 0 where t = 0 (PyTorch 1.13's where(t > 0, ..., 0); PyTorch 2's xlogy(t, t) -
    // t·x agrees except for x = -inf, where it gives NaN); NaN for t < 0 (the log's). d/dx = -t;
    // d/dt = log t + 1 - x, NaN at t = 0, as both PyTorch versions give.
    auto f = [](auto x, auto t) { return pick(t == splat(t, 0.0), 0, t * (kernels::log_lanes(t) - x)); };
    auto dx = [](auto, auto t) { return -t; };
    auto dt = [](auto x, auto t) {
      return pick(t == splat(t, 0.0), std::numeric_limits<element_of<decltype(t)>>::quiet_NaN(),
                  kernels::log_lanes(t) + splat(x, 1.0) - x);
    };
    out = fused_loss<Terms::Element>("kl_div", input, target, summed, f, dx, dt);
  }
  if (reduction != Reduction::BatchMean) return out;
  return out / double(input.dim() == 0 ? 1 : input.size(0));
}

Tensor soft_margin_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_reduction("soft_margin_loss", reduction);
  check_same_shape("soft_margin_loss", input, target);
  check_same_floating("soft_margin_loss", input, target);
  // softplus(z), z = -y·x, as max(z, 0) + log(1 + e^-|z|) (no overflow); d/dx = -y·σ(z), d/dy = -x·σ(z).
  auto f = [](auto x, auto y) {
    const auto z = -y * x;
    return xsimd::max(z, splat(z, 0.0)) + log1p_unit(kernels::exp_lanes(-xsimd::abs(z)));
  };
  auto dx = [](auto x, auto y) { return -y / (splat(x, 1.0) + kernels::exp_lanes(y * x)); };
  auto dy = [](auto x, auto y) { return -x / (splat(x, 1.0) + kernels::exp_lanes(y * x)); };
  return fused_loss<Terms::Element>("soft_margin_loss", input, target, reduction, f, dx, dy);
}

Tensor poisson_nll_loss(const Tensor& input, const Tensor& target, bool log_input, bool full, double eps,
                        Reduction reduction) {
  check_reduction("poisson_nll_loss", reduction);
  check_same_shape("poisson_nll_loss", input, target);
  check_same_floating("poisson_nll_loss", input, target);
  TG_CHECK(eps > 0, "poisson_nll_loss: eps must be positive, got ", eps);
  // Stirling's t·log t - t + ½·log(2πt) where t > 1 (0 elsewhere); d/dt = log t + 1/(2t) there.
  auto stirling = [full](auto t) {
    const auto one = splat(t, 1.0);
    const auto term = t * kernels::log_lanes(t) - t + splat(t, 0.5) * kernels::log_lanes(splat(t, 2 * std::numbers::pi) * t);
    return full ? pick(t > one, term, 0) : splat(t, 0.0);
  };
  auto stirling_slope = [full](auto t) {
    const auto slope = kernels::log_lanes(t) + splat(t, 0.5) / t;
    return full ? pick(t > splat(t, 1.0), slope, 0) : splat(t, 0.0);
  };
  if (log_input) {
    // e^x - t·x; d/dx = e^x - t, d/dt = -x.
    auto f = [stirling](auto x, auto t) { return kernels::exp_lanes(x) - t * x + stirling(t); };
    auto dx = [](auto x, auto t) { return kernels::exp_lanes(x) - t; };
    auto dt = [stirling_slope](auto x, auto t) { return stirling_slope(t) - x; };
    return fused_loss<Terms::Element>("poisson_nll_loss", input, target, reduction, f, dx, dt);
  }
  // x - t·log(x + eps); d/dx = 1 - t/(x + eps), d/dt = -log(x + eps).
  auto f = [stirling, eps](auto x, auto t) { return x - t * kernels::log_lanes(x + splat(x, eps)) + stirling(t); };
  auto dx = [eps](auto x, auto t) { return splat(x, 1.0) - t / (x + splat(x, eps)); };
  auto dt = [stirling_slope, eps](auto x, auto t) { return stirling_slope(t) - kernels::log_lanes(x + splat(x, eps)); };
  return fused_loss<Terms::Element>("poisson_nll_loss", input, target, reduction, f, dx, dt);
}

Tensor multilabel_soft_margin_loss(const Tensor& input, const Tensor& target, const Tensor& weight,
                                   Reduction reduction) {
  check_reduction("multilabel_soft_margin_loss", reduction);
  check_same_shape("multilabel_soft_margin_loss", input, target);
  check_same_floating("multilabel_soft_margin_loss", input, target);
  TG_CHECK(input.dim() == 1 || input.dim() == 2, "multilabel_soft_margin_loss: expected input (N, C) or (C), got ",
           shape_str(input.shape()));
  const std::int64_t classes = std::int64_t(input.shape().back());
  TG_CHECK(!weight.defined() || (weight.shape() == Shape{std::size_t(classes)} && weight.dtype() == input.dtype()),
           "multilabel_soft_margin_loss: weight must be a ", dtype_name(input.dtype()), " tensor of shape [", classes,
           "], got ", weight.defined() ? dtype_name(weight.dtype()) + std::string(" ") + shape_str(weight.shape()) : "");
  // PyTorch's composition: y·log σ(x) + (1 - y)·log σ(-x), weighted, averaged over the classes.
  Tensor terms = -(target * logsigmoid(input) + (1.0 - target) * logsigmoid(-input));
  if (weight.defined()) terms = terms * weight;
  return reduce_loss(sum(terms, {-1}) / double(classes), reduction);
}

// ---- embedding and ranking losses: PyTorch's compositions (ATen's Loss.cpp), from ops ----------

Tensor cosine_embedding_loss(const Tensor& x1, const Tensor& x2, const Tensor& y, double margin, Reduction reduction) {
  check_reduction("cosine_embedding_loss", reduction);
  TG_CHECK(x1.shape() == x2.shape() && (x1.dim() == 1 || x1.dim() == 2), "cosine_embedding_loss: expected x1 and x2 "
           "of one shape (N, D) or (D), got ", shape_str(x1.shape()), " and ", shape_str(x2.shape()));
  TG_CHECK(y.dim() + 1 == x1.dim() && (y.dim() == 0 || y.size(0) == x1.size(0)), "cosine_embedding_loss: expected y ",
           x1.dim() == 2 ? "(N) = [" + std::to_string(x1.size(0)) + "]" : std::string("0-d"), " for inputs ",
           shape_str(x1.shape()), ", got ", shape_str(y.shape()));
  check_same_floating("cosine_embedding_loss", x1, x2);
  const std::int64_t dim = std::int64_t(x1.dim()) - 1;
  const Tensor cos = sum(x1 * x2, {dim}) / sqrt((sum(x1 * x1, {dim}) + 1e-12) * (sum(x2 * x2, {dim}) + 1e-12));
  const Tensor zero = zeros_like(cos);
  const Tensor loss = where(eq(y, 1.0), 1.0 - cos, zero) + where(eq(y, -1.0), clamp(cos - margin, 0.0, std::nullopt), zero);
  return reduce_loss(loss, reduction);
}

Tensor margin_ranking_loss(const Tensor& x1, const Tensor& x2, const Tensor& y, double margin, Reduction reduction) {
  check_reduction("margin_ranking_loss", reduction);
  TG_CHECK(x1.shape() == x2.shape() && x1.shape() == y.shape(), "margin_ranking_loss: x1, x2 and y must have one "
           "shape, got ", shape_str(x1.shape()), ", ", shape_str(x2.shape()), " and ", shape_str(y.shape()));
  check_same_floating("margin_ranking_loss", x1, x2);
  return reduce_loss(clamp(-y * (x1 - x2) + margin, 0.0, std::nullopt), reduction);
}

Tensor hinge_embedding_loss(const Tensor& input, const Tensor& target, double margin, Reduction reduction) {
  check_reduction("hinge_embedding_loss", reduction);
  check_same_shape("hinge_embedding_loss", input, target);
  check_same_floating("hinge_embedding_loss", input, target);
  const Tensor zero = zeros_like(input);
  const Tensor loss = where(ne(target, 1.0), clamp(margin - input, 0.0, std::nullopt), zero) +
                      where(ne(target, -1.0), input, zero);
  return reduce_loss(loss, reduction);
}

Tensor triplet_margin_loss(const Tensor& anchor, const Tensor& positive, const Tensor& negative, double margin,
                           double p, double eps, bool swap, Reduction reduction) {
  check_reduction("triplet_margin_loss", reduction);
  TG_CHECK(anchor.dim() == positive.dim() && anchor.dim() == negative.dim() && (anchor.dim() == 1 || anchor.dim() == 2),
           "triplet_margin_loss: expected anchor, positive and negative of one rank, (N, D) or (D), got ",
           shape_str(anchor.shape()), ", ", shape_str(positive.shape()), " and ", shape_str(negative.shape()));
  const Tensor positive_distance = pairwise_distance(anchor, positive, p, eps);
  Tensor negative_distance = pairwise_distance(anchor, negative, p, eps);
  if (swap) negative_distance = minimum(negative_distance, pairwise_distance(positive, negative, p, eps));
  return reduce_loss(clamp(positive_distance - negative_distance + margin, 0.0, std::nullopt), reduction);
}

}  // namespace tg
