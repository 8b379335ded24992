#include "optim/cosine_annealing_lr.hpp"

#include <cmath>
#include <numbers>

namespace tg::optim {

CosineAnnealingLR::CosineAnnealingLR(OptimizerBase& optimizer, std::int64_t T_max, double eta_min,
                                     std::int64_t last_epoch)
    : LRScheduler(optimizer, "CosineAnnealingLR", last_epoch), t_max_(T_max), eta_min_(eta_min) {
  TG_CHECK(T_max > 0, "CosineAnnealingLR: T_max must be positive, got ", T_max);
  initial_step();
}

std::vector<double> CosineAnnealingLR::get_lr() {
  const double pi = std::numbers::pi, t = double(last_epoch_), T = double(t_max_);
  std::vector<double> out;
  for (std::size_t g = 0; g < base_lrs_.size(); ++g) {
    const double lr = group_lr(g);
    if (last_epoch_ == 0)
      out.push_back(lr);
    else if (step_count_ == 1 && last_epoch_ > 0)  // built with last_epoch: the closed form, as PyTorch
      out.push_back(eta_min_ + (base_lrs_[g] - eta_min_) * (1 + std::cos(t * pi / T)) / 2);
    else if ((last_epoch_ - 1 - t_max_) % (2 * t_max_) == 0)
      out.push_back(lr + (base_lrs_[g] - eta_min_) * (1 - std::cos(pi / T)) / 2);
    else
      out.push_back((1 + std::cos(pi * t / T)) / (1 + std::cos(pi * (t - 1) / T)) * (lr - eta_min_) + eta_min_);
  }
  return out;
}

// eta_min + (base_lr - eta_min)·(1 + cos(π·last_epoch/T_max))/2
std::optional<std::vector<double>> CosineAnnealingLR::closed_form_lr() const {
  std::vector<double> out;
  for (double base : base_lrs_)
    out.push_back(eta_min_ + (base - eta_min_) * (1 + std::cos(std::numbers::pi * double(last_epoch_) / double(t_max_))) / 2);
  return out;
}

}  // namespace tg::optim
