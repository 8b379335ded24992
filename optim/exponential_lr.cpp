#include "optim/exponential_lr.hpp"

namespace tg::optim {

ExponentialLR::ExponentialLR(OptimizerBase& optimizer, double gamma) : LRScheduler(optimizer, "ExponentialLR"), gamma_(gamma) {
  initial_step();
}

std::vector<double> ExponentialLR::get_lr() const {
  std::vector<double> out;
  for (std::size_t g = 0; g < base_lrs_.size(); ++g) out.push_back(last_epoch_ == 0 ? group_lr(g) : group_lr(g) * gamma_);
  return out;
}

}  // namespace tg::optim
