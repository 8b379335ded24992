#include "optim/step_lr.hpp"

namespace tg::optim {

StepLR::StepLR(OptimizerBase& optimizer, std::int64_t step_size, double gamma)
    : LRScheduler(optimizer, "StepLR"), step_size_(step_size), gamma_(gamma) {
  TG_CHECK(step_size > 0, "StepLR: step_size must be positive, got ", step_size);
  initial_step();
}

std::vector<double> StepLR::get_lr() const {
  std::vector<double> out;
  const bool decay = last_epoch_ != 0 && last_epoch_ % step_size_ == 0;
  for (std::size_t g = 0; g < base_lrs_.size(); ++g) out.push_back(decay ? group_lr(g) * gamma_ : group_lr(g));
  return out;
}

}  // namespace tg::optim
