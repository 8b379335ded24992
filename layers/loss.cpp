#include "layers/loss.hpp"

#include <ostream>

namespace tg::nn {

void Loss::print_options(std::ostream& out) const { out << "reduction=" << reduction_name(reduction); }

Tensor MSELoss::forward(const Tensor& input, const Tensor& target) { return mse_loss(input, target, reduction); }

Tensor L1Loss::forward(const Tensor& input, const Tensor& target) { return l1_loss(input, target, reduction); }

SmoothL1Loss::SmoothL1Loss(Reduction reduction, double beta) : Loss("SmoothL1Loss", reduction), beta(beta) {
  TG_CHECK(beta >= 0, "SmoothL1Loss: beta must be non-negative, got ", beta);
}
Tensor SmoothL1Loss::forward(const Tensor& input, const Tensor& target) {
  return smooth_l1_loss(input, target, reduction, beta);
}
void SmoothL1Loss::print_options(std::ostream& out) const {
  Loss::print_options(out);
  out << ", beta=" << beta;
}

CrossEntropyLoss::CrossEntropyLoss(ClassLossOptions options_in)
    : Loss("CrossEntropyLoss", options_in.reduction), options(std::move(options_in)) {
  TG_CHECK(options.label_smoothing >= 0 && options.label_smoothing <= 1,
           "CrossEntropyLoss: label_smoothing must be in [0, 1], got ", options.label_smoothing);
  if (options.weight.defined()) register_buffer("weight", options.weight);
}
Tensor CrossEntropyLoss::forward(const Tensor& input, const Tensor& target) {
  return cross_entropy(input, target, options);
}

NLLLoss::NLLLoss(ClassLossOptions options_in) : Loss("NLLLoss", options_in.reduction), options(std::move(options_in)) {
  if (options.weight.defined()) register_buffer("weight", options.weight);
}
Tensor NLLLoss::forward(const Tensor& input, const Tensor& target) { return nll_loss(input, target, options); }

BCELoss::BCELoss(Reduction reduction, Tensor weight_in) : Loss("BCELoss", reduction), weight(std::move(weight_in)) {
  if (weight.defined()) register_buffer("weight", weight);
}
Tensor BCELoss::forward(const Tensor& input, const Tensor& target) {
  return binary_cross_entropy(input, target, reduction, weight);
}

BCEWithLogitsLoss::BCEWithLogitsLoss(Reduction reduction, Tensor weight_in, Tensor pos_weight_in)
    : Loss("BCEWithLogitsLoss", reduction), weight(std::move(weight_in)), pos_weight(std::move(pos_weight_in)) {
  if (weight.defined()) register_buffer("weight", weight);
  if (pos_weight.defined()) register_buffer("pos_weight", pos_weight);
}
Tensor BCEWithLogitsLoss::forward(const Tensor& input, const Tensor& target) {
  return binary_cross_entropy_with_logits(input, target, reduction, weight, pos_weight);
}

}  // namespace tg::nn
