#include "layers/sequential.hpp"

namespace tg::nn {

void Sequential::push_back(std::shared_ptr<Module> module) {
  TG_CHECK(module != nullptr, type_name(), ": cannot add a null module");
  register_module(std::to_string(size()), std::move(module));
}

Tensor Sequential::forward(const Tensor& input) {
  Tensor x = input;
  for (const auto& item : named_children()) x = item.second->forward(x);
  return x;
}

std::shared_ptr<Module> Sequential::fresh() const {
  auto copy = std::make_shared<Sequential>();
  for (const auto& item : named_children()) copy->push_back(item.second->fresh());
  return copy;
}

std::shared_ptr<Module> Sequential::operator[](std::size_t index) const {
  TG_CHECK(index < size(), type_name(), ": index ", index, " is out of range for ", size(), " modules");
  return named_children().at(std::to_string(index));
}

}  // namespace tg::nn
