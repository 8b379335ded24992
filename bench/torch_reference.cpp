// The cases of tapegrad_bench.cpp with libtorch's C++ frontend, in its best configuration:
// torch::set_num_threads(T) and OpenBLAS held to one thread (otherwise libtorch oversubscribes
// the cores and gets slower with 2 threads).
#include <dlfcn.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include <benchmark/benchmark.h>

#include "steps.hpp"
#include <torch/torch.h>

namespace {

using bench::run_steps;

const torch::Dtype kRowDType = bench::float64_rows() ? torch::kFloat64 : torch::kFloat32;  // op/, layer/, optim/ rows

void hold_openblas_to_one_thread() {
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(1);
}

void batchnorm_step(benchmark::State& state, std::vector<int64_t> shape, int64_t channels) {
  torch::set_num_threads(int(state.range(0)));
  hold_openblas_to_one_thread();
  torch::manual_seed(0);
  torch::nn::BatchNorm1d bn(channels);
  torch::Tensor x = torch::randn(shape).requires_grad_();
  const torch::Tensor grad = torch::randn(shape);
  run_steps(state, [&] {
    x.mutable_grad() = torch::Tensor();
    bn->zero_grad();
    torch::Tensor y = bn(x);
    y.backward(grad);
    benchmark::DoNotOptimize(x.grad().data_ptr<float>());
  });
  state.SetBytesProcessed(int64_t(state.iterations()) * 8 * x.numel() * 4);
}

void bn2d(benchmark::State& state) { batchnorm_step(state, {8192, 512}, 512); }
void bn3d(benchmark::State& state) { batchnorm_step(state, {64, 128, 512}, 128); }

void mlp_step(benchmark::State& state, int64_t in, int64_t hidden, int64_t out, int64_t batch) {
  torch::set_num_threads(int(state.range(0)));
  hold_openblas_to_one_thread();
  torch::manual_seed(0);
  torch::nn::Sequential model(torch::nn::Linear(in, hidden), torch::nn::BatchNorm1d(hidden), torch::nn::ReLU(),
                              torch::nn::Linear(hidden, hidden), torch::nn::BatchNorm1d(hidden), torch::nn::ReLU(),
                              torch::nn::Linear(hidden, out));
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  const torch::Tensor x = torch::randn({batch, in});
  const torch::Tensor labels = torch::randint(0, out, {batch});
  run_steps(state, [&] {
    optimizer.zero_grad();
    torch::Tensor loss = torch::nn::functional::cross_entropy(model->forward(x), labels);
    loss.backward();
    optimizer.step();
  });
}

void mlp(benchmark::State& state) { mlp_step(state, 784, 256, 10, 128); }
void tiny(benchmark::State& state) { mlp_step(state, 2, 16, 2, 32); }

void op_overhead(benchmark::State& state) {
  torch::set_num_threads(int(state.range(0)));
  hold_openblas_to_one_thread();
  torch::manual_seed(0);
  torch::Tensor x = torch::randn({16}).requires_grad_();
  const torch::Tensor c = torch::randn({16});
  for (auto _ : state) {
    x.mutable_grad() = torch::Tensor();
    torch::Tensor y = x;
    for (int i = 0; i < 25; ++i) y = ((y * c) + c) * 0.5 - c;
    y.backward(c);
  }
  state.counters["per_op"] = benchmark::Counter(100, benchmark::Counter::kIsIterationInvariantRate |
                                                         benchmark::Counter::kInvert);
}

// ---- the op and layer table of tapegrad_bench.cpp -----------------------------------------------

struct OpCase {
  const char* name;
  std::function<torch::Tensor(const torch::Tensor&)> op;
};

std::vector<OpCase> op_cases() {
  static const torch::Tensor channel_weight = torch::randn({8, 1}, kRowDType);
  auto row = [](const torch::Tensor& x) { return bench::fixed(x.size(-1), [](int64_t n) { return torch::randn({n}, kRowDType); }); };
  namespace F = torch::nn::functional;
  return {
      {"add", [](const torch::Tensor& x) { return x + x; }},
      {"mul_row", [row](const torch::Tensor& x) { return x * row(x); }},
      {"mul_channel", [](const torch::Tensor& x) {
         static torch::Tensor w = channel_weight.clone().requires_grad_();
         return x.reshape({-1, 8, x.size(-1)}) * w;
       }},
      {"div", [](const torch::Tensor& x) { return x / (x * x + 1.0); }},
      {"exp", [](const torch::Tensor& x) { return torch::exp(x); }},
      {"relu", [](const torch::Tensor& x) { return torch::relu(x); }},
      {"sigmoid", [](const torch::Tensor& x) { return torch::sigmoid(x); }},
      {"tanh", [](const torch::Tensor& x) { return torch::tanh(x); }},
      {"gelu", [](const torch::Tensor& x) { return F::gelu(x); }},
      {"gelu_tanh", [](const torch::Tensor& x) { return F::gelu(x, F::GELUFuncOptions().approximate("tanh")); }},
      {"silu", [](const torch::Tensor& x) { return F::silu(x); }},
      {"mish", [](const torch::Tensor& x) { return F::mish(x); }},
      {"elu", [](const torch::Tensor& x) { return F::elu(x); }},
      {"hardswish", [](const torch::Tensor& x) { return torch::hardswish(x); }},
      {"sum_all", [](const torch::Tensor& x) { return x.sum(); }},
      {"sum_last", [](const torch::Tensor& x) { return x.sum(-1); }},
      {"sum_first", [](const torch::Tensor& x) { return x.sum(0); }},
      {"max_last", [](const torch::Tensor& x) { return std::get<0>(x.max(-1)); }},
      {"softmax", [](const torch::Tensor& x) { return torch::softmax(x, -1); }},
      {"log_softmax", [](const torch::Tensor& x) { return torch::log_softmax(x, -1); }},
      {"transpose", [](const torch::Tensor& x) { return x.t() * 1.0; }},
      {"reshape", [](const torch::Tensor& x) { return x.reshape({-1}) * 1.0; }},
      {"cat", [](const torch::Tensor& x) { return torch::cat({x, x}, 0); }},
      {"matmul", [](const torch::Tensor& x) { return torch::matmul(x, x); }},
      {"pow", [](const torch::Tensor& x) { return torch::pow(x, 2.0); }},
      {"sqrt", [](const torch::Tensor& x) { return torch::sqrt(torch::abs(x) + 1.0); }},
      {"clamp", [](const torch::Tensor& x) { return torch::clamp(x, -0.5, 0.5); }},
      {"where", [](const torch::Tensor& x) { return torch::where(x > 0.0, x, x * 0.5); }},
      {"maximum", [](const torch::Tensor& x) { return torch::maximum(x, x.detach() * 0.5); }},
      {"softplus", [](const torch::Tensor& x) { return F::softplus(x); }},
      {"leaky_relu",
       [](const torch::Tensor& x) { return F::leaky_relu(x, F::LeakyReLUFuncOptions().negative_slope(0.01)); }},
      {"sin", [](const torch::Tensor& x) { return torch::sin(x); }},
      {"log1p", [](const torch::Tensor& x) { return torch::log1p(x.abs()); }},
      {"erf", [](const torch::Tensor& x) { return torch::erf(x); }},
      {"atan2", [](const torch::Tensor& x) {
         return torch::atan2(x, bench::fixed(x.size(0), [](int64_t k) { return torch::randn({k, k}, kRowDType); }));
       }},
      {"round", [](const torch::Tensor& x) { return torch::round(x * 4.0); }},
      {"var_last", [](const torch::Tensor& x) { return x.var(-1); }},
      {"mean_first", [](const torch::Tensor& x) { return x.mean(0); }},
      {"logsumexp", [](const torch::Tensor& x) { return torch::logsumexp(x, -1); }},
      {"permute", [](const torch::Tensor& x) { return x.reshape({-1, 8, x.size(-1)}).permute({2, 0, 1}) * 1.0; }},
      {"stack", [](const torch::Tensor& x) { return torch::stack({x, x}, 0); }},
      {"narrow", [](const torch::Tensor& x) { return x.narrow(1, 1, x.size(1) - 2) * 1.0; }},
      {"expand", [](const torch::Tensor& x) { return x.sum(0, true).expand({x.size(0), x.size(1)}) * 1.0; }},
      {"l1_loss", [](const torch::Tensor& x) { return F::l1_loss(x, x.detach() * 0.5); }},
      {"bce",
       [](const torch::Tensor& x) { return F::binary_cross_entropy(torch::sigmoid(x), torch::sigmoid(x.detach())); }},
      {"mse_loss", [](const torch::Tensor& x) { return F::mse_loss(x, x.detach() * 0.5); }},
      {"smooth_l1_loss", [](const torch::Tensor& x) { return F::smooth_l1_loss(x, x.detach() * 0.5); }},
      {"bce_with_logits",
       [](const torch::Tensor& x) { return F::binary_cross_entropy_with_logits(x, x.detach() * 0.5); }},
      {"softmax_first", [](const torch::Tensor& x) { return torch::softmax(x, 0); }},
      {"log_softmax_mid", [](const torch::Tensor& x) { return torch::log_softmax(x.reshape({-1, 8, x.size(-1)}), 1); }},
      {"max_dim_first", [](const torch::Tensor& x) { return std::get<0>(x.max(0)); }},
      {"outer", [](const torch::Tensor& x) { return x.sum(1, true) * x.sum(0, true); }},
      {"row_normalize", [](const torch::Tensor& x) { return x / ((x * x).sum(1, true) + 1.0); }},
      {"bmm", [](const torch::Tensor& x) {
         return torch::matmul(x.reshape({-1, 16, x.size(-1)}), x.reshape({-1, x.size(-1), 16}));
       }},
      {"index_select", [](const torch::Tensor& x) {
         return x.index_select(0, bench::fixed(x.size(0), [](int64_t k) { return torch::randint(0, k, {k}); }));
       }},
      {"huber_loss", [](const torch::Tensor& x) { return F::huber_loss(x, x.detach() * 0.5); }},
      {"nll_loss", [](const torch::Tensor& x) {
         return F::nll_loss(x, bench::fixed(x.size(0), [](int64_t k) { return torch::randint(0, k, {k}); }));
       }},
      {"masked_select", [](const torch::Tensor& x) { return x.masked_select(x.detach() > 0.0); }},
      {"dropout", [](const torch::Tensor& x) { return torch::dropout(x, 0.5, true); }},
      {"var_first", [](const torch::Tensor& x) { return x.var(0); }},
      {"sum_mid", [](const torch::Tensor& x) { return x.reshape({-1, 8, x.size(-1)}).sum(1); }},
      {"cross_entropy_mid", [](const torch::Tensor& x) {  // classes at dim 1 of (N, C, L)
         const int64_t l = x.size(-1), batch = bench::mid_batch(l);
         const torch::Tensor& labels = bench::fixed(l, [batch](int64_t k) { return torch::randint(0, k / batch, {batch, k}); });
         return F::cross_entropy(x.reshape({batch, l / batch, l}), labels);
       }},
      {"cross_entropy_soft", [](const torch::Tensor& x) {
         return F::cross_entropy(x, bench::fixed(x.size(-1), [dtype = x.scalar_type()](int64_t k) {
           return torch::softmax(torch::randn({k, k}, dtype), 1);
         }));
       }},
      {"cross_entropy_soft_mid", [](const torch::Tensor& x) {
         const int64_t l = x.size(-1), batch = bench::mid_batch(l);
         const torch::Tensor& target = bench::fixed(l, [batch, dtype = x.scalar_type()](int64_t k) {
           return torch::softmax(torch::randn({batch, k / batch, k}, dtype), 1);
         });
         return F::cross_entropy(x.reshape({batch, l / batch, l}), target);
       }},
      {"matvec", [row](const torch::Tensor& x) { return torch::matmul(x, row(x)); }},
      {"outer_batched", [](const torch::Tensor& x) {
         const torch::Tensor x3 = x.reshape({-1, 8, x.size(-1)});
         return x3.sum(2, true) * x3.sum(1, true);
       }},
      {"center_rows", [](const torch::Tensor& x) { return x - x.mean(1, true); }},
      {"stack_last", [](const torch::Tensor& x) { return torch::stack({x, x}, -1); }},
      {"max_pairs", [](const torch::Tensor& x) { return std::get<0>(x.reshape({-1, 2}).max(-1)); }},
      {"transpose_pairs", [](const torch::Tensor& x) { return x.reshape({-1, 16, 2}).transpose(0, 1) * 1.0; }},
      {"index_rows4", [](const torch::Tensor& x) {
         return x.reshape({-1, 4}).index_select(0, bench::fixed(x.numel() / 4, [](int64_t k) { return torch::randint(0, k, {k}); }));
       }},
      {"bmm4", [](const torch::Tensor& x) { return torch::matmul(x.reshape({-1, 4, 4}), x.reshape({-1, 4, 4})); }},
      {"sum_cols4", [](const torch::Tensor& x) { return x.reshape({-1, 4}).sum(0); }},
      // The rest of torch.nn's activations.
      {"logsigmoid", [](const torch::Tensor& x) { return F::logsigmoid(x); }},
      {"softsign", [](const torch::Tensor& x) { return F::softsign(x); }},
      {"tanhshrink", [](const torch::Tensor& x) { return F::tanhshrink(x); }},
      {"celu", [](const torch::Tensor& x) { return F::celu(x); }},
      {"hardshrink", [](const torch::Tensor& x) { return F::hardshrink(x); }},
      {"softshrink", [](const torch::Tensor& x) { return F::softshrink(x); }},
      {"threshold", [](const torch::Tensor& x) { return F::threshold(x, F::ThresholdFuncOptions(0.1, 20.0)); }},
      {"glu", [](const torch::Tensor& x) { return F::glu(x, F::GLUFuncOptions(-1)); }},
      {"softmin", [](const torch::Tensor& x) { return F::softmin(x, F::SoftminFuncOptions(-1)); }},
      // The divergence and count losses (targets |x|, made inside the step on both sides).
      {"kl_div", [](const torch::Tensor& x) {
         return F::kl_div(x, x.detach().abs(), F::KLDivFuncOptions().reduction(torch::kBatchMean));
       }},
      {"poisson_nll_loss", [](const torch::Tensor& x) { return F::poisson_nll_loss(x, x.detach().abs()); }},
      // Distances between rows (the second operand |x|, made inside the step on both sides).
      {"cosine_similarity", [](const torch::Tensor& x) { return F::cosine_similarity(x, x.detach().abs()); }},
      {"pairwise_distance", [](const torch::Tensor& x) { return F::pairwise_distance(x, x.detach().abs()); }},
      {"norm", [](const torch::Tensor& x) { return torch::linalg::vector_norm(x, 2, {-1}, false, c10::nullopt); }},
      {"normalize", [](const torch::Tensor& x) { return F::normalize(x, F::NormalizeFuncOptions().p(2).dim(1)); }},
      {"scatter_add", [](const torch::Tensor& x) {
         const auto& [zeros, index] = bench::fixed(x.size(0), [](int64_t k) {
           return std::pair{torch::zeros({k, k}, kRowDType), torch::randint(0, k, {k, k})};
         });
         return torch::scatter_add(zeros, 1, index, x);
       }},
      {"index_add", [](const torch::Tensor& x) {
         const auto& [zeros, rows] = bench::fixed(x.size(0), [](int64_t k) {
           return std::pair{torch::zeros({k, k}, kRowDType), torch::randint(0, k, {k})};
         });
         return torch::index_add(zeros, 0, rows, x);
       }},
      {"masked_fill", [](const torch::Tensor& x) {
         return x.masked_fill(bench::fixed(x.size(0), [](int64_t k) { return torch::ones({k, k}).triu(1).to(torch::kBool); }),
                              -INFINITY);
       }},
      {"cumsum", [](const torch::Tensor& x) { return x.cumsum(1); }},
      {"triu", [](const torch::Tensor& x) { return x.triu(1); }},
      {"gather", [](const torch::Tensor& x) {
         return x.gather(1, bench::fixed(x.size(0), [](int64_t k) { return torch::randint(0, k, {k, k}); }));
       }},
  };
}

// Whether case c cannot run on an n x n input (see bench::custom_sizes), said on stderr.
bool left_out(const OpCase& c, int64_t n) {
  torch::manual_seed(0);
  try {
    (void)c.op(torch::randn({n, n}, kRowDType));
    return false;
  } catch (const std::exception& e) {
    const std::string message = e.what();
    std::fprintf(stderr, "op/%s/%lld left out: %s\n", c.name, static_cast<long long>(n),
                 message.substr(0, message.find('\n')).c_str());
    return true;
  }
}

void op_step(benchmark::State& state, const OpCase& c, int64_t n) {
  torch::set_num_threads(int(state.range(0)));
  hold_openblas_to_one_thread();
  torch::manual_seed(0);
  torch::Tensor x = torch::randn({n, n}, kRowDType).requires_grad_();
  torch::Tensor grad;
  try {
    grad = torch::randn(c.op(x).sizes(), kRowDType);
  } catch (const std::exception& e) {  // a reshape that does not fit this size (see bench::op_sizes)
    const std::string message = e.what();
    state.SkipWithError(message.substr(0, message.find('\n')).c_str());
    return;
  }
  run_steps(state, [&] {
    x.mutable_grad() = torch::Tensor();
    c.op(x).backward(grad);
  });
}

void cross_entropy_step(benchmark::State& state, int64_t rows) {
  torch::set_num_threads(int(state.range(0)));
  hold_openblas_to_one_thread();
  torch::manual_seed(0);
  torch::Tensor x = torch::randn({rows, 1000}, kRowDType).requires_grad_();
  const torch::Tensor labels = torch::randint(0, 1000, {rows});
  run_steps(state, [&] {
    x.mutable_grad() = torch::Tensor();
    torch::nn::functional::cross_entropy(x, labels).backward();
  });
}


void wide_adam(benchmark::State& state) {
  torch::set_num_threads(int(state.range(0)));
  hold_openblas_to_one_thread();
  torch::manual_seed(0);
  torch::nn::Sequential model(torch::nn::Linear(1024, 1024), torch::nn::ReLU(), torch::nn::Linear(1024, 1024),
                              torch::nn::ReLU(), torch::nn::Linear(1024, 10));
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(1e-3));
  const torch::Tensor x = torch::randn({256, 1024});
  const torch::Tensor labels = torch::randint(0, 10, {256});
  run_steps(state, [&] {
    optimizer.zero_grad();
    torch::nn::functional::cross_entropy(model->forward(x), labels).backward();
    optimizer.step();
  });
}

void deep_narrow(benchmark::State& state) {
  torch::set_num_threads(int(state.range(0)));
  hold_openblas_to_one_thread();
  torch::manual_seed(0);
  torch::nn::Sequential model;
  for (int i = 0; i < 20; ++i) {
    model->push_back(torch::nn::Linear(i == 0 ? 16 : 64, 64));
    model->push_back(torch::nn::Tanh());
  }
  model->push_back(torch::nn::Linear(64, 4));
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  const torch::Tensor x = torch::randn({64, 16});
  const torch::Tensor labels = torch::randint(0, 4, {64});
  run_steps(state, [&] {
    optimizer.zero_grad();
    torch::nn::functional::cross_entropy(model->forward(x), labels).backward();
    optimizer.step();
  });
}

void infer_one(benchmark::State& state) {
  torch::set_num_threads(int(state.range(0)));
  hold_openblas_to_one_thread();
  torch::manual_seed(0);
  torch::nn::Sequential model(torch::nn::Linear(784, 256), torch::nn::BatchNorm1d(256), torch::nn::ReLU(),
                              torch::nn::Linear(256, 256), torch::nn::BatchNorm1d(256), torch::nn::ReLU(),
                              torch::nn::Linear(256, 10));
  model->eval();
  const torch::Tensor x = torch::randn({1, 784});
  torch::NoGradGuard no_grad;
  run_steps(state, [&] { benchmark::DoNotOptimize(model->forward(x).data_ptr<float>()); });
}

template <class Layer>
void shaped_layer_step(benchmark::State& state, Layer layer, std::vector<int64_t> shape) {
  torch::set_num_threads(int(state.range(0)));
  hold_openblas_to_one_thread();
  torch::manual_seed(0);
  layer->to(kRowDType);
  torch::Tensor x = torch::randn(shape, kRowDType).requires_grad_();
  auto output = [&] {
    if constexpr (std::is_same_v<Layer, torch::nn::RNN> || std::is_same_v<Layer, torch::nn::GRU> ||
                  std::is_same_v<Layer, torch::nn::LSTM>)
      return std::get<0>(layer->forward(x));
    else if constexpr (std::is_same_v<Layer, torch::nn::MultiheadAttention>)
      return std::get<0>(layer->forward(x, x, x, {}, /*need_weights=*/false));  // as tapegrad's forward(x)
    else
      return layer->forward(x);
  };
  const torch::Tensor grad = torch::randn(output().sizes(), kRowDType);
  run_steps(state, [&] {
    x.mutable_grad() = torch::Tensor();
    layer->zero_grad();
    output().backward(grad);
  });
}

void cnn_step(benchmark::State& state) {
  torch::set_num_threads(int(state.range(0)));
  hold_openblas_to_one_thread();
  torch::manual_seed(0);
  namespace tnn = torch::nn;
  tnn::Sequential model(tnn::Conv2d(tnn::Conv2dOptions(1, 32, 3).padding(1)), tnn::BatchNorm2d(32), tnn::ReLU(),
                        tnn::MaxPool2d(2), tnn::Conv2d(tnn::Conv2dOptions(32, 64, 3).padding(1)), tnn::BatchNorm2d(64),
                        tnn::ReLU(), tnn::MaxPool2d(2), tnn::Flatten(), tnn::Linear(64 * 7 * 7, 128),
                        tnn::BatchNorm1d(128), tnn::ReLU(), tnn::Linear(128, 10));
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(1e-3));
  const torch::Tensor x = torch::randn({128, 1, 28, 28});
  const torch::Tensor labels = torch::randint(0, 10, {128});
  run_steps(state, [&] {
    optimizer.zero_grad();
    torch::nn::functional::cross_entropy(model->forward(x), labels).backward();
    optimizer.step();
  });
}

void embedding_step(benchmark::State& state) {
  torch::set_num_threads(int(state.range(0)));
  hold_openblas_to_one_thread();
  torch::manual_seed(0);
  torch::nn::Embedding embed(10000, 64);
  embed->to(kRowDType);
  const torch::Tensor ids = torch::randint(0, 10000, {128, 32});
  const torch::Tensor grad = torch::randn({128, 32, 64}, kRowDType);
  run_steps(state, [&] {
    embed->zero_grad();
    embed->forward(ids).backward(grad);
  });
}

// One optimizer step on an n×n parameter whose gradient is already there (a fixed random one).
template <class Optimizer, class Options>
void optimizer_step(benchmark::State& state, int64_t n, Options options) {
  torch::set_num_threads(int(state.range(0)));
  hold_openblas_to_one_thread();
  torch::manual_seed(0);
  torch::Tensor p = torch::randn({n, n}, kRowDType).requires_grad_();
  p.mutable_grad() = torch::randn({n, n}, kRowDType);
  Optimizer optimizer(std::vector<torch::Tensor>{p}, options);
  run_steps(state, [&] { optimizer.step(); });
}

void register_op_cases() {
  auto shaped = [](const std::string& name, auto make, std::vector<int64_t> shape) {
    benchmark::RegisterBenchmark(("layer/" + name).c_str(), [make, shape](benchmark::State& state) {
      shaped_layer_step(state, make(), shape);
    })->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
  };
  namespace tnn = torch::nn;
  shaped("Conv2d_1x32", [] { return tnn::Conv2d(tnn::Conv2dOptions(1, 32, 3).padding(1)); }, {128, 1, 28, 28});
  shaped("Conv2d_32x64", [] { return tnn::Conv2d(tnn::Conv2dOptions(32, 64, 3).padding(1)); }, {128, 32, 14, 14});
  shaped("MaxPool2d", [] { return tnn::MaxPool2d(2); }, {128, 32, 28, 28});
  shaped("AvgPool2d", [] { return tnn::AvgPool2d(2); }, {128, 32, 28, 28});
  shaped("AdaptiveAvgPool2d", [] { return tnn::AdaptiveAvgPool2d(1); }, {128, 64, 14, 14});
  shaped("AdaptiveMaxPool2d", [] { return tnn::AdaptiveMaxPool2d(tnn::AdaptiveMaxPool2dOptions(1)); }, {128, 64, 14, 14});
  shaped("MaxPool1d", [] { return tnn::MaxPool1d(2); }, {64, 32, 128});
  shaped("BatchNorm2d", [] { return tnn::BatchNorm2d(32); }, {128, 32, 28, 28});
  shaped("Conv1d", [] { return tnn::Conv1d(tnn::Conv1dOptions(16, 32, 5).padding(2)); }, {64, 16, 128});
  shaped("GRU", [] { return tnn::GRU(tnn::GRUOptions(32, 64).batch_first(true)); }, {64, 32, 32});
  shaped("LSTM", [] { return tnn::LSTM(tnn::LSTMOptions(32, 64).batch_first(true)); }, {64, 32, 32});
  shaped("Conv2d_stride2", [] { return tnn::Conv2d(tnn::Conv2dOptions(32, 64, 3).stride(2).padding(1)); }, {128, 32, 28, 28});
  shaped("Conv2d_1x1", [] { return tnn::Conv2d(tnn::Conv2dOptions(64, 128, 1)); }, {128, 64, 14, 14});
  shaped("Conv2d_depthwise", [] { return tnn::Conv2d(tnn::Conv2dOptions(64, 64, 3).padding(1).groups(64)); }, {128, 64, 14, 14});
  shaped("MaxPool2d_3s2", [] { return tnn::MaxPool2d(tnn::MaxPool2dOptions(3).stride(2).padding(1)); }, {128, 32, 28, 28});
  shaped("LayerNorm_3d", [] { return tnn::LayerNorm(tnn::LayerNormOptions({256})); }, {64, 128, 256});
  shaped("BatchNorm1d_3d", [] { return tnn::BatchNorm1d(32); }, {64, 32, 128});
  shaped("Linear_3d", [] { return tnn::Linear(256, 256); }, {64, 128, 256});
  shaped("Conv1d_stride2", [] { return tnn::Conv1d(tnn::Conv1dOptions(16, 32, 5).stride(2).padding(2)); }, {64, 16, 128});
  shaped("BatchNorm2d_eval", [] {
    tnn::BatchNorm2d bn(32);
    bn->eval();
    return bn;
  }, {128, 32, 28, 28});
  // LeNet's second convolution (no padding) and a grouped 3×3.
  shaped("Conv2d_valid5x5", [] { return tnn::Conv2d(tnn::Conv2dOptions(6, 16, 5)); }, {128, 6, 14, 14});
  shaped("Conv2d_groups4", [] { return tnn::Conv2d(tnn::Conv2dOptions(64, 64, 3).padding(1).groups(4)); }, {64, 64, 14, 14});
  shaped("Conv2d_5x5", [] { return tnn::Conv2d(tnn::Conv2dOptions(16, 32, 5).padding(2)); }, {64, 16, 28, 28});
  shaped("Conv2d_dilated", [] { return tnn::Conv2d(tnn::Conv2dOptions(32, 32, 3).padding(2).dilation(2)); }, {32, 32, 28, 28});
  // A stem: 3 -> 16 channels, 3x3 at stride 2, on (64, 3, 64, 64) (MobileNet, a small ResNet).
  shaped("Conv2d_stem_s2", [] { return tnn::Conv2d(tnn::Conv2dOptions(3, 16, 3).stride(2).padding(1)); }, {64, 3, 64, 64});
  shaped("LSTM_bi2", [] { return tnn::LSTM(tnn::LSTMOptions(32, 64).num_layers(2).bidirectional(true).batch_first(true)); }, {64, 32, 32});
  // A few rows against a large weight (inference or a small batch), and "same" max pooling with a
  // 5x5 window over small planes (SPP-style).
  shaped("Linear_16rows", [] { return tnn::Linear(1024, 1024); }, {16, 1024});
  shaped("MaxPool2d_5s1", [] { return tnn::MaxPool2d(tnn::MaxPool2dOptions(5).stride(1).padding(2)); }, {32, 64, 13, 13});
  // "Same" average pooling over 32 x 32 planes, the padding not counted (a ResNet-D or Inception branch).
  shaped("AvgPool2d_3s1", [] { return tnn::AvgPool2d(tnn::AvgPool2dOptions(3).stride(1).padding(1).count_include_pad(false)); },
         {32, 64, 32, 32});
  // The padding layers over the fashion_cnn shapes: reflection (style transfer, CycleGAN) and zeros.
  shaped("ReflectionPad2d", [] { return tnn::ReflectionPad2d(tnn::ReflectionPad2dOptions(1)); }, {128, 32, 28, 28});
  shaped("ZeroPad2d", [] { return tnn::ZeroPad2d(tnn::ZeroPad2dOptions(1)); }, {128, 32, 28, 28});
  // Upsampling by interpolation over (128, 32, 14, 14) -> 28x28: nearest and bilinear.
  shaped("Upsample_nearest", [] {
    return tnn::Upsample(tnn::UpsampleOptions().scale_factor(std::vector<double>{2, 2}).mode(torch::kNearest));
  }, {128, 32, 14, 14});
  shaped("Upsample_bilinear", [] {
    return tnn::Upsample(
        tnn::UpsampleOptions().scale_factor(std::vector<double>{2, 2}).mode(torch::kBilinear).align_corners(false));
  }, {128, 32, 14, 14});
  // GroupNorm over the BatchNorm2d row's shape, 8 groups of 4 channels.
  shaped("GroupNorm", [] { return tnn::GroupNorm(tnn::GroupNormOptions(8, 32)); }, {128, 32, 28, 28});
  // InstanceNorm2d with an affine (style transfer's), in training, over the same shape.
  shaped("InstanceNorm2d", [] { return tnn::InstanceNorm2d(tnn::InstanceNorm2dOptions(32).affine(true)); }, {128, 32, 28, 28});
  shaped("PReLU", [] { return tnn::PReLU(tnn::PReLUOptions().num_parameters(32)); }, {128, 32, 28, 28});
  shaped("PixelShuffle", [] { return tnn::PixelShuffle(tnn::PixelShuffleOptions(2)); }, {64, 128, 14, 14});
  shaped("RNN", [] { return tnn::RNN(tnn::RNNOptions(32, 64).batch_first(true)); }, {64, 32, 32});
  shaped("MultiheadAttention", [] { return tnn::MultiheadAttention(tnn::MultiheadAttentionOptions(64, 4)); }, {32, 64, 64});
  shaped("TransformerEncoderLayer", [] { return tnn::TransformerEncoderLayer(tnn::TransformerEncoderLayerOptions(64, 4).dim_feedforward(256)); }, {32, 64, 64});
  // Upsampling by transposed convolutions: DCGAN's 4x4 stride 2 and U-Net's 2x2 stride 2.
  shaped("ConvTranspose2d", [] { return tnn::ConvTranspose2d(tnn::ConvTranspose2dOptions(64, 32, 4).stride(2).padding(1)); }, {64, 64, 14, 14});
  shaped("ConvTranspose2d_2x2", [] { return tnn::ConvTranspose2d(tnn::ConvTranspose2dOptions(64, 32, 2).stride(2)); }, {64, 64, 14, 14});
  shaped("ReplicationPad2d", [] { return tnn::ReplicationPad2d(tnn::ReplicationPad2dOptions(1)); }, {128, 32, 28, 28});
  shaped("AvgPool1d", [] { return tnn::AvgPool1d(2); }, {64, 32, 128});
  shaped("ConvTranspose1d", [] { return tnn::ConvTranspose1d(tnn::ConvTranspose1dOptions(32, 16, 4).stride(2).padding(1)); }, {64, 32, 128});
  // Small planes and many channels (a CIFAR ResNet's last stage, 4x4), few channels on large
  // planes (8 -> 8 on 32x32), a ResNet's downsampling 3x3 at stride 2 (16x16 -> 8x8), and a global
  // max pooling by a 7x7 window.
  shaped("Conv2d_4x4_128", [] { return tnn::Conv2d(tnn::Conv2dOptions(128, 128, 3).padding(1)); }, {16, 128, 4, 4});
  shaped("Conv2d_8ch", [] { return tnn::Conv2d(tnn::Conv2dOptions(8, 8, 3).padding(1)); }, {64, 8, 32, 32});
  shaped("Conv2d_down_s2", [] { return tnn::Conv2d(tnn::Conv2dOptions(64, 128, 3).stride(2).padding(1)); }, {32, 64, 16, 16});
  shaped("MaxPool2d_global7", [] { return tnn::MaxPool2d(7); }, {64, 256, 7, 7});
  // Channel dropout (training) over the BatchNorm2d row's shape.
  shaped("Dropout2d", [] { return tnn::Dropout2d(0.5); }, {128, 32, 28, 28});
  // BatchNorm3d over volumes (a 3-D CNN's or video's): 16 channels of 8 x 28 x 28, 6.4 MB.
  shaped("BatchNorm3d", [] { return tnn::BatchNorm3d(16); }, {16, 16, 8, 28, 28});
  // A "valid" Conv1d over long rows (a text or audio CNN's): 64 -> 64 channels, kernel 3, 500 steps.
  shaped("Conv1d_valid", [] { return tnn::Conv1d(tnn::Conv1dOptions(64, 64, 3)); }, {16, 64, 500});
  // A 1 x 3 kernel over planes (Inception's factorised 1 x 3, or along a spectrogram's time axis):
  // 96 -> 96 channels over 16 x 64 planes.
  shaped("Conv2d_1x3", [] { return tnn::Conv2d(tnn::Conv2dOptions(96, 96, {1, 3}).padding({0, 1})); }, {8, 96, 16, 64});
  // A Conv1d over many short rows (windows of 4 steps, a batch of 1024): 64 -> 128 channels,
  // kernel 5, "same"; 4 outputs a sample.
  shaped("Conv1d_short", [] { return tnn::Conv1d(tnn::Conv1dOptions(64, 128, 5).padding(2)); }, {1024, 64, 4});
  // A dilated Conv1d (a TCN's or WaveNet's): 64 -> 64 channels, kernel 3, dilation 4, "same", over
  // 32 rows of 1024 steps.
  shaped("Conv1d_dilated", [] { return tnn::Conv1d(tnn::Conv1dOptions(64, 64, 3).padding(4).dilation(4)); },
         {32, 64, 1024});
  // BatchNorm1d over rows of 1000 channels from memory (16 MB): a wide MLP layer's, rows longer
  // than a strip of 512 channels.
  shaped("BatchNorm1d_wide", [] { return tnn::BatchNorm1d(1000); }, {4096, 1000});
  benchmark::RegisterBenchmark("fashion_cnn_step", cnn_step)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("layer/Embedding", embedding_step)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
  const std::vector<int64_t> sizes = bench::op_sizes();
  for (const OpCase& c : op_cases())
    for (const int64_t n : sizes) {
      if (bench::custom_sizes() && left_out(c, n)) continue;
      benchmark::RegisterBenchmark(("op/" + std::string(c.name) + "/" + std::to_string(n)).c_str(),
                                   [c, n](benchmark::State& state) { op_step(state, c, n); })
          ->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
    }
  for (const int64_t rows : sizes)
    benchmark::RegisterBenchmark(("op/cross_entropy/" + std::to_string(rows)).c_str(),
                                 [rows](benchmark::State& state) { cross_entropy_step(state, rows); })
        ->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
  for (const int64_t n : sizes) {
    const std::string size = "/" + std::to_string(n);
    auto add = [&](const std::string& name, auto make) {
      benchmark::RegisterBenchmark(("layer/" + name + size).c_str(),
                                   [make, n](benchmark::State& state) { shaped_layer_step(state, make(n), {n, n}); })
          ->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
    };
    add("Linear", [](int64_t k) { return torch::nn::Linear(k, k); });
    add("LayerNorm", [](int64_t k) { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({k})); });
    add("BatchNorm1d", [](int64_t k) { return torch::nn::BatchNorm1d(k); });
    add("Dropout", [](int64_t) { return torch::nn::Dropout(0.5); });
  }
  namespace optim = torch::optim;
  for (const int64_t n : sizes) {
    auto add = [n](const std::string& name, auto run) {
      benchmark::RegisterBenchmark(("optim/" + name + "/" + std::to_string(n)).c_str(),
                                   [run, n](benchmark::State& state) { run(state, n); })
          ->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
    };
    add("SGD", [](auto& state, int64_t k) {
      optimizer_step<optim::SGD>(state, k, optim::SGDOptions(1e-3).momentum(0.9).weight_decay(1e-4));
    });
    add("Adam", [](auto& state, int64_t k) { optimizer_step<optim::Adam>(state, k, optim::AdamOptions(1e-3)); });
    add("AdamW", [](auto& state, int64_t k) { optimizer_step<optim::AdamW>(state, k, optim::AdamWOptions(1e-3)); });
    add("RMSprop", [](auto& state, int64_t k) {
      optimizer_step<optim::RMSprop>(state, k, optim::RMSpropOptions(1e-3));
    });
    add("Adagrad", [](auto& state, int64_t k) {
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
