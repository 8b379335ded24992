#include "optim/step_lr.hpp"

#include <cmath>

namespace tg::optim {

StepLR::StepLR(OptimizerBase& optimizer, std::int64_t step_size, double gamma, std::int64_t last_epoch)
    : LRScheduler(optimizer, "StepLR", last_epoch), step_size_(step_size), gamma_(gamma) {
  TG_CHECK(step_size > 0, "StepLR: step_size must be positive, got ", step_size);
  initial_step();
}

std::vector<double> StepLR::get_lr() {
  std::vector<double> out;
  const bool decay = last_epoch_ != 0 && last_epoch_ % step_size_ == 0;
  for (std::size_t g = 0; g < base_lrs_.size(); ++g) out.push_back(decay ? group_lr(g) * gamma_ : group_lr(g));
  return out;
}

// base_lr·gamma^(last_epoch / step_size)
std::optional<std::vector<double>> StepLR::closed_form_lr() const {
  std::vector<double> out;
  for (double base : base_lrs_) out.push_back(base * std::pow(gamma_, double(last_epoch_ / step_size_)));
  return out;
}

}  // namespace tg::optim
