// SGD with momentum, dampening, weight decay and Nesterov momentum, with PyTorch's update rule:
//   d = -grad with maximize, else grad;  d = d + weight_decay·p
//   buf = d on the first step, then momentum·buf + (1 - dampening)·d
//   d = d + momentum·buf (nesterov) or buf
//   p = p - lr·d
#pragma once

#include "optimizer.hpp"

namespace tg::optim {

class SGDOptions {
 public:
  explicit SGDOptions(double lr) : lr_(lr) {}
  SGDOptions& lr(double v) { lr_ = v; return *this; }
  SGDOptions& momentum(double v) { momentum_ = v; return *this; }
  SGDOptions& dampening(double v) { dampening_ = v; return *this; }
  SGDOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
  SGDOptions& nesterov(bool on) { nesterov_ = on; return *this; }
  SGDOptions& maximize(bool on) { maximize_ = on; return *this; }
  double lr() const { return lr_; }
  double momentum() const { return momentum_; }
  double dampening() const { return dampening_; }
  double weight_decay() const { return weight_decay_; }
  bool nesterov() const { return nesterov_; }
  bool maximize() const { return maximize_; }

  void validate() const;
  static const std::vector<OptionField<SGDOptions>>& fields() {
    static const std::vector<OptionField<SGDOptions>> table{
        {"lr", &SGDOptions::lr_},           {"momentum", &SGDOptions::momentum_},
        {"dampening", &SGDOptions::dampening_}, {"weight_decay", &SGDOptions::weight_decay_},
        {"nesterov", &SGDOptions::nesterov_}, {"maximize", &SGDOptions::maximize_}};
    return table;
  }

 private:
  double lr_, momentum_ = 0, dampening_ = 0, weight_decay_ = 0;
  bool nesterov_ = false, maximize_ = false;
};

class SGD : public Optimizer<SGDOptions> {
 public:
  SGD(std::vector<Tensor> params, const SGDOptions& options)
      : SGD(std::vector<ParamGroup<SGDOptions>>{ParamGroup<SGDOptions>(std::move(params))}, options) {}
  SGD(std::vector<ParamGroup<SGDOptions>> groups, const SGDOptions& defaults)
      : Optimizer("SGD", std::move(groups), defaults) {}

 private:
  void update(Tensor& param, const Tensor& grad, ParamState& state, const SGDOptions& options) override;
  bool known_buffer(const std::string& name) const override { return name == "momentum_buffer"; }
};

}  // namespace tg::optim
