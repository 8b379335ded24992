// Elementwise ops. Each op computes its result with a kernel from kernels.hpp, then records its
// backward right below. Gradients of broadcast inputs are returned at the output's shape: the
// engine sums them back to each input's shape.
#include "core/ops/elementwise.hpp"
#include "core/xtensor.hpp"

#include <algorithm>
#include <cmath>

#include "core/autograd.hpp"
#include "core/creation.hpp"
#include "core/ops/kernels.hpp"
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
// recomputed with std::pow; the others keep xsimd's result.
//
// float32 goes through double: xsimd's float pow is exp(y·log x) in float, whose error grows with
// |y·log x| (x^1.5 was off by 7 ulps over [0, 10] and 110 ulps near 1e20, where PyTorch's is
// within one); in double and rounded once it is within one ulp, at about twice the time. A number
// exponent stays a double, as PyTorch's does (x^1.7 is not x^1.70000005).
//
// y is a batch like x (pow of two tensors) or one double (pow of a tensor and a number).
template <class B, class Y>
B xsimd_pow(const B& x, const Y& y) {
  using T = element_of<B>;
  constexpr bool scalar = std::is_same_v<Y, double>;
  if constexpr (std::is_same_v<T, float>) {
    using D = xsimd::batch<double>;
    constexpr std::size_t half = D::size;
    static_assert(B::size == 2 * half, "a float batch is two double batches");
    alignas(64) float xs[B::size], ys[B::size], out[B::size];
    alignas(64) double wide[half];
    x.store_aligned(xs);
    if constexpr (!scalar) y.store_aligned(ys);
    for (std::size_t part = 0; part < 2; ++part) {
      const D exponent = [&] {
        if constexpr (scalar) return D(y);
        else return D::load_unaligned(ys + part * half);
      }();
      xsimd::pow(D::load_unaligned(xs + part * half), exponent).store_aligned(wide);
      for (std::size_t i = 0; i < half; ++i) out[part * half + i] = float(wide[i]);
    }
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
                      return pick((x == T(0)) && (y >= T(0)), T(0), xsimd::log(x));
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
  Tensor out = unary("exp", a, [](auto x) { return xsimd::exp(x); });
  return record("exp", out, {a}, {out}, [out](const Tensor& grad) -> Grads { return {grad * out}; });
}

Tensor log(const Tensor& a) {
  Tensor out = unary("log", a, [](auto x) { return xsimd::log(x); });
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
Tensor ne(const Tensor& a, const Tensor& b) { return compare("ne", a, b, [](auto x, auto y) { return x != y; }); }
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

}  // namespace tg
