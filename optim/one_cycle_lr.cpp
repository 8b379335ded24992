#include "optim/one_cycle_lr.hpp"

#include <cmath>
#include <numbers>

namespace tg::optim {

OneCycleLR::OneCycleLR(OptimizerBase& optimizer, const OneCycleLROptions& o, std::int64_t last_epoch)
    : LRScheduler(optimizer, "OneCycleLR", last_epoch), options_(o) {
  const std::size_t groups = optimizer.num_param_groups();
  TG_CHECK(o.total_steps() > 0, "OneCycleLR: total_steps must be positive, got ", o.total_steps());
  TG_CHECK(o.pct_start() >= 0 && o.pct_start() <= 1, "OneCycleLR: pct_start must be in [0, 1], got ", o.pct_start());
  TG_CHECK(o.max_lr().size() == 1 || o.max_lr().size() == groups, "OneCycleLR: expected 1 or ", groups,
           " max_lr values (one per parameter group), got ", o.max_lr().size());
  const double total = double(o.total_steps());
  if (o.three_phase())
    phases_ = {{o.pct_start() * total - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"},
               {2 * o.pct_start() * total - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"},
               {total - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"}};
  else
    phases_ = {{o.pct_start() * total - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"},
               {total - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"}};
  if (o.cycle_momentum())
    TG_CHECK(optimizer.momentum(0).has_value(), "OneCycleLR: ", optimizer.name(),
             " has no momentum or betas to cycle (pass cycle_momentum(false))");
  if (last_epoch == -1)
    for (std::size_t g = 0; g < groups; ++g) {
      const double max_lr = o.max_lr().size() == 1 ? o.max_lr()[0] : o.max_lr()[g];
      optimizer.set_group_value(g, "initial_lr", max_lr / o.div_factor());
      optimizer.set_group_value(g, "max_lr", max_lr);
      optimizer.set_group_value(g, "min_lr", max_lr / o.div_factor() / o.final_div_factor());
      base_lrs_[g] = max_lr / o.div_factor();
      if (o.cycle_momentum()) {
        optimizer.set_momentum(g, o.max_momentum());
        optimizer.set_group_value(g, "max_momentum", o.max_momentum());
        optimizer.set_group_value(g, "base_momentum", o.base_momentum());
      }
    }
  initial_step();
}

double OneCycleLR::anneal(double start, double end, double pct) const {
  if (options_.anneal_strategy() == OneCycleLROptions::Anneal::Linear) return (end - start) * pct + start;
  return end + (start - end) / 2.0 * (std::cos(std::numbers::pi * pct) + 1);
}

std::vector<double> OneCycleLR::get_lr() {
  const double step = double(last_epoch_);
  TG_CHECK(last_epoch_ <= options_.total_steps(), "OneCycleLR: tried to step ", last_epoch_ + 1,
           " times; the specified number of total steps is ", options_.total_steps());
  auto value = [&](std::size_t g, const char* key) {
    const std::optional<double> v = optimizer_.group_value(g, key);
    TG_CHECK(v.has_value(), "OneCycleLR: parameter group ", g, " has no \"", key, "\"");
    return *v;
  };
  std::vector<double> lrs;
  for (std::size_t g = 0; g < optimizer_.num_param_groups(); ++g) {
    double start_step = 0;
    for (std::size_t i = 0; i < phases_.size(); ++i) {
      const Phase& phase = phases_[i];
      if (step <= phase.end_step || i == phases_.size() - 1) {
        const double pct = (step - start_step) / (phase.end_step - start_step);
        lrs.push_back(anneal(value(g, phase.start_lr), value(g, phase.end_lr), pct));
        if (options_.cycle_momentum())
          optimizer_.set_momentum(g, anneal(value(g, phase.start_momentum), value(g, phase.end_momentum), pct));
        break;
      }
      start_step = phase.end_step;
    }
  }
  return lrs;
}

}  // namespace tg::optim
