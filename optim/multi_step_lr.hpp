// MultiStepLR: multiplies the learning rate by gamma at each milestone epoch (repeated milestones
// multiply again, as in PyTorch).
#pragma once

#include "scheduler.hpp"

namespace tg::optim {

class MultiStepLR : public LRScheduler {
 public:
  MultiStepLR(OptimizerBase& optimizer, std::vector<std::int64_t> milestones, double gamma = 0.1,
              std::int64_t last_epoch = -1);

 private:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;
  std::vector<std::int64_t> milestones_;
  double gamma_;
};

}  // namespace tg::optim
