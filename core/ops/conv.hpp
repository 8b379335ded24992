// Convolution and pooling over 1-D and 2-D spatial dims, PyTorch's semantics (cross-correlation,
// zero padding, NCHW / NCL layouts).
#pragma once

#include <array>
#include <utility>
#include <cstdint>
#include <optional>

#include "../tensor.hpp"

namespace tg {

// Sizes of a 2-D window op, as (height, width) pairs.
struct Conv2dParams {
  std::array<std::int64_t, 2> stride{1, 1};
  std::array<std::int64_t, 2> padding{0, 0};
  std::array<std::int64_t, 2> dilation{1, 1};
  std::int64_t groups = 1;
  // Zeros added after the end of each dim on top of `padding` (an odd "same" padding).
  std::array<std::int64_t, 2> extra_end{0, 0};
};

// input (N, C, H, W), weight (O, C / groups, kH, kW), bias (O) or undefined → (N, O, Ho, Wo) with
// Ho = (H + 2·pad - dilation·(kH - 1) - 1) / stride + 1. im2col + GEMM per sample and group.
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(), const Conv2dParams& params = {});
// input (N, C, L), weight (O, C / groups, k): conv2d over (N, C, 1, L).
Tensor conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(), std::int64_t stride = 1,
              std::int64_t padding = 0, std::int64_t dilation = 1, std::int64_t groups = 1);

// The transposed convolution (PyTorch's conv_transpose2d, the gradient of conv2d with respect to
// its input): input (N, C, H, W) or (C, H, W), weight (C, O / groups, kH, kW), bias (O) or
// undefined → (N, O, Ho, Wo), Ho = (H - 1)·stride - 2·padding + dilation·(kH - 1) + output_padding + 1.
// output_padding (< stride or < dilation) adds rows and columns at the bottom and right end only.
struct ConvTranspose2dParams {
  std::array<std::int64_t, 2> stride{1, 1};
  std::array<std::int64_t, 2> padding{0, 0};
  std::array<std::int64_t, 2> output_padding{0, 0};
  std::array<std::int64_t, 2> dilation{1, 1};
  std::int64_t groups = 1;
};
Tensor conv_transpose2d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(),
                        const ConvTranspose2dParams& params = {});
// input (N, C, L), weight (C, O / groups, k), PyTorch's argument order: conv_transpose2d over (N, C, 1, L).
Tensor conv_transpose1d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(),
                        std::int64_t stride = 1, std::int64_t padding = 0, std::int64_t output_padding = 0,
                        std::int64_t groups = 1, std::int64_t dilation = 1);

struct Pool2dParams {
  std::array<std::int64_t, 2> kernel{1, 1};
  std::array<std::int64_t, 2> stride{1, 1};  // PyTorch's default stride is the kernel size
  std::array<std::int64_t, 2> padding{0, 0};
  std::array<std::int64_t, 2> dilation{1, 1};  // max pooling only
  // Round the output size up (PyTorch's pooling_output_shape): the last window may overhang the
  // input, even an input smaller than the kernel, as long as it starts inside the input or its
  // left padding.
  bool ceil_mode = false;
  bool count_include_pad = true;  // average pooling only
  // avg_pool2d only: divide every window's sum by this instead (PyTorch's divisor_override; any
  // non-zero value, negative ones too, as PyTorch allows).
  std::optional<std::int64_t> divisor_override;
};

// (N, C, H, W) or (C, H, W) → max over each window (padding counts as -inf). The gradient goes to
// the first maximum of each window (its last NaN, if it holds NaN), as PyTorch's.
Tensor max_pool2d(const Tensor& input, const Pool2dParams& params);
// The same and PyTorch's return_indices: each window's maximum as a flat index into its (H, W)
// plane, an int64 tensor of the output's shape (-1 for a window wholly in the padding). The
// indices do not require grad.
std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& input, const Pool2dParams& params);
// Average over each window; count_include_pad divides by the whole window, padding included, and
// divisor_override by a fixed number. Dilation is max pooling's option: not 1 here is an error.
Tensor avg_pool2d(const Tensor& input, const Pool2dParams& params);
// Average over PyTorch's adaptive windows: output cell i covers [floor(i·H/Ho), ceil((i+1)·H/Ho));
// an output size of 0 gives an empty result.
Tensor adaptive_avg_pool2d(const Tensor& input, std::array<std::int64_t, 2> output_size);
// The maximum over the same windows (the first maximum, or the last NaN, as PyTorch's); with
// indices as max_pool2d_with_indices.
Tensor adaptive_max_pool2d(const Tensor& input, std::array<std::int64_t, 2> output_size);
std::pair<Tensor, Tensor> adaptive_max_pool2d_with_indices(const Tensor& input, std::array<std::int64_t, 2> output_size);

// The 1-D forms, on (N, C, L) or (C, L): the 2-D ops over (N, C, 1, L).
Tensor max_pool1d(const Tensor& input, std::int64_t kernel, std::int64_t stride, std::int64_t padding = 0,
                  std::int64_t dilation = 1, bool ceil_mode = false);
Tensor avg_pool1d(const Tensor& input, std::int64_t kernel, std::int64_t stride, std::int64_t padding = 0,
                  bool ceil_mode = false, bool count_include_pad = true);
Tensor adaptive_avg_pool1d(const Tensor& input, std::int64_t output_size);
Tensor adaptive_max_pool1d(const Tensor& input, std::int64_t output_size);

}  // namespace tg
