#include "optim/scheduler.hpp"
#include "core/xtensor.hpp"

#include <cmath>

#include "core/creation.hpp"

namespace tg::optim {

LRScheduler::LRScheduler(OptimizerBase& optimizer, std::string name, std::int64_t last_epoch)
    : optimizer_(optimizer), name_(std::move(name)), last_epoch_(last_epoch) {
  TG_CHECK(last_epoch >= -1, name_, ": last_epoch must be >= -1, got ", last_epoch);
  for (std::size_t g = 0; g < optimizer_.num_param_groups(); ++g) {
    if (last_epoch == -1 && !optimizer_.group_value(g, "initial_lr"))
      optimizer_.set_group_value(g, "initial_lr", optimizer_.lr(g));
    const std::optional<double> initial = optimizer_.group_value(g, "initial_lr");
    TG_CHECK(initial.has_value(), name_, ": resuming with last_epoch=", last_epoch, " needs \"initial_lr\" in parameter "
             "group ", g, " (load the optimizer's state first, or construct with last_epoch=-1)");
    base_lrs_.push_back(*initial);
  }
}

void LRScheduler::initial_step() {
  step_count_ = 0;
  step();
}

void LRScheduler::apply(const std::vector<double>& lrs) {
  for (std::size_t g = 0; g < lrs.size(); ++g) optimizer_.set_lr(g, lrs[g]);
  last_lr_ = lrs;
}

void LRScheduler::step() {
  ++step_count_;
  ++last_epoch_;
  apply(get_lr());
}

void LRScheduler::step_to(std::int64_t epoch) {
  ++step_count_;
  last_epoch_ = epoch;
  const std::optional<std::vector<double>> closed = closed_form_lr();
  apply(closed ? *closed : get_lr());
}

nn::StateDict LRScheduler::state_dict() const {
  nn::StateDict out;
  out.insert("type", detail::type_tag(name_));
  out.insert("last_epoch", full({}, double(last_epoch_), kInt64));
  out.insert("step_count", full({}, double(step_count_), kInt64));
  for (std::size_t g = 0; g < base_lrs_.size(); ++g) {
    out.insert("base_lrs." + std::to_string(g), full({}, base_lrs_[g], kFloat64));
    out.insert("last_lr." + std::to_string(g), full({}, last_lr_[g], kFloat64));
  }
  for (const auto& [key, value] : extra_state()) out.insert(key, full({}, value, kFloat64));
  return out;
}

void LRScheduler::load_state_dict(const nn::StateDict& state) {
  detail::check_type_tag(state, name_);
  auto scalar = [&](const std::string& key) {
    const Tensor* t = state.find(key);
    TG_CHECK(t != nullptr && t->numel() == 1, name_, ": the state has no scalar \"", key, "\"");
    const double value = t->item();
    TG_CHECK(std::isfinite(value), name_, ": \"", key, "\" is ", value, " (must be finite)");
    return value;
  };
  std::vector<double> base, last;
  for (std::size_t g = 0; g < base_lrs_.size(); ++g) {
    base.push_back(scalar("base_lrs." + std::to_string(g)));
    last.push_back(scalar("last_lr." + std::to_string(g)));
  }
  std::vector<std::pair<std::string, double>> extra = extra_state();
  for (auto& [key, value] : extra) value = scalar(key);
  const std::size_t expected = 3 + 2 * base_lrs_.size() + extra.size();
  TG_CHECK(state.size() == expected, name_, ": the state has ", state.size(), " entries, expected ", expected,
           " for ", base_lrs_.size(), " parameter groups");
  const double last_epoch = scalar("last_epoch"), step_count = scalar("step_count");
  TG_CHECK(last_epoch >= -1 && last_epoch == std::floor(last_epoch) && step_count >= 0 &&
               step_count == std::floor(step_count),
           name_, ": last_epoch (", last_epoch, ") and step_count (", step_count, ") must be whole numbers");
  set_extra_state(extra);
  last_epoch_ = std::int64_t(last_epoch);
  step_count_ = std::int64_t(step_count);
  base_lrs_ = base;
  last_lr_ = last;
}

namespace detail {

Tensor type_tag(const std::string& name) {
  return Tensor(std::vector<std::int64_t>(name.begin(), name.end()), {name.size()});
}

void check_type_tag(const nn::StateDict& state, const std::string& name) {
  const Tensor* tag = state.find("type");
  TG_CHECK(tag != nullptr && tag->dtype() == kInt64 && tag->dim() == 1 && tag->numel() <= 64, name,
           ": the state has no \"type\" naming its scheduler (is it a scheduler's state?)");
  std::string found;
  for (std::int64_t c : tag->values<std::int64_t>()) found += (c >= 32 && c < 127) ? char(c) : '?';
  TG_CHECK(found == name, name, ": the state is ", found, "'s, not ", name, "'s");
}

nn::StateDict combined_state(const char* name, const std::vector<double>& last_lr,
                             const std::vector<Scheduler*>& schedulers) {
  nn::StateDict out;
  out.insert("type", type_tag(name));
  for (std::size_t g = 0; g < last_lr.size(); ++g) out.insert("last_lr." + std::to_string(g), full({}, last_lr[g], kFloat64));
  for (std::size_t i = 0; i < schedulers.size(); ++i)
    nn::merge_into(out, nn::with_prefix(schedulers[i]->state_dict(), "schedulers." + std::to_string(i) + "."));
  return out;
}

std::vector<double> load_combined_state(const char* name, const nn::StateDict& state, std::size_t groups,
                                        const std::vector<Scheduler*>& schedulers) {
  check_type_tag(state, name);
  std::vector<double> last;
  for (std::size_t g = 0; g < groups; ++g) {
    const Tensor* lr = state.find("last_lr." + std::to_string(g));
    TG_CHECK(lr != nullptr && lr->numel() == 1 && std::isfinite(lr->item()), name, ": the state has no finite scalar \"last_lr.",
             g, "\"");
    last.push_back(lr->item());
  }
  // Each scheduler checks its own part; on a failure the ones already loaded are put back.
  std::vector<nn::StateDict> previous;
  for (const Scheduler* scheduler : schedulers) previous.push_back(scheduler->state_dict());
  try {
    for (std::size_t i = 0; i < schedulers.size(); ++i)
      schedulers[i]->load_state_dict(nn::under_prefix(state, "schedulers." + std::to_string(i) + "."));
  } catch (...) {
    for (std::size_t i = 0; i < schedulers.size(); ++i) schedulers[i]->load_state_dict(previous[i]);
    throw;
  }
  return last;
}

}  // namespace detail

}  // namespace tg::optim
