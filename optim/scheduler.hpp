// tg::optim::LRScheduler: the base of the epoch-driven schedulers, as PyTorch's _LRScheduler.
// Construction performs PyTorch's initial step (last_epoch becomes 0); each step() advances one
// epoch and writes the new learning rate into every parameter group.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "optim/optimizer.hpp"

namespace tg::optim {

class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  void step();
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  std::int64_t last_epoch() const { return last_epoch_; }

  // "last_epoch", "step_count" (int64), "base_lrs.<g>", "last_lr.<g>" (float64), plus any extra
  // state a scheduler keeps. The group learning rates live in the optimizer's state.
  nn::StateDict state_dict() const;
  void load_state_dict(const nn::StateDict& state);

 protected:
  LRScheduler(OptimizerBase& optimizer, std::string name);
  void initial_step() { step(); }  // every constructor ends with this, as in PyTorch
  // The next learning rates, from the current ones (PyTorch's recursive, "chainable" form).
  virtual std::vector<double> get_lr() const = 0;
  double group_lr(std::size_t group) const { return optimizer_.lr(group); }

  OptimizerBase& optimizer_;
  std::string name_;
  std::vector<double> base_lrs_;
  std::int64_t last_epoch_ = -1;
  std::int64_t step_count_ = 0;
  std::vector<double> last_lr_;
};

}  // namespace tg::optim
