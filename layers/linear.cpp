#include "layers/linear.hpp"

#include <cmath>
#include <ostream>

#include "core/creation.hpp"
#include "core/ops/linalg.hpp"
#include "layers/init.hpp"

namespace tg::nn {

Linear::Linear(const LinearOptions& options_in) : Module("Linear"), options(options_in) {
  TG_CHECK(options.in_features() > 0 && options.out_features() > 0,
           "Linear: in_features and out_features must be positive, got ", options.in_features(), " and ",
           options.out_features());
  const auto in = std::size_t(options.in_features()), out = std::size_t(options.out_features());
  weight = register_parameter("weight", empty({out, in}));
  init::kaiming_uniform_(weight, std::sqrt(5.0));  // = U(-1/√in, 1/√in)
  if (options.bias()) {
    bias = register_parameter("bias", empty({out}));
    const double bound = 1.0 / std::sqrt(double(in));
    init::uniform_(bias, -bound, bound);
  }
}

Tensor Linear::forward(const Tensor& input) {
  TG_CHECK(input.dim() >= 1 && std::int64_t(input.shape().back()) == options.in_features(),
           "Linear: expected input with last dim ", options.in_features(), " (in_features), got ",
           shape_str(input.shape()));
  return linear(input, weight, bias);
}

void Linear::print_options(std::ostream& out) const {
  out << "in_features=" << options.in_features() << ", out_features=" << options.out_features()
      << ", bias=" << (options.bias() ? "true" : "false");
}

}  // namespace tg::nn
