// RMSprop with PyTorch's rule:
//   g = -grad with maximize, else grad;  g = g + weight_decay·p
//   s = α·s + (1 - α)·g²
//   centered: a = α·a + (1 - α)·g (as lerp), avg = sqrt(s - a²) + eps;  else avg = sqrt(s) + eps
//   momentum > 0: b = momentum·b + g/avg, p = p - lr·b;  else p = p - lr·g/avg
#pragma once

#include "optimizer.hpp"

namespace tg::optim {

class RMSpropOptions {
 public:
  explicit RMSpropOptions(double lr = 1e-2) : lr_(lr) {}
  RMSpropOptions& lr(double v) { lr_ = v; return *this; }
  RMSpropOptions& alpha(double v) { alpha_ = v; return *this; }
  RMSpropOptions& eps(double v) { eps_ = v; return *this; }
  RMSpropOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
  RMSpropOptions& momentum(double v) { momentum_ = v; return *this; }
  RMSpropOptions& centered(bool on) { centered_ = on; return *this; }
  RMSpropOptions& maximize(bool on) { maximize_ = on; return *this; }
  double lr() const { return lr_; }
  double alpha() const { return alpha_; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }
  double momentum() const { return momentum_; }
  bool centered() const { return centered_; }
  bool maximize() const { return maximize_; }

  void validate() const;
  static const std::vector<OptionField<RMSpropOptions>>& fields() {
    static const std::vector<OptionField<RMSpropOptions>> table{
        {"lr", &RMSpropOptions::lr_},          {"alpha", &RMSpropOptions::alpha_},
        {"eps", &RMSpropOptions::eps_},        {"weight_decay", &RMSpropOptions::weight_decay_},
        {"momentum", &RMSpropOptions::momentum_}, {"centered", &RMSpropOptions::centered_},
        {"maximize", &RMSpropOptions::maximize_}};
    return table;
  }

 private:
  double lr_, alpha_ = 0.99, eps_ = 1e-8, weight_decay_ = 0, momentum_ = 0;
  bool centered_ = false, maximize_ = false;
};

class RMSprop : public Optimizer<RMSpropOptions> {
 public:
  RMSprop(std::vector<Tensor> params, const RMSpropOptions& options)
      : RMSprop(std::vector<ParamGroup<RMSpropOptions>>{ParamGroup<RMSpropOptions>(std::move(params))}, options) {}
  RMSprop(std::vector<ParamGroup<RMSpropOptions>> groups, const RMSpropOptions& defaults)
      : Optimizer("RMSprop", std::move(groups), defaults) {}

 private:
  void update(Tensor& param, const Tensor& grad, ParamState& state, const RMSpropOptions& options) override;
  bool known_buffer(const std::string& name) const override {
    return name == "square_avg" || name == "grad_avg" || name == "momentum_buffer";
  }
};

}  // namespace tg::optim
