// tg::gradcheck: compares the tape's gradients with central finite differences, like
// torch.autograd.gradcheck.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "tensor.hpp"

namespace tg {

class GradcheckOptions {
 public:
  GradcheckOptions& eps(double v) { eps_ = v; return *this; }    // finite-difference step
  GradcheckOptions& atol(double v) { atol_ = v; return *this; }  // |analytical - numerical| <=
  GradcheckOptions& rtol(double v) { rtol_ = v; return *this; }  //   atol + rtol·|numerical|
  double eps() const { return eps_; }
  double atol() const { return atol_; }
  double rtol() const { return rtol_; }

 private:
  double eps_ = 1e-6, atol_ = 1e-5, rtol_ = 1e-3;
};

struct GradcheckResult {
  bool ok = true;
  std::string message;  // on failure: which input, which element, both values
  explicit operator bool() const { return ok; }
};

// Checks every Jacobian entry d fn(inputs)[j] / d inputs[i][k] for each input that requires grad.
// Inputs that require grad must be float64 leaves (finite differences in float32 are too coarse).
// As in PyTorch they are used as they are: `fn` may ignore them and reach them another way (a
// module's parameters); their values are perturbed in place and restored, and their gradients
// are restored at the end. `fn` must return a floating tensor and must not change its inputs.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

}  // namespace tg
