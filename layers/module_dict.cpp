#include "layers/module_dict.hpp"

namespace tg::nn {

void ModuleDict::insert(const std::string& name, std::shared_ptr<Module> module) {
  TG_CHECK(module != nullptr, "ModuleDict: module \"", name, "\" is null");
  if (std::shared_ptr<Module>* existing = children_.find(name)) {
    *existing = std::move(module);  // replaced where it stands, as PyTorch's ModuleDict[name] = module
    return;
  }
  register_module(name, std::move(module));
}

std::vector<std::string> ModuleDict::keys() const { return named_children().keys(); }

std::shared_ptr<Module> ModuleDict::operator[](const std::string& name) const {
  const std::shared_ptr<Module>* found = named_children().find(name);
  TG_CHECK(found != nullptr, "ModuleDict: no module named \"", name, "\" (it has ", size(), ": ",
           [&] {
             std::string names;
             for (const std::string& key : keys()) names += (names.empty() ? "" : ", ") + key;
             return names;
           }(), ")");
  return *found;
}

Tensor ModuleDict::forward(const Tensor&) {
  fail("ModuleDict: has no forward(input), as PyTorch's; call its modules by name from your model's forward");
}

std::shared_ptr<Module> ModuleDict::fresh() const {
  auto copy = std::make_shared<ModuleDict>();
  for (const auto& [name, module] : named_children()) copy->insert(name, module->fresh());
  return copy;
}

}  // namespace tg::nn
