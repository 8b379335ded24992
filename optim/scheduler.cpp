#include "optim/scheduler.hpp"

#include "core/creation.hpp"

namespace tg::optim {

LRScheduler::LRScheduler(OptimizerBase& optimizer, std::string name) : optimizer_(optimizer), name_(std::move(name)) {
  for (std::size_t g = 0; g < optimizer_.num_param_groups(); ++g) base_lrs_.push_back(optimizer_.lr(g));
}

void LRScheduler::step() {
  ++step_count_;
  ++last_epoch_;
  const std::vector<double> lrs = get_lr();
  for (std::size_t g = 0; g < lrs.size(); ++g) optimizer_.set_lr(g, lrs[g]);
  last_lr_ = lrs;
}

nn::StateDict LRScheduler::state_dict() const {
  nn::StateDict out;
  out.insert("last_epoch", full({}, double(last_epoch_), kInt64));
  out.insert("step_count", full({}, double(step_count_), kInt64));
  for (std::size_t g = 0; g < base_lrs_.size(); ++g) {
    out.insert("base_lrs." + std::to_string(g), full({}, base_lrs_[g], kFloat64));
    out.insert("last_lr." + std::to_string(g), full({}, last_lr_[g], kFloat64));
  }
  return out;
}

void LRScheduler::load_state_dict(const nn::StateDict& state) {
  auto scalar = [&](const std::string& key) {
    const Tensor* t = state.find(key);
    TG_CHECK(t != nullptr && t->numel() == 1, name_, ": the state has no scalar \"", key, "\"");
    return t->item();
  };
  std::vector<double> base, last;
  for (std::size_t g = 0; g < base_lrs_.size(); ++g) {
    base.push_back(scalar("base_lrs." + std::to_string(g)));
    last.push_back(scalar("last_lr." + std::to_string(g)));
  }
  TG_CHECK(state.size() == 2 + 2 * base_lrs_.size(), name_, ": the state has ", state.size(),
           " entries, expected ", 2 + 2 * base_lrs_.size(), " for ", base_lrs_.size(), " parameter groups");
  last_epoch_ = std::int64_t(scalar("last_epoch"));
  step_count_ = std::int64_t(scalar("step_count"));
  base_lrs_ = base;
  last_lr_ = last;
}

}  // namespace tg::optim
