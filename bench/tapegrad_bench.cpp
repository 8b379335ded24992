// tapegrad's benchmark: each iteration is one full training step (or one op or layer, forward and
// backward); the argument is the thread count; "faults" counts page faults per step after warm-up.
// bench/torch_reference.cpp runs the same cases with libtorch; scripts/bench.sh compares.
#include <sys/resource.h>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "steps.hpp"
#include <tapegrad/tapegrad.hpp>

namespace nn = tg::nn;

namespace {

using bench::run_steps;

const tg::DType kRowDType = bench::float64_rows() ? tg::kFloat64 : tg::kFloat32;  // op/, layer/, optim/ rows


// BatchNorm1d forward and backward in training mode with a random upstream gradient.
void batchnorm_step(benchmark::State& state, const tg::Shape& shape, std::int64_t channels) {
  tg::set_num_threads(int(state.range(0)));
  tg::manual_seed(0);
  nn::BatchNorm1d bn(channels);
  tg::Tensor x = tg::randn(shape).set_requires_grad();
  const tg::Tensor grad = tg::randn(shape);
  run_steps(state, [&] {
    x.set_grad(tg::Tensor());
    bn.zero_grad();
    tg::Tensor y = bn(x);
    y.backward(grad);
    benchmark::DoNotOptimize(x.grad().data<float>());
  });
  // Bytes moved per step: the forward reads x twice (statistics, normalise) and writes y; the
  // backward reads g and x twice (reductions, input gradient) and writes dx.
  state.SetBytesProcessed(std::int64_t(state.iterations()) * 8 * std::int64_t(x.numel()) * 4);
}

void bn2d(benchmark::State& state) { batchnorm_step(state, {8192, 512}, 512); }
void bn3d(benchmark::State& state) { batchnorm_step(state, {64, 128, 512}, 128); }

// Linear → BatchNorm1d → ReLU → Linear → BatchNorm1d → ReLU → Linear, cross-entropy on random
// labels, SGD(lr 0.01, momentum 0.9): zero_grad, forward, backward, step.
void mlp_step(benchmark::State& state, std::int64_t in, std::int64_t hidden, std::int64_t out, std::size_t batch) {
  tg::set_num_threads(int(state.range(0)));
  tg::manual_seed(0);
  nn::Sequential model(nn::Linear(in, hidden), nn::BatchNorm1d(hidden), nn::ReLU(), nn::Linear(hidden, hidden),
                       nn::BatchNorm1d(hidden), nn::ReLU(), nn::Linear(hidden, out));
  tg::optim::SGD optimizer(model.parameters(), tg::optim::SGDOptions(0.01).momentum(0.9));
  const tg::Tensor x = tg::randn({batch, std::size_t(in)});
  const tg::Tensor labels = tg::randint(0, out, {batch});
  run_steps(state, [&] {
    optimizer.zero_grad();
    tg::Tensor loss = tg::cross_entropy(model(x), labels);
    loss.backward();
    optimizer.step();
  });
}

void mlp(benchmark::State& state) { mlp_step(state, 784, 256, 10, 128); }
void tiny(benchmark::State& state) { mlp_step(state, 2, 16, 2, 32); }

// A chain of 100 elementwise ops on 16 values, forward and backward; the counter is per op.
void op_overhead(benchmark::State& state) {
  tg::set_num_threads(int(state.range(0)));
  tg::manual_seed(0);
  tg::Tensor x = tg::randn({16}).set_requires_grad();
  const tg::Tensor c = tg::randn({16});
  for (auto _ : state) {
    x.set_grad(tg::Tensor());
    tg::Tensor y = x;
    for (int i = 0; i < 25; ++i) y = ((y * c) + c) * 0.5 - c;  // 4 ops each
    y.backward(c);
  }
  state.counters["per_op"] = benchmark::Counter(100, benchmark::Counter::kIsIterationInvariantRate |
                                                         benchmark::Counter::kInvert);
}

// ---- every op family and layer, forward + backward, at an overhead-bound size (64×64) and a
// bandwidth-bound one (1024×1024 floats, 4 MB); torch_reference.cpp has the same table. ------------

struct OpCase {
  const char* name;
  std::function<tg::Tensor(const tg::Tensor&)> op;  // one call per step: not in a hot loop
};

std::vector<OpCase> op_cases() {
  static const tg::Tensor channel_weight = tg::randn({8, 1}, kRowDType);
  auto row = [](const tg::Tensor& x) {
    return bench::fixed(std::int64_t(x.size(-1)), [](std::int64_t n) { return tg::randn({std::size_t(n)}, kRowDType); });
  };
  return {
      {"add", [](const tg::Tensor& x) { return x + x; }},
      {"mul_row", [row](const tg::Tensor& x) { return x * row(x); }},
      // (n/8, 8, n) times a (8, 1) weight that requires grad: its gradient sums dims 0 and 2.
      {"mul_channel", [](const tg::Tensor& x) {
         static tg::Tensor w = channel_weight.clone().set_requires_grad();
         return x.reshape({-1, 8, std::int64_t(x.size(-1))}) * w;
       }},
      {"div", [](const tg::Tensor& x) { return x / (x * x + 1.0); }},
      {"exp", [](const tg::Tensor& x) { return tg::exp(x); }},
      {"relu", [](const tg::Tensor& x) { return tg::relu(x); }},
      {"sigmoid", [](const tg::Tensor& x) { return tg::sigmoid(x); }},
      {"tanh", [](const tg::Tensor& x) { return tg::tanh(x); }},
      {"gelu", [](const tg::Tensor& x) { return tg::gelu(x); }},
      {"gelu_tanh", [](const tg::Tensor& x) { return tg::gelu(x, "tanh"); }},
      {"silu", [](const tg::Tensor& x) { return tg::silu(x); }},
      {"mish", [](const tg::Tensor& x) { return tg::mish(x); }},
      {"elu", [](const tg::Tensor& x) { return tg::elu(x); }},
      {"hardswish", [](const tg::Tensor& x) { return tg::hardswish(x); }},
      {"sum_all", [](const tg::Tensor& x) { return tg::sum(x); }},
      {"sum_last", [](const tg::Tensor& x) { return tg::sum(x, -1); }},
      {"sum_first", [](const tg::Tensor& x) { return tg::sum(x, 0); }},
      {"max_last", [](const tg::Tensor& x) { return std::get<0>(tg::max(x, -1)); }},
      {"softmax", [](const tg::Tensor& x) { return tg::softmax(x, -1); }},
      {"log_softmax", [](const tg::Tensor& x) { return tg::log_softmax(x, -1); }},
      {"transpose", [](const tg::Tensor& x) { return x.t() * 1.0; }},
      {"reshape", [](const tg::Tensor& x) { return x.reshape({-1}) * 1.0; }},
      {"cat", [](const tg::Tensor& x) { return tg::cat({x, x}, 0); }},
      {"matmul", [](const tg::Tensor& x) { return tg::matmul(x, x); }},
      {"pow", [](const tg::Tensor& x) { return tg::pow(x, 2.0); }},
      {"sqrt", [](const tg::Tensor& x) { return tg::sqrt(tg::abs(x) + 1.0); }},
      {"clamp", [](const tg::Tensor& x) { return tg::clamp(x, -0.5, 0.5); }},
      {"where", [](const tg::Tensor& x) { return tg::where(tg::gt(x, 0.0), x, x * 0.5); }},
      {"maximum", [](const tg::Tensor& x) { return tg::maximum(x, x.detach() * 0.5); }},
      {"softplus", [](const tg::Tensor& x) { return tg::softplus(x); }},
      {"leaky_relu", [](const tg::Tensor& x) { return tg::leaky_relu(x, 0.01); }},
      {"sin", [](const tg::Tensor& x) { return tg::sin(x); }},
      {"log1p", [](const tg::Tensor& x) { return tg::log1p(tg::abs(x)); }},
      {"erf", [](const tg::Tensor& x) { return tg::erf(x); }},
      // The angle of (x', x), x' a fixed tensor of x's shape: both gradients computed only for x.
      {"atan2", [](const tg::Tensor& x) {
         return tg::atan2(x, bench::fixed(std::int64_t(x.size(0)), [](std::int64_t k) {
           return tg::randn({std::size_t(k), std::size_t(k)}, kRowDType);
         }));
       }},
      {"round", [](const tg::Tensor& x) { return tg::round(x * 4.0); }},
      {"var_last", [](const tg::Tensor& x) { return tg::var(x, {-1}); }},
      {"mean_first", [](const tg::Tensor& x) { return tg::mean(x, 0); }},
      {"logsumexp", [](const tg::Tensor& x) { return tg::logsumexp(x, -1); }},
      // (n/8, 8, n) -> (n, n/8, 8): the last dim moves first.
      {"permute", [](const tg::Tensor& x) {
         return x.reshape({-1, 8, std::int64_t(x.size(-1))}).permute({2, 0, 1}) * 1.0;
       }},
      {"stack", [](const tg::Tensor& x) { return tg::stack({x, x}, 0); }},
      {"narrow", [](const tg::Tensor& x) { return tg::narrow(x, 1, 1, std::int64_t(x.size(1)) - 2) * 1.0; }},
      {"expand", [](const tg::Tensor& x) {
         return tg::sum(x, 0, true).expand({std::int64_t(x.size(0)), std::int64_t(x.size(1))}) * 1.0;
       }},
      {"l1_loss", [](const tg::Tensor& x) { return tg::l1_loss(x, x.detach() * 0.5); }},
      {"bce", [](const tg::Tensor& x) { return tg::binary_cross_entropy(tg::sigmoid(x), tg::sigmoid(x.detach())); }},
      {"mse_loss", [](const tg::Tensor& x) { return tg::mse_loss(x, x.detach() * 0.5); }},
      {"smooth_l1_loss", [](const tg::Tensor& x) { return tg::smooth_l1_loss(x, x.detach() * 0.5); }},
      {"bce_with_logits", [](const tg::Tensor& x) { return tg::binary_cross_entropy_with_logits(x, x.detach() * 0.5); }},
      {"softmax_first", [](const tg::Tensor& x) { return tg::softmax(x, 0); }},
      {"log_softmax_mid", [](const tg::Tensor& x) {
         return tg::log_softmax(x.reshape({-1, 8, std::int64_t(x.size(-1))}), 1);
       }},
      {"max_dim_first", [](const tg::Tensor& x) { return std::get<0>(tg::max(x, 0)); }},
      {"outer", [](const tg::Tensor& x) { return tg::sum(x, 1, true) * tg::sum(x, 0, true); }},
      {"row_normalize", [](const tg::Tensor& x) { return x / (tg::sum(x * x, 1, true) + 1.0); }},
      {"bmm", [](const tg::Tensor& x) {
         const auto n = std::int64_t(x.size(-1));
         return tg::matmul(x.reshape({-1, 16, n}), x.reshape({-1, n, 16}));
       }},
      {"index_select", [](const tg::Tensor& x) {  // N random rows, repeats included
         const auto n = std::int64_t(x.size(0));
         return tg::index_select(x, 0, bench::fixed(n, [](std::int64_t k) { return tg::randint(0, k, {std::size_t(k)}); }));
       }},
      {"huber_loss", [](const tg::Tensor& x) { return tg::huber_loss(x, x.detach() * 0.5); }},
      {"nll_loss", [](const tg::Tensor& x) {  // x as log-probabilities, a random class a row
         const auto n = std::int64_t(x.size(0));
         return tg::nll_loss(x, bench::fixed(n, [](std::int64_t k) { return tg::randint(0, k, {std::size_t(k)}); }));
       }},
      {"masked_select", [](const tg::Tensor& x) { return tg::masked_select(x, tg::gt(x.detach(), 0.0)); }},
      {"dropout", [](const tg::Tensor& x) { return tg::dropout(x, 0.5, true); }},
      {"var_first", [](const tg::Tensor& x) { return tg::var(x, {0}); }},
      {"sum_mid", [](const tg::Tensor& x) { return tg::sum(x.reshape({-1, 8, std::int64_t(x.size(-1))}), {1}); }},
      {"cross_entropy_mid", [](const tg::Tensor& x) {  // classes at dim 1 of (N, C, L)
         const auto l = std::int64_t(x.size(-1)), batch = bench::mid_batch(l);
         const tg::Tensor& labels = bench::fixed(l, [batch](std::int64_t k) {
           return tg::randint(0, k / batch, {std::size_t(batch), std::size_t(k)});
         });
         return tg::cross_entropy(x.reshape({batch, l / batch, l}), labels);
       }},
      {"cross_entropy_soft", [](const tg::Tensor& x) {  // class probabilities as targets, rows of L classes
         const auto l = std::int64_t(x.size(-1));
         return tg::cross_entropy(x, bench::fixed(l, [dtype = x.dtype()](std::int64_t k) {
           return tg::softmax(tg::randn({std::size_t(k), std::size_t(k)}, dtype), 1);
         }));
       }},
      {"cross_entropy_soft_mid", [](const tg::Tensor& x) {  // the same with the classes at dim 1 of (N, C, L)
         const auto l = std::int64_t(x.size(-1)), batch = bench::mid_batch(l);
         const tg::Tensor& target = bench::fixed(l, [batch, dtype = x.dtype()](std::int64_t k) {
           return tg::softmax(tg::randn({std::size_t(batch), std::size_t(k / batch), std::size_t(k)}, dtype), 1);
         });
         return tg::cross_entropy(x.reshape({batch, l / batch, l}), target);
       }},
      {"matvec", [row](const tg::Tensor& x) { return tg::matmul(x, row(x)); }},
      // (n/8, 8, 1) times (n/8, 1, n): a batched outer product, both sides broadcast.
      {"outer_batched", [](const tg::Tensor& x) {
         const tg::Tensor x3 = x.reshape({-1, 8, std::int64_t(x.size(-1))});
         return tg::sum(x3, 2, true) * tg::sum(x3, 1, true);
       }},
      {"center_rows", [](const tg::Tensor& x) { return x - tg::mean(x, {1}, true); }},
      // Short rows: two values a row, or four, where a copy or a division per row would dominate.
      {"stack_last", [](const tg::Tensor& x) { return tg::stack({x, x}, -1); }},
      {"max_pairs", [](const tg::Tensor& x) { return std::get<0>(tg::max(x.reshape({-1, 2}), -1)); }},
      {"transpose_pairs", [](const tg::Tensor& x) { return x.reshape({-1, 16, 2}).transpose(0, 1) * 1.0; }},
      {"index_rows4", [](const tg::Tensor& x) {  // an embedding of 4 values a row
         const auto rows = std::int64_t(x.numel()) / 4;
         return tg::index_select(x.reshape({-1, 4}), 0, bench::fixed(rows, [](std::int64_t k) {
           return tg::randint(0, k, {std::size_t(k)});
         }));
       }},
      {"bmm4", [](const tg::Tensor& x) { return tg::matmul(x.reshape({-1, 4, 4}), x.reshape({-1, 4, 4})); }},
      {"sum_cols4", [](const tg::Tensor& x) { return tg::sum(x.reshape({-1, 4}), 0); }},
      // The rest of torch.nn's activations.
      {"logsigmoid", [](const tg::Tensor& x) { return tg::logsigmoid(x); }},
      {"softsign", [](const tg::Tensor& x) { return tg::softsign(x); }},
      {"tanhshrink", [](const tg::Tensor& x) { return tg::tanhshrink(x); }},
      {"celu", [](const tg::Tensor& x) { return tg::celu(x); }},
      {"hardshrink", [](const tg::Tensor& x) { return tg::hardshrink(x); }},
      {"softshrink", [](const tg::Tensor& x) { return tg::softshrink(x); }},
      {"threshold", [](const tg::Tensor& x) { return tg::threshold(x, 0.1, 20.0); }},
      {"glu", [](const tg::Tensor& x) { return tg::glu(x, -1); }},
      {"softmin", [](const tg::Tensor& x) { return tg::softmin(x, -1); }},
      // The divergence and count losses (targets |x|, made inside the step on both sides).
      {"kl_div", [](const tg::Tensor& x) { return tg::kl_div(x, tg::abs(x.detach()), tg::Reduction::BatchMean); }},
      {"poisson_nll_loss", [](const tg::Tensor& x) { return tg::poisson_nll_loss(x, tg::abs(x.detach())); }},
      // Distances between rows (the second operand |x|, made inside the step on both sides).
      {"cosine_similarity", [](const tg::Tensor& x) { return tg::cosine_similarity(x, tg::abs(x.detach())); }},
      {"pairwise_distance", [](const tg::Tensor& x) { return tg::pairwise_distance(x, tg::abs(x.detach())); }},
      // Vector norms: each row's 2-norm, and the rows scaled to unit length (F.normalize).
      {"norm", [](const tg::Tensor& x) { return tg::norm(x, 2.0, -1); }},
      {"normalize", [](const tg::Tensor& x) { return tg::normalize(x, 2.0, 1); }},
      // A running sum along the rows, and the upper triangle above the diagonal (a causal mask's shape).
      // x's values added into N columns of zeros at random places along dim 1 (N per row), and its
      // rows into N rows at random (a graph network's messages summed into their nodes).
      {"scatter_add", [](const tg::Tensor& x) {
         const auto n = std::int64_t(x.size(0));
         const auto& [zeros, index] = bench::fixed(n, [](std::int64_t k) {
           const std::size_t m = std::size_t(k);
           return std::pair{tg::zeros({m, m}, kRowDType), tg::randint(0, k, {m, m})};
         });
         return tg::scatter_add(zeros, 1, index, x);
       }},
      {"index_add", [](const tg::Tensor& x) {
         const auto n = std::int64_t(x.size(0));
         const auto& [zeros, rows] = bench::fixed(n, [](std::int64_t k) {
           const std::size_t m = std::size_t(k);
           return std::pair{tg::zeros({m, m}, kRowDType), tg::randint(0, k, {m})};
         });
         return tg::index_add(zeros, 0, rows, x);
       }},
      // A causal mask: -inf above the diagonal.
      {"masked_fill", [](const tg::Tensor& x) {
         const auto n = std::int64_t(x.size(0));
         return x.masked_fill(bench::fixed(n, [](std::int64_t k) {
           return tg::triu(tg::ones({std::size_t(k), std::size_t(k)}, kRowDType), 1);
         }), -INFINITY);
       }},
      {"cumsum", [](const tg::Tensor& x) { return tg::cumsum(x, 1); }},
      {"triu", [](const tg::Tensor& x) { return tg::triu(x, 1); }},
      // gather along the rows: N random columns of each row, repeats included.
      {"gather", [](const tg::Tensor& x) {
         const auto n = std::int64_t(x.size(0));
         return tg::gather(x, 1, bench::fixed(n, [](std::int64_t k) {
           return tg::randint(0, k, {std::size_t(k), std::size_t(k)});
         }));
       }},
  };
}

// Whether case c cannot run on an n x n input (see bench::custom_sizes), said on stderr.
bool left_out(const OpCase& c, std::size_t n) {
  tg::manual_seed(0);
  try {
    (void)c.op(tg::randn({n, n}, kRowDType));
    return false;
  } catch (const tg::Error& e) {
    std::fprintf(stderr, "op/%s/%zu left out: %s\n", c.name, n, e.what());
    return true;
  }
}

void op_step(benchmark::State& state, const OpCase& c, std::size_t n) {
  tg::set_num_threads(int(state.range(0)));
  tg::manual_seed(0);
  tg::Tensor x = tg::randn({n, n}, kRowDType).set_requires_grad();
  tg::Tensor grad;
  try {
    grad = tg::randn(c.op(x).shape(), kRowDType);
  } catch (const tg::Error& e) {  // a reshape that does not fit this size (see bench::op_sizes)
    state.SkipWithError(e.what());
    return;
  }
  run_steps(state, [&] {
    x.set_grad(tg::Tensor());
    c.op(x).backward(grad);
  });
}

// Cross-entropy over 1000 classes: 64 rows and 1024 rows.
void cross_entropy_step(benchmark::State& state, std::size_t rows) {
  tg::set_num_threads(int(state.range(0)));
  tg::manual_seed(0);
  tg::Tensor x = tg::randn({rows, 1000}, kRowDType).set_requires_grad();
  const tg::Tensor labels = tg::randint(0, 1000, {rows});
  run_steps(state, [&] {
    x.set_grad(tg::Tensor());
    tg::cross_entropy(x, labels).backward();
  });
}

// Training steps beyond the first five: a wide MLP with Adam and a deep, narrow one with SGD.
void wide_adam(benchmark::State& state) {
  tg::set_num_threads(int(state.range(0)));
  tg::manual_seed(0);
  nn::Sequential model(nn::Linear(1024, 1024), nn::ReLU(), nn::Linear(1024, 1024), nn::ReLU(), nn::Linear(1024, 10));
  tg::optim::Adam optimizer(model.parameters(), tg::optim::AdamOptions(1e-3));
  const tg::Tensor x = tg::randn({256, 1024});
  const tg::Tensor labels = tg::randint(0, 10, {256});
  run_steps(state, [&] {
    optimizer.zero_grad();
    tg::cross_entropy(model(x), labels).backward();
    optimizer.step();
  });
}

void deep_narrow(benchmark::State& state) {
  tg::set_num_threads(int(state.range(0)));
  tg::manual_seed(0);
  nn::Sequential model;
  for (int i = 0; i < 20; ++i) {
    model.push_back(nn::Linear(i == 0 ? 16 : 64, 64));
    model.push_back(nn::Tanh());
  }
  model.push_back(nn::Linear(64, 4));
  tg::optim::SGD optimizer(model.parameters(), tg::optim::SGDOptions(0.01).momentum(0.9));
  const tg::Tensor x = tg::randn({64, 16});
  const tg::Tensor labels = tg::randint(0, 4, {64});
  run_steps(state, [&] {
    optimizer.zero_grad();
    tg::cross_entropy(model(x), labels).backward();
    optimizer.step();
  });
}

// Single-sample inference of the mlp case's model in eval mode, without a graph.
void infer_one(benchmark::State& state) {
  tg::set_num_threads(int(state.range(0)));
  tg::manual_seed(0);
  nn::Sequential model(nn::Linear(784, 256), nn::BatchNorm1d(256), nn::ReLU(), nn::Linear(256, 256),
                       nn::BatchNorm1d(256), nn::ReLU(), nn::Linear(256, 10));
  model.eval();
  const tg::Tensor x = tg::randn({1, 784});
  tg::NoGradGuard no_grad;
  run_steps(state, [&] { benchmark::DoNotOptimize(model(x).data<float>()); });
}

// The layers of the fashion_cnn example at its shapes (batch 128), forward + backward, and one
// whole training step of it; a GRU over 32 steps; an embedding lookup.
// A layer's forward and backward (its parameters included) on an input of `shape`.
template <class Layer>
void shaped_layer_step(benchmark::State& state, Layer layer, const tg::Shape& shape) {
  tg::set_num_threads(int(state.range(0)));
  tg::manual_seed(0);
  layer.to(kRowDType);
  tg::Tensor x = tg::randn(shape, kRowDType).set_requires_grad();
  const tg::Tensor grad = tg::randn(layer(x).shape(), kRowDType);
  run_steps(state, [&] {
    x.set_grad(tg::Tensor());
    layer.zero_grad();
    layer(x).backward(grad);
  });
}

void cnn_step(benchmark::State& state) {
  tg::set_num_threads(int(state.range(0)));
  tg::manual_seed(0);
  nn::Sequential model(nn::Conv2d(nn::Conv2dOptions(1, 32, 3).padding(1)), nn::BatchNorm2d(32), nn::ReLU(),
                       nn::MaxPool2d(2), nn::Conv2d(nn::Conv2dOptions(32, 64, 3).padding(1)), nn::BatchNorm2d(64),
                       nn::ReLU(), nn::MaxPool2d(2), nn::Flatten(), nn::Linear(64 * 7 * 7, 128), nn::BatchNorm1d(128),
                       nn::ReLU(), nn::Linear(128, 10));
  tg::optim::Adam optimizer(model.parameters(), tg::optim::AdamOptions(1e-3));
  const tg::Tensor x = tg::randn({128, 1, 28, 28});
  const tg::Tensor labels = tg::randint(0, 10, {128});
  run_steps(state, [&] {
    optimizer.zero_grad();
    tg::cross_entropy(model(x), labels).backward();
    optimizer.step();
  });
}

void embedding_step(benchmark::State& state) {
  tg::set_num_threads(int(state.range(0)));
  tg::manual_seed(0);
  nn::Embedding embed(10000, 64);
  embed.to(kRowDType);
  const tg::Tensor ids = tg::randint(0, 10000, {128, 32});
  const tg::Tensor grad = tg::randn({128, 32, 64}, kRowDType);
  run_steps(state, [&] {
    embed.zero_grad();
    embed(ids).backward(grad);
  });
}

// One optimizer step on an n×n parameter whose gradient is already there (a fixed random one).
template <class Optimizer, class Options>
void optimizer_step(benchmark::State& state, std::size_t n, Options options) {
  tg::set_num_threads(int(state.range(0)));
  tg::manual_seed(0);
  tg::Tensor p = tg::randn({n, n}, kRowDType).set_requires_grad();
  p.set_grad(tg::randn({n, n}, kRowDType));
  Optimizer optimizer({p}, options);
  run_steps(state, [&] { optimizer.step(); });
}

void register_op_cases() {
  auto shaped = [](const std::string& name, auto make, tg::Shape shape) {
    benchmark::RegisterBenchmark(("layer/" + name).c_str(), [make, shape](benchmark::State& state) {
      shaped_layer_step(state, make(), shape);
    })->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
  };
  shaped("Conv2d_1x32", [] { return nn::Conv2d(nn::Conv2dOptions(1, 32, 3).padding(1)); }, {128, 1, 28, 28});
  shaped("Conv2d_32x64", [] { return nn::Conv2d(nn::Conv2dOptions(32, 64, 3).padding(1)); }, {128, 32, 14, 14});
  shaped("MaxPool2d", [] { return nn::MaxPool2d(2); }, {128, 32, 28, 28});
  shaped("AvgPool2d", [] { return nn::AvgPool2d(2); }, {128, 32, 28, 28});
  shaped("AdaptiveAvgPool2d", [] { return nn::AdaptiveAvgPool2d(1); }, {128, 64, 14, 14});
  shaped("AdaptiveMaxPool2d", [] { return nn::AdaptiveMaxPool2d(1); }, {128, 64, 14, 14});
  shaped("MaxPool1d", [] { return nn::MaxPool1d(2); }, {64, 32, 128});
  shaped("BatchNorm2d", [] { return nn::BatchNorm2d(32); }, {128, 32, 28, 28});
  shaped("Conv1d", [] { return nn::Conv1d(nn::Conv1dOptions(16, 32, 5).padding(2)); }, {64, 16, 128});
  shaped("GRU", [] { return nn::GRU(nn::GRUOptions(32, 64).batch_first(true)); }, {64, 32, 32});
  shaped("LSTM", [] { return nn::LSTM(nn::LSTMOptions(32, 64).batch_first(true)); }, {64, 32, 32});
  shaped("Conv2d_stride2", [] { return nn::Conv2d(nn::Conv2dOptions(32, 64, 3).stride(2).padding(1)); }, {128, 32, 28, 28});
  shaped("Conv2d_1x1", [] { return nn::Conv2d(nn::Conv2dOptions(64, 128, 1)); }, {128, 64, 14, 14});
  shaped("Conv2d_depthwise", [] { return nn::Conv2d(nn::Conv2dOptions(64, 64, 3).padding(1).groups(64)); }, {128, 64, 14, 14});
  shaped("MaxPool2d_3s2", [] { return nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).padding(1)); }, {128, 32, 28, 28});
  shaped("LayerNorm_3d", [] { return nn::LayerNorm(nn::LayerNormOptions({256})); }, {64, 128, 256});
  shaped("BatchNorm1d_3d", [] { return nn::BatchNorm1d(32); }, {64, 32, 128});
  shaped("Linear_3d", [] { return nn::Linear(256, 256); }, {64, 128, 256});
  shaped("Conv1d_stride2", [] { return nn::Conv1d(nn::Conv1dOptions(16, 32, 5).stride(2).padding(2)); }, {64, 16, 128});
  shaped("BatchNorm2d_eval", [] {
    nn::BatchNorm2d bn(32);
    bn.eval();
    return bn;
  }, {128, 32, 28, 28});
  // LeNet's second convolution (no padding) and a grouped 3×3.
  shaped("Conv2d_valid5x5", [] { return nn::Conv2d(nn::Conv2dOptions(6, 16, 5)); }, {128, 6, 14, 14});
  shaped("Conv2d_groups4", [] { return nn::Conv2d(nn::Conv2dOptions(64, 64, 3).padding(1).groups(4)); }, {64, 64, 14, 14});
  shaped("Conv2d_5x5", [] { return nn::Conv2d(nn::Conv2dOptions(16, 32, 5).padding(2)); }, {64, 16, 28, 28});
  shaped("Conv2d_dilated", [] { return nn::Conv2d(nn::Conv2dOptions(32, 32, 3).padding(2).dilation(2)); }, {32, 32, 28, 28});
  // A stem: 3 -> 16 channels, 3x3 at stride 2, on (64, 3, 64, 64) (MobileNet, a small ResNet).
  shaped("Conv2d_stem_s2", [] { return nn::Conv2d(nn::Conv2dOptions(3, 16, 3).stride(2).padding(1)); }, {64, 3, 64, 64});
  shaped("LSTM_bi2", [] { return nn::LSTM(nn::LSTMOptions(32, 64).num_layers(2).bidirectional(true).batch_first(true)); }, {64, 32, 32});
  // A few rows against a large weight (inference or a small batch), and "same" max pooling with a
  // 5x5 window over small planes (SPP-style).
  shaped("Linear_16rows", [] { return nn::Linear(1024, 1024); }, {16, 1024});
  shaped("MaxPool2d_5s1", [] { return nn::MaxPool2d(nn::MaxPool2dOptions(5).stride(1).padding(2)); }, {32, 64, 13, 13});
  // "Same" average pooling over 32 x 32 planes, the padding not counted (a ResNet-D or Inception branch).
  shaped("AvgPool2d_3s1", [] { return nn::AvgPool2d(nn::AvgPool2dOptions(3).stride(1).padding(1).count_include_pad(false)); },
         {32, 64, 32, 32});
  // The padding layers over the fashion_cnn shapes: reflection (style transfer, CycleGAN) and zeros.
  shaped("ReflectionPad2d", [] { return nn::ReflectionPad2d(1); }, {128, 32, 28, 28});
  shaped("ZeroPad2d", [] { return nn::ZeroPad2d(1); }, {128, 32, 28, 28});
  // Upsampling by interpolation over (128, 32, 14, 14) -> 28x28: nearest and bilinear.
  shaped("Upsample_nearest", [] { return nn::Upsample(nn::UpsampleOptions().scale_factor({2})); }, {128, 32, 14, 14});
  shaped("Upsample_bilinear", [] {
    return nn::Upsample(nn::UpsampleOptions().scale_factor({2}).mode(tg::InterpolateMode::Bilinear));
  }, {128, 32, 14, 14});
  // GroupNorm over the BatchNorm2d row's shape, 8 groups of 4 channels.
  shaped("GroupNorm", [] { return nn::GroupNorm(nn::GroupNormOptions(8, 32)); }, {128, 32, 28, 28});
  // InstanceNorm2d with an affine (style transfer's), in training, over the same shape.
  shaped("InstanceNorm2d", [] { return nn::InstanceNorm2d(nn::InstanceNormOptions(32).affine(true)); }, {128, 32, 28, 28});
  shaped("PReLU", [] { return nn::PReLU(32); }, {128, 32, 28, 28});
  shaped("PixelShuffle", [] { return nn::PixelShuffle(2); }, {64, 128, 14, 14});
  shaped("RNN", [] { return nn::RNN(nn::RNNOptions(32, 64).batch_first(true)); }, {64, 32, 32});
  shaped("MultiheadAttention", [] { return nn::MultiheadAttention(64, 4); }, {32, 64, 64});
  shaped("TransformerEncoderLayer", [] { return nn::TransformerEncoderLayer(nn::TransformerLayerOptions(64, 4).dim_feedforward(256)); }, {32, 64, 64});
  // Upsampling by transposed convolutions: DCGAN's 4x4 stride 2 and U-Net's 2x2 stride 2.
  shaped("ConvTranspose2d", [] { return nn::ConvTranspose2d(nn::ConvTranspose2dOptions(64, 32, 4).stride(2).padding(1)); }, {64, 64, 14, 14});
  shaped("ConvTranspose2d_2x2", [] { return nn::ConvTranspose2d(nn::ConvTranspose2dOptions(64, 32, 2).stride(2)); }, {64, 64, 14, 14});
  shaped("ReplicationPad2d", [] { return nn::ReplicationPad2d(1); }, {128, 32, 28, 28});
  shaped("AvgPool1d", [] { return nn::AvgPool1d(2); }, {64, 32, 128});
  shaped("ConvTranspose1d", [] { return nn::ConvTranspose1d(nn::ConvTranspose1dOptions(32, 16, 4).stride(2).padding(1)); }, {64, 32, 128});
  // Small planes and many channels (a CIFAR ResNet's last stage, 4x4), few channels on large
  // planes (8 -> 8 on 32x32), a ResNet's downsampling 3x3 at stride 2 (16x16 -> 8x8), and a global
  // max pooling by a 7x7 window.
  shaped("Conv2d_4x4_128", [] { return nn::Conv2d(nn::Conv2dOptions(128, 128, 3).padding(1)); }, {16, 128, 4, 4});
  shaped("Conv2d_8ch", [] { return nn::Conv2d(nn::Conv2dOptions(8, 8, 3).padding(1)); }, {64, 8, 32, 32});
  shaped("Conv2d_down_s2", [] { return nn::Conv2d(nn::Conv2dOptions(64, 128, 3).stride(2).padding(1)); }, {32, 64, 16, 16});
  shaped("MaxPool2d_global7", [] { return nn::MaxPool2d(7); }, {64, 256, 7, 7});
  // Channel dropout (training) over the BatchNorm2d row's shape.
  shaped("Dropout2d", [] { return nn::Dropout2d(0.5); }, {128, 32, 28, 28});
  // BatchNorm3d over volumes (a 3-D CNN's or video's): 16 channels of 8 x 28 x 28, 6.4 MB.
  shaped("BatchNorm3d", [] { return nn::BatchNorm3d(16); }, {16, 16, 8, 28, 28});
  // A "valid" Conv1d over long rows (a text or audio CNN's): 64 -> 64 channels, kernel 3, 500 steps.
  shaped("Conv1d_valid", [] { return nn::Conv1d(nn::Conv1dOptions(64, 64, 3)); }, {16, 64, 500});
  // A 1 x 3 kernel over planes (Inception's factorised 1 x 3, or along a spectrogram's time axis):
  // 96 -> 96 channels over 16 x 64 planes.
  shaped("Conv2d_1x3", [] { return nn::Conv2d(nn::Conv2dOptions(96, 96, {1, 3}).padding({0, 1})); }, {8, 96, 16, 64});
  // A Conv1d over many short rows (windows of 4 steps, a batch of 1024): 64 -> 128 channels,
  // kernel 5, "same"; 4 outputs a sample.
  shaped("Conv1d_short", [] { return nn::Conv1d(nn::Conv1dOptions(64, 128, 5).padding(2)); }, {1024, 64, 4});
  // A dilated Conv1d (a TCN's or WaveNet's): 64 -> 64 channels, kernel 3, dilation 4, "same", over
  // 32 rows of 1024 steps.
  shaped("Conv1d_dilated", [] { return nn::Conv1d(nn::Conv1dOptions(64, 64, 3).padding(4).dilation(4)); },
         {32, 64, 1024});
  // BatchNorm1d over rows of 1000 channels from memory (16 MB): a wide MLP layer's, rows longer
  // than a strip of 512 channels.
  shaped("BatchNorm1d_wide", [] { return nn::BatchNorm1d(1000); }, {4096, 1000});
  benchmark::RegisterBenchmark("fashion_cnn_step", cnn_step)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("layer/Embedding", embedding_step)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
  const std::vector<std::int64_t> sizes = bench::op_sizes();
  for (const OpCase& c : op_cases())
    for (const std::int64_t n : sizes) {
      if (bench::custom_sizes() && left_out(c, std::size_t(n))) continue;
      benchmark::RegisterBenchmark(("op/" + std::string(c.name) + "/" + std::to_string(n)).c_str(),
                                   [c, n](benchmark::State& state) { op_step(state, c, n); })
          ->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
    }
  for (const std::int64_t rows : sizes)
    benchmark::RegisterBenchmark(("op/cross_entropy/" + std::to_string(rows)).c_str(),
                                 [rows](benchmark::State& state) { cross_entropy_step(state, rows); })
        ->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
  for (const std::int64_t n : sizes) {
    const std::string size = "/" + std::to_string(n);
    auto add = [&](const std::string& name, auto make) {
      benchmark::RegisterBenchmark(("layer/" + name + size).c_str(),
                                   [make, n](benchmark::State& state) { shaped_layer_step(state, make(n), {std::size_t(n), std::size_t(n)}); })
          ->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
    };
    add("Linear", [](std::size_t k) { return nn::Linear(std::int64_t(k), std::int64_t(k)); });
    add("LayerNorm", [](std::size_t k) { return nn::LayerNorm(nn::LayerNormOptions({std::int64_t(k)})); });
    add("BatchNorm1d", [](std::size_t k) { return nn::BatchNorm1d(std::int64_t(k)); });
    add("Dropout", [](std::size_t) { return nn::Dropout(0.5); });
  }
  namespace optim = tg::optim;
  for (const std::int64_t n : sizes) {
    auto add = [n](const std::string& name, auto run) {
      benchmark::RegisterBenchmark(("optim/" + name + "/" + std::to_string(n)).c_str(),
                                   [run, n](benchmark::State& state) { run(state, n); })
          ->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
    };
    add("SGD", [](auto& state, std::size_t k) {
      optimizer_step<optim::SGD>(state, k, optim::SGDOptions(1e-3).momentum(0.9).weight_decay(1e-4));
    });
    add("Adam", [](auto& state, std::size_t k) { optimizer_step<optim::Adam>(state, k, optim::AdamOptions(1e-3)); });
    add("AdamW", [](auto& state, std::size_t k) { optimizer_step<optim::AdamW>(state, k, optim::AdamWOptions(1e-3)); });
    add("RMSprop", [](auto& state, std::size_t k) {
      optimizer_step<optim::RMSprop>(state, k, optim::RMSpropOptions(1e-3));
    });
    add("Adagrad", [](auto& state, std::size_t k) {
      optimizer_step<optim::Adagrad>(state, k, optim::AdagradOptions(1e-3));
    });
  }
}

}  // namespace

BENCHMARK(wide_adam)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(deep_narrow)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(infer_one)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(bn2d)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(bn3d)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(mlp)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(tiny)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(op_overhead)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_op_cases();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::fprintf(stderr, "peak_rss_kb %ld\n", usage.ru_maxrss);
  return 0;
}
