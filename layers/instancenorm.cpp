#include "layers/instancenorm.hpp"

#include <ostream>
#include <string>

#include "core/creation.hpp"
#include "core/ops/normalization.hpp"
#include "core/ops/shape.hpp"

namespace tg::nn {

template <std::size_t D>
InstanceNorm<D>::InstanceNorm(const InstanceNormOptions& options_in)
    : Module("InstanceNorm" + std::to_string(D) + "d"), options(options_in) {
  const std::string& name = type_name();
  TG_CHECK(options.num_features() > 0, name, ": num_features must be positive, got ", options.num_features());
  TG_CHECK(options.eps() > 0, name, ": eps must be positive, got ", options.eps());
  TG_CHECK(options.momentum() >= 0 && options.momentum() <= 1, name,
           ": momentum must be in [0, 1] (the weight of the new statistic), got ", options.momentum());
  const auto channels = std::size_t(options.num_features());
  if (options.affine()) {
    weight = register_parameter("weight", ones({channels}));
    bias = register_parameter("bias", zeros({channels}));
  }
  if (options.track_running_stats()) {
    running_mean = register_buffer("running_mean", zeros({channels}));
    running_var = register_buffer("running_var", ones({channels}));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, kInt64));
  }
}

template <std::size_t D>
Tensor InstanceNorm<D>::forward(const Tensor& input) {
  const std::string& name = type_name();
  TG_CHECK(input.dim() == D + 1 || input.dim() == D + 2, name, ": expected ", D + 1, "D (unbatched) or ", D + 2,
           "D input, got ", input.dim(), "D input ", shape_str(input.shape()));
  const bool batched = input.dim() == D + 2;
  const std::size_t channels = input.shape()[batched ? 1 : 0];
  TG_CHECK((!options.affine() && !options.track_running_stats()) || std::int64_t(channels) == options.num_features(),
           name, ": expected ", options.num_features(), " channels (num_features) at dim ", batched ? 1 : 0,
           ", got input ", shape_str(input.shape()));
  // training | track_running_stats | statistics used | running statistics
  //  true    |  true               | the input's     | updated
  //  false   |  true               | running         | unchanged
  //  either  |  false              | the input's     | none exist
  const bool use_input_stats = is_training() || !options.track_running_stats();
  const Tensor x = batched ? input : unsqueeze(input, 0);
  const Tensor y = nn::functional::instance_norm(x, running_mean, running_var, weight, bias, use_input_stats,
                                                 options.momentum(), options.eps());
  return batched ? y : squeeze(y, 0);
}

template <std::size_t D>
void InstanceNorm<D>::print_options(std::ostream& out) const {
  const auto bool_str = [](bool b) { return b ? "true" : "false"; };
  out << options.num_features() << ", eps=" << options.eps() << ", momentum=" << options.momentum()
      << ", affine=" << bool_str(options.affine()) << ", track_running_stats=" << bool_str(options.track_running_stats());
}

template class InstanceNorm<1>;
template class InstanceNorm<2>;
template class InstanceNorm<3>;

}  // namespace tg::nn
