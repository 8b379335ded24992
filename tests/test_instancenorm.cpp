// instance_norm and InstanceNorm1d/2d/3d: PyTorch's values, gradients and running statistics
// (training then eval), the running statistics against their definition on every rank and size,
// gradcheck, thread counts, the module's buffers, modes, printing and errors.
#include "helpers.hpp"

#include <cmath>
#include <sstream>

using tg::Tensor;
using tg_test::check_close;
using tg_test::cos_;
using tg_test::seq;
using tg_test::sin_;
using tg_test::uniform64;
using Inputs = std::vector<Tensor>;
namespace nn = tg::nn;
namespace F = tg::nn::functional;

// Golden values: /usr/bin/python3 with torch 1.13 (float64):
//   def seq(shape, f, scale=1.0): return (f(torch.arange(prod(shape), dtype=torch.float64)) * scale).reshape(shape)
//   m = cls(C, affine=True, track_running_stats=True, momentum=mom).double()
//   m.weight = seq((C,), torch.cos, 0.5) + 1; m.bias = torch.arange(C) * 0.1
//   x1 = seq(xs, torch.sin) * 2 + 0.5; y1 = m(x1); y1.backward(seq(xs, torch.cos))   # training
//   m(seq(xs, torch.cos) * 3 - 1)                                                    # training
//   m.eval(); m.zero_grad(); x3 = seq(xs, torch.sin) * 1.5; y3 = m(x3); y3.backward(seq(xs, torch.cos))
//   A: InstanceNorm1d, xs (2, 3, 5), momentum 0.1;  B: InstanceNorm2d, xs (2, 2, 3, 2), momentum 0.2
TEST_CASE("InstanceNorm1d/2d match PyTorch: training with running statistics, then eval") {
  struct Golden {
    tg::Shape shape;
    double momentum;
    std::vector<double> y1, dx1, dw1, db1, running_mean, running_var, y3, dx3, dw3;
  };
  const std::vector<Golden> cases{
      {{2, 3, 5}, 0.1,
       {-0.556835775, 1.507154, 1.67352109, -0.210691631, -2.41314768, -1.94034138, -0.70570838, 0.99568676,
       1.59958919, 0.550773811, -0.245893945, -0.741709887, -0.237794859, 0.802553987, 1.42284472, 2.27138508,
       -0.122149254, -1.84038271, -1.30357937, 0.994726251, 1.5835012, 1.45983283, 0.0892339228, -1.26817322,
       -1.36439473, -0.297863999, 0.902665168, 1.16267286, 0.243109203, -1.01058322},
       {1.43560363, 0.568745452, -0.628690066, -1.05578623, -0.319872792, -0.213408877, 0.582784397,
       0.645654217, -0.0826016399, -0.932428098, -0.515501863, 0.00452950679, 0.398492378, 0.304179104,
       -0.191699126, -0.629181379, -1.14753492, -0.467757075, 0.78516755, 1.45930583, 0.536210082,
       -0.238751906, -0.608161763, -0.23238577, 0.543089357, 0.771702702, 0.401089519, -0.259039812,
       -0.601765429, -0.31198698},
       {0.245019245, -1.04463992, 1.58912006},
       {-0.862970053, -0.307157607, 0.688712057},
       {-0.082059769, -0.0496513895, -0.0249058339},
       {1.62199148, 1.49274532, 1.56825718},
       {0.0966486799, 1.58325522, 1.70308257, 0.345962003, -1.24037608, -1.34371172, -0.284098363, 1.17610966,
       1.69440383, 0.794266876, -0.300288428, -0.732803814, -0.293223348, 0.614304717, 1.15540326, 1.24549656,
       -0.411983183, -1.60182914, -1.23010242, 0.361433141, 1.57524682, 1.45628222, 0.137814404, -1.1679634,
       -1.26052509, 0.0902058717, 0.939084523, 1.1229326, 0.472721028, -0.413748672},
       {1.17778396, 0.63635939, -0.49013107, -1.16599728, -0.769850973, 0.294891693, 0.998181131, 0.783747441,
       -0.151260032, -0.947199729, -0.530608105, 0.00279870207, 0.533632395, 0.573846925, 0.0864692386,
       -0.89474824, -1.12791598, -0.324082966, 0.777710429, 1.16448044, 0.424237054, -0.569412551,
       -1.03954688, -0.553926605, 0.440971239, 0.626812169, 0.409095797, -0.184741365, -0.608728168,
       -0.4730531},
       {0.0972172233, -0.717834375, 1.01311348}},
      {{2, 2, 3, 2}, 0.2,
       {-0.0618517188, 1.71083014, 1.85371647, 0.235438244, -1.656167, -2.08196613, -0.47757589, 1.22004879,
       1.82261291, 0.77612181, -0.957285429, -1.78392218, -1.26470977, 0.812762947, 2.05142157, 1.31244908,
       -0.724746625, -2.18717721, -1.38150474, 0.287017476, 1.70032219, 1.55902356, -0.00696910396,
       -1.55788937},
       {1.09641105, 0.5637943, -0.447557578, -1.00781234, -0.601874334, 0.397038902, 0.913460959, 0.678482654,
       -0.153829694, -0.81825195, -0.703917357, 0.0840553883, 0.960472616, 0.987804472, 0.126172484,
       -0.832242873, -1.00627894, -0.235927759, 0.622326648, 0.91831103, 0.373733337, -0.51072421,
       -0.921895422, -0.481751383},
       {0.399757037, 0.277809418},
       {-0.340291236, -0.200623304},
       {-0.124978558, -0.115939014},
       {2.10980937, 2.12584877},
       {0.129063706, 1.43252766, 1.53759287, 0.347662858, -1.0432462, -1.35633894, -0.164116061, 1.05949062,
       1.49380422, 0.739518824, -0.509879058, -1.10569877, -0.702103941, 0.779915128, 1.6635444, 1.1363792,
       -0.316907222, -1.36017003, -0.780323931, 0.396845332, 1.39395454, 1.29426608, 0.189433071, -0.90476612},
       {1.03268679, 0.557963054, -0.429749341, -1.02235217, -0.675009133, 0.292934192, 0.836443219,
       0.656754783, -0.126750971, -0.793722467, -0.730949187, 0.00385540473, 0.871436836, 0.937108304,
       0.141206719, -0.784519672, -0.988962295, -0.284157544, 0.575228624, 0.86130063, 0.355496809,
       -0.477149139, -0.871106369, -0.464172421},
       {0.248916094, 0.175354117}}};
  auto run = [](const Golden& k, auto& m) {
    const std::size_t C = k.shape[1];
    m.to(tg::kFloat64);
    {
      tg::NoGradGuard no_grad;
      m.weight.template values_mut<double>() = (seq({C}, cos_, 0.5) + 1.0).template values<double>();
      m.bias.template values_mut<double>() = (tg::arange(double(C), tg::kFloat64) * 0.1).template values<double>();
    }
    const Tensor x1 = (seq(k.shape, sin_) * 2.0 + 0.5).detach().set_requires_grad();
    const Tensor y1 = m(x1);
    y1.backward(seq(k.shape, cos_));
    check_close(y1, k.y1, 1e-8);
    check_close(x1.grad(), k.dx1, 1e-8);
    check_close(m.weight.grad(), k.dw1, 1e-8);
    check_close(m.bias.grad(), k.db1, 1e-8);
    m(seq(k.shape, cos_) * 3.0 - 1.0);
    check_close(m.running_mean, k.running_mean, 1e-8);
    check_close(m.running_var, k.running_var, 1e-8);
    CHECK(m.num_batches_tracked.item() == 0.0);  // PyTorch's InstanceNorm never counts
    m.eval();
    m.zero_grad();
    const Tensor x3 = (seq(k.shape, sin_) * 1.5).detach().set_requires_grad();
    const Tensor y3 = m(x3);
    y3.backward(seq(k.shape, cos_));
    check_close(y3, k.y3, 1e-8);
    check_close(x3.grad(), k.dx3, 1e-8);
    check_close(m.weight.grad(), k.dw3, 1e-8);
    check_close(m.bias.grad(), k.db1, 1e-8);           // the same upstream gradient
    check_close(m.running_mean, k.running_mean, 1e-8);  // unchanged in eval
  };
  for (const Golden& k : cases) {
    INFO(tg::shape_str(k.shape));
    const auto options = nn::InstanceNormOptions(std::int64_t(k.shape[1])).affine(true).track_running_stats(true)
                             .momentum(k.momentum);
    if (k.shape.size() == 3) {
      nn::InstanceNorm1d m(options);
      run(k, m);
    } else {
      nn::InstanceNorm2d m(options);
      run(k, m);
    }
  }
}

// Golden values (as above):
//   C: m = nn.InstanceNorm1d(3).double(); m.eval(); x = seq((3, 4), torch.sin) * 2 + 0.5 (unbatched);
//      y = m(x); y.backward(seq((3, 4), torch.cos))
//   D: x = (seq((3, 2, 4), torch.sin) * 2 + 0.5).float(); rm = torch.zeros(2); rv = torch.ones(2)
//      y = F.instance_norm(x, rm, rv, None, None, True, 0.3, 1e-3)
TEST_CASE("instance_norm matches PyTorch: unbatched defaults in eval, float32 with running statistics") {
  nn::InstanceNorm1d m(3);
  m.eval();  // no running statistics: the input's own, in either mode
  const Tensor x = (seq({3, 4}, sin_) * 2.0 + 0.5).detach().set_requires_grad();
  const Tensor y = m(x);
  y.backward(seq({3, 4}, cos_));
  CHECK(y.shape() == tg::Shape{3, 4});
  check_close(y, {-1.16436833, 0.907174908, 1.07415085, -0.816957423, -0.677393928, -1.00163706, 0.0884288189,
                  1.59060217, 1.3124909, 0.573341702, -0.650984581, -1.23484802}, 1e-8);
  check_close(x.grad(), {1.07767014, 0.710997772, -0.450246941, -1.33842097, -0.597840194, 0.24777471,
                         0.475045345, -0.124979861, 0.245823558, -0.264787014, -0.252475498, 0.271438954}, 1e-8);

  const Tensor x32 = (seq({3, 2, 4}, sin_) * 2.0 + 0.5).to(tg::kFloat32);
  Tensor rm = tg::zeros({2}), rv = tg::ones({2});
  const Tensor y32 = F::instance_norm(x32, rm, rv, Tensor(), Tensor(), true, 0.3, 1e-3);
  check_close(y32, {-1.16349602, 0.906495273, 1.07334626, -0.816345334, -0.677178264, -1.00131822, 0.0884006843,
                  1.59009576, 1.31222463, 0.573225379, -0.650852501, -1.23459744, -1.61684179, 0.068790853,
                  1.07382143, 0.474229366, 0.406548887, -1.16076231, -0.671109498, 1.42532289, 0.962737203,
                  0.85618633, -0.324700952, -1.49422252}, 2e-6);
  check_close(rm, {0.144947156, 0.20404315}, 1e-6);
  check_close(rv, {1.21161938, 1.35220277}, 1e-6);
}

// Ranks 3 to 5, runs of 2 to 300 values, batches of 1 to 17, both dtypes, means far from zero:
// the output is group_norm's with a group per channel (the same kernels, the same bits), and the
// running statistics move by momentum towards the mean over samples of each instance's mean and
// unbiased variance, computed here in long double.
TEST_CASE("instance_norm: running statistics by their definition on every rank and size") {
  const std::vector<tg::Shape> shapes{{3, 4, 5},    {1, 2, 7},       {2, 3, 4, 5}, {2, 2, 3, 2, 2},
                                      {17, 3, 2},   {2, 5, 300},     {4, 16, 33},  {1, 1, 2, 1}};
  for (const tg::Shape& shape : shapes)
    for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
      INFO(tg::shape_str(shape), " ", tg::dtype_name(dtype));
      const std::size_t N = shape[0], C = shape[1], S = tg::checked_numel("test", shape) / (N * C);
      tg::manual_seed(std::uint64_t(S * 3 + C));
      const Tensor x = (tg::randn(shape, tg::kFloat64) * 3.0 + 100.0).to(dtype);
      const Tensor w = tg::rand({C}, dtype) + 0.5, b = tg::randn({C}, dtype);
      const Tensor rm0 = tg::randn({C}, dtype), rv0 = tg::rand({C}, dtype) + 0.5;
      Tensor rm = rm0.clone(), rv = rv0.clone();
      const Tensor y = F::instance_norm(x, rm, rv, w, b, true, 0.3, 1e-5);
      CHECK(tg_test::bitwise_equal(y, tg::group_norm(x, std::int64_t(C), w, b, 1e-5)));
      const std::vector<double> xs = tg_test::flat(x), m0 = tg_test::flat(rm0), v0 = tg_test::flat(rv0);
      const std::vector<double> got_mean = tg_test::flat(rm), got_var = tg_test::flat(rv);
      for (std::size_t c = 0; c < C; ++c) {
        long double mean_sum = 0, var_sum = 0;
        for (std::size_t n = 0; n < N; ++n) {
          const double* run = xs.data() + (n * C + c) * S;
          long double mu = 0, sq = 0;
          for (std::size_t k = 0; k < S; ++k) mu += run[k];
          mu /= S;
          for (std::size_t k = 0; k < S; ++k) sq += (run[k] - mu) * (run[k] - mu);
          mean_sum += mu;
          var_sum += sq / (S - 1);
        }
        const double mean = double(0.7L * m0[c] + 0.3L * mean_sum / N), var = double(0.7L * v0[c] + 0.3L * var_sum / N);
        const double tol = dtype == tg::kFloat64 ? 1e-12 : 2e-6;
        CHECK(std::abs(got_mean[c] - mean) <= tol * std::abs(mean));
        CHECK(std::abs(got_var[c] - var) <= tol * std::abs(var));
      }
    }
}

TEST_CASE("gradcheck: instance_norm and InstanceNorm1d/2d/3d") {
  tg::manual_seed(21);
  CHECK_GRADCHECK([](const Inputs& x) { return F::instance_norm(x[0], Tensor(), Tensor(), x[1], x[2]); },
                  Inputs{uniform64({3, 4, 5}), uniform64({4}), uniform64({4})});
  CHECK_GRADCHECK([](const Inputs& x) { return F::instance_norm(x[0]); }, Inputs{uniform64({2, 3, 2, 3})});
  const Tensor rm = tg::randn({3}, tg::kFloat64), rv = tg::rand({3}, tg::kFloat64) + 0.5;
  CHECK_GRADCHECK([&](const Inputs& x) { return F::instance_norm(x[0], rm, rv, x[1], x[2], false); },
                  Inputs{uniform64({2, 3, 4}), uniform64({3}), uniform64({3})});
  nn::InstanceNorm1d norm1(nn::InstanceNormOptions(3).affine(true));
  tg_test::check_module(norm1, uniform64({2, 3, 5}));
  tg_test::check_module(norm1, uniform64({3, 5}));  // unbatched
  nn::InstanceNorm2d norm2(nn::InstanceNormOptions(2).affine(true).track_running_stats(true));
  norm2.eval();
  tg_test::check_module(norm2, uniform64({2, 2, 3, 3}));
  nn::InstanceNorm3d norm3(2);
  tg_test::check_module(norm3, uniform64({2, 2, 2, 3, 2}));
}

TEST_CASE("instance_norm: the same bits for 1 and 2 threads") {
  tg::manual_seed(22);
  const Tensor x = tg::randn({16, 32, 24, 24}) * 2.0 + 1.0, g = tg::randn({16, 32, 24, 24});
  const Tensor w = tg::rand({32}) + 0.5, b = tg::randn({32});
  std::vector<Tensor> runs[2];
  for (int threads : {1, 2}) {
    tg::set_num_threads(threads);
    const Tensor xl = x.detach().set_requires_grad(), wl = w.detach().set_requires_grad(),
                 bl = b.detach().set_requires_grad();
    Tensor rm = tg::zeros({32}), rv = tg::ones({32});
    const Tensor y = F::instance_norm(xl, rm, rv, wl, bl);
    y.backward(g);
    runs[threads - 1] = {y, xl.grad(), wl.grad(), bl.grad(), rm, rv};
  }
  tg::set_num_threads(1);
  for (std::size_t i = 0; i < 6; ++i) CHECK(tg_test::bitwise_equal(runs[0][i], runs[1][i]));
}

TEST_CASE("InstanceNorm: PyTorch's parameters and buffers, modes, printing, empty inputs and errors") {
  nn::InstanceNorm2d plain(4);
  CHECK(plain.state_dict().empty());
  nn::InstanceNorm1d full(nn::InstanceNormOptions(3).affine(true).track_running_stats(true));
  CHECK(full.state_dict().keys() ==
        std::vector<std::string>{"weight", "bias", "running_mean", "running_var", "num_batches_tracked"});
  CHECK(tg_test::flat(full.weight) == std::vector<double>(3, 1.0));
  CHECK(tg_test::flat(full.running_var) == std::vector<double>(3, 1.0));
  CHECK(full.num_batches_tracked.dtype() == tg::kInt64);
  std::ostringstream printed;
  printed << plain << nn::InstanceNorm3d(nn::InstanceNormOptions(2).eps(1e-3).momentum(0.2).affine(true));
  CHECK(printed.str() == "InstanceNorm2d(4, eps=1e-05, momentum=0.1, affine=false, track_running_stats=false)"
                         "InstanceNorm3d(2, eps=0.001, momentum=0.2, affine=true, track_running_stats=false)");

  // Without running statistics training and evaluation agree; any channel count is normalised.
  const Tensor x = tg::randn({2, 4, 3, 5}) * 2.0 + 1.0;
  const Tensor y_train = plain(x);
  plain.eval();
  CHECK(tg_test::bitwise_equal(plain(x), y_train));
  const Tensor x6 = tg::randn({2, 6, 3, 5});
  CHECK(tg_test::bitwise_equal(plain(x6), tg::group_norm(x6, 6)));
  // With them: eval normalises with the running statistics and leaves them alone; training
  // updates them; an empty batch leaves them as they were.
  const Tensor x1 = tg::randn({4, 3, 6}) * 2.0 + 3.0;
  full(x1);
  const std::vector<double> mean_after = tg_test::flat(full.running_mean);
  CHECK(mean_after != std::vector<double>(3, 0.0));
  full.eval();
  const Tensor y_eval = full(x1);
  CHECK(tg_test::flat(full.running_mean) == mean_after);
  CHECK(tg_test::bitwise_equal(
      y_eval, F::instance_norm(x1, full.running_mean, full.running_var, full.weight, full.bias, false)));
  full.train();
  const Tensor empty = full(tg::randn({0, 3, 6}));
  CHECK(empty.shape() == tg::Shape{0, 3, 6});
  CHECK(tg_test::flat(full.running_mean) == mean_after);
  // One position: no statistics to take in training; in eval with running statistics it is fine.
  CHECK_THROWS_WITH_AS(full(tg::randn({2, 3, 1})),
                       "instance_norm: expected more than 1 spatial element when training, got input size [2, 3, 1]",
                       tg::Error);
  full.eval();
  CHECK(full(tg::randn({2, 3, 1})).shape() == tg::Shape{2, 3, 1});

  CHECK_THROWS_WITH_AS(full(tg::randn({2, 4, 6})),
                       "InstanceNorm1d: expected 3 channels (num_features) at dim 1, got input [2, 4, 6]", tg::Error);
  CHECK_THROWS_WITH_AS(full(tg::randn({4, 6})),
                       "InstanceNorm1d: expected 3 channels (num_features) at dim 0, got input [4, 6]", tg::Error);
  CHECK_THROWS_WITH_AS(full(tg::randn({2, 3, 4, 5})),
                       "InstanceNorm1d: expected 2D (unbatched) or 3D input, got 4D input [2, 3, 4, 5]", tg::Error);
  CHECK_THROWS_WITH_AS(plain(tg::randn({4, 5})), "InstanceNorm2d: expected 3D (unbatched) or 4D input, got 2D input [4, 5]",
                       tg::Error);
  CHECK_THROWS_WITH_AS(nn::InstanceNorm2d(0), "InstanceNorm2d: num_features must be positive, got 0", tg::Error);
  CHECK_THROWS_WITH_AS(nn::InstanceNorm2d(nn::InstanceNormOptions(2).eps(0)), "InstanceNorm2d: eps must be positive, got 0",
                       tg::Error);
  CHECK_THROWS_WITH_AS(nn::InstanceNorm1d(nn::InstanceNormOptions(2).momentum(1.5)),
                       "InstanceNorm1d: momentum must be in [0, 1] (the weight of the new statistic), got 1.5", tg::Error);
  CHECK_THROWS_WITH_AS(F::instance_norm(tg::randn({2, 3})),
                       "instance_norm: expected input (N, C, *) with at least one spatial dim, got [2, 3]", tg::Error);
  CHECK_THROWS_WITH_AS(F::instance_norm(tg::randn({2, 3, 4}), tg::zeros({3})),
                       "instance_norm: running_mean and running_var must be given together", tg::Error);
  CHECK_THROWS_WITH_AS(F::instance_norm(tg::randn({2, 3, 4}), tg::zeros({2}), tg::ones({2})),
                       "instance_norm: running_mean has shape [2], expected [3] (one value per channel)", tg::Error);
  CHECK_THROWS_WITH_AS(F::instance_norm(tg::randn({2, 3, 4}), tg::zeros({3}), tg::ones({3}, tg::kFloat64)),
                       "instance_norm: running_var is float64 but the input is float32", tg::Error);
  CHECK_THROWS_WITH_AS(F::instance_norm(tg::randn({2, 3, 4}), Tensor(), Tensor(), Tensor(), Tensor(), false),
                       "instance_norm: use_input_stats=false needs running_mean and running_var", tg::Error);
  CHECK_THROWS_WITH_AS(F::instance_norm(tg::randn({2, 3, 4}), Tensor(), Tensor(), tg::ones({4})),
                       "instance_norm: weight must be float32 [3], got float32 [4]", tg::Error);
  CHECK_THROWS_WITH_AS(F::instance_norm(tg::randn({2, 3, 4}), tg::zeros({3}), tg::ones({3}), Tensor(), tg::ones({4}), false),
                       "instance_norm: bias has shape [4], expected [3] (one value per channel)", tg::Error);
  CHECK_THROWS_WITH_AS(F::instance_norm(tg::ones({2, 3, 4}, tg::kInt64)),
                       "instance_norm: expected a floating-point input, got int64", tg::Error);
}
