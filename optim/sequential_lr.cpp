#include "optim/sequential_lr.hpp"

#include <algorithm>

#include "core/creation.hpp"

namespace tg::optim {

SequentialLR::SequentialLR(OptimizerBase& optimizer, std::vector<std::shared_ptr<LRScheduler>> schedulers,
                           std::vector<std::int64_t> milestones, std::int64_t last_epoch)
    : optimizer_(optimizer), schedulers_(std::move(schedulers)), milestones_(std::move(milestones)),
      last_epoch_(last_epoch + 1) {
  TG_CHECK(!schedulers_.empty(), "SequentialLR: expects at least one scheduler");
  for (std::size_t i = 0; i < schedulers_.size(); ++i)
    TG_CHECK(schedulers_[i] && &schedulers_[i]->optimizer_ == &optimizer_, "SequentialLR: scheduler ", i,
             " does not belong to the optimizer SequentialLR was given");
  TG_CHECK(milestones_.size() == schedulers_.size() - 1, "SequentialLR: expects ", schedulers_.size() - 1,
           " milestones for ", schedulers_.size(), " schedulers, got ", milestones_.size());
  TG_CHECK(std::is_sorted(milestones_.begin(), milestones_.end()), "SequentialLR: milestones must be increasing");
  // Back to the initial rates, undo the initial step every scheduler made when it was built, and
  // make the first scheduler's initial step again (PyTorch's order).
  for (std::size_t g = 0; g < optimizer_.num_param_groups(); ++g)
    optimizer_.set_lr(g, *optimizer_.group_value(g, "initial_lr"));
  for (auto& scheduler : schedulers_) --scheduler->last_epoch_;
  schedulers_[0]->initial_step();
  last_lr_ = schedulers_[0]->get_last_lr();
}

void SequentialLR::step() {
  ++last_epoch_;
  const std::size_t index = std::size_t(std::upper_bound(milestones_.begin(), milestones_.end(), last_epoch_) -
                                        milestones_.begin());
  LRScheduler& scheduler = *schedulers_[index];
  if (index > 0 && milestones_[index - 1] == last_epoch_)
    scheduler.step_to(0);
  else
    scheduler.step();
  last_lr_ = scheduler.get_last_lr();
}

std::vector<Scheduler*> SequentialLR::held() const {
  std::vector<Scheduler*> out;
  for (const auto& scheduler : schedulers_) out.push_back(scheduler.get());
  return out;
}

nn::StateDict SequentialLR::state_dict() const {
  nn::StateDict out = detail::combined_state("SequentialLR", last_lr_, held());
  out.insert("last_epoch", full({}, double(last_epoch_), kInt64));
  return out;
}

void SequentialLR::load_state_dict(const nn::StateDict& state) {
  const Tensor* epoch = state.find("last_epoch");
  TG_CHECK(epoch != nullptr && epoch->numel() == 1 && epoch->item() >= 0 && epoch->item() < 9e15,
           "SequentialLR: the state has no scalar \"last_epoch\" >= 0");
  last_lr_ = detail::load_combined_state("SequentialLR", state, optimizer_.num_param_groups(), held());
  last_epoch_ = std::int64_t(epoch->item());
}

}  // namespace tg::optim
