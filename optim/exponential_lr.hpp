// ExponentialLR: multiplies the learning rate by gamma every epoch.
#pragma once

#include "optim/scheduler.hpp"

namespace tg::optim {

class ExponentialLR : public LRScheduler {
 public:
  ExponentialLR(OptimizerBase& optimizer, double gamma);

 private:
  std::vector<double> get_lr() const override;
  double gamma_;
};

}  // namespace tg::optim
