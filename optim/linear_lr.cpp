#include "optim/linear_lr.hpp"

#include <algorithm>

namespace tg::optim {

LinearLR::LinearLR(OptimizerBase& optimizer, double start_factor, double end_factor, std::int64_t total_iters,
                   std::int64_t last_epoch)
    : LRScheduler(optimizer, "LinearLR", last_epoch), start_factor_(start_factor), end_factor_(end_factor), total_iters_(total_iters) {
  TG_CHECK(start_factor > 0 && start_factor <= 1, "LinearLR: start_factor must be in (0, 1], got ", start_factor);
  TG_CHECK(end_factor >= 0 && end_factor <= 1, "LinearLR: end_factor must be in [0, 1], got ", end_factor);
  // 0 is allowed, as in PyTorch: the rate then stays at start_factor times the base.
  TG_CHECK(total_iters >= 0, "LinearLR: total_iters must be non-negative, got ", total_iters);
  initial_step();
}

std::vector<double> LinearLR::get_lr() {
  std::vector<double> out;
  for (std::size_t g = 0; g < base_lrs_.size(); ++g) {
    const double lr = group_lr(g);
    if (last_epoch_ == 0)
      out.push_back(lr * start_factor_);
    else if (last_epoch_ > total_iters_)
      out.push_back(lr);
    else
      out.push_back(lr * (1.0 + (end_factor_ - start_factor_) /
                                    (double(total_iters_) * start_factor_ +
                                     double(last_epoch_ - 1) * (end_factor_ - start_factor_))));
  }
  return out;
}

// base_lr·(start + (end - start)·min(total_iters, last_epoch)/total_iters); start for total_iters 0,
// where get_lr's recursion stays.
std::optional<std::vector<double>> LinearLR::closed_form_lr() const {
  std::vector<double> out;
  const double done = total_iters_ == 0 ? 0.0 : double(std::min(total_iters_, last_epoch_)) / double(total_iters_);
  for (double base : base_lrs_) out.push_back(base * (start_factor_ + (end_factor_ - start_factor_) * done));
  return out;
}

}  // namespace tg::optim
