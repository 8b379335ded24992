#include "optim/clip_grad.hpp"
#include "core/xtensor.hpp"

#include <cmath>
#include <span>

#include "core/autograd.hpp"
#include "core/ops/kernels.hpp"

namespace tg::optim {

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type, bool error_if_nonfinite) {
  TG_CHECK(norm_type > 0, "clip_grad_norm_: norm_type must be positive (or INFINITY), got ", norm_type);
  // Per-gradient norms first, then the norm of those norms, as PyTorch: the same value, computed
  // in double.
  std::vector<double> norms;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    double acc = 0;
    dispatch_floating(g.dtype(), "clip_grad_norm_", [&]<class T>() {
      const T* values = g.data<T>();
      // Norms 2 and 1 (the common ones) as double sums in SIMD lanes; the others one value at a time.
      if (norm_type == 2.0 || norm_type == 1.0) {
        acc = norm_type == 2.0 ? kernels::lane_sum(g.numel(), [values](auto at) { return at(values) * at(values); })
                               : kernels::lane_sum(g.numel(), [values](auto at) { return xsimd::abs(at(values)); });
        return;
      }
      for (T v : std::span<const T>(values, g.numel())) {
        const double a = std::fabs(double(v));
        if (std::isinf(norm_type)) acc = std::max(acc, a);
        else acc += std::pow(a, norm_type);
      }
    });
    norms.push_back(std::isinf(norm_type) ? acc : std::pow(acc, 1.0 / norm_type));
  }
  if (norms.empty()) return 0.0;
  double total = 0;
  for (double n : norms) total = std::isinf(norm_type) ? std::max(total, n) : total + std::pow(n, norm_type);
  if (!std::isinf(norm_type)) total = std::pow(total, 1.0 / norm_type);
  TG_CHECK(!error_if_nonfinite || std::isfinite(total), "clip_grad_norm_: the total norm of order ", norm_type,
           " for gradients from `parameters` is non-finite (", total, "), so it cannot be clipped. To disable "
           "this error and scale the gradients by the non-finite norm anyway, set error_if_nonfinite=false");
  const double coefficient = std::min(1.0, max_norm / (total + 1e-6));
  NoGradGuard no_grad;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    dispatch_floating(g.dtype(), "clip_grad_norm_", [&]<class T>() { g.values_mut<T>() *= T(coefficient); });
  }
  return total;
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
  TG_CHECK(clip_value >= 0, "clip_grad_value_: clip_value must be non-negative, got ", clip_value);
  NoGradGuard no_grad;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    dispatch_floating(g.dtype(), "clip_grad_value_", [&]<class T>() {
      for (T& v : std::span<T>(g.mutable_data<T>(), g.numel())) v = std::clamp(v, T(-clip_value), T(clip_value));
    });
  }
}

}  // namespace tg::optim
