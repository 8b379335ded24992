#include "optim/multi_step_lr.hpp"

#include <algorithm>
#include <cmath>

namespace tg::optim {

MultiStepLR::MultiStepLR(OptimizerBase& optimizer, std::vector<std::int64_t> milestones, double gamma,
                         std::int64_t last_epoch)
    : LRScheduler(optimizer, "MultiStepLR", last_epoch), milestones_(std::move(milestones)), gamma_(gamma) {
  initial_step();
}

std::vector<double> MultiStepLR::get_lr() {
  const auto hits = std::count(milestones_.begin(), milestones_.end(), last_epoch_);
  std::vector<double> out;
  for (std::size_t g = 0; g < base_lrs_.size(); ++g)
    out.push_back(hits == 0 ? group_lr(g) : group_lr(g) * std::pow(gamma_, double(hits)));
  return out;
}

// base_lr·gamma^(milestones passed), counting repeats (PyTorch's bisect_right on sorted milestones).
std::optional<std::vector<double>> MultiStepLR::closed_form_lr() const {
  const auto passed = std::count_if(milestones_.begin(), milestones_.end(), [&](std::int64_t m) { return m <= last_epoch_; });
  std::vector<double> out;
  for (double base : base_lrs_) out.push_back(base * std::pow(gamma_, double(passed)));
  return out;
}

}  // namespace tg::optim
