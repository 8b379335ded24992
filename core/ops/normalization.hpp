// Normalisation: layer_norm, group_norm, batch_norm and instance_norm (fused, TBB-parallel
// forward and backward kernels).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "../tensor.hpp"

namespace tg {

// Normalises over the trailing dims given by normalized_shape: (x - mean) / sqrt(var + eps), with
// the biased variance, then ·weight + bias when they are defined (shape normalized_shape).
Tensor layer_norm(const Tensor& input, const std::vector<std::int64_t>& normalized_shape,
                  const Tensor& weight = Tensor(), const Tensor& bias = Tensor(), double eps = 1e-5);

// PyTorch's group_norm: (N, C, *) with C split into num_groups groups of consecutive channels,
// each (sample, group) normalised over its channels and positions (biased variance, eps inside the
// square root), then ·weight[c] + bias[c] per channel when they are defined (shape (C)).
// GroupNorm(C, C) is instance normalisation, GroupNorm(1, C) layer normalisation over (C, *).
Tensor group_norm(const Tensor& input, std::int64_t num_groups, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);

// How batch_norm shares its statistics with the other processes of a data-parallel job
// (SyncBatchNorm; tg::distributed implements it over MPI). With batch statistics it is called
// once in the forward (an all_gather of each process's count, mean and centred sum of squares,
// combined in process order) and once in the backward (an all_reduce_sum of Σg and Σg·(x - μ)),
// on every process, so every process must run the same batch_norm calls.
class BatchNormSync {
 public:
  virtual ~BatchNormSync() = default;
  // Every process's `values` (the same length on each), concatenated in process order.
  virtual std::vector<double> all_gather(const std::vector<double>& values) const = 0;
  // The element-wise sum over processes, in place.
  virtual void all_reduce_sum(std::vector<double>& values) const = 0;
};

// Everything batch_norm needs besides its tensors; BatchNorm1d fills it from either convention.
struct BatchNormConfig {
  const char* name = "batch_norm";  // the op or layer named in errors
  bool use_batch_stats = true;      // normalise with the batch's statistics (else the running ones)
  bool update_running = false;      // with batch statistics: update the running ones in place
  double momentum = 0.1;            // weight of the new statistic (PyTorch's meaning)
  double eps = 1e-5;
  bool channels_last = false;       // 3-D input is (N, L, C) instead of (N, C, L)
  bool unbiased_running_var = true; // running_var gets the n/(n-1) variance (PyTorch, MindSpore GPU/Ascend)
  // Set: batch statistics over every process's batch (which may differ in size, even be empty);
  // the weight and bias gradients stay per process (DistributedDataParallel averages them).
  std::shared_ptr<const BatchNormSync> sync;
};

// Batch normalisation of (N, C, d1, d2, ...) input of any rank >= 2 (or (N, L, C) with
// channels_last), statistics per channel over N·d1·d2·... values, the biased batch variance and eps inside the square root:
// y = (x - mean) / sqrt(var + eps) · weight + bias. running_mean/running_var are updated in place
// (never differentiated) when config.update_running; weight and bias may be undefined. An input
// with no values (an empty batch, or no channels) gives an empty result and leaves the running
// statistics as they were, as PyTorch's; one value per channel in training is an error.
Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, const BatchNormConfig& config);

namespace nn::functional {

// torch.nn.functional.batch_norm, on input of any rank >= 2 (N, C, ...): training=true normalises with batch statistics and, when the
// running tensors are given, updates them with `momentum` (the weight of the new statistic);
// training=false normalises with the running statistics, which are then required.
Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight = Tensor(), const Tensor& bias = Tensor(), bool training = false,
                  double momentum = 0.1, double eps = 1e-5);

// torch.nn.functional.instance_norm: (N, C, *) with at least one spatial dim, each (sample,
// channel) normalised over its positions (biased variance, eps inside the square root), then
// ·weight[c] + bias[c] when they are defined. use_input_stats=true normalises with each instance's
// statistics and, when the running tensors are given (shape (C)), moves them by `momentum` (the
// weight of the new statistic) towards the mean over samples of the instances' means and unbiased
// variances; false normalises with the running statistics, which are then required.
Tensor instance_norm(const Tensor& input, const Tensor& running_mean = Tensor(), const Tensor& running_var = Tensor(),
                     const Tensor& weight = Tensor(), const Tensor& bias = Tensor(), bool use_input_stats = true,
                     double momentum = 0.1, double eps = 1e-5);

}  // namespace nn::functional
}  // namespace tg
