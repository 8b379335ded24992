#include "layers/activation.hpp"

#include <ostream>

#include "core/ops/activation.hpp"

namespace tg::nn {

Tensor ReLU::forward(const Tensor& input) { return relu(input); }

Tensor LeakyReLU::forward(const Tensor& input) { return leaky_relu(input, negative_slope); }
void LeakyReLU::print_options(std::ostream& out) const { out << "negative_slope=" << negative_slope; }

Tensor Sigmoid::forward(const Tensor& input) { return sigmoid(input); }

Tensor Tanh::forward(const Tensor& input) { return tanh(input); }

GELU::GELU(std::string approximate_in) : Module("GELU"), approximate(std::move(approximate_in)) {
  TG_CHECK(approximate == "none" || approximate == "tanh", "GELU: approximate must be \"none\" or \"tanh\", got \"",
           approximate, "\"");
}
Tensor GELU::forward(const Tensor& input) { return gelu(input, approximate); }
void GELU::print_options(std::ostream& out) const { out << "approximate=" << approximate; }

Tensor Softmax::forward(const Tensor& input) { return softmax(input, dim); }
void Softmax::print_options(std::ostream& out) const { out << "dim=" << dim; }

Tensor LogSoftmax::forward(const Tensor& input) { return log_softmax(input, dim); }
void LogSoftmax::print_options(std::ostream& out) const { out << "dim=" << dim; }

}  // namespace tg::nn
