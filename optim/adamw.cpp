#include "optim/adamw.hpp"
#include "../core/xtensor.hpp"

namespace tg::optim {

void AdamW::update(Tensor& param, const Tensor& grad, ParamState& state, const AdamWOptions& o) {
  detail::adam_step(param, grad, state, o, 0.0, o.weight_decay());
}

}  // namespace tg::optim
