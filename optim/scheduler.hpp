// Learning-rate schedulers, as PyTorch's.
//
// Scheduler is what a training loop holds: step() once per epoch (or per batch, for OneCycleLR),
// get_last_lr(), state_dict(). LRScheduler is the base of the epoch-driven schedulers, as PyTorch's
// _LRScheduler: construction records each group's "initial_lr" in the optimizer (the first
// scheduler built on it does; later ones find it there, so chained schedulers share one base
// rate), then performs PyTorch's initial step (last_epoch -1 becomes 0). Built with last_epoch = k
// it resumes after epoch k: the optimizer (with its initial_lr) must have been loaded first.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "optimizer.hpp"

namespace tg::optim {

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  virtual void step() = 0;
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  virtual nn::StateDict state_dict() const = 0;
  // Checks everything first; throws and changes nothing on a mismatch.
  virtual void load_state_dict(const nn::StateDict& state) = 0;

 protected:
  std::vector<double> last_lr_;
};

class LRScheduler : public Scheduler {
 public:
  void step() override;
  std::int64_t last_epoch() const { return last_epoch_; }
  const std::vector<double>& base_lrs() const { return base_lrs_; }

  // "last_epoch", "step_count" (int64), "base_lrs.<g>", "last_lr.<g>" (float64), plus any extra
  // state a scheduler keeps. The group learning rates live in the optimizer's state.
  nn::StateDict state_dict() const override;
  void load_state_dict(const nn::StateDict& state) override;

 protected:
  LRScheduler(OptimizerBase& optimizer, std::string name, std::int64_t last_epoch);
  void initial_step();  // every constructor ends with this, as in PyTorch
  // The next learning rates, from the current ones (PyTorch's recursive, "chainable" form).
  virtual std::vector<double> get_lr() = 0;
  // The rates at last_epoch from the base rates alone, where PyTorch has such a form; SequentialLR
  // uses it when it restarts a scheduler at a milestone.
  virtual std::optional<std::vector<double>> closed_form_lr() const { return std::nullopt; }
  // Extra numbers a scheduler keeps (CosineAnnealingWarmRestarts's T_cur, T_i), saved as float64.
  virtual std::vector<std::pair<std::string, double>> extra_state() const { return {}; }
  virtual void set_extra_state(const std::vector<std::pair<std::string, double>>&) {}
  double group_lr(std::size_t group) const { return optimizer_.lr(group); }
  void apply(const std::vector<double>& lrs);  // writes the rates into the groups and last_lr

  OptimizerBase& optimizer_;
  std::string name_;
  std::vector<double> base_lrs_;
  std::int64_t last_epoch_ = -1;
  std::int64_t step_count_ = 0;

 private:
  friend class SequentialLR;
  void step_to(std::int64_t epoch);  // PyTorch's step(epoch): closed form when there is one
};

namespace detail {
// Every scheduler's state carries "type", its class name as int64 character codes, so that loading
// another scheduler's state is refused by name.
Tensor type_tag(const std::string& name);
void check_type_tag(const nn::StateDict& state, const std::string& name);

// For the schedulers that hold others (SequentialLR, ChainedScheduler): their own "last_lr.<g>"
// with the held schedulers' states under "schedulers.<i>.", and loading all of those or none.
nn::StateDict combined_state(const char* name, const std::vector<double>& last_lr,
                             const std::vector<Scheduler*>& schedulers);
std::vector<double> load_combined_state(const char* name, const nn::StateDict& state, std::size_t groups,
                                        const std::vector<Scheduler*>& schedulers);
}  // namespace detail

}  // namespace tg::optim
