// scatter, scatter_add, index_add and masked_fill: golden values and gradients from PyTorch,
// src larger than the index, gradcheck, repeated places at 1 and 2 threads, int64, 0-d and empty
// inputs, errors.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "helpers.hpp"

using tg::Tensor;
using Inputs = std::vector<Tensor>;
using tg_test::uniform64;

namespace {

// t's leading (rows, cols) corner.
Tensor corner(const Tensor& t, std::int64_t rows, std::int64_t cols) { return t.narrow(0, 0, rows).narrow(1, 0, cols); }

Tensor ints(std::vector<std::int64_t> values, const tg::Shape& shape) { return Tensor(values, shape); }

}  // namespace

// Golden values: /usr/bin/python3 with torch 1.13, float64 (seq as tg_test::seq):
//   a = seq((3, 4), torch.sin, 2.0); src = seq((3, 5), torch.cos, 1.5)
//   i0 = [[2, 0, 1, 2], [0, 0, 2, 1]]; i1 = [[3, 1, 3], [0, 0, 0], [2, 1, 3]]   (repeated places)
//   torch.scatter(a, 0, i0, src[:2, :4]), torch.scatter(a, 1, i1, src[:, :3]), torch.scatter(a, 1, i1, -0.5),
//   torch.scatter_add(a, 0, i0, src[:2, :4]), torch.scatter_add(a, 1, i1, src[:, :3]),
//   torch.index_add(a, 0, [2, 0, 2, 2], seq((4, 4), torch.cos)),
//   torch.index_add(a, 1, [3, 1, 3], seq((3, 3), torch.cos), alpha=-2.5),
//   torch.masked_fill(a, seq((3, 4), torch.cos) > 0.3, -7.0), torch.masked_fill(a, [T, F, F, T], 2.0),
//   torch.masked_fill(seq((4,), torch.sin), [[T], [F], [T]], 1.5);
//   y.backward(seq(y.shape, torch.cos)), "%.17g". (PyTorch's backward refuses a src larger than
//   the index; its forward reads the leading corner: torch.scatter(a, 1, i1, src) and
//   torch.scatter_add(a, 0, i0, src), checked below.)
TEST_CASE("scatter, scatter_add, index_add and masked_fill match PyTorch, values and gradients") {
  const Tensor a = tg_test::seq({3, 4}, tg_test::sin_, 2.0);
  const Tensor src = tg_test::seq({3, 5}, tg_test::cos_, 1.5);
  const Tensor i0 = ints({2, 0, 1, 2, 0, 0, 2, 1}, {2, 4});
  const Tensor i1 = ints({3, 1, 3, 0, 0, 0, 2, 1, 3}, {3, 3});
  tg_test::check_golden({
      {"scatter dim 0", [&](const Inputs& x) { return tg::scatter(x[0], 0, i0, x[1]); }, {a, corner(src, 2, 4)},
       {0.4254932781948394, 1.440255429975549, 1.8185948536513634, 0.28224001611973443, -1.5136049906158564, -1.9178485493262769, -0.62422025482071364, -0.21825005071292031, 1.5, 0.82423697048351319, 1.1308533815149568, -1.4849887449006682},
       {{0, 0, -0.41614683654714241, -0.98999249660044542, -0.65364362086361194, 0.28366218546322625, 0, 0, 0, -0.91113026188467694, 0, 0},
        {-0.14550003380861354, 0.54030230586813977, 0.96017028665036597, 0.0044256979880507854, 1, 0.54030230586813977, -0.83907152907645244, 0.7539022543433046}}},
      {"scatter dim 1", [&](const Inputs& x) { return tg::scatter(x[0], 1, i1, x[1]); }, {a, corner(src, 3, 3)},
       {0, 0.81045345880220965, 1.8185948536513634, -0.62422025482071364, 1.1308533815149568, -1.9178485493262769, -0.55883099639785172, 1.3139731974375781, 1.9787164932467636, 0.0066385469820761777, -1.2586072936146786, 1.2657809380987382},
       {{1, 0, -0.41614683654714241, 0, 0, 0.28366218546322625, 0.96017028665036597, 0.7539022543433046, -0.14550003380861354, 0, 0, 0},
        {-0.98999249660044542, 0.54030230586813977, -0.98999249660044542, -0.65364362086361194, -0.65364362086361194, -0.65364362086361194, -0.83907152907645244, -0.91113026188467694, 0.0044256979880507854}}},
      {"scatter value", [&](const Inputs& x) { return tg::scatter(x[0], 1, i1, -0.5); }, {a},
       {0, -0.5, 1.8185948536513634, -0.5, -0.5, -1.9178485493262769, -0.55883099639785172, 1.3139731974375781, 1.9787164932467636, -0.5, -0.5, -0.5},
       {{1, 0, -0.41614683654714241, 0, 0, 0.28366218546322625, 0.96017028665036597, 0.7539022543433046, -0.14550003380861354, 0, 0, 0}}},
      {"scatter_add dim 0", [&](const Inputs& x) { return tg::scatter_add(x[0], 0, i0, x[1]); }, {a, corner(src, 2, 4)},
       {0.4254932781948394, 3.9336508583935519, 1.8185948536513634, 0.28224001611973443, -1.5136049906158564, -1.9178485493262769, -1.1830512512185654, 1.0957231467246578, 3.4787164932467638, 0.82423697048351319, 0.042811159736217297, -3.484969158002075},
       {{1, 0.54030230586813977, -0.41614683654714241, -0.98999249660044542, -0.65364362086361194, 0.28366218546322625, 0.96017028665036597, 0.7539022543433046, -0.14550003380861354, -0.91113026188467694, -0.83907152907645244, 0.0044256979880507854},
        {-0.14550003380861354, 0.54030230586813977, 0.96017028665036597, 0.0044256979880507854, 1, 0.54030230586813977, -0.83907152907645244, 0.7539022543433046}}},
      {"scatter_add dim 1", [&](const Inputs& x) { return x[0].scatter_add(1, i1, x[1]); }, {a, corner(src, 3, 3)},
       {0, 2.4933954284180029, 1.8185948536513634, 1.1580197612990208, 1.482997099069489, -1.9178485493262769, -0.55883099639785172, 1.3139731974375781, 1.9787164932467636, 0.83087551746558941, -2.3466495153934179, -0.7341994750026688},
       {{1, 0.54030230586813977, -0.41614683654714241, -0.98999249660044542, -0.65364362086361194, 0.28366218546322625, 0.96017028665036597, 0.7539022543433046, -0.14550003380861354, -0.91113026188467694, -0.83907152907645244, 0.0044256979880507854},
        {-0.98999249660044542, 0.54030230586813977, -0.98999249660044542, -0.65364362086361194, -0.65364362086361194, -0.65364362086361194, -0.83907152907645244, -0.91113026188467694, 0.0044256979880507854}}},
      {"index_add dim 0", [&](const Inputs& x) { return tg::index_add(x[0], 0, Tensor(std::vector<std::int64_t>{2, 0, 2, 2}, {4}), x[1]); }, {a, tg_test::seq({4, 4}, tg_test::cos_)},
       {-0.65364362086361194, 1.9666041550790192, 2.7787651403017293, 1.036142270463039, -1.5136049906158564, -1.9178485493262769, -0.55883099639785172, 1.3139731974375781, 3.6770704181706426, 1.3608557959171721, -2.2065233691945005, -3.745235124572623},
       {{1, 0.54030230586813977, -0.41614683654714241, -0.98999249660044542, -0.65364362086361194, 0.28366218546322625, 0.96017028665036597, 0.7539022543433046, -0.14550003380861354, -0.91113026188467694, -0.83907152907645244, 0.0044256979880507854},
        {-0.14550003380861354, -0.91113026188467694, -0.83907152907645244, 0.0044256979880507854, 1, 0.54030230586813977, -0.41614683654714241, -0.98999249660044542, -0.14550003380861354, -0.91113026188467694, -0.83907152907645244, 0.0044256979880507854, -0.14550003380861354, -0.91113026188467694, -0.83907152907645244, 0.0044256979880507854}}},
      {"index_add dim 1 alpha", [&](const Inputs& x) { return x[0].index_add(1, Tensor(std::vector<std::int64_t>{3, 1, 3}, {3}), x[1], -2.5); }, {a, tg_test::seq({3, 3}, tg_test::cos_)},
       {0, 0.3321862049454436, 1.8185948536513634, -1.1773928925124097, -1.5136049906158564, -0.28373949716724706, -0.55883099639785172, 3.0797989752806259, 1.9787164932467636, -1.0605186653747483, -1.0880422217787395, -4.0366560452057874},
       {{1, 0.54030230586813977, -0.41614683654714241, -0.98999249660044542, -0.65364362086361194, 0.28366218546322625, 0.96017028665036597, 0.7539022543433046, -0.14550003380861354, -0.91113026188467694, -0.83907152907645244, 0.0044256979880507854},
        {2.4749812415011134, -1.3507557646703494, 2.4749812415011134, -1.8847556358582616, -0.70915546365806559, -1.8847556358582616, -0.011064244970126964, 2.2778256547116924, -0.011064244970126964}}},
      {"masked_fill", [&](const Inputs& x) { return tg::masked_fill(x[0], tg::gt(tg_test::seq({3, 4}, tg_test::cos_), 0.3), -7.0); }, {a},
       {-7, -7, 1.8185948536513634, 0.28224001611973443, -1.5136049906158564, -1.9178485493262769, -7, -7, 1.9787164932467636, 0.82423697048351319, -1.0880422217787395, -1.999980413101407},
       {{0, 0, -0.41614683654714241, -0.98999249660044542, -0.65364362086361194, 0.28366218546322625, 0, 0, -0.14550003380861354, -0.91113026188467694, -0.83907152907645244, 0.0044256979880507854}}},
      {"masked_fill broadcast", [&](const Inputs& x) { return x[0].masked_fill(Tensor(std::vector<double>{1, 0, 0, 1}, {4}), 2.0); }, {a},
       {2, 1.682941969615793, 1.8185948536513634, 2, 2, -1.9178485493262769, -0.55883099639785172, 2, 2, 0.82423697048351319, -1.0880422217787395, 2},
       {{0, 0.54030230586813977, -0.41614683654714241, 0, 0, 0.28366218546322625, 0.96017028665036597, 0, 0, -0.91113026188467694, -0.83907152907645244, 0}}},
      {"masked_fill (3,1) mask over (4,)", [&](const Inputs& x) { return tg::masked_fill(x[0], Tensor(std::vector<double>{1, 0, 1}, {3, 1}), 1.5); }, {tg_test::seq({4}, tg_test::sin_)},
       {1.5, 1.5, 1.5, 1.5, 0, 0.8414709848078965, 0.90929742682568171, 0.14112000805986721, 1.5, 1.5, 1.5, 1.5},
       {{-0.65364362086361194, 0.28366218546322625, 0.96017028665036597, 0.7539022543433046}}},
  });
  // A src larger than the index: its leading corner, and a gradient of zeros elsewhere.
  tg_test::check_special_close(tg::scatter(a, 1, i1, src), {0, 0.81045345880220965, 1.8185948536513634, -0.62422025482071364, 1.1308533815149568, -1.9178485493262769, -0.55883099639785172, 1.3139731974375781, 1.9787164932467636, 0.0066385469820761777, -1.2586072936146786, 1.2657809380987382}, 1e-12);
  tg_test::check_special_close(tg::scatter_add(a, 0, i0, src), {0.4254932781948394, 3.9336508583935519, 1.8185948536513634, 0.28224001611973443, -1.5136049906158564, -1.9178485493262769, -1.1830512512185654, 1.0957231467246578, 3.4787164932467638, 0.82423697048351319, 0.042811159736217297, -3.484969158002075}, 1e-12);
  const Tensor whole = src.detach().set_requires_grad();
  const Tensor part = corner(src, 2, 4).detach().set_requires_grad();
  const Tensor g = tg_test::seq({3, 4}, tg_test::cos_);
  tg::scatter_add(a, 0, i0, whole).backward(g);
  tg::scatter_add(a, 0, i0, part).backward(g);
  CHECK(corner(whole.grad(), 2, 4).to_vector<double>() == part.grad().to_vector<double>());
  CHECK(tg::sum(tg::abs(whole.grad())).item() == doctest::Approx(tg::sum(tg::abs(part.grad())).item()));
}

TEST_CASE("gradcheck: scatter, scatter_add, index_add and masked_fill along each dim") {
  tg::manual_seed(11);
  const Tensor i3 = tg::randint(0, 3, {2, 3, 4});  // places 0..2 along any dim of (3, 3, 4)
  for (std::int64_t dim = 0; dim < 3; ++dim) {
    INFO("dim ", dim);
    const Tensor index = dim == 2 ? tg::randint(0, 4, {2, 3, 4}) : i3;
    // scatter's src: places without repeats (a repeated place takes the last value, and the others
    // get a gradient all the same, as in PyTorch: finite differences would see 0 there).
    std::vector<std::int64_t> unique(24);
    for (std::int64_t k = 0; k < 24; ++k) unique[std::size_t(k)] = (k / 12 + k / 4 % 3 + k % 4) % (dim == 2 ? 4 : 3);
    const Tensor once = ints(unique, {2, 3, 4});
    CHECK_GRADCHECK([&](const Inputs& x) { return tg::scatter(x[0], dim, once, x[1]); },
                    (Inputs{uniform64({3, 3, 4}), uniform64({2, 3, 4})}));
    CHECK_GRADCHECK([&](const Inputs& x) { return tg::scatter(x[0], dim, index, 0.25); }, (Inputs{uniform64({3, 3, 4})}));
    CHECK_GRADCHECK([&](const Inputs& x) { return tg::scatter_add(x[0], dim, index, x[1]); },
                    (Inputs{uniform64({3, 3, 4}), uniform64({2, 3, 5})}));  // src larger than the index
    const Tensor rows = dim == 2 ? ints({3, 0, 3, 1, 3}, {5}) : ints({2, 0, 2, 1, 2}, {5});
    tg::Shape source_shape = {3, 3, 4};
    source_shape[std::size_t(dim)] = 5;
    CHECK_GRADCHECK([&](const Inputs& x) { return tg::index_add(x[0], dim, rows, x[1], 0.5); },
                    (Inputs{uniform64({3, 3, 4}), uniform64(source_shape)}));
  }
  CHECK_GRADCHECK([](const Inputs& x) { return tg::masked_fill(x[0], tg::gt(x[1].detach(), 0.0), 3.0); },
                  (Inputs{uniform64({2, 3, 4}), uniform64({3, 1})}));
  CHECK_GRADCHECK([](const Inputs& x) { return tg::masked_fill(x[0], tg::gt(tg::arange(0, 6).reshape({2, 1, 3}), 2.0).to(tg::kFloat64), -1.0); },
                  (Inputs{uniform64({4, 3})}));
}

TEST_CASE("repeated places: scatter's last write, scatter_add's and index_add's sums, the same bits at 1 and 2 threads") {
  tg::manual_seed(12);
  const Tensor a = tg::randn({64, 50});
  const Tensor src = tg::randn({64, 20000});
  const Tensor index = tg::randint(0, 50, {64, 20000});  // 400 entries a place, along dim 1
  const Tensor rows = tg::randint(0, 50, {20000});
  const Tensor source = tg::randn({20000, 50});
  const Tensor tall = tg::zeros({50, 50});
  auto run = [&](int threads) {
    tg::set_num_threads(threads);
    const Tensor s = src.detach().set_requires_grad();
    const Tensor t = source.detach().set_requires_grad();
    const Tensor added = tg::scatter_add(a, 1, index, s);
    const Tensor written = tg::scatter(a, 1, index, s);
    const Tensor indexed = tg::index_add(tall, 0, rows, t);
    (tg::sum(added * added) + tg::sum(written) + tg::sum(indexed * indexed)).backward();
    return std::vector<std::vector<float>>{added.to_vector<float>(), written.to_vector<float>(), indexed.to_vector<float>(),
                                           s.grad().to_vector<float>(), t.grad().to_vector<float>()};
  };
  const auto one = run(1), two = run(2);
  tg::set_num_threads(2);
  CHECK(one == two);
  // scatter: the last entry for a place (in index order along dim 1) is the one written.
  const std::vector<std::int64_t> at = index.to_vector<std::int64_t>();
  const std::vector<float> values = src.to_vector<float>(), before = a.to_vector<float>();
  std::vector<float> expected = before;
  for (std::size_t r = 0; r < 64; ++r)
    for (std::size_t j = 0; j < 20000; ++j) expected[r * 50 + std::size_t(at[r * 20000 + j])] = values[r * 20000 + j];
  CHECK(one[1] == expected);
  // scatter_add: within float32 rounding of the sums in double.
  std::vector<double> sums(before.begin(), before.end());
  for (std::size_t r = 0; r < 64; ++r)
    for (std::size_t j = 0; j < 20000; ++j) sums[r * 50 + std::size_t(at[r * 20000 + j])] += values[r * 20000 + j];
  for (std::size_t k = 0; k < sums.size(); ++k) CHECK(one[0][k] == doctest::Approx(sums[k]).epsilon(1e-4));
}

TEST_CASE("scatter family edges: int64 one-hot, 0-d, empty index, methods") {
  // One-hot rows from labels: zeros(N, C).scatter(1, labels.unsqueeze(1), 1), in int64 too.
  const Tensor labels = ints({2, 0, 3}, {3, 1});
  CHECK(tg::zeros({3, 4}, tg::kInt64).scatter(1, labels, 1.0).to_vector<std::int64_t>() ==
        std::vector<std::int64_t>{0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1});
  CHECK(tg::scatter_add(tg::zeros({4}, tg::kInt64), 0, ints({1, 1, 3}, {3}), ints({5, 6, 7}, {3})).to_vector<std::int64_t>() ==
        std::vector<std::int64_t>{0, 11, 0, 7});
  CHECK(tg::index_add(tg::ones({2, 2}, tg::kInt64), 1, ints({1, 1}, {2}), ints({1, 2, 3, 4}, {2, 2})).to_vector<std::int64_t>() ==
        std::vector<std::int64_t>{1, 4, 1, 8});
  // 0-d: one value along dim 0.
  const Tensor scalar = tg::full({}, 2.0, tg::kFloat64);
  CHECK(tg::scatter(scalar, 0, ints({0}, {}), 5.0).item() == 5.0);
  CHECK(tg::scatter_add(scalar, 0, ints({0}, {}), tg::full({}, 3.0, tg::kFloat64)).item() == 5.0);
  CHECK(tg::index_add(scalar, 0, ints({0}, {1}), tg::full({}, 3.0, tg::kFloat64)).item() == 5.0);
  // An empty index changes nothing; an empty input takes an empty index.
  const Tensor x = tg_test::seq({2, 3}, tg_test::sin_);
  CHECK(tg::scatter(x, 1, Tensor(std::vector<std::int64_t>{}, {2, 0}), 9.0).to_vector<double>() == x.to_vector<double>());
  CHECK(tg::index_add(x, 0, Tensor(std::vector<std::int64_t>{}, {0}), tg::zeros({0, 3}, tg::kFloat64)).to_vector<double>() ==
        x.to_vector<double>());
  CHECK(tg::scatter(tg::zeros({2, 0}), 1, Tensor(std::vector<std::int64_t>{}, {2, 0}), 1.0).numel() == 0);
  // The input is not changed.
  const Tensor kept = x.clone();
  (void)x.scatter(0, ints({1, 0, 1}, {1, 3}), -1.0).masked_fill(tg::gt(x, 0.0), 0.0);
  CHECK(x.to_vector<double>() == kept.to_vector<double>());
  // masked_fill: NaN in a float mask counts as set; a value of NaN or inf is written as it is.
  const std::vector<double> filled = tg::masked_fill(x, Tensor(std::vector<double>{NAN, 0, 1}, {3}), INFINITY).to_vector<double>();
  CHECK(filled[0] == INFINITY);
  CHECK(filled[1] == x.to_vector<double>()[1]);
}

TEST_CASE("scatter family errors name the op and the shapes, dtypes or entries") {
  const Tensor a = tg::zeros({3, 4});
  const Tensor src = tg::ones({3, 4});
  CHECK_THROWS_WITH_AS(tg::scatter(a, 1, src, src), doctest::Contains("scatter: expected an int64 index, got float32 [3, 4]"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::scatter(a, 1, ints({0, 1}, {2}), src),
                       doctest::Contains("scatter: index [2] must have as many dims as the input [3, 4]"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::scatter_add(a, 1, tg::zeros({4, 1}, tg::kInt64), tg::ones({4, 1})),
                       doctest::Contains("scatter_add: index [4, 1] is larger than the input [3, 4] in dim 0"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::scatter_add(a, 1, tg::zeros({3, 4}, tg::kInt64), tg::ones({3, 2})),
                       doctest::Contains("scatter_add: index [3, 4] is larger than src [3, 2] in dim 1"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::scatter(a, 1, ints({0, 4}, {1, 2}), src),
                       doctest::Contains("scatter: index 4 is out of range for dim 1 of size 4 in [3, 4]"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::scatter_add(a, 0, ints({-1}, {1, 1}), src),
                       doctest::Contains("scatter_add: index -1 is out of range for dim 0 of size 3"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::scatter(a, 2, tg::zeros({3, 4}, tg::kInt64), 1.0), doctest::Contains("scatter: dim 2 is out of range"),
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::scatter_add(a, 0, tg::zeros({3, 4}, tg::kInt64), tg::ones({3, 4}, tg::kFloat64)),
                       doctest::Contains("scatter_add: src must have the input's dtype float32, got float64"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::index_add(a, 0, ints({0, 3}, {2}), tg::ones({2, 4})),
                       doctest::Contains("index_add: index 3 is out of range for dim 0 of size 3 in [3, 4]"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::index_add(a, 0, ints({0, 1}, {2}), tg::ones({2, 5})),
                       doctest::Contains("index_add: source [2, 5] must be the input [3, 4] with 2 entries along dim 0 ([2, 4])"),
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::index_add(a, 0, ints({0, 1}, {1, 2}), tg::ones({2, 4})),
                       doctest::Contains("index_add: expected a 1-D int64 index, got int64 [1, 2]"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::index_add(tg::zeros({2}, tg::kInt64), 0, ints({0}, {1}), ints({1}, {1}), 2.0),
                       doctest::Contains("index_add: alpha 2 needs a floating-point input, got int64"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::masked_fill(a, tg::ones({2}), 0.0), doctest::Contains("masked_fill: shapes [3, 4] and [2] cannot be broadcast"),
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::masked_fill(tg::zeros({2}, tg::kInt64), tg::ones({2}), 0.0), doctest::Contains("masked_fill"), tg::Error);
  // The checks by chunks of entries, on gather's scalar path too (float64; an entry in the second
  // chunk of a row of 3000).
  std::vector<std::int64_t> far(3000, 1);
  far[2500] = 7;
  CHECK_THROWS_WITH_AS(tg::gather(tg::zeros({2, 4}, tg::kFloat64), 1, ints(far, {1, 3000})),
                       doctest::Contains("gather: index 7 is out of range for dim 1 of size 4 in [2, 4]"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::scatter_add(tg::zeros({2, 4}), 1, ints(far, {1, 3000}), tg::ones({1, 3000})),
                       doctest::Contains("scatter_add: index 7 is out of range for dim 1 of size 4 in [2, 4]"), tg::Error);
  // A failed scatter leaves nothing changed: the input is still zeros.
  CHECK(tg::sum(a).item() == 0.0);
}
