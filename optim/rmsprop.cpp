#include "optim/rmsprop.hpp"

#include <cmath>

#include "core/creation.hpp"

namespace tg::optim {

void RMSpropOptions::validate() const {
  TG_CHECK(lr_ >= 0, "RMSprop: invalid learning rate lr=", lr_, " (must be >= 0)");
  TG_CHECK(eps_ >= 0, "RMSprop: invalid eps=", eps_, " (must be >= 0)");
  TG_CHECK(alpha_ >= 0, "RMSprop: invalid alpha=", alpha_, " (must be >= 0)");
  TG_CHECK(momentum_ >= 0, "RMSprop: invalid momentum=", momentum_, " (must be >= 0)");
  TG_CHECK(weight_decay_ >= 0, "RMSprop: invalid weight_decay=", weight_decay_, " (must be >= 0)");
}

std::vector<std::pair<std::string, double>> RMSpropOptions::values() const {
  return {{"lr", lr_}, {"alpha", alpha_}, {"eps", eps_}, {"weight_decay", weight_decay_},
          {"momentum", momentum_}, {"centered", centered_ ? 1.0 : 0.0}};
}

void RMSpropOptions::set_values(const std::vector<std::pair<std::string, double>>& v) {
  lr_ = option_value(v, "lr", "RMSprop");
  alpha_ = option_value(v, "alpha", "RMSprop");
  eps_ = option_value(v, "eps", "RMSprop");
  weight_decay_ = option_value(v, "weight_decay", "RMSprop");
  momentum_ = option_value(v, "momentum", "RMSprop");
  centered_ = option_value(v, "centered", "RMSprop") != 0.0;
}

void RMSprop::update(Tensor& param, const Tensor& grad, ParamState& state, const RMSpropOptions& o) {
  ++state.step;
  dispatch_floating(param.dtype(), "RMSprop", [&]<class T>() {
    T* p = param.values_mut<T>().data();
    const T* g = grad.data<T>();
    T* square_avg = state.buffer("square_avg", param, 0.0).template values_mut<T>().data();
    T* grad_avg = o.centered() ? state.buffer("grad_avg", param, 0.0).template values_mut<T>().data() : nullptr;
    T* buf = o.momentum() > 0 ? state.buffer("momentum_buffer", param, 0.0).template values_mut<T>().data() : nullptr;
    const T one_minus_alpha = T(1 - o.alpha());
    const T alpha = T(o.alpha()), eps = T(o.eps()), lr = T(o.lr()), wd = T(o.weight_decay()), momentum = T(o.momentum());
    for_each_value(param.numel(), [&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) {
        const T gi = wd != T(0) ? g[i] + wd * p[i] : g[i];
        square_avg[i] = square_avg[i] * alpha + one_minus_alpha * gi * gi;
        T avg;
        if (grad_avg) {
          grad_avg[i] = lerp(grad_avg[i], gi, one_minus_alpha);
          avg = std::sqrt(square_avg[i] - grad_avg[i] * grad_avg[i]) + eps;
        } else {
          avg = std::sqrt(square_avg[i]) + eps;
        }
        if (buf) {
          buf[i] = buf[i] * momentum + gi / avg;
          p[i] = p[i] - lr * buf[i];
        } else {
          p[i] = p[i] - lr * (gi / avg);
        }
      }
    });
  });
}

}  // namespace tg::optim
