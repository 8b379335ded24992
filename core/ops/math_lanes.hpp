// Math functions of a batch of lanes: xsimd 8.1's, mended where it gets special values or the
// ends of the range wrong. Each was compared with the C library over every power of two, a dense
// grid and the special values, in both dtypes, with and without AVX-512 (tests/test_math.cpp keeps
// that comparison); what is listed below is what that found. exp_lanes is in kernels.hpp.
#pragma once

#include <array>
#include <cmath>
#include <limits>
#include <numbers>
#include <type_traits>

#include "kernels.hpp"

namespace tg::kernels {

namespace detail {

// log, log2 and log10 of float64 subnormals: xsimd 8.1 takes their exponent as if they were
// normal (log(1e-310) gave -746.5 where it is -713.8). Those lanes are scaled by 2^54 first and
// 54·log(2) taken off after; float's subnormals come out right.
template <class B, class Log>
B log_of_subnormals_mended(const B& x, Log&& log, double log_of_two) {
  if constexpr (std::is_arithmetic_v<B>) {
    return log(x);  // a plain number: the C library's
  } else if constexpr (std::is_same_v<typename B::value_type, double>) {
    const auto subnormal = (x < B(std::numeric_limits<double>::min())) && (x > B(0.0));
    if (xsimd::any(subnormal)) return xsimd::select(subnormal, log(x * B(0x1p54)) - B(54 * log_of_two), log(x));
  }
  return log(x);
}

}  // namespace detail

template <class B>
B log_lanes(const B& x) {
  return detail::log_of_subnormals_mended(x, [](const auto& v) { return xsimd::log(v); }, std::numbers::ln2);
}

template <class B>
B log2_lanes(const B& x) {
  return detail::log_of_subnormals_mended(x, [](const auto& v) { return xsimd::log2(v); }, 1.0);
}

template <class B>
B log10_lanes(const B& x) {
  return detail::log_of_subnormals_mended(x, [](const auto& v) { return xsimd::log10(v); }, std::numbers::ln2 / std::numbers::ln10);
}

// log(1 + x): xsimd gives +0 for -0.
template <class B>
B log1p_lanes(const B& x) {
  return xsimd::select(x == B(0), x, xsimd::log1p(x));
}

// e^x - 1: xsimd gives +0 for -0 and overflows to inf from 88.38 (float) and 709.5 (double), where
// e^x - 1 is still finite; above 80 and 700 it is e^x to the last bit, taken from exp_lanes.
template <class B>
B expm1_lanes(const B& x) {
  using T = typename B::value_type;
  const auto large = x > B(std::is_same_v<T, float> ? T(80) : T(700));
  const B y = xsimd::select(x == B(0), x, xsimd::expm1(x));
  return xsimd::any(large) ? xsimd::select(large, exp_lanes(x), y) : y;
}

// acosh: xsimd gives -inf for large negative x (below about -3600 in float), where it is NaN.
template <class B>
B acosh_lanes(const B& x) {
  using T = typename B::value_type;
  return xsimd::select(x < B(1), B(std::numeric_limits<T>::quiet_NaN()), xsimd::acosh(x));
}

namespace detail {

// f of each lane, one at a time.
template <class B, class F>
B per_lane(const B& x, F&& f) {
  alignas(64) std::array<typename B::value_type, B::size> v;
  x.store_aligned(v.data());
  for (auto& e : v) e = f(e);
  return B::load_aligned(v.data());
}

}  // namespace detail

// erf and erfc. float erf: xsimd's, within 2.3 ulp. float erfc: xsimd's float erfc is 5 ulp off
// below 2, 35 from 5.5 and 68 from 8, and gives 0 from 9.2 (where erfc is a subnormal, down to
// 1.4e-45 at 10.06), so it runs in double lanes, rounded once to float. double: xsimd's is 67 ulp
// off at x = 2.2 (erf) and 4e7 at 24 (erfc), NaN beyond |x| of about 1e62, so each lane takes the
// C library's (libtorch's Sleef kernels are within an ulp); double erf is rare enough (gradient
// checks) for a call per value.
template <class B>
B erf_lanes(const B& x) {
  if constexpr (std::is_same_v<typename B::value_type, double>) {
    return detail::per_lane(x, [](double v) { return std::erf(v); });
  } else {
    return xsimd::select(xsimd::abs(x) > B(6), xsimd::copysign(B(1), x), xsimd::erf(x));
  }
}

template <class B>
B erfc_lanes(const B& x) {
  if constexpr (std::is_same_v<typename B::value_type, double>) {
    return detail::per_lane(x, [](double v) { return std::erfc(v); });
  } else {
    using D = xsimd::batch<double, typename B::arch_type>;
    alignas(64) std::array<float, B::size> v;
    x.store_aligned(v.data());
    for (std::size_t half = 0; half < B::size; half += D::size) {  // loads and stores that convert
      const D h = D::load_unaligned(v.data() + half);
      xsimd::select(h < D(-6), D(2), xsimd::erfc(h)).store_unaligned(v.data() + half);
    }
    return B::load_aligned(v.data());
  }
}

// atan2(y, x), the angle of the point (x, y): xsimd gives NaN where both are zero or both are
// infinite; C gives the angle their signs point to (atan2(0, -0) = π, atan2(-inf, inf) = -π/4).
template <class B>
B atan2_lanes(const B& y, const B& x) {
  using T = typename B::value_type;
  const B angle = xsimd::atan2(y, x);
  const auto zeros = (y == B(0)) && (x == B(0));
  const auto infinities = xsimd::isinf(y) && xsimd::isinf(x);
  if (!xsimd::any(zeros || infinities)) return angle;
  const auto left = xsimd::copysign(B(1), x) < B(0);  // x negative, -0 included
  const T pi = std::numbers::pi_v<T>;
  const B at_zeros = xsimd::select(left, B(pi), B(0));
  const B at_infinities = xsimd::select(left, B(T(0.75) * pi), B(T(0.25) * pi));
  return xsimd::select(zeros, xsimd::copysign(at_zeros, y),
                       xsimd::select(infinities, xsimd::copysign(at_infinities, y), angle));
}

// floor, ceil, trunc and round half to even (nearbyint, PyTorch's round) with the sign of x on a
// zero result: the SSE2 versions (builds without -march) give +0 for -0 and for ceil(-0.5).
template <class B>
B floor_lanes(const B& x) {
  return xsimd::copysign(xsimd::floor(x), x);
}

template <class B>
B ceil_lanes(const B& x) {
  return xsimd::copysign(xsimd::ceil(x), x);
}

template <class B>
B trunc_lanes(const B& x) {
  return xsimd::copysign(xsimd::trunc(x), x);
}

template <class B>
B round_lanes(const B& x) {
  return xsimd::copysign(xsimd::nearbyint(x), x);
}

}  // namespace tg::kernels
