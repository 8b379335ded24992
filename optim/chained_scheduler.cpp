#include "optim/chained_scheduler.hpp"

#include "core/creation.hpp"

namespace tg::optim {

ChainedScheduler::ChainedScheduler(std::vector<std::shared_ptr<Scheduler>> schedulers, OptimizerBase& optimizer)
    : schedulers_(std::move(schedulers)), optimizer_(optimizer) {
  TG_CHECK(!schedulers_.empty(), "ChainedScheduler: expects at least one scheduler");
  for (std::size_t i = 0; i < schedulers_.size(); ++i)
    TG_CHECK(schedulers_[i] != nullptr, "ChainedScheduler: scheduler ", i, " is null");
  read_lrs();
}

void ChainedScheduler::read_lrs() {
  last_lr_.clear();
  for (std::size_t g = 0; g < optimizer_.num_param_groups(); ++g) last_lr_.push_back(optimizer_.lr(g));
}

void ChainedScheduler::step() {
  for (auto& scheduler : schedulers_) scheduler->step();
  read_lrs();
}

nn::StateDict ChainedScheduler::state_dict() const {
  std::vector<Scheduler*> held;
  for (const auto& scheduler : schedulers_) held.push_back(scheduler.get());
  return detail::combined_state("ChainedScheduler", last_lr_, held);
}

void ChainedScheduler::load_state_dict(const nn::StateDict& state) {
  std::vector<Scheduler*> held;
  for (const auto& scheduler : schedulers_) held.push_back(scheduler.get());
  last_lr_ = detail::load_combined_state("ChainedScheduler", state, optimizer_.num_param_groups(), held);
}

}  // namespace tg::optim
