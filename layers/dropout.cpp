#include "layers/dropout.hpp"

#include <ostream>

#include "core/ops/activation.hpp"

namespace tg::nn {

Dropout::Dropout(double p_in, Generator generator_in) : Module("Dropout"), p(p_in), generator(std::move(generator_in)) {
  TG_CHECK(p >= 0.0 && p <= 1.0, "Dropout: p must be in [0, 1], got ", p);
}

Tensor Dropout::forward(const Tensor& input) { return dropout(input, p, is_training(), generator); }

void Dropout::print_options(std::ostream& out) const { out << "p=" << p; }

}  // namespace tg::nn
