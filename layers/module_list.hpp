// ModuleList: submodules in a list, as PyTorch's nn.ModuleList, for a model that calls them itself
// (a loop over blocks in its own forward). Children are named "0", "1", ..., so state_dict keys
// match PyTorch's ("layers.0.weight"). It is a Sequential without a forward: push_back, [], at<T>(i),
// size and iteration (pairs of name and module) are Sequential's.
//
//   struct Net : tg::nn::Module {
//     tg::nn::ModuleList& blocks = register_module("blocks", tg::nn::ModuleList());
//     Net() { for (int i = 0; i < 4; ++i) blocks.push_back(tg::nn::Linear(16, 16)); }
//     tg::Tensor forward(const tg::Tensor& x) override {
//       tg::Tensor h = x;
//       for (const auto& [name, block] : blocks) h = tg::relu(block->forward(h)) + h;
//       return h;
//     }
//   };
#pragma once

#include <memory>
#include <type_traits>

#include "sequential.hpp"

namespace tg::nn {

class ModuleList : public Sequential {
 public:
  ModuleList() : Sequential(Kind{"ModuleList"}) {}
  template <class... Modules>
    requires(sizeof...(Modules) > 0 && (!std::is_same_v<std::decay_t<Modules>, ModuleList> && ...))
  explicit ModuleList(Modules&&... modules) : ModuleList() {
    (push_back(std::forward<Modules>(modules)), ...);
  }

  // None, as PyTorch's: a ModuleList is called module by module.
  Tensor forward(const Tensor& input) override;
  std::shared_ptr<Module> fresh() const override;
};

}  // namespace tg::nn
