// OneCycleLR (Smith's 1cycle policy), stepped once per batch: the rate rises from max_lr/div_factor
// to max_lr over pct_start of total_steps, then anneals to initial_lr/final_div_factor; the
// momentum (or Adam's beta1) cycles the other way between max_momentum and base_momentum.
// three_phase adds a symmetric descent back to the initial rate before the final annealing.
// total_steps is epochs × steps_per_epoch for a run of whole epochs. As PyTorch's, it keeps
// initial_lr, max_lr, min_lr, max_momentum and base_momentum in the optimizer's groups.
#pragma once

#include "scheduler.hpp"

namespace tg::optim {

class OneCycleLROptions {
 public:
  enum class Anneal { Cos, Linear };
  OneCycleLROptions(double max_lr, std::int64_t total_steps) : max_lr_{max_lr}, total_steps_(total_steps) {}
  // One max_lr per parameter group.
  OneCycleLROptions(std::vector<double> max_lr, std::int64_t total_steps)
      : max_lr_(std::move(max_lr)), total_steps_(total_steps) {}
  OneCycleLROptions& pct_start(double v) { pct_start_ = v; return *this; }
  OneCycleLROptions& anneal_strategy(Anneal v) { anneal_ = v; return *this; }
  OneCycleLROptions& cycle_momentum(bool on) { cycle_momentum_ = on; return *this; }
  OneCycleLROptions& base_momentum(double v) { base_momentum_ = v; return *this; }
  OneCycleLROptions& max_momentum(double v) { max_momentum_ = v; return *this; }
  OneCycleLROptions& div_factor(double v) { div_factor_ = v; return *this; }
  OneCycleLROptions& final_div_factor(double v) { final_div_factor_ = v; return *this; }
  OneCycleLROptions& three_phase(bool on) { three_phase_ = on; return *this; }
  const std::vector<double>& max_lr() const { return max_lr_; }
  std::int64_t total_steps() const { return total_steps_; }
  double pct_start() const { return pct_start_; }
  Anneal anneal_strategy() const { return anneal_; }
  bool cycle_momentum() const { return cycle_momentum_; }
  double base_momentum() const { return base_momentum_; }
  double max_momentum() const { return max_momentum_; }
  double div_factor() const { return div_factor_; }
  double final_div_factor() const { return final_div_factor_; }
  bool three_phase() const { return three_phase_; }

 private:
  std::vector<double> max_lr_;
  std::int64_t total_steps_;
  double pct_start_ = 0.3;
  Anneal anneal_ = Anneal::Cos;
  bool cycle_momentum_ = true;
  double base_momentum_ = 0.85, max_momentum_ = 0.95, div_factor_ = 25.0, final_div_factor_ = 1e4;
  bool three_phase_ = false;
};

class OneCycleLR : public LRScheduler {
 public:
  OneCycleLR(OptimizerBase& optimizer, const OneCycleLROptions& options, std::int64_t last_epoch = -1);

 private:
  // A phase anneals from the group value `start_*` to `end_*` until step end_step.
  struct Phase {
    double end_step;
    const char *start_lr, *end_lr, *start_momentum, *end_momentum;
  };
  std::vector<double> get_lr() override;
  double anneal(double start, double end, double pct) const;

  const OneCycleLROptions options_;
  std::vector<Phase> phases_;
};

}  // namespace tg::optim
