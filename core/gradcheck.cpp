#include "core/gradcheck.hpp"
#include "core/xtensor.hpp"

#include <cmath>
#include <sstream>

#include "core/autograd.hpp"
#include "core/creation.hpp"

namespace tg {

namespace {

Shape unravel(std::size_t flat, const Shape& shape) {
  Shape index(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    index[d] = flat % shape[d];
    flat /= shape[d];
  }
  return index;
}

}  // namespace

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options) {
  // Like torch.autograd.gradcheck, the caller's own tensors are used (so a module's parameters
  // can be checked through the module): values are perturbed in place and restored, and the
  // gradients they had are put back at the end.
  std::vector<Tensor> leaves = inputs;
  std::vector<Tensor> saved_grads;
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    const Tensor& input = leaves[i];
    if (input.requires_grad()) {
      TG_CHECK(input.dtype() == kFloat64, "gradcheck: input ", i, " is ", dtype_name(input.dtype()),
               " ", shape_str(input.shape()), "; inputs that require grad must be float64");
      TG_CHECK(input.is_leaf(), "gradcheck: input ", i, " requires grad but is not a leaf (use detach())");
    }
    saved_grads.push_back(input.grad());
  }
  struct RestoreGrads {
    std::vector<Tensor>& leaves;
    std::vector<Tensor>& grads;
    ~RestoreGrads() {
      for (std::size_t i = 0; i < leaves.size(); ++i) leaves[i].set_grad(grads[i]);
    }
  } restore{leaves, saved_grads};

  const Tensor output = fn(leaves);
  TG_CHECK(output.defined() && is_floating(output.dtype()), "gradcheck: fn must return a floating tensor");
  const std::size_t outputs = output.numel();

  // analytical[i][k * outputs + j] = d output[j] / d input_i[k], one backward per output element.
  std::vector<std::vector<double>> analytical(leaves.size());
  for (std::size_t i = 0; i < leaves.size(); ++i)
    if (leaves[i].requires_grad()) analytical[i].assign(leaves[i].numel() * outputs, 0.0);
  for (std::size_t j = 0; j < outputs && output.requires_grad(); ++j) {
    for (Tensor& leaf : leaves) leaf.set_grad(Tensor());
    Tensor seed = zeros_like(output);
    {
      NoGradGuard no_grad;
      dispatch_floating(seed.dtype(), "gradcheck", [&]<class T>() { seed.mutable_data<T>()[j] = T(1); });
    }
    output.backward(seed, /*retain_graph=*/true);
    for (std::size_t i = 0; i < leaves.size(); ++i) {
      if (!leaves[i].requires_grad() || !leaves[i].grad().defined()) continue;  // unreached: zeros
      const std::vector<double> g = leaves[i].grad().to_vector<double>();
      for (std::size_t k = 0; k < g.size(); ++k) analytical[i][k * outputs + j] = g[k];
    }
  }

  // Numerical columns by central differences, and the worst disagreement.
  GradcheckResult result;
  double worst = 0.0;
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    if (!leaves[i].requires_grad()) continue;
    double* values = leaves[i].mutable_data<double>();
    for (std::size_t k = 0; k < leaves[i].numel(); ++k) {
      const double original = values[k];
      values[k] = original + options.eps();
      const std::vector<double> plus = fn(leaves).to_vector<double>();
      values[k] = original - options.eps();
      const std::vector<double> minus = fn(leaves).to_vector<double>();
      values[k] = original;
      for (std::size_t j = 0; j < outputs; ++j) {
        const double numerical = (plus[j] - minus[j]) / (2 * options.eps());
        const double exact = analytical[i][k * outputs + j];
        const double excess = std::fabs(exact - numerical) - (options.atol() + options.rtol() * std::fabs(numerical));
        if (excess > worst || (std::isnan(excess) && result.ok)) {
          worst = std::isnan(excess) ? INFINITY : excess;
          result.ok = false;
          std::ostringstream message;
          message << "gradcheck: Jacobian mismatch for input " << i << " " << shape_str(leaves[i].shape())
                  << " at element " << shape_str(unravel(k, leaves[i].shape())) << ", output element "
                  << shape_str(unravel(j, output.shape())) << ": analytical " << exact << " vs numerical "
                  << numerical << " (atol " << options.atol() << ", rtol " << options.rtol() << ")";
          result.message = message.str();
        }
      }
    }
  }
  return result;
}

}  // namespace tg
