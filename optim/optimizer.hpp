// tg::optim::Optimizer: parameter groups, step(), zero_grad(), and a state_dict that covers the
// options of every group and the per-parameter state (momentum buffers, moment estimates, steps).
//
// A concrete optimizer (sgd.hpp, adam.hpp, ...) derives from Optimizer<Options> and writes only
// its update rule for one parameter.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/autograd.hpp"
#include "../core/creation.hpp"
#include "../core/parallel.hpp"
#include "../layers/module.hpp"
#include "options.hpp"

namespace tg::optim {

// The per-parameter state an optimizer keeps between steps, by name ("momentum_buffer",
// "exp_avg", ...), plus PyTorch's step count.
struct ParamState {
  std::int64_t step = 0;
  nn::OrderedDict<Tensor> buffers;
  // The buffer called name, created the first time as a copy of `initial`...
  Tensor& buffer(const std::string& name, const Tensor& initial) {
    if (Tensor* existing = buffers.find(name)) return *existing;
    return buffers.insert(name, initial.detach().clone());
  }
  // ...or filled with `value`, shaped like `like`.
  Tensor& buffer(const std::string& name, const Tensor& like, double value) {
    if (Tensor* existing = buffers.find(name)) return *existing;
    return buffers.insert(name, full_like(like, value));
  }
};

// What schedulers and generic code see of any optimizer.
class OptimizerBase {
 public:
  virtual ~OptimizerBase() = default;
  virtual void step() = 0;
  void zero_grad();  // sets every parameter's gradient to undefined (PyTorch's set_to_none)
  const std::string& name() const { return name_; }

  std::size_t num_param_groups() const { return group_params_.size(); }
  const std::vector<Tensor>& params(std::size_t group) const { return group_params_.at(group); }
  virtual double lr(std::size_t group) const = 0;
  virtual void set_lr(std::size_t group, double lr) = 0;
  // The momentum a scheduler may cycle (OneCycleLR): "momentum", or beta1 of "betas"; nullopt
  // when the optimizer has neither.
  virtual std::optional<double> momentum(std::size_t group) const = 0;
  virtual void set_momentum(std::size_t group, double momentum) = 0;

  // Numbers schedulers keep in a parameter group, as PyTorch's schedulers add keys to the group
  // dict: "initial_lr" (every scheduler), "max_lr", "min_lr", "max_momentum", "base_momentum"
  // (OneCycleLR). They are saved with the optimizer.
  std::optional<double> group_value(std::size_t group, const std::string& key) const;
  void set_group_value(std::size_t group, const std::string& key, double value);

  // PyTorch's optimizer state_dict, flattened into tensors so that a PyTorch state converts key by
  // key: "param_groups.<g>.<option>" (float64; two values for betas, bools 0/1),
  // "param_groups.<g>.params" (int64 parameter indices), the scheduler keys above, and
  // "state.<i>.step" (int64) and "state.<i>.<buffer>" for every parameter i that has state, where
  // i counts parameters across groups in order. Loading also takes a float "step" and ignores
  // PyTorch-only flags (foreach, capturable, differentiable, fused).
  nn::StateDict state_dict() const;
  // Checks everything (group and parameter counts, names, shapes, dtypes, values) first; throws
  // and changes nothing on a mismatch.
  void load_state_dict(const nn::StateDict& state);

 protected:
  explicit OptimizerBase(std::string name) : name_(std::move(name)) {}
  void add_params(std::vector<Tensor> params);
  virtual OptionValues group_options(std::size_t group) const = 0;
  // Checks and sets every option of a group at once (all must be given).
  virtual void set_group_options(std::size_t group, const OptionValues& values) = 0;
  virtual bool known_option(const std::string& name) const = 0;
  // The per-parameter buffers this optimizer keeps, for checking a loaded state.
  virtual bool known_buffer(const std::string& name) const = 0;

  std::string name_;
  std::vector<std::vector<Tensor>> group_params_;
  std::vector<std::vector<std::pair<std::string, double>>> group_values_;  // see group_value()
  std::vector<ParamState> state_;  // one per parameter, across groups in order
};

// A group of parameters and how its options differ from the optimizer's defaults, as PyTorch's
// {"params": ..., "lr": 0.01}:
//   SGD({{fc1.parameters()}, {fc2.parameters(), [](SGDOptions& o) { o.lr(0.01); }}}, SGDOptions(0.1))
template <class Options>
struct ParamGroup {
  ParamGroup(std::vector<Tensor> params, std::function<void(Options&)> overrides = {})  // NOLINT: braces
      : params(std::move(params)), overrides(std::move(overrides)) {}
  std::vector<Tensor> params;
  std::function<void(Options&)> overrides;
};

template <class Options>
class Optimizer : public OptimizerBase {
 public:
  // Runs update(param, grad, state, options) for every parameter that has a gradient, with
  // recording off. Parameters without a gradient are skipped and keep their state.
  void step() override {
    NoGradGuard no_grad;
    std::size_t index = 0;
    for (std::size_t g = 0; g < groups_.size(); ++g)
      for (Tensor& param : group_params_[g]) {
        ParamState& state = state_[index++];
        const Tensor grad = param.grad();
        if (!grad.defined()) continue;
        check_state(param, grad, state, index - 1);
        update(param, grad, state, groups_[g]);
      }
  }

  // A new group with the defaults, changed by `overrides`.
  void add_param_group(std::vector<Tensor> params, const std::function<void(Options&)>& overrides = {}) {
    Options options = defaults_;
    if (overrides) overrides(options);
    options.validate();
    groups_.push_back(options);
    group_values_.emplace_back();
    add_params(std::move(params));
  }
  const Options& defaults() const { return defaults_; }
  const Options& options(std::size_t group) const { return groups_.at(group); }
  Options& options(std::size_t group) { return groups_.at(group); }
  double lr(std::size_t group) const override { return groups_.at(group).lr(); }
  void set_lr(std::size_t group, double lr) override { groups_.at(group).lr(lr); }
  std::optional<double> momentum(std::size_t group) const override {
    for (const auto& [name, value] : option_values(groups_.at(group)))
      if (name == "betas" || name == "momentum") return value[0];
    return std::nullopt;
  }
  void set_momentum(std::size_t group, double momentum) override {
    Options& o = groups_.at(group);
    if constexpr (requires { o.betas(); })
      o.betas({momentum, o.betas().second});
    else if constexpr (requires { o.momentum(); })
      o.momentum(momentum);
    else
      fail(name_, ": has no momentum to set");
  }

 protected:
  Optimizer(std::string name, std::vector<ParamGroup<Options>> groups, const Options& defaults)
      : OptimizerBase(std::move(name)), defaults_(defaults) {
    defaults_.validate();
    for (auto& group : groups) add_param_group(std::move(group.params), group.overrides);
  }
  virtual void update(Tensor& param, const Tensor& grad, ParamState& state, const Options& options) = 0;

  OptionValues group_options(std::size_t group) const override { return option_values(groups_.at(group)); }
  void set_group_options(std::size_t group, const OptionValues& values) override {
    Options updated = groups_.at(group);
    for (const auto& [name, value] : option_values(updated)) {
      bool given = false;
      for (const auto& [key, v] : values)
        if (key == name) {
          set_option_value(updated, key, v, name_.c_str());
          given = true;
        }
      TG_CHECK(given, name_, ": the state has no option \"", name, "\" for parameter group ", group);
    }
    updated.validate();
    groups_.at(group) = updated;
  }
  bool known_option(const std::string& name) const override { return has_option<Options>(name); }

 private:
  // The gradient and every state buffer must match the parameter (a model converted with to()
  // after the optimizer made its state would not).
  void check_state(const Tensor& param, const Tensor& grad, const ParamState& state, std::size_t index) const {
    TG_CHECK(grad.dtype() == param.dtype() && grad.shape() == param.shape(), name_, ": the gradient of parameter ",
             index, " is ", dtype_name(grad.dtype()), " ", shape_str(grad.shape()), " but the parameter is ",
             dtype_name(param.dtype()), " ", shape_str(param.shape()));
    for (const auto& [buffer, value] : state.buffers)
      TG_CHECK(value.dtype() == param.dtype() && value.shape() == param.shape(), name_, ": state \"", buffer,
               "\" of parameter ", index, " is ", dtype_name(value.dtype()), " ", shape_str(value.shape()),
               " but the parameter is ", dtype_name(param.dtype()), " ", shape_str(param.shape()),
               " (convert the model with to() before creating the optimizer)");
  }
  Options defaults_;
  std::vector<Options> groups_;
};

// Calls f(flags...) with each runtime bool turned into std::true_type or std::false_type, so an
// update loop is compiled once per combination with no branch per element (and vectorises).
template <class F>
void with_flags(F&& f) {
  f();
}
template <class F, class... Rest>
void with_flags(F&& f, bool first, Rest... rest) {
  if (first)
    with_flags([&](auto... flags) { f(std::true_type{}, flags...); }, rest...);
  else
    with_flags([&](auto... flags) { f(std::false_type{}, flags...); }, rest...);
}

// The gradient an update uses: negated under maximize, then plus wd·p with one rounding, as
// PyTorch's grad.add(param, alpha=wd).
template <bool maximize, bool decay, class T>
T step_gradient(T g, T p, T wd) {
  if constexpr (maximize) g = -g;
  if constexpr (decay) g = std::fma(wd, p, g);
  return g;
}

// PyTorch's lerp: a + w·(b - a), computed from the nearer end so it is exact at w = 0 and 1.
template <class T>
T lerp(T a, T b, T w) {
  return w < T(0.5) ? a + w * (b - a) : b - (b - a) * (T(1) - w);
}

// Runs body(begin, end) over the n values of a parameter, split over TBB when it is large: in
// tasks of kGrain / 4 values for the updates with a square root or a division per value (Adam,
// RMSprop, Adagrad), of kGrain for SGD's few multiply-adds, which two tasks of 5,000 values made
// slower (optim/SGD on 100 x 100: 1.7 us at one thread, 2.5 at two). Every update is
// elementwise, so the split never changes the bits.
template <class Body>
void for_each_value(std::size_t n, Body&& body, std::size_t grain = parallel::kGrain / 4) {
  parallel::for_range(n, grain, std::forward<Body>(body));
}

}  // namespace tg::optim
