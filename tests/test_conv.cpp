// Convolution, pooling, BatchNorm2d and BatchNorm3d: gradcheck of every op and layer (float64),
// (forward and backward), "same" padding, and errors.
#include "helpers.hpp"
#include "../core/xtensor.hpp"

#include <cmath>
#include <optional>
#include <limits>
#include <random>
#include <sstream>

using tg::Tensor;
using tg_test::check_close;
using tg_test::first;
using tg_test::sum_of_squares;
using tg_test::cos_;
using tg_test::seq;
using tg_test::sin_;
using tg_test::uniform64;
using Inputs = std::vector<Tensor>;
namespace nn = tg::nn;

namespace {

// x[i] = f(i) · scale over the flattened shape, as the golden script builds its inputs.

Tensor last(const Tensor& t, std::size_t n) {
  const std::vector<double> v = t.to_vector<double>();
  return Tensor(std::vector<double>(v.end() - std::ptrdiff_t(n), v.end()), {n});
}

}  // namespace

// Golden values from PyTorch 1.13 (/usr/bin/python3):
//   import torch, torch.nn.functional as F
//   # Deterministic inputs: x[i] = sin(i), w[i] = cos(i) / 4, b[i] = 0.1 * i (flattened, float64).
//   def seq(shape, f, scale=1.0):
//       n = 1
//       for s in shape: n *= s
//       return (f(torch.arange(n, dtype=torch.float64)) * scale).reshape(shape)
//   x = seq((2, 4, 5, 6), torch.sin).requires_grad_()
//   w = seq((6, 2, 3, 2), torch.cos, 0.25).requires_grad_()
//   b = (0.1 * torch.arange(6, dtype=torch.float64)).requires_grad_()
//   y = F.conv2d(x, w, b, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
//   g = seq(tuple(y.shape), torch.cos)
//   y.backward(g)
//   print("conv2d_y_shape =", list(y.shape))
//   print("conv2d_y_sum =", y.sum().item(), "conv2d_y_sq =", (y * y).sum().item())
//   print("conv2d_y_first =", y.flatten()[:6].tolist())
//   print("conv2d_dx_first =", x.grad.flatten()[:6].tolist(), "dx_sq =", (x.grad ** 2).sum().item())
//   print("conv2d_dw_first =", w.grad.flatten()[:6].tolist(), "dw_sq =", (w.grad ** 2).sum().item())
//   print("conv2d_db =", b.grad.tolist())
//   x1 = seq((2, 3, 7), torch.sin)
//   w1 = seq((4, 3, 3), torch.cos, 0.25)
//   print("conv1d_same =", F.conv1d(x1, w1, None, padding='same').flatten()[:8].tolist())
//   w2 = seq((4, 3, 4), torch.cos, 0.25)
//   y2 = F.conv1d(x1, w2, None, padding='same', dilation=1)
//   print("conv1d_same_even_shape =", list(y2.shape), "first =", y2.flatten()[:8].tolist(), "last =", y2.flatten()[-4:].tolist())
//   p = seq((2, 3, 5, 7), torch.sin)
//   print("maxpool =", F.max_pool2d(p, 3, stride=2, padding=1).flatten()[:8].tolist(), list(F.max_pool2d(p, 3, stride=2, padding=1).shape))
//   print("maxpool_ceil =", list(F.max_pool2d(p, 2, stride=2, ceil_mode=True).shape), F.max_pool2d(p, 2, stride=2, ceil_mode=True).flatten()[:8].tolist())
//   print("avgpool =", F.avg_pool2d(p, 3, stride=2, padding=1).flatten()[:8].tolist())
//   print("avgpool_nopad =", F.avg_pool2d(p, 3, stride=2, padding=1, count_include_pad=False).flatten()[:8].tolist())
//   print("avgpool_ceil =", list(F.avg_pool2d(p, 2, stride=2, ceil_mode=True).shape), F.avg_pool2d(p, 2, stride=2, ceil_mode=True).flatten()[-4:].tolist())
//   print("avgpool_div =", F.avg_pool2d(p, 3, stride=2, padding=1, ceil_mode=True, divisor_override=-4).flatten()[:8].tolist(), list(F.avg_pool2d(p, 3, stride=2, padding=1, ceil_mode=True, divisor_override=-4).shape))
//   print("adaptive =", F.adaptive_avg_pool2d(p, (3, 4)).flatten()[:8].tolist())
//   q = seq((2, 3, 10), torch.sin)
//   print("maxpool1d =", F.max_pool1d(q, 3, stride=2, padding=1, dilation=2).flatten()[:8].tolist(), list(F.max_pool1d(q, 3, stride=2, padding=1, dilation=2).shape))
//   print("adaptive1d =", F.adaptive_avg_pool1d(q, 4).flatten()[:8].tolist())

TEST_CASE("conv2d matches PyTorch: stride, padding, dilation, groups, bias, forward and backward") {
  const Tensor x = seq({2, 4, 5, 6}, sin_).set_requires_grad();
  const Tensor w = seq({6, 2, 3, 2}, cos_, 0.25).set_requires_grad();
  const Tensor b = (tg::arange(6, tg::kFloat64) * 0.1).set_requires_grad();
  tg::Conv2dParams p;
  p.stride = {2, 1};
  p.padding = {1, 2};
  p.dilation = {1, 2};
  p.groups = 2;
  const Tensor y = tg::conv2d(x, w, b, p);
  CHECK(y.shape() == tg::Shape{2, 6, 3, 8});
  CHECK(tg::sum(y).item() == doctest::Approx(70.71594044511322).epsilon(1e-12));
  CHECK(sum_of_squares(y) == doctest::Approx(33.946596595292164).epsilon(1e-12));
  check_close(first(y, 6), {0.2041441469655985, -0.07035122162043529, 0.009476546445541268, -0.2776095943888153, -0.3094627544043331, -0.056797285181118616}, 1e-12);
  y.backward(seq(y.shape(), cos_));
  check_close(first(x.grad(), 6), {-0.05983346232049705, -0.1308912210045694, -0.08160819473283316, 0.042705029420797486, 0.12775544646928044, 0.09534809520833432}, 1e-12);
  CHECK(sum_of_squares(x.grad()) == doctest::Approx(3.3808074636484795).epsilon(1e-12));
  check_close(first(w.grad(), 6), {3.9769347921342026, -2.6519775174016935, -1.4122018067020456, 1.587182096673035, -1.6634145944221517, -2.740447079576556}, 1e-12);
  CHECK(sum_of_squares(w.grad()) == doctest::Approx(454.7036991442004).epsilon(1e-12));
  check_close(b.grad(), {-0.5310250254508257, 1.6755247328597194, 1.9524698613568712, -0.019131277568195493, -1.9687000340128027, -1.6510311747755297}, 1e-12);
}

TEST_CASE("Conv1d with padding same, odd and even kernels, matches PyTorch") {
  const Tensor x = seq({2, 3, 7}, sin_);
  nn::Conv1d odd(nn::Conv1dOptions(3, 4, 3).padding(nn::Padding::Same).bias(false));
  odd.to(tg::kFloat64);
  {
    tg::NoGradGuard no_grad;
    odd.weight.values_mut<double>() = seq({4, 3, 3}, cos_, 0.25).values<double>();
  }
  check_close(first(odd(x), 8), {0.03830928768076329, 0.09483638646247246, 0.10452630738254197, 0.018115223342866353, -0.08495091349560789, -0.10991357223743, -0.0052875818186926766, -0.09810333322231557}, 1e-12);
  nn::Conv1d even(nn::Conv1dOptions(3, 4, 4).padding(nn::Padding::Same).bias(false));
  even.to(tg::kFloat64);
  {
    tg::NoGradGuard no_grad;
    even.weight.values_mut<double>() = seq({4, 3, 4}, cos_, 0.25).values<double>();
  }
  const Tensor y = even(x);
  CHECK(y.shape() == tg::Shape{2, 4, 7});
  check_close(first(y, 8), {-0.3132114855713132, -0.18150009764918315, 0.29707342924684116, 0.5025190153176311, 0.245950936190565, -0.26177132458548463, -0.37339983304630947, -0.18379746608152428}, 1e-12);
  check_close(last(y, 4), {-0.18980838133805067, 0.31366793350326844, 0.34274888215858035, 0.026712204659635017}, 1e-12);
  CHECK_THROWS_WITH_AS(nn::Conv1d(nn::Conv1dOptions(3, 4, 3).padding(nn::Padding::Same).stride(2)),
                       "Conv1d: padding \"same\" needs stride 1 (as in PyTorch), got stride 2", tg::Error);
}

TEST_CASE("pooling matches PyTorch: max, average (with and without padding counted, divisor_override), ceil_mode, adaptive, 1-D") {
  const Tensor p = seq({2, 3, 5, 7}, sin_);
  tg::Pool2dParams k3;
  k3.kernel = {3, 3};
  k3.stride = {2, 2};
  k3.padding = {1, 1};
  const Tensor m = tg::max_pool2d(p, k3);
  CHECK(m.shape() == tg::Shape{2, 3, 3, 4});
  check_close(first(m, 8), {0.9893582466233818, 0.9893582466233818, 0.1411200080598672, 0.4201670368266409, 0.9906073556948704, 0.9893582466233818, 0.7625584504796027, 0.956375928404503}, 1e-12);
  tg::Pool2dParams k2;
  k2.kernel = {2, 2};
  k2.stride = {2, 2};
  k2.ceil_mode = true;
  CHECK(tg::max_pool2d(p, k2).shape() == tg::Shape{2, 3, 3, 4});
  check_close(first(tg::max_pool2d(p, k2), 8), {0.9893582466233818, 0.9092974268256817, -0.5365729180004349, 0.4201670368266409, 0.9906073556948704, -0.2879033166650653, 0.7625584504796027, 0.956375928404503}, 1e-12);
  check_close(first(tg::avg_pool2d(p, k3), 8), {0.27642398112778527, 0.3054826711854682, -0.40613233303907864, -0.15052729489287314, 0.45722715227109006, -0.1669119358759928, -0.43538482511706467, 0.29615010645565465}, 1e-12);
  k3.count_include_pad = false;
  check_close(first(tg::avg_pool2d(p, k3), 8), {0.6219539575375168, 0.45822400677820224, -0.6091984995586179, -0.33868641350896456, 0.6858407284066351, -0.1669119358759928, -0.43538482511706467, 0.4442251596834819}, 1e-12);
  check_close(last(tg::avg_pool2d(p, k2), 4), {0.5677150297398758, -0.8447697054465871, 0.13538145132504126, 0.9964666417661079}, 1e-12);
  k3.ceil_mode = true;
  k3.divisor_override = -4;
  CHECK(tg::avg_pool2d(p, k3).shape() == tg::Shape{2, 3, 3, 4});
  check_close(first(tg::avg_pool2d(p, k3), 8), {-0.6219539575375168, -0.6873360101673034, 0.9137977493379269, 0.33868641350896456, -1.0287610926099526, 0.37555185572098376, 0.9796158565133956, -0.6663377395252229}, 1e-12);
  check_close(first(tg::adaptive_avg_pool2d(p, {3, 4}), 8), {0.6219539575375168, 0.45822400677820224, -0.6091984995586179, -0.33868641350896456, 0.6858407284066351, -0.16691193587599276, -0.43538482511706467, 0.4442251596834819}, 1e-12);
  const Tensor q = seq({2, 3, 10}, sin_);
  const Tensor m1 = tg::max_pool1d(q, 3, 2, 1, 2);
  CHECK(m1.shape() == tg::Shape{2, 3, 4});
  check_close(first(m1, 8), {0.8414709848078965, 0.8414709848078965, 0.6569865987187891, 0.6569865987187891, 0.4201670368266409, 0.6502878401571168, 0.6502878401571168, 0.6502878401571168}, 1e-12);
  check_close(first(tg::adaptive_avg_pool1d(q, 4), 8), {0.583589470544526, 0.09787164652587355, -0.1937843913810918, 0.6861544435279758, -0.6935280784801693, 0.29140049150702546, -0.19967098946250175, -0.5208358429960934}, 1e-12);
}

TEST_CASE("gradcheck: convolution and pooling, every option") {
  tg::manual_seed(21);
  struct Case {
    std::string name;
    std::function<Tensor(const Inputs&)> fn;
    Inputs inputs;
  };
  auto conv = [](tg::Conv2dParams p) {
    return [p](const Inputs& x) { return tg::conv2d(x[0], x[1], x.size() > 2 ? x[2] : Tensor(), p); };
  };
  tg::Conv2dParams strided;
  strided.stride = {2, 3};
  strided.padding = {1, 0};
  tg::Conv2dParams dilated;
  dilated.dilation = {2, 1};
  dilated.padding = {2, 1};
  tg::Conv2dParams grouped;
  grouped.groups = 3;
  grouped.padding = {1, 1};
  tg::Conv2dParams same_even;
  same_even.padding = {0, 0};
  same_even.extra_end = {1, 1};
  tg::Conv2dParams padded;
  padded.padding = {1, 2};
  tg::Pool2dParams max3;
  max3.kernel = {3, 2};
  max3.stride = {2, 1};
  max3.padding = {1, 1};
  max3.dilation = {1, 2};
  tg::Pool2dParams avg3 = max3;
  avg3.dilation = {1, 1};
  avg3.count_include_pad = false;
  avg3.ceil_mode = true;
  const std::vector<Case> cases = {
      {"conv2d", conv({}), {uniform64({2, 3, 5, 4}), uniform64({4, 3, 3, 2}), uniform64({4})}},
      {"conv2d no bias, strided", conv(strided), {uniform64({2, 2, 6, 7}), uniform64({3, 2, 3, 3})}},
      {"conv2d dilated", conv(dilated), {uniform64({1, 2, 5, 5}), uniform64({2, 2, 2, 3}), uniform64({2})}},
      {"conv2d groups 3", conv(grouped), {uniform64({2, 3, 4, 4}), uniform64({6, 1, 3, 3}), uniform64({6})}},
      {"conv2d extra end padding", conv(same_even), {uniform64({1, 2, 4, 4}), uniform64({2, 2, 2, 2})}},
      {"conv2d unbatched", conv({}), {uniform64({2, 4, 4}), uniform64({3, 2, 2, 2})}},
      {"conv2d Winograd (3x3, stride 1, 16 channels)", conv(padded),
       {uniform64({1, 16, 3, 2}), uniform64({16, 16, 3, 3}), uniform64({16})}},
      {"conv1d", [](const Inputs& x) { return tg::conv1d(x[0], x[1], x[2], 2, 1, 1, 1); },
       {uniform64({2, 3, 9}), uniform64({4, 3, 3}), uniform64({4})}},
      // (x fixed: Winograd's rows need 1024 outputs a channel, too many inputs to perturb one by
      // one; dx is checked against the definition in float64 in its own case)
      {"conv1d Winograd F(4, 3) (kernel 3, stride 1, 16 -> 17 channels, 64 rows of 18): dw, db",
       [x = uniform64({64, 16, 18})](const Inputs& p) { return tg::conv1d(x, p[0], p[1], 1, 2, 1, 1); },
       {uniform64({17, 16, 3}), uniform64({17})}},
      // (the weight a fixed map of 16 parameters, and each output channel's plane summed with fixed
      // weights r: dW along 16 random directions, 65 outputs, one backward pass each)
      {"conv2d 1x3 by Winograd F(4, 3) row by row (20 -> 65 channels, a plane of 2 x 513): dw, db",
       [x = uniform64({1, 20, 2, 513}), map = uniform64({65 * 20 * 3, 16}), r = uniform64({1, 65, 2, 513})](
           const Inputs& p) {
         tg::Conv2dParams rows;
         rows.padding = {0, 1};
         return tg::sum(tg::conv2d(x, tg::matmul(map, p[0]).reshape({65, 20, 1, 3}), p[1], rows) * r, {0, 2, 3});
       },
       {uniform64({16}), uniform64({65})}},
      // (6 samples of 2 outputs: blocks of 3 samples side by side)
      {"conv1d, samples side by side (rows of 2 outputs, 6 samples)",
       [](const Inputs& x) { return tg::conv1d(x[0], x[1], x[2], 2, 2, 1, 1); },
       {uniform64({6, 3, 3}), uniform64({4, 3, 5}), uniform64({4})}},
      // (dilation 2: four undilated convolutions over 3 × 2 phase planes, by F(2×2, 3×3), of x with
      // a row of zeros before (padding 1) and two after; 128 channels, the weight fixed)
      {"conv2d, a dilated kernel by phases (128 channels, dilation 2, padding 1 and 2, zeros in the planes; dx)",
       [w = uniform64({128, 128, 3, 3}).detach()](const Inputs& x) {
         tg::Conv2dParams dilated;
         dilated.padding = {1, 2};
         dilated.dilation = {2, 2};
         return tg::conv2d(x[0], w, x[1], dilated);
       },
       {uniform64({1, 128, 3, 4}), uniform64({128})}},
      // (35 samples of 16 outputs: four blocks of 8 samples, then the 3 left over side by side)
      {"conv1d, samples side by side, some left over (rows of 16 outputs, 35 samples)",
       [](const Inputs& x) { return tg::conv1d(x[0], x[1], x[2], 1, 1, 1, 1); },
       {uniform64({35, 1, 16}), uniform64({3, 1, 3}), uniform64({3})}},
      {"conv2d 1x2, samples side by side (planes of 2 x 3 outputs, 4 samples, groups 2)",
       [](const Inputs& x) {
         tg::Conv2dParams rows;
         rows.padding = {0, 1};
         rows.groups = 2;
         return tg::conv2d(x[0], x[1], x[2], rows);
       },
       {uniform64({4, 4, 2, 2}), uniform64({6, 2, 1, 2}), uniform64({6})}},
      {"max_pool2d", [max3](const Inputs& x) { return tg::max_pool2d(x[0], max3); }, {uniform64({2, 2, 6, 5})}},
      {"avg_pool2d", [avg3](const Inputs& x) { return tg::avg_pool2d(x[0], avg3); }, {uniform64({2, 2, 6, 5})}},
      {"avg_pool2d, divisor_override -3", [avg3](const Inputs& x) {
         tg::Pool2dParams p = avg3;
         p.divisor_override = -3;
         return tg::avg_pool2d(x[0], p);
       }, {uniform64({1, 2, 5, 6})}},
      {"adaptive_avg_pool2d", [](const Inputs& x) { return tg::adaptive_avg_pool2d(x[0], {3, 2}); },
       {uniform64({2, 2, 7, 5})}},
      {"max_pool1d", [](const Inputs& x) { return tg::max_pool1d(x[0], 2, 2); }, {uniform64({2, 3, 7})}},
      {"avg_pool1d", [](const Inputs& x) { return tg::avg_pool1d(x[0], 3, 1, 1); }, {uniform64({2, 3, 7})}},
      {"adaptive_avg_pool1d", [](const Inputs& x) { return tg::adaptive_avg_pool1d(x[0], 3); }, {uniform64({2, 3, 7})}},
      {"adaptive_max_pool2d", [](const Inputs& x) { return tg::adaptive_max_pool2d(x[0], {3, 4}); },
       {uniform64({2, 2, 7, 5})}},
      {"adaptive_max_pool1d", [](const Inputs& x) { return tg::adaptive_max_pool1d(x[0], 4); }, {uniform64({2, 3, 7})}},
      {"max_pool2d_with_indices", [max3](const Inputs& x) { return tg::max_pool2d_with_indices(x[0], max3).first; },
       {uniform64({2, 2, 6, 5})}},
  };
  for (const Case& c : cases) {
    INFO("op case: ", c.name);
    CHECK_GRADCHECK(c.fn, c.inputs);
  }
}

TEST_CASE("conv and pool layers: PyTorch's parameter names, init bounds, shapes, printing, errors") {
  tg::manual_seed(3);
  nn::Conv2d conv(nn::Conv2dOptions(4, 8, 3).padding(1).groups(2));
  CHECK(conv.weight.shape() == tg::Shape{8, 2, 3, 3});
  // Numeric padding after a padding string replaces it, and the string after numbers wins.
  const auto numbers_last = nn::Conv2dOptions(1, 1, 3).padding(nn::Padding::Same).stride(1).padding(2);
  CHECK(!numbers_last.padding_string());
  CHECK(numbers_last.padding() == std::array<std::int64_t, 2>{2, 2});
  CHECK(nn::Conv2dOptions(1, 1, 3).padding({1, 2}).padding(nn::Padding::Valid).padding_string() == nn::Padding::Valid);
  const auto names = conv.named_parameters();
  CHECK(names.size() == 2);
  const double bound = 1.0 / std::sqrt(2.0 * 9.0);
  for (float v : conv.weight.to_vector<float>()) CHECK(std::abs(v) <= bound);
  for (float v : conv.bias.to_vector<float>()) CHECK(std::abs(v) <= bound);
  CHECK(conv(tg::randn({2, 4, 6, 5})).shape() == tg::Shape{2, 8, 6, 5});
  CHECK(conv(tg::randn({4, 6, 5})).shape() == tg::Shape{8, 6, 5});
  std::ostringstream printed;
  printed << conv;
  CHECK(printed.str() == "Conv2d(4, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), groups=2)");
  nn::MaxPool2d pool(2);
  CHECK(pool(tg::randn({2, 3, 7, 6})).shape() == tg::Shape{2, 3, 3, 3});
  nn::AdaptiveAvgPool2d global(1);
  CHECK(global(tg::randn({2, 3, 7, 6})).shape() == tg::Shape{2, 3, 1, 1});
  nn::Conv1d c1(3, 5, 4);
  CHECK(c1(tg::randn({2, 3, 10})).shape() == tg::Shape{2, 5, 7});
  CHECK_THROWS_WITH_AS(conv(tg::randn({2, 3, 6, 5})),
                       "Conv2d: expected 4 input channels (in_channels) at dim 1, got input [2, 3, 6, 5]", tg::Error);
  CHECK_THROWS_WITH_AS(conv(tg::randn({6, 5})), "Conv2d: expected (N, C, H, W) or (C, H, W) input, got [6, 5]",
                       tg::Error);
  CHECK_THROWS_WITH_AS(nn::Conv2d(nn::Conv2dOptions(3, 8, 3).groups(2)),
                       "Conv2d: in_channels (3) and out_channels (8) must be divisible by groups (2)", tg::Error);
  CHECK_THROWS_WITH_AS(tg::conv2d(tg::randn({1, 2, 2, 2}), tg::randn({3, 2, 3, 3})),
                       doctest::Contains("conv2d: the input [1, 2, 2, 2] padded by 0 is smaller than the kernel (3"),
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::conv2d(tg::randn({1, 2, 4, 4}), tg::randn({3, 2, 3, 3}, tg::kFloat64)),
                       "conv2d: input, weight and bias must share one floating-point dtype, got float32, float64",
                       tg::Error);
  CHECK_THROWS_WITH_AS(nn::MaxPool2d(nn::MaxPool2dOptions(2).padding(2)),
                       "MaxPool2d: padding must be between 0 and half the kernel size, got padding 2 for kernel_size 2",
                       tg::Error);
  // divisor_override: AvgPool2d's alone, as in PyTorch; dilation: max pooling's alone.
  nn::AvgPool2d sums(nn::AvgPool2dOptions(2).divisor_override(1));
  printed.str("");
  printed << sums;
  CHECK(printed.str() ==
        "AvgPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), ceil_mode=false, count_include_pad=true, "
        "divisor_override=1)");
  CHECK(sums(Tensor(std::vector<double>{1, 2, 3, 4}, {1, 1, 2, 2})).item() == 10.0);
  CHECK_THROWS_WITH_AS(nn::MaxPool2d(nn::MaxPool2dOptions(2).divisor_override(2)),
                       "MaxPool2d: divisor_override is AvgPool2d's option, got 2", tg::Error);
  CHECK_THROWS_WITH_AS(nn::AvgPool1d(nn::AvgPool1dOptions(2).divisor_override(2)),
                       "AvgPool1d: divisor_override is AvgPool2d's option, got 2", tg::Error);
  CHECK_THROWS_WITH_AS(nn::AvgPool2d(nn::AvgPool2dOptions(2).divisor_override(0)),
                       "AvgPool2d: divisor_override must be non-zero, got 0", tg::Error);
  CHECK_THROWS_WITH_AS(nn::AvgPool2d(nn::AvgPool2dOptions(2).dilation(2)),
                       "AvgPool2d: dilation is max pooling's option, got 2", tg::Error);
  tg::Pool2dParams bad;
  bad.kernel = {2, 2};
  bad.dilation = {1, 2};
  CHECK_THROWS_WITH_AS(tg::avg_pool2d(tg::zeros({1, 1, 4, 4}), bad),
                       "avg_pool2d: dilation is max pooling's option, got (1, 2)", tg::Error);
  bad.dilation = {1, 1};
  bad.divisor_override = 0;
  CHECK_THROWS_WITH_AS(tg::avg_pool2d(tg::zeros({1, 1, 4, 4}), bad),
                       "avg_pool2d: divisor_override must be non-zero, got 0", tg::Error);
  bad.divisor_override = 3;
  CHECK_THROWS_WITH_AS(tg::max_pool2d(tg::zeros({1, 1, 4, 4}), bad),
                       "max_pool2d: divisor_override is avg_pool2d's option, got 3", tg::Error);
  // PyTorch's keys, so a PyTorch checkpoint loads by name.
  CHECK(conv.state_dict().find("weight") != nullptr);
  CHECK(conv.state_dict().find("bias") != nullptr);
}

// PyTorch 1.13 (/usr/bin/python3):
//   import torch
//   x = (torch.sin(torch.arange(2*3*4*5, dtype=torch.float64)) * 2 + 1).reshape(2, 3, 4, 5)
//   bn = torch.nn.BatchNorm2d(3, momentum=0.1).double()
//   with torch.no_grad():
//       bn.weight.copy_(torch.tensor([0.5, 1.0, 1.5], dtype=torch.float64)); bn.bias.copy_(torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64))
//   xr = x.clone().requires_grad_()
//   y = bn(xr); y.backward(torch.cos(torch.arange(120, dtype=torch.float64)).reshape(2, 3, 4, 5))
//   print("y =", y.flatten()[:6].tolist())
//   print("running_mean =", bn.running_mean.tolist()); print("running_var =", bn.running_var.tolist())
//   print("dx =", xr.grad.flatten()[:6].tolist()); print("dw =", bn.weight.grad.tolist()); print("db =", bn.bias.grad.tolist())
//   bn.eval(); print("eval_y =", bn(x).flatten()[:6].tolist())
TEST_CASE("BatchNorm2d matches PyTorch (training, running statistics, backward, eval) and MindSpore's momentum") {
  std::vector<double> values(120), upstream(120);
  for (std::size_t i = 0; i < 120; ++i) {
    values[i] = std::sin(double(i)) * 2 + 1;
    upstream[i] = std::cos(double(i));
  }
  const Tensor x = Tensor(values, {2, 3, 4, 5}).set_requires_grad();
  nn::BatchNorm2d bn(3);
  bn.to(tg::kFloat64);
  {
    tg::NoGradGuard no_grad;
    bn.weight.values_mut<double>() = xt::xarray<double>{0.5, 1.0, 1.5};
    bn.bias.values_mut<double>() = xt::xarray<double>{0.1, -0.2, 0.3};
  }
  const Tensor y = bn(x);
  y.backward(Tensor(upstream, {2, 3, 4, 5}));
  check_close(first(y, 6), {0.1061702624376839, 0.7154939939190972, 0.7646082967168576, 0.20835770734091608, -0.4418435476175101, -0.5882034329063603}, 1e-12);
  check_close(bn.running_mean, {0.09829578382009255, 0.09966898402906939, 0.10143405282008643}, 1e-12);
  check_close(bn.running_var, {1.0956028651319287, 1.1149670739170743, 1.1014773333237733}, 1e-12);
  check_close(first(x.grad(), 6), {0.36126166209142196, 0.18748231187283623, -0.15940017680852114, -0.3604636435895679, -0.2308512643634939, 0.11027193714736003}, 1e-12);
  check_close(bn.weight.grad(), {0.6655893317594879, 0.5309597764335847, -1.387374276855943}, 1e-12);
  check_close(bn.bias.grad(), {0.07983919764110814, 0.34375215791884994, 0.2007189810715453}, 1e-12);
  bn.eval();
  check_close(first(bn(x.detach()), 6), {0.5307304185061318, 1.3346462546382698, 1.399445578478347, 0.6655521905251895, -0.19229571285983238, -0.38539672547282783}, 1e-12);
  std::ostringstream printed;
  printed << bn;
  CHECK(printed.str() == "BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=true, track_running_stats=true)");
  CHECK_THROWS_WITH_AS(bn(tg::randn({2, 3, 4}, tg::kFloat64)), "BatchNorm2d: expected 4D input (got 3D input [2, 3, 4])",
                       tg::Error);

  // MindSpore: inference until set_train(); momentum 0.9 weighs the old moving statistic, so one
  // step moves it as PyTorch's momentum 0.1 does; NHWC input gives the same numbers, transposed.
  nn::BatchNorm2d ms(nn::BatchNorm2dOptions::mindspore(3).momentum(0.9));
  ms.to(tg::kFloat64);
  CHECK_FALSE(ms.is_training());
  ms.set_train();
  ms(x.detach());
  check_close(ms.moving_mean(), {0.09829578382009255, 0.09966898402906939, 0.10143405282008643}, 1e-12);
  check_close(ms.moving_variance(), {1.0956028651319287, 1.1149670739170743, 1.1014773333237733}, 1e-12);
  nn::BatchNorm2d nhwc(nn::BatchNorm2dOptions::mindspore(3).momentum(0.9).data_format("NHWC"));
  nhwc.to(tg::kFloat64);
  nhwc.set_train();
  const Tensor channels_last = nhwc(x.detach().permute({0, 2, 3, 1}));
  check_close(nhwc.moving_mean(), {0.09829578382009255, 0.09966898402906939, 0.10143405282008643}, 1e-12);
  nn::BatchNorm2d plain(nn::BatchNorm2dOptions::mindspore(3).momentum(0.9));
  plain.to(tg::kFloat64);
  plain.set_train();
  check_close(channels_last.permute({0, 3, 1, 2}), plain(x.detach()).to_vector<double>(), 1e-12);
}

// PyTorch 1.13 (/usr/bin/python3), as BatchNorm2d's above with x and the upstream gradient shaped
// (2, 3, 2, 2, 5) and bn = torch.nn.BatchNorm3d(3, momentum=0.1).double(); then a second step
// bn(x * 0.5 - 1), print running_mean2 / running_var2, and eval as above.
TEST_CASE("BatchNorm3d matches PyTorch (two training steps, backward, eval) and is BatchNorm2d on (N, C, D, H·W)") {
  std::vector<double> values(120), upstream(120);
  for (std::size_t i = 0; i < 120; ++i) {
    values[i] = std::sin(double(i)) * 2 + 1;
    upstream[i] = std::cos(double(i));
  }
  const Tensor x = Tensor(values, {2, 3, 2, 2, 5}).set_requires_grad();
  nn::BatchNorm3d bn(3);
  bn.to(tg::kFloat64);
  {
    tg::NoGradGuard no_grad;
    bn.weight.values_mut<double>() = xt::xarray<double>{0.5, 1.0, 1.5};
    bn.bias.values_mut<double>() = xt::xarray<double>{0.1, -0.2, 0.3};
  }
  const Tensor y = bn(x);
  y.backward(Tensor(upstream, {2, 3, 2, 2, 5}));
  CHECK(y.shape() == tg::Shape{2, 3, 2, 2, 5});
  check_close(first(y, 6), {0.1061702624376839, 0.7154939939190972, 0.7646082967168576, 0.20835770734091608, -0.4418435476175101, -0.5882034329063603}, 1e-12);
  check_close(bn.running_mean, {0.09829578382009255, 0.09966898402906939, 0.10143405282008643}, 1e-12);
  check_close(bn.running_var, {1.0956028651319287, 1.1149670739170743, 1.1014773333237733}, 1e-12);
  check_close(first(x.grad(), 6), {0.36126166209142196, 0.18748231187283623, -0.15940017680852114, -0.3604636435895679, -0.2308512643634939, 0.11027193714736003}, 1e-12);
  check_close(bn.weight.grad(), {0.6655893317594879, 0.5309597764335847, -1.387374276855943}, 1e-12);
  check_close(bn.bias.grad(), {0.07983919764110814, 0.34375215791884994, 0.2007189810715453}, 1e-12);
  bn(x.detach() * 0.5 - 1.0);
  check_close(bn.running_mean, {0.037614097348129566, 0.039536577640697165, 0.04200767394812097}, 1e-12);
  check_close(bn.running_var, {1.034943294901718, 1.0572121350046353, 1.0416989333223394}, 1e-12);
  CHECK(bn.num_batches_tracked.values<std::int64_t>()() == 2);
  bn.eval();
  check_close(first(bn(x.detach()), 6), {0.5729975391689421, 1.4001370556549337, 1.4668083152330211, 0.7117140693173771, -0.17091551469268323, -0.3695948677131845}, 1e-12);
  std::ostringstream printed;
  printed << bn;
  CHECK(printed.str() == "BatchNorm3d(3, eps=1e-05, momentum=0.1, affine=true, track_running_stats=true)");
  CHECK_THROWS_WITH_AS(bn(tg::randn({2, 3, 4, 4}, tg::kFloat64)),
                       "BatchNorm3d: expected 5D input (got 4D input [2, 3, 4, 4])", tg::Error);
  CHECK_THROWS_WITH_AS(bn(tg::randn({2, 4, 1, 2, 2}, tg::kFloat64)),
                       "BatchNorm3d: expected 3 channels (num_features) at dim 1, got input [2, 4, 1, 2, 2]", tg::Error);
  const std::vector<std::string> keys{"weight", "bias", "running_mean", "running_var", "num_batches_tracked"};
  for (const std::string& key : keys) CHECK(bn.state_dict().find(key) != nullptr);

  // Both conventions, NCHW (and MindSpore's NHWC), float32: the same bits as BatchNorm2d over (N, C, D, H·W),
  // forward, backward and the running statistics, at one and two threads.
  tg::manual_seed(6);
  for (bool mindspore : {false, true})
    for (const char* format : {"NCHW", "NHWC"})
      for (int threads : {1, 2}) {
        INFO("mindspore ", mindspore, " ", format, " threads ", threads);
        tg::set_num_threads(threads);
        const bool last = std::string(format) == "NHWC";
        if (last && !mindspore) continue;  // (data_format is MindSpore's option)
        const nn::BatchNorm3dOptions options =
            mindspore ? nn::BatchNorm3dOptions(nn::BatchNorm3dOptions::mindspore(4).data_format(format))
                      : nn::BatchNorm3dOptions(4);
        nn::BatchNorm3d volume(options);
        nn::BatchNorm2d planes(options);
        volume.train();
        planes.train();
        const Tensor in = tg::randn(last ? tg::Shape{3, 5, 6, 7, 4} : tg::Shape{3, 4, 5, 6, 7}) * 3.0 + 1.0;
        const Tensor a = in.detach().set_requires_grad(), b = in.detach().set_requires_grad();
        const Tensor ya = volume(a);
        const Tensor yb = planes(b.reshape(last ? std::vector<std::int64_t>{3, 5, 42, 4} : std::vector<std::int64_t>{3, 4, 5, 42}));
        const Tensor g = tg::randn(ya.shape());
        ya.backward(g);
        yb.backward(g.reshape(yb.shape()));
        CHECK(tg_test::bitwise_equal(ya.reshape(yb.shape()), yb));
        CHECK(tg_test::bitwise_equal(a.grad(), b.grad()));
        CHECK(tg_test::bitwise_equal(volume.weight.grad(), planes.weight.grad()));
        CHECK(tg_test::bitwise_equal(volume.running_mean, planes.running_mean));
        CHECK(tg_test::bitwise_equal(volume.running_var, planes.running_var));
      }
  tg::set_num_threads(1);
}

TEST_CASE("gradcheck: BatchNorm2d and BatchNorm3d in both conventions") {
  tg::manual_seed(5);
  nn::BatchNorm2d torch_style(3);
  tg_test::check_module(torch_style, uniform64({2, 3, 3, 2}));
  nn::BatchNorm2d ms_style(nn::BatchNorm2dOptions::mindspore(3).use_batch_statistics(true));
  tg_test::check_module(ms_style, uniform64({2, 3, 2, 3}));
  nn::BatchNorm3d volume(3);
  tg_test::check_module(volume, uniform64({2, 3, 2, 1, 2}));
  nn::BatchNorm3d volume_ms(nn::BatchNorm3dOptions::mindspore(2).use_batch_statistics(true).data_format("NHWC"));
  tg_test::check_module(volume_ms, uniform64({2, 1, 2, 3, 2}));
}

TEST_CASE("max_pool2d on every window shape and path: the first maximum, the last NaN, against a plain loop") {
  // Values from a handful of levels (many ties), some NaN and infinities; the 2x2 stride-2 path
  // and the general one (float32 on AVX-512: 16 outputs of a row in registers, strides 1, 2, 3, 5
  // from runs, 9 gathered; rows of 1-50 outputs; large windows over few outputs a row searched
  // one at a time) on windows inside the plane (3x3 stride 2, 2x3 stride 1, dilation 2) and
  // over its padding (3x3 stride 2 or 1 padding 1, 2x2 padding 1, padding on one axis, dilation 2
  // with padding, ceil_mode windows past the bottom and right), in float32 and float64: values
  // and where the gradient goes must match a scalar reference with PyTorch's rule (take v when
  // v > best or v is NaN). Last, dilated windows wholly in the padding (no input row, or no input
  // column): -inf and no gradient (the general path looped forever on the first and read past
  // the row on the second; PyTorch gives -inf and sends the gradient outside the plane).
  struct Case {
    std::array<std::int64_t, 2> kernel, stride, padding, dilation;
    bool ceil_mode = false;
    std::vector<tg::Shape> shapes = {tg::Shape{2, 3, 6, 7}, tg::Shape{1, 2, 5, 5}, tg::Shape{1, 1, 8, 33},
                                     tg::Shape{1, 2, 3, 50}};
  };
  const std::vector<Case> cases = {{{2, 2}, {2, 2}, {0, 0}, {1, 1}}, {{3, 3}, {2, 2}, {0, 0}, {1, 1}},
                                   {{2, 3}, {1, 1}, {0, 0}, {1, 1}}, {{2, 2}, {1, 2}, {0, 0}, {2, 1}},
                                   {{3, 3}, {2, 2}, {1, 1}, {1, 1}}, {{3, 3}, {1, 1}, {1, 1}, {1, 1}},
                                   {{2, 2}, {2, 2}, {1, 1}, {1, 1}}, {{3, 2}, {2, 1}, {1, 0}, {1, 1}},
                                   {{3, 3}, {1, 2}, {1, 1}, {2, 2}}, {{3, 3}, {2, 2}, {1, 0}, {1, 1}, true},
                                   {{2, 2}, {3, 3}, {0, 0}, {1, 1}, true},
                                   {{5, 5}, {1, 1}, {2, 2}, {1, 1}, false, {tg::Shape{2, 2, 13, 13}, tg::Shape{1, 1, 6, 40}}},
                                   {{3, 3}, {3, 3}, {1, 1}, {1, 1}}, {{3, 2}, {1, 2}, {1, 1}, {1, 2}},
                                   {{2, 3}, {2, 5}, {0, 1}, {1, 2}}, {{3, 3}, {9, 9}, {1, 1}, {1, 1}},
                                   {{2, 1}, {2, 2}, {1, 0}, {2, 1}, false, {tg::Shape{1, 2, 1, 5}}},
                                   {{1, 2}, {1, 1}, {0, 1}, {1, 2}, false, {tg::Shape{1, 2, 3, 1}}},
                                   {{2, 2}, {1, 1}, {1, 1}, {2, 2}, false,
                                    {tg::Shape{2, 1, 1, 1}, tg::Shape{1, 1, 3, 3}}},
                                   // Few outputs a row against large windows: each window searched on its
                                   // own (a global 7x7, windows 20 and 17 wide: two batches a row,
                                   // the last partial; padded and ceil_mode windows cut to the plane).
                                   {{7, 7}, {7, 7}, {0, 0}, {1, 1}, false, {tg::Shape{2, 3, 7, 7}, tg::Shape{1, 2, 7, 9}}},
                                   {{3, 20}, {3, 20}, {1, 0}, {1, 1}, true, {tg::Shape{1, 2, 8, 45}}},
                                   {{6, 17}, {4, 12}, {3, 8}, {1, 1}, true, {tg::Shape{2, 2, 13, 40}}}};
  const double levels[] = {0.0, 1.0, 2.0, -1.0, std::nan(""), INFINITY, -INFINITY};
  for (const Case& c : cases)
    for (tg::DType dtype : {tg::kFloat32, tg::kFloat64})
      for (const tg::Shape& shape : c.shapes) {
        INFO("kernel " << c.kernel[0] << "x" << c.kernel[1] << " stride " << c.stride[0] << "," << c.stride[1]
                       << " padding " << c.padding[0] << "," << c.padding[1] << " dilation " << c.dilation[0] << ","
                       << c.dilation[1] << std::string(c.ceil_mode ? " ceil_mode " : " ") << std::string(tg::dtype_name(dtype)) << " "
                       << tg::shape_str(shape));
        tg::Generator gen(5);
        std::vector<double> values(shape[0] * shape[1] * shape[2] * shape[3]);
        for (double& v : values) {
          const std::int64_t pick = gen.integer(0, 40);
          v = pick < 34 ? levels[pick % 4] : levels[4 + pick % 3];  // mostly ties, some NaN and infinities
        }
        Tensor x = Tensor(values, shape).to(dtype).set_requires_grad();
        tg::Pool2dParams p;
        p.kernel = c.kernel;
        p.stride = c.stride;
        p.padding = c.padding;
        p.dilation = c.dilation;
        p.ceil_mode = c.ceil_mode;
        const Tensor y = tg::max_pool2d(x, p);
        const std::size_t H = shape[2], W = shape[3], oh = y.shape()[2], ow = y.shape()[3];
        std::vector<double> expected, expected_grad(values.size(), 0.0);
        for (std::size_t plane = 0; plane < shape[0] * shape[1]; ++plane)
          for (std::size_t oy = 0; oy < oh; ++oy)
            for (std::size_t ox = 0; ox < ow; ++ox) {
              double best = -INFINITY;
              std::size_t at = 0;
              bool found = false;
              for (std::int64_t i = 0; i < c.kernel[0]; ++i)
                for (std::int64_t j = 0; j < c.kernel[1]; ++j) {
                  const std::int64_t iy = std::int64_t(oy) * c.stride[0] - c.padding[0] + i * c.dilation[0];
                  const std::int64_t ix = std::int64_t(ox) * c.stride[1] - c.padding[1] + j * c.dilation[1];
                  if (iy < 0 || iy >= std::int64_t(H) || ix < 0 || ix >= std::int64_t(W)) continue;
                  const std::size_t k = plane * H * W + std::size_t(iy) * W + std::size_t(ix);
                  const double v = values[k];
                  if (!found || v > best || std::isnan(v)) {
                    best = v;
                    at = k;
                    found = true;
                  }
                }
              expected.push_back(best);
              if (found) expected_grad[at] += 1.0;
            }
        const std::vector<double> got = y.to_vector<double>();
        REQUIRE(got.size() == expected.size());
        for (std::size_t i = 0; i < got.size(); ++i) {
          INFO("output " << i);
          if (std::isnan(expected[i])) CHECK(std::isnan(got[i]));
          else CHECK(got[i] == expected[i]);
        }
        y.sum().backward();
        CHECK(x.grad().to_vector<double>() == expected_grad);
      }
}

TEST_CASE("avg_pool2d on every window shape: forward and backward against the definition") {
  // Kernels 1-5 and 33 wide, strides 1-4 and unequal ones, padding up to half the kernel, ceil_mode
  // windows past the bottom and right, padding counted or not, on planes of 1-50 columns (a run of
  // equal windows a stride apart is summed tap by tap over the whole run; edge windows, clipped by
  // the padding, one by one), with divisor_override too. Forward: Σ x / divisor in long double;
  // backward: each input gets g[o] / divisor[o] from every window o holding it. float64 to its
  // rounding, float32 to its own.
  struct Case {
    std::array<std::int64_t, 2> kernel, stride, padding;
    bool ceil_mode = false, count_include_pad = true;
    std::optional<std::int64_t> divisor_override = std::nullopt;
  };
  const std::vector<Case> cases = {
      {{3, 3}, {1, 1}, {1, 1}},        {{3, 3}, {1, 1}, {1, 1}, false, false}, {{1, 1}, {1, 1}, {0, 0}},
      {{2, 2}, {1, 1}, {0, 0}},        {{5, 5}, {1, 1}, {2, 2}, false, false}, {{5, 3}, {1, 2}, {2, 1}},
      {{3, 3}, {2, 2}, {1, 1}, true},  {{3, 3}, {2, 2}, {1, 1}, true, false},  {{4, 4}, {3, 3}, {2, 2}, true, false},
      {{2, 4}, {2, 4}, {0, 0}},        {{3, 2}, {2, 3}, {1, 1}, true},         {{1, 33}, {1, 1}, {0, 16}},
      {{3, 3}, {4, 4}, {1, 1}, true},  {{3, 3}, {1, 1}, {1, 1}, false, true, 2}, {{2, 3}, {2, 1}, {1, 1}, true, false, -7},
  };
  const std::vector<tg::Shape> shapes = {{2, 3, 6, 7}, {1, 2, 5, 5}, {1, 1, 8, 33}, {1, 2, 3, 50}, {1, 1, 4, 1}};
  tg::manual_seed(23);
  for (const Case& c : cases)
    for (const tg::Shape& shape : shapes) {
      if (std::int64_t(shape[3]) + 2 * c.padding[1] < c.kernel[1] || std::int64_t(shape[2]) + 2 * c.padding[0] < c.kernel[0])
        continue;  // (no window fits)
      INFO("kernel " << c.kernel[0] << "x" << c.kernel[1] << " stride " << c.stride[0] << "," << c.stride[1]
                     << " padding " << c.padding[0] << "," << c.padding[1] << (c.ceil_mode ? " ceil_mode" : "")
                     << (c.count_include_pad ? "" : " padding not counted") << " divisor_override "
                     << c.divisor_override.value_or(0) << " " << tg::shape_str(shape));
      const tg::Pool2dParams p{c.kernel, c.stride, c.padding, {1, 1}, c.ceil_mode, c.count_include_pad, c.divisor_override};
      const Tensor x = uniform64(shape).set_requires_grad();
      const Tensor y = tg::avg_pool2d(x, p);
      const Tensor g = uniform64(y.shape());
      y.backward(g);
      const std::int64_t H = std::int64_t(shape[2]), W = std::int64_t(shape[3]);
      const std::size_t oh = y.shape()[2], ow = y.shape()[3];
      const std::vector<double> xs = tg_test::flat(x), gs = tg_test::flat(g);
      std::vector<long double> expected, expected_grad(xs.size(), 0);
      for (std::size_t plane = 0; plane < shape[0] * shape[1]; ++plane)
        for (std::size_t oy = 0; oy < oh; ++oy)
          for (std::size_t ox = 0; ox < ow; ++ox) {
            const std::int64_t y0 = std::int64_t(oy) * c.stride[0] - c.padding[0];
            const std::int64_t x0 = std::int64_t(ox) * c.stride[1] - c.padding[1];
            // PyTorch: the padded window ends at the padding's end; the divisor counts it or not.
            const std::int64_t y1 = std::min(y0 + c.kernel[0], H + c.padding[0]);
            const std::int64_t x1 = std::min(x0 + c.kernel[1], W + c.padding[1]);
            long double total = 0;
            std::int64_t inside = 0;
            for (std::int64_t iy = std::max<std::int64_t>(y0, 0); iy < std::min(y1, H); ++iy)
              for (std::int64_t ix = std::max<std::int64_t>(x0, 0); ix < std::min(x1, W); ++ix, ++inside)
                total += xs[plane * std::size_t(H * W) + std::size_t(iy * W + ix)];
            const long double divisor = c.divisor_override ? (long double)*c.divisor_override
                                        : c.count_include_pad ? (long double)((y1 - y0) * (x1 - x0))
                                                              : (long double)inside;
            expected.push_back(total / divisor);
            const long double share = gs[expected.size() - 1] / divisor;
            for (std::int64_t iy = std::max<std::int64_t>(y0, 0); iy < std::min(y1, H); ++iy)
              for (std::int64_t ix = std::max<std::int64_t>(x0, 0); ix < std::min(x1, W); ++ix)
                expected_grad[plane * std::size_t(H * W) + std::size_t(iy * W + ix)] += share;
          }
      const Tensor x32 = x.detach().to(tg::kFloat32).set_requires_grad();
      tg::avg_pool2d(x32, p).backward(g.to(tg::kFloat32));
      const std::vector<double> ys = tg_test::flat(y), y32 = tg_test::flat(tg::avg_pool2d(x32.detach(), p));
      const std::vector<double> dx = tg_test::flat(x.grad()), dx32 = tg_test::flat(x32.grad());
      REQUIRE(ys.size() == expected.size());
      std::size_t wrong = 0;
      for (std::size_t o = 0; o < ys.size(); ++o) {
        wrong += !(std::fabs(ys[o] - double(expected[o])) <= 1e-15);
        wrong += !(std::fabs(y32[o] - double(expected[o])) <= 1e-6);
      }
      for (std::size_t j = 0; j < xs.size(); ++j) {
        wrong += !(std::fabs(dx[j] - double(expected_grad[j])) <= 1e-14);
        wrong += !(std::fabs(dx32[j] - double(expected_grad[j])) <= 1e-6);
      }
      CHECK(wrong == 0);
    }
}

// ---- conv2d against a plain loop over a family of geometries ---------------------------------
//
// Every path (the flat-shift im2col/col2im of stride-1 "same" convolutions, the general one) on
// sizes down to 1×1, kernels wider than the input, padding of a whole row or more, strides,
// dilations, groups and "same" padding with an even kernel (extra_end), forward and backward.

namespace {

struct ConvCase {
  tg::Shape x, w;  // (N, C, H, W), (O, C/g, kH, kW)
  tg::Conv2dParams p;
};

// y, dx, dw, db of conv2d by the definition, in double: y[n,o,y,x] = b[o] + Σ w[o,c,i,j]·x[n,g·cg+c,iy,ix].
std::array<std::vector<double>, 4> conv2d_by_definition(const ConvCase& k, const std::vector<double>& x,
                                                        const std::vector<double>& w, const std::vector<double>& b,
                                                        const std::vector<double>& gy, std::size_t oh,
                                                        std::size_t ow) {
  const std::size_t N = k.x[0], C = k.x[1], H = k.x[2], W = k.x[3], O = k.w[0], cg = k.w[1], KH = k.w[2],
                    KW = k.w[3], og = O / std::size_t(k.p.groups);
  std::vector<double> y(N * O * oh * ow), dx(x.size(), 0.0), dw(w.size(), 0.0), db(O, 0.0);
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t o = 0; o < O; ++o)
      for (std::size_t oy = 0; oy < oh; ++oy)
        for (std::size_t ox = 0; ox < ow; ++ox) {
          const std::size_t at = ((n * O + o) * oh + oy) * ow + ox;
          double total = b.empty() ? 0.0 : b[o];
          for (std::size_t c = 0; c < cg; ++c)
            for (std::size_t i = 0; i < KH; ++i)
              for (std::size_t j = 0; j < KW; ++j) {
                const std::int64_t iy = std::int64_t(oy) * k.p.stride[0] - k.p.padding[0] + std::int64_t(i) * k.p.dilation[0];
                const std::int64_t ix = std::int64_t(ox) * k.p.stride[1] - k.p.padding[1] + std::int64_t(j) * k.p.dilation[1];
                if (iy < 0 || ix < 0 || iy >= std::int64_t(H) || ix >= std::int64_t(W)) continue;
                const std::size_t xi = ((n * C + (o / og) * cg + c) * H + std::size_t(iy)) * W + std::size_t(ix);
                const std::size_t wi = ((o * cg + c) * KH + i) * KW + j;
                total += w[wi] * x[xi];
                dx[xi] += w[wi] * gy[at];
                dw[wi] += x[xi] * gy[at];
              }
          y[at] = total;
          db[o] += gy[at];
        }
  return {y, dx, dw, db};
}

}  // namespace

// conv2d's y, dx, dw and db against conv2d_by_definition on each case, in float64 and float32.
void check_against_definition(const std::vector<ConvCase>& cases) {
  for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
    const double tol = dtype == tg::kFloat64 ? 1e-12 : 1e-5;
    for (const ConvCase& k : cases) {
      INFO(tg::dtype_name(dtype), " x ", tg::shape_str(k.x), " w ", tg::shape_str(k.w), " stride ", k.p.stride[0], ",",
           k.p.stride[1], " padding ", k.p.padding[0], ",", k.p.padding[1], " dilation ", k.p.dilation[0], ",",
           k.p.dilation[1], " groups ", k.p.groups, " extra_end ", k.p.extra_end[0], ",", k.p.extra_end[1]);
      const Tensor x = seq(k.x, sin_).to(dtype).set_requires_grad();
      const Tensor w = seq(k.w, cos_, 0.25).to(dtype).set_requires_grad();
      const Tensor b = (tg::arange(double(k.w[0]), tg::kFloat64) * 0.1).to(dtype).set_requires_grad();
      const Tensor y = tg::conv2d(x, w, b, k.p);
      const Tensor gy = seq(y.shape(), cos_).to(dtype);
      y.backward(gy);
      const auto expected = conv2d_by_definition(k, tg_test::flat(x), tg_test::flat(w), tg_test::flat(b),
                                                 tg_test::flat(gy), y.size(2), y.size(3));
      const Tensor got[4] = {y, x.grad(), w.grad(), b.grad()};
      const char* names[4] = {"y", "dx", "dw", "db"};
      for (int t = 0; t < 4; ++t) {
        INFO(names[t]);
        // Relative to the largest value: dw of a large plane sums thousands of products.
        double scale = 1;
        for (double e : expected[std::size_t(t)]) scale = std::max(scale, std::abs(e));
        check_close(got[t], expected[std::size_t(t)], tol * 10 * scale);
      }
    }
  }
}

// conv2d's y, dx, dw and db on one case: the same bits at one thread and at two, float32 and float64.
void check_same_bits_1_and_2_threads(const ConvCase& k) {
  for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
    INFO(tg::dtype_name(dtype), " x ", tg::shape_str(k.x), " w ", tg::shape_str(k.w));
    Tensor got[2][4];
    for (int threads : {1, 2}) {
      tg::set_num_threads(threads);
      const Tensor x = seq(k.x, sin_).to(dtype).set_requires_grad();
      const Tensor w = seq(k.w, cos_, 0.25).to(dtype).set_requires_grad();
      const Tensor b = seq({k.w[0]}, sin_).to(dtype).set_requires_grad();
      const Tensor y = tg::conv2d(x, w, b, k.p);
      y.backward(seq(y.shape(), cos_).to(dtype));
      got[threads - 1][0] = y, got[threads - 1][1] = x.grad(), got[threads - 1][2] = w.grad(),
      got[threads - 1][3] = b.grad();
    }
    tg::set_num_threads(1);
    for (int t = 0; t < 4; ++t) CHECK(tg_test::bitwise_equal(got[0][t], got[1][t]));
  }
}

TEST_CASE("conv2d equals its definition on every geometry: forward, dx, dw, db, float32 and float64") {
  std::vector<ConvCase> cases;
  // "same" stride-1 convolutions (the flat-shift path), square and not, down to 1×1 and 1×2.
  for (std::size_t h : {1, 2, 3, 5})
    for (std::size_t w : {1, 2, 4, 7})
      for (std::int64_t kh : {1, 3, 5})
        for (std::int64_t kw : {1, 3, 5})
          cases.push_back({{2, 3, h, w}, {4, 3, std::size_t(kh), std::size_t(kw)}, {{1, 1}, {kh / 2, kw / 2}, {1, 1}, 1, {0, 0}}});
  // Even kernels with "same" padding (extra_end), padding beyond "same", valid convolutions,
  // strides, dilations and groups (the general path), and wide kernels on narrow inputs.
  cases.push_back({{2, 2, 5, 6}, {3, 2, 4, 4}, {{1, 1}, {1, 1}, {1, 1}, 1, {1, 1}}});
  cases.push_back({{1, 2, 3, 7}, {2, 2, 2, 2}, {{1, 1}, {0, 0}, {1, 1}, 1, {1, 1}}});
  cases.push_back({{2, 2, 4, 4}, {3, 2, 3, 3}, {{1, 1}, {3, 3}, {1, 1}, 1, {0, 0}}});
  cases.push_back({{2, 2, 6, 5}, {3, 2, 3, 2}, {{1, 1}, {0, 0}, {1, 1}, 1, {0, 0}}});
  cases.push_back({{2, 4, 7, 8}, {6, 2, 3, 3}, {{2, 2}, {1, 1}, {1, 1}, 2, {0, 0}}});
  cases.push_back({{1, 4, 7, 8}, {4, 1, 3, 2}, {{1, 2}, {2, 1}, {2, 3}, 4, {0, 0}}});
  cases.push_back({{2, 1, 2, 1}, {2, 1, 5, 5}, {{1, 1}, {2, 2}, {1, 1}, 1, {0, 0}}});
  cases.push_back({{1, 3, 1, 9}, {2, 3, 1, 3}, {{1, 1}, {0, 1}, {1, 1}, 1, {0, 0}}});  // conv1d-like
  // 1×1 kernels at stride 1 without padding read the input in place (no im2col, no col2im): with
  // groups, dilation (no effect on 1×1), 17 samples, and channels and planes of 8 and more (the
  // float32 AVX-512 GEMM); and next to them 1×1 with padding or stride, which do not.
  cases.push_back({{17, 6, 3, 5}, {4, 3, 1, 1}, {{1, 1}, {0, 0}, {1, 1}, 2, {0, 0}}});
  cases.push_back({{3, 16, 5, 7}, {24, 16, 1, 1}, {{1, 1}, {0, 0}, {2, 2}, 1, {0, 0}}});
  cases.push_back({{2, 16, 4, 9}, {18, 8, 1, 1}, {{1, 1}, {0, 0}, {1, 1}, 2, {0, 0}}});
  cases.push_back({{2, 4, 5, 6}, {3, 4, 1, 1}, {{1, 1}, {1, 0}, {1, 1}, 1, {0, 0}}});
  cases.push_back({{2, 4, 5, 6}, {3, 4, 1, 1}, {{2, 1}, {0, 0}, {1, 1}, 1, {0, 0}}});
  // Stride 2 across the width: output rows of 20, 34 and 16 columns, odd widths, padding on both
  // sides and wider than the kernel, dilation.
  cases.push_back({{2, 3, 5, 40}, {4, 3, 3, 3}, {{2, 2}, {1, 1}, {1, 1}, 1, {0, 0}}});
  cases.push_back({{1, 2, 3, 67}, {3, 2, 1, 5}, {{1, 2}, {0, 2}, {1, 1}, 1, {0, 0}}});
  cases.push_back({{2, 2, 4, 33}, {3, 2, 2, 2}, {{2, 2}, {0, 0}, {2, 2}, 1, {0, 0}}});
  cases.push_back({{2, 2, 3, 9}, {2, 2, 3, 3}, {{1, 2}, {1, 4}, {1, 1}, 1, {0, 0}}});
  // Batches of 9 and 17 (several samples per parallel task).
  cases.push_back({{9, 2, 4, 5}, {3, 2, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});
  cases.push_back({{17, 4, 3, 4}, {6, 2, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 2, {0, 0}}});
  cases.push_back({{17, 2, 5, 5}, {2, 2, 2, 3}, {{2, 1}, {1, 0}, {1, 2}, 1, {0, 0}}});
  check_against_definition(cases);
}

// Strided convolutions run as stride-1 ones over the input's phases (split out per sample, the
// input gradient merged back), where no kernel offset reads a phase column cut at the output's
// width; others go row by row. A sweep over both: strides 2, 3, (2, 1), (1, 2), (3, 2); planes
// from 1×1 to 6×67 (odd and even, rows of a phase shorter and longer than 16 and 32 values: the
// AVX-512 split and merge take 16 a time), kernels 1×1 to 5×3, paddings 0, half the kernel and
// past it, dilations 1 and 2, two groups on some. With 4 channels a group and with 8: from 8 on
// both sides (float32, AVX-512) the input gradient is computed phase by phase by gathered GEMMs
// (input_grad_by_phase; a 1×1 kernel at stride 2 or 3 leaves phases no tap reads).
TEST_CASE("strided conv2d equals its definition on every geometry (the phase path and the row path)") {
  std::vector<ConvCase> cases;
  const std::vector<std::pair<std::int64_t, std::int64_t>> strides{{2, 2}, {3, 3}, {2, 1}, {1, 2}, {3, 2}};
  const std::vector<std::pair<std::size_t, std::size_t>> kernels{{1, 1}, {2, 2}, {3, 3}, {5, 3}};
  const std::vector<std::pair<std::size_t, std::size_t>> planes{{1, 1}, {1, 28}, {1, 67}, {6, 7}, {5, 14}, {6, 33}};
  for (const auto& [h, w] : planes)
    for (const auto& [sh, sw] : strides)
      for (const auto& [kh, kw] : kernels)
        for (int pad = 0; pad < 3; ++pad)
          for (std::int64_t d : {1, 2}) {
            const std::int64_t ph = pad == 0 ? 0 : pad == 1 ? std::int64_t(kh) / 2 : std::int64_t(kh);
            const std::int64_t pw = pad == 0 ? 0 : pad == 1 ? std::int64_t(kw) / 2 : std::int64_t(kw);
            if (std::int64_t(h) + 2 * ph < d * (std::int64_t(kh) - 1) + 1 ||
                std::int64_t(w) + 2 * pw < d * (std::int64_t(kw) - 1) + 1)
              continue;  // smaller than the kernel
            const std::int64_t groups = (h + w) % 2 ? 2 : 1;
            cases.push_back(
                {{2, 4, h, w}, {4, std::size_t(4 / groups), kh, kw}, {{sh, sw}, {ph, pw}, {d, d}, groups, {0, 0}}});
            const std::size_t wide = 8 * std::size_t(groups);
            cases.push_back({{2, wide, h, w}, {wide, 8, kh, kw}, {{sh, sw}, {ph, pw}, {d, d}, groups, {0, 0}}});
          }
  check_against_definition(cases);
}

// With 8 output channels or more (per group), 8 output positions or more and more than one sample,
// the float32 forward on AVX-512 gathers its columns inside the GEMM (no im2col): "same", strided,
// dilated and even-kernel convolutions, 1-D ones on rows of 67 and 65 outputs (partial 32-column
// panels), a plane of 2,600 outputs (past the GEMM's 2,048-column blocks), groups, 17 samples;
// up to 64 output channels the micro-kernel reads the rows where they lie, past that (72) they
// are packed first; batches of one to three with large planes (column blocks).
TEST_CASE("conv2d whose GEMM gathers the columns itself equals its definition") {
  std::vector<ConvCase> cases;
  cases.push_back({{2, 3, 5, 7}, {8, 3, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});
  cases.push_back({{3, 4, 9, 10}, {16, 2, 3, 3}, {{2, 2}, {1, 1}, {1, 1}, 2, {0, 0}}});
  cases.push_back({{2, 2, 1, 67}, {9, 2, 1, 5}, {{1, 1}, {0, 2}, {1, 1}, 1, {0, 0}}});
  cases.push_back({{2, 2, 1, 130}, {12, 2, 1, 5}, {{1, 2}, {0, 2}, {1, 1}, 1, {0, 0}}});
  cases.push_back({{2, 1, 50, 52}, {8, 1, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});
  cases.push_back({{2, 3, 9, 9}, {8, 3, 3, 3}, {{1, 1}, {2, 2}, {2, 2}, 1, {0, 0}}});
  cases.push_back({{2, 2, 6, 7}, {8, 2, 2, 2}, {{1, 1}, {0, 0}, {1, 1}, 1, {1, 1}}});
  cases.push_back({{2, 2, 11, 12}, {8, 2, 3, 3}, {{3, 3}, {1, 1}, {1, 1}, 1, {0, 0}}});
  cases.push_back({{17, 2, 4, 8}, {10, 2, 3, 5}, {{1, 1}, {1, 2}, {1, 1}, 1, {0, 0}}});
  cases.push_back({{2, 3, 6, 20}, {8, 3, 5, 5}, {{2, 2}, {4, 4}, {1, 1}, 1, {0, 0}}});  // padding past the kernel
  cases.push_back({{2, 3, 7, 9}, {72, 3, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});   // > 64 rows: B packed
  // The weight packed once for all samples (sgemm_avx512_pack_a) over more than one 256-deep block
  // of the GEMM: 70 output channels from 24 by 5×3 (360 deep, 70 rows: B packed; its input
  // gradient 1,050 deep), 24 from 72 at stride 2 (648 deep, B read in place), and the input
  // gradient by phase 72 · 4 taps = 288 deep.
  cases.push_back({{2, 24, 6, 7}, {70, 24, 5, 3}, {{1, 1}, {2, 1}, {1, 1}, 1, {0, 0}}});
  cases.push_back({{2, 72, 5, 6}, {24, 72, 3, 3}, {{2, 2}, {1, 1}, {1, 1}, 1, {0, 0}}});
  cases.push_back({{3, 20, 9, 10}, {72, 20, 3, 3}, {{2, 2}, {1, 1}, {1, 1}, 1, {0, 0}}});
  // Fewer than 8 samples: each sample's GEMM cut into blocks of columns (multiples of 32) from
  // 1,024 output positions on: one image "same" (5 blocks, the last shorter), ResNet's 7×7/2 stem
  // shape, "valid" 5×5 (phases by column), groups with dilation, a 1-D row of 1,500.
  cases.push_back({{1, 3, 40, 70}, {24, 3, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});
  cases.push_back({{1, 3, 61, 90}, {8, 3, 7, 7}, {{2, 2}, {3, 3}, {1, 1}, 1, {0, 0}}});
  cases.push_back({{3, 4, 40, 40}, {8, 4, 5, 5}, {{1, 1}, {0, 0}, {1, 1}, 1, {0, 0}}});
  cases.push_back({{2, 8, 40, 40}, {16, 4, 3, 5}, {{1, 1}, {1, 2}, {2, 1}, 2, {0, 0}}});
  cases.push_back({{1, 2, 1, 1500}, {9, 2, 1, 5}, {{1, 1}, {0, 2}, {1, 1}, 1, {0, 0}}});
  check_against_definition(cases);
}

// With stride 1, padding p <= d·(k - 1) and 8 input channels or more (per group), the float32
// input gradient on AVX-512 is the forward convolution of dy with the kernel turned by 180° and its
// channels swapped, padded by d·(k - 1) - p (conv2d_forward, gathered): "same" 5×5, dilated 3×3,
// rectangular kernels with different paddings per dim, the full convolution (p = d·(k - 1), an
// output larger than the input), even "same" with extra_end (dy read as zero past its end),
// groups, 1-D rows, 2×2 kernels, a 2,600-position plane, 17 samples. Winograd's 3×3 cases and
// stride 2 are the controls around it.
TEST_CASE("conv2d's input gradient as a forward convolution of dy equals its definition") {
  std::vector<ConvCase> cases;
  cases.push_back({{2, 8, 7, 9}, {8, 8, 5, 5}, {{1, 1}, {2, 2}, {1, 1}, 1, {0, 0}}});      // "same" 5×5
  cases.push_back({{2, 8, 9, 10}, {12, 8, 3, 3}, {{1, 1}, {2, 2}, {2, 2}, 1, {0, 0}}});    // dilated "same"
  cases.push_back({{3, 9, 8, 11}, {8, 9, 3, 5}, {{1, 1}, {1, 1}, {1, 2}, 1, {0, 0}}});     // 3×5, dilated columns
  cases.push_back({{2, 8, 4, 5}, {9, 8, 3, 3}, {{1, 1}, {2, 2}, {1, 1}, 1, {0, 0}}});      // full: p = k - 1
  cases.push_back({{2, 10, 6, 7}, {8, 10, 2, 2}, {{1, 1}, {0, 0}, {1, 1}, 1, {1, 1}}});    // even "same", extra_end
  cases.push_back({{2, 16, 6, 6}, {16, 8, 5, 3}, {{1, 1}, {2, 1}, {1, 1}, 2, {0, 0}}});    // groups
  cases.push_back({{2, 8, 1, 67}, {16, 8, 1, 5}, {{1, 1}, {0, 2}, {1, 1}, 1, {0, 0}}});    // 1-D, partial panels
  cases.push_back({{2, 8, 50, 52}, {8, 8, 5, 5}, {{1, 1}, {2, 2}, {1, 1}, 1, {0, 0}}});    // 2,600 positions
  cases.push_back({{17, 8, 4, 8}, {10, 8, 3, 5}, {{1, 1}, {1, 2}, {1, 1}, 1, {0, 0}}});    // 17 samples
  cases.push_back({{2, 8, 6, 7}, {8, 8, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});      // Winograd
  cases.push_back({{2, 8, 9, 9}, {8, 8, 3, 3}, {{2, 2}, {1, 1}, {1, 1}, 1, {0, 0}}});      // stride 2
  cases.push_back({{2, 8, 9, 9}, {8, 8, 5, 5}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});      // smaller output
  check_against_definition(cases);
}

// A convolution whose taps read input columns past its output's width (a "valid" one, or with
// less padding than "same") splits its input into phases by kernel column: (a, j) holds kernel
// column j's shifted rows: at stride 1 an input row of up to 16 values is moved in one register
// (1, 6, 14, 16: the padding's zeros then come from the permute's mask), longer ones (17, 40)
// in masked loads and stores 16 values at a time, offsets reaching before and past the row; dx
// adds the phases back in order of j. Strides 1, 2 and (1, 3), dilation 2, paddings short of "same", groups; with
// 8 channels a group on both sides dx is computed phase by phase (gathered GEMMs).
TEST_CASE("conv2d over phases by kernel column equals its definition") {
  std::vector<ConvCase> cases;
  for (std::size_t w : {1, 6, 14, 16, 17, 40})
    for (const auto& [kh, kw] : std::vector<std::pair<std::size_t, std::size_t>>{{1, 3}, {3, 3}, {5, 5}, {2, 4}})
      for (std::int64_t pad : {0, 1})
        for (const auto& [sh, sw] : std::vector<std::pair<std::int64_t, std::int64_t>>{{1, 1}, {2, 2}, {1, 3}})
          for (std::int64_t d : {1, 2}) {
            const std::size_t h = 7;
            if (std::int64_t(w) + 2 * pad < d * (std::int64_t(kw) - 1) + 1 ||
                std::int64_t(h) + 2 * pad < d * (std::int64_t(kh) - 1) + 1)
              continue;  // smaller than the kernel
            const std::size_t groups = (w + kh) % 2 ? 2 : 1;
            const tg::Conv2dParams p{{sh, sw}, {pad, pad}, {d, d}, std::int64_t(groups), {0, 0}};
            cases.push_back({{2, 3 * groups, h, w}, {4 * groups, 3, kh, kw}, p});
            cases.push_back({{2, 8 * groups, h, w}, {8 * groups, 8, kh, kw}, p});
          }
  cases.push_back({{17, 6, 14, 14}, {12, 6, 5, 5}, {{1, 1}, {0, 0}, {1, 1}, 1, {0, 0}}});  // LeNet's second, 12 out
  check_against_definition(cases);
}

// A single row at column stride 1 (Conv1d's) reads the input row itself, whatever the output's
// width (one_row_phases): "valid" and short of "same" (outputs narrower than the row: these took
// phases by kernel column), "same", and past it (wider); kernels of 1 to 9 columns, dilation 2,
// kernels taller than the row (only the tap row on it reads the input), row strides (no effect
// on one row), groups, rows of 1 to 300 values; with 8 channels a group on both sides, float32
// on AVX-512 gathers the columns in the GEMM and computes dx as a forward of dy.
TEST_CASE("conv2d over a single row reads the row itself: valid, same, padded past same, dilated, grouped") {
  std::vector<ConvCase> cases;
  for (std::size_t w : {1, 6, 17, 67, 300})
    for (std::size_t kw : {1, 3, 5, 9})
      for (std::int64_t pad : {std::int64_t(0), std::int64_t(1), std::int64_t(kw / 2), std::int64_t(kw)})
        for (std::int64_t d : {1, 2}) {
          if (std::int64_t(w) + 2 * pad < d * (std::int64_t(kw) - 1) + 1) continue;  // smaller than the kernel
          const std::size_t groups = (w + kw + std::size_t(pad)) % 2 ? 2 : 1;
          const tg::Conv2dParams p{{1, 1}, {0, pad}, {1, d}, std::int64_t(groups), {0, 0}};
          cases.push_back({{2, 3 * groups, 1, w}, {4 * groups, 3, 1, kw}, p});
          cases.push_back({{3, 8 * groups, 1, w}, {8 * groups, 8, 1, kw}, p});
        }
  cases.push_back({{2, 8, 1, 40}, {8, 8, 3, 5}, {{2, 1}, {1, 0}, {1, 1}, 1, {0, 0}}});   // 3 tap rows, 1 reads
  cases.push_back({{2, 8, 1, 40}, {12, 8, 5, 3}, {{3, 1}, {4, 1}, {2, 1}, 1, {0, 0}}});  // dilated rows
  cases.push_back({{17, 16, 1, 129}, {16, 16, 1, 7}, {{1, 1}, {0, 0}, {1, 1}, 1, {0, 0}}});  // 17 samples, valid
  check_against_definition(cases);
}

// Samples of at most 16 output positions whose windows never cross rows (a kernel height of 1, no
// padding or stride along the height) run several samples as one plane (samples_side_by_side in
// conv.cpp): blocks of k samples, at least 2, k a divisor of N or not (then the samples left over
// make a last block of their own). Rows of 1 to
// 16 values, kernels 1 to 5, strides 1 and 2, dilation 2, padding 0, 1 and half the kernel, even
// "same" padding (extra_end), groups 2, 4 to 12 samples (2, 3, 4 or 6 a block), 1 to 40 output
// channels (the direct kernels', F(4, 3)'s and the GEMMs'), planes of 2 and 3 rows; samples left
// over: 7 (blocks of 3, 3 and 1 left), 23 (four of 5, 3 left), 38 rows of 16 (four of 9, 2 left),
// 67 rows of 8 (four of 16, 3 left); as controls 2 samples (one block), a kernel of 2 rows, padding and stride along the
// height, and F(4, 3) over 112 channels and rows of 16 (apart: its work reaches the planes' rule);
// 64 samples of rows of 4 and of 2 × 6 planes, whose planes side by side of 128 positions or more
// take the GEMMs where the direct kernels took them before (kDirectNarrowRowsPlane).
// Then the bits of y, dx, dw and db at one and two threads over 64 samples in 2 blocks and 131
// in four blocks of 32 and one of 3.
TEST_CASE("conv2d over samples side by side (rows of few outputs) equals its definition, the same bits at 1 and 2 threads") {
  std::vector<ConvCase> cases;
  std::size_t variant = 0;
  for (std::size_t w : {1, 2, 3, 5, 8, 12, 16})
    for (std::size_t kw : {1, 2, 3, 5})
      for (std::int64_t stride : {1, 2})
        for (std::int64_t pad : {std::int64_t(0), std::int64_t(1), std::int64_t(kw / 2)}) {
          const std::int64_t d = variant % 5 == 2 ? 2 : 1;
          if (std::int64_t(w) + 2 * pad < d * (std::int64_t(kw) - 1) + 1) continue;  // smaller than the kernel
          ++variant;
          const std::size_t n = std::vector<std::size_t>{4, 6, 8, 12}[variant % 4];
          const std::size_t groups = variant % 3 == 0 ? 2 : 1, c = variant % 2 ? 20 : 3 * groups;
          const std::size_t o = std::vector<std::size_t>{4, 16, 24, 40}[variant % 4 == 0 ? 0 : variant % 7 % 4] * groups;
          const std::int64_t extra = kw % 2 == 0 && stride == 1 && variant % 2 ? 1 : 0;
          const std::size_t h = variant % 6 == 1 ? 3 : variant % 6 == 4 ? 2 : 1;
          const tg::Conv2dParams p{{1, stride}, {0, pad}, {1, d}, std::int64_t(groups), {0, extra}};
          cases.push_back({{n, c, h, w}, {o, c / groups, 1, kw}, p});
        }
  cases.push_back({{7, 16, 1, 4}, {24, 16, 1, 3}, {{1, 1}, {0, 1}, {1, 1}, 1, {0, 0}}});  // 3, 3 and 1 left
  cases.push_back({{23, 8, 2, 3}, {12, 8, 1, 3}, {{1, 1}, {0, 1}, {1, 1}, 1, {0, 0}}});   // four of 5, 3 left
  cases.push_back({{38, 16, 1, 16}, {24, 16, 1, 3}, {{1, 1}, {0, 1}, {1, 1}, 1, {0, 0}}});  // four of 9, 2 left
  cases.push_back({{67, 8, 1, 8}, {12, 8, 1, 1}, {{1, 1}, {0, 0}, {1, 1}, 1, {0, 0}}});   // four of 16, 3 left
  cases.push_back({{2, 16, 1, 4}, {24, 16, 1, 3}, {{1, 1}, {0, 1}, {1, 1}, 1, {0, 0}}});  // one block: apart
  cases.push_back({{6, 8, 2, 3}, {12, 8, 2, 3}, {{1, 1}, {0, 1}, {1, 1}, 1, {0, 0}}});    // 2 kernel rows
  cases.push_back({{6, 8, 2, 3}, {12, 8, 1, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});    // padded rows
  cases.push_back({{6, 8, 3, 3}, {12, 8, 1, 3}, {{2, 1}, {0, 1}, {1, 1}, 1, {0, 0}}});    // strided rows
  // planes of 128 positions or more in rows of under 8 outputs: the GEMMs, not the direct kernels
  cases.push_back({{64, 16, 1, 4}, {16, 16, 1, 3}, {{1, 1}, {0, 1}, {1, 1}, 1, {0, 0}}});
  cases.push_back({{64, 24, 2, 6}, {40, 24, 1, 5}, {{1, 1}, {0, 2}, {1, 1}, 1, {0, 0}}});
  cases.push_back({{64, 112, 1, 16}, {112, 112, 1, 3}, {{1, 1}, {0, 1}, {1, 1}, 1, {0, 0}}});  // wide F(4, 3)
  cases.push_back({{6, 24, 1, 8}, {40, 24, 1, 1}, {{1, 1}, {0, 0}, {1, 1}, 1, {0, 0}}});  // kernel 1, 8 outputs
  check_against_definition(cases);

  for (std::size_t n : {64, 131})
    check_same_bits_1_and_2_threads({{n, 24, 1, 4}, {40, 24, 1, 5}, {{1, 1}, {0, 2}, {1, 1}, 1, {0, 0}}});
}

// A kernel dilated by d at stride 1 runs as d·d undilated convolutions over the phase planes
// (dilation_by_phases in conv.cpp) where those take F(2×2, 3×3) or F(4, 3): dilations 2 and 3,
// along one dim or both, square and not, groups of 32, a Conv1d's rows at dilations 2, 4 and 8
// (F(4, 3)); sizes and paddings that are not multiples of the dilation (zeros in the planes before
// and after x, the result's extra rows dropped), "valid" along one dim, extra_end along a dilated
// dim and along an undilated one; as controls (the dilated kernels) stride 2, a 5 × 5 kernel, 32
// channels over planes and rows, 64 over phases of 8 × 8. Then an unbatched input, and the bits
// of y, dx, dw and db at one and two threads.
TEST_CASE("conv2d with a dilated kernel over phase planes equals its definition, the same bits at 1 and 2 threads") {
  auto params = [](std::array<std::int64_t, 2> padding, std::array<std::int64_t, 2> dilation, std::int64_t groups = 1,
                   std::array<std::int64_t, 2> stride = {1, 1}, std::array<std::int64_t, 2> extra = {0, 0}) {
    return tg::Conv2dParams{stride, padding, dilation, groups, extra};
  };
  std::vector<ConvCase> cases = {
      {{1, 64, 28, 28}, {64, 64, 3, 3}, params({2, 2}, {2, 2})},     // phases of 14 × 14
      {{1, 128, 6, 8}, {128, 128, 3, 3}, params({2, 2}, {2, 2})},    // of 3 × 4, 128 channels
      {{1, 128, 6, 6}, {128, 128, 3, 3}, params({3, 3}, {3, 3})},    // dilation 3
      {{1, 64, 16, 30}, {64, 64, 3, 3}, params({0, 2}, {1, 2})},     // along the width only, no padding
      {{1, 64, 30, 16}, {64, 64, 3, 3}, params({2, 1}, {2, 1})},     // along the height only
      {{1, 256, 4, 6}, {256, 128, 3, 3}, params({2, 2}, {2, 2}, 2)},  // groups of 128
      {{8, 64, 1, 128}, {64, 64, 1, 3}, params({0, 2}, {1, 2})},     // a Conv1d's rows, F(4, 3)
      {{4, 64, 1, 256}, {96, 64, 1, 3}, params({0, 8}, {1, 4})},     // dilation 4, padding 2·d
      {{1, 128, 5, 5}, {128, 128, 3, 3}, params({2, 2}, {2, 2})},    // 5: a row of zeros after
      {{1, 128, 6, 6}, {128, 128, 3, 3}, params({1, 1}, {2, 2})},    // padding 1: a row before, one after
      {{1, 128, 7, 5}, {128, 128, 3, 3}, params({4, 1}, {3, 3})},    // dilation 3, paddings 4 and 1
      {{1, 128, 7, 8}, {128, 128, 3, 3}, params({0, 5}, {2, 3})},    // "valid" along the height
      {{1, 128, 6, 6}, {128, 128, 3, 3}, params({2, 2}, {2, 2}, 1, {1, 1}, {0, 2})},  // extra_end, dilated
      {{1, 128, 4, 6}, {128, 128, 3, 3}, params({1, 2}, {1, 2}, 1, {1, 1}, {1, 0})},  // extra_end, undilated
      {{4, 64, 1, 251}, {64, 64, 1, 3}, params({0, 8}, {1, 8})},     // a row of 251 at dilation 8
      {{8, 64, 1, 250}, {64, 64, 1, 3}, params({0, 5}, {1, 3})},     // 250 at dilation 3, padding 5
      {{2, 16, 12, 12}, {16, 16, 3, 3}, params({2, 2}, {2, 2}, 1, {2, 2})},  // controls: stride 2
      {{2, 16, 12, 12}, {16, 16, 5, 5}, params({4, 4}, {2, 2})},     // 5 × 5
      {{2, 32, 12, 12}, {32, 32, 3, 3}, params({2, 2}, {2, 2})},     // 32 channels
      {{16, 32, 1, 128}, {32, 32, 1, 3}, params({0, 2}, {1, 2})},    // 32 channels, rows
      {{1, 64, 15, 15}, {64, 64, 3, 3}, params({2, 2}, {2, 2})},     // 64 channels over 8 × 8 phases
  };
  check_against_definition(cases);

  // Unbatched, (C, H, W): the same values as the batched sample, no batch dim.
  tg::Conv2dParams p = params({2, 2}, {2, 2});
  const Tensor x3 = seq({128, 6, 6}, sin_).to(tg::kFloat64), w3 = seq({128, 128, 3, 3}, cos_, 0.25).to(tg::kFloat64);
  const Tensor one = tg::conv2d(x3, w3, Tensor(), p);
  CHECK(one.shape() == tg::Shape{128, 6, 6});
  CHECK(tg_test::bitwise_equal(one, tg::squeeze(tg::conv2d(tg::unsqueeze(x3, 0), w3, Tensor(), p), 0)));

  check_same_bits_1_and_2_threads({{4, 64, 28, 28}, {64, 64, 3, 3}, p});
  check_same_bits_1_and_2_threads({{4, 64, 1, 1001}, {64, 64, 1, 3}, params({0, 8}, {1, 8})});
}

// With 8 to 32 output channels a group and more column rows (cg·kh·kw) than that, the float32
// weight gradient on AVX-512 is summed as dWᵀ = Σ col · dYᵀ: the GEMM reads the columns where
// they lie (past 144 rows in several row blocks, past 256 positions in several depth blocks) and
// packs only dY. Output channels 16 (from 70 input channels: from fewer it runs directly), 24 and 32, groups,
// planes of 400 and 325 positions, 17 samples; 8 (transposed back inside the GEMM) and 40 (one
// panel too many) as controls.
TEST_CASE("conv2d's weight gradient summed transposed equals its definition") {
  std::vector<ConvCase> cases;
  cases.push_back({{3, 70, 13, 24}, {16, 70, 3, 3}, {{1, 1}, {2, 2}, {2, 2}, 1, {0, 0}}});  // 630 rows, 16 columns
  cases.push_back({{2, 12, 10, 40}, {24, 12, 3, 5}, {{1, 1}, {2, 2}, {2, 1}, 1, {0, 0}}});  // 400 positions
  cases.push_back({{2, 32, 26, 50}, {64, 16, 3, 3}, {{2, 2}, {1, 1}, {1, 1}, 2, {0, 0}}});  // groups, stride 2
  cases.push_back({{17, 20, 5, 8}, {32, 20, 5, 5}, {{1, 1}, {2, 2}, {1, 1}, 1, {0, 0}}});   // 17 samples
  cases.push_back({{2, 8, 9, 9}, {8, 8, 5, 5}, {{1, 1}, {2, 2}, {1, 1}, 1, {0, 0}}});       // 8 columns
  cases.push_back({{2, 8, 9, 9}, {40, 8, 5, 5}, {{1, 1}, {2, 2}, {1, 1}, 1, {0, 0}}});      // 40 columns
  check_against_definition(cases);
}

// A 1-D convolution (one row, not padded in height) sums its weight gradient tap by tap, a GEMM of
// dY with the input transposed per tap (per group), or with groups 1 and dilation 1 in float32 on
// AVX-512 one GEMM of all taps, their rows overlapping; where each GEMM would have 16 columns or
// more and the direct kernels do not take it. Input channels 16, 20 and 33 (groups of 10 keep
// im2col, a control), output channels 4 and 24 (from 16 channels in float32, 24 runs directly,
// another control), kernels 1 (strided or padded: not the input itself), 2, 3 and 5, strides 1
// to 3, dilation 1 and 2, padding 0, 1 and past the kernel, extra_end (even "same"), rows of 9
// and 300 values (positions in two depth blocks), 2 and 17 samples (partial sums by blocks), and
// none. Then the bits of dw at one and two threads, where the samples split into blocks.
TEST_CASE("a 1-D convolution's weight gradient tap by tap equals its definition, the same bits at 1 and 2 threads") {
  std::vector<ConvCase> cases;
  std::size_t variant = 0;
  for (std::size_t w : {9, 300})
    for (std::size_t kw : {1, 2, 3, 5})
      for (std::int64_t stride : {1, 2, 3})
        for (std::int64_t d : {1, 2})
          for (std::int64_t pad : {std::int64_t(0), std::int64_t(1), std::int64_t(kw)}) {
            if (std::int64_t(w) + 2 * pad < d * (std::int64_t(kw) - 1) + 1) continue;  // smaller than the kernel
            ++variant;
            const std::size_t c = variant % 3 == 0 ? 16 : variant % 3 == 1 ? 20 : 33, o = variant % 2 ? 4 : 24;
            const std::size_t groups = c == 20 && variant % 4 == 1 ? 2 : 1;
            const std::size_t n = variant % 5 == 0 ? 17 : 2;
            const std::int64_t extra = kw % 2 == 0 && stride == 1 && variant % 2 ? 1 : 0;
            const tg::Conv2dParams p{{1, stride}, {0, pad}, {1, d}, std::int64_t(groups), {0, extra}};
            cases.push_back({{n, c, 1, w}, {o, c / groups, 1, kw}, p});
          }
  cases.push_back({{3, 64, 1, 40}, {12, 16, 1, 3}, {{1, 1}, {0, 1}, {1, 2}, 4, {0, 0}}});  // groups of 16, dilated
  cases.push_back({{2, 32, 1, 40}, {8, 16, 1, 3}, {{1, 2}, {0, 0}, {1, 1}, 2, {0, 0}}});   // groups of 16, strided
  cases.push_back({{0, 33, 1, 40}, {4, 33, 1, 3}, {{1, 1}, {0, 1}, {1, 1}, 1, {0, 0}}});   // no sample: dw zero
  check_against_definition(cases);

  for (const ConvCase& k : {ConvCase{{40, 64, 1, 100}, {64, 64, 1, 3}, {{1, 1}, {0, 0}, {1, 1}, 1, {0, 0}}},
                            ConvCase{{37, 48, 1, 60}, {32, 24, 1, 5}, {{1, 2}, {0, 3}, {1, 2}, 2, {0, 0}}}})
    for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
      INFO(tg::dtype_name(dtype), " x ", tg::shape_str(k.x), " w ", tg::shape_str(k.w));
      Tensor dw[2];
      for (int threads : {1, 2}) {
        tg::set_num_threads(threads);
        const Tensor x = seq(k.x, sin_).to(dtype);
        const Tensor w = seq(k.w, cos_, 0.25).to(dtype).set_requires_grad();
        const Tensor y = tg::conv2d(x, w, Tensor(), k.p);
        y.backward(seq(y.shape(), cos_).to(dtype));
        dw[threads - 1] = w.grad();
      }
      tg::set_num_threads(1);
      CHECK(tg_test::bitwise_equal(dw[0], dw[1]));
    }
}

// Depthwise convolutions (groups == in_channels) take a direct path: batches of columns over a
// padded plane at stride 1, row loops at other strides. Channel multipliers 1 and 3, planes from
// 1×1 to 19×21 (rows longer than a SIMD batch and shorter; 1 to 38 batches of a plane, which the
// forward sums 8 at a time: every remainder 1-7), kernels 1×1 to 7×7 (more taps than
// the stack arrays hold) and 1×3 (conv1d), "same", valid, wide and even "same" (extra_end)
// padding, padding beyond the kernel's reach (the input gradient's padding is then negative),
// dilations, strides 2 and (2, 1), batches of 9.
TEST_CASE("depthwise conv2d equals its definition on every geometry: forward, dx, dw, db") {
  std::vector<ConvCase> cases;
  for (std::size_t m : {1, 3})
    for (const auto& [h, w] :
         std::vector<std::pair<std::size_t, std::size_t>>{{1, 1}, {3, 5}, {4, 14}, {7, 3}, {19, 21}})
      for (std::int64_t k : {1, 3, 5})
        for (std::int64_t pad : {std::int64_t(0), k / 2, k / 2 + 2}) {
          if (std::int64_t(std::min(h, w)) + 2 * pad < k) continue;  // smaller than the kernel
          cases.push_back({{2, 4, h, w}, {4 * m, 1, std::size_t(k), std::size_t(k)}, {{1, 1}, {pad, pad}, {1, 1}, 4, {0, 0}}});
        }
  cases.push_back({{2, 3, 6, 7}, {3, 1, 2, 2}, {{1, 1}, {0, 0}, {1, 1}, 3, {1, 1}}});     // even "same"
  cases.push_back({{2, 3, 9, 8}, {6, 1, 3, 3}, {{1, 1}, {2, 2}, {2, 2}, 3, {0, 0}}});     // dilated
  cases.push_back({{2, 3, 9, 8}, {3, 1, 3, 2}, {{1, 1}, {3, 1}, {2, 3}, 3, {0, 0}}});     // dilated, wide pad
  cases.push_back({{2, 2, 9, 10}, {2, 1, 3, 3}, {{2, 2}, {1, 1}, {1, 1}, 2, {0, 0}}});    // stride 2
  cases.push_back({{2, 2, 9, 10}, {4, 1, 3, 3}, {{2, 1}, {1, 1}, {1, 1}, 2, {0, 0}}});    // stride (2, 1)
  cases.push_back({{2, 2, 8, 9}, {2, 1, 3, 3}, {{2, 2}, {0, 0}, {2, 1}, 2, {0, 0}}});     // stride, dilation
  cases.push_back({{1, 5, 1, 17}, {5, 1, 1, 3}, {{1, 1}, {0, 1}, {1, 1}, 5, {0, 0}}});    // conv1d-like
  cases.push_back({{9, 6, 5, 5}, {6, 1, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 6, {0, 0}}});     // several samples a task
  cases.push_back({{2, 3, 9, 20}, {3, 1, 7, 7}, {{1, 1}, {3, 3}, {1, 1}, 3, {0, 0}}});    // 49 taps
  // One output column of a 19-wide plane (1×3 kernel, dilation 9): the input gradient pads dy by 18
  // columns on each side, rows wider than a batch with more padding than values.
  cases.push_back({{2, 3, 2, 19}, {3, 1, 1, 3}, {{1, 1}, {0, 0}, {1, 9}, 3, {0, 0}}});
  check_against_definition(cases);

  // At stride 1 the scratch columns of the flat runs pair dy's padding (0) with input values of the
  // next row: an inf there must not reach a weight gradient it does not belong to. x = 1 with an inf
  // in channel 0 at (row 2, column 0), 3×3 "same": the kernel's right column (j = 2) never sees
  // column 0, so its gradient is the one of x = 1; columns j = 0 and 1 see the inf.
  tg::Conv2dParams same;
  same.padding = {1, 1};
  same.groups = 2;
  for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
    const std::string name = tg::dtype_name(dtype);
    CAPTURE(name);
    auto weight_grad = [&](bool with_inf) {
      Tensor x64 = tg::ones({1, 2, 5, 6}, tg::kFloat64);
      if (with_inf) x64.values_mut<double>().data()[2 * 6] = std::numeric_limits<double>::infinity();
      const Tensor w = tg::ones({2, 1, 3, 3}, dtype).set_requires_grad();
      tg::conv2d(x64.to(dtype), w, Tensor(), same).backward(tg::ones({1, 2, 5, 6}, dtype));
      return tg_test::flat(w.grad());
    };
    const std::vector<double> got = weight_grad(true), finite = weight_grad(false);
    for (std::size_t i = 0; i < 3; ++i) {
      CAPTURE(i);
      CHECK(std::isinf(got[i * 3]));
      CHECK(std::isinf(got[i * 3 + 1]));
      CHECK(got[i * 3 + 2] == finite[i * 3 + 2]);
    }
    CHECK(std::vector<double>(got.begin() + 9, got.end()) == std::vector<double>(finite.begin() + 9, finite.end()));
  }
}

// Golden values from PyTorch 1.13 (/usr/bin/python3), for a convolution that takes the Winograd
// path (3×3, stride 1, 8 channels in, 9 out), seq as above:
//   x = seq((2, 8, 5, 7), torch.sin).requires_grad_()
//   w = seq((9, 8, 3, 3), torch.cos, 0.25).requires_grad_()
//   b = (torch.arange(9, dtype=torch.float64) * 0.1).requires_grad_()
//   y = F.conv2d(x, w, b, padding=(1, 2))
//   y.backward(seq(y.shape, torch.cos))
//   print("shape", list(y.shape))
//   print("sum", repr(y.sum().item()), "sumsq", repr((y * y).sum().item()))
//   print("first", y.flatten()[:6].tolist())
//   print("dx first", x.grad.flatten()[:6].tolist(), "dx sumsq", repr((x.grad ** 2).sum().item()))
//   print("dw first", w.grad.flatten()[:6].tolist(), "dw sumsq", repr((w.grad ** 2).sum().item()))
//   print("db", b.grad.tolist())
TEST_CASE("conv2d's Winograd path matches PyTorch: forward, dx, dw, db") {
  const Tensor x = seq({2, 8, 5, 7}, sin_).set_requires_grad();
  const Tensor w = seq({9, 8, 3, 3}, cos_, 0.25).set_requires_grad();
  const Tensor b = (tg::arange(9, tg::kFloat64) * 0.1).set_requires_grad();
  tg::Conv2dParams p;
  p.padding = {1, 2};
  const Tensor y = tg::conv2d(x, w, b, p);
  CHECK(y.shape() == tg::Shape{2, 9, 5, 9});
  CHECK(tg::sum(y).item() == doctest::Approx(323.87525493901813).epsilon(1e-12));
  CHECK(sum_of_squares(y) == doctest::Approx(270.4947902032058).epsilon(1e-12));
  check_close(first(y, 6), {-0.3344232811581512, -0.22744011006085796, 0.15702602189550954, -0.06953488114088105,
                            -0.23216573513287964, -0.1813444829308522}, 1e-12);
  y.backward(seq(y.shape(), cos_));
  check_close(first(x.grad(), 6), {0.027092198008683177, 0.6250868665768115, 0.6483795527499997, 0.07555506828034447,
                                   -0.5667343975262099, -0.6879708718767488}, 1e-12);
  CHECK(sum_of_squares(x.grad()) == doctest::Approx(280.30210903291095).epsilon(1e-12));
  check_close(first(w.grad(), 6), {5.21223945722898, 0.908348114410432, -4.230674295735114, -3.9413224058305714,
                                   -6.959851437280865, -3.5795251542945037}, 1e-11);
  CHECK(sum_of_squares(w.grad()) == doctest::Approx(13674.150706154913).epsilon(1e-12));
  check_close(b.grad(), {0.033231160423859984, -0.2096411478803295, -0.2534893699089126, -0.05668593200907712,
                         0.19393263682692286, 0.2604400889582483, 0.0796971741719037, -0.1767067328799734,
                         -0.26535303887988565}, 1e-12);
}

TEST_CASE("conv2d's Winograd path equals its definition: 3x3, stride 1, >= 8 channels, any padding, size, groups") {
  // 3×3 kernels with stride 1, dilation 1, one group and at least 8 channels in and out take
  // Winograd F(2×2, 3×3) for y, dx and dw (conv.cpp), except where the direct path takes y and
  // dw (16 output channels, or 32-64 from at most 16 input) or dx (the same the other way round;
  // the next test): the cases here are neither.
  // Odd and even sizes (a partial last tile), planes smaller than a tile, every padding 0-2 per
  // side, extra_end, and batches that span several blocks (17 samples of 16 tiles: blocks of 5;
  // 2 samples of 289 tiles: one each).
  std::vector<ConvCase> cases;
  const std::array<std::array<std::int64_t, 2>, 6> pads{{{0, 0}, {1, 1}, {2, 2}, {0, 2}, {2, 1}, {1, 0}}};
  for (std::size_t h : {1, 2, 3, 6, 7})
    for (std::size_t w : {1, 2, 5, 8})
      for (const auto& pad : pads) {
        if (std::int64_t(h) + 2 * pad[0] < 3 || std::int64_t(w) + 2 * pad[1] < 3) continue;
        cases.push_back({{2, 17, h, w}, {17, 17, 3, 3}, {{1, 1}, {pad[0], pad[1]}, {1, 1}, 1, {0, 0}}});
      }
  cases.push_back({{2, 17, 4, 5}, {18, 17, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {1, 1}}});  // extra_end
  cases.push_back({{3, 8, 5, 6}, {8, 8, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});     // the fewest channels
  cases.push_back({{3, 7, 5, 6}, {9, 7, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});     // one fewer: im2col
  cases.push_back({{17, 18, 7, 8}, {17, 18, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});
  cases.push_back({{2, 24, 34, 33}, {20, 24, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});
  // Small planes and many channels (a CIFAR ResNet's last stage): every sample in one block and
  // the weight gradient in one range, the 16 GEMMs shared between threads; then 4×4 planes of 40
  // samples (blocks of 16, ranges of 16: three partial sums of dU).
  cases.push_back({{16, 64, 4, 4}, {64, 64, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});
  cases.push_back({{5, 128, 3, 4}, {96, 128, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});
  cases.push_back({{40, 16, 4, 4}, {24, 16, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});
  // Grouped, at least 32 channels a group in and out: Winograd a group at a time (fewer: im2col).
  cases.push_back({{2, 64, 7, 8}, {64, 32, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 2, {0, 0}}});
  cases.push_back({{3, 96, 5, 6}, {99, 32, 3, 3}, {{1, 1}, {0, 2}, {1, 1}, 3, {0, 0}}});
  cases.push_back({{2, 32, 6, 5}, {32, 8, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 4, {0, 0}}});
  check_against_definition(cases);
}

TEST_CASE("a 1-D convolution's Winograd F(4, 3) path equals its definition: kernel 3, stride 1, >= 16 channels") {
  // Kernels of 3 at stride 1 and dilation 1 over one row (or 1 × 3 over planes, row by row), 16
  // channels or more in and out (32 a group when grouped), with at least 1024 outputs a channel
  // (rows × the shorter of the input and output rows), take Winograd F(4, 3) along the row for y,
  // dx and dw (conv.cpp), except where the direct kernels take them (16 output channels, or 17-64
  // from at most 16 inputs): the cases here are neither, but for the controls. `samples(w, ow)` is
  // the fewest samples that reach 1024 outputs. Rows of 1 to 13 values (a last tile of 1 to 4
  // outputs, rows shorter than a tile), padding 0-2, extra_end, blocks of tiles that cut rows and
  // span samples, weight-gradient ranges of two blocks, groups.
  auto samples = [](std::size_t w, std::size_t ow) { return (1024 + std::min(w, ow) - 1) / std::min(w, ow); };
  std::vector<ConvCase> cases;
  for (std::size_t w : {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13})
    for (std::int64_t pad : {0, 1, 2}) {
      if (std::int64_t(w) + 2 * pad < 3) continue;
      const std::size_t n = samples(w, w + std::size_t(2 * pad) - 2);
      cases.push_back({{n, 17, 1, w}, {18, 17, 1, 3}, {{1, 1}, {0, pad}, {1, 1}, 1, {0, 0}}});
    }
  cases.push_back({{114, 17, 1, 9}, {18, 17, 1, 3}, {{1, 1}, {0, 1}, {1, 1}, 1, {0, 1}}});   // extra_end
  cases.push_back({{103, 17, 1, 10}, {18, 17, 1, 3}, {{1, 1}, {0, 0}, {1, 1}, 1, {0, 2}}});  // extra_end past the pad
  cases.push_back({{114, 16, 1, 9}, {65, 16, 1, 3}, {{1, 1}, {0, 1}, {1, 1}, 1, {0, 0}}});   // the fewest channels
  cases.push_back({{114, 15, 1, 9}, {65, 15, 1, 3}, {{1, 1}, {0, 1}, {1, 1}, 1, {0, 0}}});   // one fewer: the GEMMs
  cases.push_back({{113, 16, 1, 9}, {65, 16, 1, 3}, {{1, 1}, {0, 1}, {1, 1}, 1, {0, 0}}});   // 1017 outputs: the GEMMs
  cases.push_back({{2, 17, 1, 9}, {18, 17, 1, 3}, {{1, 1}, {0, 3}, {1, 1}, 1, {0, 0}}});     // padding 3: the GEMMs
  cases.push_back({{1, 20, 1, 2000}, {24, 20, 1, 3}, {{1, 1}, {0, 1}, {1, 1}, 1, {0, 0}}});  // one row, many blocks
  cases.push_back({{3, 18, 1, 401}, {17, 18, 1, 3}, {{1, 1}, {0, 0}, {1, 1}, 1, {0, 0}}});   // blocks across samples
  cases.push_back({{9, 17, 1, 2001}, {17, 17, 1, 3}, {{1, 1}, {0, 2}, {1, 1}, 1, {0, 0}}});  // dW: 9 ranges of 2 blocks
  cases.push_back({{94, 64, 1, 11}, {64, 32, 1, 3}, {{1, 1}, {0, 1}, {1, 1}, 2, {0, 0}}});   // 2 groups of 32
  cases.push_back({{147, 96, 1, 7}, {99, 32, 1, 3}, {{1, 1}, {0, 2}, {1, 1}, 3, {0, 0}}});   // 3 groups, 33 out each
  cases.push_back({{114, 48, 1, 9}, {48, 16, 1, 3}, {{1, 1}, {0, 1}, {1, 1}, 3, {0, 0}}});   // 16 a group: the GEMMs
  // 1 × 3 kernels over planes of several rows, each row a row of the path, where rows have at least
  // 8 tiles and (in · out / (in + out) - 8) · tiles reaches 192 (below it, and where the direct
  // kernels take the layer, at most 64 channels in and out, the GEMMs): 20 -> 72 channels, rows of
  // 119 to 126 outputs, heights 2 and 5, padding 0-2.
  for (std::size_t h : {2, 5})
    for (std::size_t w : {121, 122, 123, 124})
      for (std::int64_t pad : {0, 1, 2}) {
        const std::size_t ow = w + std::size_t(2 * pad) - 2;
        cases.push_back({{(1024 + h * ow - 1) / (h * ow), 20, h, w}, {72, 20, 1, 3}, {{1, 1}, {0, pad}, {1, 1}, 1, {0, 0}}});
      }
  cases.push_back({{1, 20, 12, 130}, {72, 20, 1, 3}, {{1, 1}, {0, 1}, {1, 1}, 1, {0, 0}}});   // one image, blocks across rows
  cases.push_back({{3, 20, 3, 120}, {72, 20, 1, 3}, {{1, 1}, {0, 1}, {1, 1}, 1, {0, 2}}});    // extra_end along the rows
  cases.push_back({{2, 64, 8, 64}, {144, 32, 1, 3}, {{1, 1}, {0, 1}, {1, 1}, 2, {0, 0}}});    // 2 groups, 32 -> 72 each
  cases.push_back({{2, 20, 5, 120}, {72, 20, 1, 3}, {{1, 1}, {0, 1}, {3, 1}, 1, {0, 0}}});    // a row dilation (no effect)
  cases.push_back({{2, 20, 5, 120}, {72, 20, 1, 3}, {{2, 1}, {0, 1}, {1, 1}, 1, {0, 0}}});    // stride 2 down: the GEMMs
  cases.push_back({{2, 20, 5, 120}, {72, 20, 1, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});    // padded rows: the GEMMs
  cases.push_back({{2, 20, 5, 120}, {72, 20, 1, 3}, {{1, 1}, {0, 1}, {1, 1}, 1, {1, 0}}});    // an extra row: the GEMMs
  cases.push_back({{2, 20, 5, 110}, {72, 20, 1, 3}, {{1, 1}, {0, 0}, {1, 1}, 1, {0, 0}}});    // 27 tiles: the GEMMs
  cases.push_back({{2, 20, 5, 111}, {72, 20, 1, 3}, {{1, 1}, {0, 0}, {1, 1}, 1, {0, 0}}});    // 28 tiles: F(4, 3)
  cases.push_back({{9, 96, 4, 28}, {96, 96, 1, 3}, {{1, 1}, {0, 1}, {1, 1}, 1, {0, 0}}});     // 7 tiles: the GEMMs
  check_against_definition(cases);

  // The same bits at 1 and 2 threads: y, dx and dw (blocks in parallel, dW's ranges summed in order),
  // one row of a Conv1d and planes of a 1 × 3 kernel.
  for (const ConvCase& k : {ConvCase{{9, 24, 1, 700}, {40, 24, 1, 3}, {{1, 1}, {0, 1}, {1, 1}, 1, {0, 0}}},
                            ConvCase{{2, 20, 8, 130}, {72, 20, 1, 3}, {{1, 1}, {0, 1}, {1, 1}, 1, {0, 0}}}})
    for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
      INFO(tg::dtype_name(dtype), " ", tg::shape_str(k.x));
      Tensor got[2][3];
      for (int threads : {1, 2}) {
        tg::set_num_threads(threads);
        const Tensor x = seq(k.x, sin_).to(dtype).set_requires_grad();
        const Tensor w = seq(k.w, cos_, 0.25).to(dtype).set_requires_grad();
        const Tensor y = tg::conv2d(x, w, Tensor(), k.p);
        y.backward(seq(y.shape(), cos_).to(dtype));
        got[threads - 1][0] = y;
        got[threads - 1][1] = x.grad();
        got[threads - 1][2] = w.grad();
      }
      tg::set_num_threads(1);
      for (int t = 0; t < 3; ++t) CHECK(tg_test::bitwise_equal(got[0][t], got[1][t]));
    }
}

// 16 output channels a group, or 32, 48 or 64 from at most 64 input channels a group and 16 taps
// or more (a 3×3 from over 16 input channels at stride 1: to at most 32), at strides 1 and 2
// (kernels 2 to 7 wide, any dilation) take the direct path in float32 on AVX-512 (16 output
// channels to a register) for y and dw, and for dx at stride 1 where the channels the other way
// round fit (the forward over dy). Input channels 1, 3, 8, 16, 17, 20, 32 and 64 a group,
// output 16 to 64, groups 1, 2 and 4; kernels 3×3, 5×5, 7×7, 3×5, 2×2 (even "same": extra_end),
// 4×2, 1×3 and 3×1 (a 1-wide kernel keeps the GEMM), 1×1 and 8 wide (controls); "valid", "same"
// and padding past the kernel; output rows of 1, 7, 15, 16, 17 and 33 columns (pieces of 16 and
// what is left); no sample, one (its rows cut between tasks), 3, and 9; 65 input channels with 32
// out, 80 out, 9 taps to 32 out and a 3×3 from 32 to 64 channels (Winograd's) as controls. Dilated: (2, 2), (2, 1), (1, 3) and (3, 2) over 1
// to 9 output rows (rows pair with the row dh below: whole blocks of 2·dh rows, part of one, and
// rows alone; from over 16 channels, oh ≤ dh keeps the GEMM), one image cut into blocks of rows,
// 3 → 16 to 64 → 48 channels. Strided (rows alone, broadcasts every second column at sw = 2):
// (2, 2), (2, 1) and (1, 2) over rows of 3 to 70 output columns, from 3, 16 and 64 channels, one
// image, with dilation and groups; stride 3 as a control. Output channels 8 to 15 (a block of 16
// lanes, the rest zero), 24 and 40 (whole blocks and part of one), with 7 as a control.
TEST_CASE("conv2d with output channels 16 at a time (the direct path) equals its definition") {
  std::vector<ConvCase> cases;
  using Kernel = std::array<std::size_t, 2>;
  for (const Kernel& k : {Kernel{3, 3}, Kernel{5, 5}, Kernel{3, 5}, Kernel{4, 2}, Kernel{1, 3}})
    for (std::size_t w : {1, 7, 15, 16, 17, 33})
      for (std::int64_t pad : {0, 1, 2}) {
        const std::int64_t ph = pad == 2 ? std::int64_t(k[0]) : pad * std::int64_t(k[0] / 2);
        const std::int64_t pw = pad == 2 ? std::int64_t(k[1]) : pad * std::int64_t(k[1] / 2);
        if (std::int64_t(w) + 2 * pw < std::int64_t(k[1]) || 5 + 2 * ph < std::int64_t(k[0])) continue;
        const std::size_t c = (w + k[0]) % 3 == 0 ? 1 : (w + k[0]) % 3 == 1 ? 3 : 16;
        cases.push_back({{2, c, 5, w}, {16, c, k[0], k[1]}, {{1, 1}, {ph, pw}, {1, 1}, 1, {0, 0}}});
      }
  cases.push_back({{1, 3, 20, 40}, {16, 3, 7, 7}, {{1, 1}, {3, 3}, {1, 1}, 1, {0, 0}}});   // one image, 7×7
  cases.push_back({{0, 16, 5, 6}, {32, 16, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});   // an empty batch
  cases.push_back({{3, 16, 9, 9}, {16, 16, 2, 2}, {{1, 1}, {0, 0}, {1, 1}, 1, {1, 1}}});   // even "same"
  cases.push_back({{3, 64, 7, 9}, {64, 16, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 4, {0, 0}}});   // 4 groups of 16
  cases.push_back({{9, 40, 6, 7}, {32, 20, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 2, {0, 0}}});   // 9 samples, 2 groups
  cases.push_back({{2, 32, 8, 6}, {32, 16, 5, 3}, {{1, 1}, {2, 1}, {1, 1}, 2, {0, 0}}});   // groups, 5×3
  cases.push_back({{2, 16, 6, 7}, {16, 16, 3, 1}, {{1, 1}, {1, 0}, {1, 1}, 1, {0, 0}}});   // 1 wide: the GEMM
  cases.push_back({{2, 16, 6, 7}, {16, 16, 1, 1}, {{1, 1}, {0, 0}, {1, 1}, 1, {0, 0}}});   // 1×1: the GEMM
  cases.push_back({{2, 3, 5, 12}, {16, 3, 3, 8}, {{1, 1}, {1, 2}, {1, 1}, 1, {0, 0}}});    // 8 wide: the GEMM
  using Dilation = std::array<std::int64_t, 2>;
  for (const Dilation& d : {Dilation{2, 2}, Dilation{2, 1}, Dilation{1, 3}, Dilation{3, 2}})
    for (std::size_t rows = 1; rows <= 9; ++rows) {  // output rows ("same" padding)
      const std::size_t c = rows % 3 == 0 ? 3 : rows % 3 == 1 ? 32 : 64, o = rows % 2 ? 16 : 48;
      const Kernel k = rows % 4 == 3 ? Kernel{3, 5} : rows % 4 == 1 ? Kernel{2, 2} : Kernel{3, 3};
      const std::int64_t ph = d[0] * std::int64_t(k[0] - 1) / 2, pw = d[1] * std::int64_t(k[1] - 1) / 2;
      const std::int64_t eh = d[0] * std::int64_t(k[0] - 1) % 2, ew = d[1] * std::int64_t(k[1] - 1) % 2;
      cases.push_back({{2, c, rows, 7 + 5 * (rows % 3)}, {o, c, k[0], k[1]}, {{1, 1}, {ph, pw}, d, 1, {eh, ew}}});
    }
  cases.push_back({{1, 16, 40, 9}, {32, 16, 3, 3}, {{1, 1}, {2, 2}, {2, 2}, 1, {0, 0}}});  // one image, dilated
  using Stride = std::array<std::int64_t, 2>;
  for (const Stride& st : {Stride{2, 2}, Stride{2, 1}, Stride{1, 2}})
    for (std::size_t w : {5, 16, 33, 34, 70}) {  // output rows of 3 to 70 columns: pieces of 16 and what is left
      const std::size_t c = w % 3 == 0 ? 64 : w % 3 == 1 ? 3 : 16, o = w % 2 ? 16 : 64;
      const Kernel k = w > 40 ? Kernel{5, 5} : w % 2 ? Kernel{3, 3} : Kernel{4, 2};
      const std::int64_t ph = std::int64_t(k[0] / 2), pw = std::int64_t(k[1] / 2);
      cases.push_back({{2, c, 9, w}, {o, c, k[0], k[1]}, {st, {ph, pw}, {1, 1}, 1, {0, 0}}});
    }
  cases.push_back({{1, 16, 30, 20}, {32, 16, 3, 3}, {{2, 2}, {1, 1}, {1, 1}, 1, {0, 0}}});  // one image, stride 2
  // Rows alone, input value by input value (direct_piece_row): one-row planes (Conv1d's), every
  // kernel width 2-7 at strides 1 and 2, pieces of 1 to 16 columns and what is left past 16.
  for (std::size_t kw = 2; kw <= 7; ++kw)
    for (std::int64_t sw : {1, 2})
      for (std::size_t ow : {1, 4, 13, 16, 23}) {
        const std::size_t w = (ow - 1) * std::size_t(sw) + kw - 2, c = (kw + ow) % 2 ? 16 : 5;  // padding (0, 1)
        cases.push_back({{2, c, 1, w}, {ow % 2 ? 16u : 32u, c, 1, kw}, {{1, sw}, {0, 1}, {1, 1}, 1, {0, 0}}});
      }
  cases.push_back({{3, 32, 11, 13}, {48, 16, 3, 3}, {{2, 2}, {2, 2}, {2, 2}, 2, {0, 0}}}); // stride and dilation 2, groups
  cases.push_back({{2, 16, 12, 12}, {16, 16, 3, 3}, {{3, 3}, {1, 1}, {1, 1}, 1, {0, 0}}});  // stride 3: not direct
  cases.push_back({{3, 32, 9, 11}, {32, 32, 3, 3}, {{1, 1}, {0, 0}, {2, 2}, 1, {0, 0}}});  // dilated, "valid"
  cases.push_back({{2, 20, 12, 12}, {32, 10, 5, 5}, {{1, 1}, {4, 4}, {2, 2}, 2, {0, 0}}}); // dilated 5×5, groups
  cases.push_back({{2, 16, 6, 9}, {32, 16, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});   // 16 → 32
  cases.push_back({{3, 8, 5, 17}, {48, 8, 3, 5}, {{1, 1}, {1, 2}, {1, 1}, 1, {0, 0}}});    // 8 → 48, 3×5
  cases.push_back({{1, 3, 7, 20}, {64, 3, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});    // one image 3 → 64
  cases.push_back({{2, 32, 6, 6}, {64, 16, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 2, {0, 0}}});   // 2 groups 16 → 32
  cases.push_back({{9, 16, 4, 5}, {32, 16, 3, 3}, {{1, 1}, {0, 0}, {1, 1}, 1, {0, 0}}});   // 9 samples, "valid"
  cases.push_back({{2, 32, 5, 7}, {16, 32, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});   // 32 → 16 (dx 16 → 32)
  cases.push_back({{2, 17, 6, 7}, {32, 17, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});   // 17 in
  cases.push_back({{2, 64, 6, 7}, {64, 64, 5, 5}, {{1, 1}, {2, 2}, {1, 1}, 1, {0, 0}}});   // 64 in, 5×5
  cases.push_back({{2, 65, 6, 7}, {32, 65, 5, 5}, {{1, 1}, {2, 2}, {1, 1}, 1, {0, 0}}});   // 65 in: not direct
  cases.push_back({{2, 48, 6, 7}, {32, 48, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});   // 3×3 48 → 32: direct
  // 3×3 from 17-32 inputs to over 32 outputs: the forward (and dX, a forward over dY) writing planes
  // up to 14 columns wide runs directly, wider ones and every weight gradient by Winograd.
  cases.push_back({{2, 32, 6, 7}, {64, 32, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});   // 32 → 64, 7 wide: direct
  cases.push_back({{2, 32, 5, 14}, {64, 32, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});  // 14 wide: direct
  cases.push_back({{2, 32, 5, 15}, {64, 32, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});  // 15 wide: Winograd
  cases.push_back({{2, 33, 6, 7}, {64, 33, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});   // 33 in: Winograd
  cases.push_back({{3, 20, 4, 9}, {40, 20, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});   // 20 → 40
  cases.push_back({{2, 64, 6, 7}, {24, 64, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});   // dx 24 → 64 direct
  cases.push_back({{2, 48, 7, 7}, {24, 48, 3, 3}, {{1, 1}, {0, 0}, {1, 1}, 1, {0, 0}}});   // "valid": dx not a forward
  cases.push_back({{2, 64, 6, 7}, {128, 32, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 2, {0, 0}}});  // 2 groups 32 → 64
  cases.push_back({{2, 16, 6, 7}, {80, 16, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});   // 80 out: not direct
  cases.push_back({{2, 1, 6, 7}, {32, 1, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});     // 9 taps to 32: not direct
  cases.push_back({{2, 1, 6, 7}, {16, 1, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});     // 9 taps to 16: direct
  // Output channels that are not whole blocks of 16 (direct_lanes: the weights, bias and dY
  // padded with zero lanes, only `count` channels stored): 8 to 15 in one block, every count,
  // paired rows, rows alone, strided, dilated, grouped; the input gradient over dY from them.
  for (std::size_t o = 8; o <= 15; ++o) {
    const std::size_t c = o % 3 == 0 ? 8 : o % 3 == 1 ? 3 : 13, w = 5 + 4 * (o % 4);
    cases.push_back({{2, c, 7, w}, {o, c, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});     // paired rows, 3×3
    cases.push_back({{2, c, 6, w + 9}, {o, c, 5, 3}, {{2, 2}, {2, 1}, {1, 1}, 1, {0, 0}}});  // stride 2, 5×3
  }
  cases.push_back({{3, 8, 9, 17}, {8, 8, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});    // 8 → 8 (dx 8 → 8)
  cases.push_back({{2, 12, 5, 20}, {12, 12, 5, 5}, {{1, 1}, {4, 4}, {2, 2}, 1, {0, 0}}}); // dilated 12 → 12
  cases.push_back({{2, 20, 6, 9}, {20, 10, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 2, {0, 0}}});  // 2 groups of 10 → 10
  cases.push_back({{2, 9, 1, 30}, {9, 9, 1, 5}, {{1, 1}, {0, 2}, {1, 1}, 1, {0, 0}}});    // one row (Conv1d's)
  cases.push_back({{2, 3, 11, 11}, {8, 3, 3, 3}, {{2, 2}, {1, 1}, {1, 1}, 1, {0, 0}}});   // stem 3 → 8, stride 2
  cases.push_back({{2, 16, 6, 7}, {24, 16, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});  // 24: a block and a half
  cases.push_back({{2, 8, 6, 7}, {40, 8, 5, 5}, {{1, 1}, {2, 2}, {1, 1}, 1, {0, 0}}});    // 40: two and a half
  cases.push_back({{2, 2, 6, 7}, {7, 2, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1, {0, 0}}});     // 7 out: not direct
  check_against_definition(cases);
}

// Every path at once, on geometries nobody chose: 250 random convolutions (seeded), float32 against
// float64 — groups 1-3, 1-70 input and 1-70 output channels a group (half the draws at most 16
// input channels, half a multiple of 16 output channels), kernels up to 7×8, strides
// 1-3, dilations 1-2, any padding up to the kernel, planes up to 12 × 40, batches of 1 to 10 and
// (a quarter of them) empty. float32 runs the gathered, direct, Winograd, phase and depthwise
// paths where they fit; the float64 results are checked against the definition by the tests
// above. (This sweep found an empty batch dividing by zero on the direct path.)
TEST_CASE("conv2d in float32 equals float64 on random geometries: y, dx, dw, db") {
  std::mt19937 rng(7);
  const auto pick = [&](int low, int high) { return std::uniform_int_distribution<int>(low, high)(rng); };
  tg::manual_seed(7);
  int checked = 0;
  while (checked < 250) {
    // (half the draws with at most 16 input and 16·k output channels, where the direct path runs)
    const bool narrow_in = pick(0, 1) == 1, blocks_out = pick(0, 1) == 1;
    const int groups = pick(1, 3), cg = narrow_in ? pick(1, 16) : pick(1, 70);
    const int og = blocks_out ? 16 * pick(1, 4) : pick(1, 70), kh = pick(1, 7), kw = pick(1, 8);
    const int sh = pick(1, 3), sw = pick(1, 3), dh = pick(1, 2), dw = pick(1, 2);
    const int ph = pick(0, kh), pw = pick(0, kw), h = pick(1, 12), w = pick(1, 40);
    const int n = pick(0, 3) == 0 ? 0 : pick(1, 10);  // a quarter of them empty batches
    if (h + 2 * ph < dh * (kh - 1) + 1 || w + 2 * pw < dw * (kw - 1) + 1) continue;  // smaller than the kernel
    ++checked;
    INFO("n ", n, " groups ", groups, " channels ", cg, " -> ", og, " kernel ", kh, "x", kw, " stride ", sh, ",", sw,
         " dilation ", dh, ",", dw, " padding ", ph, ",", pw, " plane ", h, "x", w);
    tg::Conv2dParams p;
    p.stride = {sh, sw};
    p.padding = {ph, pw};
    p.dilation = {dh, dw};
    p.groups = groups;
    const auto size = [](int v) { return std::size_t(v); };
    const Tensor x = tg::randn({size(n), size(cg * groups), size(h), size(w)}, tg::kFloat64);
    const Tensor wt = tg::randn({size(og * groups), size(cg), size(kh), size(kw)}, tg::kFloat64);
    const Tensor b = tg::randn({size(og * groups)}, tg::kFloat64);
    Inputs wide{x.clone().set_requires_grad(), wt.clone().set_requires_grad(), b.clone().set_requires_grad()};
    Inputs narrow{x.to(tg::kFloat32).set_requires_grad(), wt.to(tg::kFloat32).set_requires_grad(),
                  b.to(tg::kFloat32).set_requires_grad()};
    const Tensor y64 = tg::conv2d(wide[0], wide[1], wide[2], p), y32 = tg::conv2d(narrow[0], narrow[1], narrow[2], p);
    const Tensor gy = tg::randn(y64.shape(), tg::kFloat64);
    y64.backward(gy);
    y32.backward(gy.to(tg::kFloat32));
    const Tensor got[4] = {y32, narrow[0].grad(), narrow[1].grad(), narrow[2].grad()};
    const Tensor want[4] = {y64, wide[0].grad(), wide[1].grad(), wide[2].grad()};
    const char* names[4] = {"y", "dx", "dw", "db"};
    for (int t = 0; t < 4; ++t) {
      INFO(names[t]);
      REQUIRE(got[t].shape() == want[t].shape());
      const std::vector<double> expected = tg_test::flat(want[t]), actual = tg_test::flat(got[t]);
      double scale = 1, worst = 0;  // relative to the largest value: dw sums up to thousands of products
      for (std::size_t i = 0; i < expected.size(); ++i) {
        scale = std::max(scale, std::abs(expected[i]));
        worst = std::max(worst, std::abs(actual[i] - expected[i]));  // (NaN fails the check below)
        if (std::isnan(actual[i])) worst = actual[i];
      }
      CHECK(worst <= 1e-5 * scale);
    }
  }
}

namespace {

tg::Pool2dParams pool_params(std::int64_t k, std::int64_t s, std::int64_t p = 0, bool ceil = false,
                             bool with_pad = true) {
  tg::Pool2dParams params;
  params.kernel = {k, k};
  params.stride = {s, s};
  params.padding = {p, p};
  params.ceil_mode = ceil;
  params.count_include_pad = with_pad;
  return params;
}

}  // namespace

// Average pooling is linear, so its backward must be its forward's transpose: dx[j] = Σ_o A[o][j]·g[o]
// with A's column j the pooling of the unit input e_j. Checked on windows that tile the plane (the
// backward then writes each share once), that overlap or leave edges out (it adds), global ones
// (ow = 1: a fill) and long ones (a window's run of 32 values or more is summed in SIMD lanes:
// against a long double sum), in both dtypes.
TEST_CASE("average pooling: the backward is the forward's transpose, for tiled, overlapping and long windows") {
  using Pool = std::function<Tensor(const Tensor&)>;
  const std::vector<std::tuple<const char*, Pool, tg::Shape>> cases = {
      {"2x2 tiled", [](const Tensor& x) { return tg::avg_pool2d(x, pool_params(2, 2)); }, {2, 3, 6, 8}},
      {"2x2, odd edges left out", [](const Tensor& x) { return tg::avg_pool2d(x, pool_params(2, 2)); }, {2, 3, 7, 9}},
      {"3x3 stride 2 padded, ceil",
       [](const Tensor& x) { return tg::avg_pool2d(x, pool_params(3, 2, 1, true, false)); }, {2, 2, 7, 6}},
      {"3x3 stride 3 tiled", [](const Tensor& x) { return tg::avg_pool2d(x, pool_params(3, 3)); }, {1, 2, 9, 12}},
      {"adaptive global", [](const Tensor& x) { return tg::adaptive_avg_pool2d(x, {1, 1}); }, {2, 3, 8, 8}},
      {"adaptive (2, 1): whole-row runs", [](const Tensor& x) { return tg::adaptive_avg_pool2d(x, {2, 1}); },
       {2, 3, 6, 20}},
      {"adaptive (3, 4) tiled", [](const Tensor& x) { return tg::adaptive_avg_pool2d(x, {3, 4}); }, {2, 2, 6, 8}},
      {"adaptive (4, 3) overlapping", [](const Tensor& x) { return tg::adaptive_avg_pool2d(x, {4, 3}); }, {2, 2, 7, 5}},
      {"adaptive (1, 2): 40-value runs", [](const Tensor& x) { return tg::adaptive_avg_pool2d(x, {1, 2}); },
       {1, 2, 3, 80}},
      {"adaptive global of 2500", [](const Tensor& x) { return tg::adaptive_avg_pool2d(x, {1, 1}); }, {1, 1, 50, 50}},
  };
  tg::manual_seed(17);
  for (const auto& [name, pool, shape] : cases) {
    INFO(name);
    const Tensor x = uniform64(shape, -1, 1).set_requires_grad();
    const Tensor y = pool(x);
    const Tensor g = uniform64(y.shape(), -1, 1);
    y.backward(g);
    const std::vector<double> gs = tg_test::flat(g), dx = tg_test::flat(x.grad());
    std::size_t wrong = 0;
    for (std::size_t j = 0; j < x.numel(); ++j) {
      std::vector<double> unit(x.numel(), 0.0);
      unit[j] = 1.0;
      const std::vector<double> column = tg_test::flat(pool(Tensor(unit, shape)));
      long double expected = 0;
      for (std::size_t o = 0; o < column.size(); ++o) expected += (long double)column[o] * gs[o];
      wrong += !(std::fabs(dx[j] - double(expected)) <= 1e-14);
    }
    CHECK(wrong == 0);
    // The forward: Σ_j A[o][j]·x[j] (long double) to float64 rounding, and float32 within its own.
    const std::vector<double> xs = tg_test::flat(x), ys = tg_test::flat(y);
    std::vector<long double> reference(ys.size(), 0);
    for (std::size_t j = 0; j < xs.size(); ++j) {
      std::vector<double> unit(x.numel(), 0.0);
      unit[j] = 1.0;
      const std::vector<double> column = tg_test::flat(pool(Tensor(unit, shape)));
      for (std::size_t o = 0; o < column.size(); ++o) reference[o] += (long double)column[o] * xs[j];
    }
    const std::vector<double> y32 = tg_test::flat(pool(x.detach().to(tg::kFloat32)));
    for (std::size_t o = 0; o < ys.size(); ++o) {
      wrong += !(std::fabs(ys[o] - double(reference[o])) <= 1e-15);
      wrong += !(std::fabs(y32[o] - double(reference[o])) <= 1e-6);
    }
    CHECK(wrong == 0);
    // float32's backward is float64's, rounded.
    const Tensor x32 = x.detach().to(tg::kFloat32).set_requires_grad();
    pool(x32).backward(g.to(tg::kFloat32));
    const std::vector<double> dx32 = tg_test::flat(x32.grad());
    for (std::size_t j = 0; j < dx.size(); ++j) wrong += !(std::fabs(dx32[j] - dx[j]) <= 1e-6);
    CHECK(wrong == 0);
  }
}

TEST_CASE("adaptive max pooling and return_indices match PyTorch; every window against the definition") {
  // torch 1.13, x = sin(i) and the output's gradient cos(i) over the flattened shapes:
  //   y, idx = F.adaptive_max_pool2d(x, osz, return_indices=True); y.backward(seq(y.shape, math.cos))
  //   F.adaptive_max_pool1d(seq((2, 3, 10), math.sin), 4)
  //   F.max_pool2d(seq((1, 2, 5, 6), math.sin), 3, stride=2, padding=1, return_indices=True)[1]
  //   x = [[[1, 3, 3, 2], [3, nan, 0, 3], [nan, 1, 3, 3]]]; F.adaptive_max_pool2d(x, (2, 2), return_indices=True)
  struct Case {
    tg::Shape shape;
    std::array<std::int64_t, 2> size;
    std::vector<double> y;
    std::vector<std::int64_t> indices;
    std::vector<double> dx;  // only its non-zero values, in order
  };
  const std::vector<Case> cases = {
      {{1, 2, 7, 5}, {3, 2},
       {0.909297427, 0.990607356, 0.912945251, 0.990607356, 0.956375928, 0.99991186, 0.901788348, 0.963795386,
        0.986627592, 0.992872648, 0.826828679, 0.992872648},
       {2, 14, 20, 14, 27, 33, 11, 4, 17, 23, 30, 23},
       {1, -0.449690191, -0.416146837, -0.653643621, 0.283662185, 0.753902254, 0.960170287, -0.145500034,
        -0.906704564, -0.839071529}},
      {{1, 1, 5, 3}, {7, 1},
       {0.909297427, 0.909297427, 0.989358247, 0.989358247, 0.989358247, 0.990607356, 0.990607356},
       {2, 2, 8, 8, 8, 14, 14},
       {1.54030231, -2.05978295, 1.24383247}},
  };
  for (const Case& c : cases) {
    INFO("input ", tg::shape_str(c.shape));
    const Tensor x = seq(c.shape, sin_).set_requires_grad();
    const auto [y, indices] = tg::adaptive_max_pool2d_with_indices(x, c.size);
    check_close(y, c.y, 1e-8);
    CHECK(indices.dtype() == tg::kInt64);
    CHECK(!indices.requires_grad());
    CHECK(indices.to_vector<std::int64_t>() == c.indices);
    y.backward(seq(y.shape(), cos_));
    std::vector<double> nonzero;
    for (double v : x.grad().to_vector<double>())
      if (v != 0.0) nonzero.push_back(v);
    check_close(Tensor(nonzero, {nonzero.size()}), c.dx, 1e-8);
    check_close(tg::adaptive_max_pool2d(x, c.size), c.y, 1e-8);
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor ties(std::vector<double>{1, 3, 3, 2, 3, nan, 0, 3, nan, 1, 3, 3}, {1, 3, 4});  // unbatched
  const auto [tied, where] = tg::adaptive_max_pool2d_with_indices(ties, {2, 2});
  CHECK(where.to_vector<std::int64_t>() == std::vector<std::int64_t>{5, 2, 8, 7});  // the first maximum, the last NaN
  CHECK(where.shape() == tg::Shape{1, 2, 2});
  CHECK(std::isnan(tied.to_vector<double>()[0]));
  check_close(tg::adaptive_max_pool1d(seq({2, 3, 10}, sin_), 4),
              {0.909297427, 0.909297427, 0.656986599, 0.989358247, -0.536572918, 0.990607356, 0.65028784, 0.14987721,
               0.912945251, -0.00885130929, 0.956375928, 0.956375928, 0.551426681, 0.99991186, -0.428182669,
               0.963795386, 0.74511316, 0.0177019251, 0.901788348, 0.123573123, 0.986627592, 0.986627592,
               0.436164755, 0.992872648},
              1e-8);
  tg::Pool2dParams p;
  p.kernel = {3, 3};
  p.stride = {2, 2};
  p.padding = {1, 1};
  const auto [pooled, picked] = tg::max_pool2d_with_indices(seq({1, 2, 5, 6}, sin_), p);
  CHECK(picked.to_vector<std::int64_t>() ==
        std::vector<std::int64_t>{1, 8, 9, 7, 14, 21, 19, 27, 27, 1, 3, 3, 7, 9, 22, 24, 21, 28});
  check_close(pooled, tg::max_pool2d(seq({1, 2, 5, 6}, sin_), p).to_vector<double>(), 0.0);

  // Every output size from 1 to past the input's, on planes of 1-9 rows and columns: the value and
  // index of each window's first maximum by a plain loop over PyTorch's window bounds, both dtypes;
  // the backward adds each output's gradient at its index.
  std::mt19937 rng(3);
  for (std::size_t h = 1; h <= 9; h += 2)
    for (std::size_t w = 1; w <= 9; w += 4)
      for (std::int64_t oh = 1; oh <= 10; oh += 3)
        for (std::int64_t ow = 1; ow <= 10; ow += 2) {
          INFO("plane ", h, " x ", w, " to ", oh, " x ", ow);
          const Tensor x = uniform64({2, 3, h, w}).set_requires_grad();
          const std::vector<double> xs = x.to_vector<double>();
          const auto [y, indices] = tg::adaptive_max_pool2d_with_indices(x, {oh, ow});
          const Tensor g = uniform64(y.shape());
          y.backward(g);
          const std::vector<double> ys = y.to_vector<double>(), gs = g.to_vector<double>();
          const std::vector<std::int64_t> is = indices.to_vector<std::int64_t>();
          std::vector<double> dx(xs.size(), 0.0);
          for (std::size_t plane = 0; plane < 6; ++plane)
            for (std::size_t oy = 0; oy < std::size_t(oh); ++oy)
              for (std::size_t ox = 0; ox < std::size_t(ow); ++ox) {
                const std::size_t y0 = oy * h / std::size_t(oh), y1 = ((oy + 1) * h + std::size_t(oh) - 1) / std::size_t(oh);
                const std::size_t x0 = ox * w / std::size_t(ow), x1 = ((ox + 1) * w + std::size_t(ow) - 1) / std::size_t(ow);
                std::size_t best = y0 * w + x0;
                for (std::size_t iy = y0; iy < y1; ++iy)
                  for (std::size_t ix = x0; ix < x1; ++ix)
                    if (xs[plane * h * w + iy * w + ix] > xs[plane * h * w + best]) best = iy * w + ix;
                const std::size_t o = (plane * std::size_t(oh) + oy) * std::size_t(ow) + ox;
                CHECK(ys[o] == xs[plane * h * w + best]);
                CHECK(is[o] == std::int64_t(best));
                dx[plane * h * w + best] += gs[o];
              }
          check_close(x.grad(), dx, 1e-15);
          check_close(tg::adaptive_max_pool2d(x.detach().to(tg::kFloat32), {oh, ow}), Tensor(ys, y.shape()).to(tg::kFloat32).to_vector<double>(), 0.0);
        }

  // Windows full of ties, NaNs, infinities and signed zeros, on planes of 1 to 40 values a row (the
  // two passes of window_max: whole planes as one run, narrower windows row by row; batches of 16
  // and 8, two at a time, and what is left), float32 and float64, against PyTorch's loop:
  //   maxval = -inf, maxindex = first; for val in window (row-major): if val > maxval or isnan(val): take it
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> specials{0.0, -0.0, 1.0, 2.0, -inf, inf, nan};
  for (tg::DType dtype : {tg::kFloat32, tg::kFloat64})
    for (const auto& [h, w] : std::vector<std::pair<std::size_t, std::size_t>>{{14, 14}, {3, 40}, {7, 33}, {1, 17}, {5, 8}})
      for (std::int64_t oh : {1, 2, 3})
        for (std::int64_t ow : {1, 2})
          for (int density = 0; density < 3; ++density) {  // NaNs: none, few, many; -inf-only planes
            INFO(tg::dtype_name(dtype), " plane ", h, " x ", w, " to ", oh, " x ", ow, " density ", density);
            std::vector<double> xs(4 * h * w);
            for (std::size_t i = 0; i < xs.size(); ++i) {
              const std::size_t pick = rng() % (density == 0 ? 6 : density == 1 ? 40 : 8);
              xs[i] = i / (h * w) == 3 ? -inf : pick < specials.size() ? specials[pick] : double(rng() % 3);
            }
            const auto [y, indices] = tg::adaptive_max_pool2d_with_indices(Tensor(xs, {1, 4, h, w}).to(dtype), {oh, ow});
            const std::vector<double> ys = y.to_vector<double>();
            const std::vector<std::int64_t> is = indices.to_vector<std::int64_t>();
            for (std::size_t plane = 0; plane < 4; ++plane)
              for (std::size_t oy = 0; oy < std::size_t(oh); ++oy)
                for (std::size_t ox = 0; ox < std::size_t(ow); ++ox) {
                  const std::size_t y0 = oy * h / std::size_t(oh), y1 = ((oy + 1) * h + std::size_t(oh) - 1) / std::size_t(oh);
                  const std::size_t x0 = ox * w / std::size_t(ow), x1 = ((ox + 1) * w + std::size_t(ow) - 1) / std::size_t(ow);
                  double best_value = -inf;
                  std::size_t best = y0 * w + x0;
                  for (std::size_t iy = y0; iy < y1; ++iy)
                    for (std::size_t ix = x0; ix < x1; ++ix)
                      if (const double v = xs[plane * h * w + iy * w + ix]; v > best_value || std::isnan(v)) {
                        best_value = v;
                        best = iy * w + ix;
                      }
                  const std::size_t o = (plane * std::size_t(oh) + oy) * std::size_t(ow) + ox;
                  CHECK(is[o] == std::int64_t(best));
                  CHECK((std::isnan(ys[o]) ? std::isnan(best_value) : ys[o] == best_value));
                  CHECK(std::signbit(ys[o]) == std::signbit(best_value));  // a -0 found first stays -0
                }
          }

  nn::AdaptiveMaxPool2d layer(std::array<std::int64_t, 2>{3, 2});
  nn::AdaptiveMaxPool1d layer1(4);
  std::ostringstream printed;
  printed << layer << ' ' << layer1;
  CHECK(printed.str() == "AdaptiveMaxPool2d(output_size=(3, 2)) AdaptiveMaxPool1d(output_size=4)");
  const Tensor x = seq({1, 2, 7, 5}, sin_);
  CHECK(layer.forward_with_indices(x).second.to_vector<std::int64_t>() ==
        tg::adaptive_max_pool2d_with_indices(x, {3, 2}).second.to_vector<std::int64_t>());
  CHECK(layer1(seq({2, 3, 10}, sin_)).shape() == tg::Shape{2, 3, 4});
  nn::MaxPool2d pool(nn::MaxPool2dOptions(3).stride(2).padding(1));
  CHECK(pool.forward_with_indices(seq({1, 2, 5, 6}, sin_)).second.to_vector<std::int64_t>() == picked.to_vector<std::int64_t>());
  CHECK_THROWS_WITH_AS(nn::AdaptiveMaxPool2d(0), "AdaptiveMaxPool2d: output_size must be positive, got 0", tg::Error);
  CHECK_THROWS_WITH_AS(tg::adaptive_max_pool2d(tg::randn({2, 3}), {1, 1}),
                       "adaptive_max_pool2d: expected input (N, C, H, W) or (C, H, W), got [2, 3]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::adaptive_max_pool2d(tg::randn({1, 2, 3}), {-1, 1}),
                       "adaptive_max_pool2d: output_size must be non-negative, got (-1, 1)", tg::Error);
  CHECK_THROWS_WITH_AS(tg::adaptive_max_pool2d(tg::randn({1, 0, 3}), {1, 1}),
                       "adaptive_max_pool2d: expected non-empty spatial dims, got [1, 1, 0, 3]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::adaptive_max_pool2d(tg::zeros({1, 2, 3}, tg::kInt64), {1, 1}),
                       "adaptive_max_pool2d: expected a floating-point input, got int64", tg::Error);
  CHECK_THROWS_WITH_AS(tg::adaptive_max_pool1d(tg::randn({3}), 1),
                       "adaptive_max_pool1d: expected input (N, C, L) or (C, L), got [3]", tg::Error);
  CHECK(tg::adaptive_max_pool2d(tg::randn({1, 2, 3}), {0, 2}).shape() == tg::Shape{1, 0, 2});  // empty, as PyTorch's
}
