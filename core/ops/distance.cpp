#include "core/ops/distance.hpp"

#include <cmath>
#include <limits>
#include <tuple>

#include "core/ops/elementwise.hpp"
#include "core/ops/kernels.hpp"
#include "core/ops/reduce.hpp"
#include "core/ops/shape.hpp"

namespace tg {

namespace {

void check_pair(const char* op, const Tensor& x1, const Tensor& x2) {
  TG_CHECK(is_floating(x1.dtype()) && x1.dtype() == x2.dtype(), op,
           ": x1 and x2 must share one floating-point dtype, got ", dtype_name(x1.dtype()), " and ",
           dtype_name(x2.dtype()));
}

}  // namespace

Tensor cosine_similarity(const Tensor& x1, const Tensor& x2, std::int64_t dim, double eps) {
  check_pair("cosine_similarity", x1, x2);
  TG_CHECK(eps > 0, "cosine_similarity: eps must be positive, got ", eps);
  // Both expanded to their common shape first, as PyTorch's: dim counts there.
  const Tensor product = x1 * x2;
  const auto d = std::int64_t(wrap_dim("cosine_similarity", dim, product.dim(), product.shape()));
  const Tensor squares = sum((x1 * x1).expand(kernels::as_signed(product.shape())), {d}) *
                         sum((x2 * x2).expand(kernels::as_signed(product.shape())), {d});
  return sum(product, {d}) / sqrt(clamp(squares, eps * eps, std::nullopt));
}

Tensor pairwise_distance(const Tensor& x1, const Tensor& x2, double p, double eps, bool keepdim) {
  check_pair("pairwise_distance", x1, x2);
  TG_CHECK(p > 0, "pairwise_distance: p must be positive (or infinity), got ", p);
  const Tensor difference = x1 - x2 + eps;
  TG_CHECK(difference.dim() >= 1, "pairwise_distance: expected inputs with at least one dim, got 0-d tensors");
  // norm's gradient is 0 at a zero distance (x1 - x2 = -eps), as PyTorch's; sqrt of a sum of
  // squares had given NaN there.
  return norm(difference, p, {-1}, keepdim);
}

}  // namespace tg
