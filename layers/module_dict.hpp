// ModuleDict: submodules by name, in insertion order, as PyTorch's nn.ModuleDict, for a model that
// picks among them itself (a head per task, a branch per input kind). The names become the
// state_dict keys ("heads.digits.weight"); inserting an existing name replaces that module in
// place (its position is kept, as in PyTorch).
//
//   tg::nn::ModuleDict& heads = register_module("heads", tg::nn::ModuleDict());
//   heads.insert("digits", tg::nn::Linear(64, 10));
//   heads.insert("parity", tg::nn::Linear(64, 2));
//   tg::Tensor logits = (*heads["digits"])(features);
#pragma once

#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "module.hpp"

namespace tg::nn {

class ModuleDict : public Module {
 public:
  ModuleDict() : Module("ModuleDict") {}

  void insert(const std::string& name, std::shared_ptr<Module> module);
  template <class M>
    requires std::is_base_of_v<Module, std::decay_t<M>>
  void insert(const std::string& name, M&& module) {
    auto owned = std::make_shared<std::decay_t<M>>(std::forward<M>(module));
    remember_factory(*owned);
    insert(name, std::shared_ptr<Module>(std::move(owned)));
  }

  std::size_t size() const { return named_children().size(); }
  bool contains(const std::string& name) const { return named_children().find(name) != nullptr; }
  std::vector<std::string> keys() const;
  std::shared_ptr<Module> operator[](const std::string& name) const;
  // The module named `name` as its own type: heads.at<Linear>("digits")->weight.
  template <class M>
  std::shared_ptr<M> at(const std::string& name) const {
    auto typed = std::dynamic_pointer_cast<M>((*this)[name]);
    TG_CHECK(typed != nullptr, "ModuleDict: \"", name, "\" is a ", (*this)[name]->type_name(),
             ", not the requested type");
    return typed;
  }
  auto begin() const { return named_children().begin(); }  // pairs of name and module
  auto end() const { return named_children().end(); }

  // None, as PyTorch's: a ModuleDict's modules are called by name.
  Tensor forward(const Tensor& input) override;
  std::shared_ptr<Module> fresh() const override;
};

}  // namespace tg::nn
