// Gradient clipping, in place, as torch.nn.utils.clip_grad_norm_ / clip_grad_value_.
#pragma once

#include <vector>

#include "../core/tensor.hpp"

namespace tg::optim {

// Scales every gradient by max_norm / (total_norm + 1e-6) when that is below 1, where total_norm
// is the norm_type-norm of all gradients together (INFINITY for the max norm). Returns total_norm.
// Parameters without a gradient are skipped. With error_if_nonfinite a NaN or infinite total norm
// throws (and leaves the gradients as they were) instead of scaling them by it.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);
// Clamps every gradient to [-clip_value, clip_value].
void clip_grad_value_(const std::vector<Tensor>& params, double clip_value);

}  // namespace tg::optim
