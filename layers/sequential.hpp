// Sequential: runs its children in order. Children are named "0", "1", ... like PyTorch's, so
// state_dict keys match ("0.weight", "1.running_mean").
//
//   tg::nn::Sequential model(tg::nn::Linear(2, 16), tg::nn::ReLU(), tg::nn::Linear(16, 1));
//   model.push_back(std::make_shared<tg::nn::Sigmoid>());
#pragma once

#include <memory>
#include <string>
#include <type_traits>

#include "module.hpp"

namespace tg::nn {

class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  // Layers by value (moved into shared ownership) or as std::shared_ptr.
  template <class... Modules>
    requires(sizeof...(Modules) > 0 && (!std::is_same_v<std::decay_t<Modules>, Sequential> && ...))
  explicit Sequential(Modules&&... modules) : Module("Sequential") {
    (push_back(std::forward<Modules>(modules)), ...);
  }

  void push_back(std::shared_ptr<Module> module);
  template <class M>
    requires std::is_base_of_v<Module, std::decay_t<M>>
  void push_back(M&& module) {
    auto owned = std::make_shared<std::decay_t<M>>(std::forward<M>(module));
    remember_factory(*owned);
    push_back(std::shared_ptr<Module>(std::move(owned)));
  }

  Tensor forward(const Tensor& input) override;
  std::shared_ptr<Module> fresh() const override;

  std::size_t size() const { return named_children().size(); }
  std::shared_ptr<Module> operator[](std::size_t index) const;
  // The child at index as its own type: model.at<Linear>(0)->weight.
  template <class M>
  std::shared_ptr<M> at(std::size_t index) const {
    auto typed = std::dynamic_pointer_cast<M>((*this)[index]);
    TG_CHECK(typed != nullptr, type_name(), ": child ", index, " is a ", (*this)[index]->type_name(),
             ", not the requested type");
    return typed;
  }
  auto begin() const { return named_children().begin(); }
  auto end() const { return named_children().end(); }

 protected:
  struct Kind {  // another name for the same list (ModuleList)
    std::string name;
  };
  explicit Sequential(Kind kind) : Module(std::move(kind.name)) {}
};

}  // namespace tg::nn
