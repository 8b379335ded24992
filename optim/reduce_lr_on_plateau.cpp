#include "optim/reduce_lr_on_plateau.hpp"

#include <cmath>

#include "core/creation.hpp"
#include "optim/scheduler.hpp"

namespace tg::optim {

ReduceLROnPlateau::ReduceLROnPlateau(OptimizerBase& optimizer, ReduceLROnPlateauOptions options)
    : optimizer_(optimizer), options_(std::move(options)) {
  TG_CHECK(options_.mode() == "min" || options_.mode() == "max", "ReduceLROnPlateau: mode must be \"min\" or \"max\", got \"",
           options_.mode(), "\"");
  TG_CHECK(options_.threshold_mode() == "rel" || options_.threshold_mode() == "abs",
           "ReduceLROnPlateau: threshold_mode must be \"rel\" or \"abs\", got \"", options_.threshold_mode(), "\"");
  TG_CHECK(options_.factor() < 1.0, "ReduceLROnPlateau: factor should be < 1.0, got ", options_.factor());
  TG_CHECK(options_.patience() >= 0 && options_.cooldown() >= 0, "ReduceLROnPlateau: patience and cooldown must be >= 0");
  const std::size_t groups = optimizer_.num_param_groups();
  TG_CHECK(options_.min_lr().size() == 1 || options_.min_lr().size() == groups, "ReduceLROnPlateau: expected 1 or ",
           groups, " min_lr values (one per parameter group), got ", options_.min_lr().size());
  min_lrs_ = options_.min_lr().size() == 1 ? std::vector<double>(groups, options_.min_lr()[0]) : options_.min_lr();
  best_ = options_.mode() == "min" ? INFINITY : -INFINITY;
  for (std::size_t g = 0; g < optimizer_.num_param_groups(); ++g) last_lr_.push_back(optimizer_.lr(g));
}

bool ReduceLROnPlateau::is_better(double a) const {
  const double t = options_.threshold();
  const bool rel = options_.threshold_mode() == "rel";
  if (options_.mode() == "min") return rel ? a < best_ * (1 - t) : a < best_ - t;
  return rel ? a > best_ * (t + 1) : a > best_ + t;
}

void ReduceLROnPlateau::step(double metric) {
  ++last_epoch_;
  if (is_better(metric)) {
    best_ = metric;
    num_bad_epochs_ = 0;
  } else {
    ++num_bad_epochs_;
  }
  if (cooldown_counter_ > 0) {  // in cooldown: bad epochs are not counted
    --cooldown_counter_;
    num_bad_epochs_ = 0;
  }
  if (num_bad_epochs_ > options_.patience()) {
    for (std::size_t g = 0; g < optimizer_.num_param_groups(); ++g) {
      const double old_lr = optimizer_.lr(g);
      const double new_lr = std::max(old_lr * options_.factor(), min_lrs_[g]);
      if (old_lr - new_lr > options_.eps()) optimizer_.set_lr(g, new_lr);
    }
    cooldown_counter_ = options_.cooldown();
    num_bad_epochs_ = 0;
  }
  for (std::size_t g = 0; g < optimizer_.num_param_groups(); ++g) last_lr_[g] = optimizer_.lr(g);
}

nn::StateDict ReduceLROnPlateau::state_dict() const {
  nn::StateDict out;
  out.insert("type", detail::type_tag("ReduceLROnPlateau"));
  out.insert("best", full({}, best_, kFloat64));
  out.insert("num_bad_epochs", full({}, double(num_bad_epochs_), kInt64));
  out.insert("cooldown_counter", full({}, double(cooldown_counter_), kInt64));
  out.insert("last_epoch", full({}, double(last_epoch_), kInt64));
  for (std::size_t g = 0; g < last_lr_.size(); ++g) out.insert("last_lr." + std::to_string(g), full({}, last_lr_[g], kFloat64));
  return out;
}

void ReduceLROnPlateau::load_state_dict(const nn::StateDict& state) {
  detail::check_type_tag(state, "ReduceLROnPlateau");
  auto scalar = [&](const std::string& key) {
    const Tensor* t = state.find(key);
    TG_CHECK(t != nullptr && t->numel() == 1, "ReduceLROnPlateau: the state has no scalar \"", key, "\"");
    return t->item();
  };
  // Counts must be whole numbers >= 0 (checked before any cast), rates finite, best not NaN.
  auto count = [&](const std::string& key) {
    const double v = scalar(key);
    TG_CHECK(v >= 0 && v < 9e15 && v == std::floor(v), "ReduceLROnPlateau: \"", key, "\" is ", v,
             " (must be a whole number >= 0)");
    return std::int64_t(v);
  };
  std::vector<double> last;
  for (std::size_t g = 0; g < last_lr_.size(); ++g) {
    last.push_back(scalar("last_lr." + std::to_string(g)));
    TG_CHECK(std::isfinite(last.back()), "ReduceLROnPlateau: \"last_lr.", g, "\" is ", last.back());
  }
  const double best = scalar("best");
  TG_CHECK(!std::isnan(best), "ReduceLROnPlateau: \"best\" is nan");
  const std::int64_t bad = count("num_bad_epochs"), cooldown = count("cooldown_counter"), epoch = count("last_epoch");
  last_epoch_ = epoch;
  best_ = best;
  num_bad_epochs_ = bad;
  cooldown_counter_ = cooldown;
  last_lr_ = last;
}

}  // namespace tg::optim
