// CosineAnnealingLR: anneals from the base rate to eta_min over T_max epochs along a cosine, then
// back up (PyTorch's recursive form, which keeps following the cosine after T_max).
#pragma once

#include "scheduler.hpp"

namespace tg::optim {

class CosineAnnealingLR : public LRScheduler {
 public:
  CosineAnnealingLR(OptimizerBase& optimizer, std::int64_t T_max, double eta_min = 0.0, std::int64_t last_epoch = -1);

 private:
  std::vector<double> get_lr() override;
  std::optional<std::vector<double>> closed_form_lr() const override;
  std::int64_t t_max_;
  double eta_min_;
};

}  // namespace tg::optim
