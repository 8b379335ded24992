// Adam (and its moment update, which AdamW shares), with PyTorch's rule:
//   g = -grad with maximize, else grad
//   g = g + weight_decay·p                          (Adam's L2 penalty; AdamW decays p instead)
//   m = β1·m + (1 - β1)·g,   v = β2·v + (1 - β2)·g²,  t = t + 1
//   v̂ = max(v̂, v) with amsgrad, else v
//   p = p - lr/(1 - β1^t) · m / (sqrt(v̂)/sqrt(1 - β2^t) + eps)
#pragma once

#include <utility>

#include "optimizer.hpp"

namespace tg::optim {

class AdamOptions {
 public:
  explicit AdamOptions(double lr = 1e-3) : lr_(lr) {}
  AdamOptions& lr(double v) { lr_ = v; return *this; }
  AdamOptions& betas(std::pair<double, double> v) { betas_ = v; return *this; }
  AdamOptions& eps(double v) { eps_ = v; return *this; }
  AdamOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
  AdamOptions& amsgrad(bool on) { amsgrad_ = on; return *this; }
  AdamOptions& maximize(bool on) { maximize_ = on; return *this; }
  double lr() const { return lr_; }
  std::pair<double, double> betas() const { return betas_; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }
  bool amsgrad() const { return amsgrad_; }
  bool maximize() const { return maximize_; }

  void validate() const { validate("Adam"); }
  void validate(const char* optimizer) const;
  static const std::vector<OptionField<AdamOptions>>& fields() {
    static const std::vector<OptionField<AdamOptions>> table{
        {"lr", &AdamOptions::lr_},           {"betas", &AdamOptions::betas_},     {"eps", &AdamOptions::eps_},
        {"weight_decay", &AdamOptions::weight_decay_}, {"amsgrad", &AdamOptions::amsgrad_},
        {"maximize", &AdamOptions::maximize_}};
    return table;
  }

 private:
  double lr_;
  std::pair<double, double> betas_{0.9, 0.999};
  double eps_ = 1e-8, weight_decay_ = 0;
  bool amsgrad_ = false, maximize_ = false;
};

class Adam : public Optimizer<AdamOptions> {
 public:
  Adam(std::vector<Tensor> params, const AdamOptions& options)
      : Adam(std::vector<ParamGroup<AdamOptions>>{ParamGroup<AdamOptions>(std::move(params))}, options) {}
  Adam(std::vector<ParamGroup<AdamOptions>> groups, const AdamOptions& defaults)
      : Optimizer("Adam", std::move(groups), defaults) {}

 private:
  void update(Tensor& param, const Tensor& grad, ParamState& state, const AdamOptions& options) override;
  bool known_buffer(const std::string& name) const override;
};

namespace detail {
// The moment estimates and the step, shared by Adam and AdamW, in one pass: l2 is Adam's weight
// decay (added to the gradient), decoupled AdamW's (the parameter is first multiplied by
// 1 - lr·decoupled, rounded, as PyTorch's param.mul_); the other is 0.
void adam_step(Tensor& param, const Tensor& grad, ParamState& state, const AdamOptions& options, double l2,
               double decoupled);
bool adam_buffer(const std::string& name);
}  // namespace detail

}  // namespace tg::optim
