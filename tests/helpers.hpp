// Test helpers: random float64 leaves for gradcheck, and value comparisons.
#pragma once

#include <doctest/doctest.h>
#include "../core/xtensor.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <tapegrad/tapegrad.hpp>

namespace tg_test {

// True under AddressSanitizer (the asan and fuzz presets: gcc defines __SANITIZE_ADDRESS__, clang
// has the feature). There freed memory sits in quarantine and a Debug build runs the big cases
// some 70 times slower, so a few tests measure nothing or run their largest shapes once.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

// A float64 leaf requiring grad, uniform in [low, high).
inline tg::Tensor uniform64(const tg::Shape& shape, double low = -1.0, double high = 1.0) {
  return (tg::rand(shape, tg::kFloat64) * (high - low) + low).detach().set_requires_grad(true);
}

// x[i] = f(i) · scale over the flattened shape, as the golden scripts build their inputs
// (torch.arange(n).sin() * scale), float64.
inline tg::Tensor seq(const tg::Shape& shape, double (*f)(double), double scale = 1.0) {
  std::vector<double> values(tg::checked_numel("seq", shape));
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = f(double(i)) * scale;
  return tg::Tensor(values, shape);
}
inline double sin_(double v) { return std::sin(v); }
inline double cos_(double v) { return std::cos(v); }

// Values in ±[0.2, 1.2): away from the kinks of abs, relu, clamp and friends.
inline tg::Tensor away_from_zero64(const tg::Shape& shape) {
  tg::Tensor values = tg::rand(shape, tg::kFloat64) + 0.2;
  auto& v = values.values_mut<double>();
  for (std::size_t i = 0; i < v.size(); ++i)
    if (tg::random::uniform() < 0.5) v.data()[i] = -v.data()[i];
  return values.set_requires_grad(true);
}

inline std::vector<double> flat(const tg::Tensor& t) {
  const tg::Tensor as_double = t.to(tg::kFloat64);
  const auto& v = as_double.values<double>();
  return {v.begin(), v.end()};
}

// The first n values, float64 (golden scripts print a tensor's first few).
inline tg::Tensor first(const tg::Tensor& t, std::size_t n) {
  std::vector<double> v = t.to_vector<double>();
  v.resize(n);
  return tg::Tensor(v, {n});
}

inline double sum_of_squares(const tg::Tensor& t) { return tg::sum(t * t).item(); }

// Every value within tol of the expected list.
inline void check_close(const tg::Tensor& t, const std::vector<double>& expected, double tol = 1e-6) {
  const std::vector<double> got = flat(t);
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element ", i, ": got ", got[i], ", expected ", expected[i]);
    CHECK(std::abs(got[i] - expected[i]) <= tol);
  }
}

// NaN where expected is NaN, the same infinity, else within tol·max(1, |expected|).
inline void check_special_close(const tg::Tensor& t, const std::vector<double>& expected, double tol) {
  const std::vector<double> got = tg_test::flat(t);
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element ", i, ": got ", got[i], ", expected ", expected[i]);
    if (std::isnan(expected[i])) CHECK(std::isnan(got[i]));
    else if (std::isinf(expected[i])) CHECK(got[i] == expected[i]);
    else CHECK(std::abs(got[i] - expected[i]) <= tol * std::max(1.0, std::abs(expected[i])));
  }
}

// A golden case of an op of several inputs: its values y and each input's gradient, from PyTorch
// with out.backward(seq(out.shape, torch.cos)) (0.75 for a number).
struct GoldenCase {
  const char* name;
  std::function<tg::Tensor(const std::vector<tg::Tensor>&)> op;
  std::vector<tg::Tensor> inputs;
  std::vector<double> y;
  std::vector<std::vector<double>> grads;  // one per input
};

inline void check_golden(const std::vector<GoldenCase>& cases, double tol = 1e-12) {
  for (const GoldenCase& k : cases) {
    INFO(std::string(k.name));
    std::vector<tg::Tensor> leaves;
    for (const tg::Tensor& t : k.inputs) leaves.push_back(t.detach().set_requires_grad());
    const tg::Tensor y = k.op(leaves);
    y.backward(y.dim() == 0 ? tg::full({}, 0.75, tg::kFloat64) : seq(y.shape(), cos_));
    check_special_close(y, k.y, tol);
    REQUIRE(k.grads.size() == leaves.size());
    for (std::size_t i = 0; i < leaves.size(); ++i) check_special_close(leaves[i].grad(), k.grads[i], tol);
  }
}

// The golden scripts' parameter values (def fill(module) in tests/test_recurrent.cpp's script):
// the module in float64, parameter k (in named_parameters order) sin(k + 0.5·i) / 3 over its
// flattened values.
inline void fill(tg::nn::Module& module) {
  module.to(tg::kFloat64);
  tg::NoGradGuard no_grad;
  std::size_t k = 0;
  for (tg::Tensor& p : module.parameters()) {
    double* values = p.mutable_data<double>();
    for (std::size_t i = 0; i < p.numel(); ++i) values[i] = std::sin(double(k) + 0.5 * double(i)) / 3;
    ++k;
  }
}

// got within tol·max(1, max |expected|) of expected, value by value; `what` names the case.
inline void check_near(const tg::Tensor& got, const tg::Tensor& expected, double tol, const std::string& what) {
  REQUIRE(got.shape() == expected.shape());
  const std::vector<double> g = flat(got), e = flat(expected);
  double scale = 1;
  for (double v : e) scale = std::max(scale, std::abs(v));
  for (std::size_t i = 0; i < g.size(); ++i) {
    INFO(what, "[", i, "]: got ", g[i], ", expected ", e[i]);
    CHECK(std::abs(g[i] - e[i]) <= tol * scale);
  }
}

// Same dtype, shape and bits.
inline bool bitwise_equal(const tg::Tensor& a, const tg::Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  if (a.dtype() == tg::kFloat32)
    return std::equal(a.values<float>().begin(), a.values<float>().end(), b.values<float>().begin(),
                      [](float x, float y) { return std::memcmp(&x, &y, sizeof x) == 0; });
  return std::equal(a.values<double>().begin(), a.values<double>().end(), b.values<double>().begin(),
                    [](double x, double y) { return std::memcmp(&x, &y, sizeof x) == 0; });
}

// A normalisation's float32 results {y, dx, dweight, dbias} against float64 on the same inputs: y
// and dx within four float32 roundings of their largest value, dweight and dbias of the sums of
// their terms' magnitudes (per element: scale_weight, scale_bias). `what` names the case.
inline void check_normalization_float32(const std::vector<tg::Tensor>& f32, const std::vector<tg::Tensor>& f64,
                                        const std::vector<double>& scale_weight, const std::vector<double>& scale_bias,
                                        const std::string& what) {
  const double largest_y = tg::max(tg::abs(f64[0])).item(), largest_dx = tg::max(tg::abs(f64[1])).item();
  const char* names[] = {"y", "dx", "dweight", "dbias"};
  for (std::size_t i = 0; i < 4; ++i) {
    const std::vector<double> got = flat(f32[i]), exact = flat(f64[i]);
    for (std::size_t k = 0; k < got.size(); ++k) {
      const double scale = i == 0 ? largest_y : i == 1 ? largest_dx : i == 2 ? scale_weight[k] : scale_bias[k];
      INFO(what, " ", std::string(names[i]), "[", k, "]: float32 ", got[k], ", float64 ", exact[k]);
      CHECK(std::abs(got[k] - exact[k]) <= 4 * 0x1p-24 * scale);
    }
  }
}

}  // namespace tg_test

// gradcheck with its failure message shown by doctest.
#define CHECK_GRADCHECK(...)                       \
  do {                                             \
    const tg::GradcheckResult result_ = tg::gradcheck(__VA_ARGS__); \
    CHECK_MESSAGE(result_.ok, result_.message);    \
  } while (false)

namespace tg_test {

// gradcheck of a module's forward for the input and every parameter, in float64.
inline void check_module(tg::nn::Module& module, const tg::Tensor& input) {
  module.to(tg::kFloat64);
  std::vector<tg::Tensor> inputs{input};
  for (const tg::Tensor& p : module.parameters())
    if (p.requires_grad()) inputs.push_back(p);
  CHECK_GRADCHECK([&](const std::vector<tg::Tensor>& in) { return module.forward(in[0]); }, inputs);
}

}  // namespace tg_test
