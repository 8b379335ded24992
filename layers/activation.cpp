#include "layers/activation.hpp"

#include <ostream>

#include "core/creation.hpp"
#include "core/ops/activation.hpp"

namespace tg::nn {

Tensor ReLU::forward(const Tensor& input) { return relu(input); }

Tensor LeakyReLU::forward(const Tensor& input) { return leaky_relu(input, negative_slope); }
void LeakyReLU::print_options(std::ostream& out) const { out << "negative_slope=" << negative_slope; }

PReLU::PReLU(std::int64_t num_parameters_in, double init_in)
    : Module("PReLU"), num_parameters(num_parameters_in), init(init_in) {
  TG_CHECK(num_parameters > 0, "PReLU: num_parameters must be positive, got ", num_parameters);
  weight = register_parameter("weight", full({std::size_t(num_parameters)}, init));
}
Tensor PReLU::forward(const Tensor& input) { return prelu(input, weight); }
void PReLU::print_options(std::ostream& out) const { out << "num_parameters=" << num_parameters; }

Tensor Sigmoid::forward(const Tensor& input) { return sigmoid(input); }

Tensor Tanh::forward(const Tensor& input) { return tanh(input); }

GELU::GELU(std::string approximate_in) : Module("GELU"), approximate(std::move(approximate_in)) {
  TG_CHECK(approximate == "none" || approximate == "tanh", "GELU: approximate must be \"none\" or \"tanh\", got \"",
           approximate, "\"");
}
Tensor GELU::forward(const Tensor& input) { return gelu(input, approximate); }
void GELU::print_options(std::ostream& out) const { out << "approximate=" << approximate; }

Tensor SiLU::forward(const Tensor& input) { return silu(input); }

Tensor Mish::forward(const Tensor& input) { return mish(input); }

Tensor ELU::forward(const Tensor& input) { return elu(input, alpha); }
void ELU::print_options(std::ostream& out) const { out << "alpha=" << alpha; }

Tensor SELU::forward(const Tensor& input) { return selu(input); }

Hardtanh::Hardtanh(double min_val_in, double max_val_in) : Module("Hardtanh"), min_val(min_val_in), max_val(max_val_in) {
  TG_CHECK(max_val > min_val, "Hardtanh: max_val (", max_val, ") must be greater than min_val (", min_val, ")");
}
Tensor Hardtanh::forward(const Tensor& input) { return hardtanh(input, min_val, max_val); }
void Hardtanh::print_options(std::ostream& out) const { out << "min_val=" << min_val << ", max_val=" << max_val; }

Tensor ReLU6::forward(const Tensor& input) { return relu6(input); }

Tensor Hardsigmoid::forward(const Tensor& input) { return hardsigmoid(input); }

Tensor Hardswish::forward(const Tensor& input) { return hardswish(input); }

Tensor Softmax::forward(const Tensor& input) { return softmax(input, dim); }
void Softmax::print_options(std::ostream& out) const { out << "dim=" << dim; }

Tensor LogSoftmax::forward(const Tensor& input) { return log_softmax(input, dim); }
void LogSoftmax::print_options(std::ostream& out) const { out << "dim=" << dim; }

}  // namespace tg::nn
