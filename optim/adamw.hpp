// AdamW: Adam with decoupled weight decay (default 0.01): p = p·(1 - lr·weight_decay) first, then
// Adam's step with no L2 term.
#pragma once

#include "adam.hpp"

namespace tg::optim {

// Adam's options with AdamW's default weight decay; the setters return AdamWOptions so they chain.
class AdamWOptions : public AdamOptions {
 public:
  explicit AdamWOptions(double lr = 1e-3) : AdamOptions(lr) { AdamOptions::weight_decay(1e-2); }
  AdamWOptions& lr(double v) { AdamOptions::lr(v); return *this; }
  AdamWOptions& betas(std::pair<double, double> v) { AdamOptions::betas(v); return *this; }
  AdamWOptions& eps(double v) { AdamOptions::eps(v); return *this; }
  AdamWOptions& weight_decay(double v) { AdamOptions::weight_decay(v); return *this; }
  AdamWOptions& amsgrad(bool on) { AdamOptions::amsgrad(on); return *this; }
  AdamWOptions& maximize(bool on) { AdamOptions::maximize(on); return *this; }
  using AdamOptions::lr, AdamOptions::betas, AdamOptions::eps, AdamOptions::weight_decay, AdamOptions::amsgrad,
      AdamOptions::maximize;
  void validate() const { AdamOptions::validate("AdamW"); }
};

class AdamW : public Optimizer<AdamWOptions> {
 public:
  AdamW(std::vector<Tensor> params, const AdamWOptions& options)
      : AdamW(std::vector<ParamGroup<AdamWOptions>>{ParamGroup<AdamWOptions>(std::move(params))}, options) {}
  AdamW(std::vector<ParamGroup<AdamWOptions>> groups, const AdamWOptions& defaults)
      : Optimizer("AdamW", std::move(groups), defaults) {}

 private:
  void update(Tensor& param, const Tensor& grad, ParamState& state, const AdamWOptions& options) override;
  bool known_buffer(const std::string& name) const override { return detail::adam_buffer(name); }
};

}  // namespace tg::optim
