// ReduceLROnPlateau: multiplies the learning rate by `factor` when a metric has stopped improving
// for more than `patience` epochs, as PyTorch's. step(metric) once per epoch.
#pragma once

#include <string>
#include <vector>

#include "optimizer.hpp"

namespace tg::optim {

class ReduceLROnPlateauOptions {
 public:
  ReduceLROnPlateauOptions& mode(std::string v) { mode_ = std::move(v); return *this; }           // "min" or "max"
  ReduceLROnPlateauOptions& factor(double v) { factor_ = v; return *this; }
  ReduceLROnPlateauOptions& patience(std::int64_t v) { patience_ = v; return *this; }
  ReduceLROnPlateauOptions& threshold(double v) { threshold_ = v; return *this; }
  ReduceLROnPlateauOptions& threshold_mode(std::string v) { threshold_mode_ = std::move(v); return *this; }  // "rel"/"abs"
  ReduceLROnPlateauOptions& cooldown(std::int64_t v) { cooldown_ = v; return *this; }
  ReduceLROnPlateauOptions& min_lr(double v) { min_lr_ = {v}; return *this; }
  // One lower bound per parameter group, as PyTorch's min_lr list.
  ReduceLROnPlateauOptions& min_lr(std::vector<double> v) { min_lr_ = std::move(v); return *this; }
  ReduceLROnPlateauOptions& eps(double v) { eps_ = v; return *this; }
  const std::string& mode() const { return mode_; }
  double factor() const { return factor_; }
  std::int64_t patience() const { return patience_; }
  double threshold() const { return threshold_; }
  const std::string& threshold_mode() const { return threshold_mode_; }
  std::int64_t cooldown() const { return cooldown_; }
  const std::vector<double>& min_lr() const { return min_lr_; }
  double eps() const { return eps_; }

 private:
  std::string mode_ = "min", threshold_mode_ = "rel";
  double factor_ = 0.1, threshold_ = 1e-4, eps_ = 1e-8;
  std::vector<double> min_lr_{0.0};
  std::int64_t patience_ = 10, cooldown_ = 0;
};

class ReduceLROnPlateau {
 public:
  explicit ReduceLROnPlateau(OptimizerBase& optimizer, ReduceLROnPlateauOptions options = {});
  void step(double metric);
  const std::vector<double>& get_last_lr() const { return last_lr_; }

  // "best", "num_bad_epochs", "cooldown_counter", "last_epoch", "last_lr.<g>".
  nn::StateDict state_dict() const;
  void load_state_dict(const nn::StateDict& state);

 private:
  bool is_better(double value) const;

  OptimizerBase& optimizer_;
  const ReduceLROnPlateauOptions options_;
  double best_;
  std::int64_t num_bad_epochs_ = 0, cooldown_counter_ = 0, last_epoch_ = 0;
  std::vector<double> last_lr_;
  std::vector<double> min_lrs_;  // one per group
};

}  // namespace tg::optim
