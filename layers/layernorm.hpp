// LayerNorm over the trailing normalized_shape dims, with an optional elementwise affine.
#pragma once

#include <cstdint>
#include <vector>

#include "module.hpp"

namespace tg::nn {

class LayerNormOptions {
 public:
  LayerNormOptions(std::vector<std::int64_t> normalized_shape) : normalized_shape_(std::move(normalized_shape)) {}
  LayerNormOptions& eps(double v) { eps_ = v; return *this; }
  LayerNormOptions& elementwise_affine(bool on) { elementwise_affine_ = on; return *this; }
  const std::vector<std::int64_t>& normalized_shape() const { return normalized_shape_; }
  double eps() const { return eps_; }
  bool elementwise_affine() const { return elementwise_affine_; }

 private:
  std::vector<std::int64_t> normalized_shape_;
  double eps_ = 1e-5;
  bool elementwise_affine_ = true;
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(const LayerNormOptions& options);
  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<LayerNorm>(options); }

  const LayerNormOptions options;
  Tensor weight;  // ones, shape normalized_shape (undefined without elementwise_affine)
  Tensor bias;    // zeros
};

}  // namespace tg::nn
