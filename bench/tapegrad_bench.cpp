// tapegrad's benchmark: each iteration is one full training step; the argument is the thread
// count. bench/torch_reference.cpp runs the same cases with libtorch; scripts/bench.sh compares.
#include <sys/resource.h>

#include <cstdio>

#include <benchmark/benchmark.h>
#include <tapegrad/tapegrad.hpp>

namespace nn = tg::nn;

namespace {

// BatchNorm1d forward and backward in training mode with a random upstream gradient.
void batchnorm_step(benchmark::State& state, const tg::Shape& shape, std::int64_t channels) {
  tg::set_num_threads(int(state.range(0)));
  tg::manual_seed(0);
  nn::BatchNorm1d bn(channels);
  tg::Tensor x = tg::randn(shape).set_requires_grad();
  const tg::Tensor grad = tg::randn(shape);
  for (auto _ : state) {
    x.set_grad(tg::Tensor());
    bn.zero_grad();
    tg::Tensor y = bn(x);
    y.backward(grad);
    benchmark::DoNotOptimize(x.grad().data<float>());
  }
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
  for (auto _ : state) {
    optimizer.zero_grad();
    tg::Tensor loss = tg::cross_entropy(model(x), labels);
    loss.backward();
    optimizer.step();
  }
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
