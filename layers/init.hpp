// tg::nn::init: in-place initialisation of parameters from the global generator (tg::manual_seed),
// with PyTorch's fan modes and gains.
#pragma once

#include <string>
#include <utility>

#include "../core/random.hpp"
#include "../core/tensor.hpp"

namespace tg::nn::init {

// PyTorch's gain for a nonlinearity: "linear", "conv*", "sigmoid" → 1; "tanh" → 5/3;
// "relu" → √2; "leaky_relu" → √(2 / (1 + param²)) (param = negative slope, default 0.01); "selu" → 3/4.
double calculate_gain(const std::string& nonlinearity, double param = 0.01);
// (fan_in, fan_out) of a weight of at least 2 dims: (size(1)·receptive field, size(0)·receptive field).
std::pair<double, double> calculate_fan_in_and_fan_out(const Tensor& tensor);

Tensor& uniform_(Tensor& tensor, double low = 0.0, double high = 1.0, Generator generator = default_generator());
Tensor& normal_(Tensor& tensor, double mean = 0.0, double std = 1.0, Generator generator = default_generator());
Tensor& constant_(Tensor& tensor, double value);
Tensor& zeros_(Tensor& tensor);
Tensor& ones_(Tensor& tensor);
// U(-a, a), a = gain·√(6 / (fan_in + fan_out)).
Tensor& xavier_uniform_(Tensor& tensor, double gain = 1.0, Generator generator = default_generator());
// N(0, σ²), σ = gain·√(2 / (fan_in + fan_out)).
Tensor& xavier_normal_(Tensor& tensor, double gain = 1.0, Generator generator = default_generator());
// U(-b, b), b = gain·√(3 / fan), gain = calculate_gain(nonlinearity, a); mode "fan_in" or "fan_out".
Tensor& kaiming_uniform_(Tensor& tensor, double a = 0.0, const std::string& mode = "fan_in",
                         const std::string& nonlinearity = "leaky_relu", Generator generator = default_generator());
// N(0, σ²), σ = gain / √fan.
Tensor& kaiming_normal_(Tensor& tensor, double a = 0.0, const std::string& mode = "fan_in",
                        const std::string& nonlinearity = "leaky_relu", Generator generator = default_generator());

}  // namespace tg::nn::init
