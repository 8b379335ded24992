// Activations and the softmax family: relu, leaky_relu, sigmoid, tanh, gelu, softplus, silu, mish,
// elu, selu, celu, hardtanh, relu6, hardsigmoid, hardswish, logsigmoid, softsign, tanhshrink,
// hardshrink, softshrink, threshold, glu, prelu, softmax, log_softmax, softmin, and dropout
// (elementwise, and by channel: dropout1d/2d/3d).
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
// x·σ(x) (Swish), and Mish's x·tanh(softplus(x)).
Tensor silu(const Tensor& a);
Tensor mish(const Tensor& a);
// x for x > 0, alpha·(e^x - 1) otherwise; selu is scale·elu(x, alpha) with Klambauer et al.'s
// constants (alpha 1.6733, scale 1.0507), as PyTorch's.
Tensor elu(const Tensor& a, double alpha = 1.0);
Tensor selu(const Tensor& a);
// max(0, x) + min(0, alpha·(e^(x/alpha) - 1)); alpha must not be 0.
Tensor celu(const Tensor& a, double alpha = 1.0);
// Clamped to [min_val, max_val] (NaN stays NaN); relu6 is hardtanh(a, 0, 6).
Tensor hardtanh(const Tensor& a, double min_val = -1.0, double max_val = 1.0);
Tensor relu6(const Tensor& a);
// MobileNetV3's: min(max(x + 3, 0), 6) / 6, and x times it.
Tensor hardsigmoid(const Tensor& a);
Tensor hardswish(const Tensor& a);
// log σ(x) = min(x, 0) - log(1 + e^-|x|), finite for every finite x (-inf at -inf).
Tensor logsigmoid(const Tensor& a);
// x / (1 + |x|), PyTorch's formula: ±inf gives NaN, as there.
Tensor softsign(const Tensor& a);
// x - tanh(x).
Tensor tanhshrink(const Tensor& a);
// 0 on [-lambd, lambd], x elsewhere (hardshrink); x ∓ lambd outside it (softshrink, lambd >= 0).
// NaN stays NaN in both (PyTorch 1.13's softshrink gave 0 for NaN; later versions give NaN).
Tensor hardshrink(const Tensor& a, double lambd = 0.5);
Tensor softshrink(const Tensor& a, double lambd = 0.5);
// value where x <= threshold, else x (NaN stays NaN), as torch.nn.functional.threshold.
Tensor threshold(const Tensor& a, double threshold, double value);
// The gated linear unit: a's halves along dim, first · σ(second); dim's size must be even.
Tensor glu(const Tensor& a, std::int64_t dim = -1);
// x for x > 0, else weight·x: weight (1-D) has one slope, or one per channel (dim 1 of a).
Tensor prelu(const Tensor& a, const Tensor& weight);
// Numerically stable for large inputs (the row maximum is subtracted first). A row with a +inf,
// or of all -inf, gives NaN, as in PyTorch.
Tensor softmax(const Tensor& a, std::int64_t dim);
Tensor log_softmax(const Tensor& a, std::int64_t dim);
// softmax(-a, dim).
Tensor softmin(const Tensor& a, std::int64_t dim);
// Zeroes each element with probability p and scales the rest by 1 / (1 - p) when training;
// returns the input unchanged otherwise. The mask comes from the global generator.
Tensor dropout(const Tensor& a, double p = 0.5, bool training = true, Generator generator = default_generator());
// Channel dropout, as torch.nn.functional.dropout1d/2d/3d: whole channels (every value of one
// (sample, channel)) zeroed with probability p, the rest scaled by 1 / (1 - p), when training.
// dropout1d takes (N, C, L) or unbatched (C, L); dropout2d (N, C, H, W), or (N, C, L) as PyTorch
// 1.13 reads a 3-D input (it warns that this will change); dropout3d (N, C, D, H, W) or (C, D, H, W).
Tensor dropout1d(const Tensor& a, double p = 0.5, bool training = true, Generator generator = default_generator());
Tensor dropout2d(const Tensor& a, double p = 0.5, bool training = true, Generator generator = default_generator());
Tensor dropout3d(const Tensor& a, double p = 0.5, bool training = true, Generator generator = default_generator());

}  // namespace tg
