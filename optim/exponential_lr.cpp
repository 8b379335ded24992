#include "optim/exponential_lr.hpp"

#include <cmath>

namespace tg::optim {

ExponentialLR::ExponentialLR(OptimizerBase& optimizer, double gamma, std::int64_t last_epoch)
    : LRScheduler(optimizer, "ExponentialLR", last_epoch), gamma_(gamma) {
  initial_step();
}

std::vector<double> ExponentialLR::get_lr() {
  std::vector<double> out;
  for (std::size_t g = 0; g < base_lrs_.size(); ++g) out.push_back(last_epoch_ == 0 ? group_lr(g) : group_lr(g) * gamma_);
  return out;
}

// base_lr·gamma^last_epoch
std::optional<std::vector<double>> ExponentialLR::closed_form_lr() const {
  std::vector<double> out;
  for (double base : base_lrs_) out.push_back(base * std::pow(gamma_, double(last_epoch_)));
  return out;
}

}  // namespace tg::optim
