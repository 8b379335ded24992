// ExponentialLR: multiplies the learning rate by gamma every epoch.
#pragma once

#include "scheduler.hpp"

namespace tg::optim {

class ExponentialLR : public LRScheduler {
 public:
  ExponentialLR(OptimizerBase& optimizer, double gamma, std::int64_t last_epoch = -1);

 private:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;
  double gamma_;
};

}  // namespace tg::optim
