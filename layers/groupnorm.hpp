// GroupNorm: the channels of (N, C, *) in num_groups groups, each (sample, group) normalised over
// its channels and positions, then a per-channel affine (PyTorch's names and defaults).
//
//   tg::nn::GroupNorm gn(tg::nn::GroupNormOptions(8, 64));          // 8 groups of 8 channels
//   tg::nn::GroupNorm instance(tg::nn::GroupNormOptions(64, 64));   // instance norm with affine
#pragma once

#include <cstdint>

#include "module.hpp"

namespace tg::nn {

class GroupNormOptions {
 public:
  GroupNormOptions(std::int64_t num_groups, std::int64_t num_channels)
      : num_groups_(num_groups), num_channels_(num_channels) {}
  GroupNormOptions& eps(double v) { eps_ = v; return *this; }
  GroupNormOptions& affine(bool on) { affine_ = on; return *this; }
  std::int64_t num_groups() const { return num_groups_; }
  std::int64_t num_channels() const { return num_channels_; }
  double eps() const { return eps_; }
  bool affine() const { return affine_; }

 private:
  std::int64_t num_groups_, num_channels_;
  double eps_ = 1e-5;
  bool affine_ = true;
};

// Takes (N, C, *) of any rank >= 2; no running statistics, so training and evaluation agree.
class GroupNorm : public Module {
 public:
  explicit GroupNorm(const GroupNormOptions& options);
  GroupNorm(std::int64_t num_groups, std::int64_t num_channels) : GroupNorm(GroupNormOptions(num_groups, num_channels)) {}
  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<GroupNorm>(options); }

  const GroupNormOptions options;
  Tensor weight;  // ones (num_channels), undefined without affine
  Tensor bias;    // zeros (num_channels)
};

}  // namespace tg::nn
