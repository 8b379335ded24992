// Creation functions, each taking a shape and TensorOptions (dtype, requires_grad).
#pragma once

#include <cstdint>

#include "random.hpp"
#include "tensor.hpp"

namespace tg {

Tensor empty(const Shape& shape, TensorOptions options = {});  // values unspecified
Tensor zeros(const Shape& shape, TensorOptions options = {});
Tensor ones(const Shape& shape, TensorOptions options = {});
Tensor full(const Shape& shape, double value, TensorOptions options = {});
// [start, end) in steps; the dtype is float32 unless given.
Tensor arange(double end, TensorOptions options = {});
Tensor arange(double start, double end, double step = 1.0, TensorOptions options = {});
Tensor linspace(double start, double end, std::size_t steps, TensorOptions options = {});  // 1 step: start
Tensor eye(std::size_t n, TensorOptions options = {});
Tensor eye(std::size_t n, std::size_t m, TensorOptions options = {});
// From the global generator (tg::manual_seed), or the one given.
Tensor rand(const Shape& shape, TensorOptions options = {});   // uniform on [0, 1)
Tensor randn(const Shape& shape, TensorOptions options = {});  // standard normal
// Integers in [low, high); int64 unless another dtype is given.
Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape,
               TensorOptions options = TensorOptions(kInt64));
Tensor rand(const Shape& shape, Generator generator, TensorOptions options = {});
Tensor randn(const Shape& shape, Generator generator, TensorOptions options = {});
Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape, Generator generator,
               TensorOptions options = TensorOptions(kInt64));

// Same shape and dtype as `like` (requires_grad is never copied).
Tensor zeros_like(const Tensor& like);
Tensor ones_like(const Tensor& like);
Tensor full_like(const Tensor& like, double value);
Tensor rand_like(const Tensor& like);
Tensor randn_like(const Tensor& like);

}  // namespace tg
