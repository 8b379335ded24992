// Loss functions, as in torch.nn.functional. `reduction` is None (one loss per element or sample),
// Mean (the default) or Sum.
#pragma once

#include <cstdint>

#include "../tensor.hpp"

namespace tg {

enum class Reduction { None, Mean, Sum };
const char* reduction_name(Reduction reduction);  // "none", "mean", "sum"

// (input - target)²
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
// |input - target|
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
// 0.5·d²/beta where |d| < beta, else |d| - 0.5·beta; beta = 0 is l1_loss.
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean,
                      double beta = 1.0);

// 0.5·d² where |d| < delta, else delta·(|d| - 0.5·delta) (torch.nn.functional.huber_loss).
Tensor huber_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean,
                  double delta = 1.0);

// Options shared by the class-index losses, with PyTorch's defaults.
struct ClassLossOptions {
  Tensor weight;                   // per-class weights, shape (C); undefined means all ones
  std::int64_t ignore_index = -100;  // targets equal to this contribute nothing
  Reduction reduction = Reduction::Mean;
  double label_smoothing = 0.0;    // cross_entropy only, in [0, 1]
};

// log_softmax + nll_loss as one fused, numerically stable op with its own backward. input is
// (N, C) logits, (C) for one sample, or (N, C, d1, ..., dk) (classes at dim 1: there the two ops,
// log_softmax over dim 1 and nll_loss, without label smoothing). target is either
// int64 class indices, (N), () or (N, d1, ..., dk), or class probabilities of the input's shape and
// dtype (then the mean is over samples, and ignore_index must stay negative, as in PyTorch).
Tensor cross_entropy(const Tensor& input, const Tensor& target, const ClassLossOptions& options = {});
// -input[i, target[i]]·weight[target[i]]: input holds log-probabilities, (N, C), (C) or
// (N, C, d1, ..., dk) with target (N, d1, ..., dk).
Tensor nll_loss(const Tensor& input, const Tensor& target, const ClassLossOptions& options = {});

// -(y·log p + (1 - y)·log(1 - p)) with the logs clamped at -100 like PyTorch; p must be in [0, 1].
// The gradient is PyTorch's: (p - y)/max(p·(1 - p), 1e-12), finite even at p = 0 or 1.
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean,
                            const Tensor& weight = Tensor());
// The same on logits, stable for any logit size; pos_weight weighs the positive term.
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        Reduction reduction = Reduction::Mean, const Tensor& weight = Tensor(),
                                        const Tensor& pos_weight = Tensor());

// Applies a reduction to a tensor of per-element losses.
Tensor reduce_loss(const Tensor& loss, Reduction reduction);

}  // namespace tg
