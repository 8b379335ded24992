// The Tensor vocabulary a PyTorch user types without looking: methods with dim/keepdim, single-int
// dims, scalar comparisons, indexing and slicing, split/chunk/masked_select, in-place arithmetic
// guarded by version counters, to_vector. Values, gradients (gradcheck) and errors.
#include "helpers.hpp"

using tg::Tensor;
using tg_test::check_close;
using tg_test::uniform64;
using Inputs = std::vector<Tensor>;

TEST_CASE("methods and free functions agree, with dim and keepdim, and single-int dims") {
  const Tensor x({{1.0, -2.0, 3.0}, {4.0, 5.0, -6.0}});
  check_close(x.sum(1), {2, 3});
  check_close(tg::sum(x, 1), {2, 3});
  CHECK(x.sum(1, true).shape() == tg::Shape{2, 1});
  CHECK(tg::sum(x, -1, true).shape() == tg::Shape{2, 1});
  check_close(x.sum({0, 1}), {5});
  check_close(x.mean(0), {2.5, 1.5, -1.5});
  check_close(tg::mean(x, 0), {2.5, 1.5, -1.5});
  check_close(x.var(1), {6.3333333, 37.0}, 1e-5);
  check_close(x.std(0, false), {1.5, 3.5, 4.5});
  check_close(x.logsumexp(1), {3.1328, 5.3133}, 1e-4);
  check_close(tg::logsumexp(x, 1), {3.1328, 5.3133}, 1e-4);
  check_close(x.abs(), {1, 2, 3, 4, 5, 6});
  check_close(x.clamp(-1.0, 2.0), {1, -1, 2, 2, 2, -1});
  check_close(x.pow(2.0), {1, 4, 9, 16, 25, 36});
  check_close(x.max(), {5});
  check_close(std::get<0>(x.max(1)), {3, 5});
  check_close(std::get<1>(x.min(1)), {1, 2});
  check_close(x.argmax(1), {2, 1});
  check_close(x.softmax(1).sum(1), {1, 1});
  check_close(x.relu(), {1, 0, 3, 4, 5, 0});
  check_close(x.t(), {1, 4, -2, 5, 3, -6});
  check_close(x.permute({1, 0}), {1, 4, -2, 5, 3, -6});
  CHECK(x.unsqueeze(0).shape() == tg::Shape{1, 2, 3});
  CHECK(x.unsqueeze(0).squeeze().shape() == tg::Shape{2, 3});
  CHECK(x.flatten().shape() == tg::Shape{6});
  CHECK(x.view({3, 2}).shape() == tg::Shape{3, 2});
  CHECK(x.expand({4, 2, 3}).shape() == tg::Shape{4, 2, 3});
  // One shape type: a tensor's shape() feeds reshape, view and expand directly.
  const Tensor y = tg::zeros({3, 2});
  CHECK(tg::reshape(x, y.shape()).shape() == tg::Shape{3, 2});
  CHECK(x.reshape(y.shape()).shape() == tg::Shape{3, 2});
  CHECK(tg::expand(tg::ones({1, 3}), x.shape()).shape() == x.shape());
  CHECK(x.to_vector<double>() == std::vector<double>{1, -2, 3, 4, 5, -6});
  CHECK(x.argmax(1).to_vector<std::int64_t>() == std::vector<std::int64_t>{2, 1});
}

TEST_CASE("scalar comparisons, as methods and free functions") {
  const Tensor x({1.0, 2.0, 3.0});
  check_close(x.eq(2.0), {0, 1, 0});
  check_close(tg::ne(x, 2.0), {1, 0, 1});
  check_close(x.lt(2.0), {1, 0, 0});
  check_close(tg::le(x, 2.0), {1, 1, 0});
  check_close(x.gt(2.0), {0, 0, 1});
  check_close(tg::ge(x, 2.0), {0, 1, 1});
  check_close(x.ge(Tensor({3.0, 2.0, 1.0})), {0, 1, 1});
  // As operators (libtorch's x > 0), a scalar on either side, and broadcast between tensors.
  const Tensor y({3.0, 2.0, 1.0});
  check_close(x == 2.0, {0, 1, 0});
  check_close(x != 2.0, {1, 0, 1});
  check_close(x < 2.0, {1, 0, 0});
  check_close(x <= 2.0, {1, 1, 0});
  check_close(x > 2.0, {0, 0, 1});
  check_close(x >= 2.0, {0, 1, 1});
  check_close(2.0 == x, {0, 1, 0});
  check_close(2.0 != x, {1, 0, 1});
  check_close(2.0 < x, {0, 0, 1});
  check_close(2.0 <= x, {0, 1, 1});
  check_close(2.0 > x, {1, 0, 0});
  check_close(2.0 >= x, {1, 1, 0});
  check_close(x == y, {0, 1, 0});
  check_close(x != y, {1, 0, 1});
  check_close(x < y, {1, 0, 0});
  check_close(x <= y, {1, 1, 0});
  check_close(x > y, {0, 0, 1});
  check_close(x >= y, {0, 1, 1});
  check_close(x.reshape({3, 1}) > y, {0, 0, 0, 0, 0, 1, 0, 1, 1});
  check_close(tg::where(x > 1.5, x, -x), {-1, 2, 3});
}

TEST_CASE("indexing, slicing, split, chunk and masked_select: values") {
  const Tensor x = tg::arange(12).reshape({3, 4});
  check_close(x[1], {4, 5, 6, 7});
  check_close(x[-1], {8, 9, 10, 11});
  check_close(x[1][2], {6});
  check_close(x.slice(1, 1, 4, 2), {1, 3, 5, 7, 9, 11});
  check_close(x.slice(0, -2, std::nullopt), {4, 5, 6, 7, 8, 9, 10, 11});
  check_close(x.narrow(1, 1, 2), {1, 2, 5, 6, 9, 10});
  check_close(x.index_select(1, Tensor(std::vector<std::int64_t>{3, 0}, {2})), {3, 0, 7, 4, 11, 8});
  check_close(x.masked_select(x.gt(6.0)), {7, 8, 9, 10, 11});
  check_close(tg::masked_select(x, Tensor({1.0, 0.0, 0.0, 1.0})), {0, 3, 4, 7, 8, 11});  // broadcast mask
  const std::vector<Tensor> parts = x.split(3, 1);
  REQUIRE(parts.size() == 2);
  CHECK(parts[0].shape() == tg::Shape{3, 3});
  CHECK(parts[1].shape() == tg::Shape{3, 1});
  const std::vector<Tensor> chunks = tg::chunk(tg::arange(5), 3);
  REQUIRE(chunks.size() == 3);  // sizes 2, 2, 1 as PyTorch
  check_close(chunks[2], {4});
  CHECK(tg::cat(x.chunk(2, 0), 0).to_vector<double>() == x.to_vector<double>());
  CHECK(tg::stack(x.split(1, 0), 0).shape() == tg::Shape{3, 1, 4});
}

// masked_select keeps its picked positions as bits, 16 to a word; float32 values with a float32
// mask go 16 at a time (compress, and expand for the gradient) on AVX-512, the rest bit by bit:
// masks all zero, all one, random at several densities, lengths around a word (15, 16, 17, 33)
// and long ones, ending on a kept or a dropped value, float32, int64 and float64 masks over
// float32 and float64 values, against a loop; the backward puts each gradient at its position and
// zero elsewhere. A mask's NaN counts as true and -0 as false (x != 0).
TEST_CASE("masked_select equals a loop over its mask at every density, forward and backward") {
  tg::manual_seed(12);
  for (const std::size_t n : {1, 2, 15, 16, 17, 33, 1000, 70001})
    for (const double density : {0.0, 0.03, 0.5, 0.97, 1.0})
      for (const tg::DType mask_dtype : {tg::kFloat32, tg::kInt64, tg::kFloat64})
        for (const tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
          INFO(n, " values, density ", density, " ", tg::dtype_name(mask_dtype), " mask, ", tg::dtype_name(dtype));
          const Tensor x = tg::randn({n}, dtype).set_requires_grad();
          const Tensor sign = tg::gt(tg::randn({n}, tg::kFloat64), 0.0) * 2.0 - 1.0;  // negative counts as true
          const Tensor mask = (tg::lt(tg::rand({n}, tg::kFloat64), density) * sign).to(mask_dtype);
          const std::vector<double> xs = tg_test::flat(x), ms = tg_test::flat(mask);
          std::vector<double> want;
          for (std::size_t i = 0; i < n; ++i)
            if (ms[i] != 0) want.push_back(xs[i]);
          const Tensor y = tg::masked_select(x, mask);
          REQUIRE(y.numel() == want.size());
          CHECK(y.dtype() == dtype);
          CHECK(tg_test::flat(y) == want);
          const Tensor g = tg::randn({want.size()}, dtype);
          (y * g).sum().backward();
          const std::vector<double> gs = tg_test::flat(g), dx = tg_test::flat(x.grad());
          std::size_t k = 0, wrong = 0;
          for (std::size_t i = 0; i < n; ++i) wrong += dx[i] != (ms[i] != 0 ? gs[k++] : 0.0);
          CHECK(wrong == 0);
        }
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  for (const tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
    const Tensor x = tg::arange(20.0, dtype).set_requires_grad();
    const Tensor m({nan, 0, 0, -0.0, 0, inf, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1e-40, 0, 0, -inf});  // 1e-40: a float32 subnormal
    const Tensor y = tg::masked_select(x, m.to(dtype));
    CHECK(y.to_vector<double>() == std::vector<double>{0, 5, 16, 19});
    y.sum().backward();
    CHECK(x.grad().to_vector<double>() ==
          std::vector<double>{1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1});
  }
}

TEST_CASE("gradcheck of the new differentiable forms") {
  auto check = [](auto fn, Inputs inputs) { CHECK_GRADCHECK(fn, std::move(inputs)); };
  check([](const Inputs& in) { return in[0][1]; }, {uniform64({3, 4})});
  check([](const Inputs& in) { return in[0].slice(1, 0, 4, 3); }, {uniform64({2, 5})});
  check([](const Inputs& in) { return in[0].masked_select(in[0].gt(0.0)); }, {uniform64({3, 4})});
  check([](const Inputs& in) { return tg::masked_select(in[0], Tensor({1.0, 0.0, 1.0}, tg::kFloat64)); }, {uniform64({2, 3})});
  check([](const Inputs& in) { return in[0].split(2, 1)[1] * 2.0; }, {uniform64({2, 5})});
  check([](const Inputs& in) { const auto c = in[0].chunk(3, 0); return c[0].sum() + c[2].sum() * 3.0; }, {uniform64({5, 2})});
  check([](const Inputs& in) { return in[0].logsumexp(1, true); }, {uniform64({3, 4})});
  check([](const Inputs& in) { return in[0].t().matmul(in[1]); }, {uniform64({3, 2}), uniform64({3, 4})});
  check([](const Inputs& in) { return in[0].var(0) + in[0].std(1).sum(); }, {uniform64({3, 4})});
  check([](const Inputs& in) { return in[0].view({6}).pow(3.0); }, {uniform64({2, 3})});
  // x += y on a non-leaf keeps the gradient flowing to both.
  check([](const Inputs& in) {
    Tensor h = in[0] * 2.0;
    h += in[1];
    h *= in[1];
    h -= 1.0;
    h /= 3.0;
    return h;
  }, {uniform64({2, 3}), uniform64({2, 3}, 0.5, 1.5)});
}

TEST_CASE("in-place arithmetic: values, history, version checks and errors") {
  Tensor a({1.0, 2.0});
  const Tensor alias = a;  // another handle on the same tensor sees the change
  a += Tensor({10.0, 20.0});
  a *= 2.0;
  a -= 1.0;
  a /= Tensor({1.0, 2.0});
  check_close(alias, {21, 21.5});
  CHECK(a.version() == 4);
  // Broadcasting that would change the shape is refused.
  CHECK_THROWS_WITH_AS(a += tg::ones({3, 2}), "add_: the result is float32 [3, 2] but the tensor is float32 [2] (an in-place "
                                              "op cannot change the shape or dtype)",
                       tg::Error);
  // A leaf that requires grad cannot be changed while recording, as in PyTorch; under NoGradGuard it can.
  Tensor w = Tensor({1.0, 2.0}).set_requires_grad();
  CHECK_THROWS_WITH_AS(w += 1.0, doctest::Contains("add_: a leaf tensor that requires grad (float32 [2]) cannot be changed "
                                                   "in place while gradients are recorded"),
                       tg::Error);
  {
    tg::NoGradGuard no_grad;
    w -= 0.5;
  }
  check_close(w, {0.5, 1.5});
  CHECK(w.is_leaf());
  // An op that saved the old values refuses to run its backward after the change.
  Tensor x = Tensor({1.0, 2.0}).set_requires_grad();
  Tensor h = x * 3.0;
  const Tensor y = (h * h).sum();  // mul saved h
  h += 1.0;
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("backward of mul: input 0 (float32 [2]) was modified in place"), tg::Error);
  // The new history of h is used by what comes after.
  tg::sum(h * 2.0).backward();
  check_close(x.grad(), {6, 6});
}

TEST_CASE("errors of the new forms name the op and the values") {
  const Tensor x = tg::zeros({3, 4});
  CHECK_THROWS_WITH_AS(x[3], doctest::Contains("select"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::zeros({2, 2, 2}).t(), "t: expects a tensor with at most 2 dims, got [2, 2, 2]", tg::Error);
  CHECK_THROWS_WITH_AS(x.split(0), "split: split_size must be positive, got 0", tg::Error);
  CHECK_THROWS_WITH_AS(x.chunk(-1), "chunk: chunks must be positive, got -1", tg::Error);
  CHECK_THROWS_WITH_AS(x.masked_select(tg::ones({2})),
                       "masked_select: shapes [3, 4] and [2] cannot be broadcast together (dim 1: 4 vs 2)", tg::Error);
  CHECK_THROWS_WITH_AS(x.sum(2), doctest::Contains("sum: dim 2 is out of range"), tg::Error);
}
