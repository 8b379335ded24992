// Empty tensors (a dim of size 0) and 0-d tensors through the ops, and the conventions PyTorch
// defines at those edges. A differential sweep against PyTorch 1.13 (5,000 random configurations:
// matmul ranks, broadcasting, reductions, shape ops, losses, activations, creation, convolution,
// pooling, normalisation) found each case below crashing, reading past a shape, or disagreeing;
// the expected values come from PyTorch, with the line that computes them beside each.
#include <cmath>
#include <limits>

#include "helpers.hpp"

using tg::Tensor;
using tg_test::check_close;
using tg_test::flat;

namespace {

// A tensor of `shape` whose gradient memory, if left unwritten, would hold NaN: the allocator's
// cache hands back blocks that held NaN just before.
void poison_cache(std::size_t numel) {
  for (int i = 0; i < 4; ++i) (void)tg::full({numel}, std::numeric_limits<double>::quiet_NaN(), tg::kFloat64);
}

Tensor leaf(const tg::Shape& shape) { return tg_test::uniform64(shape); }

}  // namespace

TEST_CASE("matmul with an empty m, k, n or batch gives PyTorch's shapes and zero gradients") {
  struct Case {
    tg::Shape a, b, out;
  };
  // torch.matmul(torch.ones(a), torch.ones(b)).shape for each
  const std::vector<Case> cases = {
      {{1, 3}, {2, 3, 0}, {2, 1, 0}},  {{2, 0}, {0, 3}, {2, 3}},       {{0, 3}, {3, 2}, {0, 2}},
      {{3}, {3, 0}, {0}},              {{0}, {0}, {}},                 {{2, 0, 3}, {3, 4}, {2, 0, 4}},
      {{1, 2, 3}, {0, 3, 4}, {0, 2, 4}}, {{0, 2, 3}, {1, 3, 4}, {0, 2, 4}}, {{2, 1, 2, 3}, {0, 3, 2}, {2, 0, 2, 2}},
      {{4, 0}, {3, 0, 5}, {3, 4, 5}}};
  for (const Case& c : cases) {
    INFO(tg::shape_str(c.a), " @ ", tg::shape_str(c.b));
    poison_cache(64);
    const Tensor a = leaf(c.a), b = leaf(c.b);
    const Tensor y = tg::matmul(a, b);
    CHECK(y.shape() == c.out);
    for (double v : flat(y)) CHECK(v == 0.0);  // a sum over an empty k
    tg::sum(y).backward();
    REQUIRE(a.grad().defined());
    REQUIRE(b.grad().defined());
    CHECK(a.grad().shape() == c.a);
    CHECK(b.grad().shape() == c.b);
    // A broadcast operand whose partner has no batches still gets a gradient: zeros.
    for (double v : flat(a.grad())) CHECK(v == 0.0);
    for (double v : flat(b.grad())) CHECK(v == 0.0);
  }
}

TEST_CASE("softmax, log_softmax and cross_entropy over tensors with an empty dim give empty results") {
  for (const tg::Shape& shape : std::vector<tg::Shape>{{0}, {2, 0}, {0, 3}, {3, 0, 2}, {2, 3, 0}, {0, 0, 4}})
    for (std::int64_t dim = -std::int64_t(shape.size()); dim < std::int64_t(shape.size()); ++dim)
      for (bool log : {false, true}) {
        INFO(tg::shape_str(shape), " dim ", dim, log ? " log_softmax" : " softmax");
        const Tensor x = leaf(shape);
        const Tensor y = log ? tg::log_softmax(x, dim) : tg::softmax(x, dim);
        CHECK(y.shape() == shape);
        tg::sum(y).backward();
        CHECK(x.grad().shape() == shape);
      }
  // (N, C, 0) logits and (N, 0) targets: no samples; the sum is 0, the mean 0/0.
  const Tensor logits = leaf({4, 3, 0});
  const Tensor targets = tg::zeros({4, 0}, tg::kInt64);
  tg::ClassLossOptions sum_options;
  sum_options.reduction = tg::Reduction::Sum;
  const Tensor total = tg::cross_entropy(logits, targets, sum_options);
  CHECK(total.item() == 0.0);
  total.backward();
  CHECK(logits.grad().shape() == tg::Shape{4, 3, 0});
  CHECK(std::isnan(tg::cross_entropy(logits, targets).item()));  // F.cross_entropy(...) is nan
}

TEST_CASE("batch_norm of an empty batch or of no channels is empty and leaves the running statistics") {
  for (const tg::Shape& shape : std::vector<tg::Shape>{{0, 3}, {0, 3, 4}, {2, 3, 0}, {2, 0}, {2, 0, 5}})
    for (bool training : {true, false}) {
      INFO(tg::shape_str(shape), training ? " training" : " eval");
      const std::size_t channels = shape[1];
      Tensor running_mean = tg::full({channels}, 0.5, tg::kFloat64);
      Tensor running_var = tg::full({channels}, 2.0, tg::kFloat64);
      const Tensor x = leaf(shape), weight = leaf({channels}), bias = leaf({channels});
      const Tensor y = tg::nn::functional::batch_norm(x, running_mean, running_var, weight, bias, training);
      CHECK(y.shape() == shape);
      tg::sum(y).backward();
      CHECK(x.grad().shape() == shape);
      REQUIRE(weight.grad().defined());  // zeros, as PyTorch's
      check_close(weight.grad(), std::vector<double>(channels, 0.0), 0.0);
      check_close(bias.grad(), std::vector<double>(channels, 0.0), 0.0);
      for (double v : flat(running_mean)) CHECK(v == 0.5);  // torch: unchanged for an empty batch
      for (double v : flat(running_var)) CHECK(v == 2.0);
    }
  // One value per channel is still PyTorch's error in training.
  CHECK_THROWS_WITH_AS(tg::nn::functional::batch_norm(leaf({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), true),
                       doctest::Contains("Expected more than 1 value per channel when training, got input size [1, 3]"),
                       tg::Error);
  // (The module on an empty batch: test_hostile.cpp's "empty dimensions" case.)
}

TEST_CASE("a convolution over zero input channels is its bias") {
  const Tensor x = leaf({2, 0, 3, 4}), weight = leaf({5, 0, 2, 2}), bias = leaf({5});
  tg::Conv2dParams params;
  params.padding = {1, 0};
  const Tensor y = tg::conv2d(x, weight, bias, params);
  REQUIRE(y.shape() == tg::Shape{2, 5, 4, 3});
  const std::vector<double> b = flat(bias), values = flat(y);
  for (std::size_t i = 0; i < values.size(); ++i) CHECK(values[i] == b[(i / 12) % 5]);
  tg::sum(y).backward();
  check_close(bias.grad(), std::vector<double>(5, 24.0), 0.0);
  CHECK(x.grad().shape() == x.shape());
  CHECK(weight.grad().shape() == weight.shape());
}

TEST_CASE("reductions over dim 0 or -1 of a 0-d tensor reduce its one value, as PyTorch's") {
  const Tensor x = Tensor(std::vector<double>{0.75}, {}).set_requires_grad();
  for (std::int64_t dim : {0, -1})
    for (bool keepdim : {false, true}) {
      INFO("dim ", dim, " keepdim ", keepdim);
      CHECK(tg::sum(x, {dim}, keepdim).item() == 0.75);
      CHECK(tg::sum(x, {dim}, keepdim).shape() == tg::Shape{});
      CHECK(tg::mean(x, {dim}, keepdim).item() == 0.75);  // was inf: a count read past the shape
      CHECK(tg::logsumexp(x, {dim}, keepdim).item() == 0.75);
      CHECK(tg::var(x, {dim}, false, keepdim).item() == 0.0);
      CHECK(tg::std(x, {dim}, false, keepdim).item() == 0.0);
      CHECK(std::isnan(tg::var(x, {dim}, true, keepdim).item()));  // torch.var(x, 0): nan
      CHECK(std::get<0>(tg::max(x, dim, keepdim)).item() == 0.75);
      CHECK(tg::argmax(x, dim, keepdim).item<std::int64_t>() == 0);
    }
  CHECK_THROWS_WITH_AS(tg::sum(x, {0, -1}), doctest::Contains("sum: dim -1 appears more than once"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::mean(x, {1}), doctest::Contains("mean: dim 1 is out of range for a 0D tensor"), tg::Error);
  const Tensor m = tg::mean(x, {0});
  m.backward();
  CHECK(x.grad().item() == 1.0);
}

TEST_CASE("var and std divide by max(0, n - correction): NaN for one value unbiased and for no values") {
  // x = torch.tensor([[1., 2., 4.]], dtype=torch.float64)
  const Tensor x = Tensor(std::vector<double>{1.0, 2.0, 4.0}, {1, 3}).set_requires_grad();
  CHECK(tg::var(x, {1}).item() == doctest::Approx(7.0 / 3.0).epsilon(1e-15));  // torch.var(x, 1)
  for (double v : flat(tg::var(x, {0}))) CHECK(std::isnan(v));                  // torch.var(x, 0): nan ×3
  for (double v : flat(tg::std(x, {0}))) CHECK(std::isnan(v));
  const Tensor empty = tg::zeros({0, 3}, tg::kFloat64);
  for (bool unbiased : {false, true})  // torch.var(torch.zeros(0, 3), 0, unbiased=...): nan ×3 (was -0 and -inf)
    for (double v : flat(tg::var(empty, {0}, unbiased))) CHECK(std::isnan(v));
  // The gradient of one value's unbiased variance is 2·(x - mean)/0 = 0/0: NaN, as PyTorch's for
  // a 1-D input (its 0-d input gives ±inf instead: VarBackward0 on a 0-d tensor).
  tg::sum(tg::var(x, {0})).backward();
  for (double v : flat(x.grad())) CHECK(std::isnan(v));
}

TEST_CASE("permute, transpose and index_select of a 0-d tensor follow PyTorch") {
  const Tensor x = Tensor(std::vector<double>{-1.5}, {}).set_requires_grad();
  const Tensor t = tg::transpose(x, 0, -1);  // was a crash: a loop over rank - 1 dims of a rank-0 tensor
  CHECK(t.shape() == tg::Shape{});
  CHECK(t.item() == -1.5);
  CHECK(tg::permute(x, {}).item() == -1.5);
  tg::sum(t * 3.0).backward();
  CHECK(x.grad().item() == 3.0);
  // torch.index_select(x, 0, torch.tensor([0])): tensor(-1.5), 0-d; with no index: tensor(0.)
  const Tensor one = tg::index_select(x, 0, Tensor(std::vector<std::int64_t>{0}, {1}));
  CHECK(one.shape() == tg::Shape{});
  CHECK(one.item() == -1.5);
  CHECK(tg::index_select(x, -1, Tensor(std::vector<std::int64_t>{0}, {})).item() == -1.5);
  const Tensor none = tg::index_select(x, 0, tg::zeros({0}, tg::kInt64));
  CHECK(none.shape() == tg::Shape{});
  CHECK(none.item() == 0.0);
  CHECK_THROWS_WITH_AS(tg::index_select(x, 0, Tensor(std::vector<std::int64_t>{1}, {1})),
                       doctest::Contains("index_select: index 1 is out of range for dim 0 of size 1 in []"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::index_select(x, 0, tg::zeros({2}, tg::kInt64)),
                       doctest::Contains("index_select: a 0-d input takes an index of at most one element, got [2]"),
                       tg::Error);
}

TEST_CASE("narrow, select, slice, split, chunk, cat and size refuse a 0-d tensor by name, as PyTorch's") {
  const Tensor x = Tensor(std::vector<double>{2.0}, {});
  auto refuses = [](const char* op, auto&& call) {
    INFO(op);
    const std::string message = std::string(op) + ": cannot be applied to a 0-d tensor (shape [])";
    CHECK_THROWS_WITH_AS(call(), doctest::Contains(message.c_str()),
                         tg::Error);
  };
  refuses("narrow", [&] { (void)tg::narrow(x, 0, 0, 1); });
  refuses("select", [&] { (void)tg::select(x, 0, 0); });
  refuses("slice", [&] { (void)tg::slice(x, -1, 0, 1); });
  refuses("split", [&] { (void)tg::split(x, 1, 0); });
  refuses("chunk", [&] { (void)tg::chunk(x, 2, 0); });
  refuses("size", [&] { (void)x.size(0); });
  CHECK_THROWS_WITH_AS(tg::cat({tg::ones({2}), x}, 0),
                       doctest::Contains("cat: a 0-d tensor (at position 1) cannot be concatenated"), tg::Error);
  CHECK(tg::stack({x, x}, 0).shape() == tg::Shape{2});  // stack takes them: torch.stack([x, x]).shape == (2,)
}

TEST_CASE("PyTorch's conventions at the edges: argmax keepdim, linspace, chunk, padding_idx, masked_select, "
          "softplus, pooling") {
  // torch.argmax(torch.tensor([[1., 5., 2.], [7., 0., 3.]]), keepdim=True): tensor([[3]])
  const Tensor a = Tensor(std::vector<double>{1, 5, 2, 7, 0, 3}, {2, 3});
  CHECK(tg::argmax(a, std::nullopt, true).shape() == tg::Shape{1, 1});
  CHECK(tg::argmax(a, std::nullopt, true).item<std::int64_t>() == 3);
  CHECK(tg::argmin(a, std::nullopt, true).shape() == tg::Shape{1, 1});
  CHECK(tg::argmax(a).shape() == tg::Shape{});

  // torch.linspace(2.5, 7, 1): tensor([2.5]) (was 7: the end)
  check_close(tg::linspace(2.5, 7.0, 1), {2.5}, 0.0);
  check_close(tg::linspace(-1.0, 3.0, 2, tg::kFloat64), {-1.0, 3.0}, 0.0);

  // torch.chunk(torch.ones(2, 0), 3, 1): three pieces of shape (2, 0)
  const std::vector<Tensor> pieces = tg::chunk(tg::ones({2, 0}), 3, 1);
  REQUIRE(pieces.size() == 3);
  for (const Tensor& p : pieces) CHECK(p.shape() == tg::Shape{2, 0});
  CHECK(tg::chunk(tg::ones({5}), 3).size() == 3);  // sizes 2, 2, 1
  CHECK(tg::chunk(tg::ones({6}), 4).size() == 3);  // sizes 2, 2, 2, as PyTorch's

  // F.embedding(torch.tensor([[3, 1], [3, 0]]), w, padding_idx=-1) with w = arange(12).reshape(4, 3):
  // row 3 is the padding row, and gets no gradient.
  const Tensor w = tg::arange(12.0, tg::kFloat64).reshape({4, 3}).set_requires_grad();
  const Tensor e = tg::embedding(Tensor(std::vector<std::int64_t>{3, 1, 3, 0}, {2, 2}), w, -1);
  check_close(e, {9, 10, 11, 3, 4, 5, 9, 10, 11, 0, 1, 2}, 0.0);
  tg::sum(e).backward();
  check_close(w.grad(), {1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0}, 0.0);
  CHECK_THROWS_WITH_AS(tg::embedding(tg::zeros({1}, tg::kInt64), w, -5),
                       doctest::Contains("embedding: padding_idx -5 is outside [-4, 4)"), tg::Error);

  // torch.masked_select(a, m) with a (1, 3) and m (2, 3): both broadcast; a's gradient sums.
  const Tensor input = Tensor(std::vector<double>{1, 2, 3}, {1, 3}).set_requires_grad();
  const Tensor mask = Tensor(std::vector<double>{1, 0, 1, 0, 1, 1}, {2, 3});
  const Tensor picked = tg::masked_select(input, mask);
  check_close(picked, {1, 3, 2, 3}, 0.0);
  tg::sum(picked * Tensor(std::vector<double>{1, 2, 3, 4}, {4})).backward();
  check_close(input.grad(), {1, 3, 6}, 0.0);
  CHECK_THROWS_WITH_AS(tg::masked_select(input, tg::ones({2, 2})),
                       "masked_select: shapes [1, 3] and [2, 2] cannot be broadcast together (dim 1: 3 vs 2)",
                       tg::Error);

  // F.softplus(z, beta, 1.0) for z = [-1, 0.5, 3]: PyTorch takes any beta.
  const Tensor z = Tensor(std::vector<double>{-1.0, 0.5, 3.0}, {3}).set_requires_grad();
  const Tensor soft = tg::softplus(z, -2.0, 1.0);
  check_close(soft, {-1.0, -0.15663084375911143, -0.00123784256886522}, 1e-15);
  tg::sum(soft).backward();
  check_close(z.grad(), {1.0, 0.26894142136999510, 0.00247262315663477}, 1e-15);
  for (double v : flat(tg::softplus(z.detach(), 0.0, 1.0))) CHECK(v == std::numeric_limits<double>::infinity());

  // A ceil-mode window may overhang an input smaller than the kernel:
  // F.avg_pool1d(p, 3, 2, 0, True, True) with p = [[[1., -2.]]]: [[[-0.5]]], gradient [0.5, 0.5];
  // F.max_pool1d(p, 3, 2, 0, 1, True): [[[1.]]]
  const Tensor p = Tensor(std::vector<double>{1.0, -2.0}, {1, 1, 2}).set_requires_grad();
  const Tensor avg = tg::avg_pool1d(p, 3, 2, 0, true, true);
  check_close(avg, {-0.5}, 0.0);
  tg::sum(avg).backward();
  check_close(p.grad(), {0.5, 0.5}, 0.0);
  check_close(tg::max_pool1d(p, 3, 2, 0, 1, true), {1.0}, 0.0);
  // F.avg_pool1d([[[1., -2., 5.]]], 4, 2, 1, True, False): [[[4/3, 1.5]]]
  check_close(tg::avg_pool1d(Tensor(std::vector<double>{1.0, -2.0, 5.0}, {1, 1, 3}), 4, 2, 1, true, false),
              {4.0 / 3.0, 1.5}, 1e-15);
  // Without ceil_mode it is still an error, and with it when no window is left:
  // F.avg_pool1d(torch.ones(1, 1, 2), 3, 1, 0, True): "Output size is too small"
  CHECK_THROWS_WITH_AS(tg::avg_pool1d(p, 3, 2, 0, false), doctest::Contains("is smaller than the kernel (3"),
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::avg_pool1d(p, 3, 1, 0, true), doctest::Contains("is smaller than the kernel (3"), tg::Error);
  // F.adaptive_avg_pool1d(torch.ones(2, 2, 3), 0).shape == (2, 2, 0)
  CHECK(tg::adaptive_avg_pool1d(tg::ones({2, 2, 3}), 0).shape() == tg::Shape{2, 2, 0});
}

TEST_CASE("sum counts int64 values over any dims, in int64, as PyTorch's; mean refuses them by name") {
  // p = torch.tensor([[1, 2, 0], [2, 2, 1]]); y = torch.tensor([[1, 0, 0], [2, 2, 2]])
  const Tensor predicted = Tensor(std::vector<std::int64_t>{1, 2, 0, 2, 2, 1}, {2, 3});
  const Tensor labels = Tensor(std::vector<std::int64_t>{1, 0, 0, 2, 2, 2}, {2, 3});
  const Tensor right = tg::sum(tg::eq(predicted, labels));  // (p == y).sum(): tensor(4), int64
  CHECK(right.dtype() == tg::kInt64);
  CHECK(right.shape() == tg::Shape{});
  CHECK(right.item<std::int64_t>() == 4);
  // p.sum(0), p.sum(1, keepdim=True), p.sum([0, 1]), p.sum(-1) over a (2, 0, 3) empty tensor
  CHECK(tg::sum(predicted, {0}).values<std::int64_t>() == xt::xarray<std::int64_t>{3, 4, 1});
  const Tensor rows = tg::sum(predicted, {1}, true);
  CHECK(rows.shape() == tg::Shape{2, 1});
  CHECK(tg_test::flat(rows) == std::vector<double>{3, 5});
  CHECK(tg::sum(predicted, {0, 1}).item<std::int64_t>() == 8);
  CHECK(predicted.sum(-1).values<std::int64_t>() == xt::xarray<std::int64_t>{3, 5});
  const Tensor empty = tg::sum(tg::zeros({2, 0, 3}, tg::kInt64), {1});
  CHECK(empty.shape() == tg::Shape{2, 3});
  CHECK(empty.values<std::int64_t>() == xt::zeros<std::int64_t>({2, 3}));
  CHECK(tg::sum(Tensor(std::vector<std::int64_t>{-7}, {}), {0}).item<std::int64_t>() == -7);
  // A long count, past float32's exact integers: 2^25 ones and one more.
  CHECK(tg::sum(tg::ones({(1u << 25) + 1}).to(tg::kInt64)).item<std::int64_t>() == (1 << 25) + 1);
  CHECK_THROWS_WITH_AS(tg::mean(labels), doctest::Contains("mean: expected a floating-point tensor, got int64 [2, 3]"),
                       tg::Error);
}

// max over a dim of a tensor with another dim empty divided by that dim's size (SIGFPE); its
// result is empty, as PyTorch's: torch.zeros(2, 3, 0).max(1).values.shape == (2, 0).
TEST_CASE("max, min and argmax over a dim take a tensor empty in another dim") {
  tg::Tensor x = tg::zeros({2, 3, 0}).set_requires_grad();
  const auto [values, indices] = tg::max(x, 1);
  CHECK(values.shape() == tg::Shape{2, 0});
  CHECK(indices.shape() == tg::Shape{2, 0});
  CHECK(std::get<0>(tg::min(x, 0, true)).shape() == tg::Shape{1, 3, 0});
  CHECK(tg::argmax(x, 0).shape() == tg::Shape{3, 0});
  tg::sum(values).backward();
  CHECK(x.grad().shape() == tg::Shape{2, 3, 0});
}
