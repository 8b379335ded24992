// StepLR: multiplies the learning rate by gamma every step_size epochs.
#pragma once

#include "scheduler.hpp"

namespace tg::optim {

class StepLR : public LRScheduler {
 public:
  StepLR(OptimizerBase& optimizer, std::int64_t step_size, double gamma = 0.1, std::int64_t last_epoch = -1);

 private:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;
  std::int64_t step_size_;
  double gamma_;
};

}  // namespace tg::optim
