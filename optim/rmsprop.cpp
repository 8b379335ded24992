#include "optim/rmsprop.hpp"
#include "core/xtensor.hpp"

#include <cmath>

#include "core/creation.hpp"
#include "core/ops/kernels.hpp"  // TG_INDEPENDENT_ITERATIONS

namespace tg::optim {

void RMSpropOptions::validate() const {
  TG_CHECK(lr_ >= 0, "RMSprop: invalid learning rate lr=", lr_, " (must be >= 0)");
  TG_CHECK(eps_ >= 0, "RMSprop: invalid eps=", eps_, " (must be >= 0)");
  TG_CHECK(alpha_ >= 0, "RMSprop: invalid alpha=", alpha_, " (must be >= 0)");
  TG_CHECK(momentum_ >= 0, "RMSprop: invalid momentum=", momentum_, " (must be >= 0)");
  TG_CHECK(weight_decay_ >= 0, "RMSprop: invalid weight_decay=", weight_decay_, " (must be >= 0)");
}

void RMSprop::update(Tensor& param, const Tensor& grad, ParamState& state, const RMSpropOptions& o) {
  ++state.step;
  dispatch_floating(param.dtype(), "RMSprop", [&]<class T>() {
    T* p = param.mutable_data<T>();
    const T* g = grad.data<T>();
    T* square_avg = state.buffer("square_avg", param, 0.0).template mutable_data<T>();
    T* grad_avg = o.centered() ? state.buffer("grad_avg", param, 0.0).template mutable_data<T>() : nullptr;
    T* buf = o.momentum() > 0 ? state.buffer("momentum_buffer", param, 0.0).template mutable_data<T>() : nullptr;
    const T one_minus_alpha = T(1 - o.alpha());
    const T alpha = T(o.alpha()), eps = T(o.eps()), lr = T(o.lr()), wd = T(o.weight_decay()), momentum = T(o.momentum());
    with_flags(
        [&](auto decay, auto centered, auto has_momentum, auto maximize) {
          for_each_value(param.numel(), [&](std::size_t begin, std::size_t end) {
            TG_INDEPENDENT_ITERATIONS
            for (std::size_t i = begin; i < end; ++i) {
              const T gi = step_gradient<maximize(), decay()>(g[i], p[i], wd);
              square_avg[i] = square_avg[i] * alpha + one_minus_alpha * gi * gi;
              T avg;
              if constexpr (centered) {
                grad_avg[i] = lerp(grad_avg[i], gi, one_minus_alpha);
                avg = std::sqrt(square_avg[i] - grad_avg[i] * grad_avg[i]) + eps;
              } else {
                avg = std::sqrt(square_avg[i]) + eps;
              }
              if constexpr (has_momentum) {
                buf[i] = buf[i] * momentum + gi / avg;
                p[i] = p[i] - lr * buf[i];
              } else {
                p[i] = p[i] - lr * (gi / avg);
              }
            }
          });
        },
        wd != T(0), grad_avg != nullptr, buf != nullptr, o.maximize());
  });
}

}  // namespace tg::optim
