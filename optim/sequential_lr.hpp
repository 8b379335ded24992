// SequentialLR: runs one scheduler until the first milestone, the next until the second, ...;
// at each milestone the new scheduler restarts from epoch 0 (its closed form, as PyTorch).
//
//   auto warmup = std::make_shared<LinearLR>(opt, 0.1, 1.0, 5);
//   auto cosine = std::make_shared<CosineAnnealingLR>(opt, 45);
//   SequentialLR schedule(opt, {warmup, cosine}, {5});
#pragma once

#include <memory>

#include "scheduler.hpp"

namespace tg::optim {

class SequentialLR : public Scheduler {
 public:
  SequentialLR(OptimizerBase& optimizer, std::vector<std::shared_ptr<LRScheduler>> schedulers,
               std::vector<std::int64_t> milestones, std::int64_t last_epoch = -1);
  void step() override;
  std::int64_t last_epoch() const { return last_epoch_; }

  // "last_epoch", "last_lr.<g>", and each scheduler's state under "schedulers.<i>.".
  nn::StateDict state_dict() const override;
  void load_state_dict(const nn::StateDict& state) override;

 private:
  std::vector<Scheduler*> held() const;
  OptimizerBase& optimizer_;
  std::vector<std::shared_ptr<LRScheduler>> schedulers_;
  std::vector<std::int64_t> milestones_;
  std::int64_t last_epoch_;
};

}  // namespace tg::optim
