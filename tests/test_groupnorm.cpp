// group_norm and GroupNorm: PyTorch's values and gradients, every rank, group count and run length
// against the definition, float32 against float64 (means far from zero), gradcheck, thread
// counts, the gradients asked for alone, printing, errors.
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

namespace {

// y, dx, dw, db of group_norm by the definition, in long double: each (n, group) row's mean and
// biased variance, x̂ = (x - μ)/√(σ² + ε), y = x̂·w[c] + b[c], and the gradients of Σ y·g written
// out term by term (dx = r/m·(m·ĝ - Σĝ - x̂·Σ ĝ·x̂), ĝ = g·w[c]).
std::array<std::vector<double>, 4> group_norm_by_definition(const tg::Shape& shape, std::size_t groups,
                                                             const std::vector<double>& x,
                                                             const std::vector<double>& w,
                                                             const std::vector<double>& b,
                                                             const std::vector<double>& g, double eps) {
  const std::size_t N = shape[0], C = shape[1], cpg = C / groups;
  std::size_t S = 1;
  for (std::size_t i = 2; i < shape.size(); ++i) S *= shape[i];
  const std::size_t m = cpg * S;
  std::vector<double> y(x.size()), dx(x.size()), dw(C, 0.0), db(C, 0.0);
  std::vector<long double> dwl(C, 0.0L), dbl(C, 0.0L);
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t grp = 0; grp < groups; ++grp) {
      const std::size_t base = (n * C + grp * cpg) * S;
      long double mu = 0, var = 0, sg = 0, sgx = 0;
      for (std::size_t k = 0; k < m; ++k) mu += x[base + k];
      mu /= m;
      for (std::size_t k = 0; k < m; ++k) var += (x[base + k] - mu) * (x[base + k] - mu);
      var /= m;
      const long double r = 1.0L / std::sqrt(var + eps);
      for (std::size_t k = 0; k < m; ++k) {
        const std::size_t c = grp * cpg + k / S;
        const long double xh = (x[base + k] - mu) * r, gh = g[base + k] * w[c];
        y[base + k] = double(xh * w[c] + b[c]);
        sg += gh;
        sgx += gh * xh;
        dwl[c] += g[base + k] * xh;
        dbl[c] += g[base + k];
      }
      for (std::size_t k = 0; k < m; ++k) {
        const std::size_t c = grp * cpg + k / S;
        const long double xh = (x[base + k] - mu) * r, gh = g[base + k] * w[c];
        dx[base + k] = double(r / m * (m * gh - sg - xh * sgx));
      }
    }
  for (std::size_t c = 0; c < C; ++c) {
    dw[c] = double(dwl[c]);
    db[c] = double(dbl[c]);
  }
  return {y, dx, dw, db};
}

}  // namespace

// Golden values: /usr/bin/python3 with torch 1.13 (float64):
//   def seq(shape, f, scale=1.0): return (f(torch.arange(prod(shape), dtype=torch.float64)) * scale).reshape(shape)
//   x = seq(xs, torch.sin) * 2 + 0.5; w = seq((C,), torch.cos, 0.5) + 1; b = torch.arange(C) * 0.1
//   y = F.group_norm(x, G, w, b, 1e-5); y.backward(seq(xs, torch.cos))
//   A: xs (2, 4, 3), G 2;  B: xs (2, 6, 2, 2), G 3
TEST_CASE("group_norm matches PyTorch: values and gradients") {
  struct Golden {
    tg::Shape shape;
    std::int64_t groups;
    std::vector<double> y, dx, dw, db;
  };
  const std::vector<Golden> cases{
      {{2, 4, 3}, 2,
       {-0.0618517188, 1.71083014, 1.85371647, 0.299361438, -1.30238829, -1.66294112, -0.160112811, 0.898339252,
        1.27403198, 0.568821588, -0.120369739, -0.44903508, -1.26470977, 0.812762947, 2.05142157, 1.21133914,
        -0.513691841, -1.75203044, -0.72370344, 0.316603531, 1.19778493, 0.880098179, 0.257469787, -0.359165919},
       {1.05963553, 0.53250557, -0.478404047, -0.88387951, -0.538084243, 0.308226702, 0.506743867, 0.369673646,
        -0.145915395, -0.379424072, -0.332528121, -0.018549924, 0.900567652, 0.935550231, 0.0784798588, -0.756271284,
        -0.904874164, -0.253452294, 0.30935352, 0.500791203, 0.167092247, -0.270359593, -0.438586673, -0.268290704},
       {0.0279399742, 0.371817062, -0.0795957707, 0.357405189},
       {3.01219343, -3.35248466, 3.6256759, -3.8262992}},
      {{2, 6, 2, 2}, 3,
       {-0.156555433, 1.74669995, 1.90011111, 0.162632536, -1.48202066, -1.86913137, -0.567712382, 1.22571768,
        1.1061659, 0.465624532, -0.595367806, -1.10133965, -0.201927689, 0.475081461, 0.87873693, 0.637919742,
        0.233940207, -0.430123204, -0.222659279, 0.665590606, 2.22666603, 2.09907711, 0.685027276, -0.715412586,
        -1.66305622, 0.0121812071, 1.95105273, 2.37096881, 0.850117867, -0.864358344, -1.45948793, -0.388111493,
        0.640009344, 1.14369032, 0.614915437, -0.460162124, -0.524610483, -0.275210343, 0.39792422, 0.875916394,
        1.05606606, 0.148910709, -0.611855883, -0.526788415, 0.37431729, 1.79292427, 1.87956064, 0.554573329},
       {0.956153622, 0.374271679, -0.712383841, -1.30474686, -0.744930223, 0.167543939, 0.765309055, 0.498782634,
        0.0160200211, -0.4197203, -0.397868674, 0.0614846147, 0.36638002, 0.407020022, 0.145150731, -0.178466434,
        -0.310984318, 0.0733678126, 0.519598952, 0.617446249, 0.417009468, -0.37682968, -0.694880321, -0.244728162,
        0.212154628, 0.908219384, 0.629962023, -0.36678892, -1.00583907, -0.907927913, -0.114581426, 0.644801292,
        0.425416084, -0.0793131978, -0.518096589, -0.487518663, 0.0103415848, 0.307863371, 0.315362696,
        0.0259447145, -0.215402954, -0.425969772, -0.172911795, 0.311110641, 0.930441667, 0.572358663,
        -0.239958105, -0.759668346},
       {-0.192251616, -0.00366000165, 1.11977656, -1.04933919, -0.0898776187, 0.170357804},
       {1.90432531, 0.702421517, -2.82259199, 2.98751698, -1.08295084, -1.57178916}}};
  for (const Golden& k : cases) {
    INFO(tg::shape_str(k.shape));
    const std::size_t C = k.shape[1];
    const Tensor x = (seq(k.shape, sin_) * 2.0 + 0.5).detach().set_requires_grad();
    const Tensor w = (seq({C}, cos_, 0.5) + 1.0).detach().set_requires_grad();
    const Tensor b = (tg::arange(double(C), tg::kFloat64) * 0.1).set_requires_grad();
    const Tensor y = tg::group_norm(x, k.groups, w, b, 1e-5);
    y.backward(seq(k.shape, cos_));
    check_close(y, k.y, 1e-8);
    check_close(x.grad(), k.dx, 1e-8);
    check_close(w.grad(), k.dw, 1e-8);
    check_close(b.grad(), k.db, 1e-8);
  }
}

// Ranks 2 to 5, every group count that divides C (1: layer norm over (C, *); C: instance norm),
// runs of 1 to 300 values (partial SIMD batches, rows past a task's block), batches of 1 and 17,
// with and without the affine: y, dx, dw, db against the definition in float64, and float32
// within a few roundings of it.
TEST_CASE("group_norm equals its definition on every rank, group count and size") {
  const std::vector<tg::Shape> shapes{{3, 6},       {17, 4, 5},  {2, 12, 7},     {1, 8, 300},    {2, 6, 3, 5},
                                      {3, 4, 16, 16}, {2, 2, 1, 1}, {2, 6, 2, 3, 2}, {5, 32, 3, 3}};
  std::size_t checked = 0;
  for (const tg::Shape& shape : shapes)
    for (std::size_t groups = 1; groups <= shape[1]; ++groups) {
      if (shape[1] % groups) continue;
      for (bool affine : {true, false}) {
        INFO(tg::shape_str(shape), " groups ", groups, " affine ", affine);
        tg::manual_seed(std::uint64_t(groups * 7 + shape.size()));
        const Tensor x0 = tg::randn(shape, tg::kFloat64) * 3.0 + 2.0, g = tg::randn(shape, tg::kFloat64);
        const Tensor w0 = tg::rand({shape[1]}, tg::kFloat64) + 0.5, b0 = tg::randn({shape[1]}, tg::kFloat64);
        const auto expected = group_norm_by_definition(shape, groups, tg_test::flat(x0),
                                                       affine ? tg_test::flat(w0) : std::vector<double>(shape[1], 1.0),
                                                       affine ? tg_test::flat(b0) : std::vector<double>(shape[1], 0.0),
                                                       tg_test::flat(g), 1e-5);
        for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
          INFO(tg::dtype_name(dtype));
          const Tensor x = x0.to(dtype).detach().set_requires_grad();
          const Tensor w = affine ? w0.to(dtype).detach().set_requires_grad() : Tensor();
          const Tensor b = affine ? b0.to(dtype).detach().set_requires_grad() : Tensor();
          const Tensor y = tg::group_norm(x, std::int64_t(groups), w, b);
          y.backward(g.to(dtype));
          const double tol = dtype == tg::kFloat64 ? 1e-12 : 2e-5;
          check_close(y, expected[0], tol * 4);
          check_close(x.grad(), expected[1], tol * 10);
          if (affine) {
            // dw and db sum N·S terms.
            const double terms = double(x0.numel() / shape[1]);
            check_close(w.grad(), expected[2], tol * terms);
            check_close(b.grad(), expected[3], tol * terms);
          }
        }
        ++checked;
      }
    }
  CHECK(checked > 60);
}

// Means far from zero: the centred form keeps float32 within a few roundings of float64 (torch
// 1.13's float32 group_norm of randn(4, 8, 16, 16)·2 + 1000 over 4 groups is 5.4e-5 off).
TEST_CASE("group_norm in float32 with a mean far from zero stays within a few roundings of float64") {
  for (double shift : {0.0, 1000.0}) {
    tg::manual_seed(4);
    const tg::Shape shape{4, 8, 16, 16};
    const Tensor x32 = tg::randn(shape) * 2.0 + shift, g32 = tg::randn(shape) + 1.0;
    const Tensor w32 = tg::rand({8}) + 0.5, b32 = tg::randn({8});
    auto run = [&](tg::DType dtype) {
      const Tensor x = x32.to(dtype).detach().set_requires_grad(true);
      const Tensor w = w32.to(dtype).detach().set_requires_grad(true);
      const Tensor b = b32.to(dtype).detach().set_requires_grad(true);
      const Tensor y = tg::group_norm(x, 4, w, b);
      y.backward(g32.to(dtype));
      return std::vector<Tensor>{y, x.grad(), w.grad(), b.grad(), (y - b.reshape({8, 1, 1})) / w.reshape({8, 1, 1})};
    };
    const std::vector<Tensor> f32 = run(tg::kFloat32), f64 = run(tg::kFloat64);
    const Tensor g64 = g32.to(tg::kFloat64);
    const std::vector<std::int64_t> other{0, 2, 3};
    tg_test::check_normalization_float32(f32, f64, tg_test::flat(tg::sum(tg::abs(g64 * f64[4]), other)),
                                         tg_test::flat(tg::sum(tg::abs(g64), other)),
                                         "shift " + std::to_string(shift));
    CHECK(tg::max(tg::abs(f32[0].to(tg::kFloat64) - f64[0])).item() < 5.4e-5);
  }
}

TEST_CASE("gradcheck: group_norm and GroupNorm") {
  tg::manual_seed(9);
  CHECK_GRADCHECK([](const Inputs& x) { return tg::group_norm(x[0], 2, x[1], x[2]); },
                  Inputs{uniform64({3, 4, 5}), uniform64({4}), uniform64({4})});
  CHECK_GRADCHECK([](const Inputs& x) { return tg::group_norm(x[0], 3); }, Inputs{uniform64({2, 6, 2, 3})});
  CHECK_GRADCHECK([](const Inputs& x) { return tg::group_norm(x[0], 1, x[1], x[2], 1e-3); },
                  Inputs{uniform64({2, 3}), uniform64({3}), uniform64({3})});
  nn::GroupNorm gn(nn::GroupNormOptions(2, 4));
  tg_test::check_module(gn, uniform64({2, 4, 3, 2}));
}

TEST_CASE("group_norm: the same bits for 1 and 2 threads, and for each gradient asked for alone") {
  tg::manual_seed(12);
  const Tensor x = tg::randn({16, 32, 24, 24}) * 2.0 + 1.0, g = tg::randn({16, 32, 24, 24});
  const Tensor w = tg::rand({32}) + 0.5, b = tg::randn({32});
  std::vector<Tensor> runs[2];
  for (int threads : {1, 2}) {
    tg::set_num_threads(threads);
    const Tensor xl = x.detach().set_requires_grad(), wl = w.detach().set_requires_grad(),
                 bl = b.detach().set_requires_grad();
    const Tensor y = tg::group_norm(xl, 8, wl, bl);
    y.backward(g);
    runs[threads - 1] = {y, xl.grad(), wl.grad(), bl.grad()};
  }
  tg::set_num_threads(1);
  for (std::size_t i = 0; i < 4; ++i) CHECK(tg_test::bitwise_equal(runs[0][i], runs[1][i]));
  const Tensor x_only = x.detach().set_requires_grad();
  tg::group_norm(x_only, 8, w, b).backward(g);
  CHECK(tg_test::bitwise_equal(x_only.grad(), runs[0][1]));
  const Tensor w_only = w.detach().set_requires_grad(), b_only = b.detach().set_requires_grad();
  tg::group_norm(x, 8, w_only, b_only).backward(g);
  CHECK(tg_test::bitwise_equal(w_only.grad(), runs[0][2]));
  CHECK(tg_test::bitwise_equal(b_only.grad(), runs[0][3]));
}

TEST_CASE("GroupNorm: PyTorch's parameters, printing, empty inputs and errors") {
  nn::GroupNorm gn(nn::GroupNormOptions(2, 6));
  CHECK(gn.named_parameters().size() == 2);
  CHECK(tg_test::flat(gn.weight) == std::vector<double>(6, 1.0));
  CHECK(tg_test::flat(gn.bias) == std::vector<double>(6, 0.0));
  std::ostringstream printed;
  printed << gn << nn::GroupNorm(nn::GroupNormOptions(3, 3).eps(1e-3).affine(false));
  CHECK(printed.str() == "GroupNorm(2, 6, eps=1e-05, affine=true)GroupNorm(3, 3, eps=0.001, affine=false)");
  CHECK(nn::GroupNorm(nn::GroupNormOptions(3, 3).affine(false)).named_parameters().empty());
  // Training and evaluation agree (no running statistics).
  const Tensor x = tg::randn({2, 6, 5});
  const Tensor y_train = gn(x);
  gn.eval();
  CHECK(tg_test::bitwise_equal(gn(x), y_train));
  // No values: an empty result, and the affine gradients are zero.
  const Tensor empty = tg::randn({0, 6, 3}).set_requires_grad();
  const Tensor y = gn(empty);
  CHECK(y.shape() == tg::Shape{0, 6, 3});
  tg::sum(y).backward();
  CHECK(tg_test::flat(gn.weight.grad()) == std::vector<double>(6, 0.0));

  CHECK_THROWS_WITH_AS(tg::group_norm(tg::randn({4}), 2), "group_norm: expected input (N, C, *) of at least 2 dims, got [4]",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::group_norm(tg::randn({2, 6, 4}), 4),
                       "group_norm: the 6 channels of input [2, 6, 4] must split into num_groups (4) equal groups",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::group_norm(tg::randn({2, 6, 4}), 0),
                       "group_norm: the 6 channels of input [2, 6, 4] must split into num_groups (0) equal groups",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::group_norm(tg::randn({2, 6}), 2, tg::ones({5})),
                       "group_norm: weight must be float32 [6], got float32 [5]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::group_norm(tg::randn({2, 6}), 2, Tensor(), tg::ones({6}, tg::kFloat64)),
                       "group_norm: bias must be float32 [6], got float64 [6]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::group_norm(tg::ones({2, 6}, tg::kInt64), 2),
                       "group_norm: expected a floating-point input, got int64", tg::Error);
  CHECK_THROWS_WITH_AS(tg::group_norm(tg::randn({2, 6}), 2, Tensor(), Tensor(), -1.0),
                       "group_norm: eps must be non-negative, got -1", tg::Error);
  CHECK_THROWS_WITH_AS(nn::GroupNorm(4, 6), "GroupNorm: num_channels (6) must split into num_groups (4) equal groups",
                       tg::Error);
  CHECK_THROWS_WITH_AS(nn::GroupNorm(nn::GroupNormOptions(2, 6).eps(0)), "GroupNorm: eps must be positive, got 0",
                       tg::Error);
  CHECK_THROWS_WITH_AS(gn(tg::randn({2, 4, 3})), "GroupNorm: expected input (N, 6, *), got [2, 4, 3]", tg::Error);
  CHECK_THROWS_WITH_AS(gn(tg::randn({6})), "GroupNorm: expected input (N, 6, *), got [6]", tg::Error);
}
