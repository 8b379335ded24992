#include "core/ops/normalization.hpp"

#include "core/ops/elementwise.hpp"
#include "core/ops/reduce.hpp"

namespace tg {

Tensor layer_norm(const Tensor& input, const std::vector<std::int64_t>& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  const Shape& shape = input.shape();
  const std::size_t k = normalized_shape.size();
  bool fits = k >= 1 && k <= shape.size();
  for (std::size_t i = 0; fits && i < k; ++i) fits = std::int64_t(shape[shape.size() - k + i]) == normalized_shape[i];
  TG_CHECK(fits, "layer_norm: expected input with trailing dims ", normalized_shape, ", got ", shape_str(shape));
  std::vector<std::int64_t> dims;
  for (std::size_t i = 0; i < k; ++i) dims.push_back(-std::int64_t(i) - 1);
  const Tensor centred = input - mean(input, dims, true);
  Tensor out = centred * rsqrt(var(input, dims, false, true) + eps);
  if (weight.defined()) out = out * weight;
  if (bias.defined()) out = out + bias;
  return out;
}

}  // namespace tg
