// The pooling layers: options checked once, forward through the pooling ops (1-D as 2-D over a
// height of 1).
#include "layers/pool.hpp"

#include <ostream>
#include <string>

#include "core/ops/conv.hpp"

namespace tg::nn {

namespace {

template <PoolKind Kind, std::size_t D>
std::string pool_name() {
  return std::string(Kind == PoolKind::Max ? "MaxPool" : "AvgPool") + (D == 1 ? "1d" : "2d");
}

template <std::size_t D>
void print_sizes(std::ostream& out, const std::array<std::int64_t, D>& v) {
  if (D == 1) {
    out << v[0];
    return;
  }
  out << '(' << v[0] << ", " << v[1] << ')';
}

}  // namespace

template <PoolKind Kind, std::size_t D>
Pool<Kind, D>::Pool(const PoolOptions<D>& options_in) : Module(pool_name<Kind, D>()), options(options_in) {
  const std::string name = pool_name<Kind, D>();
  for (std::size_t d = 0; d < D; ++d) {
    TG_CHECK(options.kernel_size()[d] > 0 && options.stride()[d] > 0 && options.dilation()[d] > 0, name,
             ": kernel_size, stride and dilation must be positive, got kernel_size ", options.kernel_size()[d],
             ", stride ", options.stride()[d], ", dilation ", options.dilation()[d]);
    TG_CHECK(options.padding()[d] >= 0 && 2 * options.padding()[d] <= options.kernel_size()[d], name,
             ": padding must be between 0 and half the kernel size, got padding ", options.padding()[d],
             " for kernel_size ", options.kernel_size()[d]);
  }
  // PyTorch has no such options here: an error, not a silently ignored setting.
  if constexpr (Kind == PoolKind::Avg)
    for (std::int64_t d : options.dilation()) TG_CHECK(d == 1, name, ": dilation is max pooling's option, got ", d);
  if (const auto divisor = options.divisor_override()) {
    TG_CHECK(Kind == PoolKind::Avg && D == 2, name, ": divisor_override is AvgPool2d's option, got ", *divisor);
    TG_CHECK(*divisor != 0, name, ": divisor_override must be non-zero, got 0");
  }
}

template <PoolKind Kind, std::size_t D>
Pool2dParams Pool<Kind, D>::params() const {
  Pool2dParams p;
  for (std::size_t d = 0; d < D; ++d) {
    const std::size_t at = 2 - D + d;
    p.kernel[at] = options.kernel_size()[d];
    p.stride[at] = options.stride()[d];
    p.padding[at] = options.padding()[d];
    p.dilation[at] = options.dilation()[d];
  }
  p.ceil_mode = options.ceil_mode();
  p.count_include_pad = options.count_include_pad();
  p.divisor_override = options.divisor_override();
  return p;
}

template <PoolKind Kind, std::size_t D>
Tensor Pool<Kind, D>::forward(const Tensor& input) {
  const Pool2dParams p = params();
  if constexpr (D == 1) {
    const auto k = p.kernel[1], s = p.stride[1], pad = p.padding[1];
    if constexpr (Kind == PoolKind::Max) return max_pool1d(input, k, s, pad, p.dilation[1], p.ceil_mode);
    else return avg_pool1d(input, k, s, pad, p.ceil_mode, p.count_include_pad);
  } else {
    if constexpr (Kind == PoolKind::Max) return max_pool2d(input, p);
    else return avg_pool2d(input, p);
  }
}

template <PoolKind Kind, std::size_t D>
std::pair<Tensor, Tensor> Pool<Kind, D>::forward_with_indices(const Tensor& input)
  requires(Kind == PoolKind::Max && D == 2)
{
  return max_pool2d_with_indices(input, params());
}

template <PoolKind Kind, std::size_t D>
void Pool<Kind, D>::print_options(std::ostream& out) const {
  out << "kernel_size=";
  print_sizes<D>(out, options.kernel_size());
  out << ", stride=";
  print_sizes<D>(out, options.stride());
  out << ", padding=";
  print_sizes<D>(out, options.padding());
  if constexpr (Kind == PoolKind::Max) {
    out << ", dilation=";
    print_sizes<D>(out, options.dilation());
  }
  out << ", ceil_mode=" << (options.ceil_mode() ? "true" : "false");
  if constexpr (Kind == PoolKind::Avg) out << ", count_include_pad=" << (options.count_include_pad() ? "true" : "false");
  if (options.divisor_override()) out << ", divisor_override=" << *options.divisor_override();
}

template class Pool<PoolKind::Max, 1>;
template class Pool<PoolKind::Max, 2>;
template class Pool<PoolKind::Avg, 1>;
template class Pool<PoolKind::Avg, 2>;

template <PoolKind Kind, std::size_t D>
AdaptivePool<Kind, D>::AdaptivePool(std::array<std::int64_t, D> size)
    : Module(std::string(Kind == PoolKind::Max ? "AdaptiveMaxPool" : "AdaptiveAvgPool") + (D == 1 ? "1d" : "2d")),
      output_size(size) {
  for (std::int64_t v : output_size)
    TG_CHECK(v > 0, type_name(), ": output_size must be positive, got ", v);
}

template <PoolKind Kind, std::size_t D>
AdaptivePool<Kind, D>::AdaptivePool(std::int64_t size)
    : AdaptivePool([size] {
        std::array<std::int64_t, D> sizes;
        sizes.fill(size);
        return sizes;
      }()) {}

template <PoolKind Kind, std::size_t D>
Tensor AdaptivePool<Kind, D>::forward(const Tensor& input) {
  if constexpr (Kind == PoolKind::Max) {
    if constexpr (D == 1) return adaptive_max_pool1d(input, output_size[0]);
    else return adaptive_max_pool2d(input, output_size);
  } else {
    if constexpr (D == 1) return adaptive_avg_pool1d(input, output_size[0]);
    else return adaptive_avg_pool2d(input, output_size);
  }
}

template <PoolKind Kind, std::size_t D>
std::pair<Tensor, Tensor> AdaptivePool<Kind, D>::forward_with_indices(const Tensor& input)
  requires(Kind == PoolKind::Max && D == 2)
{
  // (if constexpr: clang 14's explicit instantiation compiles the body for every Kind and D,
  // whatever the requires clause says)
  if constexpr (D == 2) return adaptive_max_pool2d_with_indices(input, output_size);
  else return {forward(input), Tensor()};
}

template <PoolKind Kind, std::size_t D>
void AdaptivePool<Kind, D>::print_options(std::ostream& out) const {
  out << "output_size=";
  print_sizes<D>(out, output_size);
}

template class AdaptivePool<PoolKind::Avg, 1>;
template class AdaptivePool<PoolKind::Avg, 2>;
template class AdaptivePool<PoolKind::Max, 1>;
template class AdaptivePool<PoolKind::Max, 2>;

}  // namespace tg::nn
