// Flatten (merges dims start_dim..end_dim, by default all but the batch dim) and Identity.
#pragma once

#include <cstdint>

#include "module.hpp"

namespace tg::nn {

class Flatten : public Module {
 public:
  explicit Flatten(std::int64_t start_dim = 1, std::int64_t end_dim = -1)
      : Module("Flatten"), start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<Flatten>(start_dim, end_dim); }
  const std::int64_t start_dim, end_dim;
};

class Identity : public Module {
 public:
  Identity() : Module("Identity") {}
  Tensor forward(const Tensor& input) override { return input; }
  std::shared_ptr<Module> fresh() const override { return std::make_shared<Identity>(); }
};

}  // namespace tg::nn
