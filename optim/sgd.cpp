#include "optim/sgd.hpp"
#include "../core/xtensor.hpp"

#include <cmath>

#include "../core/ops/kernels.hpp"  // TG_INDEPENDENT_ITERATIONS

namespace tg::optim {

void SGDOptions::validate() const {
  TG_CHECK(lr_ >= 0, "SGD: invalid learning rate lr=", lr_, " (must be >= 0)");
  TG_CHECK(momentum_ >= 0, "SGD: invalid momentum=", momentum_, " (must be >= 0)");
  TG_CHECK(weight_decay_ >= 0, "SGD: invalid weight_decay=", weight_decay_, " (must be >= 0)");
  TG_CHECK(!nesterov_ || (momentum_ > 0 && dampening_ == 0), "SGD: nesterov needs momentum > 0 and dampening = 0, got "
           "momentum=", momentum_, ", dampening=", dampening_);
}

void SGD::update(Tensor& param, const Tensor& grad, ParamState& state, const SGDOptions& o) {
  const bool first = !state.buffers.contains("momentum_buffer");
  dispatch_floating(param.dtype(), "SGD", [&]<class T>() {
    T* p = param.mutable_data<T>();
    const T* g = grad.data<T>();
    T* buf = o.momentum() != 0 ? state.buffer("momentum_buffer", grad).template mutable_data<T>() : nullptr;
    const T lr = T(o.lr()), wd = T(o.weight_decay()), momentum = T(o.momentum()), keep = T(1 - o.dampening());
    with_flags(
        [&](auto decay, auto has_momentum, auto nesterov, auto first_step, auto maximize) {
          for_each_value(param.numel(), [&](std::size_t begin, std::size_t end) {
            TG_INDEPENDENT_ITERATIONS
            for (std::size_t i = begin; i < end; ++i) {
              T d = step_gradient<maximize(), decay()>(g[i], p[i], wd);
              if constexpr (has_momentum) {
                if constexpr (first_step) buf[i] = d;
                else buf[i] = buf[i] * momentum + keep * d;
                if constexpr (nesterov) d = d + momentum * buf[i];
                else d = buf[i];
              }
              p[i] = p[i] - lr * d;
            }
          }, parallel::kGrain);
        },
        o.weight_decay() != 0, buf != nullptr, o.nesterov(), first, o.maximize());
  });
  ++state.step;
}

}  // namespace tg::optim
