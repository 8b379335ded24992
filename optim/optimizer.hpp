// tg::optim::Optimizer: parameter groups, step(), zero_grad(), and a state_dict that covers the
// options of every group and the per-parameter state (momentum buffers, moment estimates, steps).
//
// A concrete optimizer (sgd.hpp, adam.hpp, ...) derives from Optimizer<Options> and writes only
// its update rule for one parameter.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/autograd.hpp"
#include "core/creation.hpp"
#include "core/parallel.hpp"
#include "layers/module.hpp"

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

// Options are saved as named numbers; this finds one, or throws naming the optimizer.
double option_value(const std::vector<std::pair<std::string, double>>& values, const std::string& name,
                    const char* optimizer);

// What schedulers and generic code see of any optimizer.
class OptimizerBase {
 public:
  virtual ~OptimizerBase() = default;
  virtual void step() = 0;
  void zero_grad();  // sets every parameter's gradient to undefined (PyTorch's set_to_none)

  std::size_t num_param_groups() const { return group_params_.size(); }
  const std::vector<Tensor>& params(std::size_t group) const { return group_params_.at(group); }
  virtual double lr(std::size_t group) const = 0;
  virtual void set_lr(std::size_t group, double lr) = 0;

  // Options as float64 scalars "param_groups.<g>.<name>", state as "state.<i>.step" (int64) and
  // "state.<i>.<buffer>", where i counts parameters across groups in order, as in PyTorch.
  nn::StateDict state_dict() const;
  // Checks the group and parameter counts, names, shapes and dtypes first; throws and changes
  // nothing on a mismatch.
  void load_state_dict(const nn::StateDict& state);

 protected:
  explicit OptimizerBase(std::string name) : name_(std::move(name)) {}
  void add_params(std::vector<Tensor> params);
  virtual std::vector<std::pair<std::string, double>> group_options(std::size_t group) const = 0;
  virtual void set_group_options(std::size_t group, const std::vector<std::pair<std::string, double>>& values) = 0;
  // The per-parameter buffers this optimizer keeps, for checking a loaded state.
  virtual bool known_buffer(const std::string& name) const = 0;

  std::string name_;
  std::vector<std::vector<Tensor>> group_params_;
  std::vector<ParamState> state_;  // one per parameter, across groups in order
};

// A group of parameters with its own options (say, no weight decay for biases).
template <class Options>
struct ParamGroup {
  std::vector<Tensor> params;
  Options options;
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
        update(param, grad, state, groups_[g]);
      }
  }

  void add_param_group(std::vector<Tensor> params, const Options& options) {
    options.validate();
    groups_.push_back(options);
    add_params(std::move(params));
  }
  const Options& options(std::size_t group) const { return groups_.at(group); }
  Options& options(std::size_t group) { return groups_.at(group); }
  double lr(std::size_t group) const override { return groups_.at(group).lr(); }
  void set_lr(std::size_t group, double lr) override { groups_.at(group).lr(lr); }

 protected:
  Optimizer(std::string name, std::vector<ParamGroup<Options>> groups) : OptimizerBase(std::move(name)) {
    for (auto& group : groups) add_param_group(std::move(group.params), group.options);
  }
  virtual void update(Tensor& param, const Tensor& grad, ParamState& state, const Options& options) = 0;

  std::vector<std::pair<std::string, double>> group_options(std::size_t group) const override {
    return groups_.at(group).values();
  }
  void set_group_options(std::size_t group, const std::vector<std::pair<std::string, double>>& values) override {
    Options updated = groups_.at(group);
    updated.set_values(values);
    updated.validate();
    groups_.at(group) = updated;
  }

 private:
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

// PyTorch's lerp: a + w·(b - a), computed from the nearer end so it is exact at w = 0 and 1.
template <class T>
T lerp(T a, T b, T w) {
  return w < T(0.5) ? a + w * (b - a) : b - (b - a) * (T(1) - w);
}

// Runs body(begin, end) over the n values of a parameter, split over TBB when it is large. Every
// update is elementwise, so the split never changes the bits.
template <class Body>
void for_each_value(std::size_t n, Body&& body) {
  parallel::for_range(n, parallel::kGrain / 4, std::forward<Body>(body));
}

}  // namespace tg::optim
