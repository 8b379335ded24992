// LinearLR (warm-up): scales the learning rate by a factor that goes linearly from start_factor to
// end_factor over total_iters epochs, then stays.
#pragma once

#include "scheduler.hpp"

namespace tg::optim {

class LinearLR : public LRScheduler {
 public:
  LinearLR(OptimizerBase& optimizer, double start_factor = 1.0 / 3, double end_factor = 1.0,
           std::int64_t total_iters = 5, std::int64_t last_epoch = -1);

 private:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;
  double start_factor_, end_factor_;
  std::int64_t total_iters_;
};

}  // namespace tg::optim
