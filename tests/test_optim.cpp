// Optimizers, schedulers and clipping against PyTorch, parameter groups, validation, threads, and
// a training run that is saved, resumed and ends bit-identical to one that never stopped.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include "../core/xtensor.hpp"

#include "helpers.hpp"

using tg::Tensor;
using tg_test::bitwise_equal;
using tg_test::check_close;
namespace nn = tg::nn;
namespace optim = tg::optim;

#include "data/optim_golden.inc"

namespace {

// The problem of tests/data/make_optim_golden.py: mse(x·wᵀ + b, y) from w0, b0.
struct Problem {
  Tensor x = Tensor({{0.5, -1.0, 2.0}, {1.5, 0.25, -0.75}, {-0.3, 0.8, 0.1}, {2.0, -0.5, 1.0}});
  Tensor y = Tensor({{1.0, -2.0}, {0.5, 0.3}, {-1.0, 0.7}, {2.5, -0.4}});
  Tensor w = Tensor({{0.1, -0.2, 0.3}, {0.4, 0.0, -0.1}}).set_requires_grad();
  Tensor b = Tensor({0.05, -0.05}).set_requires_grad();
  Tensor loss() const { return tg::mse_loss(tg::matmul(x, tg::transpose(w, 0, 1)) + b, y); }
};

std::unique_ptr<optim::OptimizerBase> make_optimizer(std::size_t config, Problem& p) {
  const std::vector<Tensor> params{p.w, p.b};
  switch (config) {
    case 0: return std::make_unique<optim::SGD>(params, optim::SGDOptions(0.1));
    case 1: return std::make_unique<optim::SGD>(params, optim::SGDOptions(0.05).momentum(0.9).dampening(0.1).weight_decay(0.01));
    case 2: return std::make_unique<optim::SGD>(params, optim::SGDOptions(0.05).momentum(0.9).nesterov(true).weight_decay(0.001));
    case 3: return std::make_unique<optim::Adam>(params, optim::AdamOptions(0.01));
    case 4: return std::make_unique<optim::Adam>(params, optim::AdamOptions(0.02).betas({0.8, 0.99}).weight_decay(0.1).amsgrad(true));
    case 5: return std::make_unique<optim::AdamW>(params, optim::AdamWOptions(0.01));
    case 6: return std::make_unique<optim::AdamW>(params, optim::AdamWOptions(0.02).weight_decay(0.1).amsgrad(true));
    case 7: return std::make_unique<optim::RMSprop>(params, optim::RMSpropOptions(0.01));
    case 8: return std::make_unique<optim::RMSprop>(params, optim::RMSpropOptions(0.01).alpha(0.9).momentum(0.5).centered(true).weight_decay(0.01));
    case 9: return std::make_unique<optim::Adagrad>(params, optim::AdagradOptions(0.1));
    case 10: return std::make_unique<optim::Adagrad>(params, optim::AdagradOptions(0.1).lr_decay(0.01).weight_decay(0.05).initial_accumulator_value(0.1));
    case 11:  // per-group options override the constructor's defaults, as PyTorch's group dicts
      return std::make_unique<optim::SGD>(
          std::vector<optim::ParamGroup<optim::SGDOptions>>{{{p.w}, [](auto& o) { o.momentum(0.9); }},
                                                            {{p.b}, [](auto& o) { o.lr(0.01); }}},
          optim::SGDOptions(0.1));
    case 12: return std::make_unique<optim::SGD>(params, optim::SGDOptions(0.05).momentum(0.9).weight_decay(0.01).maximize(true));
    case 13: return std::make_unique<optim::Adam>(params, optim::AdamOptions(0.01).weight_decay(0.1).amsgrad(true).maximize(true));
    case 14: return std::make_unique<optim::AdamW>(params, optim::AdamWOptions(0.01).maximize(true));
    case 15: return std::make_unique<optim::RMSprop>(params, optim::RMSpropOptions(0.01).momentum(0.5).centered(true).weight_decay(0.01).maximize(true));
    case 16: return std::make_unique<optim::Adagrad>(params, optim::AdagradOptions(0.1).lr_decay(0.01).weight_decay(0.05).maximize(true));
    default:
      return std::make_unique<optim::Adam>(
          std::vector<optim::ParamGroup<optim::AdamOptions>>{
              {{p.w}, [](auto& o) { o.betas({0.5, 0.9}); }}, {{p.b}, [](auto& o) { o.lr(0.05).amsgrad(true); }}},
          optim::AdamOptions(0.01).weight_decay(0.01));
  }
}

}  // namespace

TEST_CASE("every optimizer configuration follows PyTorch's trajectory for 25 steps") {
  const auto golden = optim_golden();
  REQUIRE(golden.size() == 18);
  for (std::size_t config = 0; config < golden.size(); ++config) {
    Problem p;
    auto opt = make_optimizer(config, p);
    for (std::size_t step = 0; step < golden[config].size(); ++step) {
      opt->zero_grad();
      p.loss().backward();
      opt->step();
      INFO("config ", config, " step ", step);  // within ~4 float32 ulps of PyTorch
      std::vector<double> got = tg_test::flat(p.w);
      got.push_back(p.b.values<float>()(0));
      got.push_back(p.b.values<float>()(1));
      for (std::size_t i = 0; i < got.size(); ++i)
        CHECK(std::abs(got[i] - golden[config][step][i]) <= 5e-7 * std::max(1.0, std::abs(golden[config][step][i])));
    }
  }
}

TEST_CASE("schedulers give PyTorch's learning rates for 35 steps") {
  const auto golden = scheduler_golden();
  const std::vector<double> metrics = {1.0, 0.9, 0.95, 0.91, 0.92, 0.93, 0.85, 0.86, 0.87, 0.88, 0.88, 0.89,
                                       0.8, 0.81, 0.82, 0.83, 0.84, 0.85, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7,
                                       0.7, 0.7, 0.7, 0.69, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7};
  for (std::size_t kind = 0; kind < golden.size(); ++kind) {
    Tensor p = tg::zeros({1}).set_requires_grad();
    optim::SGD opt({p}, optim::SGDOptions(0.5));
    std::unique_ptr<optim::LRScheduler> scheduler;
    std::unique_ptr<optim::ReduceLROnPlateau> plateau;
    switch (kind) {
      case 0: scheduler = std::make_unique<optim::StepLR>(opt, 7, 0.5); break;
      case 1: scheduler = std::make_unique<optim::MultiStepLR>(opt, std::vector<std::int64_t>{5, 12, 12, 20}, 0.3); break;
      case 2: scheduler = std::make_unique<optim::ExponentialLR>(opt, 0.9); break;
      case 3: scheduler = std::make_unique<optim::CosineAnnealingLR>(opt, 10, 0.01); break;
      case 4: scheduler = std::make_unique<optim::LinearLR>(opt, 0.25, 1.0, 8); break;
      default:
        plateau = std::make_unique<optim::ReduceLROnPlateau>(
            opt, optim::ReduceLROnPlateauOptions().factor(0.5).patience(2).threshold(0.01).cooldown(1).min_lr(0.02));
    }
    std::vector<double> lrs{opt.lr(0)};
    for (std::size_t k = 0; k < 35; ++k) {
      if (scheduler) scheduler->step();
      else plateau->step(metrics[k]);
      lrs.push_back(opt.lr(0));
      CHECK((scheduler ? scheduler->get_last_lr() : plateau->get_last_lr())[0] == opt.lr(0));
    }
    INFO("scheduler ", kind);
    REQUIRE(lrs.size() == golden[kind].size());
    for (std::size_t i = 0; i < lrs.size(); ++i) CHECK(lrs[i] == doctest::Approx(golden[kind][i]).epsilon(1e-12));
  }
}

TEST_CASE("every optimizer decreases the loss of a small regression problem") {
  for (std::size_t config = 0; config < 18; ++config) {
    if (config >= 12 && config <= 16) continue;  // maximize climbs the loss
    Problem p;
    auto opt = make_optimizer(config, p);
    const double first = p.loss().item();
    for (int step = 0; step < 60; ++step) {
      opt->zero_grad();
      p.loss().backward();
      opt->step();
    }
    INFO("config ", config);
    CHECK(p.loss().item() < 0.8 * first);
  }
}

TEST_CASE("parameters without a gradient are skipped") {
  Tensor a = tg::ones({2}).set_requires_grad(), frozen = tg::ones({2}).set_requires_grad();
  optim::Adam opt({a, frozen}, optim::AdamOptions(0.1));
  tg::sum(a * a).backward();
  opt.step();
  check_close(frozen, {1, 1}, 0);
  CHECK(a.values<float>()(0) < 1.0f);
  CHECK(opt.state_dict().contains("state.0.exp_avg"));
  CHECK_FALSE(opt.state_dict().contains("state.1.exp_avg"));
}

TEST_CASE("clip_grad_norm_ of long gradients of both dtypes equals a long double sum, for orders 1, 2, 3 and inf") {
  // Gradients of 1, 17 and 100,003 values (SIMD lanes and a tail), one with a value of 1e30 among
  // small ones in float64; the norms of orders 1 and 2 are lane sums, the others value by value.
  for (tg::DType dtype : {tg::kFloat32, tg::kFloat64})
    for (double order : {1.0, 2.0, 3.0, double(INFINITY)}) {
      tg::manual_seed(8);
      std::vector<Tensor> params;
      long double total = 0;
      for (std::size_t n : {1, 17, 100003}) {
        Tensor w = tg::zeros({n}, dtype).set_requires_grad();
        Tensor g = tg::randn({n}).to(dtype);
        if (dtype == tg::kFloat64 && n == 17) g.values_mut<double>()(5) = 1e30;
        w.set_grad(g);
        params.push_back(w);
        long double sum = 0;
        for (double v : tg_test::flat(g)) {
          const long double a = std::fabs((long double)v);
          sum = std::isinf(order) ? std::max(sum, a) : sum + std::pow(a, (long double)order);
        }
        const long double norm = std::isinf(order) ? sum : std::pow(sum, 1.0L / (long double)order);
        total = std::isinf(order) ? std::max(total, norm) : total + std::pow(norm, (long double)order);
      }
      if (!std::isinf(order)) total = std::pow(total, 1.0L / (long double)order);
      INFO(tg::dtype_name(dtype), " order ", order);
      CHECK(optim::clip_grad_norm_(params, 1.0, order) == doctest::Approx(double(total)).epsilon(1e-12));
    }
}

TEST_CASE("gradient clipping matches PyTorch") {
  for (bool infinity : {false, true}) {
    Problem p;
    p.loss().backward();
    const double total = infinity ? optim::clip_grad_norm_({p.w, p.b}, 0.3, INFINITY)
                                  : optim::clip_grad_norm_({p.w, p.b}, 0.5);
    const std::vector<double> golden = infinity ? clip_golden_inf() : clip_golden_l2();
    CHECK(total == doctest::Approx(golden[0]).epsilon(1e-6));
    std::vector<double> grads = tg_test::flat(p.w.grad());
    for (double v : tg_test::flat(p.b.grad())) grads.push_back(v);
    for (std::size_t i = 0; i < grads.size(); ++i) CHECK(grads[i] == doctest::Approx(golden[i + 1]).epsilon(1e-5));
  }
  Tensor q = tg::zeros({3}).set_requires_grad();
  tg::sum(q * Tensor({-3.0, 0.5, 2.0})).backward();
  optim::clip_grad_value_({q}, 1.0);
  check_close(q.grad(), {-1.0, 0.5, 1.0}, 0);
  CHECK(optim::clip_grad_norm_({tg::zeros({1}).set_requires_grad()}, 1.0) == 0.0);  // no gradients at all
}

TEST_CASE("invalid options name the option and its value") {
  Tensor p = tg::zeros({1}).set_requires_grad();
  CHECK_THROWS_WITH_AS(optim::SGD({p}, optim::SGDOptions(-0.1)), "SGD: invalid learning rate lr=-0.1 (must be >= 0)",
                       tg::Error);
  CHECK_THROWS_WITH_AS(optim::SGD({p}, optim::SGDOptions(0.1).nesterov(true)),
                       "SGD: nesterov needs momentum > 0 and dampening = 0, got momentum=0, dampening=0", tg::Error);
  CHECK_THROWS_WITH_AS(optim::SGD({p}, optim::SGDOptions(0.1).weight_decay(-1)),
                       "SGD: invalid weight_decay=-1 (must be >= 0)", tg::Error);
  CHECK_THROWS_WITH_AS(optim::Adam({p}, optim::AdamOptions().betas({0.9, 1.0})),
                       "Adam: invalid beta2=1 (must be in [0, 1))", tg::Error);
  CHECK_THROWS_WITH_AS(optim::AdamW({p}, optim::AdamWOptions().eps(-1e-8)), "AdamW: invalid eps=-1e-08 (must be >= 0)",
                       tg::Error);
  CHECK_THROWS_WITH_AS(optim::RMSprop({p}, optim::RMSpropOptions().momentum(-0.5)),
                       "RMSprop: invalid momentum=-0.5 (must be >= 0)", tg::Error);
  CHECK_THROWS_WITH_AS(optim::Adagrad({p}, optim::AdagradOptions().lr_decay(-1)),
                       "Adagrad: invalid lr_decay=-1 (must be >= 0)", tg::Error);
  CHECK_THROWS_WITH_AS(optim::SGD({p, p}, optim::SGDOptions(0.1)), "SGD: a parameter appears in more than one group",
                       tg::Error);
  CHECK_THROWS_WITH_AS(optim::SGD({tg::zeros({1})}, optim::SGDOptions(0.1)),
                       "SGD: can only optimize leaf tensors that require grad", tg::Error);
}

TEST_CASE("optimizer steps give the same bits with 1 and 2 threads") {
  auto run = [] {
    tg::manual_seed(12);
    Tensor w = tg::randn({300000}).set_requires_grad();
    optim::Adam opt({w}, optim::AdamOptions(0.01).amsgrad(true));
    for (int i = 0; i < 3; ++i) {
      opt.zero_grad();
      tg::sum(w * w * w).backward();
      opt.step();
    }
    return w;
  };
  tg::set_num_threads(1);
  const Tensor one = run();
  tg::set_num_threads(2);
  CHECK(bitwise_equal(one, run()));
}

TEST_CASE("every optimizer updates each value of a long parameter as it updates that value alone") {
  // The update loops are vectorised; the PyTorch trajectories above have 8 values, which the
  // loops' scalar remainder takes. Here each of 79 values (SIMD batches of every width the compiler
  // uses, then a remainder) must take bit for bit the steps it takes as a parameter of its own.
  using Make = std::function<std::unique_ptr<optim::OptimizerBase>(const std::vector<Tensor>&)>;
  auto sgd = [](optim::SGDOptions o) -> Make {
    return [o](const auto& ps) { return std::make_unique<optim::SGD>(ps, o); };
  };
  auto adam = [](optim::AdamOptions o) -> Make {
    return [o](const auto& ps) { return std::make_unique<optim::Adam>(ps, o); };
  };
  auto adamw = [](optim::AdamWOptions o) -> Make {
    return [o](const auto& ps) { return std::make_unique<optim::AdamW>(ps, o); };
  };
  auto rmsprop = [](optim::RMSpropOptions o) -> Make {
    return [o](const auto& ps) { return std::make_unique<optim::RMSprop>(ps, o); };
  };
  auto adagrad = [](optim::AdagradOptions o) -> Make {
    return [o](const auto& ps) { return std::make_unique<optim::Adagrad>(ps, o); };
  };
  const std::vector<Make> configs = {
      sgd(optim::SGDOptions(0.1)),
      sgd(optim::SGDOptions(0.05).momentum(0.9).dampening(0.1).weight_decay(0.01)),
      sgd(optim::SGDOptions(0.05).momentum(0.9).nesterov(true).weight_decay(0.001).maximize(true)),
      adam(optim::AdamOptions(0.01)),
      adam(optim::AdamOptions(0.02).betas({0.3, 0.99}).weight_decay(0.1).amsgrad(true).maximize(true)),
      adamw(optim::AdamWOptions(0.02).weight_decay(0.1).amsgrad(true)),
      rmsprop(optim::RMSpropOptions(0.01)),
      rmsprop(optim::RMSpropOptions(0.01).alpha(0.3).centered(true)),
      rmsprop(optim::RMSpropOptions(0.01).alpha(0.9).momentum(0.5).centered(true).weight_decay(0.01).maximize(true)),
      rmsprop(optim::RMSpropOptions(0.01).momentum(0.5).weight_decay(0.01)),
      adagrad(optim::AdagradOptions(0.1)),
      adagrad(optim::AdagradOptions(0.1).lr_decay(0.01).weight_decay(0.05).initial_accumulator_value(0.1)
                  .maximize(true)),
  };
  constexpr std::int64_t n = 79;
  for (tg::DType dtype : {tg::kFloat32, tg::kFloat64})
    for (std::size_t config = 0; config < configs.size(); ++config) {
      tg::manual_seed(5);
      const Tensor start = tg::randn({n}).to(dtype), c = tg::randn({n}).to(dtype);
      // Four steps, each with the gradient w·c + c (elementwise, so each value's own).
      auto train = [&](const Tensor& w0, const Tensor& cw) {
        Tensor w = w0.clone().set_requires_grad();
        auto opt = configs[config]({w});
        for (int step = 0; step < 4; ++step) {
          w.set_grad(w.detach() * cw + cw);
          opt->step();
        }
        return w.detach();
      };
      const Tensor whole = train(start, c);
      for (std::int64_t i = 0; i < n; ++i) {
        INFO("config ", config, " ", tg::dtype_name(dtype), " value ", i);
        CHECK(bitwise_equal(whole.narrow(0, i, 1), train(start.narrow(0, i, 1), c.narrow(0, i, 1))));
      }
    }
}

TEST_CASE("weight decay adds wd·p to the gradient with one rounding, as PyTorch's add(param, alpha=wd)") {
  // torch.randn(4096).add(torch.randn(4096), alpha=0.1) equals the correctly rounded g + 0.1f·p for
  // every value (and differs from the twice-rounded sum for about 9% of them). With lr 1 and no
  // momentum, SGD's step is p - (g + wd·p): the test recomputes it with std::fma.
  tg::manual_seed(6);
  const Tensor p0 = tg::randn({4096}), g = tg::randn({4096});
  Tensor p = p0.clone().set_requires_grad();
  p.set_grad(g);
  optim::SGD opt({p}, optim::SGDOptions(1.0).weight_decay(0.1));
  opt.step();
  const auto& got = p.values<float>();
  const auto& before = p0.values<float>();
  const auto& grad = g.values<float>();
  std::size_t differ_from_two_roundings = 0;
  for (std::size_t i = 0; i < 4096; ++i) {
    const float decayed = std::fma(0.1f, before[i], grad[i]);
    const float expected = before[i] - decayed;
    INFO("value ", i);
    CHECK(std::memcmp(&got.data()[i], &expected, sizeof(float)) == 0);
    const volatile float product = 0.1f * before[i];  // volatile: not fused
    if (grad[i] + product != decayed) ++differ_from_two_roundings;
  }
  CHECK(differ_from_two_roundings > 100);  // the test tells the two apart
}

TEST_CASE("a run saved mid-way and resumed ends bit-identical to one that never stopped") {
  tg::manual_seed(13);
  std::vector<std::pair<Tensor, Tensor>> batches;
  for (int i = 0; i < 10; ++i) batches.emplace_back(tg::randn({16, 4}), tg::randn({16, 1}));
  auto make_model = [] { return std::make_shared<nn::Sequential>(nn::Linear(4, 16), nn::BatchNorm1d(16), nn::ReLU(), nn::Linear(16, 1)); };
  struct Run {
    std::shared_ptr<nn::Sequential> model;
    std::unique_ptr<optim::Adam> opt;
    std::unique_ptr<optim::StepLR> scheduler;
  };
  auto start = [&](std::uint64_t seed) {
    tg::manual_seed(seed);
    Run r{make_model(), nullptr, nullptr};
    r.opt = std::make_unique<optim::Adam>(r.model->parameters(), optim::AdamOptions(0.01).weight_decay(0.001));
    r.scheduler = std::make_unique<optim::StepLR>(*r.opt, 3, 0.5);
    return r;
  };
  auto train = [&](Run& r, int from, int to) {
    for (int i = from; i < to; ++i) {
      r.opt->zero_grad();
      tg::mse_loss(r.model->forward(batches[i].first), batches[i].second).backward();
      optim::clip_grad_norm_(r.model->parameters(), 1.0);
      r.opt->step();
      r.scheduler->step();
    }
  };

  Run straight = start(1);
  train(straight, 0, 10);

  Run first = start(1);
  train(first, 0, 6);
  nn::StateDict checkpoint = nn::with_prefix(first.model->state_dict(), "model.");
  nn::merge_into(checkpoint, nn::with_prefix(first.opt->state_dict(), "optimizer."));
  nn::merge_into(checkpoint, nn::with_prefix(first.scheduler->state_dict(), "scheduler."));
  const std::string path = "resume_test.safetensors";
  tg::save(checkpoint, path);

  Run resumed = start(99);  // different initial weights: everything must come from the file
  const nn::StateDict loaded = tg::load_state_dict(path);
  std::remove(path.c_str());
  resumed.model->load_state_dict(nn::under_prefix(loaded, "model."));
  resumed.opt->load_state_dict(nn::under_prefix(loaded, "optimizer."));
  resumed.scheduler->load_state_dict(nn::under_prefix(loaded, "scheduler."));
  CHECK(resumed.opt->lr(0) == first.opt->lr(0));
  train(resumed, 6, 10);

  const auto a = straight.model->state_dict(), b = resumed.model->state_dict();
  for (const auto& [key, value] : a) {
    INFO(key);
    CHECK(bitwise_equal(value.to(tg::kFloat64), b.at(key).to(tg::kFloat64)));
  }
  CHECK(straight.opt->lr(0) == resumed.opt->lr(0));
}

TEST_CASE("a loaded optimizer state is checked before anything changes") {
  Tensor p = tg::zeros({2}).set_requires_grad();
  optim::Adam opt({p}, optim::AdamOptions(0.1));
  nn::StateDict bad;
  bad.insert("param_groups.0.lr", tg::full({}, 0.5, tg::kFloat64));
  CHECK_THROWS_WITH_AS(opt.load_state_dict(bad), "Adam: the state has no option \"betas\" for parameter group 0",
                       tg::Error);
  CHECK(opt.lr(0) == 0.1);
  nn::StateDict wrong = opt.state_dict();
  wrong.insert("state.0.exp_avg", tg::zeros({3}));
  CHECK_THROWS_WITH_AS(opt.load_state_dict(wrong), "Adam: \"state.0.exp_avg\" is float32 [3] but its parameter is float32 [2]",
                       tg::Error);
  nn::StateDict foreign = opt.state_dict();
  foreign.insert("state.0.momentum_buffer", tg::zeros({2}));
  CHECK_THROWS_WITH_AS(opt.load_state_dict(foreign), "Adam: unexpected state key \"state.0.momentum_buffer\"", tg::Error);
}

// ---- schedulers on two groups, resuming by construction, PyTorch's optimizer state ----------------

TEST_CASE("chained, sequential, one-cycle, warm-restart and plateau schedulers follow PyTorch on two groups") {
  const auto golden = scheduler_golden2();
  REQUIRE(golden.size() == 9);
  for (std::size_t kind = 0; kind < golden.size(); ++kind) {
    Tensor p = tg::zeros({1}).set_requires_grad(), q = tg::zeros({1}).set_requires_grad();
    const bool adam = kind == 4;
    std::unique_ptr<optim::OptimizerBase> opt;
    if (adam)
      opt = std::make_unique<optim::Adam>(
          std::vector<optim::ParamGroup<optim::AdamOptions>>{{{p}}, {{q}, [](auto& o) { o.lr(0.2); }}}, optim::AdamOptions(0.5));
    else
      opt = std::make_unique<optim::SGD>(
          std::vector<optim::ParamGroup<optim::SGDOptions>>{{{p}}, {{q}, [](auto& o) { o.lr(0.2); }}},
          optim::SGDOptions(0.5).momentum(0.9));
    std::vector<std::shared_ptr<optim::Scheduler>> schedulers;
    std::shared_ptr<optim::CosineAnnealingWarmRestarts> fractional;
    std::unique_ptr<optim::ReduceLROnPlateau> plateau;
    using Anneal = optim::OneCycleLROptions::Anneal;
    switch (kind) {
      case 0:  // built one after the other: the cosine takes initial_lr as its base, not the warm-up's rate
        schedulers.push_back(std::make_shared<optim::LinearLR>(*opt, 0.1, 1.0, 5));
        schedulers.push_back(std::make_shared<optim::CosineAnnealingLR>(*opt, 10, 0.01));
        break;
      case 1: {
        auto a = std::make_shared<optim::LinearLR>(*opt, 0.1, 1.0, 4);
        auto b = std::make_shared<optim::CosineAnnealingLR>(*opt, 6, 0.01);
        auto c = std::make_shared<optim::StepLR>(*opt, 3, 0.5);
        schedulers.push_back(std::make_shared<optim::SequentialLR>(*opt, std::vector<std::shared_ptr<optim::LRScheduler>>{a, b, c},
                                                                   std::vector<std::int64_t>{4, 12}));
        break;
      }
      case 2:
        schedulers.push_back(std::make_shared<optim::ChainedScheduler>(
            std::vector<std::shared_ptr<optim::Scheduler>>{std::make_shared<optim::ExponentialLR>(*opt, 0.9),
                                                           std::make_shared<optim::MultiStepLR>(*opt, std::vector<std::int64_t>{3, 6}, 0.5)},
            *opt));
        break;
      case 3:
        schedulers.push_back(std::make_shared<optim::OneCycleLR>(*opt, optim::OneCycleLROptions(std::vector<double>{1.0, 0.4}, 20)));
        break;
      case 4:
        schedulers.push_back(std::make_shared<optim::OneCycleLR>(
            *opt, optim::OneCycleLROptions(1.0, 16).pct_start(0.25).anneal_strategy(Anneal::Linear).three_phase(true)
                      .div_factor(10).final_div_factor(100)));
        break;
      case 5: schedulers.push_back(std::make_shared<optim::CosineAnnealingWarmRestarts>(*opt, 4, 1, 0.05)); break;
      case 6: schedulers.push_back(std::make_shared<optim::CosineAnnealingWarmRestarts>(*opt, 2, 2)); break;
      case 7: fractional = std::make_shared<optim::CosineAnnealingWarmRestarts>(*opt, 3, 2, 0.01); break;
      default:
        plateau = std::make_unique<optim::ReduceLROnPlateau>(
            *opt, optim::ReduceLROnPlateauOptions().factor(0.5).patience(1).min_lr(std::vector<double>{0.1, 0.05}));
    }
    const std::vector<double> metrics = {1.0, 0.9, 0.95, 0.96, 0.97, 0.98, 0.99, 1.0, 1.0, 1.0,
                                         1.0, 1.0, 1.0,  1.0,  1.0,  1.0,  1.0,  1.0, 1.0, 1.0};
    const bool with_momentum = kind == 3 || kind == 4;
    auto read = [&] {
      std::vector<double> row{opt->lr(0), opt->lr(1)};
      if (with_momentum) row.insert(row.end(), {*opt->momentum(0), *opt->momentum(1)});
      return row;
    };
    std::vector<std::vector<double>> rows{read()};
    for (std::size_t k = 0; k + 1 < golden[kind].size(); ++k) {
      if (fractional) fractional->step(double(k + 1) / 2);
      else if (plateau) plateau->step(metrics[k]);
      else for (auto& s : schedulers) s->step();
      rows.push_back(read());
    }
    for (std::size_t k = 0; k < rows.size(); ++k)
      for (std::size_t i = 0; i < rows[k].size(); ++i) {
        INFO("scheduler case ", kind, " step ", k, " value ", i);
        CHECK(rows[k][i] == doctest::Approx(golden[kind][k][i]).epsilon(1e-12));
      }
  }
}

TEST_CASE("schedulers built with last_epoch resume where the saved optimizer left off, as PyTorch's") {
  const auto golden = resume_golden();
  for (std::size_t kind = 0; kind < golden.size(); ++kind) {
    auto make = [kind](optim::OptimizerBase& o, std::int64_t last_epoch) -> std::unique_ptr<optim::LRScheduler> {
      switch (kind) {
        case 0: return std::make_unique<optim::StepLR>(o, 4, 0.5, last_epoch);
        case 1: return std::make_unique<optim::MultiStepLR>(o, std::vector<std::int64_t>{3, 8}, 0.1, last_epoch);
        case 2: return std::make_unique<optim::ExponentialLR>(o, 0.8, last_epoch);
        case 3: return std::make_unique<optim::CosineAnnealingLR>(o, 5, 0.01, last_epoch);
        case 4: return std::make_unique<optim::LinearLR>(o, 0.2, 1.0, 10, last_epoch);
        default: return std::make_unique<optim::CosineAnnealingWarmRestarts>(o, 4, 2, 0.01, last_epoch);
      }
    };
    Tensor p = tg::zeros({1}).set_requires_grad();
    optim::SGD first({p}, optim::SGDOptions(0.5));
    auto scheduler = make(first, -1);
    for (int i = 0; i < 6; ++i) scheduler->step();
    optim::SGD second({p}, optim::SGDOptions(0.5));
    CHECK_THROWS_WITH_AS(make(second, 6), doctest::Contains("resuming with last_epoch=6 needs \"initial_lr\" in parameter group 0"),
                         tg::Error);
    second.load_state_dict(first.state_dict());  // carries initial_lr, as PyTorch's param_groups do
    auto resumed = make(second, 6);
    std::vector<double> lrs{second.lr(0)};
    for (int i = 0; i < 6; ++i) {
      resumed->step();
      lrs.push_back(second.lr(0));
    }
    INFO("scheduler ", kind);
    REQUIRE(lrs.size() == golden[kind].size());
    for (std::size_t i = 0; i < lrs.size(); ++i) CHECK(lrs[i] == doctest::Approx(golden[kind][i]).epsilon(1e-12));
  }
}

TEST_CASE("a PyTorch optimizer state converts key by key and continues PyTorch's trajectory") {
  Problem p;
  const std::vector<double> at3 = pytorch_adam_params_at_3();
  {
    tg::NoGradGuard no_grad;
    for (std::size_t i = 0; i < 6; ++i) p.w.values_mut<float>().data()[i] = float(at3[i]);
    for (std::size_t i = 0; i < 2; ++i) p.b.values_mut<float>().data()[i] = float(at3[6 + i]);
  }
  optim::Adam opt(std::vector<optim::ParamGroup<optim::AdamOptions>>{{{p.w}}, {{p.b}}}, optim::AdamOptions(0.5));
  nn::StateDict state;
  for (const auto& [key, values] : pytorch_adam_state()) {
    const bool is_buffer = key.rfind("state.", 0) == 0 && key.find(".step") == std::string::npos;
    const tg::Shape shape = is_buffer ? (key[6] == '0' ? tg::Shape{2, 3} : tg::Shape{2})
                                      : (values.size() == 1 && key.find(".params") == std::string::npos ? tg::Shape{}
                                                                                                         : tg::Shape{values.size()});
    Tensor t = Tensor(values, shape);
    if (is_buffer) t = t.to(tg::kFloat32);  // PyTorch's buffers are float32 like the parameters
    if (key.find(".step") != std::string::npos) t = t.to(tg::kFloat32);  // PyTorch >= 1.12 saves step as a float tensor
    state.insert(key, t);
  }
  opt.load_state_dict(state);
  CHECK(opt.options(1).amsgrad());
  CHECK(opt.options(1).betas() == std::pair<double, double>{0.8, 0.95});
  CHECK(opt.options(1).lr() == 0.05);
  for (int i = 0; i < 3; ++i) {
    opt.zero_grad();
    p.loss().backward();
    opt.step();
  }
  std::vector<double> got = tg_test::flat(p.w);
  for (double v : tg_test::flat(p.b)) got.push_back(v);
  const std::vector<double> expected = pytorch_adam_params_at_6();
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(std::abs(got[i] - expected[i]) <= 5e-7 * std::max(1.0, std::abs(expected[i])));
  // And our own state has PyTorch's keys.
  const nn::StateDict own = opt.state_dict();
  for (const char* key : {"param_groups.0.betas", "param_groups.1.amsgrad", "param_groups.0.params", "param_groups.1.maximize",
                          "state.0.exp_avg", "state.1.max_exp_avg_sq", "state.1.step"})
    CHECK_MESSAGE(own.contains(key), key);
  CHECK(own.at("param_groups.0.betas").shape() == tg::Shape{2});
}

TEST_CASE("loaded optimizer state is validated: bad values are rejected and nothing changes") {
  Tensor w = tg::zeros({2}).set_requires_grad();
  optim::Adam opt({w}, optim::AdamOptions(0.1));
  tg::sum(w * w).backward();
  opt.step();
  const nn::StateDict good = opt.state_dict();
  auto with = [&](const std::string& key, Tensor value) {
    nn::StateDict s = good;
    if (Tensor* existing = s.find(key)) *existing = value;
    else s.insert(key, value);
    return s;
  };
  CHECK_THROWS_WITH_AS(opt.load_state_dict(with("state.0.step", tg::full({}, NAN, tg::kFloat64))),
                       doctest::Contains("Adam: \"state.0.step\" is nan (must be a whole number >= 0)"), tg::Error);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(with("state.0.step", tg::full({}, -1, tg::kFloat64))),
                       doctest::Contains("\"state.0.step\" is -1"), tg::Error);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(with("param_groups.0.lr", tg::full({}, INFINITY, tg::kFloat64))),
                       "Adam: option \"param_groups.0.lr\" is inf (must be finite)", tg::Error);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(with("param_groups.0.betas", Tensor({0.9, 1.5}, tg::kFloat64))),
                       "Adam: invalid beta2=1.5 (must be in [0, 1))", tg::Error);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(with("param_groups.0.betas", tg::full({}, 0.9, tg::kFloat64))),
                       "Adam: option \"betas\" takes 2 values, got 1", tg::Error);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(with("param_groups.0.momentum", tg::full({}, 0.9, tg::kFloat64))),
                       doctest::Contains("Adam: unexpected state key \"param_groups.0.momentum\""), tg::Error);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(with("param_groups.0.params", Tensor(std::vector<std::int64_t>{0, 1}, {2}))),
                       "Adam: parameter group 0 has 2 parameters in the state but 1 in the optimizer", tg::Error);
  CHECK(opt.lr(0) == 0.1);
  CHECK(opt.options(0).betas().second == 0.999);
  CHECK(bitwise_equal(opt.state_dict().at("state.0.exp_avg"), good.at("state.0.exp_avg")));
  // PyTorch-only flags are accepted and ignored.
  opt.load_state_dict(with("param_groups.0.foreach", tg::full({}, 0, tg::kFloat64)));
}

TEST_CASE("a model converted after the optimizer made its state gets a named error, not a crash") {
  nn::Linear layer(3, 2);
  optim::Adam opt(layer.parameters(), optim::AdamOptions(0.01));
  tg::sum(layer(tg::ones({1, 3}))).backward();
  opt.step();
  layer.to(tg::kFloat64);
  tg::sum(layer(tg::ones({1, 3}, tg::kFloat64))).backward();
  CHECK_THROWS_WITH_AS(opt.step(), doctest::Contains("Adam: state \"exp_avg\" of parameter 0 is float32 [2, 3] but the "
                                                     "parameter is float64 [2, 3]"),
                       tg::Error);
}

TEST_CASE("scheduler and clipping errors name the scheduler and the values") {
  Tensor p = tg::zeros({1}).set_requires_grad();
  optim::SGD sgd({p}, optim::SGDOptions(0.1));
  optim::Adagrad adagrad({p}, optim::AdagradOptions(0.1));
  CHECK_THROWS_WITH_AS(optim::OneCycleLR(adagrad, optim::OneCycleLROptions(1.0, 10)),
                       "OneCycleLR: Adagrad has no momentum or betas to cycle (pass cycle_momentum(false))", tg::Error);
  optim::OneCycleLR cycle(sgd, optim::OneCycleLROptions(1.0, 3).cycle_momentum(false));
  for (int i = 0; i < 3; ++i) cycle.step();
  CHECK_THROWS_WITH_AS(cycle.step(), "OneCycleLR: tried to step 5 times; the specified number of total steps is 3", tg::Error);
  CHECK_THROWS_WITH_AS(optim::ReduceLROnPlateau(sgd, optim::ReduceLROnPlateauOptions().min_lr(std::vector<double>{0.1, 0.2, 0.3})),
                       "ReduceLROnPlateau: expected 1 or 1 min_lr values (one per parameter group), got 3", tg::Error);
  CHECK_THROWS_WITH_AS(optim::CosineAnnealingWarmRestarts(sgd, 0), "CosineAnnealingWarmRestarts: expected a positive T_0, got 0",
                       tg::Error);
  CHECK_THROWS_WITH_AS(optim::StepLR(sgd, 2, 0.5, -2), "StepLR: last_epoch must be >= -1, got -2", tg::Error);
  auto linear = std::make_shared<optim::LinearLR>(sgd, 0.5, 1.0, 4);
  CHECK_THROWS_WITH_AS(optim::SequentialLR(sgd, {linear}, {3}), "SequentialLR: expects 0 milestones for 1 schedulers, got 1",
                       tg::Error);
  // A scheduler refuses another scheduler's state and keeps its own.
  optim::StepLR step(sgd, 2);
  optim::CosineAnnealingWarmRestarts restarts(sgd, 3);
  CHECK_THROWS_WITH_AS(step.load_state_dict(restarts.state_dict()), "StepLR: the state is CosineAnnealingWarmRestarts's, not StepLR's",
                       tg::Error);
  optim::ExponentialLR exponential(sgd, 0.5);
  CHECK_THROWS_WITH_AS(step.load_state_dict(exponential.state_dict()), "StepLR: the state is ExponentialLR's, not StepLR's",
                       tg::Error);
  nn::StateDict bad = step.state_dict();
  *bad.find("last_epoch") = tg::full({}, NAN, tg::kFloat64);
  CHECK_THROWS_WITH_AS(step.load_state_dict(bad), "StepLR: \"last_epoch\" is nan (must be finite)", tg::Error);
  optim::ReduceLROnPlateau plateau(sgd);
  nn::StateDict bad_plateau = plateau.state_dict();
  *bad_plateau.find("num_bad_epochs") = tg::full({}, -1, tg::kFloat64);
  CHECK_THROWS_WITH_AS(plateau.load_state_dict(bad_plateau), doctest::Contains("\"num_bad_epochs\" is -1"), tg::Error);
  CHECK_THROWS_WITH_AS(plateau.load_state_dict(step.state_dict()), "ReduceLROnPlateau: the state is StepLR's, not ReduceLROnPlateau's",
                       tg::Error);

  // clip_grad_norm_ with error_if_nonfinite
  Tensor w = tg::ones({2}).set_requires_grad();
  tg::sum(w * Tensor({INFINITY, 1.0})).backward();
  CHECK_THROWS_WITH_AS(optim::clip_grad_norm_({w}, 1.0, 2.0, true),
                       doctest::Contains("clip_grad_norm_: the total norm of order 2 for gradients from `parameters` is "
                                         "non-finite (inf)"),
                       tg::Error);
  CHECK(tg_test::flat(w.grad())[1] == 1.0);  // unchanged
  CHECK(std::isinf(optim::clip_grad_norm_({w}, 1.0)));  // without the flag, PyTorch scales anyway
}

TEST_CASE("LinearLR with total_iters 0 keeps start_factor times the rate, as PyTorch's; resumed, too") {
  // o = SGD([p], lr=0.4); s = LinearLR(o, 0.25, 1.0, 0); lr after 0..4 steps: [0.1, 0.1, 0.1, 0.1, 0.1]
  Tensor p = tg::zeros({1}).set_requires_grad();
  optim::SGD sgd({p}, optim::SGDOptions(0.4));
  optim::LinearLR linear(sgd, 0.25, 1.0, 0);
  for (int i = 0; i < 5; ++i) {
    CHECK(sgd.lr(0) == doctest::Approx(0.1).epsilon(1e-15));
    linear.step();
  }
  // Started by SequentialLR at a milestone (its closed form), it gives the same rate, not 0/0
  // (PyTorch 1.13 raises ZeroDivisionError there).
  optim::SGD second({p}, optim::SGDOptions(0.4));
  auto first = std::make_shared<optim::StepLR>(second, 10);
  auto then = std::make_shared<optim::LinearLR>(second, 0.25, 1.0, 0);
  optim::SequentialLR sequence(second, {first, then}, {2});
  for (int i = 0; i < 4; ++i) {
    CHECK(second.lr(0) == doctest::Approx(i < 2 ? 0.4 : 0.1).epsilon(1e-15));
    sequence.step();
  }
  CHECK_THROWS_WITH_AS(optim::LinearLR(sgd, 0.25, 1.0, -1), "LinearLR: total_iters must be non-negative, got -1",
                       tg::Error);
}
