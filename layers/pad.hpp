// Padding layers with PyTorch's names: ZeroPad1d/2d/3d, ConstantPad1d/2d/3d (with a value),
// ReflectionPad1d/2d/3d, ReplicationPad1d/2d/3d and CircularPad1d/2d/3d, over tg::pad
// (core/ops/pad.cpp). The padding is one number for every side or (left, right) pairs from the
// last dim backwards, as PyTorch's: (left, right, top, bottom) in 2-D.
//
//   tg::nn::ReflectionPad2d pad(1);                   // (N, C, H, W) -> (N, C, H + 2, W + 2)
//   tg::nn::ConstantPad1d pad({2, 0}, -1.0);          // two -1s before each row
#pragma once

#include <array>
#include <cstdint>

#include "../core/ops/pad.hpp"
#include "module.hpp"

namespace tg::nn {

enum class PadKind { Zero, Constant, Reflection, Replication, Circular };

// D padded dims. The constant kinds take any input with at least D dims (F.pad's rule); the others
// an unbatched (D + 1 dims) or batched (D + 2) one.
template <PadKind Kind, std::size_t D>
class Pad : public Module {
 public:
  using Sizes = std::array<std::int64_t, 2 * D>;
  explicit Pad(Sizes padding) requires(Kind != PadKind::Constant) : Pad(padding, 0.0, 0) {}
  explicit Pad(std::int64_t padding) requires(Kind != PadKind::Constant) : Pad(filled(padding), 0.0, 0) {}
  Pad(Sizes padding, double value) requires(Kind == PadKind::Constant) : Pad(padding, value, 0) {}
  Pad(std::int64_t padding, double value) requires(Kind == PadKind::Constant) : Pad(filled(padding), value, 0) {}

  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::shared_ptr<Pad>(new Pad(padding, value, 0)); }

  const Sizes padding;
  const double value;  // ConstantPad's; 0 for the others

 private:
  Pad(Sizes padding, double value, int);
  static Sizes filled(std::int64_t v) {
    Sizes sizes;
    sizes.fill(v);
    return sizes;
  }
};

using ZeroPad1d = Pad<PadKind::Zero, 1>;
using ZeroPad2d = Pad<PadKind::Zero, 2>;
using ZeroPad3d = Pad<PadKind::Zero, 3>;
using ConstantPad1d = Pad<PadKind::Constant, 1>;
using ConstantPad2d = Pad<PadKind::Constant, 2>;
using ConstantPad3d = Pad<PadKind::Constant, 3>;
using ReflectionPad1d = Pad<PadKind::Reflection, 1>;
using ReflectionPad2d = Pad<PadKind::Reflection, 2>;
using ReflectionPad3d = Pad<PadKind::Reflection, 3>;
using ReplicationPad1d = Pad<PadKind::Replication, 1>;
using ReplicationPad2d = Pad<PadKind::Replication, 2>;
using ReplicationPad3d = Pad<PadKind::Replication, 3>;
using CircularPad1d = Pad<PadKind::Circular, 1>;
using CircularPad2d = Pad<PadKind::Circular, 2>;
using CircularPad3d = Pad<PadKind::Circular, 3>;

}  // namespace tg::nn
