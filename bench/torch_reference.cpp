// The cases of tapegrad_bench.cpp with libtorch's C++ frontend, in its best configuration:
// torch::set_num_threads(T) and OpenBLAS held to one thread (otherwise libtorch oversubscribes
// the cores and gets slower with 2 threads).
#include <dlfcn.h>
#include <sys/resource.h>

#include <cstdio>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

namespace {

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
  for (auto _ : state) {
    x.mutable_grad() = torch::Tensor();
    bn->zero_grad();
    torch::Tensor y = bn(x);
    y.backward(grad);
    benchmark::DoNotOptimize(x.grad().data_ptr<float>());
  }
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
  for (auto _ : state) {
    optimizer.zero_grad();
    torch::Tensor loss = torch::nn::functional::cross_entropy(model->forward(x), labels);
    loss.backward();
    optimizer.step();
  }
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

}  // namespace

BENCHMARK(bn2d)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(bn3d)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(mlp)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(tiny)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(op_overhead)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::fprintf(stderr, "peak_rss_kb %ld\n", usage.ru_maxrss);
  return 0;
}
