// interpolate: PyTorch's torch.nn.functional.interpolate for the nearest and (bi)linear modes,
// on (N, C, L) and (N, C, H, W).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "../tensor.hpp"

namespace tg {

enum class InterpolateMode { Nearest, Linear, Bilinear };

// Exactly one of size and scale_factor, each one value for every spatial dim or one per dim, as
// PyTorch's. With scale_factor the output size is floor(in · scale_factor), and the source index
// of an output index uses 1 / scale_factor (PyTorch's rule) unless recompute_scale_factor, which
// uses in / out as a given size does. Nearest takes source index floor(out_index · scale)
// (PyTorch's "nearest", not "nearest-exact"). Linear (3-D input) and Bilinear (4-D) blend the two
// neighbours of each source position: with align_corners the corner values line up (scale
// (in - 1) / (out - 1)), without it (the default) the pixel centres do (source (i + 0.5)·scale -
// 0.5, clamped at 0).
struct InterpolateOptions {
  std::vector<std::int64_t> size;
  std::vector<double> scale_factor;
  InterpolateMode mode = InterpolateMode::Nearest;
  std::optional<bool> align_corners;  // linear modes only
  bool recompute_scale_factor = false;
};

Tensor interpolate(const Tensor& input, const InterpolateOptions& options);

}  // namespace tg
