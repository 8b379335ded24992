// ConvTranspose1d and ConvTranspose2d: PyTorch's options, defaults, parameter names (weight, bias),
// initialisation and printing, over tg::conv_transpose1d / tg::conv_transpose2d (core/ops/conv.cpp).
//
//   tg::nn::ConvTranspose2d up(tg::nn::ConvTranspose2dOptions(64, 32, 4).stride(2).padding(1));  // 2× larger
//   tg::Tensor y = up(x);                              // (N, 64, H, W) -> (N, 32, 2H, 2W)
//   tg::nn::ConvTranspose2d up3(tg::nn::ConvTranspose2dOptions(8, 8, 3).stride(2).padding(1));
//   tg::Tensor z = up3.forward(x, {2 * h, 2 * w});    // output_size picks the output_padding
//
// padding_mode is not offered: PyTorch accepts only zeros for a transposed convolution.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "conv.hpp"
#include "module.hpp"

namespace tg::nn {

// ConvSizes (layers/conv.hpp) and output_padding.
template <std::size_t D>
class ConvTransposeOptions : public ConvSizes<D, ConvTransposeOptions<D>> {
  using Base = ConvSizes<D, ConvTransposeOptions<D>>;

 public:
  using typename Base::Sizes;
  ConvTransposeOptions(std::int64_t in_channels, std::int64_t out_channels, Sizes kernel_size)
      : Base(in_channels, out_channels, kernel_size) {}
  ConvTransposeOptions(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size)
      : Base(in_channels, out_channels, Base::filled(kernel_size)) {}

  ConvTransposeOptions& output_padding(Sizes v) { output_padding_ = v; return *this; }
  ConvTransposeOptions& output_padding(std::int64_t v) { return output_padding(Base::filled(v)); }
  const Sizes& output_padding() const { return output_padding_; }

 private:
  Sizes output_padding_ = Base::filled(0);
};

using ConvTranspose1dOptions = ConvTransposeOptions<1>;
using ConvTranspose2dOptions = ConvTransposeOptions<2>;

// D = 1 takes (N, C, L) or (C, L); D = 2 takes (N, C, H, W) or (C, H, W). Each output dim is
// (in - 1)·stride - 2·padding + dilation·(kernel - 1) + output_padding + 1.
template <std::size_t D>
class ConvTranspose : public Module {
 public:
  // PyTorch's initialisation: weight and bias from U(-1/√fan_in, 1/√fan_in) with fan_in =
  // out_channels / groups · prod(kernel_size) (the weight's dim 1, as PyTorch computes it).
  explicit ConvTranspose(const ConvTransposeOptions<D>& options);
  ConvTranspose(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size)
      : ConvTranspose(ConvTransposeOptions<D>(in_channels, out_channels, kernel_size)) {}

  Tensor forward(const Tensor& input) override;
  // PyTorch's forward(input, output_size): the output's spatial size (D values, or the whole shape
  // with its batch and channel dims), which must lie in [smallest, smallest + stride - 1]; it
  // replaces the options' output_padding by the difference.
  Tensor forward(const Tensor& input, const std::vector<std::int64_t>& output_size);
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<ConvTranspose>(options); }

  const ConvTransposeOptions<D> options;
  Tensor weight;  // (in_channels, out_channels / groups, *kernel_size)
  Tensor bias;    // (out_channels), undefined without bias

 private:
  Tensor run(const Tensor& input, const std::array<std::int64_t, D>& output_padding);
};

using ConvTranspose1d = ConvTranspose<1>;
using ConvTranspose2d = ConvTranspose<2>;

}  // namespace tg::nn
