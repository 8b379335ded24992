// ChainedScheduler: steps every scheduler it holds, in order, at each step(), so their effects
// multiply (say, a warm-up LinearLR chained with an ExponentialLR decay).
#pragma once

#include <memory>

#include "scheduler.hpp"

namespace tg::optim {

class ChainedScheduler : public Scheduler {
 public:
  explicit ChainedScheduler(std::vector<std::shared_ptr<Scheduler>> schedulers, OptimizerBase& optimizer);
  void step() override;

  // "last_lr.<g>" and each scheduler's state under "schedulers.<i>.".
  nn::StateDict state_dict() const override;
  void load_state_dict(const nn::StateDict& state) override;

 private:
  void read_lrs();
  std::vector<std::shared_ptr<Scheduler>> schedulers_;
  OptimizerBase& optimizer_;
};

}  // namespace tg::optim
