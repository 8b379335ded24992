// Upsample: tg::interpolate as a layer, PyTorch's options and printing.
//
//   tg::nn::Upsample up(tg::nn::UpsampleOptions().scale_factor({2}));   // nearest, 2× each dim
//   tg::nn::Upsample smooth(tg::nn::UpsampleOptions().scale_factor({2}).mode(tg::InterpolateMode::Bilinear));
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "../core/ops/interpolate.hpp"
#include "module.hpp"

namespace tg::nn {

class UpsampleOptions {
 public:
  UpsampleOptions& size(std::vector<std::int64_t> v) { size_ = std::move(v); return *this; }
  UpsampleOptions& scale_factor(std::vector<double> v) { scale_factor_ = std::move(v); return *this; }
  UpsampleOptions& mode(InterpolateMode v) { mode_ = v; return *this; }
  UpsampleOptions& align_corners(bool on) { align_corners_ = on; return *this; }
  const std::vector<std::int64_t>& size() const { return size_; }
  const std::vector<double>& scale_factor() const { return scale_factor_; }
  InterpolateMode mode() const { return mode_; }
  std::optional<bool> align_corners() const { return align_corners_; }

 private:
  std::vector<std::int64_t> size_;
  std::vector<double> scale_factor_;
  InterpolateMode mode_ = InterpolateMode::Nearest;
  std::optional<bool> align_corners_;
};

// (N, C, L) or (N, C, H, W); the options are checked by tg::interpolate on each call, as PyTorch's.
class Upsample : public Module {
 public:
  explicit Upsample(const UpsampleOptions& options = {}) : Module("Upsample"), options(options) {}
  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<Upsample>(options); }

  const UpsampleOptions options;
};

}  // namespace tg::nn
