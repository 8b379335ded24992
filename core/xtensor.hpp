// The xtensor side of tapegrad: a tensor's values as an xt::xarray<T>.
//
// The public headers (tensor.hpp and everything a model needs) do not include xtensor; this header
// is for the library's own op files and for users who want to work on the values with xtensor
// (`#include <tapegrad/core/xtensor.hpp>`, then `tensor.values<float>()` is an xt::xarray<float>).
// It must come before any other xtensor header, because it sets xtensor's configuration:
//   - the shape container is tg::Shape, so tensor.shape() is the array's own shape;
//   - arrays come from tapegrad's caching allocator (core/allocator.hpp), 64-byte aligned whatever
//     the SIMD level (-march) of the file that includes this, so code built for another CPU sees
//     the same types and the same layout (no ABI change);
//   - xtensor uses xsimd.
#pragma once

#if defined(XTENSOR_CONFIG_HPP) && !defined(TAPEGRAD_XTENSOR_CONFIGURED)
#error "include <tapegrad/core/xtensor.hpp> (core/xtensor.hpp) before any xtensor header"
#endif
#define TAPEGRAD_XTENSOR_CONFIGURED 1

#include "allocator.hpp"
#include "small_vector.hpp"

#ifndef XTENSOR_USE_XSIMD
#define XTENSOR_USE_XSIMD
#endif
#define XTENSOR_DEFAULT_SHAPE_CONTAINER(T, EA, SA) ::tg::SmallVector<std::size_t>
#define XTENSOR_DEFAULT_ALLOCATOR(T) ::tg::Allocator<T>
#define XTENSOR_DEFAULT_ALIGNMENT 64

// GCC 12 reports its own AVX-512 intrinsics (avx512fintrin.h: `__m512 __Y = __Y;`) as using an
// uninitialised value wherever xsimd inlines them (GCC bug 105593, fixed in GCC 13). The location
// of those warnings is the intrinsics header, so ignoring them around its first inclusion silences
// exactly them and nothing in tapegrad's own code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif
#include <xsimd/xsimd.hpp>
#include <xtensor/xarray.hpp>

#include <mutex>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "tensor.hpp"

namespace tg {

template <class T>
struct ArrayOf {
  using type = xt::xarray<T>;
};

// The values. xt::xarray is row-major and contiguous; one alternative per DType.
using Values = std::variant<xt::xarray<float>, xt::xarray<double>, xt::xarray<std::int64_t>>;

// The values and their version. Every in-place write (values_mut, in-place ops, loading a
// checkpoint) bumps the version; an op that saves a tensor for backward records it, and backward
// throws if it changed (PyTorch's version counter), instead of silently using the new values.
struct Storage {
  Storage() = default;
  // Built in place from one xt::xarray<T> (one move, no temporary variant).
  template <class Array>
    requires(!std::is_same_v<std::decay_t<Array>, Storage>)
  explicit Storage(Array&& array) : values(std::in_place_type<std::decay_t<Array>>, std::forward<Array>(array)) {}
  Values values;
  std::uint64_t version = 0;
  // The handles that share these values through reshape (the source and its reshapes). An in-place
  // op that gives one of them a history while recording would leave the others' histories wrong
  // (PyTorch rewrites them; tapegrad refuses), so in-place ops check this list.
  std::vector<std::weak_ptr<const TensorImpl>> reshape_aliases;
  std::mutex aliases_mutex;  // reshapes of one tensor (a shared weight) may run on several threads
};

// The storage's values for code that visits the variant and reads them flat: the array's own shape
// may be that of another handle on the same storage (a reshape), so use tensor.shape(). Never
// reshapes the array (safe from several threads); throws if values_mut() was used to resize it.
const Values& flat_values(const Tensor& tensor);

// Builds a tensor that owns `values`.
template <class T>
Tensor make_tensor(xt::xarray<T> values, bool requires_grad = false) {
  TG_CHECK(!requires_grad || dtype_of<T>() != kInt64,
           "Tensor: only floating-point tensors can require grad, got int64");
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = values.shape();
  impl->storage = std::make_shared<Storage>(std::move(values));
  impl->requires_grad = requires_grad;
  return Tensor(std::move(impl));
}

}  // namespace tg
