// Activations. Pointwise ones compute their output with a kernel and record a backward beside it;
// softmax and log_softmax are fused forward kernels (for stability) whose backward is composed.
#include "core/ops/activation.hpp"
#include "core/xtensor.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <type_traits>
#include <utility>

#include "core/autograd.hpp"
#include "core/creation.hpp"
#include "core/ops/elementwise.hpp"
#include "core/ops/kernels.hpp"
#include "core/ops/reduce.hpp"
#include "core/ops/shape.hpp"
#include "core/parallel.hpp"
#include "core/random.hpp"

#include <Random123/philox.h>

namespace tg {

Tensor relu(const Tensor& a) {
  // NaN stays NaN, as in PyTorch (max(x, 0) alone would give 0).
  Tensor out = unary("relu", a, [](auto x) { return pick(xsimd::isnan(x), x, xsimd::max(x, decltype(x)(0))); });
  return record("relu", out, {a}, {out}, [out](const Tensor& grad) -> Grads {
    // out > 0 exactly where a > 0, and out is already saved: no need to keep a. One pass. The
    // gradient is 0 where out <= 0, so a NaN passes it on, as PyTorch's threshold_backward.
    return {pointwise("relu", [](auto g, auto y) { return pick(y <= element_of<decltype(y)>(0), 0, g); }, grad, out)};
  });
}

Tensor leaky_relu(const Tensor& a, double negative_slope) {
  Tensor out = unary("leaky_relu", a, [negative_slope](auto x) {
    using T = element_of<decltype(x)>;
    return pick(x > T(0), x, x * T(negative_slope));
  });
  return record("leaky_relu", out, {a}, {a}, [a, negative_slope](const Tensor& grad) -> Grads {
    return {pointwise("leaky_relu", [negative_slope](auto g, auto x) {
              using T = element_of<decltype(x)>;
              return pick(x > T(0), g, g * T(negative_slope));
            }, grad, a)};
  });
}

Tensor sigmoid(const Tensor& a) {
  // 1 / (1 + e^-x) saturates cleanly at both ends: e^-x = inf gives 0, e^-x = 0 gives 1.
  Tensor out = unary("sigmoid", a, [](auto x) {
    using T = element_of<decltype(x)>;
    return T(1) / (T(1) + kernels::exp_lanes(-x));
  });
  return record("sigmoid", out, {a}, {out}, [out](const Tensor& grad) -> Grads {
    return {pointwise("sigmoid", [](auto g, auto y) { return g * y * (element_of<decltype(y)>(1) - y); }, grad, out)};
  });
}

Tensor tanh(const Tensor& a) {
  Tensor out = unary("tanh", a, [](auto x) { return xsimd::tanh(x); });
  return record("tanh", out, {a}, {out}, [out](const Tensor& grad) -> Grads {
    return {pointwise("tanh", [](auto g, auto y) { return g * (element_of<decltype(y)>(1) - y * y); }, grad, out)};
  });
}

namespace {

// Horner's rule with float coefficients given by their bits, highest degree last.
template <class B, std::uint32_t... Bits>
B polynomial(const B& x) {
  constexpr float c[] = {std::bit_cast<float>(Bits)...};
  B acc(c[sizeof...(Bits) - 1]);
  for (std::size_t i = sizeof...(Bits) - 1; i-- > 0;) acc = xsimd::fma(acc, x, B(c[i]));
  return acc;
}

// Φ(x), the standard normal CDF, and e^(-x²/2), for gelu and its gradient. Φ(x) = (1 + erf(z))/2
// with z = x/√2, and erf's large-|z| branch needs e^(-z²) = e^(-x²/2) too, so for float32 the two
// share one exponential: erf as xsimd computes it (boost.simd's float kernel, its coefficients)
//   |z| < 2/3:  z·P(z²);   |z| >= 2/3:  ±(1 - e^(-z²)·Q(|z|/(1 + |z|) - 0.4))
// with both branches evaluated and one selected per lane (a batch nearly always has both kinds).
// double keeps xsimd::erf and its own exp (gradcheck's precision; the negative tail's relative
// error there is ~1e-16/Φ(x)).
template <class B>
[[gnu::always_inline]] inline void normal_cdf_and_gauss(const B& x, B& cdf, B& gauss) {
  using T = element_of<B>;
  const B z = x * T(std::numbers::sqrt2 / 2);
  if constexpr (std::is_same_v<T, float>) {
    // x² = hi + lo exactly (fma), e^(-x²/2) = e^(-hi/2)·(1 - lo/2): a rounded x² would put up to
    // x²/2 float roundings into the exponential, and into the tails of both Φ and φ.
    // |x| clamped at 20 (e^-200 is 0 in float32) so that inf - inf never makes lo a nan.
    const B m = xsimd::min(xsimd::abs(x), B(20.0f));
    const B hi = m * m, lo = xsimd::fms(m, m, hi);
    gauss = kernels::exp_lanes(T(-0.5) * hi) * (T(1) - T(0.5) * lo);
    const B a = xsimd::abs(z);
    const B small =
        z * polynomial<B, 0x3f906ebaU, 0xbec0937eU, 0x3de70f22U, 0xbcdb61f4U, 0x3ba4468dU, 0xba1fc83bU>(z * z);
    // Clamped so that t stays finite for |x| = inf (erf is 1 in float32 long before |z| = 10).
    const B t = xsimd::min(a, B(10.0f)) / (B(1.0f) + xsimd::min(a, B(10.0f))) - B(0.4f);
    const B q = polynomial<B, 0x3f0a0e8bU, 0xbf918a62U, 0x3e243828U, 0x3ec4ca6eU, 0x3e1175c7U, 0x3e2006f0U,
                           0xbfaea865U, 0x4050b063U, 0xc0cd1a85U, 0x40d67e3bU, 0xc0283611U>(t);
    // Φ(-|x|) = e^(-z²)·Q/2 directly: (1 + erf(z))/2 would cancel to a few digits for x < -3.
    const B tail = T(0.5) * gauss * q;
    cdf = xsimd::select(a < B(2.0f / 3.0f), T(0.5) + T(0.5) * small, xsimd::select(z < B(0.0f), tail, T(1) - tail));
  } else {
    gauss = kernels::exp_lanes(T(-0.5) * x * x);
    cdf = T(0.5) * (T(1) + xsimd::erf(z));
  }
}

}  // namespace

Tensor gelu(const Tensor& a, const std::string& approximate) {
  TG_CHECK(approximate == "none" || approximate == "tanh", "gelu: approximate must be \"none\" or \"tanh\", got \"",
           approximate, "\"");
  // Exact: x·Φ(x); d/dx = Φ(x) + x·φ(x), φ(x) = e^(-x²/2) / √(2π).
  auto exact = [](auto x) {
    using T = element_of<decltype(x)>;
    decltype(x) cdf, gauss;
    normal_cdf_and_gauss(x, cdf, gauss);
    return std::pair{x * cdf, cdf + x * gauss * T(0.5 * std::numbers::inv_sqrtpi * std::numbers::sqrt2)};
  };
  // tanh: ½·x·(1 + t), t = tanh(u), u = √(2/π)·(x + 0.044715·x³), as PyTorch evaluates it;
  // d/dx = ½·(1 + t) + ½·x·(1 - t²)·√(2/π)·(1 + 3·0.044715·x²).
  auto approximated = [](auto x) {
    using T = element_of<decltype(x)>;
    const T k = T(std::numbers::sqrt2 * std::numbers::inv_sqrtpi), c = T(0.044715);
    const auto x2 = x * x;
    const auto t = xsimd::tanh(k * (x + c * x2 * x));
    const auto half_x = T(0.5) * x, one_plus_t = T(1) + t;
    return std::pair{half_x * one_plus_t,
                     T(0.5) * one_plus_t + half_x * (T(1) - t * t) * k * (T(1) + T(3) * c * x2)};
  };
  // When the gradient will be needed, the forward writes the slope beside the output (they share
  // the expensive functions under both) and keeps it instead of the input: the backward is one
  // multiplication.
  auto with = [&a](auto value_and_slope) {
    if (!GradMode::is_enabled() || !a.requires_grad())
      return unary("gelu", a, [value_and_slope](auto x) { return value_and_slope(x).first; });
    Tensor slope;
    Tensor out = dispatch_floating(a.dtype(), "gelu", [&]<class T>() {
      xt::xarray<T> y = xt::xarray<T>::from_shape(a.shape()), s = xt::xarray<T>::from_shape(a.shape());
      kernels::apply_pair_parallel(a.numel(), y.data(), s.data(), value_and_slope, a.data<T>());
      slope = make_tensor<T>(std::move(s));
      return make_tensor<T>(std::move(y));
    });
    return record("gelu", out, {a}, [slope](const Tensor& grad) -> Grads {
      return {pointwise("gelu", [](auto g, auto s) { return g * s; }, grad, slope)};
    });
  };
  return approximate == "tanh" ? with(approximated) : with(exact);
}

Tensor softplus(const Tensor& a, double beta, double threshold) {
  // PyTorch's: x where z = beta·x > threshold, else log(1 + e^z) / beta, computed as
  // (max(z, 0) + log1p(e^-|z|)) / beta: e^-|z| <= 1 never overflows, and log1p keeps the digits of
  // the negative tail (log(1 + e^-|z|) is 0 there from x < -17 in float32). d/dx = σ(z) = 1/(1 + e^-z)
  // (1 above the threshold, exactly 1/2 at 0): one pass forward, one backward. log1p_unit is a
  // log1p for [0, 1] only (kernels.hpp), three times as fast as the general one in float32.
  Tensor out = unary("softplus", a, [beta, threshold](auto x) {
    using T = element_of<decltype(x)>;
    const auto z = x * T(beta);
    const auto soft = xsimd::max(z, decltype(x)(0)) + log1p_unit(kernels::exp_lanes(-xsimd::abs(z)));
    return pick(z > T(threshold), x, soft / T(beta));
  });
  return record("softplus", out, {a}, {a}, [a, beta, threshold](const Tensor& grad) -> Grads {
    return {pointwise("softplus", [beta, threshold](auto g, auto x) {
              using T = element_of<decltype(x)>;
              const auto z = x * T(beta);
              return pick(z > T(threshold), g, g / (T(1) + kernels::exp_lanes(-z)));
            }, grad, a)};
  });
}

// ---- SiLU, Mish, ELU, SELU and the piecewise-linear ones (MobileNet's, EfficientNet's) -----------
// One pass forward and one fused pass backward each, from the saved input. NaN and the infinities
// give what PyTorch's formulas give (checked in tests/test_activations.cpp), including the
// gradient conventions at the kinks.

Tensor silu(const Tensor& a) {
  // x·σ(x) = x / (1 + e^-x), PyTorch's formula (so -inf gives NaN, as there); d/dx = σ·(1 + x·(1 - σ)).
  Tensor out = unary("silu", a, [](auto x) {
    using T = element_of<decltype(x)>;
    return x / (T(1) + kernels::exp_lanes(-x));
  });
  return record("silu", out, {a}, {a}, [a](const Tensor& grad) -> Grads {
    return {pointwise("silu", [](auto g, auto x) {
              using T = element_of<decltype(x)>;
              const auto s = T(1) / (T(1) + kernels::exp_lanes(-x));
              return g * s * (T(1) + x * (T(1) - s));
            }, grad, a)};
  });
}

namespace {

// Mish's t = tanh(softplus(x)) and σ(x) from one exponential n = e^x: tanh(log(1 + n)) =
// n(n + 2) / (n(n + 2) + 2), σ = n / (1 + n). x is capped at 20 inside (t is 1 there in either
// type, and n(n + 2) stays finite).
template <class B>
std::pair<B, B> mish_parts(const B& x) {
  using T = element_of<B>;
  const B n = kernels::exp_lanes(xsimd::min(x, B(T(20))));
  const B p = n * (n + T(2));
  return {p / (p + T(2)), n / (T(1) + n)};
}

// ELU, SELU and CELU: scale·x for x > 0, scale·α·(e^(x·input_scale) - 1) for x <= 0 (expm1: the
// digits of small negative x; CELU's input_scale is 1/α); d/dx = scale, or
// scale·α·input_scale·e^(x·input_scale) for x <= 0 (so 0 takes the negative side and NaN the
// positive, as PyTorch's elu_backward).
Tensor elu_scaled(const char* op, const Tensor& a, double alpha, double scale, double input_scale = 1.0) {
  Tensor out = unary(op, a, [alpha, scale, input_scale](auto x) {
    using T = element_of<decltype(x)>;
    const auto z = input_scale == 1.0 ? x : x * T(input_scale);  // (ELU and SELU: no multiply)
    return pick(x <= T(0), xsimd::expm1(z) * T(alpha * scale), x * T(scale));
  });
  return record(op, out, {a}, {a}, [op, a, alpha, scale, input_scale](const Tensor& grad) -> Grads {
    return {pointwise(op, [alpha, scale, input_scale](auto g, auto x) {
              using T = element_of<decltype(x)>;
              const auto z = input_scale == 1.0 ? x : x * T(input_scale);
              return pick(x <= T(0), g * kernels::exp_lanes(z) * T(alpha * scale * input_scale), g * T(scale));
            }, grad, a)};
  });
}

// min(max(x, lo), hi), NaN kept; the gradient passes strictly inside (lo, hi) and for NaN, as
// PyTorch's hardtanh_backward (0 at either bound).
Tensor hardtanh_named(const char* op, const Tensor& a, double lo, double hi) {
  Tensor out = unary(op, a, [lo, hi](auto x) {
    using T = element_of<decltype(x)>;
    return pick(xsimd::isnan(x), x, xsimd::min(xsimd::max(x, decltype(x)(T(lo))), decltype(x)(T(hi))));
  });
  return record(op, out, {a}, {a}, [op, a, lo, hi](const Tensor& grad) -> Grads {
    return {pointwise(op, [lo, hi](auto g, auto x) {
              using T = element_of<decltype(x)>;
              return pick(x <= T(lo) || x >= T(hi), 0, g);
            }, grad, a)};
  });
}

}  // namespace

Tensor mish(const Tensor& a) {
  // x·tanh(softplus(x)); d/dx = t + x·σ(x)·(1 - t²).
  Tensor out = unary("mish", a, [](auto x) { return x * mish_parts(x).first; });
  return record("mish", out, {a}, {a}, [a](const Tensor& grad) -> Grads {
    return {pointwise("mish", [](auto g, auto x) {
              using T = element_of<decltype(x)>;
              const auto [t, s] = mish_parts(x);
              return g * (t + x * s * (T(1) - t * t));
            }, grad, a)};
  });
}

Tensor elu(const Tensor& a, double alpha) { return elu_scaled("elu", a, alpha, 1.0); }

Tensor selu(const Tensor& a) {
  // Klambauer et al.'s constants, as PyTorch's.
  return elu_scaled("selu", a, 1.6732632423543772848170429916717, 1.0507009873554804934193349852946);
}

Tensor celu(const Tensor& a, double alpha) {
  TG_CHECK(alpha != 0.0, "celu: alpha must not be 0 (the input is divided by it), got 0");
  return elu_scaled("celu", a, alpha, 1.0, 1.0 / alpha);
}

Tensor hardtanh(const Tensor& a, double min_val, double max_val) {
  TG_CHECK(max_val > min_val, "hardtanh: max_val (", max_val, ") must be greater than min_val (", min_val, ")");
  return hardtanh_named("hardtanh", a, min_val, max_val);
}

Tensor relu6(const Tensor& a) { return hardtanh_named("relu6", a, 0.0, 6.0); }

Tensor hardsigmoid(const Tensor& a) {
  // min(max(x + 3, 0), 6) / 6, NaN kept; d/dx = 1/6 strictly inside (-3, 3), else 0 (NaN too, as
  // PyTorch's; PyTorch's float64 gradient uses float32's 1/6, this the exact one).
  Tensor out = unary("hardsigmoid", a, [](auto x) {
    using T = element_of<decltype(x)>;
    const auto y = xsimd::min(xsimd::max(x + T(3), decltype(x)(T(0))), decltype(x)(T(6))) / T(6);
    return pick(xsimd::isnan(x), x, y);
  });
  return record("hardsigmoid", out, {a}, {a}, [a](const Tensor& grad) -> Grads {
    return {pointwise("hardsigmoid", [](auto g, auto x) {
              using T = element_of<decltype(x)>;
              return pick(x > T(-3) && x < T(3), g / T(6), 0);
            }, grad, a)};
  });
}

Tensor hardswish(const Tensor& a) {
  // x·min(max(x + 3, 0), 6) / 6, PyTorch's formula (-inf gives NaN, as there); d/dx = 0 below -3,
  // x/3 + 1/2 on [-3, 3), 1 from 3 (and for NaN), as PyTorch's hardswish_backward.
  Tensor out = unary("hardswish", a, [](auto x) {
    using T = element_of<decltype(x)>;
    return x * xsimd::min(xsimd::max(x + T(3), decltype(x)(T(0))), decltype(x)(T(6))) / T(6);
  });
  return record("hardswish", out, {a}, {a}, [a](const Tensor& grad) -> Grads {
    return {pointwise("hardswish", [](auto g, auto x) {
              using T = element_of<decltype(x)>;
              return pick(x < T(-3), 0, pick(x < T(3), g * (x / T(3) + T(0.5)), g));
            }, grad, a)};
  });
}

// ---- logsigmoid, softsign, tanhshrink and the shrinks: one pass forward, one fused pass backward
// each from the saved input, with PyTorch's values at the kinks, the infinities and NaN. ----------

Tensor logsigmoid(const Tensor& a) {
  // min(x, 0) - log(1 + e^-|x|): e^-|x| <= 1 never overflows (log1p_unit, as softplus). d/dx =
  // 1 - σ(x): 1 / (1 + e^-|x|) below 0, e^-|x| / (1 + e^-|x|) from 0, as PyTorch's
  // log_sigmoid_backward (which takes the same two sides, so neither loses digits).
  Tensor out = unary("logsigmoid", a, [](auto x) {
    using T = element_of<decltype(x)>;
    return xsimd::min(x, decltype(x)(T(0))) - log1p_unit(kernels::exp_lanes(-xsimd::abs(x)));
  });
  return record("logsigmoid", out, {a}, {a}, [a](const Tensor& grad) -> Grads {
    return {pointwise("logsigmoid", [](auto g, auto x) {
              using T = element_of<decltype(x)>;
              const auto z = kernels::exp_lanes(-xsimd::abs(x));
              const auto r = g / (T(1) + z);
              return pick(x < T(0), r, r * z);
            }, grad, a)};
  });
}

Tensor softsign(const Tensor& a) {
  // x / (1 + |x|); d/dx = 1 / (1 + |x|)². PyTorch composes both from autograd's division, which
  // gives NaN at ±inf (inf / inf): so does this.
  Tensor out = unary("softsign", a, [](auto x) {
    using T = element_of<decltype(x)>;
    return x / (T(1) + xsimd::abs(x));
  });
  return record("softsign", out, {a}, {a}, [a](const Tensor& grad) -> Grads {
    return {pointwise("softsign", [](auto g, auto x) {
              using T = element_of<decltype(x)>;
              const auto d = T(1) + xsimd::abs(x);
              return pick(xsimd::isinf(x), std::numeric_limits<T>::quiet_NaN(), g / (d * d));
            }, grad, a)};
  });
}

Tensor tanhshrink(const Tensor& a) {
  // x - tanh(x); d/dx = tanh(x)² (PyTorch's 1 - (1 - t²) loses the digits of small x in float32).
  Tensor out = unary("tanhshrink", a, [](auto x) { return x - xsimd::tanh(x); });
  return record("tanhshrink", out, {a}, {a}, [a](const Tensor& grad) -> Grads {
    return {pointwise("tanhshrink", [](auto g, auto x) {
              const auto t = xsimd::tanh(x);
              return g * t * t;
            }, grad, a)};
  });
}

namespace {

// The gradient of both shrinks and of threshold: 0 on [lo, hi], g elsewhere (NaN included).
Tensor pass_outside(const char* op, const Tensor& grad, const Tensor& a, double lo, double hi) {
  return pointwise(op, [lo, hi](auto g, auto x) {
    using T = element_of<decltype(x)>;
    return pick(x >= T(lo) && x <= T(hi), 0, g);
  }, grad, a);
}

}  // namespace

Tensor hardshrink(const Tensor& a, double lambd) {
  // 0 on [-lambd, lambd], x elsewhere and for NaN; the gradient likewise (PyTorch's hardshrink and
  // hardshrink_backward; a negative lambd leaves x as it is, as there).
  Tensor out = unary("hardshrink", a, [lambd](auto x) {
    using T = element_of<decltype(x)>;
    return pick(x >= T(-lambd) && x <= T(lambd), 0, x);
  });
  return record("hardshrink", out, {a}, {a}, [a, lambd](const Tensor& grad) -> Grads {
    return {pass_outside("hardshrink", grad, a, -lambd, lambd)};
  });
}

Tensor softshrink(const Tensor& a, double lambd) {
  TG_CHECK(lambd >= 0.0, "softshrink: lambd must be non-negative, got ", lambd);
  // x - lambd above lambd, x + lambd below -lambd, 0 between; NaN stays NaN.
  Tensor out = unary("softshrink", a, [lambd](auto x) {
    using T = element_of<decltype(x)>;
    const auto shrunk = pick(x > T(lambd), x - T(lambd), pick(x < T(-lambd), x + T(lambd), 0));
    return pick(xsimd::isnan(x), x, shrunk);
  });
  return record("softshrink", out, {a}, {a}, [a, lambd](const Tensor& grad) -> Grads {
    return {pass_outside("softshrink", grad, a, -lambd, lambd)};
  });
}

Tensor threshold(const Tensor& a, double threshold, double value) {
  // The comparison in a's dtype, as PyTorch's (threshold rounded to float32 for a float32 a).
  Tensor out = unary("threshold", a, [threshold, value](auto x) {
    using T = element_of<decltype(x)>;
    return pick(x <= T(threshold), T(value), x);
  });
  return record("threshold", out, {a}, {a}, [a, threshold](const Tensor& grad) -> Grads {
    return {pass_outside("threshold", grad, a, -std::numeric_limits<double>::infinity(), threshold)};
  });
}

namespace {

// fn(o, begin, end) over the (outer, run) elements of an (outer, 2·run) layout split in two halves
// of `run` values each: parallel in fixed chunks of elements (a single outer row is shared too),
// every value on its own, so the bits never depend on the thread count.
template <class Fn>
void for_half_runs(std::size_t outer, std::size_t run, Fn&& fn) {
  parallel::for_range(outer * run, parallel::kGrain, [&](std::size_t first, std::size_t last) {
    while (first < last) {
      const std::size_t o = first / run, begin = first % run, end = std::min(run, begin + (last - first));
      fn(o, begin, end);
      first += end - begin;
    }
  });
}

}  // namespace

Tensor glu(const Tensor& a, std::int64_t dim) {
  TG_CHECK(a.dim() > 0, "glu: expected a tensor with at least one dim to halve, got a 0-d tensor");
  const std::size_t d = wrap_dim("glu", dim, a.dim(), a.shape());
  TG_CHECK(a.shape()[d] % 2 == 0, "glu: the halved dim ", d, " must have an even size, got shape ",
           shape_str(a.shape()));
  Shape half = a.shape();
  half[d] /= 2;
  // a as (outer, 2, run): the first half of each outer row, then the second, run = half[d] · inner.
  std::size_t outer = 1, run = 1;
  for (std::size_t i = 0; i < a.dim(); ++i) (i < d ? outer : run) *= half[i];
  // y = first · σ(second); dfirst = g · σ(second), dsecond = g · first · σ(second) · (1 - σ(second)):
  // one pass each way, both halves of the gradient written by the same pass.
  Tensor out = dispatch_floating(a.dtype(), "glu", [&]<class T>() {
    using B = kernels::Batch<T>;
    xt::xarray<T> y = xt::xarray<T>::from_shape(half);
    const T* x = a.data<T>();
    for_half_runs(outer, run, [&](std::size_t o, std::size_t begin, std::size_t end) {
      const T* first = x + 2 * o * run + begin;
      kernels::apply(end - begin, y.data() + o * run + begin, [](B p, B q) {
        return p / (B(T(1)) + kernels::exp_lanes(-q));
      }, first, first + run);
    });
    return make_tensor<T>(std::move(y));
  });
  return record("glu", out, {a}, {a}, [a, outer, run](const Tensor& grad) -> Grads {
    return {dispatch_floating(a.dtype(), "glu", [&]<class T>() {
      using B = kernels::Batch<T>;
      xt::xarray<T> dx = xt::xarray<T>::from_shape(a.shape());
      const T* x = a.data<T>();
      const T* g = grad.data<T>();
      for_half_runs(outer, run, [&](std::size_t o, std::size_t begin, std::size_t end) {
        const std::size_t at = 2 * o * run + begin;
        kernels::apply_pair(end - begin, dx.data() + at, dx.data() + at + run, [](B gv, B p, B q) {
          const B s = B(T(1)) / (B(T(1)) + kernels::exp_lanes(-q));
          const B gs = gv * s;
          return std::pair{gs, gs * p * (B(T(1)) - s)};
        }, g + o * run + begin, x + at, x + at + run);
      });
      return make_tensor<T>(std::move(dx));
    })};
  });
}

namespace {

// fn(begin, end, slope) over runs of [0, n) that share one slope: a slope per channel of the
// (outer, channels, inner) layout, or one for everything (channels 1). Rows of `channels` values
// (inner 1, as (N, C)) go to fn_rows(row, slopes) instead. Parallel in fixed blocks; every value
// is computed on its own, so the bits never depend on the thread count.
template <class T, class Runs, class Rows>
void for_slope_runs(std::size_t n, std::size_t channels, std::size_t inner, const T* slopes, Runs&& fn, Rows&& fn_rows) {
  if (n == 0) return;
  if (channels == 1) {
    parallel::for_range(n, parallel::kGrain, [&](std::size_t begin, std::size_t end) { fn(begin, end, slopes[0]); });
  } else if (inner == 1) {
    parallel::for_range(n / channels, std::max<std::size_t>(1, parallel::kGrain / channels),
                        [&](std::size_t first, std::size_t last) {
                          for (std::size_t row = first; row < last; ++row) fn_rows(row * channels, slopes);
                        });
  } else {
    parallel::for_range(n / inner, std::max<std::size_t>(1, parallel::kGrain / inner), [&](std::size_t first, std::size_t last) {
      for (std::size_t run = first; run < last; ++run) fn(run * inner, (run + 1) * inner, slopes[run % channels]);
    });
  }
}

}  // namespace

// x where x > 0, else slope·x: 0 and NaN take the slope's side in both gradients, as PyTorch's.
// One pass forward; backward one pass writing dx and g·x where x <= 0 (0 elsewhere), then that
// summed over every dim but the channels' for the slopes' gradient.
Tensor prelu(const Tensor& a, const Tensor& weight) {
  TG_CHECK(weight.dim() == 1 && weight.dtype() == a.dtype(), "prelu: weight must be a 1-D ", dtype_name(a.dtype()),
           " tensor (num_parameters), got ", dtype_name(weight.dtype()), " ", shape_str(weight.shape()));
  const std::size_t channels = a.dim() >= 2 ? a.shape()[1] : 1;
  TG_CHECK(weight.numel() == 1 || weight.numel() == channels,
           "prelu: Mismatch of parameter numbers and input channel size. Found parameter numbers = ", weight.numel(),
           " and channel size = ", channels, ".");
  const std::size_t slopes = weight.numel(), n = a.numel();
  const std::size_t inner = slopes == 1 || n == 0 ? n : n / (a.shape()[0] * slopes);
  Tensor out = dispatch_floating(a.dtype(), "prelu", [&]<class T>() {
    using B = kernels::Batch<T>;
    xt::xarray<T> y = xt::xarray<T>::from_shape(a.shape());
    const T* x = a.data<T>();
    T* o = y.data();
    for_slope_runs<T>(
        n, slopes, inner, weight.data<T>(),
        [&](std::size_t begin, std::size_t end, T w) {
          kernels::apply(end - begin, o + begin, [w](B v) { return xsimd::select(v > B(T(0)), v, v * B(w)); }, x + begin);
        },
        [&](std::size_t at, const T* w) {
          kernels::apply(slopes, o + at, [](B v, B s) { return xsimd::select(v > B(T(0)), v, v * s); }, x + at, w);
        });
    return make_tensor<T>(std::move(y));
  });
  return record("prelu", out, {a, weight}, [a, weight, slopes, inner](const Tensor& grad, NeedsGrad needs) -> Grads {
    return dispatch_floating(grad.dtype(), "prelu", [&]<class T>() -> Grads {
      using B = kernels::Batch<T>;
      const std::size_t n = a.numel();
      xt::xarray<T> dx = xt::xarray<T>::from_shape(a.shape()), terms = xt::xarray<T>::from_shape(a.shape());
      const T* x = a.data<T>();
      const T* g = grad.data<T>();
      T* d = dx.data();
      T* t = terms.data();
      const auto both = [](B v, B gv, B s) {
        const auto negative = v <= B(T(0)) || xsimd::isnan(v);
        return std::pair{xsimd::select(negative, gv * s, gv), xsimd::select(negative, gv * v, B(T(0)))};
      };
      for_slope_runs<T>(
          n, slopes, inner, weight.data<T>(),
          [&](std::size_t begin, std::size_t end, T w) {
            kernels::apply_pair(end - begin, d + begin, t + begin, [&](B v, B gv) { return both(v, gv, B(w)); },
                                x + begin, g + begin);
          },
          [&](std::size_t at, const T* w) { kernels::apply_pair(slopes, d + at, t + at, both, x + at, g + at, w); });
      Grads grads{needs[0] ? make_tensor<T>(std::move(dx)) : Tensor(), Tensor()};
      if (needs[1]) {
        const Tensor all = make_tensor<T>(std::move(terms));
        std::vector<std::int64_t> dims;
        for (std::size_t k = 0; k < a.dim(); ++k)
          if (slopes == 1 || k != 1) dims.push_back(std::int64_t(k));
        grads[1] = reshape(dims.empty() ? all : sum(all, dims), {std::int64_t(slopes)});
      }
      return grads;
    });
  });
}

namespace {

// Softmax or log-softmax over the reduced dim of an (outer, reduced, inner) layout, with the
// maximum subtracted first so that exp never overflows.
// Contiguous rows (softmax over the last dim), a block at a time (kernels::exp_rows): batch lanes
// for the max, the exponentials and their sum.
template <bool Log, class T>
void softmax_rows(const T* in, T* out, std::size_t n, std::size_t rows) {
  using B = kernels::Batch<T>;
  if constexpr (Log) {
    kernels::RowExps<T> exps;
    kernels::exp_rows(in, out, n, rows, exps);
    for (std::size_t r = 0; r < rows; ++r) {
      // (x - max) - log Σ: subtracting max first keeps the float32 digits of x - max.
      const T largest = exps.max[r], log_total = std::log(exps.sum[r]);
      kernels::apply(n, out + r * n, [largest, log_total](B x) { return (x - B(largest)) - B(log_total); },
                     in + r * n);
    }
  } else {
    kernels::softmax_rows(in, out, n, rows);
  }
}

// Over a dim with inner > 1 the kernels run down the rows a slab of columns at a time (see
// kernels::for_column_slabs): every column's max, then its exponentials and their sum, then the
// output, each pass while the slab is in L2.
template <bool Log, class T>
void softmax_columns(const T* x, T* y, std::size_t reduced, std::size_t inner, std::size_t columns) {
  using B = kernels::Batch<T>;
  alignas(64) std::array<T, kernels::kSlabColumns> largest, total;
  T* m = largest.data();
  T* sum = total.data();
  kernels::column_max(x, reduced, inner, columns, m);
  if constexpr (Log) {
    // (x - max) - log Σ: subtracting max first keeps the float32 digits of x - max.
    kernels::column_log_sums(x, reduced, inner, columns, static_cast<const T*>(m), sum);
    for (std::size_t r = 0; r < reduced; ++r)
      kernels::apply(columns, y + r * inner, [](B v, B shift, B log_total) { return (v - shift) - log_total; },
                     x + r * inner, static_cast<const T*>(m), static_cast<const T*>(sum));
  } else {
    std::fill_n(sum, columns, T(0));
    for (std::size_t r = 0; r < reduced; ++r)
      kernels::apply_pair(columns, y + r * inner, sum, [](B v, B shift, B total) {
        const B e = kernels::exp_lanes(v - shift);
        return std::pair{e, total + e};
      }, x + r * inner, static_cast<const T*>(m), static_cast<const T*>(sum));
    kernels::apply(columns, sum, [](B v) { return B(T(1)) / v; }, static_cast<const T*>(sum));  // as the rows
    for (std::size_t r = 0; r < reduced; ++r)
      kernels::apply(columns, y + r * inner, [](B e, B inverse) { return e * inverse; }, static_cast<const T*>(y + r * inner),
                     static_cast<const T*>(sum));
  }
}

template <bool Log, class T>
void softmax_kernel(const T* x, T* y, const kernels::ReduceLayout& l) {
  if (l.outer == 0 || l.reduced == 0 || l.inner == 0) return;  // no values
  if (l.inner == 1) {
    const std::size_t grain = std::max<std::size_t>(1, parallel::kGrain / l.reduced);
    parallel::for_range(l.outer, grain, [&](std::size_t first, std::size_t last) {
      kernels::for_row_blocks<T>(first, last, l.reduced, [&](std::size_t row, std::size_t rows) {
        softmax_rows<Log>(x + row * l.reduced, y + row * l.reduced, l.reduced, rows);
      });
    });
    return;
  }
  kernels::for_column_slabs<T>(l, [&](std::size_t o, std::size_t c, std::size_t columns) {
    const std::size_t offset = o * l.reduced * l.inner + c;
    softmax_columns<Log>(x + offset, y + offset, l.reduced, l.inner, columns);
  });
}

template <bool Log>
Tensor softmax_forward(const char* op, const Tensor& a, std::size_t d) {
  return dispatch_floating(a.dtype(), op, [&]<class T>() {
    xt::xarray<T> out = xt::xarray<T>::from_shape(a.shape());
    softmax_kernel<Log>(a.data<T>(), out.data(), kernels::reduce_layout(a.shape(), d));
    return make_tensor<T>(std::move(out));
  });
}

// The backward over rows of the last dim, in one pass per row after its reduction, from y =
// softmax(x) (for softmax, its output):
//   softmax:      dx = y ⊙ (g − Σ g⊙y)
//   log_softmax:  dx = g − y ⊙ Σ g
template <bool Log>
Tensor softmax_backward_rows(const char* op, const Tensor& grad, const Tensor& out) {
  return dispatch_floating(out.dtype(), op, [&]<class T>() {
    using B = kernels::Batch<T>;
    const std::size_t n = out.shape().back(), rows = n == 0 ? 0 : out.numel() / n;
    xt::xarray<T> dx = xt::xarray<T>::from_shape(out.shape());
    const T* g = grad.data<T>();
    const T* y = out.data<T>();
    T* d = dx.data();
    parallel::for_range(rows, std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(n, 1)),
                        [&](std::size_t first, std::size_t last) {
      for (std::size_t r = first; r < last; ++r) {
        const T* gr = g + r * n;
        const T* yr = y + r * n;
        if constexpr (Log) {
          const T total = kernels::row_sum(n, T(0), [](B v) { return v; }, gr);
          kernels::apply(n, d + r * n, [total](B gv, B yv) { return gv - yv * B(total); }, gr, yr);
        } else {
          const T dot = kernels::row_sum(n, T(0), [](B gv, B yv) { return gv * yv; }, gr, yr);
          kernels::apply(n, d + r * n, [dot](B gv, B yv) { return yv * (gv - B(dot)); }, gr, yr);
        }
      }
    });
    return make_tensor<T>(std::move(dx));
  });
}

// The same over a dim with inner > 1, a slab of columns at a time (see softmax_columns), from
// y = softmax(x) or, for log_softmax, y = log_softmax(x) (then softmax(x) = e^y):
//   softmax:      dx = y ⊙ (g − Σ g⊙y)
//   log_softmax:  dx = g − e^y ⊙ Σ g
template <bool Log>
Tensor softmax_backward_columns(const char* op, const Tensor& grad, const Tensor& out, std::size_t d) {
  return dispatch_floating(out.dtype(), op, [&]<class T>() {
    using B = kernels::Batch<T>;
    const kernels::ReduceLayout l = kernels::reduce_layout(out.shape(), d);
    xt::xarray<T> dx = xt::xarray<T>::from_shape(out.shape());
    const T* g = grad.data<T>();
    const T* y = out.data<T>();
    kernels::for_column_slabs<T>(l, [&](std::size_t o, std::size_t c, std::size_t columns) {
      const std::size_t offset = o * l.reduced * l.inner + c;
      alignas(64) std::array<T, kernels::kSlabColumns> totals;
      T* total = totals.data();
      std::fill_n(total, columns, T(0));
      for (std::size_t r = 0; r < l.reduced; ++r) {
        const T* gr = g + offset + r * l.inner;
        if constexpr (Log)
          kernels::apply(columns, total, [](B sum, B gv) { return sum + gv; }, static_cast<const T*>(total), gr);
        else
          kernels::apply(columns, total, [](B sum, B gv, B yv) { return xsimd::fma(gv, yv, sum); },
                         static_cast<const T*>(total), gr, y + offset + r * l.inner);
      }
      for (std::size_t r = 0; r < l.reduced; ++r) {
        const std::size_t at = offset + r * l.inner;
        if constexpr (Log)
          kernels::apply(columns, dx.data() + at, [](B gv, B yv, B sum) { return gv - kernels::exp_lanes(yv) * sum; }, g + at,
                         y + at, static_cast<const T*>(total));
        else
          kernels::apply(columns, dx.data() + at, [](B gv, B yv, B dot) { return yv * (gv - dot); }, g + at, y + at,
                         static_cast<const T*>(total));
      }
    });
    return make_tensor<T>(std::move(dx));
  });
}

}  // namespace

Tensor softmax(const Tensor& a, std::int64_t dim) {
  const std::size_t d = wrap_dim("softmax", dim, a.dim(), a.shape());
  Tensor out = softmax_forward<false>("softmax", a, d);
  // dx = y ⊙ (g − Σ_d g⊙y)
  return record("softmax", out, {a}, {out}, [out, d](const Tensor& grad) -> Grads {
    if (d + 1 == out.dim()) return {softmax_backward_rows<false>("softmax", grad, out)};
    return {softmax_backward_columns<false>("softmax", grad, out, d)};
  });
}

Tensor log_softmax(const Tensor& a, std::int64_t dim) {
  const std::size_t d = wrap_dim("log_softmax", dim, a.dim(), a.shape());
  // dx = g − softmax(x) ⊙ Σ_d g. Over the last dim with a gradient to come, the forward keeps
  // softmax(x) (its exponentials are computed anyway) instead of the output: the backward then
  // takes no exponential, where e^y would cost one per value.
  if (d + 1 == a.dim() && GradMode::is_enabled() && a.requires_grad()) {
    Tensor probabilities;
    Tensor out = dispatch_floating(a.dtype(), "log_softmax", [&]<class T>() {
      using B = kernels::Batch<T>;
      const std::size_t n = a.shape().back(), rows = n == 0 ? 0 : a.numel() / n;
      xt::xarray<T> y = xt::xarray<T>::from_shape(a.shape()), p = xt::xarray<T>::from_shape(a.shape());
      const T* x = a.data<T>();
      parallel::for_range(rows, std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(n, 1)),
                          [&](std::size_t first, std::size_t last) {
        kernels::for_row_blocks<T>(first, last, n, [&](std::size_t row, std::size_t rows) {
          kernels::RowExps<T> exps;
          kernels::exp_rows(x + row * n, p.data() + row * n, n, rows, exps);
          for (std::size_t r = row; r < row + rows; ++r) {
            const T* xr = x + r * n;
            T* pr = p.data() + r * n;
            const T largest = exps.max[r - row], log_total = std::log(exps.sum[r - row]);
            const T inverse = T(1) / exps.sum[r - row];
            kernels::apply_pair(n, y.data() + r * n, pr, [largest, log_total, inverse](B xv, B ev) {
              return std::pair{(xv - B(largest)) - B(log_total), ev * B(inverse)};
            }, xr, static_cast<const T*>(pr));
          }
        });
      });
      probabilities = make_tensor<T>(std::move(p));
      return make_tensor<T>(std::move(y));
    });
    return record("log_softmax", out, {a}, [probabilities](const Tensor& grad) -> Grads {
      return {softmax_backward_rows<true>("log_softmax", grad, probabilities)};
    });
  }
  Tensor out = softmax_forward<true>("log_softmax", a, d);
  // Over another dim (or with no gradient to come), from the output: softmax(x) = e^y.
  return record("log_softmax", out, {a}, {out}, [out, d](const Tensor& grad) -> Grads {
    if (d + 1 == out.dim()) return {grad - exp(out) * sum(grad, {std::int64_t(d)}, true)};
    return {softmax_backward_columns<true>("log_softmax", grad, out, d)};
  });
}

Tensor softmin(const Tensor& a, std::int64_t dim) {
  TG_CHECK(is_floating(a.dtype()), "softmin: expected a floating-point tensor (float32 or float64), got ",
           dtype_name(a.dtype()));
  return softmax(-a, std::int64_t(wrap_dim("softmin", dim, a.dim(), a.shape())));
}

namespace {

// Dropout's mask for counters [first, last), from `out`: 4 values each, scale where the Philox word
// is at least the threshold and 0 below. Everything by value, so the loop vectorises (16 lanes
// with AVX-512).
template <class T>
void dropout_mask(T* out, std::size_t first, std::size_t last, r123::Philox4x32::key_type key,
                  std::uint32_t threshold, T scale) {
  using Philox = r123::Philox4x32;
  for (std::size_t b = first; b < last; ++b) {
    const Philox::ctr_type words = Philox()({{std::uint32_t(b), std::uint32_t(std::uint64_t(b) >> 32), 0, 0}}, key);
    for (std::size_t j = 0; j < 4; ++j) out[4 * (b - first) + j] = words.v[j] >= threshold ? scale : T(0);
  }
}

}  // namespace

// The mask: one 64-bit key drawn from the generator per call, and for element i the 32-bit word
// i % 4 of Philox4x32-10(counter i / 4, key) (Random123; the counter-based generator PyTorch's CUDA
// dropout uses): an element is dropped when its word is below p·2³². Counter-based, so the mask
// is made in parallel and its bits never depend on the thread count; ~1 ns per element where a
// Mersenne Twister draw per element took ~9.
Tensor dropout(const Tensor& a, double p, bool training, Generator generator) {
  TG_CHECK(p >= 0.0 && p <= 1.0, "dropout: probability must be in [0, 1], got ", p);
  if (!training || p == 0.0) return a;
  // Inverted dropout: kept values are scaled by 1/(1-p) so the expectation is unchanged.
  const double scale = p == 1.0 ? 0.0 : 1.0 / (1.0 - p);
  const std::uint64_t key = generator.next_u64();
  // p = 1 has scale 0, so every value is 0 whatever the largest 32-bit threshold drops.
  const auto threshold = std::uint32_t(std::min(std::ceil(p * 0x1p32), 0x1p32 - 1));
  Tensor mask = dispatch_floating(a.dtype(), "dropout", [&]<class T>() {
    xt::xarray<T> m = xt::xarray<T>::from_shape(a.shape());
    T* out = m.data();
    const std::size_t n = m.size();
    const r123::Philox4x32::key_type k = {{std::uint32_t(key), std::uint32_t(key >> 32)}};
    parallel::for_range(n / 4, parallel::kGrain / 4, [&](std::size_t first, std::size_t last) {
      dropout_mask(out + 4 * first, first, last, k, threshold, T(scale));
    });
    if (n % 4 != 0) {
      T tail[4];
      dropout_mask(tail, n / 4, n / 4 + 1, k, threshold, T(scale));
      std::copy_n(tail, n % 4, out + n / 4 * 4);
    }
    return make_tensor<T>(std::move(m));
  });
  return a * mask;
}

namespace {

// One mask value per (sample, channel) of a batched input or per channel of an unbatched one,
// drawn by dropout itself, broadcast over the rest.
Tensor channel_dropout(const char* op, const Tensor& a, bool batched, double p, bool training, Generator generator) {
  TG_CHECK(p >= 0.0 && p <= 1.0, op, ": probability must be in [0, 1], got ", p);
  if (!training || p == 0.0) return a;
  Shape mask_shape(a.dim(), 1);
  for (std::size_t i = 0; i < (batched ? 2u : 1u); ++i) mask_shape[i] = a.shape()[i];
  return a * dropout(ones(mask_shape, a.dtype()), p, true, std::move(generator));
}

}  // namespace

Tensor dropout1d(const Tensor& a, double p, bool training, Generator generator) {
  TG_CHECK(a.dim() == 2 || a.dim() == 3, "dropout1d: expected (N, C, L) or unbatched (C, L), got ", shape_str(a.shape()));
  return channel_dropout("dropout1d", a, a.dim() == 3, p, training, std::move(generator));
}

Tensor dropout2d(const Tensor& a, double p, bool training, Generator generator) {
  TG_CHECK(a.dim() == 3 || a.dim() == 4, "dropout2d: expected (N, C, H, W), or (N, C, L) as PyTorch 1.13 reads a 3-d "
           "input, got ", shape_str(a.shape()));
  return channel_dropout("dropout2d", a, true, p, training, std::move(generator));
}

Tensor dropout3d(const Tensor& a, double p, bool training, Generator generator) {
  TG_CHECK(a.dim() == 4 || a.dim() == 5, "dropout3d: expected (N, C, D, H, W) or unbatched (C, D, H, W), got ",
           shape_str(a.shape()));
  return channel_dropout("dropout3d", a, a.dim() == 5, p, training, std::move(generator));
}

}  // namespace tg
