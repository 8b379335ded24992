// Conv1d / Conv2d: options checked, PyTorch's initialisation, and forward through tg::conv2d
// (a 1-D convolution is a 2-D one over a height of 1).
#include "layers/conv.hpp"

#include <cmath>
#include <ostream>

#include "core/creation.hpp"
#include "core/ops/conv.hpp"
#include "core/ops/pad.hpp"
#include "core/ops/shape.hpp"
#include "layers/init.hpp"

namespace tg::nn {

namespace {

const char* conv_name(std::size_t d) { return d == 1 ? "Conv1d" : "Conv2d"; }

// tg::pad's mode for a padding_mode other than zeros.
PadMode pad_mode_of(PaddingMode mode) {
  return mode == PaddingMode::Reflect ? PadMode::Reflect : mode == PaddingMode::Replicate ? PadMode::Replicate
                                                                                          : PadMode::Circular;
}

template <std::size_t D>
void validate(const ConvOptions<D>& o) {
  const char* name = conv_name(D);
  o.check(name);
  for (std::size_t d = 0; d < D; ++d) {
    TG_CHECK(o.padding()[d] >= 0, name, ": padding must be non-negative, got ", o.padding()[d]);
    TG_CHECK(o.padding_string() != Padding::Same || o.stride()[d] == 1, name,
             ": padding \"same\" needs stride 1 (as in PyTorch), got stride ", o.stride()[d]);
  }
}

}  // namespace

template <std::size_t D>
Conv<D>::Conv(const ConvOptions<D>& options_in) : Module(conv_name(D)), options(options_in) {
  validate(options);
  Shape shape{std::size_t(options.out_channels()), std::size_t(options.in_channels() / options.groups())};
  for (std::int64_t k : options.kernel_size()) shape.push_back(std::size_t(k));
  weight = register_parameter("weight", empty(shape));
  if (options.bias()) bias = register_parameter("bias", empty({std::size_t(options.out_channels())}));
  detail::init_conv(weight, bias);
}

template <std::size_t D>
Tensor Conv<D>::forward(const Tensor& input) {
  const char* name = conv_name(D);
  detail::check_conv_input(name, D, input, options.in_channels());
  // Each dim's (before, after) padding: "same" puts an odd total's extra value at the end, as
  // PyTorch does.
  std::array<std::int64_t, D> before{}, after{};
  for (std::size_t d = 0; d < D; ++d) {
    if (!options.padding_string()) {
      before[d] = after[d] = options.padding()[d];
    } else if (*options.padding_string() == Padding::Same) {
      const std::int64_t total = options.dilation()[d] * (options.kernel_size()[d] - 1);
      before[d] = total / 2;
      after[d] = total - total / 2;
    }
  }
  Tensor x = input;
  if (options.padding_mode() != PaddingMode::Zeros) {  // padded by tg::pad, then no padding (PyTorch's way)
    std::vector<std::int64_t> pads;  // F.pad's order: the last dim's pair first
    for (std::size_t d = D; d-- > 0;) {
      pads.push_back(before[d]);
      pads.push_back(after[d]);
      before[d] = after[d] = 0;
    }
    try {
      x = pad(input, pads, pad_mode_of(options.padding_mode()));
    } catch (const Error& e) {
      fail(name, ": ", e.what());
    }
  }
  // As 2-D: a 1-D convolution has height 1 and a kernel of height 1.
  Conv2dParams p;
  p.groups = options.groups();
  for (std::size_t d = 0; d < D; ++d) {
    const std::size_t at = 2 - D + d;
    p.stride[at] = options.stride()[d];
    p.dilation[at] = options.dilation()[d];
    p.padding[at] = before[d];
    p.extra_end[at] = after[d] - before[d];
  }
  if constexpr (D == 2) return conv2d(x, weight, bias, p);
  return squeeze(conv2d(unsqueeze(x, -2), unsqueeze(weight, 2), bias, p), -2);
}

template <std::size_t D>
void Conv<D>::print_options(std::ostream& out) const {
  auto sizes = [&](const std::array<std::int64_t, D>& v) {
    out << '(';
    for (std::size_t d = 0; d < D; ++d) out << (d ? ", " : "") << v[d];
    out << (D == 1 ? ",)" : ")");
  };
  out << options.in_channels() << ", " << options.out_channels() << ", kernel_size=";
  sizes(options.kernel_size());
  out << ", stride=";
  sizes(options.stride());
  if (options.padding_string()) {
    out << ", padding=" << (*options.padding_string() == Padding::Same ? "same" : "valid");
  } else {
    out << ", padding=";
    sizes(options.padding());
  }
  bool unit_dilation = true;
  for (auto v : options.dilation()) unit_dilation = unit_dilation && v == 1;
  if (!unit_dilation) {
    out << ", dilation=";
    sizes(options.dilation());
  }
  if (options.groups() != 1) out << ", groups=" << options.groups();
  if (!options.bias()) out << ", bias=false";
  if (options.padding_mode() != PaddingMode::Zeros) out << ", padding_mode=" << pad_mode_name(pad_mode_of(options.padding_mode()));
}

namespace detail {

void check_conv_input(const char* name, std::size_t dims, const Tensor& input, std::int64_t in_channels) {
  TG_CHECK(input.dim() == dims + 1 || input.dim() == dims + 2, name, ": expected ",
           dims == 1 ? "(N, C, L) or (C, L)" : "(N, C, H, W) or (C, H, W)", " input, got ", shape_str(input.shape()));
  const std::size_t channel_dim = input.dim() == dims + 2 ? 1 : 0;
  TG_CHECK(std::int64_t(input.shape()[channel_dim]) == in_channels, name, ": expected ", in_channels,
           " input channels (in_channels) at dim ", channel_dim, ", got input ", shape_str(input.shape()));
}

void init_conv(Tensor& weight, Tensor& bias) {
  init::kaiming_uniform_(weight, std::sqrt(5.0));  // = U(-1/√fan_in, 1/√fan_in)
  if (!bias.defined()) return;
  double fan_in = 1;
  for (std::size_t d = 1; d < weight.dim(); ++d) fan_in *= double(weight.shape()[d]);
  const double bound = 1.0 / std::sqrt(fan_in);
  init::uniform_(bias, -bound, bound);
}

}  // namespace detail

template class Conv<1>;
template class Conv<2>;

}  // namespace tg::nn
