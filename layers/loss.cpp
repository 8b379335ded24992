#include "layers/loss.hpp"

#include <ostream>

namespace tg::nn {

Loss::Loss(std::string name, Reduction reduction_in) : Module(std::move(name)), reduction(reduction_in) {
  TG_CHECK(reduction != Reduction::BatchMean || type_name() == "KLDivLoss", type_name(),
           ": reduction batchmean is KLDivLoss's only (use mean, sum or none)");
}

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

HuberLoss::HuberLoss(Reduction reduction, double delta) : Loss("HuberLoss", reduction), delta(delta) {
  TG_CHECK(delta > 0, "HuberLoss: delta must be positive, got ", delta);
}
Tensor HuberLoss::forward(const Tensor& input, const Tensor& target) {
  return huber_loss(input, target, reduction, delta);
}
void HuberLoss::print_options(std::ostream& out) const {
  Loss::print_options(out);
  out << ", delta=" << delta;
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

Tensor KLDivLoss::forward(const Tensor& input, const Tensor& target) {
  return kl_div(input, target, reduction, log_target);
}
void KLDivLoss::print_options(std::ostream& out) const {
  Loss::print_options(out);
  out << ", log_target=" << (log_target ? "true" : "false");
}

SoftMarginLoss::SoftMarginLoss(Reduction reduction) : Loss("SoftMarginLoss", reduction) {}
Tensor SoftMarginLoss::forward(const Tensor& input, const Tensor& target) {
  return soft_margin_loss(input, target, reduction);
}

PoissonNLLLoss::PoissonNLLLoss(bool log_input, bool full, double eps, Reduction reduction)
    : Loss("PoissonNLLLoss", reduction), log_input(log_input), full(full), eps(eps) {
  TG_CHECK(eps > 0, "PoissonNLLLoss: eps must be positive, got ", eps);
}
Tensor PoissonNLLLoss::forward(const Tensor& input, const Tensor& target) {
  return poisson_nll_loss(input, target, log_input, full, eps, reduction);
}
void PoissonNLLLoss::print_options(std::ostream& out) const {
  Loss::print_options(out);
  out << ", log_input=" << (log_input ? "true" : "false") << ", full=" << (full ? "true" : "false") << ", eps=" << eps;
}

MultiLabelSoftMarginLoss::MultiLabelSoftMarginLoss(Tensor weight_in, Reduction reduction)
    : Loss("MultiLabelSoftMarginLoss", reduction), weight(std::move(weight_in)) {
  if (weight.defined()) register_buffer("weight", weight);
}
Tensor MultiLabelSoftMarginLoss::forward(const Tensor& input, const Tensor& target) {
  return multilabel_soft_margin_loss(input, target, weight, reduction);
}

Tensor HingeEmbeddingLoss::forward(const Tensor& input, const Tensor& target) {
  return hinge_embedding_loss(input, target, margin, reduction);
}
void HingeEmbeddingLoss::print_options(std::ostream& out) const {
  out << "margin=" << margin << ", ";
  Loss::print_options(out);
}

Loss3::Loss3(std::string name, double margin_in, Reduction reduction_in)
    : Module(std::move(name)), margin(margin_in), reduction(reduction_in) {
  TG_CHECK(reduction != Reduction::BatchMean, type_name(), ": reduction batchmean is KLDivLoss's only (use mean, sum or none)");
}
void Loss3::print_options(std::ostream& out) const {
  out << "margin=" << margin << ", reduction=" << reduction_name(reduction);
}

Tensor CosineEmbeddingLoss::forward(const Tensor& x1, const Tensor& x2, const Tensor& y) {
  return cosine_embedding_loss(x1, x2, y, margin, reduction);
}

Tensor MarginRankingLoss::forward(const Tensor& x1, const Tensor& x2, const Tensor& y) {
  return margin_ranking_loss(x1, x2, y, margin, reduction);
}

TripletMarginLoss::TripletMarginLoss(double margin, double p_in, double eps_in, bool swap_in, Reduction reduction)
    : Loss3("TripletMarginLoss", margin, reduction), p(p_in), eps(eps_in), swap(swap_in) {
  TG_CHECK(p > 0, "TripletMarginLoss: p must be positive (or infinity), got ", p);
}
Tensor TripletMarginLoss::forward(const Tensor& anchor, const Tensor& positive, const Tensor& negative) {
  return triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap, reduction);
}
void TripletMarginLoss::print_options(std::ostream& out) const {
  out << "margin=" << margin << ", p=" << p << ", eps=" << eps << ", swap=" << (swap ? "true" : "false")
      << ", reduction=" << reduction_name(reduction);
}

}  // namespace tg::nn
