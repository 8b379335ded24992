// Data-parallel throughput of the bench's mlp case (784-256-256-10 with BatchNorm1d, batches of
// 128 per process, SGD), under `mpirun -np N`, one thread per process; scripts/bench_distributed.sh
// runs it with 1 and 2 processes and prints the table.
//
// Communication: the same steps under ddp.no_sync() (no all-reduce at all, the same processes
// sharing the machine) give the compute time; a DDP step's extra time over it is the
// communication that was not hidden behind the backward. The same gradients all-reduced on their
// own, blocking, give the whole cost of the communication; the difference is what overlapped.
// DDP's own wait at the end of backward is printed too (it also holds the ranks' skew).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <tapegrad/tapegrad.hpp>

#include "distributed/distributed.hpp"

namespace dist = tg::distributed;
namespace nn = tg::nn;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  dist::Session session(argc, argv);
  CLI::App app{"ddp_bench: data-parallel mlp steps"};
  int steps = 300;
  double bucket_mb = 25;
  bool sync_bn = false;
  app.add_option("--steps", steps, "Timed steps")->capture_default_str();
  app.add_option("--bucket-mb", bucket_mb, "DistributedDataParallel bucket size")->capture_default_str();
  app.add_flag("--sync-bn", sync_bn, "SyncBatchNorm instead of per-process BatchNorm");
  CLI11_PARSE(app, argc, argv);
  tg::set_num_threads(1);
  tg::manual_seed(0);

  nn::Sequential model(nn::Linear(784, 256), nn::BatchNorm1d(256), nn::ReLU(), nn::Linear(256, 256),
                       nn::BatchNorm1d(256), nn::ReLU(), nn::Linear(256, 10));
  if (sync_bn) dist::convert_sync_batchnorm(model);
  dist::DistributedDataParallel ddp(model, dist::DistributedDataParallelOptions().bucket_cap_mb(bucket_mb));
  tg::optim::SGD optimizer(model.parameters(), tg::optim::SGDOptions(0.01).momentum(0.9));
  tg::manual_seed(1 + std::uint64_t(dist::rank()));
  const tg::Tensor x = tg::randn({128, 784});
  const tg::Tensor labels = tg::randint(0, 10, {128});
  auto step = [&] {
    optimizer.zero_grad();
    tg::cross_entropy(ddp(x), labels).backward();
    optimizer.step();
  };
  for (int i = 0; i < 20; ++i) step();
  std::vector<double> compute;
  {
    auto no_communication = ddp.no_sync();
    dist::barrier();
    for (int i = 0; i < steps; ++i) {
      const auto t = std::chrono::steady_clock::now();
      step();
      compute.push_back(seconds_since(t));
    }
  }
  const dist::CommunicationStats before = ddp.stats();
  dist::barrier();
  std::vector<double> times;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) {
    const auto t = std::chrono::steady_clock::now();
    step();
    times.push_back(seconds_since(t));
  }
  dist::barrier();
  const double total = seconds_since(start);
  const double waited = (ddp.stats().wait_seconds - before.wait_seconds) / double(steps);

  // The same gradients, all-reduced on their own (blocking, one bucket-sized call each).
  std::size_t numel = 0;
  for (const tg::Tensor& p : model.parameters()) numel += p.numel();
  std::vector<double> comm;
  if (dist::world_size() > 1) {
    const std::size_t per_bucket = (numel + ddp.bucket_count() - 1) / ddp.bucket_count();
    std::vector<tg::Tensor> buckets;
    for (std::size_t done = 0; done < numel; done += per_bucket)
      buckets.push_back(tg::zeros({std::min(per_bucket, numel - done)}));
    for (int i = 0; i < steps; ++i) {
      const auto t = std::chrono::steady_clock::now();
      for (tg::Tensor& b : buckets) dist::all_reduce(b);
      comm.push_back(seconds_since(t));
    }
  }
  const double comm_ms = comm.empty() ? 0 : median(comm) * 1e3;
  if (dist::rank() == 0) {
    const double step_ms = median(times) * 1e3, compute_ms = median(compute) * 1e3;
    const double exposed_ms = std::max(0.0, step_ms - compute_ms);
    const double samples_per_s = double(steps) * 128.0 * double(dist::world_size()) / total;
    std::printf("| %d | %.2f MB (%zu) | %s | %.3f | %.3f | %.0f | %.3f | %.3f | %s | %.3f |\n", dist::world_size(),
                bucket_mb, ddp.bucket_count(), sync_bn ? "yes" : "no", step_ms, compute_ms, samples_per_s, comm_ms,
                exposed_ms,
                comm_ms > 0 ? (std::to_string(int(std::max(0.0, 1.0 - exposed_ms / comm_ms) * 100 + 0.5)) + "%").c_str()
                            : "-",
                waited * 1e3);
  }
  return 0;
}
