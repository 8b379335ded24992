// Elementwise ops. Each op computes its result with a kernel from kernels.hpp, then records its
// backward right below. Gradients of broadcast inputs are returned at the output's shape: the
// engine sums them back to each input's shape.
#include "core/ops/elementwise.hpp"
#include "core/xtensor.hpp"

#include <cmath>
#include <xtensor/xmath.hpp>
#include <xtensor/xoperation.hpp>

#include "core/autograd.hpp"
#include "core/creation.hpp"
#include "core/ops/kernels.hpp"

namespace tg {

// ---- arithmetic ---------------------------------------------------------------------------

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary("add", a, b, [](const auto& x, const auto& y) { return x + y; });
  return record("add", out, {a, b}, [](const Tensor& grad) -> Grads { return {grad, grad}; });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary("sub", a, b, [](const auto& x, const auto& y) { return x - y; });
  return record("sub", out, {a, b}, [](const Tensor& grad, NeedsGrad needs) -> Grads {
    return {grad, needs[1] ? neg(grad) : Tensor()};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary("mul", a, b, [](const auto& x, const auto& y) { return x * y; });
  return record("mul", out, {a, b}, {a, b}, [a, b](const Tensor& grad, NeedsGrad needs) -> Grads {
    return {needs[0] ? grad * b : Tensor(), needs[1] ? grad * a : Tensor()};
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary("div", a, b, [](const auto& x, const auto& y) { return x / y; });
  // d(a/b)/da = 1/b, d(a/b)/db = -a/b² = -out/b
  return record("div", out, {a, b}, {b, out}, [b, out](const Tensor& grad, NeedsGrad needs) -> Grads {
    Tensor grad_a = grad / b;
    return {needs[0] ? grad_a : Tensor(), needs[1] ? neg(grad_a * out) : Tensor()};
  });
}

Tensor add(const Tensor& a, double b) {
  Tensor out = unary("add", a, [b](const auto& x) { return x + scalar_like(x, b); });
  return record("add", out, {a}, [](const Tensor& grad) -> Grads { return {grad}; });
}

Tensor sub(const Tensor& a, double b) { return add(a, -b); }

Tensor sub(double a, const Tensor& b) {
  Tensor out = unary("sub", b, [a](const auto& y) { return scalar_like(y, a) - y; });
  return record("sub", out, {b}, [](const Tensor& grad) -> Grads { return {neg(grad)}; });
}

Tensor mul(const Tensor& a, double b) {
  Tensor out = unary("mul", a, [b](const auto& x) { return x * scalar_like(x, b); });
  return record("mul", out, {a}, [b](const Tensor& grad) -> Grads { return {grad * b}; });
}

Tensor div(const Tensor& a, double b) {
  Tensor out = unary("div", a, [b](const auto& x) { return x / scalar_like(x, b); });
  return record("div", out, {a}, [b](const Tensor& grad) -> Grads { return {grad / b}; });
}

Tensor div(double a, const Tensor& b) {
  Tensor out = unary("div", b, [a](const auto& y) { return scalar_like(y, a) / y; });
  // d(a/b)/db = -a/b² = -out/b
  return record("div", out, {b}, {b, out}, [b, out](const Tensor& grad) -> Grads {
    return {neg(grad * out / b)};
  });
}

Tensor neg(const Tensor& a) {
  Tensor out = unary("neg", a, [](const auto& x) { return -x; });
  return record("neg", out, {a}, [](const Tensor& grad) -> Grads { return {neg(grad)}; });
}

// ---- powers, exponentials, roots ------------------------------------------------------------

Tensor pow(const Tensor& base, const Tensor& exponent) {
  Tensor out = binary("pow", base, exponent, [](const auto& x, const auto& y) { return xt::pow(x, y); });
  // d/dbase = exponent·base^(exponent-1); d/dexponent = out·log(base), taken as 0 where base is 0
  // and exponent >= 0 (the limit PyTorch uses), so 0^y does not give NaN gradients.
  return record("pow", out, {base, exponent}, {base, exponent, out},
                [base, exponent, out](const Tensor& grad,
                                                                          NeedsGrad needs) -> Grads {
                  Tensor grad_base, grad_exponent;
                  if (needs[0]) grad_base = grad * exponent * pow(base, exponent - 1.0);
                  if (needs[1]) {
                    Tensor log_base = binary("pow", base, exponent, [](const auto& x, const auto& y) {
                      using T = value_of<decltype(x), decltype(y)>;
                      return xt::where(xt::equal(x, T(0)) && (y >= T(0)), T(0), xt::log(x));
                    });
                    grad_exponent = grad * out * log_base;
                  }
                  return {grad_base, grad_exponent};
                });
}

Tensor pow(const Tensor& base, double exponent) {
  Tensor out = unary("pow", base, [exponent](const auto& x) { return xt::pow(x, scalar_like(x, exponent)); });
  return record("pow", out, {base}, {base}, [base, exponent](const Tensor& grad) -> Grads {
    if (exponent == 0.0) return {zeros_like(grad)};
    return {grad * exponent * pow(base, exponent - 1.0)};
  });
}

Tensor exp(const Tensor& a) {
  Tensor out = unary("exp", a, [](const auto& x) { return xt::exp(x); });
  return record("exp", out, {a}, {out}, [out](const Tensor& grad) -> Grads { return {grad * out}; });
}

Tensor log(const Tensor& a) {
  Tensor out = unary("log", a, [](const auto& x) { return xt::log(x); });
  return record("log", out, {a}, {a}, [a](const Tensor& grad) -> Grads { return {grad / a}; });
}

Tensor sqrt(const Tensor& a) {
  Tensor out = unary("sqrt", a, [](const auto& x) { return xt::sqrt(x); });
  // d sqrt(a) = 1 / (2 sqrt(a))
  return record("sqrt", out, {a}, {out}, [out](const Tensor& grad) -> Grads { return {grad / (out * 2.0)}; });
}

Tensor rsqrt(const Tensor& a) {
  Tensor out = unary("rsqrt", a, [](const auto& x) { return scalar_like(x, 1.0) / xt::sqrt(x); });
  // d a^(-1/2) = -1/2 a^(-3/2) = -out³/2
  return record("rsqrt", out, {a}, {out}, [out](const Tensor& grad) -> Grads {
    return {grad * out * out * out * -0.5};
  });
}

Tensor abs(const Tensor& a) {
  Tensor out = unary("abs", a, [](const auto& x) { return xt::abs(x); });
  return record("abs", out, {a}, {a}, [a](const Tensor& grad) -> Grads {
    return {grad * unary("abs", a, [](const auto& x) { return xt::sign(x); })};
  });
}

Tensor sin(const Tensor& a) {
  Tensor out = unary("sin", a, [](const auto& x) { return xt::sin(x); });
  return record("sin", out, {a}, {a}, [a](const Tensor& grad) -> Grads { return {grad * cos(a)}; });
}

Tensor cos(const Tensor& a) {
  Tensor out = unary("cos", a, [](const auto& x) { return xt::cos(x); });
  return record("cos", out, {a}, {a}, [a](const Tensor& grad) -> Grads { return {-grad * sin(a)}; });
}

// ---- comparisons that route gradients --------------------------------------------------------

Tensor clamp(const Tensor& a, std::optional<double> min, std::optional<double> max) {
  TG_CHECK(min || max, "clamp: at least one of min and max must be given");
  TG_CHECK(!min || !max || *min <= *max, "clamp: min ", *min, " is greater than max ", *max);
  const double low = min.value_or(-INFINITY), high = max.value_or(INFINITY);
  Tensor out = unary("clamp", a, [low, high](const auto& x) {
    return xt::clip(x, scalar_like(x, low), scalar_like(x, high));
  });
  return record("clamp", out, {a}, {a}, [a, low, high](const Tensor& grad) -> Grads {
    Tensor inside = unary("clamp", a, [low, high](const auto& x) {
      using T = value_of<decltype(x)>;
      return xt::where(x >= T(low) && x <= T(high), T(1), T(0));
    });
    return {grad * inside};
  });
}

namespace {

// 1 where a beats b, 1/2 at ties, 0 elsewhere (at the broadcast shape): the share of the gradient
// that maximum/minimum send to a; b gets the rest.
template <class Beats>
Tensor winner_share(const char* op, const Tensor& a, const Tensor& b, Beats beats) {
  return binary(op, a, b, [beats](const auto& x, const auto& y) {
    using T = value_of<decltype(x), decltype(y)>;
    return xt::where(beats(x, y), T(1), xt::where(xt::equal(x, y), T(0.5), T(0)));
  });
}

template <class Beats>
Tensor select_winner(const char* op, const Tensor& a, const Tensor& b, Beats beats) {
  Tensor out = binary(op, a, b, [beats](const auto& x, const auto& y) { return xt::where(beats(x, y), x, y); });
  return record(op, out, {a, b}, {a, b},
                [op, beats, a, b](const Tensor& grad, NeedsGrad needs) -> Grads {
                  Tensor share = winner_share(op, a, b, beats);
                  return {needs[0] ? grad * share : Tensor(), needs[1] ? grad * (1.0 - share) : Tensor()};
                });
}

}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) {
  return select_winner("maximum", a, b, [](const auto& x, const auto& y) { return x > y; });
}

Tensor minimum(const Tensor& a, const Tensor& b) {
  return select_winner("minimum", a, b, [](const auto& x, const auto& y) { return x < y; });
}

Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b) {
  TG_CHECK(a.dtype() == b.dtype(), "where: a and b must have one dtype, got ", dtype_name(a.dtype()),
           " and ", dtype_name(b.dtype()));
  const Shape shape = kernels::broadcast_shape(
      "where", kernels::broadcast_shape("where", condition.shape(), a.shape()), b.shape());
  Tensor out = dispatch_floating(a.dtype(), "where", [&]<class T>() {
    xt::xarray<T> result = xt::xarray<T>::from_shape(shape);
    std::visit([&](const auto& cond) { xt::noalias(result) = xt::where(xt::not_equal(cond, 0), a.values<T>(), b.values<T>()); },
               condition.impl()->storage->values);
    return make_tensor<T>(std::move(result));
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
    return make_tensor<T>(kernels::zip(op, a.values<T>(), b.values<T>(), [&](const auto& x, const auto& y) {
      return xt::where(compare(x, y), T(1), T(0));
    }));
  });
}

Tensor scalar_as(const Tensor& like, double value) { return full({}, value, like.dtype()); }

}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) { return compare("eq", a, b, [](const auto& x, const auto& y) { return xt::equal(x, y); }); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare("ne", a, b, [](const auto& x, const auto& y) { return xt::not_equal(x, y); }); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare("lt", a, b, [](const auto& x, const auto& y) { return x < y; }); }
Tensor le(const Tensor& a, const Tensor& b) { return compare("le", a, b, [](const auto& x, const auto& y) { return x <= y; }); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare("gt", a, b, [](const auto& x, const auto& y) { return x > y; }); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare("ge", a, b, [](const auto& x, const auto& y) { return x >= y; }); }
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
