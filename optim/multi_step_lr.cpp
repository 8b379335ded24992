#include "optim/multi_step_lr.hpp"

#include <algorithm>
#include <cmath>

namespace tg::optim {

MultiStepLR::MultiStepLR(OptimizerBase& optimizer, std::vector<std::int64_t> milestones, double gamma)
    : LRScheduler(optimizer, "MultiStepLR"), milestones_(std::move(milestones)), gamma_(gamma) {
  initial_step();
}

std::vector<double> MultiStepLR::get_lr() const {
  const auto hits = std::count(milestones_.begin(), milestones_.end(), last_epoch_);
  std::vector<double> out;
  for (std::size_t g = 0; g < base_lrs_.size(); ++g)
    out.push_back(hits == 0 ? group_lr(g) : group_lr(g) * std::pow(gamma_, double(hits)));
  return out;
}

}  // namespace tg::optim
