// Reductions: sum, mean, var, std, norm (and normalize), cumsum, max, min, argmax, argmin, and
// sum_to (the engine's un-broadcast).
// `dims` empty means every dim. Negative dims count from the end. sum also takes int64 (counts:
// sum(eq(predicted, labels)) is int64, as in PyTorch); the others need floating point.
#pragma once

#include <concepts>

#include <cstdint>
#include <optional>
#include <tuple>
#include <vector>

#include "../tensor.hpp"

namespace tg {

Tensor sum(const Tensor& a);
Tensor sum(const Tensor& a, const std::vector<std::int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& a);
Tensor mean(const Tensor& a, const std::vector<std::int64_t>& dims, bool keepdim = false);
// Variance with Bessel's correction when unbiased (divides by n - 1), else biased (by n); the
// divisor stops at 0, so one value's unbiased variance and any variance of none are NaN:
// var(x), var(x, {1}), var(x, {}, /*unbiased=*/false). There is deliberately no var(x, bool):
// var(x, {1}) would silently pick it.
Tensor var(const Tensor& a, const std::vector<std::int64_t>& dims = {}, bool unbiased = true,
           bool keepdim = false);
Tensor std(const Tensor& a, const std::vector<std::int64_t>& dims = {}, bool unbiased = true,
           bool keepdim = false);

// One dim, as an integer: tg::sum(x, 1) (a braced list still means the list form).
template <std::integral I>
Tensor sum(const Tensor& a, I dim, bool keepdim = false) { return sum(a, {std::int64_t(dim)}, keepdim); }
template <std::integral I>
Tensor mean(const Tensor& a, I dim, bool keepdim = false) { return mean(a, {std::int64_t(dim)}, keepdim); }

// log(Σ exp(a)) over dims (all dims when empty), computed stably around the max; its gradient
// is softmax(a) over those dims.
Tensor logsumexp(const Tensor& a, const std::vector<std::int64_t>& dims, bool keepdim = false);
template <std::integral I>
Tensor logsumexp(const Tensor& a, I dim, bool keepdim = false) { return logsumexp(a, {std::int64_t(dim)}, keepdim); }

// The largest (smallest) element, NaN if there is one; its gradient is shared evenly by the
// elements equal to it (by the NaNs), as PyTorch's.
Tensor max(const Tensor& a);
Tensor min(const Tensor& a);
// Along one dim: (values, int64 indices of the first largest/smallest, or first NaN); the
// gradient goes to those indices.
std::tuple<Tensor, Tensor> max(const Tensor& a, std::int64_t dim, bool keepdim = false);
std::tuple<Tensor, Tensor> min(const Tensor& a, std::int64_t dim, bool keepdim = false);
// int64 indices; without a dim, the index into the flattened tensor (with keepdim, shaped as a's
// rank of 1s, as PyTorch's).
Tensor argmax(const Tensor& a, std::optional<std::int64_t> dim = std::nullopt, bool keepdim = false);
Tensor argmin(const Tensor& a, std::optional<std::int64_t> dim = std::nullopt, bool keepdim = false);

// The p-norm over dims (all dims when empty), torch.linalg.vector_norm(a, p, dims, keepdim) (and
// torch.norm's): (Σ |a|^p)^(1/p) for p > 0, the largest |a| for p = inf, the smallest for -inf,
// the count of non-zero values for p = 0; accumulated in double. Its gradient is PyTorch's,
// 0 where the norm is 0 (no NaN from sqrt at 0). Negative finite p is refused.
Tensor norm(const Tensor& a, double p = 2.0, const std::vector<std::int64_t>& dims = {}, bool keepdim = false);
template <std::integral I>
Tensor norm(const Tensor& a, double p, I dim, bool keepdim = false) { return norm(a, p, {std::int64_t(dim)}, keepdim); }
// a divided by its p-norm along dim, the norm held at least eps: torch.nn.functional.normalize.
Tensor normalize(const Tensor& a, double p = 2.0, std::int64_t dim = 1, double eps = 1e-12);

// The running sum along dim (torch.cumsum), accumulated in double as PyTorch's CPU kernel;
// floating point only (PyTorch also sums integers).
Tensor cumsum(const Tensor& a, std::int64_t dim);

// Sums a broadcast gradient back to `shape` (what broadcasting `shape` to a.shape() expanded).
Tensor sum_to(const Tensor& a, const Shape& shape);
// sum_to(grad · other, shape) in one pass, with no product tensor: the gradient of a broadcast
// product for its operand of `shape` (mul's backward; `other` broadcasts to grad's shape too).
// Not recorded on the tape (a backward never is).
Tensor mul_sum_to(const Tensor& grad, const Tensor& other, const Shape& shape);

}  // namespace tg
