#include <cstdio>

#include <tapegrad/tapegrad.hpp>
#include "distributed/distributed.hpp"  // link tapegrad::distributed
namespace dist = tg::distributed;

int main(int argc, char** argv) {
  dist::Session session(argc, argv);    // MPI_Init ... MPI_Finalize; a world of one outside mpirun
  tg::set_num_threads(1);               // the processes share the cores
  tg::manual_seed(0);                   // the same seed everywhere: the same data and order
  const tg::Tensor x = tg::randn({2048, 16});
  const tg::Tensor y = tg::gt(tg::sum(x.narrow(1, 0, 4), {1}), 0.0).to(tg::kInt64);  // a clear rule
  const tg::data::TensorDataset train(x, y);

  tg::nn::Sequential model(tg::nn::Linear(16, 64), tg::nn::BatchNorm1d(64), tg::nn::ReLU(), tg::nn::Linear(64, 2));
  dist::convert_sync_batchnorm(model);  // optional: batch statistics over all processes
  dist::DistributedDataParallel ddp(model);  // rank 0's values everywhere
  auto sampler = std::make_shared<tg::data::DistributedSampler>(dist::world_size(), dist::rank());
  tg::data::DataLoader loader(train, tg::data::DataLoaderOptions(32).sampler(sampler));
  tg::optim::Adam optimizer(model.parameters(), tg::optim::AdamOptions(1e-2));
  for (int epoch = 0; epoch < 5; ++epoch) {
    sampler->set_epoch(epoch);  // a new order, the same on every process
    for (const tg::data::Batch& batch : loader) {
      optimizer.zero_grad();
      tg::cross_entropy(ddp(batch.input), batch.target).backward();  // gradients averaged here
      optimizer.step();
    }
  }
  model.eval();
  tg::NoGradGuard no_grad;
  tg::Tensor right = tg::sum(tg::eq(tg::argmax(model(x), 1), y).to(tg::kFloat64));
  if (dist::rank() == 0) {  // the same model on every rank: one prints, one saves
    std::printf("processes: %d, train accuracy %.1f%%\n", dist::world_size(), 100 * right.item() / 2048);
    tg::save(model, "data_parallel.safetensors");  // atomic, as always
  }
}
