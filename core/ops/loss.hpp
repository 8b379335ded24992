// Loss functions, as in torch.nn.functional. `reduction` is None (one loss per element or sample),
// Mean (the default) or Sum.
#pragma once

#include <cstdint>

#include "../tensor.hpp"

namespace tg {

// BatchMean is kl_div's only (the sum over the batch's first dim's size, PyTorch's "batchmean");
// the other losses refuse it, as PyTorch's do.
enum class Reduction { None, Mean, Sum, BatchMean };
const char* reduction_name(Reduction reduction);  // "none", "mean", "sum", "batchmean"

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

// The Kullback-Leibler divergence of input (log-probabilities) from target, per element:
// target·(log target - input), 0 where target is 0 (whatever input: a masked -inf too) and NaN
// for a negative target; with log_target, target holds log-probabilities: e^target·(target - input).
// reduction BatchMean divides the sum by input's dim-0 size (the divergence per sample, what
// PyTorch recommends); Mean, PyTorch's default, divides by the number of elements.
Tensor kl_div(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean, bool log_target = false);
// log(1 + e^(-target·input)) for targets ±1 (the two-class logistic loss).
Tensor soft_margin_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
// The negative log-likelihood of target counts under Poisson rates: e^input - target·input with
// log_input (input is the log-rate), else input - target·log(input + eps); full adds Stirling's
// approximation of log(target!), target·log(target) - target + ½·log(2π·target), where target > 1.
Tensor poisson_nll_loss(const Tensor& input, const Tensor& target, bool log_input = true, bool full = false,
                        double eps = 1e-8, Reduction reduction = Reduction::Mean);
// Multi-label logistic loss over (N, C) (or (C)): per sample, the mean over classes of
// -weight_c·(y·log σ(x) + (1 - y)·log σ(-x)); weight (C) is optional.
Tensor multilabel_soft_margin_loss(const Tensor& input, const Tensor& target, const Tensor& weight = Tensor(),
                                   Reduction reduction = Reduction::Mean);

// Embedding and ranking losses over pairs and triplets (composed from ops, as PyTorch's):
// cosine_embedding_loss: 1 - cos(x1, x2) where y = 1, max(0, cos - margin) where y = -1 (0 for any
// other y), cos along dim 1 of (N, D) (or of (D) with a 0-d y), with PyTorch's 1e-12 added to each
// squared norm.
Tensor cosine_embedding_loss(const Tensor& x1, const Tensor& x2, const Tensor& y, double margin = 0.0,
                             Reduction reduction = Reduction::Mean);
// max(0, -y·(x1 - x2) + margin), y = ±1: x1 should rank above x2 where y = 1.
Tensor margin_ranking_loss(const Tensor& x1, const Tensor& x2, const Tensor& y, double margin = 0.0,
                           Reduction reduction = Reduction::Mean);
// x where y = 1, max(0, margin - x) where y = -1 (both terms where y is neither, as PyTorch's).
Tensor hinge_embedding_loss(const Tensor& input, const Tensor& target, double margin = 1.0,
                            Reduction reduction = Reduction::Mean);
// max(0, margin + d(anchor, positive) - d(anchor, negative)), d = pairwise_distance(·, ·, p, eps);
// swap takes min(d(anchor, negative), d(positive, negative)) as the negative's distance.
Tensor triplet_margin_loss(const Tensor& anchor, const Tensor& positive, const Tensor& negative, double margin = 1.0,
                           double p = 2.0, double eps = 1e-6, bool swap = false, Reduction reduction = Reduction::Mean);

// Applies a reduction to a tensor of per-element losses.
Tensor reduce_loss(const Tensor& loss, Reduction reduction);

}  // namespace tg
