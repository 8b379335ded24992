#include "optim/adagrad.hpp"
#include "core/xtensor.hpp"

#include <cmath>

#include "core/creation.hpp"
#include "core/ops/kernels.hpp"  // TG_INDEPENDENT_ITERATIONS

namespace tg::optim {

void AdagradOptions::validate() const {
  TG_CHECK(lr_ >= 0, "Adagrad: invalid learning rate lr=", lr_, " (must be >= 0)");
  TG_CHECK(lr_decay_ >= 0, "Adagrad: invalid lr_decay=", lr_decay_, " (must be >= 0)");
  TG_CHECK(weight_decay_ >= 0, "Adagrad: invalid weight_decay=", weight_decay_, " (must be >= 0)");
  TG_CHECK(initial_accumulator_value_ >= 0, "Adagrad: invalid initial_accumulator_value=", initial_accumulator_value_,
           " (must be >= 0)");
  TG_CHECK(eps_ >= 0, "Adagrad: invalid eps=", eps_, " (must be >= 0)");
}

void Adagrad::update(Tensor& param, const Tensor& grad, ParamState& state, const AdagradOptions& o) {
  const std::int64_t t = ++state.step;
  const double clr = o.lr() / (1 + double(t - 1) * o.lr_decay());
  dispatch_floating(param.dtype(), "Adagrad", [&]<class T>() {
    T* p = param.mutable_data<T>();
    const T* g = grad.data<T>();
    T* sum = state.buffer("sum", param, o.initial_accumulator_value()).template mutable_data<T>();
    const T wd = T(o.weight_decay()), eps = T(o.eps()), rate = T(clr);
    with_flags(
        [&](auto decay, auto maximize) {
          for_each_value(param.numel(), [&](std::size_t begin, std::size_t end) {
            TG_INDEPENDENT_ITERATIONS
            for (std::size_t i = begin; i < end; ++i) {
              const T gi = step_gradient<maximize(), decay()>(g[i], p[i], wd);
              sum[i] = sum[i] + gi * gi;
              p[i] = p[i] - rate * (gi / (std::sqrt(sum[i]) + eps));
            }
          });
        },
        wd != T(0), o.maximize());
  });
}

}  // namespace tg::optim
