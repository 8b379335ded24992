// interpolate (nearest, linear, bilinear) and Upsample: PyTorch's values and gradients on sizes and
// scale factors (integer, fractional, shrinking, recomputed, align_corners), then properties over a
// family of sizes: the backward is the forward's adjoint, values stay within the input's range, a
// linear ramp is reproduced exactly with align_corners, nearest by an integer factor repeats;
// gradcheck, thread counts, printing, errors.
#include "helpers.hpp"

#include <cmath>
#include <functional>
#include <sstream>

using tg::Tensor;
using tg_test::check_close;
using tg_test::cos_;
using tg_test::seq;
using tg_test::sin_;
using tg_test::uniform64;
namespace nn = tg::nn;

namespace {
constexpr tg::InterpolateMode N = tg::InterpolateMode::Nearest, L = tg::InterpolateMode::Linear,
                              B = tg::InterpolateMode::Bilinear;
double dot(const Tensor& a, const Tensor& b) { return tg::sum(a * b).item(); }
}  // namespace

// Golden values: /usr/bin/python3 with torch 1.13 (float64), x = seq(shape, torch.sin),
//   y = F.interpolate(x, ...) as commented; y.backward(seq(y.shape, torch.cos)); y, x.grad
//   def seq(shape, f): return f(torch.arange(prod(shape), dtype=torch.float64)).reshape(shape)
TEST_CASE("interpolate matches PyTorch: nearest, linear, bilinear, sizes and scale factors") {
  struct Golden {
    tg::Shape shape;
    std::function<void(tg::InterpolateOptions&)> set;
    tg::Shape out;
    std::vector<double> y, dx;
  };
  const std::vector<Golden> cases{
      {{1, 2, 3, 3}, [](tg::InterpolateOptions& o) { o.scale_factor = {2}; o.mode = N; }, {1, 2, 6, 6},
       {0, 0, 0.841470985, 0.841470985, 0.909297427, 0.909297427, 0, 0, 0.841470985, 0.841470985, 0.909297427, 0.909297427, 0.141120008, 0.141120008, -0.756802495, -0.756802495, -0.958924275, -0.958924275, 0.141120008, 0.141120008, -0.756802495, -0.756802495, -0.958924275, -0.958924275, -0.279415498, -0.279415498, 0.656986599, 0.656986599, 0.989358247, 0.989358247, -0.279415498, -0.279415498, 0.656986599, 0.656986599, 0.989358247, 0.989358247, 0.412118485, 0.412118485, -0.544021111, -0.544021111, -0.999990207, -0.999990207, 0.412118485, 0.412118485, -0.544021111, -0.544021111, -0.999990207, -0.999990207, -0.536572918, -0.536572918, 0.420167037, 0.420167037, 0.990607356, 0.990607356, -0.536572918, -0.536572918, 0.420167037, 0.420167037, 0.990607356, 0.990607356, 0.65028784, 0.65028784, -0.287903317, -0.287903317, -0.961397492, -0.961397492, 0.65028784, 0.65028784, -0.287903317, -0.287903317, -0.961397492, -0.961397492},
       {3.25437485, -2.46276963, -1.20462727, 3.40032207, -0.762597893, -2.76561667, 2.48437563, 1.17572713, -3.46292588, 0.792578349, 2.74688187, -3.07879075, -1.14673487, 3.46020716, -1.73317365, -2.72793187, 3.09293715, 0.153699854}},
      // F.interpolate(x, scale_factor=2, mode='nearest')
      {{1, 1, 3, 4}, [](tg::InterpolateOptions& o) { o.size = {5, 7}; o.mode = N; }, {1, 1, 5, 7},
       {0, 0, 0.841470985, 0.841470985, 0.909297427, 0.909297427, 0.141120008, 0, 0, 0.841470985, 0.841470985, 0.909297427, 0.909297427, 0.141120008, -0.756802495, -0.756802495, -0.958924275, -0.958924275, -0.279415498, -0.279415498, 0.656986599, -0.756802495, -0.756802495, -0.958924275, -0.958924275, -0.279415498, -0.279415498, 0.656986599, 0.989358247, 0.989358247, 0.412118485, 0.412118485, -0.544021111, -0.544021111, -0.999990207},
       {2.14870453, -3.15634112, 0.478298221, 1.86761707, -2.17064078, -1.34147683, 3.28714346, 0.115943253, -1.7106634, 1.06899381, 0.820946613, -0.848570275}},
      // F.interpolate(x, size=(5, 7), mode='nearest')
      {{1, 1, 4, 5}, [](tg::InterpolateOptions& o) { o.scale_factor = {1.5}; o.mode = N; }, {1, 1, 6, 7},
       {0, 0, 0.841470985, 0.909297427, 0.909297427, 0.141120008, -0.756802495, 0, 0, 0.841470985, 0.909297427, 0.909297427, 0.141120008, -0.756802495, -0.958924275, -0.958924275, -0.279415498, 0.656986599, 0.656986599, 0.989358247, 0.412118485, -0.544021111, -0.544021111, -0.999990207, -0.536572918, -0.536572918, 0.420167037, 0.990607356, -0.544021111, -0.544021111, -0.999990207, -0.536572918, -0.536572918, 0.420167037, 0.990607356, 0.65028784, 0.65028784, -0.287903317, -0.961397492, -0.961397492, -0.750987247, 0.14987721},
       {2.14870453, -1.3272771, -2.47828195, 1.12751614, 1.86761707, -0.622950695, -0.95765948, 0.38515337, 0.988704618, 0.408082062, -3.25835348, -0.37858157, 3.16434754, 0.633642575, -1.14070908, -1.03165589, 0.765414052, 1.22171658, -0.666938062, -0.987339278}},
      // F.interpolate(x, scale_factor=1.5, mode='nearest')
      {{1, 1, 4, 5}, [](tg::InterpolateOptions& o) { o.scale_factor = {1.5}; o.mode = N; o.recompute_scale_factor = true; }, {1, 1, 6, 7},
       {0, 0, 0.841470985, 0.909297427, 0.909297427, 0.141120008, -0.756802495, 0, 0, 0.841470985, 0.909297427, 0.909297427, 0.141120008, -0.756802495, -0.958924275, -0.958924275, -0.279415498, 0.656986599, 0.656986599, 0.989358247, 0.412118485, -0.544021111, -0.544021111, -0.999990207, -0.536572918, -0.536572918, 0.420167037, 0.990607356, -0.544021111, -0.544021111, -0.999990207, -0.536572918, -0.536572918, 0.420167037, 0.990607356, 0.65028784, 0.65028784, -0.287903317, -0.961397492, -0.961397492, -0.750987247, 0.14987721},
       {2.14870453, -1.3272771, -2.47828195, 1.12751614, 1.86761707, -0.622950695, -0.95765948, 0.38515337, 0.988704618, 0.408082062, -3.25835348, -0.37858157, 3.16434754, 0.633642575, -1.14070908, -1.03165589, 0.765414052, 1.22171658, -0.666938062, -0.987339278}},
      // F.interpolate(x, scale_factor=1.5, mode='nearest', recompute_scale_factor=True)
      {{2, 1, 3}, [](tg::InterpolateOptions& o) { o.size = {5}; o.mode = N; }, {2, 1, 5},
       {0, 0, 0.841470985, 0.841470985, 0.909297427, 0.141120008, 0.141120008, -0.756802495, -0.756802495, -0.958924275},
       {1.54030231, -1.40613933, -0.653643621, 1.24383247, 0.608402221, -0.911130262}},
      // F.interpolate(x, size=5, mode='nearest')
      {{1, 2, 3, 3}, [](tg::InterpolateOptions& o) { o.scale_factor = {2}; o.mode = B; }, {1, 2, 6, 6},
       {0, 0.210367746, 0.631103239, 0.858427595, 0.892340816, 0.909297427, 0.035280002, 0.136935655, 0.340246962, 0.441987461, 0.442157155, 0.442242001, 0.105840006, -0.00992852679, -0.241465592, -0.390892806, -0.458210168, -0.491868849, 0.0359861315, -0.0738492068, -0.293519883, -0.420479827, -0.454729039, -0.471853644, -0.174281622, -0.0548263849, 0.184084089, 0.353226398, 0.452600544, 0.502287616, -0.279415498, -0.045314974, 0.422886074, 0.740079511, 0.906265335, 0.989358247, 0.412118485, 0.173083586, -0.304986212, -0.658013385, -0.885997933, -0.999990207, 0.174945634, 0.0554657073, -0.183494147, -0.352815759, -0.45249913, -0.502340816, -0.299400067, -0.17977005, 0.0594899831, 0.257579491, 0.414498474, 0.492957965, -0.239857728, -0.119105934, 0.122397654, 0.308013622, 0.43774197, 0.502606144, 0.353572651, 0.237458056, 0.00522886644, -0.201513366, -0.382768642, -0.47339628, 0.65028784, 0.415740051, -0.0533555275, -0.45627686, -0.793023948, -0.961397492},
       {2.80776233, -1.81320516, -1.38939652, 3.00150001, -0.57561934, -2.5512262, 2.42181369, 0.810291584, -3.05565806, 0.84123352, 2.15054744, -2.52348274, -0.757476605, 2.61181178, -1.28559311, -2.1610008, 2.40006666, 0.283567078}},
      // F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)
      {{1, 1, 3, 3}, [](tg::InterpolateOptions& o) { o.size = {5, 4}; o.mode = B; o.align_corners = true; }, {1, 1, 5, 4},
       {0, 0.560980657, 0.864079799, 0.909297427, 0.070560004, 0.0517428312, 0.0199516885, -0.0248134239, 0.141120008, -0.457494994, -0.824176422, -0.958924275, -0.0691477451, -0.0563212139, -0.0281996369, 0.015216986, -0.279415498, 0.344852566, 0.767777148, 0.989358247},
       {0.900555989, 0.497381137, -0.591728601, -0.155586791, -0.404129037, -0.0953397235, -0.476212483, 0.604830247, 0.851755768}},
      // F.interpolate(x, size=(5, 4), mode='bilinear', align_corners=True)
      {{1, 1, 5, 7}, [](tg::InterpolateOptions& o) { o.size = {2, 3}; o.mode = B; }, {1, 1, 2, 3},
       {0.799170937, -0.372735831, -0.346350037, 0.11670809, -0.780193183, 0.831115408},
       {0.0833333333, 0.166666667, 0, 0.135075576, 0, -0.0693578061, -0.034678903, 0.25, 0.5, 0, 0.405226729, 0, -0.208073418, -0.104036709, 0, 0, 0, 0, 0, 0, 0, -0.247498124, -0.494996248, 0, -0.490232716, 0, 0.141831093, 0.0709155464, -0.0824993747, -0.164998749, 0, -0.163410905, 0, 0.0472770309, 0.0236385155}},
      // F.interpolate(x, size=(2, 3), mode='bilinear', align_corners=False)
      {{1, 1, 5, 4}, [](tg::InterpolateOptions& o) { o.scale_factor = {0.6, 1.3}; o.mode = B; }, {1, 1, 3, 5},
       {-0.252267498, 0.0704753635, 0.356297927, 0.474601276, 0.32076724, 0.989358247, 0.611932249, 0.00759788688, -0.631707475, -0.982452934, -0.370793184, -0.455847321, -0.361082791, -0.076775623, 0.297944735},
       {0.791351814, 0.0754599141, -0.667207724, -0.545924436, 0.395675907, 0.0377299571, -0.333603862, -0.272962218, 0.616028823, 1.06274726, 0.166395916, -0.904067566, -0.279179852, 0.163244183, 0.365070682, 0.101995697, -0.558359704, 0.326488365, 0.730141363, 0.203991394}},
      // F.interpolate(x, scale_factor=(0.6, 1.3), mode='bilinear', align_corners=False)
      {{1, 2, 4}, [](tg::InterpolateOptions& o) { o.scale_factor = {2.5}; o.mode = L; }, {1, 2, 10},
       {0, 0.0841470985, 0.420735492, 0.757323886, 0.861818917, 0.888949494, 0.832479685, 0.525208717, 0.21793775, 0.141120008, -0.756802495, -0.777014673, -0.857863385, -0.938712097, -0.755071642, -0.483268131, -0.185775289, 0.18878555, 0.563346389, 0.656986599},
       {1.17919941, -1.41748831, 1.22902483, -0.569112136, -0.322416743, 1.10688133, -1.4242039, 1.34964204}},
      // F.interpolate(x, scale_factor=2.5, mode='linear', align_corners=False)
      {{1, 1, 6}, [](tg::InterpolateOptions& o) { o.scale_factor = {1.7}; o.mode = L; o.recompute_scale_factor = true; }, {1, 1, 10},
       {0, 0.336588394, 0.841470985, 0.88216685, 0.755661943, 0.294755492, -0.218048993, -0.756802495, -0.878075563, -0.958924275},
       {1.32418138, -0.596022913, -1.06017796, 0.672303196, 1.07977036, -0.998430282}},
      // F.interpolate(x, scale_factor=1.7, mode='linear', align_corners=False, recompute_scale_factor=True)
      {{1, 1, 4}, [](tg::InterpolateOptions& o) { o.size = {7}; o.mode = L; o.align_corners = true; }, {1, 1, 7},
       {0, 0.420735492, 0.841470985, 0.875384206, 0.909297427, 0.525208717, 0.141120008},
       {1.27015115, -0.640991932, -1.00680878, 1.10200138}},
      // F.interpolate(x, size=7, mode='linear', align_corners=True)
      {{1, 1, 3, 3}, [](tg::InterpolateOptions& o) { o.size = {3, 3}; o.mode = B; o.align_corners = true; }, {1, 1, 3, 3},
       {0, 0.841470985, 0.909297427, 0.141120008, -0.756802495, -0.958924275, -0.279415498, 0.656986599, 0.989358247},
       {1, 0.540302306, -0.416146837, -0.989992497, -0.653643621, 0.283662185, 0.960170287, 0.753902254, -0.145500034}},
      // F.interpolate(x, size=(3, 3), mode='bilinear', align_corners=True)
  };
  for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const Golden& k = cases[i];
      INFO("case ", i, " ", tg::dtype_name(dtype));
      tg::InterpolateOptions o;
      k.set(o);
      const Tensor x = seq(k.shape, sin_).to(dtype).set_requires_grad();
      const Tensor y = tg::interpolate(x, o);
      REQUIRE(y.shape() == k.out);
      y.backward(seq(y.shape(), cos_).to(dtype));
      const double tol = dtype == tg::kFloat64 ? 1e-8 : 2e-6;
      check_close(y, k.y, tol);
      check_close(x.grad(), k.dx, tol * 4);
    }
  }
}

// Every output size 1-9 from every input size 1-7 (and scale factors), each mode with and without
// align_corners, float64.
TEST_CASE("interpolate on a family of sizes: the adjoint, the input's range, ramps, repeats") {
  std::size_t checked = 0;
  for (std::size_t in = 1; in <= 7; ++in)
    for (std::size_t out = 1; out <= 9; ++out)
      for (tg::InterpolateMode mode : {N, L, B})
        for (int corners = 0; corners < (mode == N ? 1 : 2); ++corners) {
          INFO("in ", in, " out ", out, " mode ", int(mode), " align_corners ", corners);
          tg::InterpolateOptions o;
          o.mode = mode;
          if (mode != N) o.align_corners = corners == 1;
          const bool two_d = mode == B || (mode == N && (in + out) % 2 == 0);  // nearest in 1-D and 2-D
          const std::size_t in_w = in % 3 + 2, out_w = out % 4 + 1;  // a second, different size
          o.size = two_d ? std::vector<std::int64_t>{std::int64_t(out), std::int64_t(out_w)}
                         : std::vector<std::int64_t>{std::int64_t(out)};
          const tg::Shape shape = two_d ? tg::Shape{2, 3, in, in_w} : tg::Shape{2, 3, in};
          const Tensor x = uniform64(shape);
          const Tensor y = tg::interpolate(x, o);
          const Tensor g = uniform64(y.shape());
          y.backward(g);
          // The backward is the adjoint of the (linear) forward.
          CHECK(std::abs(dot(y, g) - dot(x.detach(), x.grad())) <= 1e-12 * double(y.numel()));
          // Each value is a convex blend of input values.
          CHECK(tg::max(y).item() <= tg::max(x).item() + 1e-15);
          CHECK(tg::min(y).item() >= tg::min(x).item() - 1e-15);
          // align_corners reproduces a ramp: x[i] = i gives y[o] = o·(in - 1)/(out - 1).
          if (mode == L && corners == 1) {
            const Tensor ramp = tg::arange(double(in), tg::kFloat64).reshape({1, 1, std::int64_t(in)});
            std::vector<double> expected(out);
            for (std::size_t k = 0; k < out; ++k)
              expected[k] = out > 1 ? double(k) * double(in - 1) / double(out - 1) : 0.0;
            check_close(tg::interpolate(ramp, o), expected, 1e-12);
          }
          ++checked;
        }
  CHECK(checked == 7 * 9 * 5);
  // Nearest by an integer factor repeats each value; by a fraction of the form 1/k it takes every
  // k-th value.
  const Tensor x = uniform64({2, 3, 4, 5}).detach();
  for (std::int64_t k : {1, 2, 3}) {
    tg::InterpolateOptions o;
    o.scale_factor = {double(k)};
    const std::vector<double> xs = tg_test::flat(x);
    std::vector<double> expected;
    for (std::size_t p = 0; p < 6; ++p)
      for (std::size_t i = 0; i < 4 * std::size_t(k); ++i)
        for (std::size_t j = 0; j < 5 * std::size_t(k); ++j) expected.push_back(xs[p * 20 + (i / std::size_t(k)) * 5 + j / std::size_t(k)]);
    check_close(tg::interpolate(x, o), expected, 0);
  }
}

// Where 1 / scale_factor and in / out pick different sources (torch 1.13: arange(3) by 2.6 nearest
// gives 0 0 0 1 1 1 2, recomputed 0 0 0 1 1 2 2; arange(4) by 2.6 linear starts 0, 1/13, 6/13 and
// recomputed 0, 0.1, 0.5).
TEST_CASE("interpolate: scale_factor's own scale, and recompute_scale_factor") {
  for (bool recompute : {false, true}) {
    tg::InterpolateOptions o;
    o.scale_factor = {2.6};
    o.recompute_scale_factor = recompute;
    check_close(tg::interpolate(tg::arange(3.0).reshape({1, 1, 3}), o),
                recompute ? std::vector<double>{0, 0, 0, 1, 1, 2, 2} : std::vector<double>{0, 0, 0, 1, 1, 1, 2}, 0);
    o.mode = L;
    const Tensor y = tg::interpolate(tg::arange(4.0, tg::kFloat64).reshape({1, 1, 4}), o);
    REQUIRE(y.numel() == 10);
    const std::vector<double> ys = tg_test::flat(y);
    CHECK(ys[1] == doctest::Approx(recompute ? 0.1 : 1.0 / 13).epsilon(1e-12));
    CHECK(ys[2] == doctest::Approx(recompute ? 0.5 : 6.0 / 13).epsilon(1e-12));
    CHECK(ys[9] == 3.0);
  }
}

TEST_CASE("gradcheck: interpolate in each mode; the same bits for 1 and 2 threads") {
  tg::manual_seed(2);
  auto with = [](tg::InterpolateMode mode, std::vector<double> scale, std::optional<bool> corners) {
    tg::InterpolateOptions o;
    o.mode = mode;
    o.scale_factor = std::move(scale);
    o.align_corners = corners;
    return [o](const std::vector<Tensor>& x) { return tg::interpolate(x[0], o); };
  };
  CHECK_GRADCHECK(with(N, {1.5, 0.7}, std::nullopt), std::vector<Tensor>{uniform64({2, 2, 4, 5})});
  CHECK_GRADCHECK(with(B, {1.7, 2.0}, false), std::vector<Tensor>{uniform64({1, 2, 3, 4})});
  CHECK_GRADCHECK(with(B, {0.5, 1.5}, true), std::vector<Tensor>{uniform64({2, 1, 5, 3})});
  CHECK_GRADCHECK(with(L, {2.5}, false), std::vector<Tensor>{uniform64({2, 3, 4})});
  const Tensor x = tg::randn({8, 16, 20, 20});
  std::vector<Tensor> runs[2];
  for (int threads : {1, 2}) {
    tg::set_num_threads(threads);
    const Tensor xl = x.detach().set_requires_grad();
    const Tensor y = with(B, {1.6}, false)({xl});
    y.backward(tg::cos(y.detach()));
    runs[threads - 1] = {y, xl.grad()};
  }
  tg::set_num_threads(1);
  CHECK(tg_test::bitwise_equal(runs[0][0], runs[1][0]));
  CHECK(tg_test::bitwise_equal(runs[0][1], runs[1][1]));
}

TEST_CASE("Upsample: PyTorch's printing; interpolate and Upsample errors") {
  auto printed = [](const nn::Module& m) {
    std::ostringstream s;
    s << m;
    return s.str();
  };
  CHECK(printed(nn::Upsample(nn::UpsampleOptions().scale_factor({2}))) == "Upsample(scale_factor=2.0, mode=nearest)");
  CHECK(printed(nn::Upsample(nn::UpsampleOptions().size({4, 5}).mode(B).align_corners(true))) ==
        "Upsample(size=(4, 5), mode=bilinear)");
  CHECK(printed(nn::Upsample(nn::UpsampleOptions().scale_factor({2, 1.5}).mode(B))) ==
        "Upsample(scale_factor=(2.0, 1.5), mode=bilinear)");
  nn::Upsample up(nn::UpsampleOptions().scale_factor({2}).mode(B));
  CHECK(up(tg::randn({2, 3, 4, 5})).shape() == tg::Shape{2, 3, 8, 10});
  CHECK(up.parameters().empty());

  const Tensor x = tg::randn({1, 2, 3, 3});
  auto call = [](const Tensor& t, auto set) {
    tg::InterpolateOptions o;
    set(o);
    return tg::interpolate(t, o);
  };
  CHECK_THROWS_WITH_AS(call(tg::randn({2, 3}), [](auto& o) { o.size = {4}; }),
                       "interpolate: expected input (N, C, L) or (N, C, H, W), got [2, 3]", tg::Error);
  CHECK_THROWS_WITH_AS(call(x, [](auto& o) { o.size = {4}; o.mode = L; }),
                       "interpolate: mode linear needs 3-D input (N, C, L), got [1, 2, 3, 3]", tg::Error);
  CHECK_THROWS_WITH_AS(call(tg::randn({1, 2, 3}), [](auto& o) { o.size = {4}; o.mode = B; }),
                       "interpolate: mode bilinear needs 4-D input (N, C, H, W), got [1, 2, 3]", tg::Error);
  CHECK_THROWS_WITH_AS(call(x, [](auto& o) { o.size = {4}; o.align_corners = false; }),
                       "interpolate: align_corners can only be set with the linear and bilinear modes, not nearest",
                       tg::Error);
  CHECK_THROWS_WITH_AS(call(x, [](auto& o) { o.size = {4}; o.scale_factor = {2}; }),
                       "interpolate: give exactly one of size and scale_factor, got 1 and 1 values", tg::Error);
  CHECK_THROWS_WITH_AS(call(x, [](auto&) {}), "interpolate: give exactly one of size and scale_factor, got 0 and 0 values",
                       tg::Error);
  CHECK_THROWS_WITH_AS(call(x, [](auto& o) { o.size = {4, 4, 4}; }),
                       "interpolate: size must have 1 or 2 values for input [1, 2, 3, 3], got 3", tg::Error);
  CHECK_THROWS_WITH_AS(call(x, [](auto& o) { o.scale_factor = {-1}; }),
                       "interpolate: scale_factor must be positive and finite, got -1", tg::Error);
  CHECK_THROWS_WITH_AS(call(x, [](auto& o) { o.scale_factor = {0.2}; }),
                       "interpolate: input and output sizes must be positive, got input [1, 2, 3, 3] and output size 0 "
                       "in spatial dim 0",
                       tg::Error);
  CHECK_THROWS_WITH_AS(call(x, [](auto& o) { o.size = {0, 2}; }),
                       "interpolate: input and output sizes must be positive, got input [1, 2, 3, 3] and output size 0 "
                       "in spatial dim 0",
                       tg::Error);
  CHECK_THROWS_WITH_AS(call(tg::ones({1, 2, 3}, tg::kInt64), [](auto& o) { o.size = {4}; }),
                       "interpolate: expected a floating-point input, got int64", tg::Error);
  CHECK_THROWS_WITH_AS(up(tg::randn({1, 2, 3})), "Upsample: interpolate: mode bilinear needs 4-D input (N, C, H, W), got [1, 2, 3]",
                       tg::Error);
}
