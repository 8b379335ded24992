// Conv1d and Conv2d: PyTorch's options, defaults, parameter names (weight, bias) and
// initialisation, over tg::conv1d / tg::conv2d (core/ops/conv.cpp).
//
//   tg::nn::Conv2d conv(tg::nn::Conv2dOptions(1, 32, 3).padding(1));
//   tg::nn::Conv1d conv(tg::nn::Conv1dOptions(8, 16, 5).padding(tg::nn::Padding::Same).bias(false));
//   tg::nn::Conv2d conv(tg::nn::Conv2dOptions(3, 8, 3).padding(1).padding_mode(tg::nn::PaddingMode::Reflect));
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "module.hpp"

namespace tg::nn {

// PyTorch's padding strings: "valid" is no padding; "same" pads so that the output has the
// input's size (stride 1 only; an even total goes half on each side, an odd one puts the extra
// value at the end, as PyTorch does).
enum class Padding { Valid, Same };

// What the padding holds, PyTorch's padding_mode: zeros, or the input reflected, replicated or
// wrapped around (tg::pad's modes; the convolution then runs without padding).
enum class PaddingMode { Zeros, Reflect, Replicate, Circular };

// The options of a D-dimensional convolution; sizes are given as one number for every dim or one
// per dim, as PyTorch's ExpandingArray.
template <std::size_t D>
class ConvOptions {
 public:
  using Sizes = std::array<std::int64_t, D>;
  ConvOptions(std::int64_t in_channels, std::int64_t out_channels, Sizes kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  ConvOptions(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size)
      : ConvOptions(in_channels, out_channels, filled(kernel_size)) {}

  ConvOptions& stride(Sizes v) { stride_ = v; return *this; }
  ConvOptions& stride(std::int64_t v) { return stride(filled(v)); }
  ConvOptions& padding(Sizes v) { padding_ = v; padding_string_.reset(); return *this; }
  ConvOptions& padding(std::int64_t v) { return padding(filled(v)); }
  ConvOptions& padding(Padding mode) { padding_string_ = mode; return *this; }
  ConvOptions& padding_mode(PaddingMode mode) { padding_mode_ = mode; return *this; }
  ConvOptions& dilation(Sizes v) { dilation_ = v; return *this; }
  ConvOptions& dilation(std::int64_t v) { return dilation(filled(v)); }
  ConvOptions& groups(std::int64_t v) { groups_ = v; return *this; }
  ConvOptions& bias(bool on) { bias_ = on; return *this; }

  std::int64_t in_channels() const { return in_channels_; }
  std::int64_t out_channels() const { return out_channels_; }
  const Sizes& kernel_size() const { return kernel_size_; }
  const Sizes& stride() const { return stride_; }
  const Sizes& padding() const { return padding_; }
  std::optional<Padding> padding_string() const { return padding_string_; }  // "valid" or "same", if set
  PaddingMode padding_mode() const { return padding_mode_; }
  const Sizes& dilation() const { return dilation_; }
  std::int64_t groups() const { return groups_; }
  bool bias() const { return bias_; }

 private:
  static Sizes filled(std::int64_t v) {
    Sizes sizes;
    sizes.fill(v);
    return sizes;
  }
  std::int64_t in_channels_, out_channels_;
  Sizes kernel_size_;
  Sizes stride_ = filled(1), padding_ = filled(0), dilation_ = filled(1);
  std::optional<Padding> padding_string_;
  PaddingMode padding_mode_ = PaddingMode::Zeros;
  std::int64_t groups_ = 1;
  bool bias_ = true;
};

using Conv1dOptions = ConvOptions<1>;
using Conv2dOptions = ConvOptions<2>;

// One class for both: D = 1 takes (N, C, L) or (C, L); D = 2 takes (N, C, H, W) or (C, H, W).
template <std::size_t D>
class Conv : public Module {
 public:
  // PyTorch's initialisation: weight and bias from U(-1/√fan_in, 1/√fan_in), fan_in = in_channels /
  // groups · prod(kernel_size).
  explicit Conv(const ConvOptions<D>& options);
  Conv(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size)
      : Conv(ConvOptions<D>(in_channels, out_channels, kernel_size)) {}

  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<Conv>(options); }

  const ConvOptions<D> options;
  Tensor weight;  // (out_channels, in_channels / groups, *kernel_size)
  Tensor bias;    // (out_channels), undefined without bias
};

using Conv1d = Conv<1>;
using Conv2d = Conv<2>;

}  // namespace tg::nn
