#include "optim/adamw.hpp"
#include "../core/xtensor.hpp"

namespace tg::optim {

void AdamW::update(Tensor& param, const Tensor& grad, ParamState& state, const AdamWOptions& o) {
  dispatch_floating(param.dtype(), "AdamW", [&]<class T>() {
    T* p = param.mutable_data<T>();
    const T keep = T(1 - o.lr() * o.weight_decay());
    for_each_value(param.numel(), [&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) p[i] = p[i] * keep;
    });
  });
  detail::adam_step(param, grad, state, o, 0.0);
}

}  // namespace tg::optim
