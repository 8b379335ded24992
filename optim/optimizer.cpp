#include "optim/optimizer.hpp"
#include "core/xtensor.hpp"

#include <cmath>

#include "core/creation.hpp"

namespace tg::optim {

namespace {

// Keys of PyTorch parameter groups that schedulers add, and flags that only PyTorch has.
bool scheduler_key(const std::string& key) {
  return key == "initial_lr" || key == "max_lr" || key == "min_lr" || key == "max_momentum" || key == "base_momentum";
}
bool pytorch_only_flag(const std::string& key) {
  return key == "foreach" || key == "capturable" || key == "differentiable" || key == "fused";
}

}  // namespace

void OptimizerBase::zero_grad() {
  for (auto& group : group_params_)
    for (Tensor& p : group) p.set_grad(Tensor());
}

std::optional<double> OptimizerBase::group_value(std::size_t group, const std::string& key) const {
  for (const auto& [name, value] : group_values_.at(group))
    if (name == key) return value;
  return std::nullopt;
}

void OptimizerBase::set_group_value(std::size_t group, const std::string& key, double value) {
  TG_CHECK(scheduler_key(key), name_, ": \"", key, "\" is not a scheduler key of a parameter group");
  for (auto& [name, existing] : group_values_.at(group))
    if (name == key) {
      existing = value;
      return;
    }
  group_values_.at(group).emplace_back(key, value);
}

void OptimizerBase::add_params(std::vector<Tensor> params) {
  TG_CHECK(!params.empty(), name_, ": a parameter group needs at least one parameter");
  for (std::size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    TG_CHECK(p.defined() && p.is_leaf() && p.requires_grad(), name_,
             ": can only optimize leaf tensors that require grad");
    for (std::size_t j = 0; j < i; ++j)
      TG_CHECK(!params[j].same(p), name_, ": a parameter appears in more than one group");
    for (const auto& group : group_params_)
      for (const Tensor& q : group)
        TG_CHECK(!q.same(p), name_, ": a parameter appears in more than one group");
  }
  state_.resize(state_.size() + params.size());
  group_params_.push_back(std::move(params));
}

nn::StateDict OptimizerBase::state_dict() const {
  nn::StateDict out;
  std::int64_t first_param = 0;
  for (std::size_t g = 0; g < group_params_.size(); ++g) {
    const std::string prefix = "param_groups." + std::to_string(g) + ".";
    for (const auto& [name, value] : group_options(g)) {
      out.insert(prefix + name, value.size() == 1 ? full({}, value[0], kFloat64) : Tensor(value, {value.size()}));
    }
    for (const auto& [name, value] : group_values_[g]) out.insert(prefix + name, full({}, value, kFloat64));
    std::vector<std::int64_t> indices(group_params_[g].size());
    for (std::size_t i = 0; i < indices.size(); ++i) indices[i] = first_param + std::int64_t(i);
    out.insert(prefix + "params", Tensor(indices, {indices.size()}));
    first_param += std::int64_t(indices.size());
  }
  for (std::size_t i = 0; i < state_.size(); ++i) {
    if (state_[i].step == 0 && state_[i].buffers.size() == 0) continue;  // never stepped: no state, as PyTorch
    const std::string prefix = "state." + std::to_string(i) + ".";
    out.insert(prefix + "step", full({}, double(state_[i].step), kInt64));
    for (const auto& [name, buffer] : state_[i].buffers) out.insert(prefix + name, buffer.clone());
  }
  return out;
}

void OptimizerBase::load_state_dict(const nn::StateDict& state) {
  // Parse and check everything into new values first.
  const std::size_t groups = group_params_.size();
  std::vector<OptionValues> options(groups);
  std::vector<std::vector<std::pair<std::string, double>>> values(groups);
  std::vector<ParamState> loaded(state_.size());
  std::vector<std::size_t> group_first(groups, 0);
  for (std::size_t g = 1; g < groups; ++g) group_first[g] = group_first[g - 1] + group_params_[g - 1].size();
  for (const auto& [key, tensor] : state) {
    const std::size_t first = key.find('.'), second = key.find('.', first + 1);
    TG_CHECK(first != std::string::npos && second != std::string::npos, name_, ": unexpected state key \"", key, "\"");
    const std::string kind = key.substr(0, first), name = key.substr(second + 1);
    const std::string number = key.substr(first + 1, second - first - 1);
    TG_CHECK(!number.empty() && number.size() < 10 && number.find_first_not_of("0123456789") == std::string::npos,
             name_, ": unexpected state key \"", key, "\"");
    const std::size_t index = std::stoul(number);
    TG_CHECK(is_floating(tensor.dtype()) || tensor.dtype() == kInt64, name_, ": \"", key, "\" has dtype ",
             dtype_name(tensor.dtype()));
    if (kind == "param_groups") {
      TG_CHECK(index < groups, name_, ": the state has parameter group ", index, " but the optimizer has ", groups);
      if (pytorch_only_flag(name)) continue;
      const Tensor as_double = tensor.to(kFloat64);
      const auto& v = as_double.values<double>();
      if (name == "params") {
        TG_CHECK(tensor.numel() == group_params_[index].size(), name_, ": parameter group ", index, " has ",
                 tensor.numel(), " parameters in the state but ", group_params_[index].size(), " in the optimizer");
        for (std::size_t i = 0; i < tensor.numel(); ++i)
          TG_CHECK(v.data()[i] == double(group_first[index] + i), name_, ": \"", key,
                   "\" does not list the parameters in order (entry ", i, " is ", v.data()[i], ")");
        continue;
      }
      for (double x : v) TG_CHECK(std::isfinite(x), name_, ": option \"", key, "\" is ", x, " (must be finite)");
      if (scheduler_key(name)) {
        TG_CHECK(tensor.numel() == 1, name_, ": \"", key, "\" must be a scalar");
        values[index].emplace_back(name, v.data()[0]);
        continue;
      }
      TG_CHECK(known_option(name), name_, ": unexpected state key \"", key, "\" (", name_, " has no option \"", name,
               "\")");
      options[index].emplace_back(name, OptionValue(v.begin(), v.end()));
    } else if (kind == "state") {
      TG_CHECK(index < state_.size(), name_, ": the state has parameter ", index, " but the optimizer has ",
               state_.size());
      if (name == "step") {
        TG_CHECK(tensor.numel() == 1, name_, ": \"", key, "\" must be a scalar");
        const double step = tensor.item();
        TG_CHECK(std::isfinite(step) && step >= 0 && step < 9e15 && step == std::floor(step), name_, ": \"", key,
                 "\" is ", step, " (must be a whole number >= 0)");
        loaded[index].step = std::int64_t(step);
        continue;
      }
      TG_CHECK(known_buffer(name), name_, ": unexpected state key \"", key, "\"");
      // Which parameter is index? Its buffers must match it.
      std::size_t g = 0, offset = index;
      while (offset >= group_params_[g].size()) offset -= group_params_[g++].size();
      const Tensor& param = group_params_[g][offset];
      TG_CHECK(tensor.shape() == param.shape() && tensor.dtype() == param.dtype(), name_, ": \"", key, "\" is ",
               dtype_name(tensor.dtype()), " ", shape_str(tensor.shape()), " but its parameter is ",
               dtype_name(param.dtype()), " ", shape_str(param.shape()));
      loaded[index].buffers.insert(name, tensor.detach().clone());
    } else {
      fail(name_, ": unexpected state key \"", key, "\"");
    }
  }
  // Options are checked and set group by group; on any error the previous options come back.
  std::vector<OptionValues> previous;
  for (std::size_t g = 0; g < groups; ++g) previous.push_back(group_options(g));
  try {
    for (std::size_t g = 0; g < groups; ++g) set_group_options(g, options[g]);
  } catch (...) {
    for (std::size_t g = 0; g < groups; ++g) set_group_options(g, previous[g]);
    throw;
  }
  group_values_ = std::move(values);
  state_ = std::move(loaded);
}

}  // namespace tg::optim
