// tg::nn::Module: the base of every layer and model.
//
// A module registers its parameters, buffers and submodules by name; everything generic
// (parameters(), named_parameters() with dotted keys, state_dict(), load_state_dict(), clone(),
// to(), zero_grad(), printing, train()/eval()/set_train()) works from that registry, so a layer
// only declares what it owns and how it computes.
//
// Layers hold their tensors as handles into the registry: registry changes (loading a checkpoint,
// to(dtype)) happen in place, so a layer's members always see them.
#pragma once

#include <iosfwd>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.hpp"

namespace tg::nn {

// Insertion-ordered name → value list; the state dict and the registry use it. Names are unique.
template <class V>
class OrderedDict {
 public:
  using Item = std::pair<std::string, V>;
  V& insert(std::string key, V value) {
    TG_CHECK(!contains(key), "OrderedDict: key \"", key, "\" is already present");
    items_.emplace_back(std::move(key), std::move(value));
    return items_.back().second;
  }
  const V* find(const std::string& key) const {
    for (const Item& item : items_)
      if (item.first == key) return &item.second;
    return nullptr;
  }
  V* find(const std::string& key) {
    return const_cast<V*>(static_cast<const OrderedDict&>(*this).find(key));
  }
  bool contains(const std::string& key) const { return find(key) != nullptr; }
  const V& at(const std::string& key) const {
    const V* value = find(key);
    TG_CHECK(value != nullptr, "OrderedDict: no key \"", key, "\"");
    return *value;
  }
  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    for (const Item& item : items_) out.push_back(item.first);
    return out;
  }
  std::size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }
  auto begin() { return items_.begin(); }
  auto end() { return items_.end(); }

 private:
  std::vector<Item> items_;
};

// Parameters and buffers by PyTorch's dotted key names.
using StateDict = OrderedDict<Tensor>;

// For one checkpoint holding several state dicts (model, optimizer, scheduler):
// with_prefix(model.state_dict(), "model.") and, on the way back, the entries under "model.".
StateDict with_prefix(const StateDict& state, const std::string& prefix);
StateDict under_prefix(const StateDict& state, const std::string& prefix);
// Appends every entry of `more` to `into` (names must not repeat).
void merge_into(StateDict& into, const StateDict& more);

class Module {
 public:
  virtual ~Module() = default;
  Module(const Module&) = delete;  // a copy would share tensors; use clone()
  Module& operator=(const Module&) = delete;
  Module(Module&&) = default;       // moving keeps members and registry consistent
  Module& operator=(Module&&) = default;

  // The computation. Layers with one input override this; the default names the module and
  // says it takes no single input.
  virtual Tensor forward(const Tensor& input);
  Tensor operator()(const Tensor& input) { return forward(input); }

  // ---- registry ----
  // Registers a parameter (a leaf; requires_grad as given) and returns the stored handle.
  Tensor& register_parameter(std::string name, Tensor tensor, bool requires_grad = true);
  Tensor& register_buffer(std::string name, Tensor tensor);
  template <class M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> module) {
    check_name(name, "module");
    children_.insert(std::move(name), module);
    return module;
  }

  std::vector<Tensor> parameters(bool recurse = true) const;
  OrderedDict<Tensor> named_parameters(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  OrderedDict<Tensor> named_buffers(bool recurse = true) const;
  std::vector<std::shared_ptr<Module>> children() const;
  const OrderedDict<std::shared_ptr<Module>>& named_children() const { return children_; }
  // This module and every descendant, depth first.
  std::vector<const Module*> modules() const;

  // ---- mode: never changes gradient recording (use NoGradGuard for that) ----
  Module& train(bool on = true);
  Module& eval() { return train(false); }
  Module& set_train(bool on = true) { return train(on); }  // MindSpore's name for train()
  bool is_training() const { return training_; }

  // ---- state ----
  void zero_grad();         // clears every parameter's gradient
  Module& to(DType dtype);  // parameters and floating buffers, in place
  StateDict state_dict() const;
  // Checks every name, shape and dtype first; on any problem throws one error listing the
  // missing, unexpected and mismatched keys and changes nothing. strict = false ignores missing
  // and unexpected keys (mismatches are still errors).
  void load_state_dict(const StateDict& state, bool strict = true);
  // A deep copy: same type, options, values, requires_grad flags and mode; no shared tensors.
  std::shared_ptr<Module> clone() const;

  // "Linear", "BatchNorm1d", ...
  const std::string& type_name() const { return type_name_; }
  // The options inside the parentheses when printed: "in_features=2, out_features=3, bias=true".
  virtual void print_options(std::ostream& out) const;

  // A new module of the same type and options with fresh tensors; clone() then copies the state
  // into it through the registry. Every layer overrides this with one line; a model class does
  // too (return std::make_shared<Net>();).
  virtual std::shared_ptr<Module> fresh() const;

 protected:
  explicit Module(std::string type_name) : type_name_(std::move(type_name)) {}

 private:
  void check_name(const std::string& name, const char* what) const;
  void collect(const std::string& prefix, bool recurse, bool buffers, OrderedDict<Tensor>& out) const;
  void copy_state_from(const Module& other);

  std::string type_name_;
  OrderedDict<Tensor> parameters_;
  OrderedDict<Tensor> buffers_;
  OrderedDict<std::shared_ptr<Module>> children_;
  bool training_ = true;
};

// Prints the module tree like PyTorch's repr.
std::ostream& operator<<(std::ostream& out, const Module& module);

}  // namespace tg::nn
