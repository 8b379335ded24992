// CosineSimilarity and PairwiseDistance: two-input layers over tg::cosine_similarity and
// tg::pairwise_distance (core/ops/distance.hpp), with PyTorch's options and defaults.
#pragma once

#include <cstdint>

#include "module.hpp"

namespace tg::nn {

class CosineSimilarity : public Module {
 public:
  explicit CosineSimilarity(std::int64_t dim = 1, double eps = 1e-8);
  Tensor forward(const Tensor& x1, const Tensor& x2);
  using Module::forward;  // (the one-input form throws: it takes two)
  Tensor operator()(const Tensor& x1, const Tensor& x2) { return forward(x1, x2); }
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<CosineSimilarity>(dim, eps); }
  const std::int64_t dim;
  const double eps;
};

class PairwiseDistance : public Module {
 public:
  explicit PairwiseDistance(double p = 2.0, double eps = 1e-6, bool keepdim = false);
  Tensor forward(const Tensor& x1, const Tensor& x2);
  using Module::forward;
  Tensor operator()(const Tensor& x1, const Tensor& x2) { return forward(x1, x2); }
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<PairwiseDistance>(p, eps, keepdim); }
  const double p, eps;
  const bool keepdim;
};

}  // namespace tg::nn
