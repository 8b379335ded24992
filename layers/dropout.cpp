#include "layers/dropout.hpp"

#include <ostream>
#include <string>

#include "core/ops/activation.hpp"

namespace tg::nn {

Dropout::Dropout(double p_in, Generator generator_in) : Module("Dropout"), p(p_in), generator(std::move(generator_in)) {
  TG_CHECK(p >= 0.0 && p <= 1.0, "Dropout: p must be in [0, 1], got ", p);
}

Tensor Dropout::forward(const Tensor& input) { return dropout(input, p, is_training(), generator); }

void Dropout::print_options(std::ostream& out) const { out << "p=" << p; }

template <int kDims>
DropoutNd<kDims>::DropoutNd(double p_in, Generator generator_in)
    : Module("Dropout" + std::to_string(kDims) + "d"), p(p_in), generator(std::move(generator_in)) {
  TG_CHECK(p >= 0.0 && p <= 1.0, type_name(), ": p must be in [0, 1], got ", p);
}

template <int kDims>
Tensor DropoutNd<kDims>::forward(const Tensor& input) {
  if constexpr (kDims == 1) return dropout1d(input, p, is_training(), generator);
  else if constexpr (kDims == 2) return dropout2d(input, p, is_training(), generator);
  else return dropout3d(input, p, is_training(), generator);
}

template <int kDims>
void DropoutNd<kDims>::print_options(std::ostream& out) const { out << "p=" << p; }

template class DropoutNd<1>;
template class DropoutNd<2>;
template class DropoutNd<3>;

}  // namespace tg::nn
