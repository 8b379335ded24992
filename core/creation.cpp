#include "core/creation.hpp"
#include "core/xtensor.hpp"

#include <cmath>

#include "core/ops/kernels.hpp"
#include "core/random.hpp"

namespace tg {

namespace {

// An uninitialised array of `shape`, after checking its element count and bytes; a failed
// allocation is a tg::Error naming the op, not std::bad_alloc.
template <class T>
xt::xarray<T> allocate(const char* op, const Shape& shape) {
  const std::size_t bytes = checked_bytes(op, shape, sizeof(T));
  try {
    return xt::xarray<T>::from_shape(shape);
  } catch (const std::bad_alloc&) {
    fail(op, ": cannot allocate ", shape_str(shape), " ", dtype_name(dtype_of<T>()), " (", bytes, " bytes)");
  }
}

Tensor finish(Tensor tensor, const TensorOptions& options, const char* op) {
  TG_CHECK(!options.requires_grad() || is_floating(options.dtype()), op,
           ": only floating-point tensors can require grad, got ", dtype_name(options.dtype()));
  tensor.impl()->requires_grad = options.requires_grad();
  return tensor;
}

// A tensor of `shape` whose i-th value is value(i).
template <class ValueAt>
Tensor generate(const char* op, const Shape& shape, const TensorOptions& options, ValueAt&& value) {
  return finish(dispatch_all(options.dtype(),
                             [&]<class T>() {
                               xt::xarray<T> out = allocate<T>(op, shape);
                               for (std::size_t i = 0; i < out.size(); ++i)
                                 out.data()[i] = static_cast<T>(value(i));
                               return make_tensor<T>(std::move(out));
                             }),
                options, op);
}

}  // namespace

Tensor empty(const Shape& shape, TensorOptions options) {
  return finish(dispatch_all(options.dtype(),
                             [&]<class T>() { return make_tensor<T>(allocate<T>("empty", shape)); }),
                options, "empty");
}

namespace {

Tensor filled(const char* op, const Shape& shape, double value, const TensorOptions& options) {
  return finish(dispatch_all(options.dtype(),
                             [&]<class T>() {
                               xt::xarray<T> out = allocate<T>(op, shape);
                               // In parallel, by vector stores (kernels::zeros's way, which says why).
                               kernels::apply_parallel(out.size(), out.data(),
                                                       [v = static_cast<T>(value)] { return kernels::Batch<T>(v); });
                               return make_tensor<T>(std::move(out));
                             }),
                options, op);
}

}  // namespace

Tensor full(const Shape& shape, double value, TensorOptions options) { return filled("full", shape, value, options); }
Tensor zeros(const Shape& shape, TensorOptions options) { return filled("zeros", shape, 0.0, options); }
Tensor ones(const Shape& shape, TensorOptions options) { return filled("ones", shape, 1.0, options); }

Tensor arange(double end, TensorOptions options) { return arange(0.0, end, 1.0, options); }

Tensor arange(double start, double end, double step, TensorOptions options) {
  TG_CHECK(step != 0.0, "arange: step must be non-zero");
  TG_CHECK((end - start) / step >= 0.0, "arange: the range [", start, ", ", end,
           ") cannot be reached with step ", step);
  const auto count = static_cast<std::size_t>(std::ceil((end - start) / step));
  return generate("arange", {count}, options, [&](std::size_t i) { return start + step * double(i); });
}

Tensor linspace(double start, double end, std::size_t steps, TensorOptions options) {
  const double step = steps > 1 ? (end - start) / double(steps - 1) : 0.0;
  // Like PyTorch, the second half counts back from `end` so that both ends are exact (one step is
  // `start`).
  return generate("linspace", {steps}, options, [&](std::size_t i) {
    return i < steps / 2 || steps == 1 ? start + step * double(i) : end - step * double(steps - 1 - i);
  });
}

Tensor eye(std::size_t n, TensorOptions options) { return eye(n, n, options); }

Tensor eye(std::size_t n, std::size_t m, TensorOptions options) {
  return generate("eye", {n, m}, options, [&](std::size_t i) { return i / m == i % m ? 1.0 : 0.0; });
}

Tensor rand(const Shape& shape, TensorOptions options) { return rand(shape, default_generator(), options); }
Tensor randn(const Shape& shape, TensorOptions options) { return randn(shape, default_generator(), options); }
Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape, TensorOptions options) {
  return randint(low, high, shape, default_generator(), options);
}

Tensor rand(const Shape& shape, Generator generator, TensorOptions options) {
  return generate("rand", shape, options, [&](std::size_t) { return generator.uniform(); });
}

Tensor randn(const Shape& shape, Generator generator, TensorOptions options) {
  std::size_t count = 1;  // (an overflowing count fails in allocate, before any draw)
  for (std::size_t d : shape) count *= d;
  NormalDraws draws(generator, count);
  return generate("randn", shape, options, [&](std::size_t) { return draws.next(); });
}

Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape, Generator generator, TensorOptions options) {
  TG_CHECK(low < high, "randint: expected low < high, got low=", low, ", high=", high);
  if (options.dtype() == kInt64)  // exact for any int64, not through double
    return finish(make_tensor<std::int64_t>([&] {
                    xt::xarray<std::int64_t> out = allocate<std::int64_t>("randint", shape);
                    for (std::int64_t& v : out) v = generator.integer(low, high);
                    return out;
                  }()),
                  options, "randint");
  return generate("randint", shape, options,
                  [&](std::size_t) { return static_cast<double>(generator.integer(low, high)); });
}

Tensor zeros_like(const Tensor& like) { return zeros(like.shape(), like.dtype()); }
Tensor ones_like(const Tensor& like) { return ones(like.shape(), like.dtype()); }
Tensor full_like(const Tensor& like, double value) { return full(like.shape(), value, like.dtype()); }
Tensor rand_like(const Tensor& like) { return rand(like.shape(), like.dtype()); }
Tensor randn_like(const Tensor& like) { return randn(like.shape(), like.dtype()); }

}  // namespace tg
