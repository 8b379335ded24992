// Normalisation: layer_norm (composed from primitives) and batch_norm (a fused, TBB-parallel kernel).
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.hpp"

namespace tg {

// Normalises over the trailing dims given by normalized_shape: (x - mean) / sqrt(var + eps), with
// the biased variance, then ·weight + bias when they are defined (shape normalized_shape).
Tensor layer_norm(const Tensor& input, const std::vector<std::int64_t>& normalized_shape,
                  const Tensor& weight = Tensor(), const Tensor& bias = Tensor(), double eps = 1e-5);

}  // namespace tg
