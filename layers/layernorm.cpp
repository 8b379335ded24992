#include "layers/layernorm.hpp"

#include <ostream>

#include "core/creation.hpp"
#include "core/ops/normalization.hpp"

namespace tg::nn {

LayerNorm::LayerNorm(const LayerNormOptions& options_in) : Module("LayerNorm"), options(options_in) {
  const auto& shape = options.normalized_shape();
  TG_CHECK(!shape.empty(), "LayerNorm: normalized_shape must have at least one dim");
  Shape dims;
  for (std::int64_t d : shape) {
    TG_CHECK(d > 0, "LayerNorm: normalized_shape ", shape, " must be positive");
    dims.push_back(std::size_t(d));
  }
  TG_CHECK(options.eps() > 0, "LayerNorm: eps must be positive, got ", options.eps());
  if (options.elementwise_affine()) {
    weight = register_parameter("weight", ones(dims));
    bias = register_parameter("bias", zeros(dims));
  }
}

Tensor LayerNorm::forward(const Tensor& input) {
  const auto& shape = options.normalized_shape();
  bool fits = input.dim() >= shape.size();
  for (std::size_t i = 0; fits && i < shape.size(); ++i)
    fits = std::int64_t(input.shape()[input.dim() - shape.size() + i]) == shape[i];
  TG_CHECK(fits, "LayerNorm: expected input with trailing dims ", shape, ", got ", shape_str(input.shape()));
  return layer_norm(input, shape, weight, bias, options.eps());
}

void LayerNorm::print_options(std::ostream& out) const {
  out << "(";
  for (std::size_t i = 0; i < options.normalized_shape().size(); ++i)
    out << (i ? ", " : "") << options.normalized_shape()[i];
  out << (options.normalized_shape().size() == 1 ? ",)" : ")") << ", eps=" << options.eps()
      << ", elementwise_affine=" << (options.elementwise_affine() ? "true" : "false");
}

}  // namespace tg::nn
