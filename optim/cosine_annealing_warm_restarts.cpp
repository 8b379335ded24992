#include "optim/cosine_annealing_warm_restarts.hpp"

#include <cmath>
#include <numbers>

namespace tg::optim {

CosineAnnealingWarmRestarts::CosineAnnealingWarmRestarts(OptimizerBase& optimizer, std::int64_t T_0,
                                                         std::int64_t T_mult, double eta_min, std::int64_t last_epoch)
    : LRScheduler(optimizer, "CosineAnnealingWarmRestarts", last_epoch), t_0_(T_0), t_mult_(T_mult), eta_min_(eta_min),
      t_cur_(double(last_epoch)), t_i_(double(T_0)) {
  TG_CHECK(T_0 > 0, "CosineAnnealingWarmRestarts: expected a positive T_0, got ", T_0);
  TG_CHECK(T_mult >= 1, "CosineAnnealingWarmRestarts: expected T_mult >= 1, got ", T_mult);
  initial_step();
}

std::vector<double> CosineAnnealingWarmRestarts::get_lr() {
  std::vector<double> out;
  for (double base : base_lrs_)
    out.push_back(eta_min_ + (base - eta_min_) * (1 + std::cos(std::numbers::pi * t_cur_ / t_i_)) / 2);
  return out;
}

void CosineAnnealingWarmRestarts::step() {
  if (last_epoch_ < 0) {
    step(0.0);
    return;
  }
  ++step_count_;
  t_cur_ += 1;
  if (t_cur_ >= t_i_) {
    t_cur_ -= t_i_;
    t_i_ *= double(t_mult_);
  }
  ++last_epoch_;
  apply(get_lr());
}

void CosineAnnealingWarmRestarts::step(double epoch) {
  TG_CHECK(std::isfinite(epoch) && epoch >= 0, "CosineAnnealingWarmRestarts: expected a non-negative epoch, got ", epoch);
  ++step_count_;
  const double t0 = double(t_0_), mult = double(t_mult_);
  if (epoch >= t0) {
    if (t_mult_ == 1) {
      t_cur_ = std::fmod(epoch, t0);
    } else {  // the restart n with T_0·(mult^n - 1)/(mult - 1) <= epoch
      const double n = std::floor(std::log(epoch / t0 * (mult - 1) + 1) / std::log(mult));
      t_cur_ = epoch - t0 * (std::pow(mult, n) - 1) / (mult - 1);
      t_i_ = t0 * std::pow(mult, n);
    }
  } else {
    t_i_ = t0;
    t_cur_ = epoch;
  }
  last_epoch_ = std::int64_t(std::floor(epoch));
  apply(get_lr());
}

std::vector<std::pair<std::string, double>> CosineAnnealingWarmRestarts::extra_state() const {
  return {{"T_cur", t_cur_}, {"T_i", t_i_}};
}

void CosineAnnealingWarmRestarts::set_extra_state(const std::vector<std::pair<std::string, double>>& values) {
  const double t_cur = values.at(0).second, t_i = values.at(1).second;
  TG_CHECK(t_i > 0 && t_cur >= -1 && t_cur <= t_i, "CosineAnnealingWarmRestarts: the state has T_cur=", t_cur,
           " and T_i=", t_i, " (expected 0 < T_i and -1 <= T_cur <= T_i)");
  t_cur_ = t_cur;
  t_i_ = t_i;
}

}  // namespace tg::optim
