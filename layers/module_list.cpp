#include "layers/module_list.hpp"

namespace tg::nn {

Tensor ModuleList::forward(const Tensor&) {
  fail("ModuleList: has no forward(input), as PyTorch's; call its modules from your model's forward");
}

std::shared_ptr<Module> ModuleList::fresh() const {
  auto copy = std::make_shared<ModuleList>();
  for (const auto& item : named_children()) copy->push_back(item.second->fresh());
  return copy;
}

}  // namespace tg::nn
