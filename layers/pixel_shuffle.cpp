#include "layers/pixel_shuffle.hpp"

#include <ostream>

#include "core/ops/shape.hpp"

namespace tg::nn {

PixelShuffle::PixelShuffle(std::int64_t factor) : Module("PixelShuffle"), upscale_factor(factor) {
  TG_CHECK(upscale_factor > 0, "PixelShuffle: upscale_factor must be positive, got ", upscale_factor);
}
Tensor PixelShuffle::forward(const Tensor& input) { return pixel_shuffle(input, upscale_factor); }
void PixelShuffle::print_options(std::ostream& out) const { out << "upscale_factor=" << upscale_factor; }

PixelUnshuffle::PixelUnshuffle(std::int64_t factor) : Module("PixelUnshuffle"), downscale_factor(factor) {
  TG_CHECK(downscale_factor > 0, "PixelUnshuffle: downscale_factor must be positive, got ", downscale_factor);
}
Tensor PixelUnshuffle::forward(const Tensor& input) { return pixel_unshuffle(input, downscale_factor); }
void PixelUnshuffle::print_options(std::ostream& out) const { out << "downscale_factor=" << downscale_factor; }

}  // namespace tg::nn
