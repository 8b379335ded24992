#include "layers/groupnorm.hpp"

#include <ostream>

#include "core/creation.hpp"
#include "core/ops/normalization.hpp"

namespace tg::nn {

GroupNorm::GroupNorm(const GroupNormOptions& options_in) : Module("GroupNorm"), options(options_in) {
  TG_CHECK(options.num_groups() > 0 && options.num_channels() > 0 &&
               options.num_channels() % options.num_groups() == 0,
           "GroupNorm: num_channels (", options.num_channels(), ") must split into num_groups (",
           options.num_groups(), ") equal groups");
  TG_CHECK(options.eps() > 0, "GroupNorm: eps must be positive, got ", options.eps());
  if (options.affine()) {
    weight = register_parameter("weight", ones({std::size_t(options.num_channels())}));
    bias = register_parameter("bias", zeros({std::size_t(options.num_channels())}));
  }
}

Tensor GroupNorm::forward(const Tensor& input) {
  TG_CHECK(input.dim() >= 2 && std::int64_t(input.shape()[1]) == options.num_channels(), "GroupNorm: expected input (N, ",
           options.num_channels(), ", *), got ", shape_str(input.shape()));
  return group_norm(input, options.num_groups(), weight, bias, options.eps());
}

void GroupNorm::print_options(std::ostream& out) const {
  out << options.num_groups() << ", " << options.num_channels() << ", eps=" << options.eps()
      << ", affine=" << (options.affine() ? "true" : "false");
}

}  // namespace tg::nn
