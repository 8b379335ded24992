// Dropout: zeroes each element with probability p in training mode and scales the rest by
// 1/(1-p) (inverted dropout); the identity in eval mode. Dropout1d/2d/3d zero whole channels
// instead (tg::dropout1d/2d/3d: (N, C, L), (N, C, H, W), (N, C, D, H, W), or unbatched). Masks come from the global generator, or
// from the one given (a handle: the layer and its clones draw from that stream).
#pragma once

#include "../core/random.hpp"
#include "module.hpp"

namespace tg::nn {

class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, Generator generator = default_generator());
  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<Dropout>(p, generator); }
  const double p;
  Generator generator;
};

// Channel dropout: kDims = 1, 2 or 3 spatial dims.
template <int kDims>
class DropoutNd : public Module {
 public:
  explicit DropoutNd(double p = 0.5, Generator generator = default_generator());
  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<DropoutNd>(p, generator); }
  const double p;
  Generator generator;
};
using Dropout1d = DropoutNd<1>;
using Dropout2d = DropoutNd<2>;
using Dropout3d = DropoutNd<3>;

}  // namespace tg::nn
