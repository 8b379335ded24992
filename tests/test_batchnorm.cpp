// BatchNorm1d in PyTorch's and MindSpore's conventions: the seed documents' numbers, every row of
// both mode tables, momentum conversion, PyTorch golden values, gradcheck, threads, checkpoints.
#include <sstream>
#include "../core/xtensor.hpp"

#include "helpers.hpp"

using tg::Tensor;
using tg_test::bitwise_equal;
using tg_test::check_close;
namespace nn = tg::nn;
using Options = nn::BatchNorm1dOptions;
using Inputs = std::vector<Tensor>;

#include "data/batchnorm_golden.inc"

namespace {

// The seed documents' input.
Tensor seed_input() { return Tensor({{0.7, 0.5, 0.5, 0.6}, {0.5, 0.4, 0.6, 0.9}}); }

// PyTorch training-mode output for the seed input (identical in MindSpore after set_train()).
const std::vector<double> kSeedTrainingOutput = {0.9995001, 0.9980063, -0.998006, -0.99977785,
                                                 -0.9995007, -0.9980057, 0.998006, 0.99977785};

Tensor values64(const std::vector<double>& v, const tg::Shape& shape) { return Tensor(v, shape); }

// One training step of BatchNorm1d(options) on the float32 values x32 with upstream gradient g32,
// in float32 and in float64, checked against each other by check_normalization_float32 (y, dx,
// dweight, dbias). Returns both steps' {y, dx, dweight, dbias, running_mean, running_var}.
std::pair<std::vector<Tensor>, std::vector<Tensor>> check_float32_step(const Options& options, const Tensor& x32,
                                                                       const Tensor& g32,
                                                                       const std::vector<std::int64_t>& other_dims,
                                                                       const std::string& what) {
  auto run = [&](tg::DType dtype) {
    nn::BatchNorm1d bn(options);
    bn.set_train();
    bn.to(dtype);
    const Tensor x = x32.to(dtype).detach().set_requires_grad(true);
    const Tensor y = bn(x);
    y.backward(g32.to(dtype));
    return std::vector<Tensor>{y, x.grad(), bn.weight.grad(), bn.bias.grad(), bn.running_mean, bn.running_var};
  };
  std::vector<Tensor> f32 = run(tg::kFloat32), f64 = run(tg::kFloat64);
  const Tensor g64 = g32.to(tg::kFloat64);
  // x̂ = y for weight 1, bias 0: the magnitudes of dweight's and dbias's terms, per channel.
  tg_test::check_normalization_float32(f32, f64, tg_test::flat(tg::sum(tg::abs(g64 * f64[0]), other_dims)),
                                       tg_test::flat(tg::sum(tg::abs(g64), other_dims)), what);
  return {std::move(f32), std::move(f64)};
}

}  // namespace

TEST_CASE("seed document, PyTorch style: training output and running statistics") {
  // net = nn.BatchNorm1d(4, affine=False, momentum=0.1); net(x)
  nn::BatchNorm1d net(Options(4).affine(false).momentum(0.1));
  CHECK(net.is_training());
  CHECK(net.parameters().empty());
  check_close(net(seed_input()), kSeedTrainingOutput, 2e-6);
  check_close(net.running_mean, {0.06, 0.045, 0.055, 0.075}, 1e-7);
  check_close(net.running_var, {0.902, 0.9005, 0.9005, 0.9045}, 1e-6);
  CHECK(net.num_batches_tracked.dtype() == tg::kInt64);
  CHECK(net.num_batches_tracked.item() == 1);
}

TEST_CASE("seed document, MindSpore style: inference by default, training after set_train()") {
  // net = nn.BatchNorm1d(num_features=4, momentum=0.8); net(x) -- no set_train: moving statistics
  nn::BatchNorm1d inference(Options::mindspore(4).momentum(0.8));
  CHECK_FALSE(inference.is_training());
  check_close(inference(seed_input()),
              {0.6999965, 0.4999975, 0.4999975, 0.59999704, 0.4999975, 0.399998, 0.59999704, 0.89999545}, 1e-7);
  check_close(inference.moving_mean(), {0, 0, 0, 0}, 0);  // inference never changes a statistic
  check_close(inference.moving_variance(), {1, 1, 1, 1}, 0);

  // net = nn.BatchNorm1d(num_features=4, affine=False, momentum=0.9); net.set_train(); net(x)
  nn::BatchNorm1d training(Options::mindspore(4).affine(false).momentum(0.9));
  training.set_train();
  check_close(training(seed_input()), kSeedTrainingOutput, 2e-6);
  check_close(training.moving_mean(), {0.06, 0.045, 0.055, 0.075}, 1e-7);
  check_close(training.moving_variance(), {0.902, 0.9005, 0.9005, 0.9045}, 1e-6);
}

TEST_CASE("MindSpore momentum m and PyTorch momentum 1 - m give the same running statistics") {
  tg::manual_seed(2);
  for (double ms_momentum : {0.75, 0.9, 0.5}) {
    nn::BatchNorm1d torch_style(Options(3).momentum(1.0 - ms_momentum));
    nn::BatchNorm1d ms_style(Options::mindspore(3).momentum(ms_momentum));
    ms_style.set_train();
    for (int step = 0; step < 5; ++step) {
      const Tensor x = tg::randn({8, 3, 5}) * 2.0 + 3.0;
      const Tensor a = torch_style(x), b = ms_style(x);
      CHECK(bitwise_equal(a, b));
    }
    INFO("MindSpore momentum ", ms_momentum);
    // With an exact binary momentum (0.75, 0.5) the bits agree; 1 - 0.9 is not 0.1 in binary.
    check_close(ms_style.moving_mean(), tg_test::flat(torch_style.running_mean), 1e-6);
    check_close(ms_style.moving_variance(), tg_test::flat(torch_style.running_var), 1e-6);
    if (ms_momentum != 0.9) CHECK(bitwise_equal(ms_style.moving_mean(), torch_style.running_mean));
  }
}

TEST_CASE("momentum = nullopt is PyTorch's cumulative moving average") {
  // net2 = nn.BatchNorm1d(4, momentum=None); for k in range(3): net2(x * (k + 1))
  nn::BatchNorm1d net(Options(4).momentum(std::nullopt));
  for (int k = 0; k < 3; ++k) net(seed_input() * double(k + 1));
  check_close(net.running_mean, {1.2000000476837158, 0.8999999761581421, 1.1000001430511475, 1.5}, 1e-6);
  check_close(net.running_var, {0.09333331137895584, 0.02333332784473896, 0.023333344608545303, 0.2099999040365219},
              1e-6);
  CHECK(net.num_batches_tracked.item() == 3);
  std::ostringstream out;
  out << net;
  CHECK(out.str() == "BatchNorm1d(4, eps=1e-05, momentum=None, affine=true, track_running_stats=true)");
}

TEST_CASE("PyTorch mode table: every combination of training and track_running_stats") {
  tg::manual_seed(3);
  const Tensor x = tg::randn({6, 3}) + 1.0;
  const Tensor batch_normalised = nn::functional::batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true);

  SUBCASE("training, tracking: batch statistics, running statistics updated") {
    nn::BatchNorm1d bn(3);
    check_close(bn(x), tg_test::flat(batch_normalised), 1e-6);
    CHECK_FALSE(bitwise_equal(bn.running_mean, tg::zeros({3})));
    CHECK(bn.num_batches_tracked.item() == 1);
  }
  SUBCASE("training, not tracking: batch statistics, no buffers") {
    nn::BatchNorm1d bn(Options(3).track_running_stats(false));
    CHECK(bn.buffers().empty());
    CHECK(bn.state_dict().keys() == std::vector<std::string>{"weight", "bias"});
    check_close(bn(x), tg_test::flat(batch_normalised), 1e-6);
  }
  SUBCASE("eval, tracking: running statistics, unchanged") {
    nn::BatchNorm1d bn(3);
    {
      tg::NoGradGuard no_grad;
      bn.running_mean.values_mut<float>() = xt::xarray<float>{1.0f, 2.0f, 3.0f};
      bn.running_var.values_mut<float>() = xt::xarray<float>{4.0f, 1.0f, 0.25f};
    }
    bn.eval();
    const Tensor y = bn(x);
    const Tensor expected = (x - Tensor({1.0, 2.0, 3.0})) / tg::sqrt(Tensor({4.0, 1.0, 0.25}) + 1e-5);
    check_close(y, tg_test::flat(expected), 1e-6);
    check_close(bn.running_mean, {1, 2, 3}, 0);
    check_close(bn.running_var, {4, 1, 0.25}, 0);
    CHECK(bn.num_batches_tracked.item() == 0);
    // Any batch size in inference, even a single value per channel.
    CHECK(bn(tg::randn({1, 3})).shape() == tg::Shape{1, 3});
  }
  SUBCASE("eval, not tracking: batch statistics") {
    nn::BatchNorm1d bn(Options(3).track_running_stats(false));
    bn.eval();
    check_close(bn(x), tg_test::flat(batch_normalised), 1e-6);
  }
}

TEST_CASE("MindSpore mode table: use_batch_statistics true, false and None against the mode") {
  tg::manual_seed(4);
  const Tensor x = tg::randn({6, 3}) + 2.0;
  const Tensor batch_normalised = nn::functional::batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true);
  const Tensor moving_normalised = x / std::sqrt(1.0 + 1e-5);  // moving mean 0, variance 1

  SUBCASE("true: batch statistics and updates, even in inference mode") {
    nn::BatchNorm1d bn(Options::mindspore(3).use_batch_statistics(true));
    CHECK_FALSE(bn.is_training());
    check_close(bn(x), tg_test::flat(batch_normalised), 1e-6);
    CHECK_FALSE(bitwise_equal(bn.moving_mean(), tg::zeros({3})));
  }
  SUBCASE("false: moving statistics, never updated, even in training mode") {
    nn::BatchNorm1d bn(Options::mindspore(3).use_batch_statistics(false));
    bn.set_train();
    check_close(bn(x), tg_test::flat(moving_normalised), 1e-6);
    check_close(bn.moving_mean(), {0, 0, 0}, 0);
    check_close(bn.moving_variance(), {1, 1, 1}, 0);
  }
  SUBCASE("None follows the mode, and a parent's set_train reaches it") {
    nn::Sequential net(nn::BatchNorm1d(Options::mindspore(3)));
    auto bn = net.at<nn::BatchNorm1d>(0);
    check_close(net(x), tg_test::flat(moving_normalised), 1e-6);  // inference
    check_close(bn->moving_mean(), {0, 0, 0}, 0);
    net.set_train(true);
    check_close(net(x), tg_test::flat(batch_normalised), 1e-6);   // training
    CHECK_FALSE(bitwise_equal(bn->moving_mean(), tg::zeros({3})));
    net.set_train(false);
    const Tensor before = bn->moving_mean().clone();
    net(x);
    CHECK(bitwise_equal(bn->moving_mean(), before));
  }
}

TEST_CASE("MindSpore names, frozen gamma/beta with affine=false, and the init options") {
  nn::BatchNorm1d bn(Options::mindspore(2).affine(false).gamma_init(2.0).beta_init("ones"));
  CHECK(bn.state_dict().keys() == std::vector<std::string>{"gamma", "beta", "moving_mean", "moving_variance"});
  CHECK(bn.named_parameters().keys() == std::vector<std::string>{"gamma", "beta"});
  CHECK_FALSE(bn.gamma().requires_grad());
  CHECK_FALSE(bn.beta().requires_grad());
  // Still applied: 2·x/sqrt(1 + eps) + 1 in inference.
  check_close(bn(Tensor({{1.0, 2.0}})), {2 / std::sqrt(1 + 1e-5) + 1, 4 / std::sqrt(1 + 1e-5) + 1}, 1e-6);
  // Frozen: no gradient reaches them.
  bn.set_train();
  Tensor x = tg::randn({4, 2}).set_requires_grad();
  tg::sum(bn(x) * x).backward();
  CHECK(x.grad().defined());
  CHECK_FALSE(bn.gamma().grad().defined());

  tg::manual_seed(1);
  nn::BatchNorm1d custom(Options::mindspore(3)
                             .gamma_init(Tensor({1.0, 2.0, 3.0}))
                             .beta_init("normal")
                             .moving_mean_init("uniform")
                             .moving_var_init(0.5));
  check_close(custom.gamma(), {1, 2, 3}, 0);
  CHECK(xt::amax(xt::abs(custom.moving_mean().values<float>()))() <= 0.07f);
  CHECK(xt::amax(xt::abs(custom.beta().values<float>()))() < 0.05f);
  check_close(custom.moving_variance(), {0.5, 0.5, 0.5}, 0);
  CHECK(custom.gamma().requires_grad());
  CHECK_THROWS_WITH_AS(nn::BatchNorm1d(Options::mindspore(3).gamma_init(Tensor({1.0, 2.0}))),
                       "BatchNorm1d: gamma_init tensor has shape [2], expected [3]", tg::Error);
  CHECK_THROWS_WITH_AS(nn::BatchNorm1d(Options::mindspore(3).beta_init("xavier")), doctest::Contains("beta_init must be"),
                       tg::Error);

  std::ostringstream out;
  out << nn::BatchNorm1d(Options::mindspore(4).momentum(0.8));
  CHECK(out.str() ==
        "BatchNorm1d(num_features=4, eps=1e-05, momentum=0.8, affine=true, gamma_init=ones, beta_init=zeros, "
        "moving_mean_init=zeros, moving_var_init=ones, use_batch_statistics=None, data_format=NCHW)");
}

TEST_CASE("NHWC takes (N, L, C) and equals NCHW on the permuted input") {
  tg::manual_seed(5);
  const Tensor x = tg::randn({4, 3, 5});  // (N, C, L)
  nn::BatchNorm1d nchw(Options::mindspore(3).use_batch_statistics(true));
  nn::BatchNorm1d nhwc(Options::mindspore(3).use_batch_statistics(true).data_format("NHWC"));
  const Tensor a = nchw(x);
  const Tensor b = nhwc(tg::permute(x, {0, 2, 1}));
  check_close(tg::permute(b, {0, 2, 1}), tg_test::flat(a), 1e-6);
  check_close(nhwc.moving_mean(), tg_test::flat(nchw.moving_mean()), 1e-7);
  CHECK_THROWS_WITH_AS(nhwc(tg::randn({4, 3, 5})), "BatchNorm1d: expected 3 channels (num_features) at dim 2, got input [4, 3, 5]",
                       tg::Error);
}

TEST_CASE("running_var_unbiased(false) gives MindSpore-CPU's biased update") {
  nn::BatchNorm1d bn(Options::mindspore(4).affine(false).momentum(0.9).running_var_unbiased(false));
  bn.set_train();
  bn(seed_input());
  // biased variances of the columns are 0.01, 0.0025, 0.0025, 0.0225: 0.9 + 0.1·var
  check_close(bn.moving_variance(), {0.901, 0.90025, 0.90025, 0.90225}, 1e-6);
}

TEST_CASE("PyTorch golden values: 3 training steps then eval on a 3-D input") {
  // tests/data/batchnorm_golden.inc, from tests/data/make_batchnorm_golden.py:
  // BatchNorm1d(2, momentum=0.1), float64, weight [1.5, -0.5], bias [0.25, 2.0], input (3, 2, 4).
  nn::BatchNorm1d bn(2);
  bn.to(tg::kFloat64);
  {
    tg::NoGradGuard no_grad;
    bn.weight.values_mut<double>() = xt::xarray<double>{1.5, -0.5};
    bn.bias.values_mut<double>() = xt::xarray<double>{0.25, 2.0};
  }
  auto run_step = [&](const BatchNormGoldenStep& step) {
    Tensor x = values64(step.x, {3, 2, 4}).set_requires_grad();
    bn.zero_grad();
    const Tensor y = bn(x);
    y.backward(values64(step.grad_out, {3, 2, 4}));
    check_close(y, step.y, 1e-12);
    check_close(x.grad(), step.grad_x, 1e-12);
    check_close(bn.weight.grad(), step.grad_weight, 1e-12);
    check_close(bn.bias.grad(), step.grad_bias, 1e-12);
    check_close(bn.running_mean, step.running_mean, 1e-12);
    check_close(bn.running_var, step.running_var, 1e-12);
  };
  for (const BatchNormGoldenStep& step : batchnorm_golden_training()) run_step(step);
  bn.eval();
  run_step(batchnorm_golden_eval());
  CHECK(bn.num_batches_tracked.item() == batchnorm_golden_num_batches_tracked());
}

TEST_CASE("gradcheck in both modes, 2-D and 3-D, affine on and off, both conventions, NHWC") {
  tg::manual_seed(6);
  auto check = [](nn::BatchNorm1d& bn, const tg::Shape& shape) {
    bn.to(tg::kFloat64);
    {  // non-trivial affine and running statistics
      tg::NoGradGuard no_grad;
      if (bn.weight.defined()) nn::init::uniform_(bn.weight, 0.5, 1.5);
      if (bn.bias.defined()) nn::init::uniform_(bn.bias, -0.5, 0.5);
      if (bn.running_mean.defined()) nn::init::uniform_(bn.running_mean, -1, 1);
      if (bn.running_var.defined()) nn::init::uniform_(bn.running_var, 0.5, 2);
    }
    Inputs inputs{tg_test::uniform64(shape, -2, 2)};
    for (const Tensor& p : bn.parameters())
      if (p.requires_grad()) inputs.push_back(p);
    CHECK_GRADCHECK([&](const Inputs& in) { return bn(in[0]); }, inputs);
  };
  for (bool training : {true, false})
    for (bool affine : {true, false}) {
      INFO("training ", training, ", affine ", affine);
      nn::BatchNorm1d pt(Options(3).affine(affine));
      pt.train(training);
      check(pt, {4, 3});
      check(pt, {2, 3, 3});
      nn::BatchNorm1d ms(Options::mindspore(3).affine(affine));
      ms.set_train(training);
      check(ms, {4, 3});
      check(ms, {2, 3, 3});
      nn::BatchNorm1d nhwc(Options::mindspore(3).affine(affine).data_format("NHWC"));
      nhwc.set_train(training);
      check(nhwc, {2, 3, 3});
    }
  nn::BatchNorm1d untracked(Options(2).track_running_stats(false));
  untracked.eval();
  check(untracked, {5, 2});
}

TEST_CASE("float32 statistics keep their accuracy for a large mean") {
  // Values 10000 + small noise: a one-pass float sum of squares would lose the variance.
  tg::manual_seed(7);
  const Tensor noise = tg::randn({4096, 2}, tg::kFloat64) * 0.01;
  const Tensor x = (noise + 10000.0).to(tg::kFloat32);
  nn::BatchNorm1d bn(Options(2).momentum(1.0));
  bn(x);
  const Tensor exact_var = tg::var(x.to(tg::kFloat64), {0});
  check_close(bn.running_var, tg_test::flat(exact_var), 1e-8);
  check_close(bn.running_mean, tg_test::flat(tg::mean(x.to(tg::kFloat64), {0})), 1e-3);
}

TEST_CASE("forward and backward give the same bits with 1 and 2 threads") {
  auto run = [](const tg::Shape& shape, const Options& options) {
    tg::manual_seed(8);
    nn::BatchNorm1d bn(options);
    bn.set_train();
    Tensor x = tg::randn(shape).set_requires_grad();
    const Tensor y = bn(x);
    y.backward(tg::randn(shape));
    return std::vector<Tensor>{y, x.grad(), bn.weight.grad(), bn.bias.grad(), bn.running_mean, bn.running_var};
  };
  const std::vector<std::pair<tg::Shape, Options>> cases = {
      {{4096, 64}, Options(64)},
      {{32, 16, 512}, Options(16)},
      {{16, 300, 24}, Options::mindspore(24).data_format("NHWC")},
      {{8200, 257}, Options(257)}};  // (8 MB: streaming stores)
  for (const auto& [shape, options] : cases) {
    tg::set_num_threads(1);
    const auto one = run(shape, options);
    tg::set_num_threads(2);
    const auto two = run(shape, options);
    for (std::size_t i = 0; i < one.size(); ++i) {
      INFO("shape ", tg::shape_str(shape), " result ", i);
      CHECK(bitwise_equal(one[i], two[i]));
    }
  }
}

// Large batches, where a channel's sums take thousands of terms (the float32 kernels add a few
// float terms at a time into double sums): float32 against float64 on the same float32 inputs, with
// a mean near zero and one far from it. y and dx stay within a few float32 roundings of their
// largest value, dweight and dbias within a few roundings of the sum of their terms' magnitudes
// (a float32 running sum over 8,000+ terms would not).
TEST_CASE("BatchNorm1d float32 on large batches stays within a few roundings of float64") {
  struct Case {
    tg::Shape shape;
    Options options;
    std::vector<std::int64_t> other_dims;  // every dim but the channel dim
  };
  // The last two are 8 MB or more in float32: y and dx go out through streaming stores, in rows of
  // 257 channels (a copy's unaligned head and tail) and runs of 1031 values.
  const std::vector<Case> cases = {{{8192, 5}, Options(5), {0}},
                                   {{40, 3, 700}, Options(3), {0, 2}},
                                   {{20, 300, 7}, Options::mindspore(7).data_format("NHWC"), {0, 1}},
                                   {{8200, 257}, Options(257), {0}},
                                   {{64, 33, 1031}, Options(33), {0, 2}}};
  for (const Case& c : cases)
    for (double shift : {0.0, 1000.0}) {
      tg::manual_seed(21);
      // g mostly positive: its sums grow, and a float32 running sum would lose digits to them.
      const Tensor x32 = tg::randn(c.shape) * 2.0 + shift, g32 = tg::randn(c.shape) + 1.0;
      check_float32_step(c.options, x32, g32, c.other_dims, tg::shape_str(c.shape) + " shift " + std::to_string(shift));
    }
}

// Every kind of run the kernels cut the input into: (N, C, L) runs shorter than a batch (summed one
// value at a time), exactly one batch, a batch and a partial one (the masked last batch), several
// batches with and without a tail (the float terms join the double sums every four batches); and
// rows of more than a strip of 512 channels (a partial last strip, a count that is not a multiple
// of the batch width), rows cut into blocks with a partial last one, and (2050, 1027), 8 MB in
// float32, whose y and dx go out through streaming stores a whole row at a time (unaligned rows).
// float32 against float64, and the same bits with 1 and 2 threads.
TEST_CASE("BatchNorm1d: every run length and channel strip, float32 near float64, any thread count") {
  const std::vector<tg::Shape> shapes = {{9, 5, 3},  {7, 4, 15},  {6, 3, 16},  {6, 3, 17},   {5, 3, 31},
                                         {5, 2, 64}, {5, 2, 65},  {4, 2, 100}, {3, 2, 129},  {9, 511},
                                         {9, 513},   {21, 1100}, {40, 4096}, {300, 1027}, {2050, 1027}};
  for (const tg::Shape& shape : shapes) {
    std::vector<std::int64_t> other_dims = {0};
    if (shape.size() == 3) other_dims.push_back(2);
    const std::string what = tg::shape_str(shape);
    tg::manual_seed(5);
    const Tensor x32 = tg::randn(shape) * 3.0 + 2.0, g32 = tg::randn(shape) + 0.5;
    const auto [f32, f64] = check_float32_step(Options(std::int64_t(shape[1])), x32, g32, other_dims, what);
    // float64 against the definition composed from ops (its gradient by autograd).
    const Tensor x = x32.to(tg::kFloat64).detach().set_requires_grad(true);
    const Tensor centred = x - tg::mean(x, other_dims, true);
    const Tensor y = centred * tg::rsqrt(tg::mean(centred * centred, other_dims, true) + 1e-5);
    y.backward(g32.to(tg::kFloat64));
    INFO(what);
    check_close(f64[0], tg_test::flat(y), 1e-10);
    check_close(f64[1], tg_test::flat(x.grad()), 1e-10);
    auto run = [&](int threads) {
      tg::set_num_threads(threads);
      nn::BatchNorm1d bn{std::int64_t(shape[1])};
      const Tensor x = x32.detach().set_requires_grad(true);
      const Tensor y = bn(x);
      y.backward(g32);
      return std::vector<Tensor>{y, x.grad(), bn.weight.grad(), bn.bias.grad(), bn.running_mean, bn.running_var};
    };
    const auto one = run(1), two = run(2);
    for (std::size_t i = 0; i < one.size(); ++i) {
      INFO(what, " result ", i);
      CHECK(bitwise_equal(one[i], two[i]));
    }
  }
}

// The float32 statistics are one pass around a pilot (the mean of each channel's first values),
// taken again around the mean when the pilot is more than a standard deviation away. Batches whose
// first values are unlike the rest: a trend along the batch, the same on a large mean, an outlier
// first sample, and an outlier first sample before values that are all one number (their x - pilot
// all round the same way, so the rounding errors add up instead of cancelling); every layout, and
// a batch barely larger than the pilot. The batch mean and variance (momentum 1: the running
// statistics are the batch's, the variance unbiased) stay within a few float32 roundings of
// float64's on the same values, and so do y and the gradients. Without the second pass the last
// kind's variance is up to 23 roundings off (measured), and the test fails.
TEST_CASE("float32 batch statistics hold when the batch's first values are unlike the rest") {
  struct Case {
    tg::Shape shape;
    Options options;
    std::vector<std::int64_t> other_dims;
  };
  const std::vector<Case> cases = {{{8192, 5}, Options(5).momentum(1.0), {0}},
                                   {{20, 3}, Options(3).momentum(1.0), {0}},
                                   {{40, 3, 700}, Options(3).momentum(1.0), {0, 2}},
                                   {{20, 300, 7}, Options::mindspore(7).momentum(0.0).data_format("NHWC"), {0, 1}}};
  for (const Case& c : cases)
    for (const std::string kind :
         {"trend", "trend + 1000", "outlier first sample", "outlier first sample, the rest 0.3"}) {
      tg::manual_seed(23);
      tg::Shape column(c.shape.size(), 1);
      column[0] = c.shape[0];
      Tensor x64 = tg::randn(c.shape, tg::kFloat64);
      if (kind.starts_with("outlier")) {
        tg::Shape first = c.shape, rest = c.shape;
        first[0] = 1;
        rest[0] -= 1;
        const Tensor tail = kind == "outlier first sample" ? tg::narrow(x64, 0, 1, std::int64_t(rest[0]))
                                                           : tg::full(rest, 0.3, tg::kFloat64);
        x64 = tg::cat({tg::narrow(x64, 0, 0, 1) + 1e4, tail}, 0);
      } else {
        x64 = x64 + tg::linspace(-8, 8, c.shape[0], tg::kFloat64).reshape(column) + (kind == "trend" ? 0.0 : 1000.0);
      }
      const Tensor x32 = x64.to(tg::kFloat32), g32 = tg::randn(c.shape) + 1.0;
      const std::string what = tg::shape_str(c.shape) + " " + kind;
      const auto [f32, f64] = check_float32_step(c.options, x32, g32, c.other_dims, what);
      const std::vector<double> mean32 = tg_test::flat(f32[4]), mean64 = tg_test::flat(f64[4]);
      const std::vector<double> var32 = tg_test::flat(f32[5]), var64 = tg_test::flat(f64[5]);
      for (std::size_t k = 0; k < var64.size(); ++k) {
        INFO(what, " channel ", k, ": mean ", mean32[k], " / ", mean64[k], ", var ", var32[k], " / ", var64[k]);
        CHECK(std::abs(var32[k] - var64[k]) <= 4 * 0x1p-24 * var64[k]);
        CHECK(std::abs(mean32[k] - mean64[k]) <= 4 * 0x1p-24 * (std::abs(mean64[k]) + std::sqrt(var64[k])));
      }
    }
}

TEST_CASE("state_dict keys per convention and a checkpoint round trip") {
  nn::BatchNorm1d pt(4);
  CHECK(pt.state_dict().keys() ==
        std::vector<std::string>{"weight", "bias", "running_mean", "running_var", "num_batches_tracked"});
  nn::BatchNorm1d ms(Options::mindspore(4));
  CHECK(ms.state_dict().keys() == std::vector<std::string>{"gamma", "beta", "moving_mean", "moving_variance"});

  tg::manual_seed(9);
  nn::Sequential a(nn::Linear(3, 4), nn::BatchNorm1d(4));
  for (int i = 0; i < 3; ++i) a(tg::randn({8, 3}));
  const std::string path = "batchnorm_roundtrip.safetensors";
  tg::save(a, path);
  nn::Sequential b(nn::Linear(3, 4), nn::BatchNorm1d(4));
  tg::load(b, path);
  std::remove(path.c_str());
  CHECK(b.at<nn::BatchNorm1d>(1)->num_batches_tracked.item() == 3);
  a.eval();
  b.eval();
  const Tensor x = tg::randn({5, 3});
  CHECK(bitwise_equal(a(x), b(x)));
}

template <class O> constexpr bool has_use_batch_statistics = requires(O o) { o.use_batch_statistics(true); };
template <class O> constexpr bool has_gamma_init = requires(O o) { o.gamma_init(1.0); };
template <class O> constexpr bool has_data_format = requires(O o) { o.data_format("NHWC"); };
template <class O> constexpr bool has_track_running_stats = requires(O o) { o.track_running_stats(false); };

TEST_CASE("bad input and bad options give clear errors") {
  nn::BatchNorm1d bn(4);
  CHECK_THROWS_WITH_AS(bn(tg::zeros({2, 3, 4, 5})), "BatchNorm1d: expected 2D or 3D input (got 4D input [2, 3, 4, 5])",
                       tg::Error);
  CHECK_THROWS_WITH_AS(bn(tg::zeros({2, 3})), "BatchNorm1d: expected 4 channels (num_features) at dim 1, got input [2, 3]",
                       tg::Error);
  CHECK_THROWS_WITH_AS(bn(tg::zeros({1, 4})),
                       "BatchNorm1d: Expected more than 1 value per channel when training, got input size [1, 4]",
                       tg::Error);
  CHECK(bn.num_batches_tracked.item() == 0);  // the failed call changed nothing
  check_close(bn.running_mean, {0, 0, 0, 0}, 0);
  CHECK_THROWS_WITH_AS(bn(tg::zeros({1, 4, 1})), doctest::Contains("got input size [1, 4, 1]"), tg::Error);
  CHECK(bn(tg::zeros({1, 4, 2})).shape() == tg::Shape{1, 4, 2});  // N·L = 2 is enough

  CHECK_THROWS_WITH_AS(nn::BatchNorm1d(Options::mindspore(0)), "BatchNorm1d: num_features must be a positive integer, got 0",
                       tg::Error);
  CHECK_THROWS_WITH_AS(nn::BatchNorm1d(Options::mindspore(4).eps(0)), "BatchNorm1d: eps must be in (0, 1], got 0",
                       tg::Error);
  CHECK_THROWS_WITH_AS(nn::BatchNorm1d(Options::mindspore(4).eps(1.5)), "BatchNorm1d: eps must be in (0, 1], got 1.5",
                       tg::Error);
  CHECK_THROWS_WITH_AS(nn::BatchNorm1d(Options::mindspore(4).momentum(1.2)),
                       "BatchNorm1d: momentum must be in [0, 1] (MindSpore: the weight of the old moving statistic), got 1.2",
                       tg::Error);
  CHECK_THROWS_WITH_AS(nn::BatchNorm1d(Options::mindspore(4).data_format("NCL")),
                       "BatchNorm1d: data_format must be \"NCHW\" or \"NHWC\", got \"NCL\"", tg::Error);
  // Mixing the conventions' options does not compile.
  static_assert(!has_use_batch_statistics<Options> && !has_gamma_init<Options> && !has_data_format<Options>);
  static_assert(has_use_batch_statistics<nn::MindSporeBatchNorm1dOptions> && has_gamma_init<nn::MindSporeBatchNorm1dOptions> &&
                has_data_format<nn::MindSporeBatchNorm1dOptions>);
  static_assert(has_track_running_stats<Options> && !has_track_running_stats<nn::MindSporeBatchNorm1dOptions>);
  CHECK_THROWS_WITH_AS(nn::BatchNorm1d(Options(4).momentum(-0.1)), doctest::Contains("momentum must be in [0, 1] or nullopt"),
                       tg::Error);
  CHECK_THROWS_WITH_AS(nn::functional::batch_norm(tg::randn({3, 2}), Tensor(), Tensor()),
                       "batch_norm: running_mean and running_var are required to normalise with running statistics",
                       tg::Error);
}

TEST_CASE("functional batch_norm takes the training flag as an argument") {
  tg::manual_seed(10);
  const Tensor x = tg::randn({5, 3});
  Tensor rm = tg::zeros({3}), rv = tg::ones({3});
  nn::BatchNorm1d bn(3);
  const Tensor expected = bn(x);
  const Tensor y = nn::functional::batch_norm(x, rm, rv, tg::ones({3}), tg::zeros({3}), /*training=*/true, 0.1, 1e-5);
  CHECK(bitwise_equal(y, expected));
  CHECK(bitwise_equal(rm, bn.running_mean));
  const Tensor before = rm.clone();
  nn::functional::batch_norm(x, rm, rv, Tensor(), Tensor(), /*training=*/false);
  CHECK(bitwise_equal(rm, before));
}

// ---- float32 precision of the training-mode forward and backward ---------------------------------
//
// PyTorch float32's own error against a float64 reference on the same float32 inputs, per layout, N
// and mean shift; tapegrad's float32 must stay within 4× of it. Generated with PyTorch 1.13:
//   import math, torch; import torch.nn.functional as F
//   def inputs(shape, shift):
//       n = math.prod(shape)
//       x = [shift + math.sin(0.37 * k + 1.3) * (1.0 + 0.5 * (k % 3)) for k in range(n)]
//       g = [math.cos(0.91 * k + 0.2) for k in range(n)]
//       return (torch.tensor(x, dtype=torch.float64).float().reshape(shape),
//               torch.tensor(g, dtype=torch.float64).float().reshape(shape))
//   def grads(x, g, C, dtype, channels_last):
//       x = x.to(dtype).clone().requires_grad_(True)
//       w = torch.tensor([0.5 + 0.25 * c for c in range(C)], dtype=torch.float64).float().to(dtype).requires_grad_(True)
//       b = torch.tensor([0.1 * c for c in range(C)], dtype=torch.float64).float().to(dtype).requires_grad_(True)
//       xi = x.transpose(1, 2) if channels_last else x
//       gi = g.to(dtype).transpose(1, 2) if channels_last else g.to(dtype)
//       y = F.batch_norm(xi, None, None, w, b, training=True, eps=1e-5); y.backward(gi)
//       return x.grad.double(), w.grad.double(), b.grad.double(), y.double()
//   for layout in ["NC", "NCL", "NLC"]:
//     for N in [2, 3, 8]:
//       for shift in [0.0, 1000.0]:
//         shape = (N, 3) if layout == "NC" else ((N, 3, 5) if layout == "NCL" else (N, 5, 3))
//         x, g = inputs(shape, shift)
//         r32, r64 = grads(x, g, 3, torch.float32, layout == "NLC"), grads(x, g, 3, torch.float64, layout == "NLC")
//         print([(a - b).abs().max().item() for a, b in zip(r32, r64)])
namespace {

struct PrecisionCase {
  const char* layout;
  std::size_t n;
  double shift;
  double torch_error[4];  // dx, dweight, dbias, y
};

const PrecisionCase kPrecisionCases[] = {
    {"NC", 2, 0, {7.1295e-07, 9.4487e-08, 3.7253e-09, 9.3030e-08}},
    {"NC", 2, 1000, {7.5724e-05, 2.0360e-05, 3.7253e-09, 1.1988e-04}},
    {"NC", 3, 0, {7.3485e-08, 3.3862e-08, 2.9802e-08, 1.0440e-07}},
    {"NC", 3, 1000, {8.2528e-06, 1.2543e-05, 2.9802e-08, 3.6596e-05}},
    {"NC", 8, 0, {6.6105e-08, 7.9228e-08, 2.9802e-08, 1.1072e-07}},
    {"NC", 8, 1000, {1.2529e-05, 8.4895e-05, 2.9802e-08, 5.3335e-05}},
    {"NCL", 2, 0, {1.0914e-07, 2.3055e-07, 2.0862e-07, 1.0860e-07}},
    {"NCL", 2, 1000, {2.5457e-05, 1.2895e-04, 2.0862e-07, 7.1351e-05}},
    {"NCL", 3, 0, {1.5016e-07, 2.2637e-07, 2.1979e-07, 1.4628e-07}},
    {"NCL", 3, 1000, {6.5963e-05, 1.4534e-04, 2.1979e-07, 9.9444e-05}},
    {"NCL", 8, 0, {8.6929e-08, 3.9875e-07, 4.2096e-07, 9.6305e-08}},
    {"NCL", 8, 1000, {2.1818e-06, 3.3615e-05, 4.2096e-07, 9.6588e-06}},
    {"NLC", 2, 0, {4.7316e-08, 5.2767e-08, 1.1921e-07, 1.2751e-07}},
    {"NLC", 2, 1000, {3.5022e-06, 3.6812e-05, 1.1921e-07, 2.0506e-05}},
    {"NLC", 3, 0, {6.7166e-08, 1.1610e-07, 5.5879e-08, 1.1695e-07}},
    {"NLC", 3, 1000, {2.3042e-06, 2.8191e-05, 5.5879e-08, 7.5538e-05}},
    {"NLC", 8, 0, {8.5737e-08, 1.7831e-07, 2.5705e-07, 1.2680e-07}},
    {"NLC", 8, 1000, {1.6807e-06, 3.4867e-05, 2.5705e-07, 1.9407e-05}},
};

// dx, dweight, dbias and y of a training-mode BatchNorm1d (3 channels) in the given dtype and
// convention, from the script's float32 inputs.
std::vector<Tensor> bn_training_grads(const PrecisionCase& c, tg::DType dtype, bool mindspore) {
  const std::string layout = c.layout;
  const tg::Shape shape = layout == "NC" ? tg::Shape{c.n, 3} : layout == "NCL" ? tg::Shape{c.n, 3, 5} : tg::Shape{c.n, 5, 3};
  std::size_t count = 1;
  for (std::size_t s : shape) count *= s;
  std::vector<float> x(count), g(count);
  for (std::size_t k = 0; k < count; ++k) {
    x[k] = float(c.shift + std::sin(0.37 * double(k) + 1.3) * (1.0 + 0.5 * double(k % 3)));
    g[k] = float(std::cos(0.91 * double(k) + 0.2));
  }
  nn::BatchNorm1d bn = mindspore ? nn::BatchNorm1d(Options::mindspore(3).data_format(layout == "NLC" ? "NHWC" : "NCHW"))
                                  : nn::BatchNorm1d(Options(3));
  bn.train();
  bn.to(dtype);
  {
    tg::NoGradGuard no_grad;
    for (std::size_t ch = 0; ch < 3; ++ch) {
      const Tensor w = Tensor(std::vector<float>{float(0.5 + 0.25 * double(ch))}, {1}).to(dtype);
      const Tensor b = Tensor(std::vector<float>{float(0.1 * double(ch))}, {1}).to(dtype);
      tg::dispatch_floating(dtype, "test", [&]<class T>() {
        bn.weight.values_mut<T>()(ch) = w.values<T>()(0);
        bn.bias.values_mut<T>()(ch) = b.values<T>()(0);
      });
    }
  }
  const Tensor input = Tensor(x, shape).to(dtype).detach().set_requires_grad(true);
  const Tensor y = bn(input);
  y.backward(Tensor(g, shape).to(dtype));
  return {input.grad(), bn.weight.grad(), bn.bias.grad(), y};
}

}  // namespace

TEST_CASE("BatchNorm1d float32 training forward and backward are within 4x of PyTorch's own float32 error") {
  const char* names[] = {"dx", "dweight", "dbias", "y"};
  for (const PrecisionCase& c : kPrecisionCases)
    for (bool mindspore : {false, true}) {
      if (std::string(c.layout) == "NLC" && !mindspore) continue;  // channels-last is MindSpore's data_format
      const std::vector<Tensor> f32 = bn_training_grads(c, tg::kFloat32, mindspore);
      const std::vector<Tensor> f64 = bn_training_grads(c, tg::kFloat64, mindspore);
      for (std::size_t i = 0; i < 4; ++i) {
        const std::vector<double> got = tg_test::flat(f32[i]), exact = tg_test::flat(f64[i]);
        double error = 0.0;
        for (std::size_t k = 0; k < got.size(); ++k) error = std::max(error, std::abs(got[k] - exact[k]));
        INFO(std::string(c.layout), " N=", c.n, " shift=", c.shift,
             std::string(mindspore ? " MindSpore " : " PyTorch "), std::string(names[i]), ": tapegrad error ", error, ", PyTorch float32 error ", c.torch_error[i]);
        CHECK(error <= 4.0 * c.torch_error[i]);
      }
    }
}

TEST_CASE("functional batch_norm takes any rank >= 2, as PyTorch's, and equals the (N, C, L) form") {
  // (N, C, H, W) normalises each channel over N·H·W values: the same numbers as (N, C, H·W).
  Tensor x = tg::randn({3, 2, 4, 5}, tg::kFloat64);
  Tensor rm = tg::zeros({2}, tg::kFloat64), rv = tg::ones({2}, tg::kFloat64);
  Tensor rm3 = rm.clone().detach(), rv3 = rv.clone().detach();
  Tensor y4 = nn::functional::batch_norm(x, rm, rv, Tensor(), Tensor(), true, 0.1);
  Tensor y3 = nn::functional::batch_norm(x.reshape({3, 2, 20}), rm3, rv3, Tensor(), Tensor(), true, 0.1);
  CHECK(bitwise_equal(y4.reshape({3, 2, 20}), y3));
  CHECK(bitwise_equal(rm, rm3));
  CHECK(bitwise_equal(rv, rv3));
  Tensor w = tg_test::uniform64({2}), b = tg_test::uniform64({2});
  CHECK_GRADCHECK([](const Inputs& in) { return nn::functional::batch_norm(in[0], Tensor(), Tensor(), in[1], in[2], true); },
                  {tg_test::uniform64({2, 2, 3, 2}), w, b});
  CHECK_GRADCHECK([](const Inputs& in) { return nn::functional::batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true); },
                  {tg_test::uniform64({2, 3, 2, 2, 2})});
  CHECK_THROWS_WITH_AS(nn::functional::batch_norm(tg::zeros({4}), Tensor(), Tensor(), Tensor(), Tensor(), true),
                       "batch_norm: expected input with at least 2 dimensions (N, C, ...), got 1D input [4]", tg::Error);
}
