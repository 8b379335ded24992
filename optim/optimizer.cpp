#include "optim/optimizer.hpp"

#include <map>

#include "core/creation.hpp"

namespace tg::optim {

double option_value(const std::vector<std::pair<std::string, double>>& values, const std::string& name,
                    const char* optimizer) {
  for (const auto& [key, value] : values)
    if (key == name) return value;
  fail(optimizer, ": the state has no option \"", name, "\"");
}

void OptimizerBase::zero_grad() {
  for (auto& group : group_params_)
    for (Tensor& p : group) p.set_grad(Tensor());
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
  for (std::size_t g = 0; g < group_params_.size(); ++g)
    for (const auto& [name, value] : group_options(g))
      out.insert("param_groups." + std::to_string(g) + "." + name, full({}, value, kFloat64));
  for (std::size_t i = 0; i < state_.size(); ++i) {
    const std::string prefix = "state." + std::to_string(i) + ".";
    out.insert(prefix + "step", full({}, double(state_[i].step), kInt64));
    for (const auto& [name, buffer] : state_[i].buffers) out.insert(prefix + name, buffer.clone());
  }
  return out;
}

void OptimizerBase::load_state_dict(const nn::StateDict& state) {
  // Parse and check everything into new values first.
  std::vector<std::vector<std::pair<std::string, double>>> options(group_params_.size());
  std::vector<ParamState> loaded(state_.size());
  for (const auto& [key, tensor] : state) {
    const std::size_t first = key.find('.'), second = key.find('.', first + 1);
    TG_CHECK(first != std::string::npos && second != std::string::npos, name_, ": unexpected state key \"", key, "\"");
    const std::string kind = key.substr(0, first), name = key.substr(second + 1);
    std::size_t index = 0;
    try {
      index = std::stoul(key.substr(first + 1, second - first - 1));
    } catch (const std::exception&) {
      fail(name_, ": unexpected state key \"", key, "\"");
    }
    if (kind == "param_groups") {
      TG_CHECK(index < group_params_.size(), name_, ": the state has parameter group ", index, " but the optimizer has ",
               group_params_.size());
      TG_CHECK(tensor.numel() == 1, name_, ": option \"", key, "\" must be a scalar");
      options[index].emplace_back(name, tensor.item());
    } else if (kind == "state") {
      TG_CHECK(index < state_.size(), name_, ": the state has parameter ", index, " but the optimizer has ",
               state_.size());
      if (name == "step") {
        TG_CHECK(tensor.numel() == 1, name_, ": \"", key, "\" must be a scalar");
        loaded[index].step = std::int64_t(tensor.item());
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
      loaded[index].buffers.insert(name, tensor.clone());
    } else {
      fail(name_, ": unexpected state key \"", key, "\"");
    }
  }
  for (std::size_t g = 0; g < group_params_.size(); ++g)
    TG_CHECK(!options[g].empty(), name_, ": the state has no options for parameter group ", g);
  // Options are validated (set_group_options throws before assigning); then everything is applied.
  const std::vector<std::vector<std::pair<std::string, double>>> previous = [&] {
    std::vector<std::vector<std::pair<std::string, double>>> p;
    for (std::size_t g = 0; g < group_params_.size(); ++g) p.push_back(group_options(g));
    return p;
  }();
  try {
    for (std::size_t g = 0; g < group_params_.size(); ++g) set_group_options(g, options[g]);
  } catch (...) {
    for (std::size_t g = 0; g < group_params_.size(); ++g) set_group_options(g, previous[g]);
    throw;
  }
  state_ = std::move(loaded);
}

}  // namespace tg::optim
