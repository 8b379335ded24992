// Activations and the softmax family: relu, leaky_relu, sigmoid, tanh, gelu, softplus, softmax,
// log_softmax, and dropout.
#pragma once

#include <cstdint>
#include <string>

#include "../random.hpp"
#include "../tensor.hpp"

namespace tg {

Tensor relu(const Tensor& a);  // NaN stays NaN, as in PyTorch
Tensor leaky_relu(const Tensor& a, double negative_slope = 0.01);
Tensor sigmoid(const Tensor& a);
Tensor tanh(const Tensor& a);
// approximate = "none" (exact, with erf) or "tanh", as in torch.nn.functional.gelu.
Tensor gelu(const Tensor& a, const std::string& approximate = "none");
// log(1 + exp(beta * a)) / beta, computed so that it never overflows; a itself where
// beta * a > threshold, as torch.nn.functional.softplus (which takes any beta: a negative one
// gives a negative curve, and 0 gives inf).
Tensor softplus(const Tensor& a, double beta = 1.0, double threshold = 20.0);
// Numerically stable for large inputs (the row maximum is subtracted first). A row with a +inf,
// or of all -inf, gives NaN, as in PyTorch.
Tensor softmax(const Tensor& a, std::int64_t dim);
Tensor log_softmax(const Tensor& a, std::int64_t dim);
// Zeroes each element with probability p and scales the rest by 1 / (1 - p) when training;
// returns the input unchanged otherwise. The mask comes from the global generator.
Tensor dropout(const Tensor& a, double p = 0.5, bool training = true, Generator generator = default_generator());

}  // namespace tg
