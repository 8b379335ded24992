// Elementwise ops. Each op computes its result with a kernel from kernels.hpp, then records its
// backward right below. Gradients of broadcast inputs are returned at the output's shape: the
// engine sums them back to each input's shape.
#include "core/ops/elementwise.hpp"
#include "core/xtensor.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>

#include "core/autograd.hpp"
#include "core/creation.hpp"
#include "core/ops/kernels.hpp"
#include "core/ops/math_lanes.hpp"
#include "core/ops/reduce.hpp"

namespace tg {

// ---- arithmetic ---------------------------------------------------------------------------

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary("add", a, b, [](auto x, auto y) { return x + y; });
  return record("add", out, {a, b}, [](const Tensor& grad) -> Grads { return {grad, grad}; });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary("sub", a, b, [](auto x, auto y) { return x - y; });
  // A broadcast b takes -Σ grad over its broadcast dims: summed first, then negated (the same bits
  // as summing the negated gradient; one pass over grad, not two).
  return record("sub", out, {a, b}, [shape_b = b.shape()](const Tensor& grad, NeedsGrad needs) -> Grads {
    if (!needs[1]) return {grad, Tensor()};
    return {grad, neg(grad.shape() == shape_b ? grad : sum_to(grad, shape_b))};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary("mul", a, b, [](auto x, auto y) { return x * y; });
  return record("mul", out, {a, b}, {a, b}, [a, b](const Tensor& grad, NeedsGrad needs) -> Grads {
    // An operand that was broadcast takes Σ grad·other over its broadcast dims in one pass.
    auto grad_of = [&grad](const Tensor& self, const Tensor& other) {
      return self.shape() == grad.shape() ? grad * other : mul_sum_to(grad, other, self.shape());
    };
    // x·x, one tensor twice: grad·x for both, made once and doubled in the same pass. (The engine
    // added two equal products: the same bits in two more passes. sqrt(sum(x·x, -1)) of (4096,
    // 256), forward and backward: 0.63 ms that way, 0.37 this way; libtorch 0.49.)
    if (needs[0] && needs[1] && a.same(b)) {  // (one shape: no broadcast)
      const Tensor twice = pointwise("mul", [](auto g, auto x) { const auto t = g * x; return t + t; }, grad, a);
      return {twice, Tensor()};
    }
    return {needs[0] ? grad_of(a, b) : Tensor(), needs[1] ? grad_of(b, a) : Tensor()};
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary("div", a, b, [](auto x, auto y) { return x / y; });
  // d(a/b)/da = 1/b, d(a/b)/db = -a/b² = -out/b
  return record("div", out, {a, b}, {b, out}, [b, out](const Tensor& grad, NeedsGrad needs) -> Grads {
    const Tensor grad_a = grad / b;  // one pass (broadcast), then -grad_a·out in one more
    if (!needs[1]) return {grad_a, Tensor()};
    // A broadcast b: -Σ grad_a·out over its broadcast dims in that pass, with no product tensor.
    const Tensor grad_b = b.shape() == out.shape()
                              ? pointwise("div", [](auto g, auto o) { return -(g * o); }, grad_a, out)
                              : neg(mul_sum_to(grad_a, out, b.shape()));
    return {needs[0] ? grad_a : Tensor(), grad_b};
  });
}

Tensor add(const Tensor& a, double b) {
  Tensor out = unary("add", a, [b](auto x) { return x + scalar_like(x, b); });
  return record("add", out, {a}, [](const Tensor& grad) -> Grads { return {grad}; });
}

Tensor sub(const Tensor& a, double b) { return add(a, -b); }

Tensor sub(double a, const Tensor& b) {
  Tensor out = unary("sub", b, [a](auto y) { return scalar_like(y, a) - y; });
  return record("sub", out, {b}, [](const Tensor& grad) -> Grads { return {neg(grad)}; });
}

Tensor mul(const Tensor& a, double b) {
  Tensor out = unary("mul", a, [b](auto x) { return x * scalar_like(x, b); });
  return record("mul", out, {a}, [b](const Tensor& grad) -> Grads { return {grad * b}; });
}

Tensor div(const Tensor& a, double b) {
  Tensor out = unary("div", a, [b](auto x) { return x / scalar_like(x, b); });
  return record("div", out, {a}, [b](const Tensor& grad) -> Grads { return {grad / b}; });
}

Tensor div(double a, const Tensor& b) {
  Tensor out = unary("div", b, [a](auto y) { return scalar_like(y, a) / y; });
  // d(a/b)/db = -a/b² = -out/b
  return record("div", out, {b}, {b, out}, [b, out](const Tensor& grad) -> Grads {
    return {pointwise("div", [](auto g, auto o, auto y) { return -(g * o / y); }, grad, out, b)};
  });
}

Tensor neg(const Tensor& a) {
  Tensor out = unary("neg", a, [](auto x) { return -x; });
  return record("neg", out, {a}, [](const Tensor& grad) -> Grads { return {neg(grad)}; });
}

// ---- powers, exponentials, roots ------------------------------------------------------------

namespace {

// x^y with C's (and PyTorch's) special values: x^±0 = 1 (even for NaN x), 1^y = 1, ±0^y = ±inf for
// y < 0, (-inf)^0.5 = inf, (-1)^±inf = 1. xsimd 8's pow gets 33 such pairs wrong (0^0 and 0^-1
// give 0, (-inf)^0.5 NaN), so the lanes with a zero, infinite or NaN operand or a zero exponent are
// recomputed with std::pow; the others keep the vector result (pow_lanes for float32, xsimd for double).
//
// float32 goes through double: xsimd's float pow is exp(y·log x) in float, whose error grows with
// |y·log x| (x^1.5 was off by 7 ulps over [0, 10] and 110 ulps near 1e20, where PyTorch's is
// within one). pow_lanes below takes log2 x and 2^t in double with polynomials just long enough for
// float32, and the result rounded once to float is within 0.503 ulp of std::pow in double (7.2M
// pairs: every binade of x, both signs, 18 exponents from 1e-8 to ±100); twice as fast as
// xsimd's double pow (1M values: 4.4 → 2.1 ms), which works for double's last digits.
// A number exponent stays a double, as PyTorch's does (x^1.7 is not x^1.70000005).
//
// y is a batch like x (pow of two tensors) or one double (pow of a tensor and a number).

// x^y in double lanes for finite nonzero x and y (ieee_pow recomputes the other lanes), to float32
// accuracy: x = m·2^e with m in [√½, √2); ln m = 2·atanh(s), s = (m - 1)/(m + 1), |s| < 0.172, by
// its series to s^15 (next term below 2^-40: y·log2 x is then good to 2^-33 of itself, within what
// a float result needs); t = y·log2 x clamped to ±1000 (past float's range either way), 2^t =
// 2^n·e^(f·ln 2), n = round(t), |f| <= 1/2, by Taylor's series to degree 8 (relative 2^-32);
// double's range holds 2^±1000, and float's overflow and underflow (subnormals too) come from
// rounding to float. A negative x gives NaN unless y is an integer, and odd y negates.
template <class D>
D pow_lanes(const D& x, const D& y) {
  using I = xsimd::batch<std::int64_t, typename D::arch_type>;
  const I bits = xsimd::bitwise_cast<I>(xsimd::abs(x));
  D e = xsimd::bitwise_cast<D>((bits >> 52) | I(0x4330000000000000)) - D(0x1p52 + 1023.0);  // exact
  D m = xsimd::bitwise_cast<D>((bits & I(0x000fffffffffffff)) | I(0x3ff0000000000000));  // in [1, 2)
  const auto high = m > D(1.4142135623730951);
  m = xsimd::select(high, m * D(0.5), m);
  e = xsimd::select(high, e + D(1.0), e);
  const D s = (m - D(1.0)) / (m + D(1.0)), s2 = s * s;
  D series(1.0 / 15);
  for (double k : {13.0, 11.0, 9.0, 7.0, 5.0, 3.0}) series = xsimd::fma(series, s2, D(1.0 / k));
  const D ln_m = D(2.0) * xsimd::fma(s * s2, series, s);
  const D t = xsimd::clip(y * xsimd::fma(ln_m, D(1.4426950408889634), e), D(-1000.0), D(1000.0));
  const D n = xsimd::nearbyint(t), f = (t - n) * D(0.6931471805599453);
  D taylor(1.0 / 40320);
  for (double k : {5040.0, 720.0, 120.0, 24.0, 6.0, 2.0, 1.0, 1.0}) taylor = xsimd::fma(taylor, f, D(1.0 / k));
  const I n_bits = xsimd::bitwise_cast<I>(n + D(0x1.8p52)) - I(0x4338000000000000);  // n as an integer
  D result = taylor * xsimd::bitwise_cast<D>((n_bits + I(1023)) << 52);
  const auto negative = x < D(0.0);
  if (xsimd::any(negative)) {
    const auto integer = xsimd::nearbyint(y) == y;
    const D half = y * D(0.5);
    const auto odd = integer && (xsimd::nearbyint(half) != half);
    result = xsimd::select(negative && !integer, D(std::numeric_limits<double>::quiet_NaN()),
                           xsimd::select(negative && odd, -result, result));
  }
  return result;
}

template <class B, class Y>
B xsimd_pow(const B& x, const Y& y) {
  using T = element_of<B>;
  constexpr bool scalar = std::is_same_v<Y, double>;
  if constexpr (std::is_same_v<T, float>) {
    using D = xsimd::batch<double>;
    static_assert(B::size == 2 * D::size, "a float batch is two double batches");
    auto halves = [](const B& b) -> std::array<D, 2> {
#if defined(__AVX512F__)
      if constexpr (B::size == 16) {
        const __m512 v = b;
        return {D(_mm512_cvtps_pd(_mm512_castps512_ps256(v))),
                D(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))))};
      }
#endif
      alignas(64) float lanes[B::size];
      b.store_aligned(lanes);
      alignas(64) double wide[B::size];
      for (std::size_t i = 0; i < B::size; ++i) wide[i] = lanes[i];
      return {D::load_aligned(wide), D::load_aligned(wide + D::size)};
    };
    const std::array<D, 2> xs = halves(x);
    std::array<D, 2> ys{D(0.0), D(0.0)};
    if constexpr (scalar) ys = {D(y), D(y)};
    else ys = halves(y);
    const D low = pow_lanes(xs[0], ys[0]), high = pow_lanes(xs[1], ys[1]);
#if defined(__AVX512F__)
    if constexpr (B::size == 16) {
      const __m256 l = _mm512_cvtpd_ps(low), h = _mm512_cvtpd_ps(high);
      return B(_mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(l)), _mm256_castps_pd(h), 1)));
    }
#endif
    alignas(64) double wide[B::size];
    low.store_aligned(wide);
    high.store_aligned(wide + D::size);
    alignas(64) float out[B::size];
    for (std::size_t i = 0; i < B::size; ++i) out[i] = float(wide[i]);
    return B::load_aligned(out);
  } else if constexpr (scalar) {
    return xsimd::pow(x, B(T(y)));
  } else {
    return xsimd::pow(x, y);
  }
}

template <class B, class Y>
B ieee_pow(const B& x, const Y& y) {
  using T = element_of<B>;
  const B result = xsimd_pow(x, y);
  auto special = (x == B(T(0))) | !xsimd::isfinite(x);
  if constexpr (std::is_same_v<Y, double>) {
    if (y == 0.0 || !std::isfinite(y)) special = special | (x == x) | (x != x);  // every lane
  } else {
    special = special | (y == B(T(0))) | !xsimd::isfinite(y);
  }
  if (!xsimd::any(special)) return result;
  alignas(64) T xs[B::size], ys[B::size], out[B::size];
  alignas(64) bool lanes[B::size];
  x.store_aligned(xs);
  if constexpr (!std::is_same_v<Y, double>) y.store_aligned(ys);
  result.store_aligned(out);
  special.store_aligned(lanes);
  for (std::size_t i = 0; i < B::size; ++i) {
    if (!lanes[i]) continue;
    if constexpr (std::is_same_v<Y, double>) out[i] = T(std::pow(double(xs[i]), y));
    else out[i] = std::pow(xs[i], ys[i]);
  }
  return B::load_aligned(out);
}

// x^e for a constant e. The exponents PyTorch special-cases are exact products and roots (x² is
// x·x, not exp(2·log x), which is off by an ulp); the rest is ieee_pow.
template <class B>
B power(const B& x, double exponent) {
  if (exponent == 0.0) return B(element_of<B>(1));
  if (exponent == 2.0) return x * x;
  if (exponent == 3.0) return x * x * x;
  if (exponent == 1.0) return x;
  if (exponent == 0.5) return xsimd::sqrt(x);
  if (exponent == -0.5) return B(1) / xsimd::sqrt(x);
  if (exponent == -1.0) return B(1) / x;
  if (exponent == -2.0) return B(1) / (x * x);
  return ieee_pow(x, exponent);
}

}  // namespace

Tensor pow(const Tensor& base, const Tensor& exponent) {
  Tensor out = binary("pow", base, exponent, [](auto x, auto y) { return ieee_pow(x, y); });
  // d/dbase = exponent·base^(exponent-1), taken as 0 where the exponent is 0 (so 0^0 does not give
  // 0·inf = NaN); d/dexponent = out·log(base), taken as 0 where base is 0 and exponent >= 0. Both
  // are PyTorch's (pow_backward_self, pow_backward_exponent).
  return record("pow", out, {base, exponent}, {base, exponent, out},
                [base, exponent, out](const Tensor& grad, NeedsGrad needs) -> Grads {
                  Tensor grad_base, grad_exponent;
                  if (needs[0]) {
                    grad_base = grad * binary("pow", base, exponent, [](auto x, auto y) {
                      using T = element_of<decltype(x)>;
                      return pick(y == T(0), T(0), y * ieee_pow(x, y - T(1)));
                    });
                  }
                  if (needs[1]) {
                    Tensor log_base = binary("pow", base, exponent, [](auto x, auto y) {
                      using T = element_of<decltype(x)>;
                      return pick((x == T(0)) && (y >= T(0)), T(0), kernels::log_lanes(x));
                    });
                    grad_exponent = grad * out * log_base;
                  }
                  return {grad_base, grad_exponent};
                });
}

Tensor pow(const Tensor& base, double exponent) {
  Tensor out = unary("pow", base, [exponent](auto x) { return power(x, exponent); });
  return record("pow", out, {base}, {base}, [base, exponent](const Tensor& grad) -> Grads {
    if (exponent == 0.0) return {zeros_like(grad)};
    // g·e·x^(e-1) in one pass, x^(e-1) taken as the forward takes it (so the gradient of x^-1 at
    // 0 is -inf, of x^0.5 at -0 is -inf, as PyTorch's); x² (the common case) as 2x·g exactly.
    return {pointwise("pow", [exponent](auto g, auto x) {
      using B = decltype(x);
      if (exponent == 2.0) return g * (x + x);
      if (exponent == 1.0) return g;
      return g * B(scalar_like(x, exponent)) * power(x, exponent - 1.0);
    }, grad, base)};
  });
}

Tensor exp(const Tensor& a) {
  Tensor out = unary("exp", a, [](auto x) { return kernels::exp_lanes(x); });
  return record("exp", out, {a}, {out}, [out](const Tensor& grad) -> Grads { return {grad * out}; });
}

Tensor log(const Tensor& a) {
  Tensor out = unary("log", a, [](auto x) { return kernels::log_lanes(x); });
  return record("log", out, {a}, {a}, [a](const Tensor& grad) -> Grads { return {grad / a}; });
}

Tensor sqrt(const Tensor& a) {
  Tensor out = unary("sqrt", a, [](auto x) { return xsimd::sqrt(x); });
  // d sqrt(a) = 1 / (2 sqrt(a))
  return record("sqrt", out, {a}, {out}, [out](const Tensor& grad) -> Grads {
    return {pointwise("sqrt", [](auto g, auto o) { return g / (o + o); }, grad, out)};
  });
}

Tensor rsqrt(const Tensor& a) {
  Tensor out = unary("rsqrt", a, [](auto x) { return scalar_like(x, 1.0) / xsimd::sqrt(x); });
  // d a^(-1/2) = -1/2 a^(-3/2) = -out³/2
  return record("rsqrt", out, {a}, {out}, [out](const Tensor& grad) -> Grads {
    return {pointwise("rsqrt", [](auto g, auto o) { return g * o * o * o * decltype(o)(scalar_like(o, -0.5)); }, grad, out)};
  });
}

Tensor abs(const Tensor& a) {
  Tensor out = unary("abs", a, [](auto x) { return xsimd::abs(x); });
  return record("abs", out, {a}, {a}, [a](const Tensor& grad) -> Grads {
    return {pointwise("abs", [](auto g, auto x) { return g * sgn(x); }, grad, a)};
  });
}

Tensor sin(const Tensor& a) {
  Tensor out = unary("sin", a, [](auto x) { return xsimd::sin(x); });
  return record("sin", out, {a}, {a}, [a](const Tensor& grad) -> Grads {
    return {pointwise("sin", [](auto g, auto x) { return g * xsimd::cos(x); }, grad, a)};
  });
}

Tensor cos(const Tensor& a) {
  Tensor out = unary("cos", a, [](auto x) { return xsimd::cos(x); });
  return record("cos", out, {a}, {a}, [a](const Tensor& grad) -> Grads {
    return {pointwise("cos", [](auto g, auto x) { return -(g * xsimd::sin(x)); }, grad, a)};
  });
}

// ---- more math: logarithms, trigonometric and hyperbolic functions, the error function ----------
// (the lane functions are xsimd's, mended where it is wrong: core/ops/math_lanes.hpp)

Tensor log1p(const Tensor& a) {
  Tensor out = unary("log1p", a, [](auto x) { return kernels::log1p_lanes(x); });
  return record("log1p", out, {a}, {a}, [a](const Tensor& grad) -> Grads {
    return {pointwise("log1p", [](auto g, auto x) { return g / (x + scalar_like(x, 1.0)); }, grad, a)};
  });
}

Tensor expm1(const Tensor& a) {
  Tensor out = unary("expm1", a, [](auto x) { return kernels::expm1_lanes(x); });
  return record("expm1", out, {a}, {out}, [out](const Tensor& grad) -> Grads {
    return {pointwise("expm1", [](auto g, auto o) { return g * (o + scalar_like(o, 1.0)); }, grad, out)};
  });
}

Tensor log2(const Tensor& a) {
  Tensor out = unary("log2", a, [](auto x) { return kernels::log2_lanes(x); });
  return record("log2", out, {a}, {a}, [a](const Tensor& grad) -> Grads {
    return {pointwise("log2", [](auto g, auto x) { return g / (x * scalar_like(x, std::numbers::ln2)); }, grad, a)};
  });
}

Tensor log10(const Tensor& a) {
  Tensor out = unary("log10", a, [](auto x) { return kernels::log10_lanes(x); });
  return record("log10", out, {a}, {a}, [a](const Tensor& grad) -> Grads {
    return {pointwise("log10", [](auto g, auto x) { return g / (x * scalar_like(x, std::numbers::ln10)); }, grad, a)};
  });
}

Tensor reciprocal(const Tensor& a) {
  // A division, not xsimd::reciprocal (vrcp14ps: 14 bits, and inf for float subnormals).
  Tensor out = unary("reciprocal", a, [](auto x) { return scalar_like(x, 1.0) / x; });
  return record("reciprocal", out, {a}, {out}, [out](const Tensor& grad) -> Grads {
    return {pointwise("reciprocal", [](auto g, auto o) { return -(g * o * o); }, grad, out)};
  });
}

Tensor square(const Tensor& a) {
  Tensor out = unary("square", a, [](auto x) { return x * x; });
  return record("square", out, {a}, {a}, [a](const Tensor& grad) -> Grads {
    return {pointwise("square", [](auto g, auto x) { return g * (x + x); }, grad, a)};
  });
}

Tensor tan(const Tensor& a) {
  Tensor out = unary("tan", a, [](auto x) { return xsimd::tan(x); });
  return record("tan", out, {a}, {out}, [out](const Tensor& grad) -> Grads {
    return {pointwise("tan", [](auto g, auto o) { return g * (o * o + scalar_like(o, 1.0)); }, grad, out)};
  });
}

Tensor asin(const Tensor& a) {
  Tensor out = unary("asin", a, [](auto x) { return xsimd::asin(x); });
  return record("asin", out, {a}, {a}, [a](const Tensor& grad) -> Grads {
    return {pointwise("asin", [](auto g, auto x) { return g / xsimd::sqrt(scalar_like(x, 1.0) - x * x); }, grad, a)};
  });
}

Tensor acos(const Tensor& a) {
  Tensor out = unary("acos", a, [](auto x) { return xsimd::acos(x); });
  return record("acos", out, {a}, {a}, [a](const Tensor& grad) -> Grads {
    return {pointwise("acos", [](auto g, auto x) { return -(g / xsimd::sqrt(scalar_like(x, 1.0) - x * x)); }, grad, a)};
  });
}

Tensor atan(const Tensor& a) {
  Tensor out = unary("atan", a, [](auto x) { return xsimd::atan(x); });
  return record("atan", out, {a}, {a}, [a](const Tensor& grad) -> Grads {
    return {pointwise("atan", [](auto g, auto x) { return g / (x * x + scalar_like(x, 1.0)); }, grad, a)};
  });
}

Tensor atan2(const Tensor& a, const Tensor& b) {
  Tensor out = binary("atan2", a, b, [](auto y, auto x) { return kernels::atan2_lanes(y, x); });
  // d/da = b / (a² + b²), d/db = -a / (a² + b²): one fused pass each when nothing was broadcast.
  return record("atan2", out, {a, b}, {a, b}, [a, b](const Tensor& grad, NeedsGrad needs) -> Grads {
    if (a.shape() == grad.shape() && b.shape() == grad.shape()) {
      auto part = [&](const Tensor& num, double sign) {
        return pointwise("atan2", [sign](auto g, auto n, auto y, auto x) {
          return g * n * scalar_like(n, sign) / (y * y + x * x);
        }, grad, num, a, b);
      };
      return {needs[0] ? part(b, 1.0) : Tensor(), needs[1] ? part(a, -1.0) : Tensor()};
    }
    const Tensor scale = grad / (a * a + b * b);
    return {needs[0] ? scale * b : Tensor(), needs[1] ? -(scale * a) : Tensor()};
  });
}

Tensor sinh(const Tensor& a) {
  Tensor out = unary("sinh", a, [](auto x) { return xsimd::sinh(x); });
  return record("sinh", out, {a}, {a}, [a](const Tensor& grad) -> Grads {
    return {pointwise("sinh", [](auto g, auto x) { return g * xsimd::cosh(x); }, grad, a)};
  });
}

Tensor cosh(const Tensor& a) {
  Tensor out = unary("cosh", a, [](auto x) { return xsimd::cosh(x); });
  return record("cosh", out, {a}, {a}, [a](const Tensor& grad) -> Grads {
    return {pointwise("cosh", [](auto g, auto x) { return g * xsimd::sinh(x); }, grad, a)};
  });
}

Tensor asinh(const Tensor& a) {
  Tensor out = unary("asinh", a, [](auto x) { return xsimd::asinh(x); });
  return record("asinh", out, {a}, {a}, [a](const Tensor& grad) -> Grads {
    return {pointwise("asinh", [](auto g, auto x) { return g / xsimd::sqrt(x * x + scalar_like(x, 1.0)); }, grad, a)};
  });
}

Tensor acosh(const Tensor& a) {
  Tensor out = unary("acosh", a, [](auto x) { return kernels::acosh_lanes(x); });
  return record("acosh", out, {a}, {a}, [a](const Tensor& grad) -> Grads {
    return {pointwise("acosh", [](auto g, auto x) { return g / xsimd::sqrt(x * x - scalar_like(x, 1.0)); }, grad, a)};
  });
}

Tensor atanh(const Tensor& a) {
  Tensor out = unary("atanh", a, [](auto x) { return xsimd::atanh(x); });
  return record("atanh", out, {a}, {a}, [a](const Tensor& grad) -> Grads {
    return {pointwise("atanh", [](auto g, auto x) { return g / (scalar_like(x, 1.0) - x * x); }, grad, a)};
  });
}

// d erf(x) = 2/√π e^(-x²), and erfc's is its negative.
Tensor erf(const Tensor& a) {
  Tensor out = unary("erf", a, [](auto x) { return kernels::erf_lanes(x); });
  return record("erf", out, {a}, {a}, [a](const Tensor& grad) -> Grads {
    return {pointwise("erf", [](auto g, auto x) {
      return g * scalar_like(x, std::numbers::inv_sqrtpi * 2) * kernels::exp_lanes(-(x * x));
    }, grad, a)};
  });
}

Tensor erfc(const Tensor& a) {
  Tensor out = unary("erfc", a, [](auto x) { return kernels::erfc_lanes(x); });
  return record("erfc", out, {a}, {a}, [a](const Tensor& grad) -> Grads {
    return {pointwise("erfc", [](auto g, auto x) {
      return -(g * scalar_like(x, std::numbers::inv_sqrtpi * 2) * kernels::exp_lanes(-(x * x)));
    }, grad, a)};
  });
}

// ---- rounding -----------------------------------------------------------------------------

namespace {

// A rounding op's node: its gradient is zero (PyTorch's), a tensor of zeros, not none, so that
// a.grad holds zeros after a backward through it, as in PyTorch.
Tensor record_flat(const char* op, Tensor out, const Tensor& a) {
  return record(op, out, {a}, [](const Tensor& grad) -> Grads { return {zeros_like(grad)}; });
}

}  // namespace

Tensor floor(const Tensor& a) {
  return record_flat("floor", unary("floor", a, [](auto x) { return kernels::floor_lanes(x); }), a);
}

Tensor ceil(const Tensor& a) {
  return record_flat("ceil", unary("ceil", a, [](auto x) { return kernels::ceil_lanes(x); }), a);
}

Tensor trunc(const Tensor& a) {
  return record_flat("trunc", unary("trunc", a, [](auto x) { return kernels::trunc_lanes(x); }), a);
}

Tensor round(const Tensor& a, std::int64_t decimals) {
  if (decimals == 0) return record_flat("round", unary("round", a, [](auto x) { return kernels::round_lanes(x); }), a);
  // PyTorch's kernel: 10^|d| in the tensor's dtype (inf for float beyond 10^38, as there).
  const double ten_pow = std::pow(10.0, double(decimals < 0 ? -decimals : decimals));
  Tensor out = unary("round", a, [ten_pow, decimals](auto x) {
    const auto scale = decltype(x)(scalar_like(x, ten_pow));
    return decimals > 0 ? kernels::round_lanes(x * scale) / scale : kernels::round_lanes(x / scale) * scale;
  });
  return record_flat("round", out, a);
}

Tensor sign(const Tensor& a) {
  return record_flat("sign", unary("sign", a, [](auto x) { return sgn(x); }), a);
}

Tensor frac(const Tensor& a) {
  Tensor out = unary("frac", a, [](auto x) { return x - kernels::trunc_lanes(x); });
  return record("frac", out, {a}, [](const Tensor& grad) -> Grads { return {grad}; });
}

// ---- comparisons that route gradients --------------------------------------------------------

Tensor clamp(const Tensor& a, std::optional<double> min, std::optional<double> max) {
  TG_CHECK(min || max, "clamp: at least one of min and max must be given");
  // min > max sets every value to max, as PyTorch documents (its gradient is then 0 everywhere).
  const double low = min.value_or(-INFINITY), high = max.value_or(INFINITY);
  Tensor out = unary("clamp", a, [low, high](auto x) {
    using B = decltype(x);
    // NaN stays NaN, as in PyTorch (the instructions' max and min would return the bound).
    return pick(xsimd::isnan(x), x, xsimd::min(xsimd::max(x, B(scalar_like(x, low))), B(scalar_like(x, high))));
  });
  return record("clamp", out, {a}, {a}, [a, low, high](const Tensor& grad) -> Grads {
    return {pointwise("clamp", [low, high](auto g, auto x) {
      using T = element_of<decltype(x)>;
      return pick(x >= T(low) && x <= T(high), g, T(0));
    }, grad, a)};
  });
}

namespace {

// The share of the gradient that maximum/minimum send to a: 0 where b beats it, 1/2 at ties, 1
// elsewhere (at the broadcast shape); b's is the same with a and b swapped. Where either is NaN
// neither beats the other and both get the whole gradient, as in PyTorch.
template <class Beats>
Tensor gradient_share(const char* op, const Tensor& a, const Tensor& b, Beats beats) {
  return binary(op, a, b, [beats](auto x, auto y) {
    using T = element_of<decltype(x)>;
    return pick(beats(y, x), T(0), pick(x == y, T(0.5), T(1)));
  });
}

template <class Beats>
Tensor select_winner(const char* op, const Tensor& a, const Tensor& b, Beats beats) {
  // A NaN on either side gives NaN (x + y), as PyTorch's maximum and minimum.
  Tensor out = binary(op, a, b, [beats](auto x, auto y) {
    return pick(xsimd::isnan(x) || xsimd::isnan(y), x + y, pick(beats(x, y), x, y));
  });
  return record(op, out, {a, b}, {a, b},
                [op, beats, a, b](const Tensor& grad, NeedsGrad needs) -> Grads {
                  return {needs[0] ? grad * gradient_share(op, a, b, beats) : Tensor(),
                          needs[1] ? grad * gradient_share(op, b, a, beats) : Tensor()};
                });
}

}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) {
  return select_winner("maximum", a, b, [](auto x, auto y) { return x > y; });
}

Tensor minimum(const Tensor& a, const Tensor& b) {
  return select_winner("minimum", a, b, [](auto x, auto y) { return x < y; });
}

Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b) {
  TG_CHECK(a.dtype() == b.dtype(), "where: a and b must have one dtype, got ", dtype_name(a.dtype()),
           " and ", dtype_name(b.dtype()));
  const Shape shape = kernels::broadcast_shape(
      "where", kernels::broadcast_shape("where", condition.shape(), a.shape()), b.shape());
  Tensor out = dispatch_floating(a.dtype(), "where", [&]<class T>() {
    // The condition as 1/0 in T, then the three inputs at the output's shape, in one pass.
    xt::xarray<T> keep = std::visit(
        [&](const auto& cond) {
          xt::xarray<T> ones = xt::xarray<T>::from_shape(condition.shape());
          std::transform(cond.data(), cond.data() + cond.size(), ones.data(), [](auto c) { return c != 0 ? T(1) : T(0); });
          return ones;
        },
        flat_values(condition));
    xt::xarray<T> held[3];
    auto at_shape = [&](const kernels::Input<T>& values, xt::xarray<T>& holder) -> kernels::Input<T> {
      if (values.shape() == shape) return values;
      holder = kernels::broadcast_to(values, shape);
      return holder;
    };
    return make_tensor<T>(kernels::map_n<T>(shape, [](auto k, auto x, auto y) { return pick(k != decltype(k)(0), x, y); },
                                            at_shape(keep, held[0]), at_shape(kernels::input<T>(a), held[1]),
                                            at_shape(kernels::input<T>(b), held[2])));
  });
  return record("where", out, {a, b}, {condition}, [condition](const Tensor& grad, NeedsGrad needs) -> Grads {
    const Tensor zero = zeros({}, grad.dtype());
    return {needs[0] ? where(condition, grad, zero) : Tensor(), needs[1] ? where(condition, zero, grad) : Tensor()};
  });
}

// ---- comparisons ----------------------------------------------------------------------------

namespace {

template <class Compare>
Tensor compare(const char* op, const Tensor& a, const Tensor& b, Compare compare) {
  TG_CHECK(a.dtype() == b.dtype(), op, ": expected both inputs to have one dtype, got ", dtype_name(a.dtype()),
           " ", shape_str(a.shape()), " and ", dtype_name(b.dtype()), " ", shape_str(b.shape()));
  return dispatch_all(a.dtype(), [&]<class T>() {
    return make_tensor<T>(kernels::zip(op, kernels::input<T>(a), kernels::input<T>(b), [&](auto x, auto y) {
      return pick(compare(x, y), T(1), T(0));
    }));
  });
}

Tensor scalar_as(const Tensor& like, double value) { return full({}, value, like.dtype()); }

}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) { return compare("eq", a, b, [](auto x, auto y) { return x == y; }); }
// (not x != y: a batch's != is an ordered compare, false where either side is NaN, where ne is true)
Tensor ne(const Tensor& a, const Tensor& b) { return compare("ne", a, b, [](auto x, auto y) { return !(x == y); }); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare("lt", a, b, [](auto x, auto y) { return x < y; }); }
Tensor le(const Tensor& a, const Tensor& b) { return compare("le", a, b, [](auto x, auto y) { return x <= y; }); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare("gt", a, b, [](auto x, auto y) { return x > y; }); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare("ge", a, b, [](auto x, auto y) { return x >= y; }); }
Tensor eq(const Tensor& a, double b) { return eq(a, scalar_as(a, b)); }
Tensor ne(const Tensor& a, double b) { return ne(a, scalar_as(a, b)); }
Tensor lt(const Tensor& a, double b) { return lt(a, scalar_as(a, b)); }
Tensor le(const Tensor& a, double b) { return le(a, scalar_as(a, b)); }
Tensor gt(const Tensor& a, double b) { return gt(a, scalar_as(a, b)); }
Tensor ge(const Tensor& a, double b) { return ge(a, scalar_as(a, b)); }

// ---- operators ------------------------------------------------------------------------------

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double b) { return add(a, b); }
Tensor operator+(double a, const Tensor& b) { return add(b, a); }
Tensor operator-(const Tensor& a, double b) { return sub(a, b); }
Tensor operator-(double a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
Tensor operator*(double a, const Tensor& b) { return mul(b, a); }
Tensor operator/(const Tensor& a, double b) { return div(a, b); }
Tensor operator/(double a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator==(const Tensor& a, const Tensor& b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, const Tensor& b) { return ne(a, b); }
Tensor operator<(const Tensor& a, const Tensor& b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return le(a, b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return ge(a, b); }
Tensor operator==(const Tensor& a, double b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, double b) { return ne(a, b); }
Tensor operator<(const Tensor& a, double b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, double b) { return le(a, b); }
Tensor operator>(const Tensor& a, double b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, double b) { return ge(a, b); }
Tensor operator==(double a, const Tensor& b) { return eq(b, a); }  // (the same relation, sides swapped)
Tensor operator!=(double a, const Tensor& b) { return ne(b, a); }
Tensor operator<(double a, const Tensor& b) { return gt(b, a); }
Tensor operator<=(double a, const Tensor& b) { return ge(b, a); }
Tensor operator>(double a, const Tensor& b) { return lt(b, a); }
Tensor operator>=(double a, const Tensor& b) { return le(b, a); }

}  // namespace tg
