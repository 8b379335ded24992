// Losses: PyTorch golden values, gradcheck of every loss, and bad input.
#include "helpers.hpp"

#include <limits>
#include <numbers>
#include <sstream>

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
  // The target's probability underflows in float32 (e^-200), its log does not; the gradient is
  // p - onehot from the stored probabilities; with label smoothing the other classes' logs too.
  const Tensor y = Tensor({{0.0, -200.0, -90.0}}).set_requires_grad();
  const Tensor target(std::vector<std::int64_t>{1}, {1});
  tg::cross_entropy(y, target).backward();
  check_close(tg::cross_entropy(y, target), {200.0}, 1e-3);
  check_close(y.grad(), {1.0, -1.0, 0.0}, 1e-6);
  // (1 - 0.3)·200 + 0.3/3·(0 + 200 + 90), PyTorch's formula.
  check_close(tg::cross_entropy(y, target, with(Tensor(), 0.3, Reduction::Mean)), {169.0}, 1e-3);
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
  // classes at dim 1 of (N, C, d1) and (N, C, d1, d2): the column kernel
  const Tensor y3 = tg::randint(0, 3, {2, 5}), y4 = tg::randint(0, 3, {2, 2, 3});
  CHECK_GRADCHECK([&](const Inputs& in) { return tg::cross_entropy(in[0], y3); }, {uniform64({2, 3, 5}, -2, 2)});
  CHECK_GRADCHECK([&](const Inputs& in) { return tg::cross_entropy(in[0], y3, with(w, 0, Reduction::None, 0)); },
                  {uniform64({2, 3, 5}, -2, 2)});
  CHECK_GRADCHECK([&](const Inputs& in) { return tg::cross_entropy(in[0], y4, with(w, 0, Reduction::Sum)); },
                  {uniform64({2, 3, 2, 3}, -2, 2)});
  CHECK_GRADCHECK([&](const Inputs& in) { return tg::cross_entropy(in[0], y3, with(w, 0.2, Reduction::Mean, 1)); },
                  {uniform64({2, 3, 5}, -2, 2)});  // smoothed, weighted, class 1 ignored
  CHECK_GRADCHECK([&](const Inputs& in) { return tg::cross_entropy(in[0], y4, with(Tensor(), 0.3, Reduction::None)); },
                  {uniform64({2, 3, 2, 3}, -2, 2)});
  CHECK_GRADCHECK([&](const Inputs& in) { return tg::nll_loss(in[0], y, with(w, 0)); }, {uniform64({4, 3})});
  CHECK_GRADCHECK([&](const Inputs& in) { return tg::nll_loss(in[0], y, with(Tensor(), 0, Reduction::None)); },
                  {uniform64({4, 3})});
  // class probabilities, one fused node: the input, the target and the weight, over rows and columns
  auto soft = [](double eps, Reduction r) {
    return [eps, r](const Inputs& in) { return tg::cross_entropy(in[0], in[1], with(in[2], eps, r)); };
  };
  CHECK_GRADCHECK(soft(0.1, Reduction::Mean), {uniform64({3, 4}, -2, 2), uniform64({3, 4}, 0, 1), uniform64({4}, 0.5, 2)});
  CHECK_GRADCHECK(soft(0, Reduction::None), {uniform64({4}, -2, 2), uniform64({4}, 0, 1), uniform64({4}, 0.5, 2)});
  CHECK_GRADCHECK(soft(0.2, Reduction::None),
                  {uniform64({2, 3, 5}, -2, 2), uniform64({2, 3, 5}, 0, 1), uniform64({3}, 0.5, 2)});
  CHECK_GRADCHECK(soft(0, Reduction::Sum),
                  {uniform64({2, 3, 2, 3}, -2, 2), uniform64({2, 3, 2, 3}, 0, 1), uniform64({3}, 0.5, 2)});
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
  CHECK_GRADCHECK([](const Inputs& in) { return tg::mse_loss(in[0], in[1], Reduction::Sum); }, {uniform64({3, 2}), uniform64({3, 2})});
  CHECK(std::isnan(tg::mse_loss(tg::zeros({0}), tg::zeros({0})).item()));
  CHECK(tg::mse_loss(tg::zeros({0}), tg::zeros({0}), Reduction::Sum).item() == 0.0);
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
                       "cross_entropy: a floating-point target is read as class probabilities and must have the input's shape [4, 3], got float32 [4] (class indices must be int64)", tg::Error);
  CHECK_THROWS_WITH_AS(tg::nll_loss(x, Tensor(std::vector<std::int64_t>{0, 1}, {2})),
                       "nll_loss: target [2] does not match input [4, 3] (expected target [4])", tg::Error);
  CHECK_THROWS_WITH_AS(tg::cross_entropy(x, labels(), with(Tensor({1.0, 2.0}, tg::kFloat64), 0)),
                       "cross_entropy: weight [2] must have one entry per class (3)", tg::Error);
  CHECK_THROWS_WITH_AS(tg::mse_loss(tg::zeros({2, 3}), tg::zeros({3})),
                       "mse_loss: input [2, 3] and target [3] must have the same shape", tg::Error);
  CHECK_THROWS_WITH_AS(tg::binary_cross_entropy(Tensor({1.5}), Tensor({1.0})),
                       doctest::Contains("binary_cross_entropy: input values must be in [0, 1], got 1.5"), tg::Error);
  // The first value outside [0, 1] of a long input is the one named; NaN is outside.
  for (const tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
    std::vector<double> p(100'003, 0.5);
    p[77'777] = 1.25;
    p[88'888] = -2.0;
    auto bce = [&] {
      return tg::binary_cross_entropy(Tensor(p, {p.size()}).to(dtype), tg::full({p.size()}, 0.5, dtype));
    };
    CHECK_THROWS_WITH_AS(bce(), doctest::Contains("must be in [0, 1], got 1.25 (apply sigmoid"), tg::Error);
    p[77'777] = std::nan("");
    CHECK_THROWS_WITH_AS(bce(), doctest::Contains("must be in [0, 1], got nan"), tg::Error);
    p[77'777] = 1.0;
    p[88'888] = 0.0;
    CHECK_NOTHROW(bce());
  }
}

// ---- PyTorch golden values for the losses and forms added later -------------------------------
// Generated with PyTorch 1.13 (/usr/bin/python3); d = torch.float64:
//   p = tensor([0, 1, 0, 1, 0.25, 1], dtype=dt, requires_grad=True); y = tensor([0, 1, 1, 0, 0.5, 0.75], dtype=dt)
//   F.binary_cross_entropy(p, y).backward(); p.grad                               (dt = float32, float64)
//   x = logits(); q = tensor([[0.2, 0.3, 0.5], [1, 0, 0], [0, 0.5, 0.5], [0.1, 0.1, 0.8]]); w = class_weights()
//   F.cross_entropy(x, q, **kw).sum().backward() for kw in [{}, {weight: w}, {label_smoothing: 0.1},
//     {weight: w, label_smoothing: 0.2, reduction: 'sum'}, {weight: w, reduction: 'none'}]
//   x4 = tensor([[[[0.1 * (i + 2*j + 3*c + 5*n) - 0.7 * ((i*j + c) % 3) for j in range(3)] for i in range(2)]
//                 for c in range(3)] for n in range(2)]);  y4 = tensor([[[0, 1, 2], [2, 1, 0]], [[1, 1, 0], [2, 0, 1]]])
//   F.cross_entropy(x4, y4, **kw) for kw in [{}, {weight: w}, {weight: w, ignore_index: 1},
//     {label_smoothing: 0.2, reduction: 'sum'}, {reduction: 'none', weight: w}]
//   F.nll_loss(torch.log_softmax(x4, 1), y4, weight=w, reduction='none')
//   a = tensor([0, 0.5, 2, -3, 1]); b = tensor([0.2, 0, 0, 0, -0.5]): F.huber_loss(a, b),
//     F.huber_loss(a, b, reduction='none', delta=0.7), F.huber_loss(a, b, delta=2.5, reduction='sum') and its grad
//   z = tensor([[1, 2, 3], [-1000, -1000, -999]]): torch.logsumexp(z, 1) and its grad, (z, 0, keepdim=True),
//     (z, (0, 1)), logsumexp([[-inf, -inf], [inf, 1]], 1)
namespace {

void check_relative(const Tensor& t, const std::vector<double>& expected, double rtol) {
  const std::vector<double> got = tg_test::flat(t);
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element ", i, ": got ", got[i], ", expected ", expected[i]);
    CHECK(std::abs(got[i] - expected[i]) <= rtol * std::abs(expected[i]) + 1e-300);
  }
}

Tensor logits4d() {
  std::vector<double> v;
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 3; ++j) v.push_back(0.1 * (i + 2 * j + 3 * c + 5 * n) - 0.7 * ((i * j + c) % 3));
  return Tensor(v, {2, 3, 2, 3});
}
Tensor labels4d() { return Tensor(std::vector<std::int64_t>{0, 1, 2, 2, 1, 0, 1, 1, 0, 2, 0, 1}, {2, 2, 3}); }

}  // namespace

TEST_CASE("binary_cross_entropy has PyTorch's finite gradient at p = 0 and 1 (0 where p equals the target)") {
  for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
    const Tensor p = Tensor({0.0, 1.0, 0.0, 1.0, 0.25, 1.0}, tg::TensorOptions().dtype(dtype)).set_requires_grad(true);
    const Tensor y = Tensor({0.0, 1.0, 1.0, 0.0, 0.5, 0.75}, dtype);
    const Tensor loss = tg::binary_cross_entropy(p, y);
    loss.backward();
    check_relative(loss, {37.63949803613097}, 1e-6);
    if (dtype == tg::kFloat32)
      check_relative(p.grad(), {0.0, 0.0, -166666665984.0, 166666665984.0, -0.2222222238779068, 41666666496.0}, 1e-6);
    else
      check_relative(p.grad(), {0.0, 0.0, -166666667332.63382, 166666667332.63382, -0.2222222222222222, 41666666833.158455},
                     1e-12);
  }
  // After a float32 sigmoid that saturates at exactly 1, training stays NaN-free.
  const Tensor logits = Tensor({20.0, -120.0}).set_requires_grad(true);
  tg::binary_cross_entropy(tg::sigmoid(logits), Tensor({1.0, 0.0})).backward();
  for (double g : tg_test::flat(logits.grad())) CHECK(std::isfinite(g));
  CHECK_GRADCHECK([](const Inputs& in) { return tg::binary_cross_entropy(in[0], in[1]); },
                  {uniform64({5}, 0.1, 0.9), uniform64({5}, 0.0, 1.0)});
}

TEST_CASE("cross_entropy with class-probability targets matches PyTorch") {
  const Tensor q({{0.2, 0.3, 0.5}, {1.0, 0.0, 0.0}, {0.0, 0.5, 0.5}, {0.1, 0.1, 0.8}}, tg::kFloat64);
  const Tensor w = class_weights();
  struct Case {
    tg::ClassLossOptions options;
    std::vector<double> loss, grad;
  };
  const Case cases[] = {
      {with(Tensor(), 0), {2.0480682361416367},
       {0.007805974405537257, 0.08213292980294061, -0.08993890420847789, -0.24143889178036454, 0.03141324586143617,
        0.21002564591892836, 0.09007415381013502, -0.025452664738765993, -0.06462148907136903, 0.19390014876577197,
        -0.023525062399524305, -0.1703750863662476}},
      {with(w, 0), {3.0114275292735453},
       {0.09636299290618855, 0.2141245908374107, -0.3104875837435993, -0.04828777835607291, 0.006282649172287234,
        0.042005129183785676, 0.18014830762027004, 0.07409467052246801, -0.25424297814273805, 0.5466283748897455,
        -0.02128315724680125, -0.5253452176429441}},
      {with(Tensor(), 0.1), {2.012234902808304},
       {0.004472641072203923, 0.08129959646960727, -0.08577223754181121, -0.22477222511369788, 0.02307991252810284,
        0.20169231258559503, 0.08174082047680169, -0.021285998072099327, -0.06045482240470237, 0.18806681543243864,
        -0.02935839573285764, -0.15870841969958094}},
      {with(w, 0.2, Reduction::Sum), {11.427737851487311},
       {0.3597709353006717, 0.794520905392341, -1.154291840693013, -0.1582657828667749, -0.011379353950539003,
        0.1696451368173139, 0.664024303318882, 0.281929294497813, -0.9459535978166951, 1.9810456329315167,
        -0.13312083974389788, -1.847924793187618}},
      {with(w, 0, Reduction::None), {3.1444385627586184, 0.6748462542355536, 2.591655311106519, 5.63476998899349},
       {0.3854519716247542, 0.8564983633496428, -1.2419503349743972, -0.19315111342429164, 0.025130596689148937,
        0.1680205167351427, 0.7205932304810801, 0.29637868208987206, -1.0169719125709522, 2.186513499558982,
        -0.085132628987205, -2.1013808705717762}},
  };
  for (const Case& c : cases) {
    const Tensor x = logits().set_requires_grad(true);
    const Tensor loss = tg::cross_entropy(x, q, c.options);
    tg::sum(loss).backward();
    check_close(loss, c.loss, 1e-12);
    check_close(x.grad(), c.grad, 1e-12);
  }
  CHECK_GRADCHECK([](const Inputs& in) { return tg::cross_entropy(in[0], tg::softmax(in[1], 1), with(Tensor(), 0.1)); },
                  {uniform64({3, 4}), uniform64({3, 4})});
  CHECK_THROWS_WITH_AS(tg::cross_entropy(logits(), q, with(Tensor(), 0, Reduction::Mean, 1)),
                       "cross_entropy: ignore_index (1) is not supported for class-probability targets", tg::Error);
  CHECK_THROWS_WITH_AS(tg::cross_entropy(logits(), Tensor({{0.5, 0.5}}, tg::kFloat64)),
                       doctest::Contains("must have the input's shape [4, 3], got float64 [1, 2]"), tg::Error);
}

// Golden values from PyTorch 1.13 (/usr/bin/python3), float64, class probabilities over dim 1 of
// (2, 3, 3), with the gradients of the input, the target and the weight:
//   x = [[[1.0, -0.5, 2.0], [0.3, 0.0, -1.2], [2.5, 1.0, 0.4]],
//        [[-1.0, 0.7, 0.2], [0.9, -2.0, 1.5], [0.0, 0.1, -0.3]]]
//   t = [[[0.2, 0.0, 0.5], [0.3, 1.0, 0.25], [0.5, 0.0, 0.25]],
//        [[0.6, 0.1, 0.0], [0.1, 0.1, 0.5], [0.3, 0.8, 0.5]]];  w = [0.2, 1.0, 3.0]
//   up = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]] (the upstream gradient of Reduction::None)
//   for kw in [{}, {weight: w, label_smoothing: 0.2}, {weight: w, reduction: 'none',
//              label_smoothing: 0.1}, {reduction: 'sum'}]:
//     x, t, w with requires_grad; l = F.cross_entropy(x, t, **kw); l.backward(up if l.dim() else None)
TEST_CASE("cross_entropy with class probabilities over (N, C, d1) matches PyTorch, with every gradient") {
  const Tensor x0({{{1.0, -0.5, 2.0}, {0.3, 0.0, -1.2}, {2.5, 1.0, 0.4}}, {{-1.0, 0.7, 0.2}, {0.9, -2.0, 1.5}, {0.0, 0.1, -0.3}}},
                  tg::kFloat64);
  const Tensor t0({{{0.2, 0.0, 0.5}, {0.3, 1.0, 0.25}, {0.5, 0.0, 0.25}}, {{0.6, 0.1, 0.0}, {0.1, 0.1, 0.5}, {0.3, 0.8, 0.5}}},
                  tg::kFloat64);
  const Tensor up({{0.5, -1.0, 2.0}, {1.5, 0.25, -0.75}}, tg::kFloat64);
  const Tensor w = class_weights();  // each case below takes a fresh copy that requires grad
  struct Case {
    tg::ClassLossOptions options;
    std::vector<double> loss, dx, dt, dw;
  };
  const Case cases[] = {
      {with(Tensor(), 0), {1.4125102212417169},
       {-0.0054546084310598715, 0.023374063861014746, 0.0507876958113726, -0.0361558349250874, -0.1281293503963085,
       -0.03619959791888176, 0.041610443356147275, 0.10475528653529373, -0.014588097892490843, -0.08398079171962745,
       0.08646755241445152, 0.03159062196809127, 0.09043606894479013, -0.009735478592306435, 0.03258203058220327,
       -0.006455277225162657, -0.0767320738221451, -0.06417265255029451},
       {0.29802199335336976, 0.32739479735132415, 0.03620886914545744, 0.41468866002003646, 0.2440614640179908,
       0.5695422024787908, 0.04802199335336978, 0.07739479735132415, 0.3028755358121241, 0.3903678816726587,
       0.0799940953241145, 0.2771892510614589, 0.07370121500599205, 0.5299940953241145, 0.06052258439479225,
       0.22370121500599205, 0.1799940953241145, 0.36052258439479223},
       {}},
      {with(w, 0.2), {2.0944669542989103},
       {0.04128797047322755, 0.0230217667476737, 0.14002483825230333, -0.026856133899864236, -0.10282414287245761,
       -0.03810264469701395, -0.014431836573363324, 0.07980237612478389, -0.10192219355528938, 0.000616366715495883,
       0.2319072781213585, 0.057168147077789375, 0.10150837263462874, -0.00853043662571335, 0.14014310638343105,
       -0.10212473935012462, -0.22337684149564518, -0.1973112534612204},
       {0.04768351893653917, 0.052383167576211864, 0.005793419063273191, 0.3317509280160292, 0.19524917121439267,
       0.4556337619830327, 0.11525278404808748, 0.18574751364317799, 0.726901285949098, 0.062458861067625396,
       0.012799055251858323, 0.04435028016983343, 0.058960972004793645, 0.42399527625929156, 0.0484180675158338,
       0.536882916014381, 0.43198582877787484, 0.8652542025475015},
       {0.3498883032840864, 0.6073548967820661, 0.4723781322866755}},
      {with(w, 0.1, Reduction::None), {1.2488183337092462, 1.4262768688055962, 2.3121627994728686, 1.54452063562794, 2.844754689242807,
       3.323149549022049},
       {0.1288772364401161, -0.13918749182606535, 1.6253478218688793, -0.0770743052430376, 0.6928604798062984,
       -0.44253321444670346, -0.05180293119707844, -0.5536729879802329, -1.1828146074221761, -0.006489540047190984,
       0.3663541326543323, -0.2707861297814368, 0.9215854643375716, -0.005797882008744179, -0.6494411269826345,
       -0.9150959242903806, -0.3605562506455881, 0.9202272567640711},
       {0.1609318764108197, -0.3535863811394301, 0.07821115735418809, 1.1196593820540985, -1.3179319056971504,
       6.151055786770941, 0.38897814616229526, -1.2537957170914513, 9.813167360312821, 0.6323959683097072,
       0.02159840573751092, -0.22452329335978177, 0.5969798415485357, 0.7154920286875547, -0.2451164667989086,
       5.435939524645607, 0.7289760860626638, -4.380349400396726},
       {2.3227853467262065, 0.8244239450346755, 1.0230281155336405}},
      {with(Tensor(), 0, Reduction::Sum), {8.475061327450302},
       {-0.032727650586359236, 0.14024438316608848, 0.3047261748682356, -0.21693500955052442, -0.768776102377851,
       -0.2171975875132906, 0.24966266013688365, 0.6285317192117624, -0.08752858735494506, -0.5038847503177648,
       0.5188053144867092, 0.18954373180854764, 0.5426164136687408, -0.05841287155383862, 0.19549218349321962,
       -0.03873166335097594, -0.4603924429328706, -0.3850359153017672},
       {1.7881319601202188, 1.964368784107945, 0.21725321487274465, 2.488131960120219, 1.464368784107945,
       3.417253214872745, 0.2881319601202187, 0.4643687841079449, 1.8172532148727447, 2.3422072900359523,
       0.47996457194468706, 1.6631355063687536, 0.4422072900359523, 3.179964571944687, 0.3631355063687535,
       1.3422072900359523, 1.079964571944687, 2.1631355063687536},
       {}},
  };
  for (Case c : cases) {
    if (c.options.weight.defined()) c.options.weight = class_weights().set_requires_grad(true);
    const Tensor x = x0.detach().set_requires_grad(true), t = t0.detach().set_requires_grad(true);
    const Tensor loss = tg::cross_entropy(x, t, c.options);
    if (c.options.reduction == Reduction::None) loss.backward(up);
    else loss.backward();
    check_close(loss, c.loss, 1e-12);
    check_close(x.grad(), c.dx, 1e-12);
    check_close(t.grad(), c.dt, 1e-12);
    if (!c.dw.empty()) check_close(c.options.weight.grad(), c.dw, 1e-12);
  }
}

// cross_entropy with class probabilities is one fused node (loss.cpp); its definition composed of
// ops is the reference: -Σ_c w_c·q_c·log_softmax(x)_c with q = (1 - ε)·t + ε/C, then the reduction.
// Over rows and columns (one sample (C), (N, C), (N, C, 1), (N, C, d1), (N, C, d1, d2), columns past
// a slab), one class and many, no samples, both dtypes, every reduction, weights and smoothing;
// logits of ±1000, and a logit of -inf under a zero probability (0·-inf: NaN both ways, as
// PyTorch). The loss and the gradients of the input, the target and the weight.
TEST_CASE("cross_entropy with class-probability targets equals its composed definition, with every gradient") {
  tg::manual_seed(23);
  auto composed = [](const Tensor& x, const Tensor& t, const Tensor& w, double eps, Reduction r) {
    const std::int64_t cd = x.dim() == 1 ? 0 : 1;
    const std::size_t classes = x.shape()[std::size_t(cd)];
    Tensor terms = (t * (1.0 - eps) + eps / double(classes)) * tg::log_softmax(x, cd);
    if (w.defined()) {
      std::vector<std::int64_t> along(x.dim(), 1);
      along[std::size_t(cd)] = std::int64_t(classes);
      terms = terms * w.reshape(along);
    }
    const Tensor per_sample = -tg::sum(terms, {cd});
    return r == Reduction::None ? per_sample : r == Reduction::Sum ? tg::sum(per_sample) : tg::mean(per_sample);
  };
  for (const tg::Shape& shape : {tg::Shape{5}, tg::Shape{1, 1}, tg::Shape{4, 3}, tg::Shape{3, 70}, tg::Shape{0, 3},
                                 tg::Shape{2, 3, 1}, tg::Shape{3, 17, 33}, tg::Shape{2, 5, 3, 7}, tg::Shape{2, 1, 9},
                                 tg::Shape{2, 40, 2100}}) {
    const std::int64_t cd = shape.size() == 1 ? 0 : 1;
    const std::size_t classes = shape[std::size_t(cd)];
    for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
      Tensor logits = tg::randn(shape, dtype) * 3.0;
      Tensor target = tg::softmax(tg::randn(shape, dtype) * 2.0, cd);
      if (classes > 2 && logits.numel() > 0) {  // ±1000 in the first sample, -inf under a probability of 0
        std::vector<double> v = tg_test::flat(logits), q = tg_test::flat(target);
        const std::size_t stride = logits.numel() / (shape.size() == 1 ? 1 : shape[0]) / classes;
        v[0] = 1000;
        v[stride] = -1000;
        v[2 * stride + (stride > 1 ? 1 : 0)] = -std::numeric_limits<double>::infinity();
        q[2 * stride + (stride > 1 ? 1 : 0)] = 0;
        logits = Tensor(v, shape).to(dtype);
        target = Tensor(q, shape).to(dtype);
      }
      const Tensor weight = tg::rand({classes}, dtype) + 0.5;
      for (Reduction reduction : {Reduction::Mean, Reduction::Sum, Reduction::None})
        for (int variant = 0; variant < 4; ++variant) {  // plain, weighted, smoothed, both
          CAPTURE(tg::shape_str(shape));
          CAPTURE(tg::dtype_name(dtype));
          CAPTURE(tg::reduction_name(reduction));
          CAPTURE(variant);
          const double eps = variant >= 2 ? 0.2 : 0.0;
          const double tol = dtype == tg::kFloat64 ? 1e-12 : 3e-5;
          struct Result {
            Tensor loss, dx, dt, dw;
          };
          auto run = [&](auto loss) {
            const Tensor x = logits.detach().set_requires_grad(true), t = target.detach().set_requires_grad(true);
            const Tensor w = variant % 2 == 1 ? weight.detach().set_requires_grad(true) : Tensor();
            const Tensor l = loss(x, t, w);
            if (reduction == Reduction::None) {
              tg::manual_seed(5);
              l.backward(tg::randn(l.shape(), dtype));
            } else {
              l.backward();
            }
            return Result{l, x.grad(), t.grad(), w.defined() ? w.grad() : Tensor()};
          };
          const Result got = run([&](const Tensor& x, const Tensor& t, const Tensor& w) {
            return tg::cross_entropy(x, t, with(w, eps, reduction));
          });
          const Result want = run([&](const Tensor& x, const Tensor& t, const Tensor& w) {
            return composed(x, t, w, eps, reduction);
          });
          CHECK(got.loss.shape() == want.loss.shape());
          auto compare = [&](const std::string& what, const Tensor& a, const Tensor& b) {
            REQUIRE(a.defined() == b.defined());
            if (!a.defined()) return;
            REQUIRE(a.shape() == b.shape());
            const std::vector<double> u = tg_test::flat(a), v = tg_test::flat(b);
            double scale = 1.0;
            for (double e : v)
              if (std::isfinite(e)) scale = std::max(scale, std::abs(e));
            for (std::size_t i = 0; i < v.size(); ++i) {
              INFO(what, " ", i, ": got ", u[i], ", composed ", v[i]);
              if (std::isnan(v[i])) CHECK(std::isnan(u[i]));
              else if (std::isinf(v[i])) CHECK(u[i] == v[i]);
              else CHECK(std::abs(u[i] - v[i]) <= tol * scale);
            }
          };
          compare("loss", got.loss, want.loss);
          compare("dx", got.dx, want.dx);
          compare("dtarget", got.dt, want.dt);
          compare("dweight", got.dw, want.dw);
        }
    }
  }
}

TEST_CASE("cross_entropy and nll_loss over (N, C, d1, d2) match PyTorch") {
  const Tensor w = class_weights();
  struct Case {
    tg::ClassLossOptions options;
    std::vector<double> loss, grad;
  };
  const Case cases[] = {
      {with(Tensor(), 0), {1.3578273004659112},
       {-0.04401864824435077, 0.03931468508898256, 0.03931468508898256, 0.03931468508898256, 0.015606613321182183,
        -0.07511768429188626, 0.026353421518723455, -0.05697991181460988, 0.026353421518723455, 0.026353421518723455,
        -0.07287190757341806, 0.044972030641775275, 0.017665226725627314, 0.017665226725627314, -0.06566810660770601,
        -0.06566810660770601, 0.05726529425223588, 0.030145653650110987, 0.03931468508898256, 0.039314685088982566,
        -0.04401864824435077, 0.039314685088982566, -0.06772672001215115, 0.008215649041447073, -0.056979911814609874,
        -0.056979911814609874, 0.026353421518723455, 0.026353421518723455, 0.01046142575991526, -0.038361302691558054,
        0.017665226725627314, 0.017665226725627314, 0.01766522672562731, -0.06566810660770601, 0.05726529425223588,
        0.030145653650110987}},
      {with(w, 0, Reduction::Mean, 1), {1.5367497121045046},
       {-0.010780077121065499, 0.0, 0.14442129216360944, 0.14442129216360944, 0.0, -0.018396167581686437,
        0.00645389914744248, 0.0, 0.0968084872116372, 0.0968084872116372, 0.0, 0.011013558524516397,
        0.004326177973623018, 0.0, -0.24122977937524664, -0.24122977937524664, 0.0, 0.00738260905717004, 0.0, 0.0,
        -0.010780077121065499, 0.14442129216360947, -0.01658613551317988, 0.0, 0.0, 0.0, 0.00645389914744248,
        0.0968084872116372, 0.0025619818187547585, 0.0, 0.0, 0.0, 0.004326177973623016, -0.24122977937524664,
        0.014024153694425117, 0.0}},
      {with(Tensor(), 0.2, Reduction::Sum), {15.953927605590934},
       {-0.394890445598876, 0.40510955440112406, 0.40510955440112406, 0.40510955440112406, 0.12061269318751953,
        -0.7680788781693018, 0.2495743915580148, -0.5504256084419853, 0.2495743915580148, 0.2495743915580148,
        -0.7411295575476835, 0.4729977010346367, 0.14531605404086112, 0.14531605404086112, -0.6546839459591389,
        -0.6546839459591389, 0.620516864360164, 0.2950811771346652, 0.40510955440112406, 0.4051095544011242,
        -0.394890445598876, 0.4051095544011242, -0.6793873068124805, 0.031921121830698215, -0.5504256084419852,
        -0.5504256084419852, 0.2495743915580148, 0.2495743915580148, 0.05887044245231647, -0.32700229896536337,
        0.14531605404086112, 0.14531605404086112, 0.14531605404086106, -0.6546839459591389, 0.620516864360164,
        0.2950811771346652}},
  };
  for (const Case& c : cases) {
    const Tensor x = logits4d().set_requires_grad(true);
    const Tensor loss = tg::cross_entropy(x, labels4d(), c.options);
    loss.backward();
    check_close(loss, c.loss, 1e-12);
    check_close(x.grad(), c.grad, 1e-12);
  }
  check_close(tg::cross_entropy(logits4d(), labels4d(), with(w, 0)), {1.4328284099791293}, 1e-12);
  const std::vector<double> per_element = {0.15025010274569886, 1.1512505137284943, 4.653751541185483, 4.653751541185482,
                                           2.075153873926926,   0.4633615747909128, 1.151250513728494, 1.151250513728494,
                                           0.15025010274569886, 4.653751541185482,  0.33503077478538534, 0.6168078739545637};
  const Tensor none = tg::cross_entropy(logits4d(), labels4d(), with(w, 0, Reduction::None));
  CHECK(none.shape() == tg::Shape{2, 2, 3});
  check_close(none, per_element, 1e-12);
  check_close(tg::nll_loss(tg::log_softmax(logits4d(), 1), labels4d(), with(w, 0, Reduction::None)), per_element, 1e-12);
  CHECK_GRADCHECK([](const Inputs& in) {
    return tg::cross_entropy(in[0], Tensor(std::vector<std::int64_t>{0, 2, 1, 1, 0, 2}, {2, 3}), with(Tensor(), 0.1));
  }, {uniform64({2, 4, 3})});
  CHECK_THROWS_WITH_AS(tg::cross_entropy(logits4d(), Tensor(std::vector<std::int64_t>{0, 1}, {2})),
                       "cross_entropy: target [2] does not match input [2, 3, 2, 3] (expected target [2, 2, 3])", tg::Error);
}

// Over (N, C, d1, ...) cross_entropy is one column kernel (with label smoothing too; over one
// position, nll_loss on log_softmax's rows or, smoothed, the rows with the classes moved last),
// and nll_loss reads the classes `inner` apart. Every way must equal the row kernels on the input
// with the classes moved last:
// shapes with one, odd and many positions per sample (past a SIMD batch and a column slab),
// 2 extra dims, a single class, both dtypes, every reduction, class weights, ignored targets,
// smoothing, logits of ±1000; the loss and the input gradient.
TEST_CASE("cross_entropy and nll_loss over (N, C, d1, ...) equal the row kernels on the classes moved last") {
  tg::manual_seed(8);
  for (const tg::Shape& shape : {tg::Shape{2, 3, 1}, tg::Shape{3, 17, 33}, tg::Shape{2, 5, 3, 7}, tg::Shape{2, 1, 9},
                                 tg::Shape{2, 40, 2100}}) {
    const std::size_t classes = shape[1];
    std::vector<std::int64_t> order{0}, target_shape{std::int64_t(shape[0])};
    for (std::size_t d = 2; d < shape.size(); ++d) {
      order.push_back(std::int64_t(d));
      target_shape.push_back(std::int64_t(shape[d]));
    }
    order.push_back(1);
    for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
      Tensor logits = tg::randn(shape, dtype) * 3.0;
      if (classes > 2) {  // one position whose logits are ±1000
        std::vector<double> v = tg_test::flat(logits);
        v[0] = 1000;
        v[shape.size() == 3 ? shape[2] : shape[2] * shape[3]] = -1000;
        logits = Tensor(v, shape).to(dtype);
      }
      const Tensor target = tg::randint(0, std::int64_t(classes), {logits.numel() / classes}).reshape(target_shape);
      Tensor weight = tg::rand({classes}, dtype) + 0.5;
      for (Reduction reduction : {Reduction::Mean, Reduction::Sum, Reduction::None})
        for (int variant = 0; variant < 5; ++variant) {  // plain, weighted, ignoring class 0, smoothed, all three
          CAPTURE(tg::shape_str(shape));
          CAPTURE(tg::dtype_name(dtype));
          CAPTURE(tg::reduction_name(reduction));
          CAPTURE(variant);
          const tg::ClassLossOptions o = with(variant == 1 || variant == 4 ? weight : Tensor(), variant >= 3 ? 0.1 : 0.0,
                                              reduction, variant == 2 || variant == 4 ? 0 : -100);
          const double tol = dtype == tg::kFloat64 ? 1e-12 : 2e-5;
          // the loss and its input gradient (for Reduction::None, under an upstream gradient)
          const Tensor upstream = tg::randn({target.numel()}, dtype);
          auto both = [&](auto loss, const Tensor& input) {
            const Tensor x = input.detach().set_requires_grad(true);
            const Tensor l = loss(x);
            if (reduction == Reduction::None) l.backward(upstream.reshape(l.shape()));
            else l.backward();
            return std::pair{l, x.grad()};
          };
          for (const bool nll : {false, true}) {
            if (nll && variant >= 3) continue;  // nll_loss has no smoothing
            CAPTURE(nll);
            auto f = [&](const Tensor& x, const Tensor& t) {
              return nll ? tg::nll_loss(tg::log_softmax(x, 1), t, o) : tg::cross_entropy(x, t, o);
            };
            const auto [got, got_dx] = both([&](const Tensor& x) { return f(x, target); }, logits);
            const auto [want, want_rows_dx] = both([&](const Tensor& x) { return f(x, target.reshape({-1})); },
                                                   logits.permute(order).reshape({-1, std::int64_t(classes)}));
            CHECK(got.shape() == (reduction == Reduction::None ? target.shape() : tg::Shape{}));
            const std::vector<double> got_values = tg_test::flat(got), want_values = tg_test::flat(want);
            for (std::size_t i = 0; i < want_values.size(); ++i) {
              INFO("loss ", i, ": got ", got_values[i], ", rows ", want_values[i]);
              if (std::isnan(want_values[i])) CHECK(std::isnan(got_values[i]));  // every target ignored: 0/0
              else CHECK(std::abs(got_values[i] - want_values[i]) <= tol * std::max(1.0, std::abs(want_values[i])));
            }
            // the rows' gradient back in the input's layout
            tg::Shape moved;
            for (std::int64_t d : order) moved.push_back(shape[std::size_t(d)]);
            std::vector<std::int64_t> inverse(order.size());
            for (std::size_t i = 0; i < order.size(); ++i) inverse[std::size_t(order[i])] = std::int64_t(i);
            const std::vector<double> want_dx =
                tg_test::flat(want_rows_dx.reshape(moved).permute(inverse));
            const std::vector<double> got_dx_values = tg_test::flat(got_dx);
            // (One class: the gradient is 0, up to the rounding of s·Q against s·q with smoothing.)
            double scale = classes == 1 ? 1.0 : 1e-300;
            for (double v : want_dx) scale = std::max(scale, std::abs(v));
            for (std::size_t i = 0; i < want_dx.size(); ++i) {
              INFO("dx ", i, ": got ", got_dx_values[i], ", rows ", want_dx[i]);
              CHECK(std::abs(got_dx_values[i] - want_dx[i]) <= tol * scale);
            }
          }
        }
    }
  }
}

// cross_entropy over (N, C, d1, ...) is one column kernel (loss.cpp) that makes the operations of
// log_softmax's column kernel and nll_loss in their order: the same bits as the two ops composed,
// for the loss and the input gradient. Positions around the SIMD width and past a column slab,
// one class and many, weights (one of them 0), ignored targets, and columns of -inf, +inf,
// NaN and ±1000.
TEST_CASE("cross_entropy over (N, C, d1, ...) has the bits of nll_loss(log_softmax(x, 1))") {
  tg::manual_seed(19);
  auto same = [](const Tensor& a, const Tensor& b) {
    const std::vector<double> u = tg_test::flat(a), v = tg_test::flat(b);
    if (a.shape() != b.shape()) return false;
    for (std::size_t i = 0; i < u.size(); ++i)
      if (!(std::isnan(u[i]) && std::isnan(v[i])) && std::memcmp(&u[i], &v[i], sizeof u[i]) != 0) return false;
    return true;
  };
  const double inf = std::numeric_limits<double>::infinity();
  for (const tg::Shape& shape : {tg::Shape{2, 1, 5}, tg::Shape{3, 2, 1}, tg::Shape{2, 5, 15}, tg::Shape{2, 7, 16},
                                 tg::Shape{1, 3, 17}, tg::Shape{2, 17, 33}, tg::Shape{2, 4, 3, 11},
                                 tg::Shape{2, 3, 1030}, tg::Shape{1, 2, 2049}})
    for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
      const std::size_t classes = shape[1];
      std::size_t positions = 1;
      for (std::size_t d = 2; d < shape.size(); ++d) positions *= shape[d];
      std::vector<double> v = tg_test::flat(tg::randn(shape, tg::kFloat64) * 4.0);
      // Columns 0-4 of sample 0: one value +1000 / -1000, all -inf, one +inf, one NaN.
      auto at = [&](std::size_t c, std::size_t j) -> double& { return v[c * positions + j]; };
      if (positions >= 5) {
        at(0, 0) = 1000;
        at(classes - 1, 1) = -1000;
        for (std::size_t c = 0; c < classes; ++c) at(c, 2) = -inf;
        at(classes / 2, 3) = inf;
        at(0, 4) = std::nan("");
      }
      const Tensor logits = Tensor(v, shape).to(dtype);
      tg::Shape target_shape{shape[0]};
      for (std::size_t d = 2; d < shape.size(); ++d) target_shape.push_back(shape[d]);
      const Tensor target = tg::randint(0, std::int64_t(classes), target_shape);
      Tensor weight = tg::rand({classes}, dtype) + 0.5;
      if (classes > 1) weight = tg::cat({tg::zeros({1}, dtype), weight.narrow(0, 1, std::int64_t(classes) - 1)}, 0);
      for (Reduction reduction : {Reduction::Mean, Reduction::Sum, Reduction::None})
        for (int variant = 0; variant < 3; ++variant) {  // plain, weighted (class 0 weighs 0), ignoring class 0
          CAPTURE(tg::shape_str(shape));
          CAPTURE(tg::dtype_name(dtype));
          CAPTURE(tg::reduction_name(reduction));
          CAPTURE(variant);
          const tg::ClassLossOptions o = with(variant == 1 ? weight : Tensor(), 0.0, reduction, variant == 2 ? 0 : -100);
          const Tensor upstream = tg::randn(target_shape, dtype);
          auto run = [&](bool composed) {
            const Tensor x = logits.detach().set_requires_grad(true);
            const Tensor l = composed ? tg::nll_loss(tg::log_softmax(x, 1), target, o) : tg::cross_entropy(x, target, o);
            if (reduction == Reduction::None) l.backward(upstream);
            else l.backward();
            return std::pair{l, x.grad()};
          };
          const auto [got, got_dx] = run(false);
          const auto [want, want_dx] = run(true);
          CHECK(same(got, want));
          CHECK(same(got_dx, want_dx));
        }
    }
}

// Without a gradient to come (NoGradGuard, or an input that does not require grad) the row
// kernels of cross_entropy put their exponentials in a scratch block instead of a tensor the
// backward would read: the loss keeps its bits. Class indices (weights, smoothing, an ignored
// class) and probabilities (smoothing, weights); rows shorter than a SIMD batch, several row
// blocks, rows of one block each (5000 classes), one sample of (C); both dtypes. A target that
// requires grad while the input does not still gets its gradient.
TEST_CASE("cross_entropy without a gradient to come has the bits it has with one") {
  tg::manual_seed(23);
  for (const tg::Shape& shape : {tg::Shape{5, 3}, tg::Shape{70, 17}, tg::Shape{130, 1000}, tg::Shape{3, 5000},
                                 tg::Shape{40}})
    for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
      const std::size_t classes = shape.back();
      const Tensor logits = tg::randn(shape, dtype) * 3.0;
      const Tensor indices = shape.size() == 1 ? tg::randint(0, std::int64_t(classes), {})
                                               : tg::randint(0, std::int64_t(classes), {shape[0]});
      const Tensor probabilities = tg::softmax(tg::randn(shape, dtype), -1).detach();
      const Tensor weight = tg::rand({classes}, dtype) + 0.5;
      for (int variant = 0; variant < 4; ++variant) {
        CAPTURE(tg::shape_str(shape));
        CAPTURE(tg::dtype_name(dtype));
        CAPTURE(variant);
        // class indices plain, weighted with smoothing and class 0 ignored; probabilities plain,
        // smoothed with a weight
        const bool soft = variant >= 2;
        const tg::ClassLossOptions o = variant % 2 == 0 ? with(Tensor(), 0.0, Reduction::None)
                                                        : with(weight, 0.2, Reduction::None, soft ? -100 : 0);
        const Tensor& target = soft ? probabilities : indices;
        const Tensor with_grad = tg::cross_entropy(logits.detach().set_requires_grad(true), target, o);
        Tensor guarded;
        {
          tg::NoGradGuard no_grad;
          guarded = tg::cross_entropy(logits.detach().set_requires_grad(true), target, o);
        }
        CHECK(tg_test::bitwise_equal(guarded, with_grad));
        CHECK(tg_test::bitwise_equal(tg::cross_entropy(logits.detach(), target, o), with_grad));
        if (!soft) continue;
        const Tensor both_target = target.detach().set_requires_grad(true);
        tg::sum(tg::cross_entropy(logits.detach().set_requires_grad(true), both_target, o)).backward();
        const Tensor only_target = target.detach().set_requires_grad(true);
        const Tensor frozen = tg::cross_entropy(logits.detach(), only_target, o);
        CHECK(tg_test::bitwise_equal(frozen, with_grad));
        tg::sum(frozen).backward();
        CHECK(tg_test::bitwise_equal(only_target.grad(), both_target.grad()));
      }
    }
}

// logsumexp over the last dim is a row kernel (reduce.cpp): every row length around the SIMD width
// and past a row block, rows in several blocks, 3-D input, keepdim, rows of all -inf (-inf), with
// a +inf (+inf), a NaN (NaN), of ±1000, both dtypes; the values and the gradient g·e^(x - out)
// against float64 loops, and 1 and 2 threads bitwise.
TEST_CASE("logsumexp over the last dim: a row kernel equal to the float64 definition, extremes included") {
  tg::manual_seed(10);
  for (const std::size_t n : {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 64, 100, 1000, 5000})
    for (const tg::DType dtype : {tg::kFloat64, tg::kFloat32})
      for (const bool keepdim : {false, true}) {
        CAPTURE(n);
        CAPTURE(tg::dtype_name(dtype));
        CAPTURE(keepdim);
        const std::size_t rows = n > 1000 ? 3 : 70;
        std::vector<double> v = tg_test::flat(tg::randn({rows, n}, tg::kFloat64) * 4.0);
        for (std::size_t i = 0; i < n; ++i) v[i] = -INFINITY;  // row 0: all -inf
        v[n + n / 2] = INFINITY;                                // row 1: a +inf
        if (rows > 3) {
          v[2 * n + n - 1] = NAN;                                      // row 2: a NaN
          for (std::size_t i = 0; i < n; ++i) v[3 * n + i] = i % 2 ? 1000.0 : -1000.0;  // row 3
        }
        const tg::Shape shape = rows % 2 == 0 ? tg::Shape{2, rows / 2, n} : tg::Shape{rows, n};
        Tensor x = Tensor(v, shape).to(dtype).set_requires_grad(true);
        const std::vector<double> xs = tg_test::flat(x);  // v in the tested dtype
        const Tensor g = tg::randn({rows}, dtype);
        auto run = [&](int threads) {
          tg::set_num_threads(threads);
          x.set_grad(Tensor());
          const Tensor out = tg::logsumexp(x, {-1}, keepdim);
          (out * g.reshape(out.shape())).sum().backward();
          tg::set_num_threads(2);
          return std::pair{out, x.grad()};
        };
        const auto [out, dx] = run(1);
        const auto [out2, dx2] = run(2);
        CHECK(tg_test::bitwise_equal(out, out2));
        CHECK(tg_test::bitwise_equal(dx, dx2));
        tg::Shape want_shape = shape;
        if (keepdim) want_shape.back() = 1;
        else want_shape.pop_back();
        CHECK(out.shape() == want_shape);
        const std::vector<double> got = tg_test::flat(out), got_dx = tg_test::flat(dx), gs = tg_test::flat(g);
        const double tol = dtype == tg::kFloat64 ? 1e-13 : 2e-6;
        for (std::size_t r = 0; r < rows; ++r) {
          CAPTURE(r);
          double m = -INFINITY;
          bool nan = false;
          for (std::size_t i = 0; i < n; ++i) {
            m = std::max(m, xs[r * n + i]);
            nan = nan || std::isnan(xs[r * n + i]);
          }
          double total = 0;
          for (std::size_t i = 0; i < n; ++i) total += std::exp(xs[r * n + i] - (std::isinf(m) ? 0.0 : m));
          const double want = nan ? NAN : (std::isinf(m) ? 0.0 : m) + std::log(total);
          if (std::isnan(want)) CHECK(std::isnan(got[r]));
          else if (std::isinf(want)) CHECK(got[r] == want);
          else CHECK(std::abs(got[r] - want) <= tol * std::max(1.0, std::abs(want)));
          for (std::size_t i = 0; i < n; ++i) {  // g·e^(x - out): NaN where x - out is (inf - inf)
            const double d = gs[r] * std::exp(xs[r * n + i] - got[r]);
            INFO("dx ", i, ": got ", got_dx[r * n + i], ", want ", d);
            if (std::isnan(d)) CHECK(std::isnan(got_dx[r * n + i]));
            else CHECK(std::abs(got_dx[r * n + i] - d) <= 4 * tol * std::max(1.0, std::abs(d)));
          }
        }
      }
}

TEST_CASE("huber_loss and logsumexp match PyTorch") {
  const Tensor a = Tensor({0.0, 0.5, 2.0, -3.0, 1.0}, tg::kFloat64).set_requires_grad(true);
  const Tensor b({0.2, 0.0, 0.0, 0.0, -0.5}, tg::kFloat64);
  check_close(tg::huber_loss(a, b), {1.029}, 1e-12);
  check_close(tg::huber_loss(a, b, Reduction::None, 0.7), {0.02, 0.125, 1.155, 1.855, 0.805}, 1e-12);
  const Tensor total = tg::huber_loss(a, b, Reduction::Sum, 2.5);
  total.backward();
  check_close(total, {7.645}, 1e-12);
  check_close(a.grad(), {-0.2, 0.5, 2.0, -2.5, 1.5}, 1e-12);
  CHECK_THROWS_WITH_AS(tg::huber_loss(a, b, Reduction::Mean, 0.0), "huber_loss: delta must be positive, got 0", tg::Error);

  const Tensor z = Tensor({{1.0, 2.0, 3.0}, {-1000.0, -1000.0, -999.0}}, tg::kFloat64).set_requires_grad(true);
  const Tensor lse = tg::logsumexp(z, {1});
  tg::sum(lse).backward();
  check_close(lse, {3.4076059644443806, -998.448555286068}, 1e-12);
  check_close(z.grad(), {0.09003057317038043, 0.24472847105479759, 0.6652409557748217, 0.2119415576170903,
                         0.2119415576170903, 0.5761168847658423}, 1e-12);
  const Tensor kept = tg::logsumexp(z, {0}, true);
  CHECK(kept.shape() == tg::Shape{1, 3});
  check_close(kept, {1.0, 2.0, 3.0}, 1e-12);
  check_close(tg::logsumexp(z, {0, 1}), {3.4076059644443806}, 1e-12);
  const std::vector<double> inf = tg_test::flat(tg::logsumexp(Tensor({{-INFINITY, -INFINITY}, {INFINITY, 1.0}}), {1}));
  CHECK(inf[0] == -INFINITY);
  CHECK(inf[1] == INFINITY);
  CHECK_GRADCHECK([](const Inputs& in) { return tg::logsumexp(in[0], {-1}); }, {uniform64({3, 4})});
  CHECK_GRADCHECK([](const Inputs& in) { return tg::logsumexp(in[0], {0, 2}, true); }, {uniform64({2, 3, 2})});
  CHECK_GRADCHECK([](const Inputs& in) { return tg::huber_loss(in[0], in[1], Reduction::Mean, 0.5); },
                  {uniform64({6}, -2, 2), uniform64({6})});
}

namespace {

// One elementwise loss's definition in long double: the term and its derivatives in x and t.
struct LossDefinition {
  const char* name;
  std::function<Tensor(const Tensor&, const Tensor&, Reduction)> loss;
  std::function<long double(long double, long double)> term, dx, dt;
  std::vector<std::pair<double, double>> special;  // (x, t) pairs at kinks and extremes
};

std::vector<LossDefinition> loss_definitions() {
  using L = long double;
  auto sign = [](L d) { return L((d > 0) - (d < 0)); };
  const L beta = 0.5, delta = 1.5;
  auto clamp = [](L v, L low, L high) { return std::min(high, std::max(low, v)); };
  return {
      {"mse_loss", [](auto& x, auto& t, Reduction r) { return tg::mse_loss(x, t, r); },
       [](L x, L t) { return (x - t) * (x - t); }, [](L x, L t) { return 2 * (x - t); },
       [](L x, L t) { return -2 * (x - t); }, {{2, 2}, {-1e3, 1e3}}},
      {"l1_loss", [](auto& x, auto& t, Reduction r) { return tg::l1_loss(x, t, r); },
       [](L x, L t) { return std::fabs(x - t); }, [sign](L x, L t) { return sign(x - t); },
       [sign](L x, L t) { return -sign(x - t); }, {{2, 2}, {0, 0}, {-1e30, 1e30}}},
      {"smooth_l1_loss", [](auto& x, auto& t, Reduction r) { return tg::smooth_l1_loss(x, t, r, 0.5); },
       [beta](L x, L t) { const L z = std::fabs(x - t); return z < beta ? 0.5L * z * z / beta : z - 0.5L * beta; },
       [=](L x, L t) { return clamp((x - t) / beta, -1, 1); }, [=](L x, L t) { return -clamp((x - t) / beta, -1, 1); },
       {{2, 2}, {0.5, 0}, {0, 0.5}, {-0.25, 0.25}, {1e30, -1e30}}},
      {"huber_loss", [](auto& x, auto& t, Reduction r) { return tg::huber_loss(x, t, r, 1.5); },
       [delta](L x, L t) {
         const L z = std::fabs(x - t);
         return z < delta ? 0.5L * z * z : delta * (z - 0.5L * delta);
       },
       [=](L x, L t) { return clamp(x - t, -delta, delta); }, [=](L x, L t) { return -clamp(x - t, -delta, delta); },
       {{2, 2}, {1.5, 0}, {0, 1.5}, {-1e30, 1e30}}},
      {"binary_cross_entropy_with_logits",
       [](auto& x, auto& t, Reduction r) { return tg::binary_cross_entropy_with_logits(x, t, r); },
       [](L x, L y) { return (1 - y) * x + std::log1p(std::exp(-std::fabs(x))) + std::max(-x, L(0)); },
       [](L x, L y) { return 1 / (1 + std::exp(-x)) - y; }, [](L x, L) { return -x; },
       {{0, 0}, {0, 1}, {-100, 0}, {100, 1}, {-1e4, 0.3}, {1e4, 0.7}, {30, 0}}},
  };
}

}  // namespace

// The fused kernels (core/ops/loss.cpp's fused_loss) against the definitions in long double on
// inputs long enough for every SIMD width, a remainder and several parallel blocks, in both
// dtypes and every reduction, with both gradients, and the same bits at 1 and 2 threads.
// Golden values: /usr/bin/python3 with torch 1.13, float64 (seq as tg_test::seq):
//   x = seq((3, 4), torch.sin, 2.0); lp = F.log_softmax(x, 1)
//   tp = F.softmax(seq((3, 4), torch.cos, 2.0), 1) with tp[0, 0] = 0; tl = F.log_softmax(seq((3, 4), torch.cos, 2.0), 1)
//   sign = torch.sign(seq((3, 4), torch.cos)); counts = torch.round(seq((3, 4), torch.cos).abs() * 3)
//   labels = (seq((3, 4), torch.cos) > 0).double(); weight = [0.5, 1.0, 2.0, 1.5]
//   F.kl_div(lp, tp, reduction=r) for r in none, batchmean, sum, mean; F.kl_div(lp, tl, 'batchmean', log_target=True)
//   F.soft_margin_loss(x, sign) (none, mean); F.poisson_nll_loss(x, counts), (full=True, 'none'),
//   (x.exp(), counts, log_input=False, 'sum'); F.multilabel_soft_margin_loss(x, labels) ('none'; weight, mean);
//   nn.HuberLoss(reduction='sum', delta=0.5)(x, seq((3, 4), torch.cos))
//   y.backward(seq(y.shape, torch.cos)) for a tensor y, y.backward(0.75) for a number; x.grad, t.grad
// (torch refuses a target gradient for soft_margin_loss; "{}" below: not compared. Under full,
// torch's target gradient is NaN where the target is 0 or 1 (its masked_fill of 0·log 0); tapegrad's
// is the Stirling term's slope where target > 1 and 0 elsewhere, checked by gradcheck instead.)
TEST_CASE("kl_div, soft_margin, poisson_nll, multilabel_soft_margin and HuberLoss match PyTorch") {
  namespace nn = tg::nn;
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  const Tensor x = tg_test::seq({3, 4}, tg_test::sin_, 2.0);
  const Tensor cosines = tg_test::seq({3, 4}, tg_test::cos_);
  const Tensor lp = tg::log_softmax(x, 1);
  std::vector<double> probabilities = tg_test::flat(tg::softmax(cosines * 2.0, 1));
  probabilities[0] = 0;
  const Tensor tp(probabilities, {3, 4});
  const Tensor tl = tg::log_softmax(cosines * 2.0, 1);
  std::vector<double> sign, counts, labels;
  for (double c : tg_test::flat(cosines)) {
    sign.push_back(c > 0 ? 1.0 : -1.0);
    counts.push_back(std::round(std::abs(c) * 3));
    labels.push_back(c > 0 ? 1.0 : 0.0);
  }
  const Tensor signs(sign, {3, 4}), count(counts, {3, 4}), label(labels, {3, 4});
  const Tensor rates = tg::exp(x), weight({0.5, 1.0, 2.0, 1.5}, tg::kFloat64);
  struct Golden {
    const char* name;
    std::function<Tensor(const Tensor&, const Tensor&)> loss;
    Tensor input, target;
    std::vector<double> y, dx, dt;  // dt empty: not compared
  };
  const std::vector<Golden> cases{
      {"kl_div none", [&](const Tensor& x, const Tensor& t) { return tg::kl_div(x, t, Reduction::None); }, lp, tp,
       {0, -0.09780903063243951, -0.09614049212912526, -0.025592637740068765, -0.017155152376455624, 0.18867150853724518, 0.7269229704077006, -0.29061724013741363, -0.2531390409538122, -0.08368356038719077, 0.08577143497414172, 1.7091921377376567},
       {-0, -0.14593750073494807, 0.016596461830822192, 0.012530396384881117, 0.013222884859958095, -0.03740417780805617, -0.4898627329191687, -0.25461210321242655, 0.05167438313808561, 0.06998012462967984, 0.07443593456045192, -0.002121376809243596},
       {}},
      {"kl_div batchmean", [&](const Tensor& x, const Tensor& t) { return tg::kl_div(x, t, Reduction::BatchMean); }, lp, tp,
       {0.6154736324334128},
       {-0, -0.06752585503982837, -0.009970315987817256, -0.0031642654939076534, -0.0050573754710891445, -0.0329654248300442, -0.12754579571195013, -0.08443140398691652, -0.08878757926279346, -0.01920145986725478, -0.022178065868347932, -0.11983289500160381},
       {kNaN, 0.15947075885345197, -0.3526670333630817, -0.25550115400682594, 0.03799339110616384, 0.6077071839471881, 0.6062068463086516, 0.03487178169626343, 0.0718085210681811, -0.022386712279038046, 0.4917124521906374, 1.1414456135535558}},
      {"kl_div sum", [&](const Tensor& x, const Tensor& t) { return tg::kl_div(x, t, Reduction::Sum); }, lp, tp,
       {1.8464208973002383},
       {-0, -0.2025775651194851, -0.029910947963451767, -0.00949279648172296, -0.015172126413267433, -0.09889627449013261, -0.3826373871358504, -0.2532942119607496, -0.2663627377883804, -0.05760437960176434, -0.0665341976050438, -0.3594986850048114},
       {kNaN, 0.4784122765603559, -1.0580011000892449, -0.766503462020478, 0.11398017331849175, 1.8231215518415644, 1.8186205389259547, 0.10461534508879036, 0.2154255632045433, -0.06716013683711397, 1.4751373565719121, 3.4243368406606676}},
      {"kl_div mean", [&](const Tensor& x, const Tensor& t) { return tg::kl_div(x, t); }, lp, tp,
       {0.1538684081083532},
       {-0, -0.016881463759957093, -0.002492578996954314, -0.0007910663734769133, -0.0012643438677722861, -0.00824135620751105, -0.03188644892798753, -0.02110785099672913, -0.022196894815698365, -0.004800364966813695, -0.005544516467086983, -0.029958223750400952},
       {kNaN, 0.03986768971336299, -0.08816675834077042, -0.06387528850170648, 0.00949834777654096, 0.15192679598679704, 0.1515517115771629, 0.008717945424065858, 0.017952130267045275, -0.005596678069759511, 0.12292811304765935, 0.28536140338838895}},
      {"kl_div log_target batchmean", [&](const Tensor& x, const Tensor& t) { return tg::kl_div(x, t, Reduction::BatchMean, true); }, lp, tl,
       {1.121284223761153},
       {-0.16933956347844667, -0.06752585503982839, -0.009970315987817254, -0.0031642654939076542, -0.005057375471089143, -0.0329654248300442, -0.12754579571195013, -0.08443140398691651, -0.08878757926279346, -0.01920145986725478, -0.022178065868347932, -0.11983289500160381},
       {0.5486975069742518, 0.04307359738171852, -0.014064807044464058, -0.0032338939411095387, 0.0007685873769752351, 0.0801333019643555, 0.30927653831387525, 0.011777093952563114, 0.025502819024340415, -0.0017194302295429169, 0.04362092461188336, 0.5471309294360179}},
      {"soft_margin none", [&](const Tensor& x, const Tensor& t) { return tg::soft_margin_loss(x, t, Reduction::None); }, x, signs,
       {0.6931471805599453, 0.17043997893091006, 1.968955716203895, 0.8441917412935, 0.19894514389592988, 2.054931008851412, 1.0111015701478239, 0.23803227016470818, 2.1082054697049015, 1.1878861919249737, 0.2903350819561619, 2.1269107589800655},
       {-0.5, -0.08466877334339014, -0.35805167082444045, -0.564390077233125, -0.11792067423941058, -0.24732458489479917, -0.6108430650953508, -0.15969364416737, -0.12782822142858355, -0.6333585258767767, -0.2114352181183509, -0.003898132754377636},
       {}},
      {"soft_margin mean", [&](const Tensor& x, const Tensor& t) { return tg::soft_margin_loss(x, t); }, x, signs,
       {1.074423509384519},
       {-0.03125, -0.009794143531294389, 0.05377483969890145, 0.03563095674785384, 0.011275321757482554, -0.054493645427860116, -0.03976137576767291, -0.013238921495406012, 0.05490901706452739, 0.04344593690194965, 0.015749195002411846, -0.055049688841489586},
       {}},
      {"poisson log_input", [&](const Tensor& x, const Tensor& t) { return tg::poisson_nll_loss(x, t); }, x, count,
       {2.27251045404488},
       {-0.125, 0.21133528228054788, 0.32269951097725763, -0.1046189395974124, -0.11124281041832412, -0.05331733004224906, -0.15175767501546342, 0.10755802276684645, 0.4520908024303574, -0.0449912320590721, -0.16644528901263794, 0.008458620878815134},
       {-0, -0.10518387310098706, -0.11366217835321021, -0.0176400010074834, 0.09460031191349103, 0.1198655343328923, 0.03492693727486573, -0.08212332483984863, -0.12366978082792272, -0.051514810655219574, 0.06800263886117122, 0.12499877581883793}},
      {"poisson log_input full none", [&](const Tensor& x, const Tensor& t) { return tg::poisson_nll_loss(x, t, true, true, 1e-8, Reduction::None); }, x, count,
       {2.764081543543057, 2.6672870618617157, 4.344597321984759, 2.243458461625255, 3.8991314991430626, 2.0647712686502917, 4.012451732489197, 1.744788453998923, 7.233452838885718, 1.5715109191473635, 5.365083584677068, 0.13533793406104214},
       {-2, 1.8269590452395876, -2.1486460903759297, 1.6571514432597363, 1.1634104543500434, -0.24198576580557596, -2.3314113651358497, 1.297411773386144, -1.0524676326108835, 0.6558859687759462, 2.2345520505504988, 0.000598964822480904},
       {}},
      {"poisson rate sum", [&](const Tensor& x, const Tensor& t) { return tg::poisson_nll_loss(x, t, false, false, 1e-8, Reduction::Sum); }, rates, count,
       {27.27012507160754},
       {-1.4999999775000004, 0.47126028768047046, 0.6283098145555248, -0.946708491137582, -6.064618289896616, -4.354724118934605, -3.184411026754207, 0.34687479867320326, 0.75, -0.23678138485874, -5.929027601472037, 0.75},
       {-7.499999916918968e-09, -1.2622064786055431, -1.3639461414554246, -0.21168001774549577, 1.1352037088888, 1.4383863609474647, 0.41912323418368513, -0.9854799000938096, -1.484037370971922, -0.6181777311519062, 0.8160316440706289, 1.499985254409222}},
      {"multilabel none", [&](const Tensor& x, const Tensor& t) { return tg::multilabel_soft_margin_loss(x, t, Tensor(), Reduction::None); }, x, label,
       {0.9191836542470627, 0.8757524982649685, 1.4283343756415257},
       {-0.125, -0.039176574125177555, 0.21509935879560582, 0.14252382699141536, 0.02436832937989212, -0.11777216911933452, -0.085932652047053, -0.0286120792447006, -0.09140085499726452, -0.07231955681029242, -0.026215910713671017, 0.09163501545716167},
       {0, -0.42073549240394825, -0.45464871341284085, -0.07056000402993362, 0.2044510666508178, 0.2590544983767135, 0.07548441898608735, -0.177485687106114, 0.2058591522720739, 0.0857509019579786, -0.11319633215573668, -0.2080713805170994}},
      {"multilabel weight mean", [&](const Tensor& x, const Tensor& t) { return tg::multilabel_soft_margin_loss(x, t, weight); }, x, label,
       {1.3556577474217384},
       {-0.015625, -0.009794143531294389, 0.10754967939780291, 0.05344643512178076, 0.005637660878741277, -0.054493645427860116, -0.07952275153534583, -0.01985838224310902, 0.027454508532263694, 0.04344593690194966, 0.03149839000482369, -0.08257453326223439},
       {0, -0.10518387310098706, -0.22732435670642043, -0.026460001511225108, 0.04730015595674551, 0.11986553433289229, 0.06985387454973147, -0.12318498725977296, -0.061834890413961355, -0.051514810655219574, 0.13600527772234244, 0.18749816372825692}},
      {"huber 0.5 sum", [&](const Tensor& x, const Tensor& t) { return nn::HuberLoss(Reduction::Sum, 0.5)(x, t); }, x, cosines,
       {6.98306723684413},
       {-0.375, 0.375, 0.375, 0.375, -0.375, -0.375, -0.375, 0.375, 0.375, 0.375, -0.18672801952671533, -0.375},
       {0.375, -0.375, -0.375, -0.375, 0.375, 0.375, 0.375, -0.375, -0.375, -0.375, 0.18672801952671533, 0.375}}};
  for (const Golden& k : cases) {
    INFO(k.name);
    const Tensor input = k.input.detach().set_requires_grad(), target = k.target.detach().set_requires_grad();
    const Tensor y = k.loss(input, target);
    y.backward(y.dim() == 0 ? tg::full({}, 0.75, tg::kFloat64) : tg_test::seq(y.shape(), tg_test::cos_));
    tg_test::check_special_close(y, k.y, 1e-12);
    tg_test::check_special_close(input.grad(), k.dx, 1e-12);
    if (!k.dt.empty()) tg_test::check_special_close(target.grad(), k.dt, 1e-12);
  }
}

// gradcheck over both inputs (targets away from each formula's edges: positive probabilities,
// counts above 1 for the Stirling term), every reduction; the definitions in ops on long inputs in
// both dtypes (the fused kernels sum in blocks); the errors.
TEST_CASE("kl_div, soft_margin, poisson_nll and multilabel_soft_margin: gradcheck, definitions, errors") {
  tg::manual_seed(22);
  for (Reduction r : {Reduction::None, Reduction::Mean, Reduction::Sum, Reduction::BatchMean}) {
    INFO("reduction ", tg::reduction_name(r));
    CHECK_GRADCHECK([r](const Inputs& in) { return tg::kl_div(in[0], in[1], r); },
                    {uniform64({3, 4}, -3, 0), uniform64({3, 4}, 0.1, 1)});
    CHECK_GRADCHECK([r](const Inputs& in) { return tg::kl_div(in[0], in[1], r, true); },
                    {uniform64({3, 4}, -3, 0), uniform64({3, 4}, -3, 0)});
    if (r == Reduction::BatchMean) continue;
    CHECK_GRADCHECK([r](const Inputs& in) { return tg::soft_margin_loss(in[0], in[1], r); },
                    {uniform64({3, 4}, -3, 3), uniform64({3, 4}, -1, 1)});
    CHECK_GRADCHECK([r](const Inputs& in) { return tg::poisson_nll_loss(in[0], in[1], true, true, 1e-8, r); },
                    {uniform64({3, 4}, -2, 2), uniform64({3, 4}, 1.5, 6)});
    CHECK_GRADCHECK([r](const Inputs& in) { return tg::poisson_nll_loss(in[0], in[1], false, false, 1e-8, r); },
                    {uniform64({3, 4}, 0.2, 3), uniform64({3, 4}, 0, 6)});
    CHECK_GRADCHECK([r](const Inputs& in) { return tg::multilabel_soft_margin_loss(in[0], in[1], Tensor(), r); },
                    {uniform64({3, 4}, -3, 3), uniform64({3, 4}, 0, 1)});
    CHECK_GRADCHECK([r](const Inputs& in) { return tg::multilabel_soft_margin_loss(in[0], in[1], in[2], r); },
                    {uniform64({4}, -3, 3), uniform64({4}, 0, 1), uniform64({4}, 0.5, 2)});
  }
  // The fused kernels against the definitions written in ops, 100,003 values (blocks and a tail).
  for (tg::DType dtype : {tg::kFloat64, tg::kFloat32}) {
    INFO(tg::dtype_name(dtype));
    const tg::Shape shape{100'003};
    const Tensor x = tg::randn(shape, dtype) * 2.0;
    const Tensor log_p = tg::log_softmax(x, 0), q = tg::softmax(tg::randn(shape, dtype), 0);
    const Tensor sign = tg::where(tg::gt(tg::randn(shape, dtype), 0.0), tg::ones(shape, dtype), -tg::ones(shape, dtype));
    const Tensor counts = tg::randint(0, 6, shape).to(dtype);
    const double tol = dtype == tg::kFloat64 ? 1e-12 : 1e-5;
    auto near = [tol](const Tensor& got, const Tensor& expected) {
      return tg::max(tg::abs(got - expected)).item() <= tol * std::max(1.0, tg::max(tg::abs(expected)).item());
    };
    CHECK(near(tg::kl_div(log_p, q, Reduction::Sum), tg::sum(q * (tg::log(q) - log_p))));
    CHECK(near(tg::kl_div(log_p, tg::log(q), Reduction::None, true), q * (tg::log(q) - log_p)));
    CHECK(near(tg::soft_margin_loss(x, sign), tg::mean(tg::log(1.0 + tg::exp(-sign * x)))));
    CHECK(near(tg::poisson_nll_loss(x, counts, true, false, 1e-8, Reduction::None), tg::exp(x) - counts * x));
    const Tensor stirling = tg::where(tg::gt(counts, 1.0),
                                      counts * tg::log(counts) - counts + 0.5 * tg::log(2 * std::numbers::pi * counts),
                                      tg::zeros(shape, dtype));
    CHECK(near(tg::poisson_nll_loss(tg::exp(x), counts, false, true, 1e-8, Reduction::None),
               tg::exp(x) - counts * tg::log(tg::exp(x) + 1e-8) + stirling));
  }
  const Tensor a = tg::randn({2, 3}, tg::kFloat64), b = tg::rand({2, 3}, tg::kFloat64);
  CHECK_THROWS_WITH_AS(tg::kl_div(a, tg::rand({3, 2}, tg::kFloat64)),
                       "kl_div: input [2, 3] and target [3, 2] must have the same shape", tg::Error);
  CHECK_THROWS_WITH_AS(tg::kl_div(a, b.to(tg::kFloat32)),
                       "kl_div: input and target must share one floating-point dtype, got float64 and float32", tg::Error);
  CHECK(std::isnan(tg::kl_div(a, -b, Reduction::Sum).item()));  // a negative probability
  CHECK_THROWS_WITH_AS(tg::mse_loss(a, b, Reduction::BatchMean),
                       "mse_loss: reduction batchmean is kl_div's only (use mean, sum or none)", tg::Error);
  CHECK_THROWS_WITH_AS(tg::cross_entropy(a, Tensor(std::vector<std::int64_t>{0, 1}, {2}), with(Tensor(), 0, Reduction::BatchMean)),
                       "cross_entropy: reduction batchmean is kl_div's only (use mean, sum or none)", tg::Error);
  CHECK_THROWS_WITH_AS(tg::soft_margin_loss(a, b, Reduction::BatchMean),
                       "soft_margin_loss: reduction batchmean is kl_div's only (use mean, sum or none)", tg::Error);
  CHECK_THROWS_WITH_AS(tg::poisson_nll_loss(a, b, true, false, 0.0), "poisson_nll_loss: eps must be positive, got 0",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::multilabel_soft_margin_loss(tg::randn({2, 3, 4}), tg::rand({2, 3, 4})),
                       "multilabel_soft_margin_loss: expected input (N, C) or (C), got [2, 3, 4]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::multilabel_soft_margin_loss(a, b, tg::ones({2}, tg::kFloat64)),
                       "multilabel_soft_margin_loss: weight must be a float64 tensor of shape [3], got float64 [2]",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::nn::MSELoss(Reduction::BatchMean),
                       "MSELoss: reduction batchmean is KLDivLoss's only (use mean, sum or none)", tg::Error);
  CHECK_THROWS_WITH_AS(tg::nn::HuberLoss(Reduction::Mean, 0.0), "HuberLoss: delta must be positive, got 0", tg::Error);
  std::ostringstream printed;
  printed << tg::nn::KLDivLoss(Reduction::BatchMean, true) << "|" << tg::nn::PoissonNLLLoss() << "|"
          << tg::nn::HuberLoss(Reduction::Sum, 0.5) << "|" << tg::nn::SoftMarginLoss() << "|"
          << tg::nn::MultiLabelSoftMarginLoss();
  CHECK(printed.str() == "KLDivLoss(reduction=batchmean, log_target=true)|PoissonNLLLoss(reduction=mean, log_input=true, "
                         "full=false, eps=1e-08)|HuberLoss(reduction=sum, delta=0.5)|SoftMarginLoss(reduction=mean)|"
                         "MultiLabelSoftMarginLoss(reduction=mean)");
  // The modules call the functions.
  const Tensor log_a = tg::log_softmax(a, 1), probs = tg::softmax(b, 1);
  CHECK(tg_test::bitwise_equal(tg::nn::KLDivLoss(Reduction::BatchMean)(log_a, probs), tg::kl_div(log_a, probs, Reduction::BatchMean)));
  CHECK(tg_test::bitwise_equal(tg::nn::PoissonNLLLoss(false, true)(b, a * a), tg::poisson_nll_loss(b, a * a, false, true)));
  CHECK(tg_test::bitwise_equal(tg::nn::SoftMarginLoss(Reduction::Sum)(a, b), tg::soft_margin_loss(a, b, Reduction::Sum)));
  const Tensor w = tg::rand({3}, tg::kFloat64);
  CHECK(tg_test::bitwise_equal(tg::nn::MultiLabelSoftMarginLoss(w)(a, b), tg::multilabel_soft_margin_loss(a, b, w)));
}

// Golden values: /usr/bin/python3 with torch 1.13, float64 (seq as tg_test::seq):
//   a = seq((3, 4), torch.sin, 2.0); b = seq((3, 4), torch.cos, 1.5); c = seq((3, 4), lambda v: torch.sin(v * 0.7 + 1), 2.0)
//   F.cosine_similarity(a, b, dim=1), (a, b[:1], dim=0); F.pairwise_distance(a, b) with p 2, 1 (keepdim), 3, inf
//   y = [1, -1, 1]: F.cosine_embedding_loss(a, b, y), (margin=-0.2, 'none')
//   s = [1, -1, -1, 1]: F.margin_ranking_loss(a[0], b[0], s, margin=0.5), ('none')
//   signs = torch.sign(seq((3, 4), torch.cos)): F.hinge_embedding_loss(a, signs), (margin=2.0, 'none')
//   F.triplet_margin_loss(a, b, c, margin=3.0), (margin=3.0, p=1, swap=True, 'none')
//   out.backward(seq(out.shape, torch.cos)) for a tensor, out.backward(0.75) for a number; the inputs' grads
TEST_CASE("cosine_similarity, pairwise_distance and the embedding and ranking losses match PyTorch") {
  namespace nn = tg::nn;
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const Tensor a = tg_test::seq({3, 4}, tg_test::sin_, 2.0), b = tg_test::seq({3, 4}, tg_test::cos_, 1.5);
  const Tensor c = tg_test::seq({3, 4}, [](double v) { return std::sin(v * 0.7 + 1); }, 2.0);
  const Tensor b_row = b.narrow(0, 0, 1), a_row = a.narrow(0, 0, 1).reshape({4}), b_first = b.narrow(0, 0, 1).reshape({4});
  const Tensor pair_signs({1.0, -1.0, 1.0}, tg::kFloat64), rank_signs({1.0, -1.0, -1.0, 1.0}, tg::kFloat64);
  std::vector<double> sign;
  for (double v : tg_test::flat(tg_test::seq({3, 4}, tg_test::cos_))) sign.push_back(v > 0 ? 1.0 : -1.0);
  const Tensor signs(sign, {3, 4});
  tg_test::check_golden({
      {"cosine_similarity dim1", [&](const Inputs& in) { return tg::cosine_similarity(in[0], in[1]); }, {a, b},
       {-0.032546705513238725, 0.22484300467882404, -0.03456404875579332},
       {{0.2564336605508296, 0.1473589178984891, -0.09719693428925456, -0.25239037333808567, -0.06532948579125465, 0.06741019640944952, 0.13817325490935414, 0.0819004600642111, 0.012615229591145768, 0.09601139598660335, 0.09113512769121593, 0.002469643287699285},
        {0.008873668072063103, 0.2925031098296448, 0.30720654135705455, 0.039465695516340354, -0.10980550832526503, -0.18420125563931597, -0.08924321800619311, 0.0877646226956375, -0.13986467920948348, -0.0530172547445201, 0.08257398923095795, 0.14224708831695512}}},
      {"cosine_similarity dim0 broadcast", [&](const Inputs& in) { return tg::cosine_similarity(in[0], in[1], 0); }, {a, b_row},
       {0.10779023150670636, 0.1268935960826756, -0.04523653426390273, 0.09674486080464495},
       {{0.23175137767393414, 0.10028866792977278, 0.10249808204811411, 0.24186348395221405, 0.2580393966438235, 0.13462527452560535, 0.11181543987650516, 0.2588828036629419, 0.19738538586431453, 0.10847715198125343, 0.11388946895866264, 0.20421630943209626},
        {5.551115123125783e-17, 2.7755575615628914e-17, 5.551115123125783e-17, 0}}},
      {"pairwise_distance p2", [&](const Inputs& in) { return tg::pairwise_distance(in[0], in[1]); }, {a, b},
       {3.4787478371574476, 3.1313509436861766, 3.6989814563296433},
       {{-0.43118934461937847, 0.25080562077374124, 0.7022113193660365, 0.5080074336357878, -0.0919909643244765, -0.4043342555064002, -0.3449343382206317, 0.031596777517047044, -0.2471656330828848, -0.24648676912588846, -0.019189209801346214, 0.2257507170841584},
        {0.43118934461937847, -0.25080562077374124, -0.7022113193660365, -0.5080074336357878, 0.0919909643244765, 0.4043342555064002, 0.3449343382206317, -0.031596777517047044, 0.2471656330828848, 0.24648676912588846, 0.019189209801346214, -0.2257507170841584}}},
      {"pairwise_distance p1 keepdim", [&](const Inputs& in) { return tg::pairwise_distance(in[0], in[1], 1.0, 1e-6, true); }, {a, b},
       {6.582534380306063, 5.058685629137577, 6.565084939189635},
       {{-1, 1, 1, 1, -0.5403023058681398, -0.5403023058681398, -0.5403023058681398, 0.5403023058681398, -0.4161468365471424, -0.4161468365471424, -0.4161468365471424, 0.4161468365471424},
        {1, -1, -1, -1, 0.5403023058681398, 0.5403023058681398, 0.5403023058681398, -0.5403023058681398, 0.4161468365471424, 0.4161468365471424, 0.4161468365471424, -0.4161468365471424}}},
      {"pairwise_distance p3", [&](const Inputs& in) { return nn::PairwiseDistance(3.0)(in[0], in[1]); }, {a, b},
       {2.8899191191096323, 2.75956207689029, 3.07955904168075},
       {{-0.26940804638627486, 0.09114840064058374, 0.7145130642537564, 0.37395096379404724, -0.020166785221537434, -0.3896075850445026, -0.2835431704292203, 0.0023792052766604204, -0.21179553979054389, -0.2106337042780571, -0.001276599950543972, 0.17668468963880274},
        {0.26940804638627486, -0.09114840064058374, -0.7145130642537564, -0.37395096379404724, 0.020166785221537434, 0.3896075850445026, 0.2835431704292203, -0.0023792052766604204, 0.21179553979054389, 0.2106337042780571, 0.001276599950543972, -0.17668468963880274}}},
      {"pairwise_distance pinf", [&](const Inputs& in) { return tg::pairwise_distance(in[0], in[1], kInf); }, {a, b},
       {2.442816108472077, 2.343340827521116, 2.196967543959684},
       {{-0, 0, 1, 0, -0, -0.5403023058681398, -0, 0, -0.4161468365471424, -0, -0, 0},
        {0, -0, -1, -0, 0, 0.5403023058681398, 0, -0, 0.4161468365471424, 0, 0, -0}}},
      {"cosine_embedding mean", [&](const Inputs& in) { return tg::cosine_embedding_loss(in[0], in[1], pair_signs); }, {a, b},
       {0.7639845863159348},
       {{-0.06410841513769641, -0.036839729474615605, 0.02429923357230986, 0.06309759333451066, -0.03022820978261278, 0.031190962761634765, 0.06393330798732985, 0.03789566469302979, 0.007578592748544493, 0.05767879721447094, 0.054749381520814475, 0.001483636946630216},
        {-0.0022184170180149904, -0.07312577745739844, -0.07680163533925063, -0.009866423879083801, -0.050807440174079954, -0.08523064478843606, -0.04129318764556074, 0.04060903578535158, -0.08402363476431973, -0.03185008877179429, 0.04960628195330892, 0.08545486582163007}}},
      {"cosine_embedding none margin", [&](const Inputs& in) { return nn::CosineEmbeddingLoss(-0.2, Reduction::None)(in[0], in[1], pair_signs); }, {a, b},
       {1.0325467055132331, 0.424843004678785, 1.0345640487557866},
       {{-0.25643366055078565, -0.14735891789846242, 0.09719693428923944, 0.25239037333804265, -0.06532948579124617, 0.06741019640943416, 0.1381732549093291, 0.08190046006419938, -0.012615229591143617, -0.09601139598658484, -0.09113512769119808, -0.002469643287698504},
        {-0.008873668072059962, -0.29250310982959377, -0.30720654135700254, -0.039465695516335206, -0.10980550832525185, -0.1842012556392814, -0.08924321800616897, 0.08776462269562904, 0.1398646792094566, 0.05301725474451142, -0.08257398923094043, -0.14224708831692753}}},
      {"margin_ranking mean", [&](const Inputs& in) { return tg::margin_ranking_loss(in[0], in[1], rank_signs, 0.5); }, {a_row, b_first},
       {1.578825904821415},
       {{-0.1875, 0.1875, 0.1875, -0},
        {0.1875, -0.1875, -0.1875, 0}}},
      {"margin_ranking none", [&](const Inputs& in) { return nn::MarginRankingLoss(0.0, Reduction::None)(in[0], in[1], rank_signs); }, {a_row, b_first},
       {1.5, 0.8724885108135834, 2.442815108472077, 0},
       {{-1, 0.5403023058681398, -0.4161468365471424, -0},
        {1, -0.5403023058681398, 0.4161468365471424, 0}}},
      {"hinge mean", [&](const Inputs& in) { return tg::hinge_embedding_loss(in[0], signs); }, {a},
       {0.3346187861682653},
       {{0.0625, 0.0625, 0, -0.0625, -0.0625, 0.0625, 0.0625, 0.0625, 0, -0.0625, -0.0625, 0.0625}}},
      {"hinge none margin2", [&](const Inputs& in) { return nn::HingeEmbeddingLoss(2.0, Reduction::None)(in[0], signs); }, {a},
       {0, 1.682941969615793, 0.18140514634863658, 1.7177599838802655, 3.5136049906158564, -1.917848549326277, -0.5588309963978517, 1.3139731974375781, 0.021283506753236425, 1.175763029516487, 3.0880422217787395, -1.999980413101407},
       {{1, 0.5403023058681398, 0.4161468365471424, 0.9899924966004454, 0.6536436208636119, 0.28366218546322625, 0.960170286650366, 0.7539022543433046, 0.14550003380861354, 0.9111302618846769, 0.8390715290764524, 0.004425697988050785}}},
      {"triplet mean", [&](const Inputs& in) { return tg::triplet_margin_loss(in[0], in[1], in[2], 3.0); }, {a, b, c},
       {3.4382478610851677},
       {{0.12810700707710332, 0.10480776362630849, 0.10999778870742145, 0.09909608829354266, -0.012460767638968601, -0.19095144795204777, -0.28505702038529795, -0.1994827875814047, 0.07792911110466792, 0.1937022572385127, 0.1711407193334695, 0.03748146133856428},
        {0.10779733615484462, -0.06270140519343531, -0.17555282984150913, -0.12700185840894695, 0.04256458066409159, 0.18708704882201518, 0.15960247368665337, -0.01461995311415449, -0.1484846281264985, -0.14807680095026127, -0.011527908009924521, 0.13561962825264962},
        {-0.23590434323194792, -0.04210635843287318, 0.06555504113408768, 0.027905770115404294, -0.03010381302512299, 0.0038643991300325777, 0.1254545466986446, 0.21410274069555918, 0.07055551702183059, -0.04562545628825142, -0.159612811323545, -0.1731010895912139}}},
      {"triplet none p1 swap", [&](const Inputs& in) { return nn::TripletMarginLoss(3.0, 1.0, 1e-6, true, Reduction::None)(in[0], in[1], in[2]); }, {a, b, c},
       {6.932457575598912, 4.461777892262735, 1.0995638273220827},
       {{0, 2, 0, 0, 0, -1.0806046117362795, -1.0806046117362795, 0, -0.4161468365471424, -0.4161468365471424, -0.4161468365471424, 0.4161468365471424},
        {1, -1, -1, -1, 0.5403023058681398, 0.5403023058681398, 0.5403023058681398, -0.5403023058681398, 0, 0, 0, -0.8322936730942848},
        {-1, -1, 1, 1, -0.5403023058681398, 0.5403023058681398, 0.5403023058681398, 0.5403023058681398, 0.4161468365471424, 0.4161468365471424, 0.4161468365471424, 0.4161468365471424}}}});
}

// gradcheck away from the kinks (the hinge at margin, ranking and triplet margins, ties of the
// infinity norm), errors, printing.
TEST_CASE("distances and embedding losses: gradcheck, errors, printing") {
  namespace nn = tg::nn;
  tg::manual_seed(23);
  CHECK_GRADCHECK([](const Inputs& in) { return tg::cosine_similarity(in[0], in[1]); }, {uniform64({3, 4}), uniform64({3, 4})});
  CHECK_GRADCHECK([](const Inputs& in) { return tg::cosine_similarity(in[0], in[1], -1); }, {uniform64({2, 3, 4}), uniform64({4})});
  for (double p : {1.0, 2.0, 3.0, 0.5}) {
    INFO("p ", p);
    CHECK_GRADCHECK([p](const Inputs& in) { return tg::pairwise_distance(in[0], in[1], p); },
                    {uniform64({3, 4}, 1, 2), uniform64({3, 4}, -2, -1)});
  }
  const Tensor y3({1.0, -1.0, 1.0}, tg::kFloat64);
  for (Reduction r : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
    INFO("reduction ", tg::reduction_name(r));
    CHECK_GRADCHECK([&](const Inputs& in) { return tg::cosine_embedding_loss(in[0], in[1], y3, -0.5, r); },
                    {uniform64({3, 4}), uniform64({3, 4})});
    CHECK_GRADCHECK([&](const Inputs& in) { return tg::margin_ranking_loss(in[0], in[1], y3, 5.0, r); },
                    {uniform64({3}), uniform64({3})});
    CHECK_GRADCHECK([&](const Inputs& in) { return tg::hinge_embedding_loss(in[0], y3, 5.0, r); }, {uniform64({3})});
    CHECK_GRADCHECK([&](const Inputs& in) { return tg::triplet_margin_loss(in[0], in[1], in[2], 10.0, 2.0, 1e-6, true, r); },
                    {uniform64({3, 4}), uniform64({3, 4}, 2, 3), uniform64({3, 4}, -3, -2)});
  }
  CHECK(tg::cosine_similarity(tg::zeros({2, 3}), tg::ones({2, 3})).to_vector<float>() == std::vector<float>{0, 0});
  CHECK_THROWS_WITH_AS(tg::cosine_similarity(tg::ones({2, 3}), tg::ones({2, 3}, tg::kFloat64)),
                       "cosine_similarity: x1 and x2 must share one floating-point dtype, got float32 and float64", tg::Error);
  CHECK_THROWS_AS(tg::cosine_similarity(tg::ones({2, 3}), tg::ones({4, 3})), tg::Error);
  CHECK_THROWS_WITH_AS(tg::pairwise_distance(tg::ones({2, 3}), tg::ones({2, 3}), 0.0),
                       "pairwise_distance: p must be positive (or infinity), got 0", tg::Error);
  CHECK_THROWS_WITH_AS(tg::cosine_embedding_loss(tg::ones({2, 3}), tg::ones({2, 3}), tg::ones({3})),
                       "cosine_embedding_loss: expected y (N) = [2] for inputs [2, 3], got [3]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::margin_ranking_loss(tg::ones({2}), tg::ones({2}), tg::ones({3})),
                       "margin_ranking_loss: x1, x2 and y must have one shape, got [2], [2] and [3]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::triplet_margin_loss(tg::ones({2, 3}), tg::ones({2, 3}), tg::ones({2, 3, 1})),
                       "triplet_margin_loss: expected anchor, positive and negative of one rank, (N, D) or (D), got [2, 3], "
                       "[2, 3] and [2, 3, 1]", tg::Error);
  CHECK_THROWS_WITH_AS(nn::TripletMarginLoss(1.0, -1.0), "TripletMarginLoss: p must be positive (or infinity), got -1",
                       tg::Error);
  CHECK_THROWS_WITH_AS(nn::CosineEmbeddingLoss(0.0, Reduction::BatchMean),
                       "CosineEmbeddingLoss: reduction batchmean is KLDivLoss's only (use mean, sum or none)", tg::Error);
  CHECK_THROWS_WITH_AS(nn::CosineSimilarity().forward(tg::ones({2})), "CosineSimilarity: this module has no forward(input)",
                       tg::Error);
  std::ostringstream printed;
  printed << nn::CosineSimilarity() << "|" << nn::PairwiseDistance() << "|" << nn::TripletMarginLoss() << "|"
          << nn::MarginRankingLoss() << "|" << nn::CosineEmbeddingLoss(0.5) << "|" << nn::HingeEmbeddingLoss();
  CHECK(printed.str() == "CosineSimilarity(dim=1, eps=1e-08)|PairwiseDistance(p=2, eps=1e-06, keepdim=false)|"
                         "TripletMarginLoss(margin=1, p=2, eps=1e-06, swap=false, reduction=mean)|"
                         "MarginRankingLoss(margin=0, reduction=mean)|CosineEmbeddingLoss(margin=0.5, reduction=mean)|"
                         "HingeEmbeddingLoss(margin=1, reduction=mean)");
}

TEST_CASE("fused elementwise losses equal their definitions on long inputs, in every reduction and dtype") {
  for (const LossDefinition& def : loss_definitions())
    for (const tg::DType dtype : {tg::kFloat32, tg::kFloat64})
      for (const std::size_t n : {std::size_t(1), std::size_t(17), std::size_t(100'003)}) {
        INFO(def.name, " ", tg::dtype_name(dtype), " n = ", n);
        tg::manual_seed(n);
        const bool logits = std::string(def.name).find("logits") != std::string::npos;
        std::vector<double> x64 = tg_test::flat(uniform64({n}, -3, 3)), t64 = tg_test::flat(uniform64({n}, -3, 3));
        if (logits) t64 = tg_test::flat(uniform64({n}, 0, 1));
        for (std::size_t i = 0; i < def.special.size() && i < n; ++i) {
          x64[(i * 7919) % n] = def.special[i].first;
          t64[(i * 7919) % n] = def.special[i].second;
        }
        Tensor x = Tensor(x64, {n}).to(dtype).set_requires_grad(), t = Tensor(t64, {n}).to(dtype).set_requires_grad();
        const double eps = dtype == tg::kFloat32 ? 0x1p-23 : 0x1p-52;
        const std::vector<double> xs = tg_test::flat(x), ts = tg_test::flat(t);
        const Tensor g = tg::rand({n}, dtype) + 0.5;
        const std::vector<double> gs = tg_test::flat(g);
        // The values' scale: what a term's rounding is relative to (bce's parts can cancel).
        auto scale = [&](std::size_t i) {
          return std::fabs(xs[i]) + std::fabs(ts[i]) + std::fabs(xs[i] * ts[i]) +
                 std::fabs(double(def.term(xs[i], ts[i]))) + 1e-30;
        };
        for (const Reduction r : {Reduction::None, Reduction::Sum, Reduction::Mean}) {
          INFO("reduction ", tg::reduction_name(r));
          x.set_grad(Tensor());
          t.set_grad(Tensor());
          const Tensor out = def.loss(x, t, r);
          const double weight = r == Reduction::Mean ? 1.0 / double(n) : 1.0;
          if (r == Reduction::None) {
            out.backward(g);
            const std::vector<double> values = tg_test::flat(out);
            std::size_t wrong = 0;
            for (std::size_t i = 0; i < n; ++i)
              wrong += !(std::fabs(values[i] - double(def.term(xs[i], ts[i]))) <= 8 * eps * scale(i));
            CHECK(wrong == 0);
          } else {
            out.backward();
            long double total = 0, size = 0;
            for (std::size_t i = 0; i < n; ++i) {
              total += def.term(xs[i], ts[i]);
              size += scale(i);
            }
            CHECK(std::fabs(out.item() - double(total) * weight) <= 8 * eps * double(size) * weight);
          }
          const std::vector<double> dx = tg_test::flat(x.grad()), dt = tg_test::flat(t.grad());
          std::size_t wrong = 0;
          for (std::size_t i = 0; i < n; ++i) {
            const double factor = r == Reduction::None ? gs[i] : weight;
            const auto ex = double(def.dx(xs[i], ts[i])) * factor, et = double(def.dt(xs[i], ts[i])) * factor;
            wrong += !(std::fabs(dx[i] - ex) <= 8 * eps * (std::fabs(ex) + factor)) ||
                     !(std::fabs(dt[i] - et) <= 8 * eps * (std::fabs(et) + factor));
          }
          CHECK(wrong == 0);
        }
        // The sums are cut into the same blocks for any thread count.
        tg::set_num_threads(1);
        const Tensor one = def.loss(x, t, Reduction::Sum);
        tg::set_num_threads(2);
        CHECK(tg_test::bitwise_equal(one, def.loss(x, t, Reduction::Sum)));
      }
}
