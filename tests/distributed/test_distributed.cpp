// The distributed suite: ctest runs this one program under `mpirun -np 2` and `-np 3`. Every rank
// runs every test case in the same order (collectives must match); CHECK, never REQUIRE, so that a
// failing rank does not skip a collective the others are waiting in.
//
// Equivalence tests: every rank builds the same data (same seed), takes its own slice of it, and
// also trains a reference model in one process on the whole batch; after 5 steps the DDP model
// (with SyncBatchNorm) must match the reference to 1e-12, relative to each tensor's largest value.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cmath>
#include <numeric>

#include <tapegrad/tapegrad.hpp>

#include "distributed/distributed.hpp"

namespace dist = tg::distributed;
namespace nn = tg::nn;
using tg::Tensor;

namespace {

int R() { return dist::world_size(); }
int me() { return dist::rank(); }

// max |a - b| <= tol · max |b| (the tensors' own scale), with the values printed when it fails.
void check_relative(const Tensor& a, const Tensor& b, double tol, const std::string& what) {
  INFO(what << " on rank " << me());
  CHECK(a.shape() == b.shape());
  if (a.shape() != b.shape()) return;
  const std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    diff = std::max(diff, std::abs(x[i] - y[i]));
    scale = std::max(scale, std::abs(y[i]));
  }
  INFO("max difference " << diff << ", scale " << scale);
  CHECK(diff <= tol * std::max(scale, 1e-300));
}

bool same_values(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && a.to_vector<double>() == b.to_vector<double>();
}

// Per-rank batch sizes that differ (and sum to `total`) when uneven is asked for.
std::vector<std::size_t> batch_sizes(std::size_t total, bool uneven) {
  std::vector<std::size_t> sizes(std::size_t(R()), total / std::size_t(R()));
  sizes.back() += total % std::size_t(R());
  if (uneven && R() > 1) {
    sizes[0] -= 2;
    sizes[1] += 2;
  }
  return sizes;
}

// Rows [first, first + count) of x.
Tensor rows(const Tensor& x, std::size_t first, std::size_t count) {
  return tg::narrow(x, 0, std::int64_t(first), std::int64_t(count)).clone();
}

enum class Convention { PyTorch, MindSpore };

nn::BatchNorm1dOptions bn_options(Convention c, std::int64_t channels) {
  if (c == Convention::PyTorch) return nn::BatchNorm1dOptions(channels).momentum(0.3);
  return nn::BatchNorm1dOptions::mindspore(channels).momentum(0.7);  // the weight of the old statistic
}

// Linear-BN1d-ReLU-Linear, float64. The layer before BatchNorm has no bias, as usual: BatchNorm
// removes any per-channel shift, so that bias's gradient is zero in exact arithmetic and only
// rounding noise in practice, which no relative tolerance can compare.
std::shared_ptr<nn::Sequential> mlp(Convention c) {
  tg::manual_seed(7);
  auto model = std::make_shared<nn::Sequential>(nn::Linear(5, 6, false), nn::BatchNorm1d(bn_options(c, 6)), nn::ReLU(),
                                                nn::Linear(6, 3));
  model->to(tg::kFloat64);
  model->train();
  return model;
}

// Conv2d-BN2d-ReLU-Flatten-Linear, float64, on (N, 2, 4, 4); the convolution without a bias.
std::shared_ptr<nn::Sequential> cnn(Convention c) {
  tg::manual_seed(8);
  auto model = std::make_shared<nn::Sequential>(nn::Conv2d(nn::Conv2dOptions(2, 3, 3).padding(1).bias(false)),
                                                nn::BatchNorm2d(bn_options(c, 3)), nn::ReLU(), nn::Flatten(),
                                                nn::Linear(3 * 4 * 4, 2));
  model->to(tg::kFloat64);
  model->train();
  return model;
}

// Five SGD steps of DDP + SyncBatchNorm on this rank's rows against one process on all rows. The
// loss is Σ(y - t)² / N over all N rows; each rank's share is its rows' sum · R / N, so that DDP's
// mean over ranks is the same loss whatever the per-rank sizes.
void check_equivalence(const std::function<std::shared_ptr<nn::Sequential>()>& build, const tg::Shape& sample,
                       std::size_t outputs, std::size_t total, bool uneven, const std::string& what) {
  INFO(what);
  auto reference = build();
  auto local = build();
  CHECK(dist::convert_sync_batchnorm(*local) >= 1);
  dist::DistributedDataParallel ddp(local);
  tg::Shape input_shape = sample;
  input_shape.insert(input_shape.begin(), total);
  tg::manual_seed(99);  // the same data on every rank
  const std::vector<std::size_t> sizes = batch_sizes(total, uneven);
  const std::size_t first = std::accumulate(sizes.begin(), sizes.begin() + me(), std::size_t{0});
  tg::optim::SGD ref_opt(reference->parameters(), tg::optim::SGDOptions(0.05).momentum(0.9));
  tg::optim::SGD ddp_opt(ddp.parameters(), tg::optim::SGDOptions(0.05).momentum(0.9));
  for (int step = 0; step < 5; ++step) {
    const Tensor x = tg::randn(input_shape, tg::kFloat64) * 3.0 + 1.5;
    const Tensor t = tg::randn({total, outputs}, tg::kFloat64);
    ref_opt.zero_grad();
    const Tensor y = reference->forward(x);
    (((y - t) * (y - t)).sum() / double(total)).backward();
    ref_opt.step();

    ddp_opt.zero_grad();
    const Tensor xl = rows(x, first, sizes[std::size_t(me())]), tl = rows(t, first, sizes[std::size_t(me())]);
    const Tensor yl = ddp(xl);
    (((yl - tl) * (yl - tl)).sum() * (double(R()) / double(total))).backward();
    for (const auto& [name, p] : reference->named_parameters())
      check_relative(local->named_parameters().at(name).grad(), p.grad(), 1e-12, "gradient of " + name);
    ddp_opt.step();
  }
  for (const auto& [name, value] : reference->state_dict())
    if (value.dtype() == tg::kFloat64) check_relative(local->state_dict().at(name), value, 1e-12, name);
  // The ranks hold bit-identical models.
  for (const auto& [name, value] : local->state_dict()) {
    const std::vector<Tensor> all = dist::all_gather(value);
    for (const Tensor& other : all) CHECK_MESSAGE(same_values(other, value), name << " differs between ranks");
  }
}

}  // namespace

TEST_CASE("all_reduce, broadcast, all_gather and reduce_scatter on every dtype") {
  const double r = me(), n = R();
  for (tg::DType dtype : {tg::kFloat32, tg::kFloat64, tg::kInt64}) {
    INFO(tg::dtype_name(dtype));
    Tensor sum = tg::full({2, 3}, r + 1, dtype);
    dist::all_reduce(sum);
    CHECK(sum.to_vector<double>() == std::vector<double>(6, n * (n + 1) / 2));
    Tensor max = tg::full({4}, r, dtype);
    dist::all_reduce(max, dist::ReduceOp::Max);
    CHECK(max.to_vector<double>() == std::vector<double>(4, n - 1));
    Tensor b = tg::full({3}, 10 + r, dtype);
    dist::broadcast(b, R() - 1);
    CHECK(b.to_vector<double>() == std::vector<double>(3, 10 + n - 1));
    const std::vector<Tensor> gathered = dist::all_gather(tg::full({2}, r, dtype));
    CHECK(gathered.size() == std::size_t(R()));
    for (std::size_t k = 0; k < gathered.size(); ++k) {
      CHECK(gathered[k].dtype() == dtype);
      CHECK(gathered[k].to_vector<double>() == std::vector<double>(2, double(k)));
    }
    // Rows k·2 .. k·2+1 of rank q's input hold q + k; rank k gets Σ_q (q + k) in its two rows.
    std::vector<double> input;
    for (int k = 0; k < R(); ++k) input.insert(input.end(), 4, r + k);
    const Tensor part = dist::reduce_scatter(Tensor(input, {std::size_t(2 * R()), 2}).to(dtype));
    CHECK(part.shape() == tg::Shape{2, 2});
    CHECK(part.to_vector<double>() == std::vector<double>(4, n * (n - 1) / 2 + n * r));
  }
  Tensor mean = tg::full({2}, me() + 1.0);
  dist::all_reduce(mean, dist::ReduceOp::Mean);
  CHECK(mean.to_vector<double>() == std::vector<double>(2, (n + 1) / 2));
  // Empty tensors pass through.
  Tensor empty = tg::zeros({0, 3});
  dist::all_reduce(empty);
  dist::broadcast(empty);
  CHECK(dist::all_gather(empty).size() == std::size_t(R()));
  CHECK(dist::reduce_scatter(tg::zeros({0, 2})).shape() == tg::Shape{0, 2});
}

TEST_CASE("collectives: a mismatch is the same clear error on every rank, never a hang") {
  if (R() < 2) return;
  const std::string expected_shapes = [] {
    std::string s;
    for (int q = 0; q < R(); ++q) s += (q ? ", rank " : "rank ") + std::to_string(q) + " float32 [" + std::to_string(q + 1) + "]";
    return s;
  }();
  Tensor t = tg::zeros({std::size_t(me() + 1)});
  CHECK_THROWS_WITH_AS(dist::all_reduce(t), ("all_reduce: the ranks passed different tensors (" + expected_shapes +
                                             "); every rank must pass the same dtype and shape and op").c_str(),
                       tg::Error);
  Tensor same = tg::zeros({2});
  CHECK_THROWS_WITH_AS(dist::all_reduce(same, me() == 0 ? dist::ReduceOp::Sum : dist::ReduceOp::Max),
                       ("all_reduce: the ranks passed different tensors (rank 0 float32 [2] op sum" +
                        std::string(R() > 1 ? ", rank 1 float32 [2] op max" : "") +
                        (R() > 2 ? ", rank 2 float32 [2] op max" : "") +
                        "); every rank must pass the same dtype and shape and op").c_str(),
                       tg::Error);
  CHECK_THROWS_WITH_AS(dist::all_gather(t), ("all_gather: the ranks passed different tensors (" + expected_shapes +
                                             "); every rank must pass the same dtype and shape").c_str(),
                       tg::Error);
  Tensor ints = tg::zeros({2}, tg::kInt64);
  CHECK_THROWS_WITH_AS(dist::all_reduce(ints, dist::ReduceOp::Mean),
                       ("all_reduce: mean of an int64 tensor [2] on rank " + std::to_string(me()) +
                        " is not an integer; use sum").c_str(),
                       tg::Error);
  Tensor x = tg::zeros({3});
  CHECK_THROWS_WITH_AS(dist::broadcast(x, R()),
                       ("broadcast: root " + std::to_string(R()) + " is not a rank (world size " + std::to_string(R()) +
                        ")").c_str(),
                       tg::Error);
  CHECK_THROWS_WITH_AS(dist::reduce_scatter(tg::zeros({std::size_t(R() + 1)})),
                       ("reduce_scatter: rank " + std::to_string(me()) + "'s input [" + std::to_string(R() + 1) +
                        "] must have a first dim divisible by the world size " + std::to_string(R())).c_str(),
                       tg::Error);
  Tensor w = tg::zeros({2}).set_requires_grad();
  CHECK_THROWS_WITH_AS(dist::all_reduce(w),
                       ("all_reduce: rank " + std::to_string(me()) + "'s tensor [2] requires grad; collectives change "
                        "values in place and are not recorded, so call it under tg::NoGradGuard").c_str(),
                       tg::Error);
  // And the next collective works: nothing was left half done.
  Tensor ok = tg::ones({1});
  dist::all_reduce(ok);
  CHECK(ok.item() == double(R()));
}

TEST_CASE("DDP + SyncBatchNorm on a batch split over ranks equals one process on the whole batch (float64)") {
  check_equivalence([] { return mlp(Convention::PyTorch); }, {5}, 3, 12, false, "mlp, PyTorch convention");
  check_equivalence([] { return mlp(Convention::MindSpore); }, {5}, 3, 12, false, "mlp, MindSpore convention");
  check_equivalence([] { return mlp(Convention::PyTorch); }, {5}, 3, 13, true, "mlp, unequal per-rank batches");
  check_equivalence([] { return cnn(Convention::PyTorch); }, {2, 4, 4}, 2, 6, false, "cnn, BatchNorm2d, PyTorch");
  check_equivalence([] { return cnn(Convention::MindSpore); }, {2, 4, 4}, 2, 7, true, "cnn, BatchNorm2d, MindSpore");
}

TEST_CASE("SyncBatchNorm: the backward across ranks against finite differences of the global loss (float64)") {
  // L = Σ_ranks Σ w_r·y_r. Each rank's input element is perturbed in turn (every rank runs every
  // forward, so the collectives match); the central difference of L must equal the input gradient
  // that the synchronised backward gives that rank. Also γ and β, whose gradients are per rank.
  for (bool mindspore : {false, true}) {
    INFO("mindspore " << mindspore);
    nn::SyncBatchNorm bn(mindspore ? nn::BatchNorm1dOptions::mindspore(2).use_batch_statistics(true)
                                   : nn::BatchNorm1dOptions(2));
    bn.to(tg::kFloat64);
    tg::manual_seed(11 + std::uint64_t(me()));
    Tensor x = (tg::randn({std::size_t(2 + me()), 2, 2}, tg::kFloat64) * 2.0 + 1.0).set_requires_grad();
    const Tensor w = tg::randn({std::size_t(2 + me()), 2, 2}, tg::kFloat64);
    auto global_loss = [&](const Tensor& input) {
      tg::NoGradGuard no_grad;
      Tensor local = tg::full({1}, (bn(input) * w).sum().item(), tg::kFloat64);
      dist::all_reduce(local);
      return local.item();
    };
    (bn(x) * w).sum().backward();
    const std::vector<double> analytic = x.grad().to_vector<double>();
    const double h = 1e-6;
    for (int owner = 0; owner < R(); ++owner) {
      Tensor count = tg::full({1}, double(x.numel()), tg::kFloat64);
      dist::broadcast(count, owner);
      for (std::size_t i = 0; i < std::size_t(count.item()); ++i) {
        std::vector<double> plus = x.to_vector<double>(), minus = plus;
        if (me() == owner) {
          plus[i] += h;
          minus[i] -= h;
        }
        const double numeric = (global_loss(Tensor(plus, x.shape())) - global_loss(Tensor(minus, x.shape()))) / (2 * h);
        if (me() == owner) CHECK(std::abs(numeric - analytic[i]) <= 1e-6 * std::max(1.0, std::abs(analytic[i])));
      }
    }
  }
}

TEST_CASE("SyncBatchNorm: a rank with an empty batch, channels-last input, inference mode, errors") {
  // Rank 0 brings no rows: the statistics are the other ranks'.
  tg::manual_seed(3);
  const Tensor x = tg::randn({9, 4}, tg::kFloat64) + 2.0;
  nn::BatchNorm1d reference(4);
  reference.to(tg::kFloat64);
  const Tensor expected = reference(x);
  nn::SyncBatchNorm bn(4);
  bn.to(tg::kFloat64);
  if (R() >= 2) {
    const std::size_t per = 9 / std::size_t(R() - 1), first = me() == 0 ? 0 : per * std::size_t(me() - 1);
    const std::size_t count = me() == 0 ? 0 : me() == R() - 1 ? 9 - first : per;
    const Tensor out = bn(rows(x, first, count));
    if (count > 0) check_relative(out, rows(expected, first, count), 1e-12, "empty-rank output");
    check_relative(bn.running_var, reference.running_var, 1e-12, "empty-rank running_var");
  }
  // MindSpore's NHWC on a 4-D input: the channels are last; inference needs no communication.
  nn::SyncBatchNorm nhwc(nn::BatchNorm1dOptions::mindspore(3).data_format("NHWC"));
  nhwc.to(tg::kFloat64);
  const Tensor image = tg::randn({2, 2, 2, 3}, tg::kFloat64);
  CHECK(nhwc(image).shape() == image.shape());  // inference mode: moving statistics, no collective
  CHECK(std::string(nhwc.type_name()) == "SyncBatchNorm");
  // Too few values over all ranks: the same error everywhere.
  nn::SyncBatchNorm tiny(2);
  const Tensor one = me() == 0 ? tg::ones({1, 2}) : tg::zeros({0, 2});
  CHECK_THROWS_WITH_AS(tiny(one),
                       ("SyncBatchNorm: Expected more than 1 value per channel when training, got 1 over all processes "
                        "(this one's input [" + std::string(me() == 0 ? "1" : "0") + ", 2])").c_str(),
                       tg::Error);
  CHECK_THROWS_WITH_AS(tiny(tg::ones({4})),
                       "SyncBatchNorm: expected at least 2D input (got 1D input [4])", tg::Error);
}

TEST_CASE("plain BatchNorm under DDP keeps per-rank statistics; broadcast_buffers copies rank 0's before forward") {
  for (bool broadcast : {false, true}) {
    INFO("broadcast_buffers " << broadcast);
    auto model = mlp(Convention::PyTorch);
    auto alone = mlp(Convention::PyTorch);
    dist::DistributedDataParallel ddp(model, dist::DistributedDataParallelOptions().broadcast_buffers(broadcast));
    tg::manual_seed(50 + std::uint64_t(me()));  // every rank its own data
    const Tensor x = tg::randn({6, 5}, tg::kFloat64) * 2.0 + double(me());
    ddp(x).sum().backward();
    alone->forward(x);  // the same rows in one process, without DDP
    const auto& bn = dynamic_cast<nn::BatchNorm1d&>(*model->named_children().at("1"));
    const auto& bn_alone = dynamic_cast<nn::BatchNorm1d&>(*alone->named_children().at("1"));
    check_relative(bn.running_mean, bn_alone.running_mean, 1e-15, "per-rank running_mean");
    ddp.before_forward();  // the next forward's start: rank 0's buffers everywhere, or each rank's own
    const std::vector<Tensor> all = dist::all_gather(bn.running_mean);
    bool same = true;
    for (const Tensor& other : all) same = same && same_values(other, all[0]);
    CHECK(same == (broadcast || R() == 1));
  }
}

namespace {
// Two heads; forward uses one of them, chosen per rank; `never` is used by no rank.
struct TwoHeads : nn::Module {
  nn::Linear& a = register_module("a", nn::Linear(3, 2));
  nn::Linear& b = register_module("b", nn::Linear(3, 2));
  nn::Linear& never = register_module("never", nn::Linear(3, 2));
  bool use_a = true;
  Tensor forward(const Tensor& x) override { return use_a ? a(x) : b(x); }
};
}  // namespace

TEST_CASE("DDP: find_unused_parameters, the error without it, no_sync accumulation") {
  auto model = std::make_shared<TwoHeads>();
  model->to(tg::kFloat64);
  model->use_a = me() % 2 == 0;
  tg::manual_seed(5);
  const Tensor x = tg::randn({4, 3}, tg::kFloat64);
  {
    dist::DistributedDataParallel ddp(model, dist::DistributedDataParallelOptions().find_unused_parameters(true));
    ddp.zero_grad();
    ddp(x).sum().backward();
    // Head a is used on the even ranks only: its gradient is theirs averaged with zeros.
    auto reference = std::make_shared<TwoHeads>();
    reference->to(tg::kFloat64);
    reference->load_state_dict(model->state_dict());
    reference->a(x).sum().backward();
    const double even_share = double((R() + 1) / 2) / double(R());
    check_relative(model->a.weight.grad(), reference->a.weight.grad() * even_share, 1e-12, "a.weight");
    CHECK(model->b.weight.grad().defined() == (R() > 1));
    CHECK_FALSE(model->never.weight.grad().defined());  // used nowhere: untouched
  }
  if (R() >= 2) {
    model->use_a = true;  // the same parameters unused on every rank, so every rank reports it
    dist::DistributedDataParallel strict(model);
    strict.zero_grad();
    CHECK_THROWS_WITH_AS(strict(x).sum().backward(),
                         ("DistributedDataParallel: rank " + std::to_string(me()) +
                          ": 4 parameters got no gradient in this backward (b.weight, b.bias, never.weight, "
                          "never.bias), so their gradients cannot be averaged. If a forward may leave parameters "
                          "unused, pass DistributedDataParallelOptions().find_unused_parameters(true)").c_str(),
                         tg::Error);
  }
  {
    // no_sync: the first micro-batch accumulates locally, the second averages both.
    model->use_a = true;
    auto lone = std::make_shared<nn::Sequential>(nn::Linear(3, 2));
    lone->to(tg::kFloat64);
    dist::DistributedDataParallel ddp(lone);
    const Tensor x1 = x * double(me() + 1), x2 = x * double(2 * me() + 1);
    {
      auto guard = ddp.no_sync();
      ddp(x1).pow(2.0).sum().backward();
    }
    const Tensor local_first = lone->parameters()[0].grad().clone();
    ddp(x2).pow(2.0).sum().backward();
    // Expected: the mean over ranks of each rank's (first + second) local gradient.
    auto check_copy = std::make_shared<nn::Sequential>(nn::Linear(3, 2));
    check_copy->to(tg::kFloat64);
    check_copy->load_state_dict(lone->state_dict());
    check_copy->forward(x1).pow(2.0).sum().backward();
    check_relative(check_copy->parameters()[0].grad(), local_first, 1e-14, "no_sync kept the local gradient");
    check_copy->forward(x2).pow(2.0).sum().backward();
    Tensor mean = check_copy->parameters()[0].grad().clone();
    dist::all_reduce(mean, dist::ReduceOp::Mean);
    check_relative(lone->parameters()[0].grad(), mean, 1e-12, "accumulated then averaged");
    CHECK(ddp.stats().steps == 1);
  }
}

TEST_CASE("DDP: every rank starts from rank 0's model; a different model on one rank is an error everywhere") {
  tg::manual_seed(100 + std::uint64_t(me()));  // different initial values per rank
  auto model = std::make_shared<nn::Linear>(4, 3);
  dist::DistributedDataParallel ddp(model);
  for (const Tensor& p : model->parameters()) {
    const std::vector<Tensor> all = dist::all_gather(p.detach());
    for (const Tensor& other : all) CHECK(same_values(other, all[0]));
  }
  CHECK(ddp.state_dict().contains("module.weight"));
  if (R() >= 2) {
    auto odd = std::make_shared<nn::Linear>(4, me() == 1 ? 2 : 3);
    CHECK_THROWS_WITH_AS(dist::DistributedDataParallel{odd},
                         "DistributedDataParallel: rank 1's model differs from rank 0's (2 vs 2 trainable parameters; "
                         "names, shapes or dtypes differ); every rank must build the same model",
                         tg::Error);
  }
}

int main(int argc, char** argv) {
  dist::Session session(argc, argv);
  tg::set_num_threads(1);  // ranks share the cores
  doctest::Context context(argc, argv);
  const int failed = context.run();
  // Every rank's verdict counts: a failure on any rank fails the run.
  Tensor flag = tg::full({1}, failed ? 1.0 : 0.0);
  dist::all_reduce(flag, dist::ReduceOp::Max);
  return flag.item() > 0 ? 1 : 0;
}
