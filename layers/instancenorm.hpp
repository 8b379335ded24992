// InstanceNorm1d/2d/3d: each (sample, channel) of (N, C, *) normalised over its own positions
// (PyTorch's names and defaults: no affine, no running statistics).
//
//   tg::nn::InstanceNorm2d norm(64);                                                   // style transfer
//   tg::nn::InstanceNorm2d tracked(tg::nn::InstanceNormOptions(64).affine(true).track_running_stats(true));
//
// With track_running_stats, training updates running_mean/running_var (momentum is the weight of
// the new statistic) and eval() normalises with them; without, both modes use the input's own
// statistics. As in PyTorch, num_batches_tracked is registered for the state_dict but never
// counted, and momentum is a number (no cumulative average).
#pragma once

#include <cstdint>

#include "module.hpp"

namespace tg::nn {

class InstanceNormOptions {
 public:
  explicit InstanceNormOptions(std::int64_t num_features) : num_features_(num_features) {}
  InstanceNormOptions& eps(double v) { eps_ = v; return *this; }
  InstanceNormOptions& momentum(double v) { momentum_ = v; return *this; }
  InstanceNormOptions& affine(bool on) { affine_ = on; return *this; }
  InstanceNormOptions& track_running_stats(bool on) { track_running_stats_ = on; return *this; }
  std::int64_t num_features() const { return num_features_; }
  double eps() const { return eps_; }
  double momentum() const { return momentum_; }
  bool affine() const { return affine_; }
  bool track_running_stats() const { return track_running_stats_; }

 private:
  std::int64_t num_features_;
  double eps_ = 1e-5, momentum_ = 0.1;
  bool affine_ = false, track_running_stats_ = false;
};

// D spatial dims: (N, C, *D) or, unbatched, (C, *D). The channel count must match num_features
// when there is an affine or running statistics; otherwise any C is normalised (PyTorch warns).
template <std::size_t D>
class InstanceNorm : public Module {
 public:
  explicit InstanceNorm(const InstanceNormOptions& options);
  explicit InstanceNorm(std::int64_t num_features) : InstanceNorm(InstanceNormOptions(num_features)) {}
  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<InstanceNorm>(options); }

  const InstanceNormOptions options;
  Tensor weight;               // ones (num_features), with affine
  Tensor bias;                 // zeros (num_features), with affine
  Tensor running_mean;         // zeros (num_features), with track_running_stats
  Tensor running_var;          // ones (num_features), with track_running_stats
  Tensor num_batches_tracked;  // int64 0, with track_running_stats (never counted, as PyTorch's)
};

using InstanceNorm1d = InstanceNorm<1>;
using InstanceNorm2d = InstanceNorm<2>;
using InstanceNorm3d = InstanceNorm<3>;

}  // namespace tg::nn
