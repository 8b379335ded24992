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

CELU::CELU(double alpha_in) : Module("CELU"), alpha(alpha_in) {
  TG_CHECK(alpha != 0.0, "CELU: alpha must not be 0 (the input is divided by it), got 0");
}
Tensor CELU::forward(const Tensor& input) { return celu(input, alpha); }
void CELU::print_options(std::ostream& out) const { out << "alpha=" << alpha; }

Hardtanh::Hardtanh(double min_val_in, double max_val_in) : Module("Hardtanh"), min_val(min_val_in), max_val(max_val_in) {
  TG_CHECK(max_val > min_val, "Hardtanh: max_val (", max_val, ") must be greater than min_val (", min_val, ")");
}
Tensor Hardtanh::forward(const Tensor& input) { return hardtanh(input, min_val, max_val); }
void Hardtanh::print_options(std::ostream& out) const { out << "min_val=" << min_val << ", max_val=" << max_val; }

Tensor ReLU6::forward(const Tensor& input) { return relu6(input); }

Tensor Hardsigmoid::forward(const Tensor& input) { return hardsigmoid(input); }

Tensor Hardswish::forward(const Tensor& input) { return hardswish(input); }

Tensor Softplus::forward(const Tensor& input) { return softplus(input, beta, threshold); }
void Softplus::print_options(std::ostream& out) const { out << "beta=" << beta << ", threshold=" << threshold; }

Tensor LogSigmoid::forward(const Tensor& input) { return logsigmoid(input); }

Tensor Softsign::forward(const Tensor& input) { return softsign(input); }

Tensor Tanhshrink::forward(const Tensor& input) { return tanhshrink(input); }

Tensor Hardshrink::forward(const Tensor& input) { return hardshrink(input, lambd); }
void Hardshrink::print_options(std::ostream& out) const { out << lambd; }

Softshrink::Softshrink(double lambd_in) : Module("Softshrink"), lambd(lambd_in) {
  TG_CHECK(lambd >= 0.0, "Softshrink: lambd must be non-negative, got ", lambd);
}
Tensor Softshrink::forward(const Tensor& input) { return softshrink(input, lambd); }
void Softshrink::print_options(std::ostream& out) const { out << lambd; }

Tensor Threshold::forward(const Tensor& input) { return tg::threshold(input, threshold, value); }
void Threshold::print_options(std::ostream& out) const { out << "threshold=" << threshold << ", value=" << value; }

Tensor GLU::forward(const Tensor& input) { return glu(input, dim); }
void GLU::print_options(std::ostream& out) const { out << "dim=" << dim; }

Tensor Softmax::forward(const Tensor& input) { return softmax(input, dim); }
void Softmax::print_options(std::ostream& out) const { out << "dim=" << dim; }

Tensor LogSoftmax::forward(const Tensor& input) { return log_softmax(input, dim); }
void LogSoftmax::print_options(std::ostream& out) const { out << "dim=" << dim; }

Tensor Softmin::forward(const Tensor& input) { return softmin(input, dim); }
void Softmin::print_options(std::ostream& out) const { out << "dim=" << dim; }

Tensor Softmax2d::forward(const Tensor& input) {
  TG_CHECK(input.dim() == 3 || input.dim() == 4, "Softmax2d: expected input (N, C, H, W) or (C, H, W), got ",
           shape_str(input.shape()));
  return softmax(input, -3);
}

}  // namespace tg::nn
