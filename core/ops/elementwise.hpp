// Elementwise arithmetic and math: add, sub, mul, div, neg, pow, exp, log, sqrt, rsqrt, abs, sin, cos, the
// rest of torch's math functions (log1p ... erfc) and rounding (floor ... frac), clamp, maximum,
// minimum, where. Binary ops broadcast like NumPy; both inputs must have one dtype.
#pragma once

#include <cstdint>
#include <optional>

#include "../tensor.hpp"

namespace tg {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double b);
Tensor sub(const Tensor& a, double b);
Tensor sub(double a, const Tensor& b);
Tensor mul(const Tensor& a, double b);
Tensor div(const Tensor& a, double b);
Tensor div(double a, const Tensor& b);
Tensor neg(const Tensor& a);

// C's special values (x^0 = 1 even for NaN, 0^-1 = inf, 1^NaN = 1) and PyTorch's gradients (0
// where the exponent is 0; d/dx x^0.5 = inf at 0).
Tensor pow(const Tensor& base, const Tensor& exponent);
Tensor pow(const Tensor& base, double exponent);
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor rsqrt(const Tensor& a);  // 1 / sqrt(a)
Tensor abs(const Tensor& a);    // gradient 0 at 0 and at NaN, like PyTorch
Tensor sin(const Tensor& a);
Tensor cos(const Tensor& a);

// More math, as torch's: logarithms and exponentials near 0 and in bases 2 and 10, 1/x and x²,
// the trigonometric and hyperbolic functions and their inverses, the error function. Each is within
// 3 ulp of the C library over its whole range, special values and subnormals included
// (tests/test_math.cpp), and its gradient is PyTorch's formula (asin's is inf at ±1, atan2's NaN
// at (0, 0)).
Tensor log1p(const Tensor& a);
Tensor expm1(const Tensor& a);
Tensor log2(const Tensor& a);
Tensor log10(const Tensor& a);
Tensor reciprocal(const Tensor& a);
Tensor square(const Tensor& a);
Tensor tan(const Tensor& a);
Tensor asin(const Tensor& a);
Tensor acos(const Tensor& a);
Tensor atan(const Tensor& a);
Tensor atan2(const Tensor& a, const Tensor& b);  // the angle of the point (b, a), broadcast
Tensor sinh(const Tensor& a);
Tensor cosh(const Tensor& a);
Tensor asinh(const Tensor& a);
Tensor acosh(const Tensor& a);
Tensor atanh(const Tensor& a);
Tensor erf(const Tensor& a);
Tensor erfc(const Tensor& a);

// Rounding, whose gradient is 0 (PyTorch's; the result still records, so a loss through it can
// call backward). round is half to even; with `decimals` it rounds to multiples of 10^-decimals
// by PyTorch's formula in the tensor's dtype (nearbyint(a·10^d) / 10^d, or for d < 0
// nearbyint(a / 10^-d) · 10^-d). sign is -1, 0 or 1, and 0 for NaN as PyTorch's. frac is
// a - trunc(a), with gradient 1.
Tensor floor(const Tensor& a);
Tensor ceil(const Tensor& a);
Tensor trunc(const Tensor& a);
Tensor round(const Tensor& a, std::int64_t decimals = 0);
Tensor sign(const Tensor& a);
Tensor frac(const Tensor& a);

// Limits to [min, max]; either bound may be left out; NaN stays NaN, and min > max gives max
// everywhere, as in PyTorch. The gradient passes where min <= a <= max.
Tensor clamp(const Tensor& a, std::optional<double> min, std::optional<double> max);
// Elementwise max/min of two tensors, NaN where either is NaN; at ties the gradient is split
// evenly, and at NaN both get all of it, as in PyTorch.
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
// a where condition is non-zero, else b. The condition may have any dtype and is not differentiated.
Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);

// Comparisons, broadcast: 1 where true and 0 where false, in the inputs' dtype (tapegrad has no
// bool dtype), never differentiable. They work on int64 too: eq(argmax(logits, 1), labels).
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, double b);
Tensor ne(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);
Tensor le(const Tensor& a, double b);
Tensor gt(const Tensor& a, double b);
Tensor ge(const Tensor& a, double b);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(const Tensor& a, double b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(const Tensor& a, double b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(const Tensor& a, double b);
Tensor operator/(double a, const Tensor& b);
Tensor operator-(const Tensor& a);
// Comparisons as operators, as libtorch's (x > 0 is gt(x, 0)): tensors of 1 and 0, as above.
Tensor operator==(const Tensor& a, const Tensor& b);
Tensor operator!=(const Tensor& a, const Tensor& b);
Tensor operator<(const Tensor& a, const Tensor& b);
Tensor operator<=(const Tensor& a, const Tensor& b);
Tensor operator>(const Tensor& a, const Tensor& b);
Tensor operator>=(const Tensor& a, const Tensor& b);
Tensor operator==(const Tensor& a, double b);
Tensor operator!=(const Tensor& a, double b);
Tensor operator<(const Tensor& a, double b);
Tensor operator<=(const Tensor& a, double b);
Tensor operator>(const Tensor& a, double b);
Tensor operator>=(const Tensor& a, double b);
Tensor operator==(double a, const Tensor& b);
Tensor operator!=(double a, const Tensor& b);
Tensor operator<(double a, const Tensor& b);
Tensor operator<=(double a, const Tensor& b);
Tensor operator>(double a, const Tensor& b);
Tensor operator>=(double a, const Tensor& b);

}  // namespace tg
