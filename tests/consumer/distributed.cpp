// Uses the installed tapegrad::distributed as an outside project would; run without mpirun, it is
// a world of one.
#include <cstdio>

#include <tapegrad/distributed/distributed.hpp>
#include <tapegrad/tapegrad.hpp>

int main(int argc, char** argv) {
  tg::distributed::Session session(argc, argv);
  tg::nn::Sequential model(tg::nn::Linear(3, 4), tg::nn::BatchNorm1d(4), tg::nn::Linear(4, 1));
  tg::distributed::convert_sync_batchnorm(model);
  tg::distributed::DistributedDataParallel ddp(model);
  tg::Tensor loss = ddp(tg::randn({5, 3})).sum();
  loss.backward();
  std::printf("world %d, %zu parameters with gradients\n", tg::distributed::world_size(), model.parameters().size());
  return tg::distributed::world_size() == 1 && model.parameters()[0].grad().defined() ? 0 : 1;
}
