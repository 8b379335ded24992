// ConvTranspose1d / ConvTranspose2d: options checked, PyTorch's initialisation, output_size, and
// forward through tg::conv_transpose2d (a 1-D one is a 2-D one over a height of 1).
#include "layers/conv_transpose.hpp"

#include <ostream>
#include <sstream>

#include "core/creation.hpp"
#include "core/ops/conv.hpp"
#include "core/ops/shape.hpp"

namespace tg::nn {

namespace {

const char* conv_transpose_name(std::size_t d) { return d == 1 ? "ConvTranspose1d" : "ConvTranspose2d"; }

template <std::size_t D>
void validate(const ConvTransposeOptions<D>& o) {
  const char* name = conv_transpose_name(D);
  o.check(name);
  for (std::size_t d = 0; d < D; ++d) {
    TG_CHECK(o.padding()[d] >= 0 && o.output_padding()[d] >= 0, name,
             ": padding and output_padding must be non-negative, got ", o.padding()[d], " and ", o.output_padding()[d]);
    TG_CHECK(o.output_padding()[d] < o.stride()[d] || o.output_padding()[d] < o.dilation()[d], name,
             ": output_padding must be smaller than either stride or dilation, got output_padding ",
             o.output_padding()[d], ", stride ", o.stride()[d], ", dilation ", o.dilation()[d]);
  }
}

template <std::size_t D>
void print_sizes(std::ostream& out, const std::array<std::int64_t, D>& v) {
  out << '(';
  for (std::size_t d = 0; d < D; ++d) out << (d ? ", " : "") << v[d];
  out << (D == 1 ? ",)" : ")");
}

}  // namespace

template <std::size_t D>
ConvTranspose<D>::ConvTranspose(const ConvTransposeOptions<D>& options_in)
    : Module(conv_transpose_name(D)), options(options_in) {
  validate(options);
  Shape shape{std::size_t(options.in_channels()), std::size_t(options.out_channels() / options.groups())};
  for (std::int64_t k : options.kernel_size()) shape.push_back(std::size_t(k));
  weight = register_parameter("weight", empty(shape));
  if (options.bias()) bias = register_parameter("bias", empty({std::size_t(options.out_channels())}));
  detail::init_conv(weight, bias);  // fan_in from the weight's dim 1: out_channels / groups · kernel
}

template <std::size_t D>
Tensor ConvTranspose<D>::forward(const Tensor& input) {
  return run(input, options.output_padding());
}

template <std::size_t D>
Tensor ConvTranspose<D>::run(const Tensor& input, const std::array<std::int64_t, D>& output_padding) {
  const char* name = conv_transpose_name(D);
  detail::check_conv_input(name, D, input, options.in_channels());
  // As 2-D: a 1-D transposed convolution has height 1 and a kernel of height 1.
  ConvTranspose2dParams p;
  p.groups = options.groups();
  for (std::size_t d = 0; d < D; ++d) {
    const std::size_t at = 2 - D + d;
    p.stride[at] = options.stride()[d];
    p.padding[at] = options.padding()[d];
    p.output_padding[at] = output_padding[d];
    p.dilation[at] = options.dilation()[d];
  }
  try {
    if constexpr (D == 2) return conv_transpose2d(input, weight, bias, p);
    return squeeze(conv_transpose2d(unsqueeze(input, -2), unsqueeze(weight, 2), bias, p), -2);
  } catch (const Error& e) {
    fail(name, ": ", e.what());
  }
}

template <std::size_t D>
Tensor ConvTranspose<D>::forward(const Tensor& input, const std::vector<std::int64_t>& output_size) {
  const char* name = conv_transpose_name(D);
  TG_CHECK(input.dim() == D + 1 || input.dim() == D + 2, name, ": expected ",
           D == 1 ? "(N, C, L) or (C, L)" : "(N, C, H, W) or (C, H, W)", " input, got ", shape_str(input.shape()));
  // PyTorch's _output_padding: the spatial sizes, or the whole shape with its leading dims.
  const std::size_t leading = input.dim() - D;
  TG_CHECK(output_size.size() == D || output_size.size() == D + leading, name, ": for ", input.dim(),
           "-D input, output_size must have ", D, " or ", D + leading, " elements, got ", output_size.size());
  const std::size_t skip = output_size.size() - D;
  std::array<std::int64_t, D> padding{}, smallest{}, largest{};
  bool fits = true;
  for (std::size_t d = 0; d < D; ++d) {
    smallest[d] = (std::int64_t(input.shape()[leading + d]) - 1) * options.stride()[d] - 2 * options.padding()[d] +
                  options.dilation()[d] * (options.kernel_size()[d] - 1) + 1;
    largest[d] = smallest[d] + options.stride()[d] - 1;
    padding[d] = output_size[skip + d] - smallest[d];
    fits = fits && output_size[skip + d] >= smallest[d] && output_size[skip + d] <= largest[d];
  }
  if (!fits) {
    std::ostringstream sizes;
    for (std::size_t d = 0; d < D; ++d) sizes << (d ? ", " : "") << output_size[skip + d];
    std::ostringstream from, to;
    print_sizes<D>(from, smallest);
    print_sizes<D>(to, largest);
    fail(name, ": requested an output size of (", sizes.str(), "), but valid sizes range from ", from.str(), " to ",
         to.str(), " (for an input of ", shape_str(input.shape()), ")");
  }
  return run(input, padding);  // this call's output_padding; the options stay as they are
}

template <std::size_t D>
void ConvTranspose<D>::print_options(std::ostream& out) const {
  auto all = [](const std::array<std::int64_t, D>& v, std::int64_t value) {
    for (auto x : v)
      if (x != value) return false;
    return true;
  };
  out << options.in_channels() << ", " << options.out_channels() << ", kernel_size=";
  print_sizes<D>(out, options.kernel_size());
  out << ", stride=";
  print_sizes<D>(out, options.stride());
  if (!all(options.padding(), 0)) {
    out << ", padding=";
    print_sizes<D>(out, options.padding());
  }
  if (!all(options.dilation(), 1)) {
    out << ", dilation=";
    print_sizes<D>(out, options.dilation());
  }
  if (!all(options.output_padding(), 0)) {
    out << ", output_padding=";
    print_sizes<D>(out, options.output_padding());
  }
  if (options.groups() != 1) out << ", groups=" << options.groups();
  if (!options.bias()) out << ", bias=false";
}

template class ConvTranspose<1>;
template class ConvTranspose<2>;

}  // namespace tg::nn
