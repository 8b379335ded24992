// CosineAnnealingWarmRestarts (SGDR): a cosine from the base rate down to eta_min over T_0 epochs,
// then a restart, with each period T_mult times the last:
//   lr = eta_min + (base_lr - eta_min)·(1 + cos(π·T_cur/T_i))/2.
// step() advances one epoch; step(epoch) takes a fractional epoch, as PyTorch's
// scheduler.step(epoch + i / iters) for per-batch updates.
#pragma once

#include "scheduler.hpp"

namespace tg::optim {

class CosineAnnealingWarmRestarts : public LRScheduler {
 public:
  CosineAnnealingWarmRestarts(OptimizerBase& optimizer, std::int64_t T_0, std::int64_t T_mult = 1, double eta_min = 0.0,
                              std::int64_t last_epoch = -1);
  void step() override;
  void step(double epoch);

 private:
  std::vector<double> get_lr() override;
  std::vector<std::pair<std::string, double>> extra_state() const override;
  void set_extra_state(const std::vector<std::pair<std::string, double>>& values) override;

  std::int64_t t_0_, t_mult_;
  double eta_min_;
  double t_cur_, t_i_;
};

}  // namespace tg::optim
