// Forward values against PyTorch, and the error messages of bad input.
#include "helpers.hpp"
#include "../core/xtensor.hpp"
#include "../core/ops/linalg_gemm.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <unistd.h>
#include <xtensor/xmanipulation.hpp>

using tg::Tensor;
using tg_test::check_close;

namespace {

// Golden values from PyTorch 1.13 (/usr/bin/python3, float64):
//   x = torch.tensor([[-2.5, -0.3, 0.0, 0.7], [1.2, 3.4, -1.1, 0.05]], dtype=torch.float64)
//   F.gelu(x), F.gelu(x, approximate='tanh'), F.softplus(x), F.softplus(x, beta=2.0), torch.sigmoid(x),
//   F.leaky_relu(x, 0.1), torch.softmax(x, 1), torch.log_softmax(x, 0), torch.var(x, 1),
//   torch.var(x, unbiased=False), torch.std(x, 0)   -- each .flatten().tolist()
Tensor golden_input() { return Tensor({{-2.5, -0.3, 0.0, 0.7}, {1.2, 3.4, -1.1, 0.05}}, tg::kFloat64); }

// As PyTorch 1.13 (either approximation): gelu(inf) = inf, gelu(-inf) = -inf·0 = nan, and the
// gradient at ±inf is nan (inf·0); nan stays nan; ±0 give 0 (gradient 1/2); ±30 give 30 and 0
// (gradients 1, 0).
void check_gelu_special_values(const std::string& approximate) {
  INFO("approximate ", approximate);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor special =
      Tensor(std::vector<float>{inf, -inf, nan, 0.0f, -0.0f, 30.0f, -30.0f}, {7}).set_requires_grad(true);
  const Tensor special_y = tg::gelu(special, approximate);
  special_y.backward(tg::ones_like(special_y));
  const std::vector<float> sy = special_y.to_vector<float>(), sdx = special.grad().to_vector<float>();
  CHECK(sy[0] == inf);
  CHECK(std::isnan(sy[1]));
  CHECK(std::isnan(sy[2]));
  CHECK((sy[3] == 0.0f && sy[4] == 0.0f && sy[5] == 30.0f && sy[6] == 0.0f));
  CHECK((std::isnan(sdx[0]) && std::isnan(sdx[1]) && std::isnan(sdx[2])));
  CHECK((sdx[3] == 0.5f && sdx[4] == 0.5f && sdx[5] == 1.0f && sdx[6] == 0.0f));
}

}  // namespace

TEST_CASE("activations match PyTorch") {
  const Tensor x = golden_input();
  check_close(tg::gelu(x), {-0.015524163314440398, -0.1146265733433142, 0.0, 0.5306254434438489, 1.0619163957339501,
                            3.3988544404966987, -0.1492326670410209, 0.025996940291918624}, 1e-12);
  check_close(tg::gelu(x, "tanh"), {-0.015084266089998577, -0.11462907645724074, 0.0, 0.5305701347051167,
                                    1.0617027691378647, 3.399094149016546, -0.14941895382548911, 0.025996938238622008},
              1e-12);
  check_close(tg::softplus(x), {0.07888973429254963, 0.5543552444685271, 0.6931471805599453, 1.103186048885458,
                                1.4632824673380311, 3.432828470424865, 0.2873353251154308, 0.7184596480132863}, 1e-12);
  check_close(tg::softplus(x, 2.0), {0.003357674244559034, 0.21874397524294284, 0.34657359027997264, 0.8102087049592255,
                                     1.2434180760769749, 3.4005565776802325, 0.05254165988434795, 0.3721983300367855},
              1e-12);
  check_close(tg::sigmoid(x), {0.07585818002124355, 0.425557483188341, 0.5, 0.6681877721681662, 0.7685247834990175,
                               0.9677045353015494, 0.24973989440488234, 0.5124973964842103}, 1e-12);
  check_close(tg::leaky_relu(x, 0.1), {-0.25, -0.03, 0.0, 0.7, 1.2, 3.4, -0.11, 0.05}, 1e-12);
  check_close(tg::relu(x), {0, 0, 0, 0.7, 1.2, 3.4, 0, 0.05}, 0);
}

// float32 gelu, forward and gradient, against x·Φ(x) and Φ(x) + x·φ(x) in double with
// Φ(x) = erfc(-x/√2)/2 (exact in the negative tail, where (1 + erf)/2 cancels): every x from -9 to
// 9 in steps of 1/128 (every batch position and both erf branches), within 16 float32 roundings
// of the terms' magnitudes (the erfc polynomial alone is up to 9 off in the tail; PyTorch's float32
// gelu(-5) is 4% off); and the special values.
TEST_CASE("gelu in float32: forward and gradient close to the exact values, tails included") {
  std::vector<float> xs;
  for (int k = -9 * 128; k <= 9 * 128; ++k) xs.push_back(float(k) / 128.0f);
  const Tensor x = Tensor(xs, {xs.size()}).set_requires_grad(true);
  const Tensor y = tg::gelu(x);
  y.backward(tg::ones_like(y));
  // With a gradient to come, the forward writes the slope too: the values are the same bits.
  CHECK(tg_test::bitwise_equal(y, tg::gelu(x.detach())));
  const std::vector<float> got_y = y.to_vector<float>(), got_dx = x.grad().to_vector<float>();
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const double v = xs[i], cdf = 0.5 * std::erfc(-v / std::sqrt(2.0));
    const double pdf_term = v * std::exp(-0.5 * v * v) / std::sqrt(2.0 * M_PI);
    INFO("x = ", v, ": gelu ", got_y[i], " (exact ", v * cdf, "), gradient ", got_dx[i], " (exact ", cdf + pdf_term,
         ")");
    CHECK(std::abs(double(got_y[i]) - v * cdf) <= 16 * 0x1p-24 * std::abs(v * cdf));
    CHECK(std::abs(double(got_dx[i]) - (cdf + pdf_term)) <= 16 * 0x1p-24 * (cdf + std::abs(pdf_term)));
  }
  check_gelu_special_values("none");
}

// float32 pow with a general exponent is within 0.51 ulp of std::pow in double (it goes through
// double, and rounds once): xsimd's float pow was off by 7 ulps for x^1.5 over [0, 10] and by 110 near 1e20. A
// number exponent is kept a double, as PyTorch's: torch.tensor([1e-21]) ** 1.7 is 1.9952623e-36,
// std::pow(1e-21f, 1.7) rounded, not the 1.9952576e-36 of the exponent 1.7f. Bases of every binade
// (subnormals too) and both signs: a negative base gives NaN for a fractional exponent and the sign
// of an odd one; results that overflow to inf or round to a subnormal or 0. (x^2 and x^3 are x·x
// and x·x·x, as PyTorch takes them: two roundings.)
TEST_CASE("pow in float32 is within half an ulp for any exponent, a number or a tensor, small and large bases") {
  std::vector<float> bases, exponents;
  for (int k = 0; k < 6000; ++k) {
    const float base = std::ldexp(1.0f + float(k % 97) / 97.0f, k % 277 - 149);  // 2^-149 .. 2^127
    bases.push_back(k % 5 == 4 ? -base : base);
    exponents.push_back(k % 7 == 0 ? float(k % 9 - 4) : -3.0f + float(k % 61) / 10.0f);  // -4 .. 4, integers too
  }
  const Tensor base = Tensor(bases, {bases.size()}), exponent = Tensor(exponents, {exponents.size()});
  auto within_ulp = [](float got, double exact) {
    const float rounded = float(exact);
    if (std::isnan(exact)) return std::isnan(got);
    return std::isinf(rounded) ? got == rounded
                               : std::abs(double(got) - exact) <= 0.51 * std::abs(std::nextafter(rounded, INFINITY) - rounded);
  };
  for (double e : {1.5, -1.5, 1.7, 2.5, -0.3, 0.25, -3.0, 4.0, -5.0, 7.0, 0.01, 30.5, -100.0, 1e-7}) {
    const std::vector<float> got = tg::pow(base, e).to_vector<float>();
    for (std::size_t i = 0; i < bases.size(); ++i) {  // the exponent as given, a double, as PyTorch's
      INFO("pow(", bases[i], ", ", e, ") = ", got[i], ", exactly ", std::pow(double(bases[i]), e));
      CHECK(within_ulp(got[i], std::pow(double(bases[i]), e)));
    }
  }
  const std::vector<float> got = tg::pow(base, exponent).to_vector<float>();
  for (std::size_t i = 0; i < bases.size(); ++i) {
    INFO("pow(", bases[i], ", ", exponents[i], ") = ", got[i]);
    CHECK(within_ulp(got[i], std::pow(double(bases[i]), double(exponents[i]))));
  }
}

// float32 exp is within 1.01 ulp of exp in double over its whole range, its tails included: e^x
// is a float from -103.97 (a subnormal) to 88.72 (near FLT_MAX), where xsimd::exp had given 0
// below -88.38 and inf above 88.38 (PyTorch: torch.exp(torch.tensor([88.7, -100.])) is
// [3.3260e+38, 3.7835e-44]). Every 613th float of [-120, 120] and the special values; exp also
// feeds softmax, sigmoid and the losses, whose own tests hold it to their tolerances. A library
// built without AVX-512 (the asan build, no -march=native) keeps xsimd::exp: 2 ulps on [-87, 88],
// its tails unchecked.
TEST_CASE("exp in float32 is within an ulp (2 without AVX-512) over its whole range, subnormals and overflow included") {
#if defined(TAPEGRAD_TEST_NATIVE) && defined(__x86_64__)
  const bool own_kernel = __builtin_cpu_supports("avx512f");
#else
  const bool own_kernel = false;
#endif
  // The fallback (xsimd's exp; beyond ±87, e^(x/2) squared) is within 2.01 ulp.
  const double ulps = own_kernel ? 1.01 : 2.5;
  std::vector<float> xs;
  for (std::uint32_t bits = 0; bits < 0xFFFFFFFFu - 613; bits += 613) {
    float x;
    std::memcpy(&x, &bits, sizeof x);
    if (std::abs(x) <= 120.0f) xs.push_back(x);
  }
  for (float x : {88.72283f, 88.72284f, 88.7f, -87.33654f, -103.27893f, -103.97208f, -104.0f, -104.00001f, -200.0f, -1e30f, 0.0f, -0.0f, 1e-30f})
    xs.push_back(x);
  const std::vector<float> got = tg::exp(Tensor(xs, {xs.size()})).to_vector<float>();
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const double exact = std::exp(double(xs[i]));
    const float rounded = float(exact);
    INFO("exp(", xs[i], ") = ", got[i], ", exactly ", exact);
    if (std::isinf(rounded) || rounded == 0.0f)
      CHECK(got[i] == rounded);
    else
      CHECK(std::abs(double(got[i]) - exact) <= ulps * std::abs(std::nextafter(rounded, INFINITY) - rounded));
  }
  const std::vector<float> special = tg::exp(Tensor(std::vector<float>{NAN, INFINITY, -INFINITY}, {3})).to_vector<float>();
  CHECK(std::isnan(special[0]));
  CHECK(special[1] == INFINITY);
  CHECK(special[2] == 0.0f);
}

// float32 gelu(x, "tanh"), forward and gradient, against PyTorch's formula in double:
//   ½·x·(1 + t), t = tanh(√(2/π)·(x + 0.044715·x³)),  d/dx = ½·(1 + t) + ½·x·(1 - t²)·√(2/π)·(1 + 3·0.044715·x²)
// for every x from -9 to 9 in steps of 1/128, within 16 float32 roundings of the terms' sizes
// (1 + t and 1 - t² cancel in the tails, in PyTorch's float32 as here); and the special values.
TEST_CASE("gelu tanh in float32: forward and gradient close to the formula, tails included") {
  std::vector<float> xs;
  for (int k = -9 * 128; k <= 9 * 128; ++k) xs.push_back(float(k) / 128.0f);
  const Tensor x = Tensor(xs, {xs.size()}).set_requires_grad(true);
  const Tensor y = tg::gelu(x, "tanh");
  y.backward(tg::ones_like(y));
  CHECK(tg_test::bitwise_equal(y, tg::gelu(x.detach(), "tanh")));
  const std::vector<float> got_y = y.to_vector<float>(), got_dx = x.grad().to_vector<float>();
  const double k = std::sqrt(2.0 / M_PI), c = 0.044715;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const double v = xs[i], t = std::tanh(k * (v + c * v * v * v));
    const double want_y = 0.5 * v * (1 + t), want_dx = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * k * (1 + 3 * c * v * v);
    INFO("x = ", v, ": gelu ", got_y[i], " (formula ", want_y, "), gradient ", got_dx[i], " (formula ", want_dx, ")");
    CHECK(std::abs(double(got_y[i]) - want_y) <= 16 * 0x1p-24 * (1 + std::abs(v)));
    CHECK(std::abs(double(got_dx[i]) - want_dx) <= 16 * 0x1p-24 * (1 + std::abs(v) * (1 + 3 * c * v * v)));
  }
  check_gelu_special_values("tanh");
}

// float32 softplus (any beta, the default threshold 20) and its gradient σ(beta·x), and the fused
// binary_cross_entropy_with_logits, against log1p and exp in double of the same float beta·x:
// every x from -40 to 40 in steps of 1/128 (every batch position; the far negative tail, where
// log(1 + e^z) rounds to 0 and only log1p keeps e^z; both sides of the threshold), within 4
// float32 roundings of the terms' magnitudes. The log1p of [0, 1] (log1p_unit, a polynomial in
// float32) is within 1.3 ulp and exp within 1; the double path keeps xsimd::log1p.
TEST_CASE("softplus and binary_cross_entropy_with_logits in float32: close to log1p in double, tails included") {
  std::vector<float> xs;
  for (int k = -40 * 128; k <= 40 * 128; ++k) xs.push_back(float(k) / 128.0f);
  const double ulp = 0x1p-24;
  for (double beta : {1.0, 2.0, 0.5, -1.5}) {
    INFO("beta = ", beta);
    const Tensor x = Tensor(xs, {xs.size()}).set_requires_grad(true);
    const Tensor y = tg::softplus(x, beta);
    y.backward(tg::ones_like(y));
    const std::vector<float> got_y = y.to_vector<float>(), got_dx = x.grad().to_vector<float>();
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const double z = double(xs[i] * float(beta));  // PyTorch multiplies in float32 too
      const double want = z > 20.0 ? xs[i] : (std::max(z, 0.0) + std::log1p(std::exp(-std::abs(z)))) / beta;
      const double slope = z > 20.0 ? 1.0 : 1.0 / (1.0 + std::exp(-z));
      INFO("x = ", xs[i], ": softplus ", got_y[i], " (", want, "), gradient ", got_dx[i], " (", slope, ")");
      CHECK(std::abs(got_y[i] - want) <= 4 * ulp * std::abs(want));
      CHECK(std::abs(got_dx[i] - slope) <= 4 * ulp * slope);
    }
  }
  for (float target : {0.0f, 0.25f, 1.0f}) {
    INFO("target = ", target);
    const Tensor x = Tensor(xs, {xs.size()}), t = tg::full({xs.size()}, target);
    const std::vector<float> fused = tg::binary_cross_entropy_with_logits(x, t, tg::Reduction::None).to_vector<float>();
    // A pos_weight (of ones) takes the loss composed from ops instead of the fused kernel.
    const std::vector<float> composed =
        tg::binary_cross_entropy_with_logits(x, t, tg::Reduction::None, Tensor(), tg::ones({1})).to_vector<float>();
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const double v = xs[i], linear = (1.0 - target) * v;
      const double tail = std::log1p(std::exp(-std::abs(v))) + std::max(-v, 0.0);
      INFO("x = ", v, ": loss ", fused[i], " and ", composed[i], " (", linear + tail, ")");
      CHECK(std::abs(fused[i] - (linear + tail)) <= 4 * ulp * (std::abs(linear) + tail));
      CHECK(std::abs(composed[i] - (linear + tail)) <= 4 * ulp * (std::abs(linear) + tail));
    }
  }
}

TEST_CASE("softmax and log_softmax match PyTorch and are stable for large inputs") {
  const Tensor x = golden_input();
  check_close(tg::softmax(x, 1), {0.02139493355425125, 0.19308956414661363, 0.26064364881431806, 0.524871853484817,
                                  0.09576792799311529, 0.8643068429507005, 0.009601581726318469, 0.030323647329865824},
              1e-12);
  check_close(tg::log_softmax(x, 0), {-3.724422845933779, -3.7244228459337787, -0.28733532511543075, -0.4200553357027152,
                                      -0.024422845933779143, -0.024422845933779143, -1.3873353251154308,
                                      -1.0700553357027152},
              1e-12);
  // torch.softmax(torch.tensor([[1000., 1001., 1002.]]), 1) in float32: no overflow.
  const Tensor big({{1000.0, 1001.0, 1002.0}});
  check_close(tg::softmax(big, 1), {0.09003057330846786, 0.2447284758090973, 0.6652409434318542}, 1e-6);
  check_close(tg::log_softmax(big, 1), {-2.4076058864593506, -1.4076058864593506, -0.40760594606399536}, 1e-5);
}

// log_softmax over the last dim with a gradient to come keeps softmax(x) for its backward: the
// same output bits as without, and a gradient equal to g - softmax(x)·Σg in float64 and within a
// few float32 roundings of it in float32 (rows of
// every length class: shorter than a batch, one batch, with a tail, long), a -inf entry included.
TEST_CASE("log_softmax with a gradient to come: the same values, and its gradient from the kept probabilities") {
  tg::manual_seed(31);
  for (std::size_t n : {1, 7, 16, 33, 1000}) {
    Tensor x64 = tg::randn({3, n}, tg::kFloat64) * 4.0;
    if (n > 1)  // a -inf first column
      x64 = tg::cat({tg::full({3, 1}, -std::numeric_limits<double>::infinity(), tg::kFloat64),
                     tg::narrow(x64, 1, 1, std::int64_t(n) - 1)}, 1);
    const Tensor g64 = tg::randn({3, n}, tg::kFloat64);
    auto run = [&](tg::DType dtype) {
      const Tensor x = x64.to(dtype).detach().set_requires_grad(true);
      const Tensor y = tg::log_softmax(x, -1);
      y.backward(g64.to(dtype));
      CHECK(tg_test::bitwise_equal(y, tg::log_softmax(x.detach(), -1)));
      return x.grad();
    };
    // dx = g - softmax(x)·Σg, from softmax in float64
    const Tensor reference = g64 - tg::softmax(x64, -1) * tg::sum(g64, {-1}, true);
    check_close(run(tg::kFloat64), tg_test::flat(reference), 1e-12);
    const std::vector<double> got = tg_test::flat(run(tg::kFloat32)), exact = tg_test::flat(reference);
    const double scale = tg::max(tg::abs(g64)).item() * double(n);
    for (std::size_t k = 0; k < got.size(); ++k) {
      INFO("n = ", n, ", entry ", k, ": float32 ", got[k], ", float64 ", exact[k]);
      CHECK(std::abs(got[k] - exact[k]) <= 4 * 0x1p-24 * scale);
    }
  }
}

// The row kernels (softmax, log_softmax and cross_entropy over the last dim) take their rows a
// block at a time, phase by phase (kernels::exp_rows): every row must come out as if it were
// alone, whatever block it falls in, and agree with the strided path in float64 (softmax over dim
// 0 of the transpose: scalar std::exp, no blocks) within float32's error: x - max rounds (a
// relative error of |x - max| roundings in e^(x - max)) and the sum adds about n/16 terms per lane.
// Row lengths under (one run of the block's values), at and over a batch and over the block's
// 4 KB; row counts under, at and over the 64-row block; a row of -inf (NaN out, as in PyTorch), a
// row with a -inf entry, a row of large values and one whose first value is far below the rest.
TEST_CASE("softmax, log_softmax and cross_entropy rows in blocks: each row as if alone, and near float64") {
  tg::manual_seed(7);
  const float inf = std::numeric_limits<float>::infinity();
  for (std::size_t n : {1, 3, 7, 15, 16, 17, 64, 100, 1000, 4097})
    for (std::size_t rows : {1, 5, 64, 65, 131}) {
      CAPTURE(n);
      CAPTURE(rows);
      Tensor x = tg::randn({rows, n}) * 6.0;
      auto& v = x.values_mut<float>();
      if (rows > 1) std::fill(v.data() + n, v.data() + 2 * n, -inf);  // row 1: all -inf
      if (rows > 2 && n > 1) v.data()[2 * n + n / 2] = -inf;           // row 2: one -inf
      if (rows > 3)
        for (std::size_t k = 0; k < n; ++k) v.data()[3 * n + k] += 1000.0f;
      if (rows > 4 && n > 1) v.data()[4 * n] = -200.0f;  // row 4: e^(x - first) would overflow
      const Tensor labels = tg::randint(0, std::int64_t(n), {rows});
      const Tensor y = tg::softmax(x, -1), log_y = tg::log_softmax(x, -1);
      const Tensor loss = tg::cross_entropy(x, labels, {.reduction = tg::Reduction::None});
      for (std::size_t r = 0; r < rows; ++r) {
        const Tensor row = tg::narrow(x, 0, std::int64_t(r), 1);
        CHECK(tg_test::bitwise_equal(tg::narrow(y, 0, std::int64_t(r), 1), tg::softmax(row, -1)));
        CHECK(tg_test::bitwise_equal(tg::narrow(log_y, 0, std::int64_t(r), 1), tg::log_softmax(row, -1)));
      }
      const Tensor strided = x.to(tg::kFloat64).t();
      const std::vector<double> ref = tg_test::flat(tg::softmax(strided, 0).t());
      const std::vector<double> ref_log = tg_test::flat(tg::log_softmax(strided, 0).t());
      const std::vector<double> got = tg_test::flat(y), got_log = tg_test::flat(log_y);
      const std::vector<double> got_loss = tg_test::flat(loss);
      const std::vector<double> maxes = tg_test::flat(std::get<0>(tg::max(x, -1)));
      const std::vector<std::int64_t> label = labels.to_vector<std::int64_t>();
      auto roundings = [&](std::size_t k) { return std::abs(v.data()[k] - maxes[k / n]) + double(n) / 16 + 8; };
      for (std::size_t k = 0; k < got.size(); ++k) {
        INFO("entry ", k, ": softmax ", got[k], " / ", ref[k], ", log_softmax ", got_log[k], " / ", ref_log[k]);
        if (rows > 1 && k / n == 1) {  // the row of -inf
          CHECK((std::isnan(got[k]) && std::isnan(ref[k]) && std::isnan(got_log[k]) && std::isnan(ref_log[k])));
          continue;
        }
        const double u = 0x1p-24 * roundings(k);
        CHECK((got[k] == ref[k] || std::abs(got[k] - ref[k]) <= u * ref[k] + 1e-37));  // (== for e^-inf)
        CHECK((got_log[k] == ref_log[k] ||
               std::abs(got_log[k] - ref_log[k]) <= u + 0x1p-24 * std::abs(ref_log[k])));
      }
      for (std::size_t r = 0; r < rows; ++r) {
        if (rows > 1 && r == 1) continue;
        const std::size_t k = r * n + std::size_t(label[r]);
        INFO("row ", r, ": cross_entropy ", got_loss[r], ", -log_softmax ", -ref_log[k]);
        CHECK(std::abs(got_loss[r] + ref_log[k]) <= 0x1p-24 * (roundings(k) + std::abs(ref_log[k])));
      }
    }
}

// Over a dim with values `inner` apart (softmax(x, 0), the channels of (N, C, H, W)) the kernels
// run down slabs of columns. Against the row kernels on the moved dim in float64: the forward, and
// the backward against its formula (softmax: y ⊙ (g − Σ g⊙y); log_softmax: g − e^y ⊙ Σ g). Inner
// sizes under, at and over a SIMD batch and over a slab (600 columns of 300 rows are two slabs in
// float32, three in float64; 2100 columns, two slabs at most 2048 wide, whatever the rows), reduced sizes of 1, 3 and 300, one and three outer blocks, a column
// of -inf (NaN, as PyTorch), a column with one -inf and a column of large values; float32 within
// its rounding of float64; the same bits with 1 and 2 threads.
TEST_CASE("softmax and log_softmax over a dim that is not the last: slabs of columns, forward and backward") {
  tg::manual_seed(17);
  const double inf = std::numeric_limits<double>::infinity();
  const int threads = tg::get_num_threads();
  for (std::size_t outer : {1, 3})
    for (std::size_t reduced : {1, 3, 300})
      for (std::size_t inner : {2, 7, 16, 17, 33, 600, 2100}) {
        CAPTURE(outer);
        CAPTURE(reduced);
        CAPTURE(inner);
        Tensor x64 = tg::randn({outer, reduced, inner}, tg::kFloat64) * 6.0;
        auto& v = x64.values_mut<double>();
        for (std::size_t o = 0; o < outer; ++o) {
          double* block = v.data() + o * reduced * inner;
          for (std::size_t r = 0; r < reduced; ++r) {
            block[r * inner] = -inf;         // column 0: all -inf
            block[r * inner + 1] += 1000.0;  // column 1: large
          }
          if (reduced > 1 && inner > 2) block[inner + 2] = -inf;  // column 2: one -inf
        }
        x64 = x64.to(tg::kFloat32).to(tg::kFloat64);  // the float32 run's own inputs
        const Tensor g64 = tg::randn({outer, reduced, inner}, tg::kFloat64);
        auto moved = [](const Tensor& t) { return t.permute({0, 2, 1}); };  // the dim last, rows
        const Tensor ref = moved(tg::softmax(moved(x64), -1)), ref_log = moved(tg::log_softmax(moved(x64), -1));
        const Tensor ref_dx = ref * (g64 - tg::sum(g64 * ref, {1}, true));
        const Tensor ref_log_dx = g64 - tg::exp(ref_log) * tg::sum(g64, {1}, true);
        for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
          const std::string name = tg::dtype_name(dtype);
          CAPTURE(name);
          // float32: e^(x - max) is off by |x - max| roundings (at most |log y|), the sum by `reduced`.
          const double u = dtype == tg::kFloat64 ? 1e-12 : 0x1p-24 * (double(reduced) + 8);
          auto run = [&](int thread_count, bool log) {
            tg::set_num_threads(thread_count);
            const Tensor x = x64.to(dtype).detach().set_requires_grad(true);
            const Tensor y = log ? tg::log_softmax(x, 1) : tg::softmax(x, 1);
            y.backward(g64.to(dtype));
            return std::pair{y.detach(), x.grad()};
          };
          for (bool log : {false, true}) {
            CAPTURE(log);
            const auto [y, dx] = run(1, log);
            const auto [y2, dx2] = run(2, log);
            CHECK(tg_test::bitwise_equal(y, y2));
            CHECK(tg_test::bitwise_equal(dx, dx2));
            const std::vector<double> got = tg_test::flat(y), want = tg_test::flat(log ? ref_log : ref);
            const std::vector<double> got_dx = tg_test::flat(dx), want_dx = tg_test::flat(log ? ref_log_dx : ref_dx);
            const double g_scale = tg::max(tg::abs(g64)).item() * double(reduced);
            for (std::size_t k = 0; k < got.size(); ++k) {
              INFO("entry ", k, ": ", got[k], " / ", want[k], ", gradient ", got_dx[k], " / ", want_dx[k]);
              if (k % inner == 0) {  // the column of -inf
                CHECK((std::isnan(got[k]) && std::isnan(want[k])));
                continue;
              }
              const double log_y = log ? want[k] : std::log(want[k]);
              const double bound = log ? u * (std::abs(want[k]) + 8.0) : u * (1.0 - log_y) * want[k];
              CHECK((got[k] == want[k] || std::abs(got[k] - want[k]) <= bound + 1e-300));
              CHECK(std::abs(got_dx[k] - want_dx[k]) <= u * g_scale + 1e-300);
            }
          }
        }
      }
  tg::set_num_threads(threads);
}

// Zeros, infinities, NaN and ties, forward and gradient (upstream ones), in both dtypes, against
// PyTorch 1.13. Each case's expected y and dx are what this prints (float64; the float32 ones
// agree within float32 rounding, and in the sign of a zero, which is not compared):
//   x = torch.tensor(xs, dtype=dt, requires_grad=True); y = f(x); y.backward(torch.ones_like(y))
//   print(y.tolist(), x.grad.tolist())
// with f the same op (torch.relu, torch.clamp(x, -1, 1), x ** 0.5, torch.pow(torch.zeros_like(x), x),
// torch.softmax(x, 0), F.cross_entropy(x.reshape(1, 3), torch.tensor([0])), x.max(), x.std(),
// F.max_pool2d, F.l1_loss, x.var(1), ...).
// Before: relu, clamp and maximum turned NaN into a number; xsimd's pow gave 0 for 0^0 and 0^-1
// and NaN for (-inf)^1.5; x^0.5 and x^-1 had gradient 0 at 0; a +inf logit gave 0s and one NaN
// from softmax; max() sent all of its gradient to the first of tied values; std of equal values
// had a NaN gradient; l1_loss's gradient at NaN was NaN; var's gradient through an infinity was NaN
// for the whole row; max pooling took a window's first NaN, PyTorch its last.
TEST_CASE("special values (zeros, infinities, NaN, ties) give PyTorch's results and gradients, both dtypes") {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor target0(std::vector<std::int64_t>{0}, {1});
  tg::Pool2dParams pool2, pool3;  // F.max_pool2d(x, 2, 2) and F.max_pool2d(x, (1, 3), (1, 2), (0, 1))
  pool2.kernel = pool2.stride = {2, 2};
  pool3.kernel = {1, 3};
  pool3.stride = {1, 2};
  pool3.padding = {0, 1};
  struct Case {
    const char* name;
    std::vector<double> x;
    std::function<Tensor(const Tensor&)> op;
    std::vector<double> y, dx;
  };
  const std::vector<Case> cases = {
      {"relu", {-inf, -2.0, -0.5, -0.0, 0.0, 0.5, 2.0, inf, nan},
       [&](const Tensor& x) { return tg::relu(x); },
       {0.0, 0.0, 0.0, -0.0, 0.0, 0.5, 2.0, inf, nan},
       {0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0}},
      {"clamp", {-inf, -2.0, -0.5, -0.0, 0.0, 0.5, 2.0, inf, nan},
       [&](const Tensor& x) { return tg::clamp(x, -1.0, 1.0); },
       {-1.0, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 1.0, nan},
       {0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0}},
      {"clamp_min", {-inf, -2.0, -0.5, -0.0, 0.0, 0.5, 2.0, inf, nan},
       [&](const Tensor& x) { return tg::clamp(x, 0.0, std::nullopt); },
       {0.0, 0.0, 0.0, -0.0, 0.0, 0.5, 2.0, inf, nan},
       {0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0}},
      {"abs", {-inf, -2.0, -0.5, -0.0, 0.0, 0.5, 2.0, inf, nan},
       [&](const Tensor& x) { return tg::abs(x); },
       {inf, 2.0, 0.5, 0.0, 0.0, 0.5, 2.0, inf, nan},
       {-1.0, -1.0, -1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0}},
      {"maximum", {-inf, -2.0, -0.5, -0.0, 0.0, 0.5, 2.0, inf, nan},
       [&](const Tensor& x) { return tg::maximum(x, tg::zeros_like(x)); },
       {0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 2.0, inf, nan},
       {0.0, 0.0, 0.0, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0}},
      {"minimum", {-inf, -2.0, -0.5, -0.0, 0.0, 0.5, 2.0, inf, nan},
       [&](const Tensor& x) { return tg::minimum(x, tg::zeros_like(x)); },
       {-inf, -2.0, -0.5, 0.0, 0.0, 0.0, 0.0, 0.0, nan},
       {1.0, 1.0, 1.0, 0.5, 0.5, 0.0, 0.0, 0.0, 1.0}},
      {"maximum_self", {-inf, -2.0, -0.5, -0.0, 0.0, 0.5, 2.0, inf, nan},
       [&](const Tensor& x) { return tg::maximum(x, x); },
       {-inf, -2.0, -0.5, -0.0, 0.0, 0.5, 2.0, inf, nan},
       {1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0}},
      {"pow_0", {-inf, -2.0, -0.5, -0.0, 0.0, 0.5, 2.0, inf, nan},
       [&](const Tensor& x) { return tg::pow(x, 0.0); },
       {1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0},
       {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0}},
      {"pow_half", {-inf, -2.0, -0.5, -0.0, 0.0, 0.5, 2.0, inf, nan},
       [&](const Tensor& x) { return tg::pow(x, 0.5); },
       {nan, nan, nan, -0.0, 0.0, 0.7071067811865476, 1.4142135623730951, inf, nan},
       {nan, nan, nan, -inf, inf, 0.7071067811865475, 0.35355339059327373, 0.0, nan}},
      {"pow_m1", {-inf, -2.0, -0.5, -0.0, 0.0, 0.5, 2.0, inf, nan},
       [&](const Tensor& x) { return tg::pow(x, -1.0); },
       {-0.0, -0.5, -2.0, -inf, inf, 2.0, 0.5, 0.0, nan},
       {-0.0, -0.25, -4.0, -inf, -inf, -4.0, -0.25, -0.0, nan}},
      {"pow_m2", {-inf, -2.0, -0.5, -0.0, 0.0, 0.5, 2.0, inf, nan},
       [&](const Tensor& x) { return tg::pow(x, -2.0); },
       {0.0, 0.25, 4.0, inf, inf, 4.0, 0.25, 0.0, nan},
       {0.0, 0.25, 16.0, inf, -inf, -16.0, -0.25, -0.0, nan}},
      {"pow_1p5", {-inf, -2.0, -0.5, -0.0, 0.0, 0.5, 2.0, inf, nan},
       [&](const Tensor& x) { return tg::pow(x, 1.5); },
       {inf, nan, nan, 0.0, 0.0, 0.35355339059327373, 2.8284271247461903, inf, nan},
       {nan, nan, nan, -0.0, 0.0, 1.0606601717798214, 2.121320343559643, inf, nan}},
      {"pow_m1p5", {-inf, -2.0, -0.5, -0.0, 0.0, 0.5, 2.0, inf, nan},
       [&](const Tensor& x) { return tg::pow(x, -1.5); },
       {0.0, nan, nan, inf, inf, 2.8284271247461903, 0.35355339059327373, 0.0, nan},
       {-0.0, nan, nan, -inf, -inf, -8.485281374238571, -0.2651650429449553, -0.0, nan}},
      {"pow_3", {-inf, -2.0, -0.5, -0.0, 0.0, 0.5, 2.0, inf, nan},
       [&](const Tensor& x) { return tg::pow(x, 3.0); },
       {-inf, -8.0, -0.125, -0.0, 0.0, 0.125, 8.0, inf, nan},
       {inf, 12.0, 0.75, 0.0, 0.0, 0.75, 12.0, inf, nan}},
      {"pow_zero_base", {-inf, -2.0, -0.5, -0.0, 0.0, 0.5, 2.0, inf, nan},
       [&](const Tensor& x) { return tg::pow(tg::zeros_like(x), x); },
       {inf, inf, inf, 1.0, 1.0, 0.0, 0.0, 0.0, nan},
       {-inf, -inf, -inf, 0.0, 0.0, 0.0, 0.0, 0.0, nan}},
      {"pow_one_base", {-inf, -2.0, -0.5, -0.0, 0.0, 0.5, 2.0, inf, nan},
       [&](const Tensor& x) { return tg::pow(tg::ones_like(x), x); },
       {1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0},
       {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0}},
      {"pow_self", {-inf, -2.0, -0.5, -0.0, 0.0, 0.5, 2.0, inf, nan},
       [&](const Tensor& x) { return tg::pow(x, x); },
       {0.0, 0.25, nan, 1.0, 1.0, 0.7071067811865475, 4.0, inf, nan},
       {nan, nan, nan, 0.0, 0.0, 0.21697770945227401, 6.772588722239782, inf, nan}},
      {"pow_neg_one_base", {-inf, -2.0, -0.5, -0.0, 0.0, 0.5, 2.0, inf, nan},
       [&](const Tensor& x) { return tg::pow(tg::full_like(x, -1.0), x); },
       {1.0, 1.0, nan, 1.0, 1.0, nan, 1.0, 1.0, nan},
       {nan, nan, nan, nan, nan, nan, nan, nan, nan}},
      {"softmax_inf", {1.0, 2.0, inf},
       [&](const Tensor& x) { return tg::softmax(x, 0); },
       {nan, nan, nan},
       {nan, nan, nan}},
      {"softmax_all_ninf", {-inf, -inf},
       [&](const Tensor& x) { return tg::softmax(x, 0); },
       {nan, nan},
       {nan, nan}},
      {"softmax_ninf", {1.0, -inf, 2.0},
       [&](const Tensor& x) { return tg::softmax(x, 0); },
       {0.26894142136999516, 0.0, 0.7310585786300049},
       {0.0, 0.0, 0.0}},
      {"log_softmax_inf", {1.0, inf},
       [&](const Tensor& x) { return tg::log_softmax(x, 0); },
       {nan, nan},
       {nan, nan}},
      {"log_softmax_ninf", {1.0, -inf, 2.0},
       [&](const Tensor& x) { return tg::log_softmax(x, 0); },
       {-1.3132616875182228, -inf, -0.31326168751822286},
       {0.1931757358900147, 1.0, -1.1931757358900148}},
      {"cross_entropy_inf", {1.0, inf, 2.0},
       [&](const Tensor& x) { return tg::cross_entropy(x.reshape({1, 3}), target0); },
       {nan},
       {nan, nan, nan}},
      {"cross_entropy_ninf", {1.0, -inf, 2.0},
       [&](const Tensor& x) { return tg::cross_entropy(x.reshape({1, 3}), target0); },
       {1.3132616875182228},
       {-0.7310585786300049, 0.0, 0.7310585786300049}},
      {"logsumexp_inf", {inf, 1.0},
       [&](const Tensor& x) { return tg::logsumexp(x, 0); },
       {inf},
       {nan, 0.0}},
      {"logsumexp_all_ninf", {-inf, -inf},
       [&](const Tensor& x) { return tg::logsumexp(x, 0); },
       {-inf},
       {nan, nan}},
      {"max_ties", {1.0, 3.0, 3.0, 2.0, 3.0},
       [&](const Tensor& x) { return tg::max(x); },
       {3.0},
       {0.0, 0.3333333333333333, 0.3333333333333333, 0.0, 0.3333333333333333}},
      {"min_ties", {1.0, 3.0, 1.0, 2.0},
       [&](const Tensor& x) { return tg::min(x); },
       {1.0},
       {0.5, 0.0, 0.5, 0.0}},
      {"max_nans", {1.0, nan, 3.0, nan},
       [&](const Tensor& x) { return tg::max(x); },
       {nan},
       {0.0, 0.5, 0.0, 0.5}},
      {"max_dim_ties", {1.0, 3.0, 3.0, 2.0},
       [&](const Tensor& x) { return std::get<0>(tg::max(x, 0)); },
       {3.0},
       {0.0, 1.0, 0.0, 0.0}},
      {"std_constant", {2.0, 2.0, 2.0},
       [&](const Tensor& x) { return tg::std(x); },
       {0.0},
       {0.0, 0.0, 0.0}},
      {"std_dim_constant_row", {2.0, 2.0, 1.0, 3.0},
       [&](const Tensor& x) { return tg::std(x.reshape({2, 2}), {1}); },
       {0.0, 1.4142135623730951},
       {0.0, 0.0, -0.7071067811865475, 0.7071067811865475}},
      {"max_pool2d_nans", {nan, nan, 1.0, nan, nan, 2.0, nan, 3.0},
       [&](const Tensor& x) { return tg::max_pool2d(x.reshape({1, 1, 2, 4}), pool2); },
       {nan, nan},
       {0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0}},
      {"max_pool2d_padded", {-inf, -inf, nan, 2.0, nan},
       [&](const Tensor& x) { return tg::max_pool2d(x.reshape({1, 1, 1, 5}), pool3); },
       {-inf, nan, nan},
       {1.0, 0.0, 1.0, 0.0, 1.0}},
      {"l1_loss", {0.5, nan, -3.0, 0.0},
       [&](const Tensor& x) { return tg::l1_loss(x, tg::zeros_like(x), tg::Reduction::Sum); },
       {nan},
       {1.0, 0.0, -1.0, 0.0}},
      {"var_dim_inf", {inf, 1.0, 3.0, 2.0},
       [&](const Tensor& x) { return tg::var(x.reshape({2, 2}), {1}); },
       {nan, 0.5},
       {nan, -inf, 1.0, -1.0}},
      {"var_all_inf", {1.0, -inf, 2.0},
       [&](const Tensor& x) { return tg::var(x, {}, false); },
       {nan},
       {inf, nan, inf}}
  };
  auto same = [](double got, double want, double tol) {
    if (std::isnan(want)) return std::isnan(got);
    if (std::isinf(want)) return got == want;
    return std::abs(got - want) <= tol * std::max(1.0, std::abs(want));
  };
  for (const Case& c : cases) {
    for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
      const double tol = dtype == tg::kFloat32 ? 1e-6 : 1e-12;
      Tensor x = Tensor(c.x, {c.x.size()}).to(dtype).detach().set_requires_grad();
      const Tensor y = c.op(x);
      y.backward(tg::ones_like(y));
      const std::vector<double> got_y = tg_test::flat(y), got_dx = tg_test::flat(x.grad());
      REQUIRE(got_y.size() == c.y.size());
      REQUIRE(got_dx.size() == c.dx.size());
      for (std::size_t i = 0; i < c.y.size(); ++i) {
        INFO(c.name, " ", tg::dtype_name(dtype), " x = ", c.x[i], ": y ", got_y[i], ", PyTorch ", c.y[i]);
        CHECK(same(got_y[i], c.y[i], tol));
      }
      for (std::size_t i = 0; i < c.dx.size(); ++i) {
        INFO(c.name, " ", tg::dtype_name(dtype), " x = ", c.x[i], ": dx ", got_dx[i], ", PyTorch ", c.dx[i]);
        CHECK(same(got_dx[i], c.dx[i], tol));
      }
    }
  }
}

// Conventions PyTorch 1.13 defines for these calls (each checked there): x.narrow(1, -2, 2) counts
// start from the end; torch.zeros(2, 0).logsumexp(1) is [-inf, -inf]; x.clamp(3, 1) sets every
// value to max, with gradient 0.
TEST_CASE("narrow from a negative start, logsumexp over an empty dim and clamp with min > max follow PyTorch") {
  const Tensor x = tg::arange(6.0, tg::kFloat64).reshape({2, 3}).set_requires_grad();
  check_close(tg::narrow(x, 1, -2, 2), {1, 2, 4, 5}, 0);
  check_close(tg::narrow(x, -1, -3, 1), {0, 3}, 0);
  check_close(tg::narrow(x, 0, -1, 1), {3, 4, 5}, 0);
  tg::narrow(x, 1, -1, 1).backward(tg::ones({2, 1}, tg::kFloat64));
  check_close(x.grad(), {0, 0, 1, 0, 0, 1}, 0);
  CHECK_THROWS_WITH_AS(tg::narrow(x, 1, -4, 1),
                       "narrow: start -4 and length 1 are out of range for dim 1 of size 3 in [2, 3]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::narrow(x, 1, -1, 2),
                       "narrow: start -1 and length 2 are out of range for dim 1 of size 3 in [2, 3]", tg::Error);

  const double inf = std::numeric_limits<double>::infinity();
  for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
    const Tensor empty = tg::zeros({2, 0, 3}, dtype).set_requires_grad();
    const Tensor last = tg::logsumexp(tg::zeros({2, 0}, dtype), 1);
    CHECK(last.shape() == tg::Shape{2});
    CHECK(tg_test::flat(last) == std::vector<double>(2, -inf));
    const Tensor middle = tg::logsumexp(empty, 1, true);
    CHECK(middle.shape() == tg::Shape{2, 1, 3});
    CHECK(tg_test::flat(middle) == std::vector<double>(6, -inf));
    tg::sum(tg::logsumexp(empty, {1, 2})).backward();
    CHECK(empty.grad().shape() == tg::Shape{2, 0, 3});
  }

  const Tensor y = tg::arange(6.0, tg::kFloat64).set_requires_grad();
  const Tensor clamped = tg::clamp(y, 3.0, 1.0);
  check_close(clamped, {1, 1, 1, 1, 1, 1}, 0);
  clamped.backward(tg::ones({6}, tg::kFloat64));
  check_close(y.grad(), {0, 0, 0, 0, 0, 0}, 0);
}

TEST_CASE("var and std match PyTorch") {
  const Tensor x = golden_input();
  check_close(tg::var(x, {1}), {1.9091666666666667, 3.687291666666667}, 1e-12);
  check_close(tg::var(x, {}, false), {2.5974609375}, 1e-12);
  check_close(tg::std(x, {0}), {2.616295090390226, 2.616295090390226, 0.7778174593052023, 0.4596194077712559}, 1e-12);
}

TEST_CASE("reductions, max/argmax and matmul values") {
  const Tensor x({{1, 5, 3}, {4, 2, 6}});
  check_close(tg::sum(x), {21});
  check_close(tg::sum(x, {0}), {5, 7, 9});
  check_close(tg::mean(x, {1}, true), {3, 4});
  CHECK(tg::mean(x, {1}, true).shape() == tg::Shape{2, 1});
  auto [values, indices] = tg::max(x, 1);
  check_close(values, {5, 6});
  CHECK(indices.dtype() == tg::kInt64);
  check_close(indices, {1, 2});
  check_close(tg::argmin(x, 0), {0, 1, 0});
  check_close(tg::argmax(x), {5});
  check_close(tg::max(x), {6});
  // (2,3)·(3,2)
  check_close(tg::matmul(x, Tensor({{1, 0}, {0, 1}, {1, 1}})), {4, 8, 10, 8});
  check_close(tg::matmul(Tensor({1, 2, 3}), Tensor({4, 5, 6})), {32});
  // max propagates NaN like PyTorch
  CHECK(std::isnan(tg::max(Tensor({1.0, NAN, 3.0})).item()));
}

TEST_CASE("a large float32 sum is accurate") {
  // 1,000,000 values of 0.1f: a naive float accumulator drifts by about 1%.
  const Tensor x = tg::full({1000000}, 0.1);
  CHECK(std::abs(tg::sum(x).item() - 100000.0) < 1.0);
}

TEST_CASE("shape ops values") {
  const Tensor x({{1, 2, 3}, {4, 5, 6}});
  check_close(tg::transpose(x, 0, 1), {1, 4, 2, 5, 3, 6});
  CHECK(tg::reshape(x, {3, -1}).shape() == tg::Shape{3, 2});
  check_close(tg::cat({x, x}, 0), {1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6});
  check_close(tg::cat({x, x}, 1), {1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6});
  CHECK(tg::stack({x, x}, 2).shape() == tg::Shape{2, 3, 2});
  check_close(tg::narrow(x, 1, 1, 2), {2, 3, 5, 6});
  check_close(tg::slice(x, 1, -2, std::nullopt), {2, 3, 5, 6});
  check_close(tg::slice(x, 1, 0, 100, 2), {1, 3, 4, 6});
  check_close(tg::select(x, 0, 1), {4, 5, 6});
  check_close(tg::index_select(x, 1, Tensor(std::vector<std::int64_t>{2, 2, 0}, {3})), {3, 3, 1, 6, 6, 4});
  check_close(tg::expand(Tensor({{1}, {2}}), {2, 3}), {1, 1, 1, 2, 2, 2});
  CHECK(tg::squeeze(tg::zeros({1, 2, 1})).shape() == tg::Shape{2});
  CHECK(tg::unsqueeze(x, 0).shape() == tg::Shape{1, 2, 3});
  CHECK(tg::flatten(tg::zeros({2, 3, 4}), 1).shape() == tg::Shape{2, 12});
  check_close(tg::clamp(Tensor({-2, 0.5, 3}), -1.0, 1.0), {-1, 0.5, 1});
  check_close(tg::where(Tensor({1, 0, 1}), Tensor({1, 2, 3}), Tensor({9, 9, 9})), {1, 9, 3});
  check_close(tg::pow(Tensor({2, 3}), 2.0), {4, 9});
}

TEST_CASE("bad input throws tg::Error naming the op and the shapes or dtypes") {
  const Tensor a = tg::zeros({2, 3});
  CHECK_THROWS_WITH_AS(tg::matmul(a, tg::zeros({4, 5})),
                       "matmul: shapes [2, 3] and [4, 5] cannot be multiplied (3 != 4)", tg::Error);
  CHECK_THROWS_WITH_AS(tg::matmul(tg::zeros({2, 3, 2, 3}), tg::zeros({2, 3, 4})),
                       "matmul: batch dims of [2, 3, 2, 3] and [2, 3, 4] cannot be broadcast (3 vs 2 at batch dim 1)",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::matmul(tg::zeros({4, 2, 3}), tg::zeros({3, 3, 4})),
                       "matmul: batch dims of [4, 2, 3] and [3, 3, 4] cannot be broadcast (4 vs 3 at batch dim 0)",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::matmul(tg::zeros({}), a), doctest::Contains("matmul: both arguments need at least 1 dimension"),
                       tg::Error);
  CHECK_THROWS_WITH_AS(a + tg::zeros({4}), doctest::Contains("add: shapes [2, 3] and [4] cannot be broadcast"),
                       tg::Error);
  CHECK_THROWS_WITH_AS(a * tg::zeros({2, 3}, tg::kFloat64),
                       "mul: expected both inputs to have one dtype, got float32 [2, 3] and float64 [2, 3]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::sum(a, {2}), "sum: dim 2 is out of range for a 2D tensor [2, 3] (expected a dim in [-2, 1])",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::softmax(a, -3), doctest::Contains("softmax: dim -3 is out of range"), tg::Error);
  CHECK_THROWS_WITH_AS(a.item(), "item: only a tensor with one element can be converted to a number, got shape [2, 3]",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::reshape(a, {4, -1}), doctest::Contains("reshape: shape [4, -1] is invalid for input of size 6"),
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::cat({a, tg::zeros({2, 4})}, 0), doctest::Contains("cat: shapes [2, 3] and [2, 4] differ"),
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::narrow(a, 1, 2, 2), doctest::Contains("narrow: start 2 and length 2 are out of range"),
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::index_select(a, 0, Tensor(std::vector<std::int64_t>{0, 2}, {2})),
                       "index_select: index 2 is out of range for dim 0 of size 2 in [2, 3]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::exp(tg::randint(0, 3, {2})), "exp: expected a floating-point tensor (float32 or float64), got int64",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::expand(a, {4, 3}), doctest::Contains("expand: cannot expand [2, 3] to [4, 3]"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::dropout(a, 1.5), "dropout: probability must be in [0, 1], got 1.5", tg::Error);

  CHECK_THROWS_WITH_AS(a.values<double>(), "values: the tensor is float32, not float64", tg::Error);
}

namespace {
// got against Σ_p term(p) in float64, within 2·terms roundings (unit u) of Σ|term|.
template <class Term>
void check_product_sum(double got, std::size_t terms, double u, Term term) {
  double exact = 0, magnitude = 0;
  for (std::size_t p = 0; p < terms; ++p) {
    exact += term(p);
    magnitude += std::abs(term(p));
  }
  INFO("got ", got, ", float64 loop ", exact);
  CHECK(std::abs(got - exact) <= 2 * double(terms) * u * magnitude + 1e-300);
}
}  // namespace

// A row-major A·Bᵀ (linear's x·Wᵀ, matmul's gradient g·Bᵀ) of at least 32 rows, more than 1200
// entries and at most 100³ multiply-adds copies Bᵀ first (kernels::transpose_matrix, register
// blocks and masked or scalar edges) and multiplies it as is (linalg.cpp's gemm); others go to
// BLAS with the transpose flag. Both, against a float64 loop, in float32 and float64: sizes on
// either side of each limit, with and without whole blocks, and cut into two parallel blocks.
TEST_CASE("linear's x·Wᵀ and matmul's g·Bᵀ equal a float64 loop for every size class, both dtypes") {
  tg::manual_seed(5);
  const std::array<std::size_t, 3> sizes[] = {{1, 7, 5},     {16, 64, 64},   {31, 9, 13},    {32, 1, 1},
                                              {32, 33, 17},  {40, 8, 8},     {48, 30, 41},   {64, 64, 64},
                                              {100, 10, 300}, {128, 200, 39}, {33, 300, 100}, {256, 64, 64},
                                              {300, 130, 70}};
  for (const auto& [m, n, k] : sizes)
    for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
      CAPTURE(m);
      CAPTURE(n);
      CAPTURE(k);
      const Tensor x = tg::randn({m, k}, dtype), w = tg::randn({n, k}, dtype), g = tg::randn({m, n}, dtype);
      const Tensor b = w.t().detach().set_requires_grad(true);
      const Tensor a = x.detach().set_requires_grad(true);
      tg::matmul(a, b).backward(g);  // dA = g·Bᵀ: (m, n)·(n, k)
      const std::vector<double> xv = tg_test::flat(x), wv = tg_test::flat(w), gv = tg_test::flat(g);
      const std::vector<double> y = tg_test::flat(tg::linear(x, w)), da = tg_test::flat(a.grad());
      const double u = dtype == tg::kFloat32 ? 0x1p-24 : 0x1p-53;
      auto check_sum = [u](double got, std::size_t terms, auto term) { check_product_sum(got, terms, u, term); };
      for (std::size_t i = 0; i < m; ++i) {
        for (std::size_t j = 0; j < n; ++j) {
          INFO("y[", i, ", ", j, "] (y = x·Wᵀ)");
          check_sum(y[i * n + j], k, [&](std::size_t p) { return xv[i * k + p] * wv[j * k + p]; });
        }
        for (std::size_t p = 0; p < k; ++p) {
          INFO("dA[", i, ", ", p, "] (dA = g·Bᵀ, Bᵀ = W)");
          check_sum(da[i * k + p], n, [&](std::size_t j) { return gv[i * n + j] * wv[j * k + p]; });
        }
      }
    }
}

// A product with one row or one column is a matrix-vector product (linalg.cpp's gemm calls GEMV):
// every transpose the ops use (matmul's A·B, g·Bᵀ and Aᵀ·g, linear's x·Wᵀ and gᵀ·x), one row and
// one column, a length-1 inner dim, a product cut into two parallel blocks of columns (1, 600,
// 1000), against float64 loops, both dtypes. The outputs reuse a freed block of NaNs: with β = 0 a
// product must not read what C held.
TEST_CASE("matrix-vector products (one row or one column) equal float64 loops for every transpose, both dtypes") {
  tg::manual_seed(6);
  // (1, 600, 1000) and (700, 1, 500) are past 2^18 values: every product and gradient of theirs is
  // cut into blocks that the threads share (linalg.cpp's gemm).
  const std::array<std::size_t, 3> sizes[] = {{1, 7, 5},     {1, 1, 9},  {5, 1, 9}, {300, 1, 70}, {1, 600, 1000},
                                              {700, 1, 500}, {1, 33, 1}, {9, 1, 1}, {1, 1, 1}};
  for (const auto& [m, n, k] : sizes)
    for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
      CAPTURE(m);
      CAPTURE(n);
      CAPTURE(k);
      CAPTURE(tg::dtype_name(dtype));
      const Tensor x = tg::randn({m, k}, dtype), b = tg::randn({k, n}, dtype), g = tg::randn({m, n}, dtype);
      const Tensor w = b.t().detach();  // (n, k): linear(x, w) = x·b
      for (const std::size_t size : {m * n, m * k, k * n}) (void)tg::full({size}, NAN, dtype);  // freed NaNs
      const Tensor a = x.detach().set_requires_grad(true), bb = b.detach().set_requires_grad(true);
      const Tensor y = tg::matmul(a, bb);
      y.backward(g);  // dA = g·Bᵀ, dB = Aᵀ·g
      const Tensor xl = x.detach().set_requires_grad(true), wl = w.detach().set_requires_grad(true);
      const Tensor yl = tg::linear(xl, wl);  // x·Wᵀ
      yl.backward(g);  // dW = gᵀ·x, dx = g·W
      const std::vector<double> xv = tg_test::flat(x), bv = tg_test::flat(b), gv = tg_test::flat(g);
      const double u = dtype == tg::kFloat32 ? 0x1p-24 : 0x1p-53;
      auto check_sum = [u](double got, std::size_t terms, auto term) { check_product_sum(got, terms, u, term); };
      const std::vector<double> yv = tg_test::flat(y), ylv = tg_test::flat(yl);
      const std::vector<double> da = tg_test::flat(a.grad()), db = tg_test::flat(bb.grad());
      const std::vector<double> dx = tg_test::flat(xl.grad()), dw = tg_test::flat(wl.grad());
      for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < n; ++j) {
          check_sum(yv[i * n + j], k, [&](std::size_t p) { return xv[i * k + p] * bv[p * n + j]; });
          check_sum(ylv[i * n + j], k, [&](std::size_t p) { return xv[i * k + p] * bv[p * n + j]; });
        }
      for (std::size_t i = 0; i < m; ++i)
        for (std::size_t p = 0; p < k; ++p) {
          check_sum(da[i * k + p], n, [&](std::size_t j) { return gv[i * n + j] * bv[p * n + j]; });
          check_sum(dx[i * k + p], n, [&](std::size_t j) { return gv[i * n + j] * bv[p * n + j]; });
        }
      for (std::size_t p = 0; p < k; ++p)
        for (std::size_t j = 0; j < n; ++j) {
          check_sum(db[p * n + j], m, [&](std::size_t i) { return xv[i * k + p] * gv[i * n + j]; });
          check_sum(dw[j * k + p], m, [&](std::size_t i) { return xv[i * k + p] * gv[i * n + j]; });
        }
    }
}

namespace {
// What `run` writes to the process's stdout and stderr (file descriptors 1 and 2; OpenBLAS prints
// its complaint about a call it rejects to stdout), caught in a temporary file.
template <class Run>
std::string output_of(Run&& run) {
  std::fflush(stdout);
  std::fflush(stderr);
  std::FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  const int saved_out = dup(1), saved_err = dup(2);
  dup2(fileno(file), 1);
  dup2(fileno(file), 2);
  run();
  std::fflush(stdout);
  std::fflush(stderr);
  dup2(saved_out, 1);
  dup2(saved_err, 2);
  close(saved_out);
  close(saved_err);
  std::rewind(file);
  std::string text;
  for (int c; (c = std::fgetc(file)) != EOF;) text.push_back(char(c));
  std::fclose(file);
  return text;
}
}  // namespace

// An empty inner dim (k = 0) is a sum of nothing: zeros, as in PyTorch, for every product shape
// the GEMM and GEMV paths take, and for linear (with no crash: the rows are not numel / 0); the
// gradients are empty or zero; no operand with a zero leading dim reaches BLAS, which would print
// its complaint and skip the call.
TEST_CASE("matmul and linear with an empty inner dim give zeros, whatever the freed memory held") {
  const std::string output = output_of([] {
    for (const std::array<std::size_t, 2>& mn :
         {std::array<std::size_t, 2>{3, 4}, {1, 5}, {6, 1}, {1, 1}, {200, 300}})
      for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
        const auto [m, n] = mn;
        CAPTURE(m);
        CAPTURE(n);
        (void)tg::full({m * n}, NAN, dtype);  // a freed block of NaNs for the output to reuse
        const Tensor a = tg::zeros({m, 0}, dtype).set_requires_grad(true), b = tg::zeros({0, n}, dtype);
        const Tensor y = tg::matmul(a, b);
        REQUIRE(y.shape() == tg::Shape{m, n});
        for (double v : tg_test::flat(y)) CHECK(v == 0.0);
        y.sum().backward();
        CHECK(a.grad().shape() == tg::Shape{m, 0});
        (void)tg::full({m * n}, NAN, dtype);
        const Tensor w = tg::zeros({n, 0}, dtype).set_requires_grad(true), bias = tg::ones({n}, dtype);
        const Tensor z = tg::linear(tg::zeros({m, 0}, dtype), w, bias);
        REQUIRE(z.shape() == tg::Shape{m, n});
        for (double v : tg_test::flat(z)) CHECK(v == 1.0);
      }
  });
  INFO(output);
  CHECK(output.empty());
}

namespace {
// C = α·op(A)·op(B) + β·C through the gemm that matmul, linear and the convolutions share
// (core/ops/linalg_gemm.hpp), on operands with padded leading dims, against a float64 loop. C's
// padding columns hold a sentinel that must survive; with β = 0 C starts as NaN, which must not
// reach the result.
template <class T>
void check_gemm(std::size_t m, std::size_t n, std::size_t k, bool trans_a, bool trans_b, T alpha, T beta,
                std::mt19937& rng) {
  CAPTURE(m);
  CAPTURE(n);
  CAPTURE(k);
  CAPTURE(trans_a);
  CAPTURE(trans_b);
  CAPTURE(alpha);
  CAPTURE(beta);
  const std::size_t lda = (trans_a ? m : k) + 3, ldb = (trans_b ? k : n) + 5, ldc = n + 2;
  std::uniform_real_distribution<T> uniform(-1, 1);
  std::vector<T> a((trans_a ? k : m) * lda), b((trans_b ? n : k) * ldb), c(m * ldc);
  for (T& v : a) v = uniform(rng);
  for (T& v : b) v = uniform(rng);
  for (T& v : c) v = beta == T(0) ? T(NAN) : uniform(rng);
  for (std::size_t i = 0; i < m; ++i) c[i * ldc + n] = c[i * ldc + n + 1] = T(12345);
  const std::vector<T> c0 = c;
  tg::detail::gemm<T>(trans_a, trans_b, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
  const double u = std::is_same_v<T, float> ? 0x1p-24 : 0x1p-53;
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      double sum = 0, magnitude = 0;
      for (std::size_t p = 0; p < k; ++p) {
        const double a_ip = trans_a ? a[p * lda + i] : a[i * lda + p], b_pj = trans_b ? b[j * ldb + p] : b[p * ldb + j];
        const double term = a_ip * b_pj;
        sum += term;
        magnitude += std::abs(term);
      }
      const double old = beta == T(0) ? 0.0 : double(beta) * c0[i * ldc + j];
      const double exact = double(alpha) * sum + old;
      const double bound = 2 * double(k + 2) * u * (std::abs(double(alpha)) * magnitude + std::abs(old)) + 1e-300;
      if (!(std::abs(c[i * ldc + j] - exact) <= bound) && wrong++ < 3)
        FAIL_CHECK("C[", i, ", ", j, "] = ", c[i * ldc + j], ", float64 loop ", exact);
    }
    CHECK(c[i * ldc + n] == T(12345));
    CHECK(c[i * ldc + n + 1] == T(12345));
  }
  CHECK(wrong == 0);
}
}  // namespace

// Sizes on both sides of every edge of the float32 AVX-512 kernel (core/ops/sgemm.cpp: 8 × 32
// tiles, their last panel of 16 columns or fewer on half the kernel (48 and 49 columns), 256-long
// inner blocks, 144-row and 2048-column blocks, the transposed run for few columns and its
// 4096-row chunks (8400 rows: two parallel blocks of 4200), OpenBLAS under 8 rows or columns) and
// of the parallel cut, every transpose, α and β; k = 1 (the outer product's own loop, cut in parallel too);
// A·Bᵀ into at most 128 values by dot products (2 rows of A against 4 of B, k in batches of 16).
TEST_CASE("gemm equals a float64 loop across tile, block and transpose edges, every alpha and beta, both dtypes") {
  std::mt19937 rng(11);
  const std::array<std::size_t, 3> sizes[] = {
      {8, 8, 1},     {9, 31, 7},    {15, 32, 16},  {17, 33, 255}, {16, 64, 256}, {24, 47, 257}, {145, 40, 30},
      {100, 9, 50},  {300, 10, 20}, {9, 300, 20},  {64, 9, 600},  {7, 40, 9},    {40, 7, 9},    {12, 2049, 3},
      {130, 150, 513}, {8400, 9, 20}, {20, 48, 70},  {11, 49, 33}, {2, 17, 1}, {300, 1030, 1}, {1030, 3, 1},
      {8, 8, 256},   {8, 16, 17},   {9, 14, 600},  {11, 11, 15}};
  const std::array<double, 2> scales[] = {{1, 0}, {1, 1}, {-0.5, 0.25}, {2, 0}};
  for (const auto& [m, n, k] : sizes)
    for (int transposes = 0; transposes < 4; ++transposes)
      for (const auto& [alpha, beta] : scales) {
        const bool trans_a = transposes & 1, trans_b = transposes & 2;
        check_gemm<float>(m, n, k, trans_a, trans_b, float(alpha), float(beta), rng);
        if (m * n * k < 100'000) check_gemm<double>(m, n, k, trans_a, trans_b, alpha, beta, rng);
      }
}

// An infinity or NaN in A (or B) spreads along its row (or column) of C only: the zero padding of
// edge tiles and the transposed run for few columns keep it out of the rest.
TEST_CASE("gemm: a NaN or infinity in one row of A or one column of B reaches only that row or column of C") {
  const std::array<std::size_t, 3> sizes[] = {{20, 40, 30}, {100, 9, 50}, {9, 33, 300}, {9, 11, 40}};
  for (const auto& [m, n, k] : sizes)
    for (const float bad : {INFINITY, NAN})
      for (int transposes = 0; transposes < 4; ++transposes) {
        const bool trans_a = transposes & 1, trans_b = transposes & 2;
        CAPTURE(m);
        CAPTURE(n);
        CAPTURE(trans_a);
        CAPTURE(trans_b);
        std::vector<float> a(m * k, 0.5f), b(k * n, 0.25f), c(m * n);
        const std::size_t row = m - 1, col = n / 2, p = k / 3;
        (trans_a ? a[p * m + row] : a[row * k + p]) = bad;
        (trans_b ? b[col * k + p] : b[p * n + col]) = bad;
        tg::detail::gemm<float>(trans_a, trans_b, m, n, k, 1.0f, a.data(), trans_a ? m : k, b.data(),
                                trans_b ? k : n, 0.0f, c.data(), n);
        std::size_t wrong = 0;
        for (std::size_t i = 0; i < m; ++i)
          for (std::size_t j = 0; j < n; ++j) {
            const bool spread = i == row || j == col;
            if (std::isfinite(c[i * n + j]) == spread) ++wrong;
            if (!spread && c[i * n + j] != 0.125f * float(k)) ++wrong;
          }
        CHECK(wrong == 0);
      }
}

// The parallel cut depends on the sizes only: the same bits at 1 and 2 threads, for products cut
// by rows and by columns.
TEST_CASE("gemm gives the same bits at 1 and 2 threads") {
  std::mt19937 rng(12);
  std::uniform_real_distribution<float> uniform(-1, 1);
  const std::array<std::size_t, 3> sizes[] = {{300, 200, 300}, {40, 900, 70}, {500, 9, 400}};
  for (const auto& [m, n, k] : sizes) {
    std::vector<float> a(m * k), b(k * n), one(m * n), two(m * n);
    for (float& v : a) v = uniform(rng);
    for (float& v : b) v = uniform(rng);
    tg::set_num_threads(1);
    tg::detail::gemm<float>(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, one.data(), n);
    tg::set_num_threads(2);
    tg::detail::gemm<float>(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, two.data(), n);
    CHECK(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("matmul broadcasts any number of batch dims, as PyTorch's, and equals a loop of 2-D products") {
  struct Case { tg::Shape a, b, out; };
  const Case cases[] = {
      {{2, 1, 3, 4}, {5, 4, 2}, {2, 5, 3, 2}}, {{1, 3, 2, 4}, {2, 1, 4, 3}, {2, 3, 2, 3}},
      {{4}, {2, 3, 4, 5}, {2, 3, 5}},          {{2, 3, 4, 5}, {5}, {2, 3, 4}},
      {{3, 1, 1, 2, 3}, {4, 3, 2}, {3, 1, 4, 2, 2}}, {{2, 2, 3}, {3, 2}, {2, 2, 2}},
      {{2, 3, 1, 2, 3}, {3, 4, 3, 2}, {2, 3, 4, 2, 2}},  // each broadcast along one dim, kept along two
  };
  for (const Case& c : cases) {
    const Tensor a = tg::randn(c.a, tg::kFloat64), b = tg::randn(c.b, tg::kFloat64);
    const Tensor out = tg::matmul(a, b);
    REQUIRE(out.shape() == c.out);
    // The reference: promote to 5-D with explicit broadcast, then one 2-D product per batch.
    const tg::Shape a_mat = c.a.size() == 1 ? tg::Shape{1, c.a[0]} : tg::Shape{c.a[c.a.size() - 2], c.a.back()};
    const tg::Shape b_mat = c.b.size() == 1 ? tg::Shape{c.b[0], 1} : tg::Shape{c.b[c.b.size() - 2], c.b.back()};
    std::vector<std::size_t> batch;
    const std::size_t matrix_dims = (c.a.size() > 1 ? 1 : 0) + (c.b.size() > 1 ? 1 : 0);
    for (std::size_t i = 0; i + matrix_dims < c.out.size(); ++i) batch.push_back(c.out[i]);
    std::size_t batches = 1;
    for (std::size_t d : batch) batches *= d;
    const auto& av = a.values<double>();
    const auto& bv = b.values<double>();
    const std::size_t m = a_mat[0], k = a_mat[1], n = b_mat[1];
    std::vector<double> expected;
    for (std::size_t i = 0; i < batches; ++i) {
      // index of batch i in each operand, with size-1 (or missing) dims broadcast
      auto offset = [&](const tg::Shape& shape, std::size_t matrix_size) {
        const std::size_t rank = shape.size() > 2 ? shape.size() - 2 : 0;
        std::size_t rest = i, off = 0, stride = matrix_size;
        for (std::size_t d = batch.size(); d-- > 0;) {
          const std::size_t index = rest % batch[d];
          rest /= batch[d];
          const std::ptrdiff_t own = std::ptrdiff_t(d) - std::ptrdiff_t(batch.size() - rank);
          if (own < 0) continue;
          const std::size_t size = shape[std::size_t(own)];
          if (size > 1) off += index * stride;
          stride *= size;
        }
        return off;
      };
      const std::size_t oa = offset(c.a, m * k), ob = offset(c.b, k * n);
      for (std::size_t r = 0; r < m; ++r)
        for (std::size_t col = 0; col < n; ++col) {
          double acc = 0;
          for (std::size_t j = 0; j < k; ++j) acc += av.data()[oa + r * k + j] * bv.data()[ob + j * n + col];
          expected.push_back(acc);
        }
    }
    check_close(out, expected, 1e-12);
  }
}

// matmul of (batches_a, m, k) by (batches_b, k, n) into `batch` products (a batch count of 1 is
// broadcast, so its gradient sums the batches): values and both gradients against a float64 loop,
// in both dtypes, and the same bits at 1 and 2 threads.
namespace {
void check_matmul_against_loop(std::size_t batch, std::size_t batches_a, std::size_t batches_b, std::size_t m,
                               std::size_t k, std::size_t n, double tolerance32) {
  INFO(batches_a, " of ", m, "x", k, " times ", batches_b, " of ", k, "x", n);
  const Tensor a64 = tg::randn({batches_a, m, k}, tg::kFloat64), b64 = tg::randn({batches_b, k, n}, tg::kFloat64);
  const Tensor g64 = tg::randn({batch, m, n}, tg::kFloat64);
  const std::vector<double> va = tg_test::flat(a64), vb = tg_test::flat(b64), vg = tg_test::flat(g64);
  std::vector<double> out(batch * m * n, 0.0), da(va.size(), 0.0), db(vb.size(), 0.0);
  for (std::size_t t = 0; t < batch; ++t)
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j)
        for (std::size_t p = 0; p < k; ++p) {
          const std::size_t ia = ((batches_a == 1 ? 0 : t) * m + i) * k + p;
          const std::size_t ib = ((batches_b == 1 ? 0 : t) * k + p) * n + j, io = (t * m + i) * n + j;
          out[io] += va[ia] * vb[ib];
          da[ia] += vg[io] * vb[ib];
          db[ib] += va[ia] * vg[io];
        }
  for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
    INFO(tg::dtype_name(dtype));
    auto run = [&](int threads) {
      const int before = tg::get_num_threads();
      tg::set_num_threads(threads);
      const Tensor a = a64.to(dtype).detach().set_requires_grad(), b = b64.to(dtype).detach().set_requires_grad();
      const Tensor y = tg::matmul(a, b);
      y.backward(g64.to(dtype));
      tg::set_num_threads(before);
      return std::array<Tensor, 3>{y, a.grad(), b.grad()};
    };
    const auto one = run(1), two = run(2);
    const double tol = dtype == tg::kFloat64 ? 1e-12 : tolerance32;
    check_close(two[0], out, tol);
    check_close(two[1], da, tol);
    check_close(two[2], db, tol);
    for (std::size_t r = 0; r < 3; ++r) CHECK(tg_test::bitwise_equal(one[r], two[r]));
  }
}
}  // namespace

// Batched products run tiny matrices (up to 512 multiply-adds) value by value and larger ones
// through gemm, in parallel over batches: both size classes.
TEST_CASE("batched matmul's values and gradients equal a float64 loop on tiny and large matrices") {
  struct Case { std::size_t batch, m, k, n; };
  // (the last two: batches in several tasks, the last one's products split by gemm inside them)
  for (const Case& c : {Case{3000, 3, 3, 3}, Case{2500, 2, 5, 3}, Case{900, 1, 8, 1}, Case{7, 9, 10, 11},
                        Case{40, 16, 16, 16}, Case{3, 33, 20, 70}, Case{24, 64, 64, 64}, Case{4, 128, 64, 128}}) {
    tg::manual_seed(9);
    check_matmul_against_loop(c.batch, c.batch, c.batch, c.m, c.k, c.n, 1e-4);
  }
}

// Tiny products have a kernel per (n, k) in [2, 4]² and a generic one, each called plain and
// transposed (the backward's dC·Bᵀ and Aᵀ·dC), writing or adding (a broadcast operand's gradient
// sums its batches): every m, k, n from 1 to 5 with A, B or neither broadcast.
TEST_CASE("matmul of every small size, batched and broadcast, equals a float64 loop") {
  constexpr std::size_t batch = 3;
  for (std::size_t m = 1; m <= 5; ++m)
    for (std::size_t k = 1; k <= 5; ++k)
      for (std::size_t n = 1; n <= 5; ++n)
        for (int shared = 0; shared < 3; ++shared) {  // 0: none, 1: A, 2: B one matrix for every batch
          tg::manual_seed(std::uint64_t(m * 100 + k * 10 + n));
          check_matmul_against_loop(batch, shared == 1 ? 1 : batch, shared == 2 ? 1 : batch, m, k, n, 1e-5);
        }
}

// Linear(in, out) over `rows` rows with a bias: values and the three gradients against a float64
// loop, in both dtypes, the same bits at 1 and 2 threads. (Sums over many rows get a looser
// float32 tolerance.)
namespace {
void check_linear_against_loop(std::size_t rows, std::size_t in, std::size_t out) {
  INFO("Linear(", in, ", ", out, ") over ", rows, " rows");
  tg::manual_seed(std::uint64_t(rows + in * 10 + out));
  const Tensor x64 = tg::randn({rows, in}, tg::kFloat64), w64 = tg::randn({out, in}, tg::kFloat64);
  const Tensor b64 = tg::randn({out}, tg::kFloat64), g64 = tg::randn({rows, out}, tg::kFloat64);
  const std::vector<double> vx = tg_test::flat(x64), vw = tg_test::flat(w64), vb = tg_test::flat(b64);
  const std::vector<double> vg = tg_test::flat(g64);
  std::vector<double> y(rows * out), dx(rows * in, 0.0), dw(out * in, 0.0), db(out, 0.0);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t o = 0; o < out; ++o) {
      double acc = vb[o];
      for (std::size_t i = 0; i < in; ++i) {
        acc += vx[r * in + i] * vw[o * in + i];
        dx[r * in + i] += vg[r * out + o] * vw[o * in + i];
        dw[o * in + i] += vg[r * out + o] * vx[r * in + i];
      }
      y[r * out + o] = acc;
      db[o] += vg[r * out + o];
    }
  for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
    auto run = [&](int threads) {
      const int before = tg::get_num_threads();
      tg::set_num_threads(threads);
      const Tensor x = x64.to(dtype).detach().set_requires_grad();
      const Tensor w = w64.to(dtype).detach().set_requires_grad(), b = b64.to(dtype).detach().set_requires_grad();
      const Tensor result = tg::linear(x, w, b);
      result.backward(g64.to(dtype));
      tg::set_num_threads(before);
      return std::array<Tensor, 4>{result, x.grad(), w.grad(), b.grad()};
    };
    const auto one = run(1), two = run(2);
    const bool f64 = dtype == tg::kFloat64;
    const double long_sums = rows > 1000 ? 1e-2 : 1e-4, long_dots = in > 100 || out > 100 ? 1e-4 : 1e-5;
    check_close(two[0], y, f64 ? 1e-12 : long_dots);
    check_close(two[1], dx, f64 ? 1e-12 : long_dots);
    check_close(two[2], dw, f64 ? 1e-9 : long_sums);
    check_close(two[3], db, f64 ? 1e-9 : long_sums);
    for (std::size_t r = 0; r < 4; ++r) CHECK(tg_test::bitwise_equal(one[r], two[r]));
  }
}
}  // namespace

// A tall product with few columns and a short inner dim (n and k from 2 to 4) runs gemm's own
// kernel, bias added (β = 1), in two row blocks once it is large enough to split: a Linear layer
// of every in/out size from 1 to 5 over 20,000 rows.
TEST_CASE("a Linear layer with few inputs and outputs over many rows equals a float64 loop") {
  for (std::size_t in = 1; in <= 5; ++in)
    for (std::size_t out = 1; out <= 5; ++out) check_linear_against_loop(20000, in, out);
}

// A few rows against a large weight: the forward x·Wᵀ and a matmul's dA = dC·Bᵀ are computed
// transposed on the AVX-512 kernel (Cᵀ = W·xᵀ, W read where it lies), bias added through the
// transposed scratch; rows around the kernel's 8-row tiles and its 32-row limit.
TEST_CASE("a Linear layer and a matmul on a few rows with a large weight equal a float64 loop") {
  for (std::size_t rows : {1, 7, 10, 32, 33}) check_linear_against_loop(rows, 520, 1100);
  tg::manual_seed(3);
  check_matmul_against_loop(1, 1, 1, 10, 1100, 520, 1e-4);
}

TEST_CASE("elementwise kernels: the same value at every position and length, and every broadcast form") {
  // The batch loop's tail goes through the same code as full batches: exp(v) is one bit pattern
  // wherever v sits, for every length around the SIMD widths.
  for (const double v : {-3.7, 0.3, 1.9, 40.0}) {
    const float reference = tg::exp(tg::full({1}, v)).data<float>()[0];
    for (std::size_t n = 1; n <= 70; ++n) {
      const Tensor y = tg::exp(tg::full({n}, v));
      for (std::size_t i = 0; i < n; ++i) REQUIRE(y.data<float>()[i] == reference);
    }
  }
  // The exponents PyTorch computes exactly.
  const Tensor x({-3.0, -0.5, 2.0, 5.0, 7.0}, tg::kFloat32);
  CHECK(x.pow(2.0).to_vector<float>() == std::vector<float>{9, 0.25f, 4, 25, 49});
  CHECK(x.pow(3.0).to_vector<float>() == std::vector<float>{-27, -0.125f, 8, 125, 343});
  CHECK(x.pow(-1.0).to_vector<float>() == std::vector<float>{-1.0f / 3, -2, 0.5f, 0.2f, 1.0f / 7});
  check_close(x.pow(2.5).slice(0, 2, std::nullopt), {5.656854249492381, 55.90169943749474, 129.64181424216494}, 1e-4);
  CHECK(std::isnan(x.pow(2.5).data<float>()[0]));

  // Every broadcast path (same shape, one element, rows, columns, outer products, mixed ranks)
  // against an explicit loop over the output's indices.
  const std::vector<std::pair<tg::Shape, tg::Shape>> pairs = {
      {{3, 4}, {3, 4}}, {{3, 4}, {1}}, {{1}, {3, 4}}, {{3, 4}, {4}}, {{4}, {3, 4}}, {{3, 4}, {3, 1}},
      {{3, 1}, {3, 4}}, {{3, 1}, {1, 4}}, {{2, 3, 4}, {3, 1}}, {{2, 1, 4}, {3, 1}}, {{5, 1, 3}, {1, 4, 1}},
      {{}, {2, 3}}, {{2, 3}, {}}, {{0, 3}, {3}}, {{2, 1, 1, 3}, {1, 2, 2, 1}}, {{1, 4}, {3, 1}}, {{2, 3, 1}, {5}},
      {{70, 1}, {1, 33}}, {{7}, {2, 3, 1}}, {{0, 1}, {1, 3}}};
  for (const auto& [sa, sb] : pairs) {
    CAPTURE(tg::shape_str(sa));
    CAPTURE(tg::shape_str(sb));
    const Tensor a = tg::randn(sa, tg::kFloat64), b = tg::randn(sb, tg::kFloat64);
    const Tensor got = a * b - b, got_difference = a - b;  // commutative and not
    const auto& va = a.values<double>();
    const auto& vb = b.values<double>();
    xt::xarray<double> want = va * vb - vb, want_difference = va - vb;  // xtensor's broadcasting as the reference
    REQUIRE(got.shape() == tg::Shape(want.shape().begin(), want.shape().end()));
    REQUIRE(got_difference.shape() == got.shape());
    for (std::size_t i = 0; i < want.size(); ++i) REQUIRE(got.data<double>()[i] == want.data()[i]);
    for (std::size_t i = 0; i < want.size(); ++i)
      REQUIRE(got_difference.data<double>()[i] == want_difference.data()[i]);
  }
}

TEST_CASE("permute: every order of ranks 1 to 5 equals xtensor's transpose, small and tiled sizes, both dtypes") {
  // float32 transposes 16×16 blocks in registers, the edges masked (AVX-512), or 8×8 ones and
  // scalar edges (AVX) (kernels.cpp); on AVX-512 every 8-byte value (float64, int64, a pair of
  // float32 that stays last: (70, 45, 2), (9, 40, 2)) in 8×8 blocks, and rows of 16 and 32 bytes that
  // stay last (4 or 8 float32, 2 or 4 float64 or int64: (9, 40, 4), (70, 45, 8)) as single values of
  // a tiled walk: sizes with and without whole
  // blocks of either size (40×24: whole 16×16 blocks, then edge blocks of 8 rows or columns),
  // whole 64-wide tiles and remainders on either side; a 48,000-value shape is cut across tasks,
  // each starting mid-shape.
  for (const tg::Shape& shape : {tg::Shape{7}, tg::Shape{3, 5}, tg::Shape{70, 45}, tg::Shape{2, 3, 4},
                                 tg::Shape{33, 2, 65}, tg::Shape{2, 3, 1, 4}, tg::Shape{3, 1, 5, 2, 4}, tg::Shape{0, 3},
                                 tg::Shape{64, 64}, tg::Shape{8, 8}, tg::Shape{130, 17}, tg::Shape{9, 8, 24},
                                 tg::Shape{3, 72, 136}, tg::Shape{40, 24}, tg::Shape{40, 30, 2, 20},
                                 tg::Shape{70, 45, 2}, tg::Shape{9, 40, 2}, tg::Shape{70, 45, 8}, tg::Shape{9, 40, 4}}) {
    for (tg::DType dtype : {tg::kFloat64, tg::kFloat32, tg::kInt64}) {
      const Tensor a = dtype == tg::kInt64 ? tg::randint(-1000, 1000, shape) : tg::randn(shape, dtype);
      const xt::xarray<double> values = a.to(tg::kFloat64).values<double>();
      std::vector<std::size_t> order(shape.size());
      std::iota(order.begin(), order.end(), 0);
      do {
        CAPTURE(tg::shape_str(shape));
        CAPTURE(tg::dtype_name(dtype));
        CAPTURE(std::vector<std::size_t>(order));
        const Tensor got = a.permute(std::vector<std::int64_t>(order.begin(), order.end())).to(tg::kFloat64);
        const xt::xarray<double> want = xt::transpose(values, order);
        REQUIRE(got.shape() == tg::Shape(want.shape().begin(), want.shape().end()));
        for (std::size_t i = 0; i < want.size(); ++i) REQUIRE(got.data<double>()[i] == want.data()[i]);
      } while (std::next_permutation(order.begin(), order.end()));
    }
  }
}

// Rows shorter than two SIMD batches take one pass of selects, longer ones three vectorised passes
// (reduce.cpp): lengths on both sides of 16 and 32 values, float32 and float64.
// Rows of 2 to 8 values go 16 rows (float32) at a time, a lane per row (reduce.cpp): 37 rows, so
// that a partial batch of rows follows two whole ones, and NaNs and infinities strewn across them.
TEST_CASE("max/min over rows: the first extreme, NaN first, ties, infinities, every row length") {
  tg::manual_seed(4);
  constexpr std::size_t rows = 37;
  for (tg::DType dtype : {tg::kFloat32, tg::kFloat64})
    for (std::size_t n : {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100}) {
      std::vector<double> v = tg::randint(-3, 4, {rows, n}).to(tg::kFloat64).to_vector<double>();  // many ties
      for (std::size_t k = 1; k < v.size(); k += 5) v[k] = NAN;                // some rows' first NaN late,
      for (std::size_t k = 2; k < v.size(); k += 7) v[k] = k % 2 ? INFINITY : -INFINITY;  // others none
      if (n > 2) {
        v[1 * n + n - 1] = NAN;  // row 1: a NaN at the end wins
        v[5 * n + 0] = NAN;      // row 5: a NaN first stays
      }
      for (std::size_t k = 20 * n; k < 30 * n; ++k) v[k] = std::trunc(v[k]) == v[k] ? v[k] : 1.0;  // rows without NaN
      const Tensor x = Tensor(v, {rows, n}).to(dtype);
      const auto [max_values, max_index] = x.max(1);
      const auto [min_values, min_index] = x.min(1);
      const std::vector<std::int64_t> got_max = max_index.to_vector<std::int64_t>(), got_min = min_index.to_vector<std::int64_t>();
      const std::vector<double> max_of = tg_test::flat(max_values), min_of = tg_test::flat(min_values);
      for (std::size_t r = 0; r < rows; ++r) {
        CAPTURE(tg::dtype_name(dtype));
        CAPTURE(n);
        CAPTURE(r);
        std::size_t best_max = 0, best_min = 0;
        for (std::size_t k = 1; k < n; ++k) {
          const double a = v[r * n + k], m = v[r * n + best_max], q = v[r * n + best_min];
          if (!std::isnan(m) && (std::isnan(a) || a > m)) best_max = k;
          if (!std::isnan(q) && (std::isnan(a) || a < q)) best_min = k;
        }
        CHECK(got_max[r] == std::int64_t(best_max));
        CHECK(got_min[r] == std::int64_t(best_min));
        const double want_max = v[r * n + best_max], want_min = v[r * n + best_min];
        CHECK((max_of[r] == want_max || (std::isnan(max_of[r]) && std::isnan(want_max))));
        CHECK((min_of[r] == want_min || (std::isnan(min_of[r]) && std::isnan(want_min))));
      }
    }
  // The value is the element at the index: a row of zeros that starts with -0 gives -0 (0 == -0).
  for (std::size_t n : {2, 5, 40}) {
    std::vector<float> zeros(n, 0.0f);
    zeros[0] = -0.0f;
    for (const auto& [values, index] : {Tensor(zeros, {1, n}).max(1), Tensor(zeros, {1, n}).min(1)}) {
      CAPTURE(n);
      CHECK(index.to_vector<std::int64_t>()[0] == 0);
      CHECK(std::signbit(values.to_vector<float>()[0]));
    }
  }
}

// Over a dim that is not the last, every position keeps its extreme so far and its row, a run of
// up to 512 positions per task (reduce.cpp): dim 0 and a middle dim, runs of 1 to 1100 positions
// (a partial run, several), 1 to 40 rows, ties, NaNs (the first wins), infinities, both dtypes,
// 1 and 2 threads bitwise; the values, the indices and the gradient (to the chosen position).
TEST_CASE("max/min over a dim that is not the last: the first extreme, NaN first, ties, every run length") {
  tg::manual_seed(9);
  // (3000, 5) and (2, 2500, 8): a few columns over several blocks of 1024 rows, NaN and infinities
  // sparse enough that some columns' first ones lie in a later block.
  for (const tg::Shape& shape : {tg::Shape{5, 3}, tg::Shape{1, 17}, tg::Shape{40, 1100}, tg::Shape{3, 7, 2},
                                 tg::Shape{2, 9, 600}, tg::Shape{2, 64}, tg::Shape{3000, 5}, tg::Shape{2, 2500, 8}})
    for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
      const std::size_t dim = shape.size() == 3 ? 1 : 0, rows = shape[dim], inner = shape.back();
      const std::size_t outer = shape.size() == 3 ? shape[0] : 1;
      std::vector<double> v = tg::randint(-3, 4, shape).to(tg::kFloat64).to_vector<double>();  // many ties
      const bool sparse = rows > 1024;
      for (std::size_t k = 0; k < v.size(); k += sparse ? 2003 : 7) v[k] = NAN;
      for (std::size_t k = 3; k < v.size(); k += sparse ? 1201 : 11) v[k] = k % 2 ? INFINITY : -INFINITY;
      Tensor x = Tensor(v, shape).to(dtype).set_requires_grad(true);
      for (const bool largest : {true, false}) {
        CAPTURE(tg::shape_str(shape));
        CAPTURE(tg::dtype_name(dtype));
        CAPTURE(largest);
        auto run = [&](int threads) {
          tg::set_num_threads(threads);
          x.set_grad(Tensor());
          const auto [values, index] = largest ? x.max(std::int64_t(dim)) : x.min(std::int64_t(dim));
          tg::sum(values * tg::arange(1.0, double(values.numel()) + 1, 1.0, dtype).reshape(values.shape())).backward();
          tg::set_num_threads(2);
          return std::tuple{values, index, x.grad()};
        };
        const auto [values, index, grad] = run(1);
        const auto [values2, index2, grad2] = run(2);
        CHECK(tg_test::bitwise_equal(values, values2));
        CHECK(index.to_vector<std::int64_t>() == index2.to_vector<std::int64_t>());
        const std::vector<std::int64_t> got = index.to_vector<std::int64_t>();
        const std::vector<double> got_values = tg_test::flat(values), got_grad = tg_test::flat(grad);
        std::vector<double> want_grad(v.size(), 0.0);
        for (std::size_t o = 0; o < outer; ++o)
          for (std::size_t i = 0; i < inner; ++i) {
            auto at = [&](std::size_t r) { return (o * rows + r) * inner + i; };
            std::size_t best = 0;
            for (std::size_t r = 1; r < rows; ++r) {
              const double a = v[at(r)], b = v[at(best)];
              if (!std::isnan(b) && (std::isnan(a) || (largest ? a > b : a < b))) best = r;
            }
            const std::size_t k = o * inner + i;
            INFO("position ", k);
            CHECK(got[k] == std::int64_t(best));
            if (std::isnan(v[at(best)])) CHECK(std::isnan(got_values[k]));
            else CHECK(got_values[k] == v[at(best)]);
            want_grad[at(best)] = double(k + 1);
          }
        CHECK(got_grad == want_grad);
      }
    }
}

TEST_CASE("sum over any set of dims, in one pass for up to two runs of reduced dims, matches a plain loop") {
  // Every subset of dims of shapes of rank 1..5 (sizes 1, 2, 3 and 0), float32 and float64,
  // against a double loop over the input: the runs merge, pad and split correctly.
  const std::vector<tg::Shape> shapes = {{3},          {2, 3},       {3, 1, 2},       {2, 3, 2, 3},
                                         {3, 2, 1, 2, 3}, {2, 1, 3, 2, 2}, {2, 0, 3}, {1, 1, 1}};
  for (const tg::Shape& shape : shapes) {
    const std::size_t rank = shape.size();
    for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
      tg::manual_seed(1);
      const Tensor a = tg::randn(shape, dtype);
      const std::vector<double> x = a.to_vector<double>();
      for (std::size_t mask = 1; mask < (1u << rank); ++mask) {
        std::vector<std::int64_t> dims;
        for (std::size_t d = 0; d < rank; ++d)
          if (mask & (1u << d)) dims.push_back(std::int64_t(d));
        INFO("shape " << tg::shape_str(shape) << " dims mask " << mask << " " << tg::dtype_name(dtype));
        const Tensor s = tg::sum(a, dims, true);
        // Reference: every input element added into its output position.
        tg::Shape out_shape = shape;
        for (std::int64_t d : dims) out_shape[std::size_t(d)] = 1;
        std::size_t out_numel = 1;
        for (std::size_t v : out_shape) out_numel *= v;
        std::vector<double> expected(out_numel, 0.0);
        for (std::size_t flat = 0; flat < x.size(); ++flat) {
          std::size_t rest = flat, out_index = 0, out_stride = 1;
          for (std::size_t d = rank; d-- > 0;) {
            const std::size_t i = rest % shape[d];
            rest /= shape[d];
            if (out_shape[d] != 1) out_index += i * out_stride;
            out_stride *= out_shape[d];
          }
          expected[out_index] += x[flat];
        }
        CHECK(s.shape() == out_shape);
        check_close(s, expected, dtype == tg::kFloat32 ? 1e-5 : 1e-12);
      }
    }
  }
}

namespace {

// Σ_r a[o][r][i] in double, for a of shape (outer, rows, columns): a plain loop.
std::vector<double> middle_sums(const Tensor& a) {
  const std::size_t outer = a.shape()[0], rows = a.shape()[1], columns = a.shape()[2];
  const std::vector<double> x = tg_test::flat(a);
  std::vector<double> sums(outer * columns, 0.0);
  for (std::size_t o = 0; o < outer; ++o)
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t i = 0; i < columns; ++i) sums[o * columns + i] += x[(o * rows + r) * columns + i];
  return sums;
}

}  // namespace

// A sum over a dim with 2-8 columns after it keeps the columns' sums in registers, over blocks of
// 1024 rows added in order: every column count around that range, row counts around the blocks
// (odd ones too), one and three outer rows, both dtypes, against a double loop; the same bits at 1
// and 2 threads; the gradient (a broadcast of short rows) exact.
TEST_CASE("sum over a dim with a few columns after it matches a plain loop, on many rows and both thread counts") {
  const int threads = tg::get_num_threads();
  for (std::size_t columns = 1; columns <= 9; ++columns)
    for (std::size_t rows : {1, 2, 7, 1024, 2501})
      for (std::size_t outer : {1, 3})
        for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
          INFO(outer, " x ", rows, " x ", columns, dtype == tg::kFloat32 ? " float32" : " float64");
          tg::manual_seed(2);
          const Tensor a = tg::randn({outer, rows, columns}, dtype).set_requires_grad();
          const std::vector<double> expected = middle_sums(a);
          tg::set_num_threads(1);
          const Tensor one = tg::sum(a, 1);
          tg::set_num_threads(2);
          const Tensor two = tg::sum(a, 1);
          tg::set_num_threads(threads);
          CHECK(one.shape() == tg::Shape{outer, columns});
          // (9 columns sum in float32 in row order: error up to ~1e-6 of the row count)
          check_close(two, expected, (dtype == tg::kFloat32 ? 1e-6 : 1e-14) * double(4 * rows));
          CHECK(tg_test::bitwise_equal(one, two));
          const Tensor g = tg::randn({outer, columns}, dtype);
          two.backward(g);
          const std::vector<double> vg = tg_test::flat(g), ga = tg_test::flat(a.grad());
          for (std::size_t k = 0; k < ga.size(); ++k)
            CHECK(ga[k] == vg[k / (rows * columns) * columns + k % columns]);
        }
}

// A sum over dim 0 of a matrix adds blocks of rows (64 or more, by the sizes) into rows of sums
// and those in block order; a row of 32 KB or more is read in strips; up to 8 SIMD batches of
// columns sum in registers (every batch count, tails too, in either dtype). Row counts around one and
// several blocks, columns from past the register sums to several strips, one outer row and two
// (which sum each output in row order, in strips too), both dtypes: against a double loop, and
// the same bits at 1 and 2 threads.
TEST_CASE("sum over dim 0 in blocks of rows and strips of columns matches a plain loop, the same bits at 1 and 2 threads") {
  const int threads = tg::get_num_threads();
  const std::vector<std::pair<std::size_t, std::size_t>> shapes = {
      {1, 9},      {63, 16},   {64, 17},    {65, 100},   {129, 1000}, {1000, 1000}, {2501, 33},
      {30001, 9},  {20000, 12}, {300, 40},   {100, 64},   {257, 127},  {64, 128},    {65, 129},
      {300, 4095}, {200, 5000}, {130, 8192}, {129, 8193}, {70, 20011}, {0, 40},      {5, 0}};
  for (const auto& [rows, columns] : shapes)
    for (std::size_t outer : {1, 2})
      for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
        // Under ASan (a Debug build, ~70x slower) shapes of more than 300K values run once per dtype.
        if (tg_test::kSanitized && outer > 1 && rows * columns > 300000) continue;
        INFO(outer, " x ", rows, " x ", columns, dtype == tg::kFloat32 ? " float32" : " float64");
        tg::manual_seed(3);
        const Tensor a = tg::randn({outer, rows, columns}, dtype);
        const std::vector<double> expected = middle_sums(a);
        tg::set_num_threads(1);
        const Tensor one = outer == 1 ? tg::sum(a.reshape({std::int64_t(rows), std::int64_t(columns)}), 0) : tg::sum(a, 1);
        tg::set_num_threads(2);
        const Tensor two = outer == 1 ? tg::sum(a.reshape({std::int64_t(rows), std::int64_t(columns)}), 0) : tg::sum(a, 1);
        tg::set_num_threads(threads);
        CHECK(two.numel() == outer * columns);
        check_close(two, expected, (dtype == tg::kFloat32 ? 1e-6 : 1e-14) * double(4 * std::max<std::size_t>(rows, 1)));
        CHECK(tg_test::bitwise_equal(one, two));
      }
}

TEST_CASE("broadcast of one value per run (channel-wise) equals the explicitly expanded op, either side") {
  // (N, C, L) op (C, 1), (N, C, H, W) op (1, C, 1, 1), (A, B, L) op (A, B, 1), odd run lengths
  // (SIMD tails), float32 and float64, the small side first or second, and the gradients.
  const std::vector<std::pair<tg::Shape, tg::Shape>> cases = {
      {{2, 3, 5}, {3, 1}}, {{2, 3, 4, 5}, {1, 3, 1, 1}}, {{4, 2, 17}, {4, 2, 1}}, {{3, 33}, {3, 1}},
      {{2, 3, 2, 7}, {3, 2, 1}}, {{5, 1, 9}, {1, 1, 1}}, {{2, 0, 3}, {0, 1}}};
  for (const auto& [big_shape, small_shape] : cases)
    for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
      INFO(tg::shape_str(big_shape) << " op " << tg::shape_str(small_shape) << " " << tg::dtype_name(dtype));
      tg::manual_seed(4);
      Tensor big = tg::randn(big_shape, dtype).set_requires_grad();
      Tensor small = (tg::rand(small_shape, dtype) + 0.5).detach().set_requires_grad();
      const Tensor expanded = tg::expand(small.detach(), std::vector<std::int64_t>(big_shape.begin(), big_shape.end())).clone();
      const Tensor denominator = tg::abs(big.detach()) + 1.0;
      const Tensor product = big * small, quotient = small / denominator, sum = small + big;
      check_close(product, (big.detach() * expanded).to_vector<double>(), 0);
      check_close(quotient, (expanded / denominator).to_vector<double>(), 0);
      check_close(sum, (expanded + big.detach()).to_vector<double>(), 0);
      (product.sum() + quotient.sum() * 2.0).backward();
      // d/dsmall = Σ big + Σ 2/(|big|+1) over each run; d/dbig = small (expanded).
      check_close(big.grad(), expanded.to_vector<double>(), dtype == tg::kFloat32 ? 1e-6 : 1e-12);
      const Tensor expected_small = tg::sum_to(big.detach() + 2.0 / denominator, small_shape);
      check_close(small.grad(), expected_small.to_vector<double>(), dtype == tg::kFloat32 ? 1e-5 : 1e-12);
    }
}

// Every broadcast runs row by row over the output's merged dims (broadcast_rows), each task
// stepping through its rows like an odometer from its first row's index. Every pattern of size-1
// dims on both sides for ranks 1 to 5, the right side of lower rank too, sizes past the parallel
// grain (several tasks, each starting mid-shape), against xtensor's broadcasting; expand (the
// same rows, copied or filled) likewise; at 1 and 2 threads.
TEST_CASE("every broadcast pattern of a binary op and of expand equals xtensor's broadcasting, 1 and 2 threads") {
  const std::vector<tg::Shape> fulls = {{7},          {3, 5},        {2, 3, 4},      {2, 1, 3, 17},
                                        {3, 2, 2, 4, 3}, {300, 7, 40}, {40, 33, 2, 16}, {40000, 3}};
  const int threads = tg::get_num_threads();
  for (const tg::Shape& full : fulls) {
    const std::size_t rank = full.size();
    for (unsigned ones_a = 0; ones_a < (1u << rank); ++ones_a)
      for (unsigned ones_b = 0; ones_b < (1u << rank); ++ones_b) {
        tg::Shape shape_a, shape_b;
        for (std::size_t d = 0; d < rank; ++d) {
          shape_a.push_back(ones_a >> d & 1u ? 1 : full[d]);
          shape_b.push_back(ones_b >> d & 1u ? 1 : full[d]);
        }
        const bool lower = ones_b & 1u;  // then b also drops its leading 1
        if (lower) shape_b.erase(shape_b.begin());
        INFO(tg::shape_str(shape_a), " op ", tg::shape_str(shape_b));
        tg::manual_seed(6);
        const Tensor a = tg::randn(shape_a, tg::kFloat64), b = tg::randn(shape_b, tg::kFloat64);
        const auto& va = a.values<double>();
        const auto& vb = b.values<double>();
        const xt::xarray<double> want = va * vb - vb, want_difference = va - vb;
        const tg::Shape out_shape(want.shape().begin(), want.shape().end());
        const xt::xarray<double> want_expand_b = xt::broadcast(vb, want.shape());
        for (int t : {1, 2}) {
          tg::set_num_threads(t);
          INFO(t, " threads");
          const Tensor got = a * b - b, got_difference = a - b;
          const Tensor expanded = tg::expand(b, std::vector<std::int64_t>(out_shape.begin(), out_shape.end()));
          REQUIRE(got.shape() == out_shape);
          REQUIRE(got_difference.shape() == out_shape);
          REQUIRE(expanded.shape() == out_shape);
          const double* g = got.data<double>();
          const double* d = got_difference.data<double>();
          const double* e = expanded.data<double>();
          CHECK(std::equal(g, g + want.size(), want.data()));
          CHECK(std::equal(d, d + want.size(), want_difference.data()));
          CHECK(std::equal(e, e + want.size(), want_expand_b.data()));
          if (t == 1) {  // float32 too: the same products as of both sides expanded first
            const std::vector<std::int64_t> to(out_shape.begin(), out_shape.end());
            const Tensor a32 = a.to(tg::kFloat32), b32 = b.to(tg::kFloat32);
            CHECK(tg_test::bitwise_equal(a32 * b32, tg::expand(a32, to) * tg::expand(b32, to)));
          }
        }
      }
  }
  tg::set_num_threads(threads);
}

// mul's backward sums grad·other straight into the shape of an operand that was broadcast
// (mul_sum_to: no product tensor). Every pattern of broadcast dims on both sides for ranks 1 to 4,
// the right operand of lower rank, size-1 and empty dims in the output, and sizes past the
// parallel grain (the largest kept run cut across tasks), float64 and float32, against sum_to of
// the explicit product in float64; the same bits at 1 and 2 threads.
TEST_CASE("mul's gradient of a broadcast operand equals sum_to(grad · other) on every broadcast pattern") {
  const std::vector<tg::Shape> fulls = {{7}, {3, 5}, {2, 3, 4}, {2, 1, 3, 17}, {3, 2, 5, 4}, {300, 200}, {40, 8, 150},
                                        {20000, 3}, {2, 0, 3}};
  for (const tg::Shape& full : fulls) {
    const std::size_t rank = full.size();
    for (unsigned ones_a = 0; ones_a < (1u << rank); ++ones_a)
      for (unsigned ones_b = 0; ones_b < (1u << rank); ++ones_b) {
        bool valid = true;  // the output must be `full`: some operand has each dim's size
        tg::Shape shape_a, shape_b;
        for (std::size_t d = 0; d < rank; ++d) {
          const bool a1 = ones_a >> d & 1u, b1 = ones_b >> d & 1u;
          valid = valid && !(a1 && b1 && full[d] != 1);
          shape_a.push_back(a1 ? 1 : full[d]);
          shape_b.push_back(b1 ? 1 : full[d]);
        }
        if (!valid) continue;
        while (shape_b.size() > 1 && shape_b.front() == 1) shape_b.erase(shape_b.begin());  // lower rank
        INFO(tg::shape_str(shape_a), " * ", tg::shape_str(shape_b));
        tg::manual_seed(5);
        const Tensor a64 = tg::randn(shape_a, tg::kFloat64), b64 = tg::randn(shape_b, tg::kFloat64);
        const Tensor g64 = tg::randn(full, tg::kFloat64);
        const std::vector<double> expected_a = tg_test::flat(tg::sum_to(g64 * b64, shape_a));
        const std::vector<double> expected_b = tg_test::flat(tg::sum_to(g64 * a64, shape_b));
        for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
          INFO(tg::dtype_name(dtype));
          auto grads = [&] {
            const Tensor a = a64.to(dtype).detach().set_requires_grad(), b = b64.to(dtype).detach().set_requires_grad();
            (a * b).backward(g64.to(dtype));
            return std::pair{a.grad(), b.grad()};
          };
          const auto [grad_a, grad_b] = grads();
          double scale = 1;  // float32: relative to the largest sum (a sum of up to 300 products)
          for (double e : expected_a) scale = std::max(scale, std::abs(e));
          for (double e : expected_b) scale = std::max(scale, std::abs(e));
          const double tol = (dtype == tg::kFloat64 ? 1e-12 : 1e-5) * scale;
          CHECK(grad_a.shape() == shape_a);
          CHECK(grad_b.shape() == shape_b);
          check_close(grad_a, expected_a, tol);
          check_close(grad_b, expected_b, tol);
          if (g64.numel() > 32768) {
            const int threads = tg::get_num_threads();
            tg::set_num_threads(1);
            const auto [one_a, one_b] = grads();
            tg::set_num_threads(2);
            const auto [two_a, two_b] = grads();
            tg::set_num_threads(threads);
            CHECK(tg_test::bitwise_equal(one_a, two_a));
            CHECK(tg_test::bitwise_equal(one_b, two_b));
          }
        }
      }
  }
  // Called directly, grad may be broadcast along a dim that neither the result nor `other` has:
  // there the sum is other's value times Σ grad.
  const std::vector<std::array<tg::Shape, 3>> direct = {  // grad, other, result
      {{{3, 5}, {3, 1}, {3, 1}}}, {{{4, 6, 7}, {1, 6, 1}, {4, 1, 1}}}, {{{300, 200}, {300, 1}, {300, 1}}},
      {{{2, 3, 4}, {4}, {2, 3, 1}}}};
  for (const auto& [grad_shape, other_shape, shape] : direct)
    for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
      INFO(tg::shape_str(grad_shape), " ", tg::shape_str(other_shape), " to ", tg::shape_str(shape), " ",
           tg::dtype_name(dtype));
      const Tensor g = tg::randn(grad_shape, tg::kFloat64), other = tg::randn(other_shape, tg::kFloat64);
      const Tensor got = tg::mul_sum_to(g.to(dtype), other.to(dtype), shape);
      CHECK(got.shape() == shape);
      check_close(got, tg_test::flat(tg::sum_to(g * other, shape)), dtype == tg::kFloat64 ? 1e-12 : 1e-3);
    }
}

// A broadcast whose result is empty (a 0 in some dim) is an empty result and zero gradients, for
// every broadcasting binary op: the row and run loops of the broadcast once divided by the empty
// row length (SIGFPE on (2, 0, 3) * (1, 0, 3)).
TEST_CASE("binary ops broadcast over an empty dim give empty results and gradients") {
  const std::vector<std::pair<tg::Shape, tg::Shape>> pairs = {
      {{2, 0, 3}, {1, 0, 3}}, {{2, 0, 3}, {3}}, {{2, 0, 3}, {0, 1}}, {{1, 0, 1}, {2, 0, 3}}, {{2, 1, 3}, {2, 0, 3}},
      {{2, 0, 1}, {2, 0, 3}}, {{0}, {1}}, {{4, 0}, {4, 1}}};
  using Binary = Tensor (*)(const Tensor&, const Tensor&);
  const std::vector<std::pair<const char*, Binary>> ops = {
      {"add", [](const Tensor& a, const Tensor& b) { return a + b; }},
      {"sub", [](const Tensor& a, const Tensor& b) { return a - b; }},
      {"mul", [](const Tensor& a, const Tensor& b) { return a * b; }},
      {"div", [](const Tensor& a, const Tensor& b) { return a / b; }},
      {"pow", [](const Tensor& a, const Tensor& b) { return tg::pow(a, b); }},
      {"maximum", [](const Tensor& a, const Tensor& b) { return tg::maximum(a, b); }},
      {"minimum", [](const Tensor& a, const Tensor& b) { return tg::minimum(a, b); }}};
  for (const auto& [shape_a, shape_b] : pairs)
    for (const auto& [name, op] : ops)
      for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
        INFO(name, " ", tg::shape_str(shape_a), " ", tg::shape_str(shape_b), " ", tg::dtype_name(dtype));
        const Tensor a = tg::rand(shape_a, dtype).set_requires_grad(), b = tg::rand(shape_b, dtype).set_requires_grad();
        const Tensor y = op(a, b);
        CHECK(y.numel() == 0);
        tg::sum(y).backward();
        CHECK(a.grad().shape() == shape_a);
        CHECK(b.grad().shape() == shape_b);
        for (double v : tg_test::flat(a.grad())) CHECK(v == 0.0);
        for (double v : tg_test::flat(b.grad())) CHECK(v == 0.0);
      }
}

// narrow, slice and index_select share one gather (core/ops/shape.cpp's gather_rows): consecutive
// rows are one run per outer row (copied, added back, or written between zeros in the backward),
// others a row at a time (one value at a time when the dim is the last; float32 steps of 2 along
// the last dim 16 values at a time, from even and odd starts, rows of odd and even length). Every dim of a 3-D
// tensor, selections of each kind, sizes across the parallel grain, both dtypes, against loops;
// the backward against the loop of the adjoint, alone and added into a gradient the engine holds.
TEST_CASE("row selections along any dim: consecutive runs, steps, repeats and empty, forward and backward") {
  using Rows = std::vector<std::size_t>;
  tg::manual_seed(31);
  for (const tg::Shape shape : {tg::Shape{3, 4, 5}, tg::Shape{2, 300, 70}, tg::Shape{40, 3, 2000}, tg::Shape{5, 7, 34},
                                tg::Shape{2, 3, 33}})
    for (std::size_t dim = 0; dim < 3; ++dim)
      for (const tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
        const std::size_t size = shape[dim];
        const std::vector<std::pair<std::string, Rows>> selections = {
            {"narrow middle", [&] { Rows r(size - 2); std::iota(r.begin(), r.end(), 1); return r; }()},
            {"narrow all", [&] { Rows r(size); std::iota(r.begin(), r.end(), 0); return r; }()},
            {"narrow one", Rows{size - 1}},
            {"narrow none", Rows{}},
            {"step 2", [&] { Rows r; for (std::size_t i = 0; i < size; i += 2) r.push_back(i); return r; }()},
            {"step 2 from 1", [&] { Rows r; for (std::size_t i = 1; i < size; i += 2) r.push_back(i); return r; }()},
            {"repeats", Rows{size - 1, 0, size - 1, 1}},
        };
        for (const auto& [name, rows] : selections) {
          INFO("shape ", tg::shape_str(shape), " dim ", dim, " ", tg::dtype_name(dtype), " ", name);
          const Tensor x = tg::randn(shape, dtype).set_requires_grad();
          auto select = [&, &name = name, &rows = rows] {
            if (name == "step 2") return tg::slice(x, std::int64_t(dim), 0, std::nullopt, 2);
            if (name == "step 2 from 1") return tg::slice(x, std::int64_t(dim), 1, std::nullopt, 2);
            if (name.rfind("narrow", 0) == 0)
              return tg::narrow(x, std::int64_t(dim), rows.empty() ? 0 : std::int64_t(rows[0]),
                                std::int64_t(rows.size()));
            std::vector<std::int64_t> index(rows.begin(), rows.end());
            return tg::index_select(x, std::int64_t(dim), Tensor(index, {index.size()}));
          };
          const Tensor y = select();
          tg::Shape out_shape = shape;
          out_shape[dim] = rows.size();
          REQUIRE(y.shape() == out_shape);
          const std::size_t outer = dim == 0 ? 1 : dim == 1 ? shape[0] : shape[0] * shape[1];
          const std::size_t inner = dim == 2 ? 1 : dim == 1 ? shape[2] : shape[1] * shape[2];
          const std::vector<double> xs = tg_test::flat(x), ys = tg_test::flat(y);
          std::size_t wrong = 0;
          for (std::size_t o = 0; o < outer; ++o)
            for (std::size_t k = 0; k < rows.size(); ++k)
              for (std::size_t i = 0; i < inner; ++i)
                wrong += ys[(o * rows.size() + k) * inner + i] != xs[(o * size + rows[k]) * inner + i];
          CHECK(wrong == 0);
          // Two selections: the second's backward adds into the gradient the engine then holds for x
          // (RowSelectionNode::add_into_input_gradient).
          const Tensor g = tg::randn(out_shape, dtype);
          (tg::sum(y * g) + tg::sum(select() * g)).backward();
          std::vector<double> expected(xs.size(), 0.0);
          const std::vector<double> gs = tg_test::flat(g);
          for (std::size_t o = 0; o < outer; ++o)
            for (std::size_t k = 0; k < rows.size(); ++k)
              for (std::size_t i = 0; i < inner; ++i)
                expected[(o * size + rows[k]) * inner + i] += 2 * gs[(o * rows.size() + k) * inner + i];
          const std::vector<double> dx = tg_test::flat(x.grad());
          for (std::size_t j = 0; j < dx.size(); ++j)
            wrong += std::fabs(dx[j] - expected[j]) > 1e-5 * (1 + std::fabs(expected[j]));
          CHECK(wrong == 0);
        }
      }
}

// An embedding's gradient, rows of 16 to 127 values gathered many times over with repeats: at
// two threads each task adds the rows of its own range of the table, walking the indices in order
// (core/ops/shape.cpp's scatter_add_rows), so the sums are the same bits as at one thread, and
// equal to the definition.
TEST_CASE("index_select's backward into a table, rows of 16 to 127 values: the same bits at 1 and 2 threads") {
  tg::manual_seed(37);
  for (std::size_t width : {16, 33, 64, 127})
    for (const tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
      INFO("width ", width, " ", tg::dtype_name(dtype));
      const std::size_t rows = 301, picks = 4000;  // picks · width above the parallel grain
      const Tensor index = tg::randint(0, std::int64_t(rows), {picks});
      const Tensor g = tg::randn({picks, width}, dtype);
      std::vector<Tensor> grads;
      for (int threads : {1, 2}) {
        tg::set_num_threads(threads);
        const Tensor table = tg::zeros({rows, width}, dtype).set_requires_grad();
        tg::index_select(table, 0, index).backward(g);
        grads.push_back(table.grad());
      }
      tg::set_num_threads(1);
      CHECK(tg_test::bitwise_equal(grads[0], grads[1]));
      std::vector<double> expected(rows * width, 0.0);
      const std::vector<double> gs = tg_test::flat(g), dx = tg_test::flat(grads[1]);
      const std::vector<std::int64_t> at = index.to_vector<std::int64_t>();
      for (std::size_t k = 0; k < picks; ++k)
        for (std::size_t i = 0; i < width; ++i) expected[std::size_t(at[k]) * width + i] += gs[k * width + i];
      std::size_t wrong = 0;
      for (std::size_t j = 0; j < dx.size(); ++j) wrong += std::fabs(dx[j] - expected[j]) > 1e-4 * (1 + std::fabs(expected[j]));
      CHECK(wrong == 0);
    }
}

// softplus as torch.nn.functional.softplus defines it: x where beta·x > threshold, else
// log(1 + e^(beta·x))/beta; its gradient σ(beta·x) (1 above the threshold). Against long double
// on every SIMD position and a remainder, across the threshold, the kink and both tails.
TEST_CASE("softplus: PyTorch's threshold, no overflow, and its gradient, in both dtypes") {
  std::vector<double> xs;
  for (int i = -200; i <= 200; ++i) xs.push_back(i * 0.173);
  for (double v : {0.0, -0.0, 1e-30, 9.999, 10.0, 10.001, 19.99, 20.0, 20.01, 1e4, -1e4, 88.0, -88.0, 700.0})
    xs.push_back(v);
  for (const tg::DType dtype : {tg::kFloat32, tg::kFloat64})
    for (const auto& [beta, threshold] : {std::pair{1.0, 20.0}, std::pair{2.0, 20.0}, std::pair{0.5, 5.0}}) {
      INFO(tg::dtype_name(dtype), " beta ", beta, " threshold ", threshold);
      const Tensor x = Tensor(xs, {xs.size()}).to(dtype).set_requires_grad();
      const Tensor y = tg::softplus(x, beta, threshold);
      tg::sum(y).backward();
      const std::vector<double> xv = tg_test::flat(x), yv = tg_test::flat(y), dx = tg_test::flat(x.grad());
      const double eps = dtype == tg::kFloat32 ? 0x1p-23 : 0x1p-52;
      std::size_t wrong = 0;
      for (std::size_t i = 0; i < xv.size(); ++i) {
        const long double z = (long double)xv[i] * beta;
        // (z is rounded to the dtype before the comparison, as PyTorch's kernel does.)
        const bool above = (dtype == tg::kFloat32 ? double(float(xv[i] * beta)) : xv[i] * beta) > threshold;
        const long double value = above ? xv[i] : std::log1p(std::exp(z)) / beta;
        const long double slope = above ? 1.0L : 1.0L / (1.0L + std::exp(-z));
        const bool bad = !(std::fabs(yv[i] - double(value)) <= 4 * eps * (std::fabs(double(value)) + 1e-30) + 1e-300) ||
                         !(std::fabs(dx[i] - double(slope)) <= 4 * eps);
        if (bad && wrong < 5)
          MESSAGE("x ", xv[i], " y ", yv[i], " vs ", double(value), " dx ", dx[i], " vs ", double(slope));
        wrong += bad;
      }
      CHECK(wrong == 0);
    }
}

// Sums over rows of every length from 1 to 70 (kernels::lane_sum: pairs of batches, then a whole
// batch and a masked partial one; the lengths cross every one of those boundaries for float32 and
// float64). The masked lanes read zeros, where a term need not be 0: layer_norm's (x - μ)², and
// binary cross-entropy's t·log(p) (log 0). Each against the same values summed in long double.
TEST_CASE("sums over rows of every length: sum, layer_norm and binary_cross_entropy against long double") {
  for (std::size_t n = 1; n <= 70; ++n)
    for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
      INFO("n = ", n, " ", tg::dtype_name(dtype));
      tg::manual_seed(n);
      const Tensor x = (tg::randn({3, n}) * 2.0 + 5.0).to(dtype);
      const std::vector<double> xs = tg_test::flat(x);
      const double ulp = dtype == tg::kFloat32 ? 0x1p-24 : 0x1p-53;
      // sum of a row and of everything
      std::vector<double> row_sums;
      long double all = 0, magnitude = 0;
      for (std::size_t r = 0; r < 3; ++r) {
        long double s = 0;
        for (std::size_t i = 0; i < n; ++i) s += xs[r * n + i];
        row_sums.push_back(double(s));
        all += s;
      }
      for (double v : xs) magnitude += std::abs(v);
      check_close(tg::sum(x, -1), row_sums, 8 * ulp * double(magnitude));
      check_close(tg::sum(x), {double(all)}, 8 * ulp * double(magnitude));
      // layer_norm: (x - μ)·r per row, r = 1/√(Σ(x - μ)²/n + ε)
      std::vector<double> normalised;
      for (std::size_t r = 0; r < 3; ++r) {
        long double mu = 0, squares = 0;
        for (std::size_t i = 0; i < n; ++i) mu += xs[r * n + i];
        mu /= n;
        for (std::size_t i = 0; i < n; ++i) squares += (xs[r * n + i] - mu) * (xs[r * n + i] - mu);
        const long double inv = 1 / std::sqrt(squares / n + 1e-5L);
        for (std::size_t i = 0; i < n; ++i) normalised.push_back(double((xs[r * n + i] - mu) * inv));
      }
      check_close(tg::layer_norm(x, {std::int64_t(n)}), normalised, 64 * ulp * 4);
      // binary cross-entropy, mean over the 3·n values, targets 0 and 1 (log 0 in masked lanes)
      const Tensor p = tg::sigmoid(tg::randn({3, n}).to(dtype));
      const Tensor t = tg::gt(tg::rand({3, n}), tg::full({1}, 0.5)).to(dtype);
      const std::vector<double> ps = tg_test::flat(p), ts = tg_test::flat(t);
      long double loss = 0;
      for (std::size_t i = 0; i < ps.size(); ++i)
        loss -= ts[i] * std::log((long double)ps[i]) + (1 - ts[i]) * std::log1p(-(long double)ps[i]);
      check_close(tg::binary_cross_entropy(p, t), {double(loss / (3 * n))}, 64 * ulp);
    }
}

// PyTorch: torch.ne(NaN, anything) is True, torch.eq False, and every ordered comparison False;
// checked at every position of a row of 37 (whole batches and the tail) in both dtypes.
TEST_CASE("comparisons with NaN follow PyTorch at every position: ne true, the others false") {
  for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
    for (std::size_t at = 0; at < 37; ++at) {
      INFO(tg::dtype_name(dtype), " NaN at ", at);
      std::vector<double> with_nan(37, 1.0);
      with_nan[at] = NAN;
      const Tensor x = Tensor(with_nan, {37}).to(dtype), ones = tg::ones({37}, dtype);
      for (const Tensor& y : {tg::ne(x, ones), tg::ne(ones, x), tg::ne(x, x), tg::ne(x, 1.0)}) {
        const std::vector<double> v = y.to_vector<double>();
        CHECK(v[at] == 1.0);
        CHECK(std::count(v.begin(), v.end(), 1.0) == 1);  // and false where both are 1
      }
      for (const Tensor& y : {tg::eq(x, x), tg::lt(x, ones), tg::le(x, ones), tg::gt(x, ones), tg::ge(x, ones)})
        CHECK(y.to_vector<double>()[at] == 0.0);
    }
  }
}
