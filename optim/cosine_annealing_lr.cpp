#include "optim/cosine_annealing_lr.hpp"

#include <cmath>
#include <numbers>

namespace tg::optim {

CosineAnnealingLR::CosineAnnealingLR(OptimizerBase& optimizer, std::int64_t T_max, double eta_min)
    : LRScheduler(optimizer, "CosineAnnealingLR"), t_max_(T_max), eta_min_(eta_min) {
  TG_CHECK(T_max > 0, "CosineAnnealingLR: T_max must be positive, got ", T_max);
  initial_step();
}

std::vector<double> CosineAnnealingLR::get_lr() const {
  const double pi = std::numbers::pi, t = double(last_epoch_), T = double(t_max_);
  std::vector<double> out;
  for (std::size_t g = 0; g < base_lrs_.size(); ++g) {
    const double lr = group_lr(g);
    if (last_epoch_ == 0)
      out.push_back(lr);
    else if ((last_epoch_ - 1 - t_max_) % (2 * t_max_) == 0)
      out.push_back(lr + (base_lrs_[g] - eta_min_) * (1 - std::cos(pi / T)) / 2);
    else
      out.push_back((1 + std::cos(pi * t / T)) / (1 + std::cos(pi * (t - 1) / T)) * (lr - eta_min_) + eta_min_);
  }
  return out;
}

}  // namespace tg::optim
