// Internal loop helpers shared by the op files: elementwise maps, broadcasting zips and the
// (outer, reduced, inner) view of a reduction. Each applies an xtensor expression to contiguous
// chunks, so xtensor's xsimd path vectorises it and TBB splits it above the grain.
#pragma once

#include "../xtensor.hpp"

#include <array>
#include <cstddef>

#include <xtensor/xadapt.hpp>
#include <xtensor/xnoalias.hpp>

#include "../parallel.hpp"
#include "../tensor.hpp"

namespace tg::kernels {

// A 1-D xtensor view of n values at `data`, no ownership.
template <class T>
auto span(T* data, std::size_t n) {
  return xt::adapt(data, n, xt::no_ownership(), std::array<std::size_t, 1>{n});
}

// out[i] = fn(in)[i] where fn builds an xtensor expression from its 1-D argument.
template <class T, class Fn>
xt::xarray<T> map(const xt::xarray<T>& in, Fn&& fn) {
  xt::xarray<T> out = xt::xarray<T>::from_shape(in.shape());
  parallel::for_range(in.size(), parallel::kGrain, [&](std::size_t begin, std::size_t end) {
    auto src = span(in.data() + begin, end - begin);
    auto dst = span(out.data() + begin, end - begin);
    xt::noalias(dst) = fn(src);
  });
  return out;
}

// The same with two inputs of one shape.
template <class T, class Fn>
xt::xarray<T> map2(const xt::xarray<T>& a, const xt::xarray<T>& b, Fn&& fn) {
  xt::xarray<T> out = xt::xarray<T>::from_shape(a.shape());
  parallel::for_range(a.size(), parallel::kGrain, [&](std::size_t begin, std::size_t end) {
    auto x = span(a.data() + begin, end - begin);
    auto y = span(b.data() + begin, end - begin);
    auto dst = span(out.data() + begin, end - begin);
    xt::noalias(dst) = fn(x, y);
  });
  return out;
}

// NumPy broadcasting of two shapes; throws "<op>: shapes [..] and [..] cannot be broadcast".
Shape broadcast_shape(const char* op, const Shape& a, const Shape& b);

// True when `small` (left-padded with ones) equals the trailing dims of `big` after some leading
// dims, i.e. `big` is `small` repeated over whole rows: (N, C) op (C), (B, M, N) op (M, N).
bool is_row_broadcast(const Shape& big, const Shape& small);

// out = fn(a, b) with NumPy broadcasting. Same shapes, a scalar side and row broadcasts run in
// contiguous, parallel chunks; other broadcasts fall back to xtensor's own broadcasting loop.
template <class T, class Fn>
xt::xarray<T> zip(const char* op, const xt::xarray<T>& a, const xt::xarray<T>& b, Fn&& fn) {
  if (a.shape() == b.shape()) return map2(a, b, fn);
  const Shape shape = broadcast_shape(op, a.shape(), b.shape());
  // A one-element side becomes an xt::xscalar, so fn always sees xtensor expressions.
  if (b.size() == 1 && shape == a.shape()) {
    const xt::xscalar<T> y(b.data()[0]);
    return map(a, [&](const auto& x) { return fn(x, y); });
  }
  if (a.size() == 1 && shape == b.shape()) {
    const xt::xscalar<T> x(a.data()[0]);
    return map(b, [&](const auto& y) { return fn(x, y); });
  }
  xt::xarray<T> out = xt::xarray<T>::from_shape(shape);
  // One side repeats over whole rows of the other: loop over rows, each a contiguous map.
  auto by_rows = [&](const xt::xarray<T>& big, const xt::xarray<T>& small, auto&& row_fn) {
    const std::size_t row = small.size();
    auto repeated = span(small.data(), row);
    parallel::for_range(big.size() / row, std::max<std::size_t>(1, parallel::kGrain / row),
                        [&](std::size_t first, std::size_t last) {
                          for (std::size_t r = first; r < last; ++r) {
                            auto dst = span(out.data() + r * row, row);
                            xt::noalias(dst) = row_fn(span(big.data() + r * row, row), repeated);
                          }
                        });
  };
  if (shape == a.shape() && is_row_broadcast(a.shape(), b.shape())) {
    by_rows(a, b, [&](const auto& x, const auto& y) { return fn(x, y); });
    return out;
  }
  if (shape == b.shape() && is_row_broadcast(b.shape(), a.shape())) {
    by_rows(b, a, [&](const auto& y, const auto& x) { return fn(x, y); });
    return out;
  }
  xt::noalias(out) = fn(a, b);
  return out;
}

// A reduction over dim d of a row-major shape sees it as (outer, reduced, inner).
struct ReduceLayout {
  std::size_t outer = 1, reduced = 1, inner = 1;
};
ReduceLayout reduce_layout(const Shape& shape, std::size_t dim);

// A shape as the signed sizes that reshape and expand take.
inline std::vector<std::int64_t> as_signed(const Shape& shape) { return {shape.begin(), shape.end()}; }

// Gives a freshly computed, not yet recorded tensor a new shape of the same size.
inline void reshape_in_place(Tensor& fresh, const Shape& shape) {
  std::visit([&](auto& array) { array.reshape(shape); }, fresh.impl()->storage->values);
}

}  // namespace tg::kernels

namespace tg {

// The element type of the xtensor expressions a kernel lambda receives.
template <class E>
using element_of = typename std::decay_t<E>::value_type;
template <class... E>
using value_of = std::common_type_t<element_of<E>...>;

// A double converted to the element type of expression x, so float math stays in float.
template <class E>
auto scalar_like(const E&, double value) {
  return static_cast<element_of<E>>(value);
}

// A floating-point Tensor computed by kernels::map on one input...
template <class Fn>
Tensor unary(const char* op, const Tensor& a, Fn&& fn) {
  return dispatch_floating(a.dtype(), op,
                           [&]<class T>() { return make_tensor<T>(kernels::map(a.values<T>(), fn)); });
}

// ...or by kernels::zip on two inputs of one dtype, broadcast.
template <class Fn>
Tensor binary(const char* op, const Tensor& a, const Tensor& b, Fn&& fn) {
  TG_CHECK(a.dtype() == b.dtype(), op, ": expected both inputs to have one dtype, got ",
           dtype_name(a.dtype()), " ", shape_str(a.shape()), " and ", dtype_name(b.dtype()), " ",
           shape_str(b.shape()));
  return dispatch_floating(a.dtype(), op, [&]<class T>() {
    return make_tensor<T>(kernels::zip(op, a.values<T>(), b.values<T>(), fn));
  });
}

}  // namespace tg
