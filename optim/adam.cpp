#include "optim/adam.hpp"
#include "core/xtensor.hpp"

#include <cmath>

#include "core/creation.hpp"
#include "core/ops/kernels.hpp"  // TG_INDEPENDENT_ITERATIONS

namespace tg::optim {

void AdamOptions::validate(const char* optimizer) const {
  TG_CHECK(lr_ >= 0, optimizer, ": invalid learning rate lr=", lr_, " (must be >= 0)");
  TG_CHECK(eps_ >= 0, optimizer, ": invalid eps=", eps_, " (must be >= 0)");
  TG_CHECK(betas_.first >= 0 && betas_.first < 1, optimizer, ": invalid beta1=", betas_.first, " (must be in [0, 1))");
  TG_CHECK(betas_.second >= 0 && betas_.second < 1, optimizer, ": invalid beta2=", betas_.second,
           " (must be in [0, 1))");
  TG_CHECK(weight_decay_ >= 0, optimizer, ": invalid weight_decay=", weight_decay_, " (must be >= 0)");
}

namespace detail {

bool adam_buffer(const std::string& name) {
  return name == "exp_avg" || name == "exp_avg_sq" || name == "max_exp_avg_sq";
}

void adam_step(Tensor& param, const Tensor& grad, ParamState& state, const AdamOptions& o, double l2,
               double decoupled) {
  const std::int64_t t = ++state.step;
  const double beta1 = o.betas().first, beta2 = o.betas().second;  // not a structured binding: clang 14 cannot capture those
  // Scalars in double, as PyTorch computes them in Python floats.
  const double step_size = o.lr() / (1 - std::pow(beta1, double(t)));
  const double bias_correction2_sqrt = std::sqrt(1 - std::pow(beta2, double(t)));
  dispatch_floating(param.dtype(), "Adam", [&]<class T>() {
    T* p = param.mutable_data<T>();
    const T* g = grad.data<T>();
    T* m = state.buffer("exp_avg", param, 0.0).template mutable_data<T>();
    T* v = state.buffer("exp_avg_sq", param, 0.0).template mutable_data<T>();
    T* v_max = o.amsgrad() ? state.buffer("max_exp_avg_sq", param, 0.0).template mutable_data<T>() : nullptr;
    // Constants are rounded from double once, as PyTorch passes Python floats to its kernels.
    const T b2 = T(beta2), one_minus_b1 = T(1 - beta1), one_minus_b2 = T(1 - beta2);
    const T decay_rate = T(l2), eps = T(o.eps()), size = T(step_size);
    const T correction = T(bias_correction2_sqrt), keep = T(1 - o.lr() * decoupled);
    with_flags(
        [&](auto decay, auto decay_first, auto amsgrad, auto maximize) {
          for_each_value(param.numel(), [&](std::size_t begin, std::size_t end) {
            TG_INDEPENDENT_ITERATIONS
            for (std::size_t i = begin; i < end; ++i) {
              const T gi = step_gradient<maximize(), decay()>(g[i], p[i], decay_rate);
              m[i] = lerp(m[i], gi, one_minus_b1);
              v[i] = v[i] * b2 + one_minus_b2 * gi * gi;
              T second = v[i];
              if constexpr (amsgrad) second = v_max[i] = std::max(v_max[i], v[i]);
              T pi = p[i];
              if constexpr (decay_first) pi = pi * keep;
              // An explicit fma: pi stays rounded (a contraction could fold pi·keep into it).
              p[i] = std::fma(-size, m[i] / (std::sqrt(second) / correction + eps), pi);
            }
          });
        },
        l2 != 0, decoupled != 0, v_max != nullptr, o.maximize());
  });
}

}  // namespace detail

void Adam::update(Tensor& param, const Tensor& grad, ParamState& state, const AdamOptions& o) {
  detail::adam_step(param, grad, state, o, o.weight_decay(), 0.0);
}

bool Adam::known_buffer(const std::string& name) const { return detail::adam_buffer(name); }

}  // namespace tg::optim
