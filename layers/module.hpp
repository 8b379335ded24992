// tg::nn::Module: the base of every layer and model.
//
// A module registers its parameters, buffers and submodules by name; everything generic
// (parameters(), named_parameters() with dotted keys, state_dict(), load_state_dict(), clone(),
// to(), zero_grad(), printing, train()/eval()/set_train()) works from that registry, so a layer
// only declares what it owns and how it computes.
//
// Layers hold their tensors as handles into the registry: registry changes (loading a checkpoint,
// to(dtype)) happen in place, so a layer's members always see them.
//
// A model of your own needs nothing the built-in layers do not:
//
//   struct Net : tg::nn::Module {
//     tg::nn::Linear& fc1 = register_module("fc1", tg::nn::Linear(4, 8));
//     tg::nn::Linear& fc2 = register_module("fc2", tg::nn::Linear(8, 2));
//     tg::Tensor forward(const tg::Tensor& x) override { return fc2(tg::relu(fc1(x))); }
//   };
//   Net net;  auto copy = tg::nn::clone(net);  std::cout << net;  tg::save(net, "net.safetensors");
//
// Its printed name comes from its C++ type. A module with several inputs or outputs declares its
// own forward (any signature) and is called as net.forward(a, b).
#pragma once

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../core/tensor.hpp"

namespace tg::nn {

// Insertion-ordered name → value list; the state dict and the registry use it. Names are unique;
// a hash index makes insert and find constant time, so building a state dict is linear.
template <class V>
class OrderedDict {
 public:
  using Item = std::pair<std::string, V>;
  V& insert(std::string key, V value) {
    TG_CHECK(!contains(key), "OrderedDict: key \"", key, "\" is already present");
    index_.emplace(key, items_.size());
    items_.emplace_back(std::move(key), std::move(value));
    return items_.back().second;
  }
  const V* find(const std::string& key) const {
    const auto found = index_.find(key);
    return found == index_.end() ? nullptr : &items_[found->second].second;
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
  std::unordered_map<std::string, std::size_t> index_;
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
    TG_CHECK(module != nullptr, type_name(), ": module \"", name, "\" is null");
    remember_factory(*module);
    children_.insert(std::move(name), module);
    return module;
  }
  // A submodule by value, owned by the registry; the reference stays valid as long as this module
  // lives (moving this module keeps it): `Linear& fc1 = register_module("fc1", Linear(4, 8));`.
  template <class M>
    requires std::is_base_of_v<Module, std::decay_t<M>>
  std::decay_t<M>& register_module(std::string name, M&& module) {
    return *register_module(std::move(name), std::make_shared<std::decay_t<M>>(std::forward<M>(module)));
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

  // "Linear", "BatchNorm1d", ..., or the C++ class name of a model of your own ("Net").
  const std::string& type_name() const;
  // The options inside the parentheses when printed: "in_features=2, out_features=3, bias=true".
  virtual void print_options(std::ostream& out) const;

  // A new module of the same type and options with fresh tensors; clone() then copies the state
  // into it through the registry. Built-in layers override it (their options are constructor
  // arguments). A model of your own needs nothing: as a submodule (register_module, Sequential)
  // it is rebuilt with its default constructor, and tg::nn::clone(model) does the same for the
  // top-level model, or fails to compile when the type has neither a default constructor nor
  // its own fresh().
  virtual std::shared_ptr<Module> fresh() const;

 protected:
  Module() = default;  // the type name is then the C++ class name
  explicit Module(std::string type_name) : type_name_(std::move(type_name)) {}
  void set_type_name(std::string name) { type_name_ = std::move(name); }  // a layer that changes kind

 private:
  template <class M>
  friend std::shared_ptr<M> clone(const M& module);
  friend class Sequential;
  friend class ModuleDict;

  // How a submodule of type M is rebuilt for clone(): with its default constructor, unless M
  // declares fresh() itself.
  template <class M>
  static void remember_factory(M& module) {
    if constexpr (!std::is_same_v<decltype(&M::fresh), std::shared_ptr<Module> (M::*)() const> &&
                  std::is_default_constructible_v<M>)
      module.factory_ = [] { return std::shared_ptr<Module>(std::make_shared<M>()); };
  }
  void check_name(const std::string& name, const char* what) const;
  void collect(const std::string& prefix, bool recurse, bool buffers, OrderedDict<Tensor>& out) const;
  void copy_state_from(const Module& other);

  mutable std::string type_name_;
  std::function<std::shared_ptr<Module>()> factory_;
  OrderedDict<Tensor> parameters_;
  OrderedDict<Tensor> buffers_;
  OrderedDict<std::shared_ptr<Module>> children_;
  bool training_ = true;
};

// Prints the module tree like PyTorch's repr.
std::ostream& operator<<(std::ostream& out, const Module& module);

// A deep copy of any module as its own type: same options, values, requires_grad flags and mode,
// no shared tensors. A type with its own fresh() is rebuilt by it; any other must be default
// constructible, which is checked at compile time.
template <class M>
std::shared_ptr<M> clone(const M& module) {
  static_assert(std::is_base_of_v<Module, M>, "tg::nn::clone takes a module");
  constexpr bool own_fresh = std::is_same_v<decltype(&M::fresh), std::shared_ptr<Module> (M::*)() const>;
  static_assert(own_fresh || std::is_default_constructible_v<M>,
                "tg::nn::clone: this module type needs a default constructor, or its own fresh() that builds it "
                "with the same options");
  std::shared_ptr<M> copy;
  if constexpr (own_fresh) {
    copy = std::dynamic_pointer_cast<M>(module.fresh());
    TG_CHECK(copy != nullptr, module.type_name(), ": fresh() returned another type");
  } else {
    copy = std::make_shared<M>();
  }
  copy->copy_state_from(module);
  return copy;
}

}  // namespace tg::nn
