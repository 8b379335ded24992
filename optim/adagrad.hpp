// Adagrad with PyTorch's rule:
//   t = t + 1,  g = -grad with maximize, else grad;  g = g + weight_decay·p,  clr = lr / (1 + (t - 1)·lr_decay)
//   sum = sum + g²   (sum starts at initial_accumulator_value)
//   p = p - clr·g / (sqrt(sum) + eps)
#pragma once

#include "optimizer.hpp"

namespace tg::optim {

class AdagradOptions {
 public:
  explicit AdagradOptions(double lr = 1e-2) : lr_(lr) {}
  AdagradOptions& lr(double v) { lr_ = v; return *this; }
  AdagradOptions& lr_decay(double v) { lr_decay_ = v; return *this; }
  AdagradOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
  AdagradOptions& initial_accumulator_value(double v) { initial_accumulator_value_ = v; return *this; }
  AdagradOptions& eps(double v) { eps_ = v; return *this; }
  AdagradOptions& maximize(bool on) { maximize_ = on; return *this; }
  double lr() const { return lr_; }
  double lr_decay() const { return lr_decay_; }
  double weight_decay() const { return weight_decay_; }
  double initial_accumulator_value() const { return initial_accumulator_value_; }
  double eps() const { return eps_; }
  bool maximize() const { return maximize_; }

  void validate() const;
  static const std::vector<OptionField<AdagradOptions>>& fields() {
    static const std::vector<OptionField<AdagradOptions>> table{
        {"lr", &AdagradOptions::lr_}, {"lr_decay", &AdagradOptions::lr_decay_},
        {"weight_decay", &AdagradOptions::weight_decay_},
        {"initial_accumulator_value", &AdagradOptions::initial_accumulator_value_}, {"eps", &AdagradOptions::eps_},
        {"maximize", &AdagradOptions::maximize_}};
    return table;
  }

 private:
  double lr_, lr_decay_ = 0, weight_decay_ = 0, initial_accumulator_value_ = 0, eps_ = 1e-10;
  bool maximize_ = false;
};

class Adagrad : public Optimizer<AdagradOptions> {
 public:
  Adagrad(std::vector<Tensor> params, const AdagradOptions& options)
      : Adagrad(std::vector<ParamGroup<AdagradOptions>>{ParamGroup<AdagradOptions>(std::move(params))}, options) {}
  Adagrad(std::vector<ParamGroup<AdagradOptions>> groups, const AdagradOptions& defaults)
      : Optimizer("Adagrad", std::move(groups), defaults) {}

 private:
  void update(Tensor& param, const Tensor& grad, ParamState& state, const AdagradOptions& options) override;
  bool known_buffer(const std::string& name) const override { return name == "sum"; }
};

}  // namespace tg::optim
