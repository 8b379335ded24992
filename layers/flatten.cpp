#include "layers/flatten.hpp"

#include <ostream>

#include "core/ops/shape.hpp"

namespace tg::nn {

Tensor Flatten::forward(const Tensor& input) {
  TG_CHECK(input.dim() >= 1, "Flatten: expected an input with at least 1 dim, got ", shape_str(input.shape()));
  return flatten(input, start_dim, end_dim);
}

void Flatten::print_options(std::ostream& out) const { out << "start_dim=" << start_dim << ", end_dim=" << end_dim; }

}  // namespace tg::nn
