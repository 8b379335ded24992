// Losses: PyTorch golden values, gradcheck of every loss, and bad input.
#include "helpers.hpp"

using tg::Tensor;
using tg::Reduction;
using tg_test::check_close;
using tg_test::uniform64;
using Inputs = std::vector<Tensor>;

namespace {

// Golden values from PyTorch 1.13 (/usr/bin/python3), float64:
//   x = torch.tensor([[1.0, 2.0, 0.5], [-1.0, 0.3, 2.2], [0.0, 0.1, -0.4], [3.0, -2.0, 1.0]])
//   y = torch.tensor([2, 0, 1, 0]);  w = torch.tensor([0.2, 1.0, 3.0])
//   F.cross_entropy(x, y, **kw) for kw in [{}, {weight: w}, {label_smoothing: 0.1},
//     {weight: w, label_smoothing: 0.2}, {reduction: 'sum', weight: w, label_smoothing: 0.2},
//     {reduction: 'none', label_smoothing: 0.3, weight: w}, {ignore_index: 0, weight: w}]
//   F.nll_loss(torch.log_softmax(x, 1), y, weight=w), F.nll_loss(..., reduction='sum')
//   p = [0.1, 0.9, 0.5, 0.0, 1.0]; t = [0, 1, 1, 1, 0]: F.binary_cross_entropy(p, t) (mean, none)
//   z = [-100, -2, 0, 3, 100]: F.binary_cross_entropy_with_logits(z, t), and with pos_weight=2, 'none'
//   a = [0, 0.5, 2, -3]; b = [0.2, 0, 0, 0]: F.smooth_l1_loss(a, b), (beta=0.5, 'none'),
//   F.l1_loss(a, b), F.mse_loss(a, b, reduction='sum')
Tensor logits() { return Tensor({{1.0, 2.0, 0.5}, {-1.0, 0.3, 2.2}, {0.0, 0.1, -0.4}, {3.0, -2.0, 1.0}}, tg::kFloat64); }
Tensor labels() { return Tensor(std::vector<std::int64_t>{2, 0, 1, 0}, {4}); }
Tensor class_weights() { return Tensor({0.2, 1.0, 3.0}, tg::kFloat64); }

tg::ClassLossOptions with(Tensor weight, double smoothing, Reduction reduction = Reduction::Mean,
                          std::int64_t ignore = -100) {
  tg::ClassLossOptions o;
  o.weight = weight;
  o.label_smoothing = smoothing;
  o.reduction = reduction;
  o.ignore_index = ignore;
  return o;
}

}  // namespace

TEST_CASE("cross_entropy matches PyTorch with weights, label smoothing, reductions and ignore_index") {
  const Tensor x = logits(), y = labels(), w = class_weights();
  check_close(tg::cross_entropy(x, y), {1.598068236141637}, 1e-12);
  check_close(tg::cross_entropy(x, y, with(w, 0)), {1.7080339338314006}, 1e-12);
  check_close(tg::cross_entropy(x, y, with(Tensor(), 0.1)), {1.6072349028083037}, 1e-12);
  check_close(tg::cross_entropy(x, y, with(w, 0.2)), {1.7735111829314767}, 1e-12);
  check_close(tg::cross_entropy(x, y, with(w, 0.2, Reduction::Sum)), {7.803449204898498}, 1e-12);
  check_close(tg::cross_entropy(x, y, with(w, 0.3, Reduction::None)),
              {4.790209335952021, 0.7995695118595498, 1.1833269742196504, 1.1743933308874421}, 1e-12);
  check_close(tg::cross_entropy(x, y, with(w, 0, Reduction::Mean, 0)), {1.7034835019692736}, 1e-12);
  // The module is the function.
  tg::nn::CrossEntropyLoss loss(with(w, 0.2));
  check_close(loss(x, y), {1.7735111829314767}, 1e-12);
}

TEST_CASE("nll, binary and regression losses match PyTorch") {
  const Tensor lp = tg::log_softmax(logits(), 1);
  check_close(tg::nll_loss(lp, labels(), with(class_weights(), 0)), {1.7080339338314006}, 1e-12);
  check_close(tg::nll_loss(lp, labels(), with(Tensor(), 0, Reduction::Sum)), {6.392272944566548}, 1e-12);
  const Tensor p({0.1, 0.9, 0.5, 0.0, 1.0}, tg::kFloat64), t({0.0, 1.0, 1.0, 1.0, 0.0}, tg::kFloat64);
  check_close(tg::binary_cross_entropy(p, t), {40.180773642375115}, 1e-12);
  check_close(tg::binary_cross_entropy(p, t, Reduction::None),
              {0.10536051565782628, 0.10536051565782628, 0.6931471805599453, 100.0, 100.0}, 1e-12);
  const Tensor z({-100.0, -2.0, 0.0, 3.0, 100.0}, tg::kFloat64);
  check_close(tg::binary_cross_entropy_with_logits(z, t), {20.573732508635334}, 1e-12);
  check_close(tg::binary_cross_entropy_with_logits(z, t, Reduction::None, Tensor(), tg::full({5}, 2.0, tg::kFloat64)),
              {0.0, 4.253856022085945, 1.3862943611198906, 0.09717470314748393, 100.0}, 1e-12);
  const Tensor a({0.0, 0.5, 2.0, -3.0}, tg::kFloat64), b({0.2, 0.0, 0.0, 0.0}, tg::kFloat64);
  check_close(tg::smooth_l1_loss(a, b), {1.03625}, 1e-12);
  check_close(tg::smooth_l1_loss(a, b, Reduction::None, 0.5), {0.04, 0.25, 1.75, 2.75}, 1e-12);
  check_close(tg::l1_loss(a, b), {1.425}, 1e-12);
  check_close(tg::mse_loss(a, b, Reduction::Sum), {13.29}, 1e-12);
  check_close(tg::nn::MSELoss(Reduction::Sum)(a, b), {13.29}, 1e-12);
}

TEST_CASE("cross_entropy is stable for huge logits") {
  const Tensor x({{1000.0, -1000.0}, {-5e4, 5e4}});
  const Tensor loss = tg::cross_entropy(x, Tensor(std::vector<std::int64_t>{0, 0}, {2}), with(Tensor(), 0, Reduction::None));
  check_close(loss, {0.0, 1e5}, 1e-2);
}

TEST_CASE("gradcheck of every loss") {
  tg::manual_seed(21);
  const Tensor y = labels(), w = class_weights();
  auto ce = [&](tg::ClassLossOptions o) { return [o, &y](const Inputs& in) { return tg::cross_entropy(in[0], y, o); }; };
  CHECK_GRADCHECK(ce({}), {uniform64({4, 3}, -2, 2)});
  CHECK_GRADCHECK(ce(with(w, 0.2)), {uniform64({4, 3}, -2, 2)});
  CHECK_GRADCHECK(ce(with(w, 0.3, Reduction::None)), {uniform64({4, 3}, -2, 2)});
  CHECK_GRADCHECK(ce(with(w, 0.1, Reduction::Sum, 0)), {uniform64({4, 3}, -2, 2)});
  CHECK_GRADCHECK([](const Inputs& in) { return tg::cross_entropy(in[0], Tensor(std::vector<std::int64_t>{1}, {})); },
                  {uniform64({3}, -2, 2)});
  CHECK_GRADCHECK([&](const Inputs& in) { return tg::nll_loss(in[0], y, with(w, 0)); }, {uniform64({4, 3})});
  CHECK_GRADCHECK([&](const Inputs& in) { return tg::nll_loss(in[0], y, with(Tensor(), 0, Reduction::None)); },
                  {uniform64({4, 3})});
  const Tensor t = tg::rand({6}, tg::kFloat64);
  CHECK_GRADCHECK([&](const Inputs& in) { return tg::binary_cross_entropy(in[0], t); }, {uniform64({6}, 0.05, 0.95)});
  CHECK_GRADCHECK([&](const Inputs& in) { return tg::binary_cross_entropy(in[0], in[1], Reduction::Sum); },
                  {uniform64({6}, 0.05, 0.95), uniform64({6}, 0, 1)});
  CHECK_GRADCHECK([&](const Inputs& in) { return tg::binary_cross_entropy_with_logits(in[0], in[1]); },
                  {uniform64({6}, -4, 4), uniform64({6}, 0, 1)});
  CHECK_GRADCHECK([&](const Inputs& in) {
    return tg::binary_cross_entropy_with_logits(in[0], t, Reduction::None, Tensor(), in[1]);
  }, {uniform64({6}, -4, 4), uniform64({6}, 0.5, 3)});
  CHECK_GRADCHECK([&](const Inputs& in) { return tg::binary_cross_entropy_with_logits(in[0], t); },
                  {tg::zeros({6}, tg::kFloat64).set_requires_grad()});  // exactly at the kink
  CHECK_GRADCHECK([](const Inputs& in) { return tg::mse_loss(in[0], in[1]); }, {uniform64({2, 3}), uniform64({2, 3})});
  CHECK_GRADCHECK([](const Inputs& in) { return tg::l1_loss(in[0], in[1], Reduction::Sum); },
                  {uniform64({5}, 1, 2), uniform64({5}, -1, 0)});
  CHECK_GRADCHECK([](const Inputs& in) { return tg::smooth_l1_loss(in[0], in[1], Reduction::None, 0.7); },
                  {uniform64({8}, -2, 2), uniform64({8}, -0.2, 0.2)});
}

TEST_CASE("loss input errors name the loss and the values") {
  const Tensor x = logits();
  CHECK_THROWS_WITH_AS(tg::cross_entropy(x, Tensor(std::vector<std::int64_t>{2, 0, 3, 0}, {4})),
                       "cross_entropy: target 3 is out of range for 3 classes (sample 2)", tg::Error);
  CHECK_THROWS_WITH_AS(tg::cross_entropy(x, Tensor(std::vector<std::int64_t>{-1, 0, 1, 0}, {4})),
                       "cross_entropy: target -1 is out of range for 3 classes (sample 0)", tg::Error);
  CHECK_THROWS_WITH_AS(tg::cross_entropy(x, Tensor({2, 0, 1, 0})),
                       "cross_entropy: expected int64 class indices as target, got float32 [4]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::nll_loss(x, Tensor(std::vector<std::int64_t>{0, 1}, {2})),
                       "nll_loss: target [2] does not match input [4, 3] (expected target [4])", tg::Error);
  CHECK_THROWS_WITH_AS(tg::cross_entropy(x, labels(), with(Tensor({1.0, 2.0}, tg::kFloat64), 0)),
                       "cross_entropy: weight [2] must have one entry per class (3)", tg::Error);
  CHECK_THROWS_WITH_AS(tg::mse_loss(tg::zeros({2, 3}), tg::zeros({3})),
                       "mse_loss: input [2, 3] and target [3] must have the same shape", tg::Error);
  CHECK_THROWS_WITH_AS(tg::binary_cross_entropy(Tensor({1.5}), Tensor({1.0})),
                       doctest::Contains("binary_cross_entropy: input values must be in [0, 1], got 1.5"), tg::Error);
}
