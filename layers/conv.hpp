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

#include "../core/error.hpp"
#include "module.hpp"

namespace tg::nn {

// PyTorch's padding strings: "valid" is no padding; "same" pads so that the output has the
// input's size (stride 1 only; an even total goes half on each side, an odd one puts the extra
// value at the end, as PyTorch does).
enum class Padding { Valid, Same };

// What the padding holds, PyTorch's padding_mode: zeros, or the input reflected, replicated or
// wrapped around (tg::pad's modes; the convolution then runs without padding).
enum class PaddingMode { Zeros, Reflect, Replicate, Circular };

// The options every convolution has (Conv and ConvTranspose), PyTorch's names; sizes are given as
// one number for every dim or one per dim, as PyTorch's ExpandingArray. Self is the options class
// itself, so that the setters chain.
template <std::size_t D, class Self>
class ConvSizes {
 public:
  using Sizes = std::array<std::int64_t, D>;
  ConvSizes(std::int64_t in_channels, std::int64_t out_channels, Sizes kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}

  Self& stride(Sizes v) { stride_ = v; return self(); }
  Self& stride(std::int64_t v) { return stride(filled(v)); }
  Self& padding(Sizes v) { padding_ = v; return self(); }
  Self& padding(std::int64_t v) { return padding(filled(v)); }
  Self& dilation(Sizes v) { dilation_ = v; return self(); }
  Self& dilation(std::int64_t v) { return dilation(filled(v)); }
  Self& groups(std::int64_t v) { groups_ = v; return self(); }
  Self& bias(bool on) { bias_ = on; return self(); }

  std::int64_t in_channels() const { return in_channels_; }
  std::int64_t out_channels() const { return out_channels_; }
  const Sizes& kernel_size() const { return kernel_size_; }
  const Sizes& stride() const { return stride_; }
  const Sizes& padding() const { return padding_; }
  const Sizes& dilation() const { return dilation_; }
  std::int64_t groups() const { return groups_; }
  bool bias() const { return bias_; }

  static Sizes filled(std::int64_t v) {
    Sizes sizes;
    sizes.fill(v);
    return sizes;
  }

  // The checks both layers make, their errors prefixed by `name`: positive channels divisible by
  // groups, positive kernel sizes, strides and dilations.
  void check(const char* name) const {
    TG_CHECK(in_channels_ > 0 && out_channels_ > 0, name, ": in_channels and out_channels must be positive, got ",
             in_channels_, " and ", out_channels_);
    TG_CHECK(groups_ > 0 && in_channels_ % groups_ == 0 && out_channels_ % groups_ == 0, name, ": in_channels (",
             in_channels_, ") and out_channels (", out_channels_, ") must be divisible by groups (", groups_, ")");
    for (std::size_t d = 0; d < D; ++d)
      TG_CHECK(kernel_size_[d] > 0 && stride_[d] > 0 && dilation_[d] > 0, name,
               ": kernel_size, stride and dilation must be positive, got kernel_size ", kernel_size_[d], ", stride ",
               stride_[d], ", dilation ", dilation_[d]);
  }

 private:
  Self& self() { return static_cast<Self&>(*this); }
  std::int64_t in_channels_, out_channels_;
  Sizes kernel_size_;
  Sizes stride_ = filled(1), padding_ = filled(0), dilation_ = filled(1);
  std::int64_t groups_ = 1;
  bool bias_ = true;
};

namespace detail {
// What Conv and ConvTranspose share: the input check ((N, C, *) or (C, *) with `dims` spatial dims
// and in_channels channels, errors prefixed by `name`), and PyTorch's initialisation of weight and
// bias from U(-1/√fan_in, 1/√fan_in), fan_in = the product of the weight's dims after the first.
void check_conv_input(const char* name, std::size_t dims, const Tensor& input, std::int64_t in_channels);
void init_conv(Tensor& weight, Tensor& bias);
}  // namespace detail

// A convolution's options: ConvSizes, and padding as PyTorch's strings and its padding_mode.
template <std::size_t D>
class ConvOptions : public ConvSizes<D, ConvOptions<D>> {
  using Base = ConvSizes<D, ConvOptions<D>>;

 public:
  using typename Base::Sizes;
  ConvOptions(std::int64_t in_channels, std::int64_t out_channels, Sizes kernel_size)
      : Base(in_channels, out_channels, kernel_size) {}
  ConvOptions(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size)
      : Base(in_channels, out_channels, Base::filled(kernel_size)) {}

  using Base::padding;
  ConvOptions& padding(Sizes v) { padding_string_.reset(); return Base::padding(v); }
  ConvOptions& padding(std::int64_t v) { return padding(Base::filled(v)); }
  ConvOptions& padding(Padding mode) { padding_string_ = mode; return *this; }
  ConvOptions& padding_mode(PaddingMode mode) { padding_mode_ = mode; return *this; }

  std::optional<Padding> padding_string() const { return padding_string_; }  // "valid" or "same", if set
  PaddingMode padding_mode() const { return padding_mode_; }

 private:
  std::optional<Padding> padding_string_;
  PaddingMode padding_mode_ = PaddingMode::Zeros;
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
