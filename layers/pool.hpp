// Pooling layers with PyTorch's names and options: MaxPool1d/2d, AvgPool1d/2d,
// AdaptiveAvgPool1d/2d, AdaptiveMaxPool1d/2d, over the ops in core/ops/conv.cpp. The stride defaults to the kernel size.
//
//   tg::nn::MaxPool2d pool(2);                                   // 2x2 windows, stride 2
//   tg::nn::AvgPool1d pool(tg::nn::AvgPool1dOptions(3).stride(1).padding(1));
//   tg::nn::AvgPool2d sum_pool(tg::nn::AvgPool2dOptions(2).divisor_override(1));  // window sums
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <utility>

#include "../core/ops/conv.hpp"
#include "module.hpp"

namespace tg::nn {

template <std::size_t D>
class PoolOptions {
 public:
  using Sizes = std::array<std::int64_t, D>;
  PoolOptions(Sizes kernel_size) : kernel_size_(kernel_size) {}                // NOLINT: implicit, as PyTorch's
  PoolOptions(std::int64_t kernel_size) : kernel_size_(filled(kernel_size)) {}  // NOLINT
  PoolOptions& stride(Sizes v) { stride_ = v; return *this; }
  PoolOptions& stride(std::int64_t v) { return stride(filled(v)); }
  PoolOptions& padding(Sizes v) { padding_ = v; return *this; }
  PoolOptions& padding(std::int64_t v) { return padding(filled(v)); }
  PoolOptions& dilation(Sizes v) { dilation_ = v; return *this; }  // max pooling only
  PoolOptions& dilation(std::int64_t v) { return dilation(filled(v)); }
  PoolOptions& ceil_mode(bool on) { ceil_mode_ = on; return *this; }
  PoolOptions& count_include_pad(bool on) { count_include_pad_ = on; return *this; }  // average pooling only
  PoolOptions& divisor_override(std::int64_t v) { divisor_override_ = v; return *this; }  // AvgPool2d only

  const Sizes& kernel_size() const { return kernel_size_; }
  Sizes stride() const { return stride_.value_or(kernel_size_); }
  const Sizes& padding() const { return padding_; }
  const Sizes& dilation() const { return dilation_; }
  bool ceil_mode() const { return ceil_mode_; }
  bool count_include_pad() const { return count_include_pad_; }
  std::optional<std::int64_t> divisor_override() const { return divisor_override_; }

 private:
  static Sizes filled(std::int64_t v) {
    Sizes sizes;
    sizes.fill(v);
    return sizes;
  }
  Sizes kernel_size_;
  std::optional<Sizes> stride_;
  Sizes padding_ = filled(0), dilation_ = filled(1);
  bool ceil_mode_ = false, count_include_pad_ = true;
  std::optional<std::int64_t> divisor_override_;
};

using MaxPool1dOptions = PoolOptions<1>;
using MaxPool2dOptions = PoolOptions<2>;
using AvgPool1dOptions = PoolOptions<1>;
using AvgPool2dOptions = PoolOptions<2>;

enum class PoolKind { Max, Avg };

// D = 1: (N, C, L) or (C, L); D = 2: (N, C, H, W) or (C, H, W).
template <PoolKind Kind, std::size_t D>
class Pool : public Module {
 public:
  explicit Pool(const PoolOptions<D>& options);
  Tensor forward(const Tensor& input) override;
  // MaxPool2d: the output and, as PyTorch's return_indices, each window's maximum as a flat index
  // into its (H, W) plane (int64; libtorch's forward_with_indices).
  std::pair<Tensor, Tensor> forward_with_indices(const Tensor& input)
    requires(Kind == PoolKind::Max && D == 2);
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<Pool>(options); }
  const PoolOptions<D> options;

 private:
  Pool2dParams params() const;  // the options as the 2-D op's (a 1-D pool has height 1)
};

using MaxPool1d = Pool<PoolKind::Max, 1>;
using MaxPool2d = Pool<PoolKind::Max, 2>;
using AvgPool1d = Pool<PoolKind::Avg, 1>;
using AvgPool2d = Pool<PoolKind::Avg, 2>;

// Averages (or maxima: the first maximum, or the last NaN, as PyTorch's) over PyTorch's adaptive
// windows to a fixed output size.
template <PoolKind Kind, std::size_t D>
class AdaptivePool : public Module {
 public:
  explicit AdaptivePool(std::array<std::int64_t, D> output_size);
  explicit AdaptivePool(std::int64_t output_size);
  Tensor forward(const Tensor& input) override;
  // AdaptiveMaxPool2d: the output and each window's maximum as a flat index into its (H, W) plane.
  std::pair<Tensor, Tensor> forward_with_indices(const Tensor& input)
    requires(Kind == PoolKind::Max && D == 2);
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<AdaptivePool>(output_size); }
  const std::array<std::int64_t, D> output_size;
};

using AdaptiveAvgPool1d = AdaptivePool<PoolKind::Avg, 1>;
using AdaptiveAvgPool2d = AdaptivePool<PoolKind::Avg, 2>;
using AdaptiveMaxPool1d = AdaptivePool<PoolKind::Max, 1>;
using AdaptiveMaxPool2d = AdaptivePool<PoolKind::Max, 2>;

}  // namespace tg::nn
