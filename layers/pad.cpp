// The padding layers: the layer's rank checked, then tg::pad.
#include "layers/pad.hpp"

#include <ostream>
#include <string>

namespace tg::nn {

namespace {

template <PadKind Kind, std::size_t D>
std::string pad_name() {
  const char* kind = Kind == PadKind::Zero         ? "Zero"
                     : Kind == PadKind::Constant   ? "Constant"
                     : Kind == PadKind::Reflection ? "Reflection"
                     : Kind == PadKind::Replication ? "Replication"
                                                    : "Circular";
  return std::string(kind) + "Pad" + std::to_string(D) + "d";
}

template <PadKind Kind>
constexpr PadMode mode_of() {
  if constexpr (Kind == PadKind::Reflection) return PadMode::Reflect;
  else if constexpr (Kind == PadKind::Replication) return PadMode::Replicate;
  else if constexpr (Kind == PadKind::Circular) return PadMode::Circular;
  else return PadMode::Constant;
}

}  // namespace

template <PadKind Kind, std::size_t D>
Pad<Kind, D>::Pad(Sizes padding_in, double value_in, int) : Module(pad_name<Kind, D>()), padding(padding_in), value(value_in) {}

template <PadKind Kind, std::size_t D>
Tensor Pad<Kind, D>::forward(const Tensor& input) {
  const std::string& name = type_name();
  if constexpr (mode_of<Kind>() == PadMode::Constant) {
    TG_CHECK(input.dim() >= D, name, ": expected an input with at least ", D, " dims, got ", shape_str(input.shape()));
    return pad(input, {padding.begin(), padding.end()}, PadMode::Constant, value);
  } else {
    TG_CHECK(input.dim() == D + 1 || input.dim() == D + 2, name, ": expected a ", D + 1, "-D (unbatched) or ", D + 2,
             "-D (batched) input, got ", shape_str(input.shape()));
    return pad(input, {padding.begin(), padding.end()}, mode_of<Kind>());
  }
}

// As PyTorch's: ReflectionPad2d((1, 1, 2, 0)), ConstantPad1d(padding=(2, 0), value=-1).
template <PadKind Kind, std::size_t D>
void Pad<Kind, D>::print_options(std::ostream& out) const {
  if (Kind == PadKind::Constant) out << "padding=";
  out << '(';
  for (std::size_t i = 0; i < padding.size(); ++i) out << (i ? ", " : "") << padding[i];
  out << ')';
  if (Kind == PadKind::Constant) out << ", value=" << value;
}

template class Pad<PadKind::Zero, 1>;
template class Pad<PadKind::Zero, 2>;
template class Pad<PadKind::Zero, 3>;
template class Pad<PadKind::Constant, 1>;
template class Pad<PadKind::Constant, 2>;
template class Pad<PadKind::Constant, 3>;
template class Pad<PadKind::Reflection, 1>;
template class Pad<PadKind::Reflection, 2>;
template class Pad<PadKind::Reflection, 3>;
template class Pad<PadKind::Replication, 1>;
template class Pad<PadKind::Replication, 2>;
template class Pad<PadKind::Replication, 3>;
template class Pad<PadKind::Circular, 1>;
template class Pad<PadKind::Circular, 2>;
template class Pad<PadKind::Circular, 3>;

}  // namespace tg::nn
