#include "layers/module.hpp"
#include "core/xtensor.hpp"

#include <cstdlib>
#include <cxxabi.h>
#include <ostream>
#include <typeinfo>
#include <sstream>

#include "core/autograd.hpp"

namespace tg::nn {

StateDict with_prefix(const StateDict& state, const std::string& prefix) {
  StateDict out;
  for (const auto& [key, tensor] : state) out.insert(prefix + key, tensor);
  return out;
}

StateDict under_prefix(const StateDict& state, const std::string& prefix) {
  StateDict out;
  for (const auto& [key, tensor] : state)
    if (key.compare(0, prefix.size(), prefix) == 0) out.insert(key.substr(prefix.size()), tensor);
  return out;
}

void merge_into(StateDict& into, const StateDict& more) {
  for (const auto& [key, tensor] : more) into.insert(key, tensor);
}

Tensor Module::forward(const Tensor&) {
  fail(type_name(), ": this module has no forward(input)");
}

void Module::check_name(const std::string& name, const char* what) const {
  TG_CHECK(!name.empty() && name.find('.') == std::string::npos, type_name(), ": invalid ", what, " name \"", name,
           "\" (names are non-empty and have no '.')");
  TG_CHECK(!parameters_.contains(name) && !buffers_.contains(name) && !children_.contains(name), type_name(),
           ": the name \"", name, "\" is already registered");
}

Tensor& Module::register_parameter(std::string name, Tensor tensor, bool requires_grad) {
  check_name(name, "parameter");
  TG_CHECK(tensor.defined(), type_name(), ": parameter \"", name, "\" is undefined");
  // A parameter is always its own leaf, cut from whatever graph made its initial values.
  Tensor leaf = tensor.is_leaf() ? tensor : tensor.detach();
  leaf.set_requires_grad(requires_grad);
  return parameters_.insert(std::move(name), std::move(leaf));
}

Tensor& Module::register_buffer(std::string name, Tensor tensor) {
  check_name(name, "buffer");
  TG_CHECK(tensor.defined(), type_name(), ": buffer \"", name, "\" is undefined");
  // The handle itself is kept (so a layer's member and the registry are one tensor), unless it
  // is part of a graph or requires grad: a buffer is always a plain leaf.
  return buffers_.insert(std::move(name), tensor.is_leaf() && !tensor.requires_grad() ? tensor : tensor.detach());
}

void Module::collect(const std::string& prefix, bool recurse, bool buffers, OrderedDict<Tensor>& out) const {
  for (const auto& [name, tensor] : buffers ? buffers_ : parameters_) out.insert(prefix + name, tensor);
  if (!recurse) return;
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", true, buffers, out);
}

OrderedDict<Tensor> Module::named_parameters(bool recurse) const {
  OrderedDict<Tensor> out;
  collect("", recurse, false, out);
  return out;
}

OrderedDict<Tensor> Module::named_buffers(bool recurse) const {
  OrderedDict<Tensor> out;
  collect("", recurse, true, out);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (const auto& item : named_parameters(recurse)) out.push_back(item.second);
  return out;
}

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> out;
  for (const auto& item : named_buffers(recurse)) out.push_back(item.second);
  return out;
}

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> out;
  for (const auto& item : children_) out.push_back(item.second);
  return out;
}

std::vector<const Module*> Module::modules() const {
  std::vector<const Module*> out{this};
  for (const auto& item : children_)
    for (const Module* m : item.second->modules()) out.push_back(m);
  return out;
}

Module& Module::train(bool on) {
  training_ = on;
  for (auto& item : children_) item.second->train(on);
  return *this;
}

void Module::zero_grad() {
  for (Tensor& p : parameters()) p.set_grad(Tensor());
}

Module& Module::to(DType dtype) {
  TG_CHECK(is_floating(dtype), type_name(), ": to() takes a floating dtype, got ", dtype_name(dtype));
  // The storage inside each tensor is replaced, so every handle (a layer's members, an
  // optimizer's parameter list) sees the new dtype.
  auto convert = [dtype](const Tensor& t) {
    if (!is_floating(t.dtype()) || t.dtype() == dtype) return;
    t.impl()->storage = t.detach().to(dtype).impl()->storage;
    t.impl()->grad = nullptr;
  };
  for (const Tensor& p : parameters()) convert(p);
  for (const Tensor& b : buffers()) convert(b);
  return *this;
}

StateDict Module::state_dict() const {
  StateDict out;
  // PyTorch's order: each module's parameters, then its buffers, then its children.
  for (const auto& [name, tensor] : parameters_) out.insert(name, tensor);
  for (const auto& [name, tensor] : buffers_) out.insert(name, tensor);
  for (const auto& [name, child] : children_)
    for (const auto& [key, tensor] : child->state_dict()) out.insert(name + "." + key, tensor);
  return out;
}

void Module::load_state_dict(const StateDict& state, bool strict) {
  const StateDict own = state_dict();
  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [key, tensor] : own) {
    const Tensor* given = state.find(key);
    if (!given) {
      missing.push_back(key);
      continue;
    }
    if (given->shape() != tensor.shape() || given->dtype() != tensor.dtype())
      mismatched.push_back(key + ": expected " + dtype_name(tensor.dtype()) + " " + shape_str(tensor.shape()) +
                           ", got " + dtype_name(given->dtype()) + " " + shape_str(given->shape()));
  }
  for (const auto& item : state)
    if (!own.contains(item.first)) unexpected.push_back(item.first);
  if (!mismatched.empty() || (strict && (!missing.empty() || !unexpected.empty()))) {
    std::ostringstream message;
    message << type_name() << ": error loading state_dict:";
    if (strict && !missing.empty()) message << " missing keys " << detail::concat(missing) << ";";
    if (strict && !unexpected.empty()) message << " unexpected keys " << detail::concat(unexpected) << ";";
    if (!mismatched.empty()) message << " mismatched keys " << detail::concat(mismatched) << ";";
    throw Error(message.str());
  }
  // Everything checked: copy the values into the existing tensors.
  NoGradGuard no_grad;
  for (const auto& [key, tensor] : own) {
    const Tensor* given = state.find(key);
    if (!given) continue;
    Tensor target = tensor;
    dispatch_all(target.dtype(), [&]<class T>() { target.values_mut<T>() = given->values<T>(); });
  }
}

std::shared_ptr<Module> Module::fresh() const {
  if (factory_) return factory_();
  fail(type_name(), ": clone() cannot rebuild this module by itself: use tg::nn::clone(module), which builds a ",
       type_name(), " with its default constructor (or give the class a fresh() that builds it with its options)");
}

const std::string& Module::type_name() const {
  if (type_name_.empty()) {  // a model of your own: its C++ class name, without namespaces
    int status = 0;
    char* demangled = abi::__cxa_demangle(typeid(*this).name(), nullptr, nullptr, &status);
    std::string name = status == 0 && demangled ? demangled : typeid(*this).name();
    std::free(demangled);
    const std::size_t template_start = name.find('<');
    const std::size_t colon = name.rfind("::", template_start);
    type_name_ = colon == std::string::npos ? name : name.substr(colon + 2);
  }
  return type_name_;
}

void Module::copy_state_from(const Module& other) {
  NoGradGuard no_grad;
  auto copy_all = [](OrderedDict<Tensor>& to, const OrderedDict<Tensor>& from, const std::string& owner) {
    for (auto& [name, tensor] : to) {
      const Tensor* source = from.find(name);
      TG_CHECK(source != nullptr, owner, ": clone() found no \"", name, "\" in the original");
      // A submodule rebuilt with its default constructor must come out the same shape; a floating
      // dtype may differ (the original was moved by to(), the copy takes its storage and dtype).
      const bool same_dtype = source->dtype() == tensor.dtype() || (is_floating(source->dtype()) && is_floating(tensor.dtype()));
      TG_CHECK(source->shape() == tensor.shape() && same_dtype, owner, ": clone() rebuilt \"",
               name, "\" as ", dtype_name(tensor.dtype()), " ", shape_str(tensor.shape()), " but the original is ",
               dtype_name(source->dtype()), " ", shape_str(source->shape()), " (give ", owner,
               " a fresh() that builds it with its options)");
      tensor.impl()->storage = source->clone().impl()->storage;
      tensor.impl()->requires_grad = source->requires_grad();
    }
  };
  copy_all(parameters_, other.parameters_, type_name());
  copy_all(buffers_, other.buffers_, type_name());
  training_ = other.training_;
  for (auto& [name, child] : children_) {
    const std::shared_ptr<Module>* source = other.children_.find(name);
    TG_CHECK(source != nullptr, type_name(), ": clone() found no child \"", name, "\" in the original");
    child->copy_state_from(**source);
  }
}

std::shared_ptr<Module> Module::clone() const {
  std::shared_ptr<Module> copy = fresh();
  copy->copy_state_from(*this);
  return copy;
}

void Module::print_options(std::ostream&) const {}

namespace {

void print_tree(std::ostream& out, const Module& module, const std::string& indent) {
  out << module.type_name() << '(';
  module.print_options(out);
  if (module.named_children().empty()) {
    out << ')';
    return;
  }
  out << '\n';
  for (const auto& [name, child] : module.named_children()) {
    out << indent << "  (" << name << "): ";
    print_tree(out, *child, indent + "  ");
    out << '\n';
  }
  out << indent << ')';
}

}  // namespace

std::ostream& operator<<(std::ostream& out, const Module& module) {
  print_tree(out, module, "");
  return out;
}

}  // namespace tg::nn
