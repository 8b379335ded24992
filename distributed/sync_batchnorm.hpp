// SyncBatchNorm: batch normalisation whose batch statistics are those of every rank's batch
// together, in PyTorch's convention or MindSpore's (the options are BatchNorm1d's), for input of
// any rank >= 2: (N, C, ...), or channels last with data_format "NHWC".
//
//   tg::nn::SyncBatchNorm bn(64);                                          // PyTorch: training mode
//   tg::nn::SyncBatchNorm bn(tg::nn::BatchNorm1dOptions::mindspore(64));   // MindSpore: set_train()
//   tg::distributed::convert_sync_batchnorm(model);  // every BatchNorm1d/2d in a model, in place
//
// The math is PyTorch's: the forward gathers each rank's count, mean and variance and merges them
// (so per-rank batch sizes may differ, even be zero); the backward sums Σdy and Σdy·(x - μ) over
// ranks; the weight and bias gradients stay per rank, for DistributedDataParallel to average.
// Running statistics are updated from the global statistics, identically on every rank. In
// inference mode (running statistics) nothing is communicated. Outside mpirun it is BatchNorm.
#pragma once

#include "../layers/batchnorm.hpp"

namespace tg::nn {

class SyncBatchNorm : public BatchNorm1d {
 public:
  explicit SyncBatchNorm(const BatchNorm1dOptions& options);
  explicit SyncBatchNorm(std::int64_t num_features) : SyncBatchNorm(BatchNorm1dOptions(num_features)) {}
  std::shared_ptr<Module> fresh() const override { return std::make_shared<SyncBatchNorm>(options); }
};

}  // namespace tg::nn

namespace tg::distributed {

// The BatchNormSync over MPI_COMM_WORLD that SyncBatchNorm uses.
std::shared_ptr<const BatchNormSync> world_batch_norm_sync();

// Turns every BatchNorm1d, BatchNorm2d and BatchNorm3d in `model` (the model itself included) into a
// synchronised one, in place: the same tensors, options and state-dict keys (PyTorch's
// convert_sync_batchnorm builds new modules; in C++ the layers are converted where they are, so
// references a model holds to them stay valid). Returns how many layers it converted. A clone()
// of the model afterwards is not synchronised.
std::size_t convert_sync_batchnorm(nn::Module& model);

}  // namespace tg::distributed
