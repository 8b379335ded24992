// Runtime element types and the dispatch from a runtime DType to a C++ type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "error.hpp"
#include "small_vector.hpp"

namespace tg {

// float32 is the default; float64 is for gradient checks; int64 holds indices and counters
// (argmax results, class labels, BatchNorm's num_batches_tracked) and is never differentiable.
enum class DType { Float32, Float64, Int64 };
inline constexpr DType kFloat32 = DType::Float32;
inline constexpr DType kFloat64 = DType::Float64;
inline constexpr DType kInt64 = DType::Int64;

const char* dtype_name(DType dtype);  // "float32", "float64", "int64"
std::size_t dtype_size(DType dtype);
inline bool is_floating(DType dtype) { return dtype != kInt64; }

template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return kFloat32;
  else if constexpr (std::is_same_v<T, double>) return kFloat64;
  else {
    static_assert(std::is_same_v<T, std::int64_t>, "tapegrad holds float, double or int64_t");
    return kInt64;
  }
}

// Calls fn.template operator()<T>() with T the C++ type of `dtype`, for floating types only;
// an int64 tensor given to a floating-point op is an error that names the op.
template <class Fn>
decltype(auto) dispatch_floating(DType dtype, const char* op, Fn&& fn) {
  switch (dtype) {
    case kFloat32: return fn.template operator()<float>();
    case kFloat64: return fn.template operator()<double>();
    default: fail(op, ": expected a floating-point tensor (float32 or float64), got ", dtype_name(dtype));
  }
}

// The same for every dtype.
template <class Fn>
decltype(auto) dispatch_all(DType dtype, Fn&& fn) {
  switch (dtype) {
    case kFloat32: return fn.template operator()<float>();
    case kFloat64: return fn.template operator()<double>();
    default: return fn.template operator()<std::int64_t>();
  }
}

}  // namespace tg
