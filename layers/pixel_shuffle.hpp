// PixelShuffle and PixelUnshuffle: ESPCN's sub-pixel rearrangement of (*, C·r², H, W) into
// (*, C, H·r, W·r) and back, over tg::pixel_shuffle / tg::pixel_unshuffle (PyTorch's names).
//
//   nn::Sequential upsample(nn::Conv2d(nn::Conv2dOptions(64, 64 * 4, 3).padding(1)), nn::PixelShuffle(2));
#pragma once

#include <cstdint>

#include "module.hpp"

namespace tg::nn {

class PixelShuffle : public Module {
 public:
  explicit PixelShuffle(std::int64_t upscale_factor);
  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<PixelShuffle>(upscale_factor); }
  const std::int64_t upscale_factor;
};

class PixelUnshuffle : public Module {
 public:
  explicit PixelUnshuffle(std::int64_t downscale_factor);
  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<PixelUnshuffle>(downscale_factor); }
  const std::int64_t downscale_factor;
};

}  // namespace tg::nn
