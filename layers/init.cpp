#include "layers/init.hpp"
#include "core/xtensor.hpp"

#include <cmath>
#include <span>

#include "core/autograd.hpp"
#include "core/random.hpp"

namespace tg::nn::init {

namespace {

// Fills every value with draw(), in place, without recording.
template <class Draw>
Tensor& fill(const char* op, Tensor& tensor, Draw&& draw) {
  TG_CHECK(tensor.defined() && is_floating(tensor.dtype()), op, ": expected a floating-point tensor");
  NoGradGuard no_grad;
  dispatch_floating(tensor.dtype(), op, [&]<class T>() {
    for (T& v : std::span<T>(tensor.mutable_data<T>(), tensor.numel())) v = static_cast<T>(draw());
  });
  return tensor;
}

double fan(const char* op, const Tensor& tensor, const std::string& mode) {
  const auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(tensor);
  TG_CHECK(mode == "fan_in" || mode == "fan_out", op, ": mode must be \"fan_in\" or \"fan_out\", got \"", mode, "\"");
  return mode == "fan_in" ? fan_in : fan_out;
}

}  // namespace

double calculate_gain(const std::string& nonlinearity, double param) {
  if (nonlinearity == "linear" || nonlinearity == "sigmoid" || nonlinearity.rfind("conv", 0) == 0) return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") return std::sqrt(2.0 / (1.0 + param * param));
  if (nonlinearity == "selu") return 0.75;
  fail("calculate_gain: unsupported nonlinearity \"", nonlinearity, "\"");
}

std::pair<double, double> calculate_fan_in_and_fan_out(const Tensor& tensor) {
  TG_CHECK(tensor.dim() >= 2, "calculate_fan_in_and_fan_out: fans need a tensor of at least 2 dims, got ",
           shape_str(tensor.shape()));
  double receptive = 1;
  for (std::size_t d = 2; d < tensor.dim(); ++d) receptive *= double(tensor.shape()[d]);
  return {double(tensor.shape()[1]) * receptive, double(tensor.shape()[0]) * receptive};
}

Tensor& uniform_(Tensor& tensor, double low, double high, Generator generator) {
  TG_CHECK(low <= high, "uniform_: low ", low, " is greater than high ", high);
  return fill("uniform_", tensor, [&] { return low + (high - low) * generator.uniform(); });
}

Tensor& normal_(Tensor& tensor, double mean, double std, Generator generator) {
  TG_CHECK(std >= 0, "normal_: std must be non-negative, got ", std);
  NormalDraws draws(generator, tensor.defined() ? tensor.numel() : 0);
  return fill("normal_", tensor, [&] { return mean + std * draws.next(); });
}

Tensor& constant_(Tensor& tensor, double value) {
  return fill("constant_", tensor, [&] { return value; });
}
Tensor& zeros_(Tensor& tensor) { return constant_(tensor, 0.0); }
Tensor& ones_(Tensor& tensor) { return constant_(tensor, 1.0); }

Tensor& xavier_uniform_(Tensor& tensor, double gain, Generator generator) {
  const auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(tensor);
  const double a = gain * std::sqrt(6.0 / (fan_in + fan_out));
  return uniform_(tensor, -a, a, generator);
}

Tensor& xavier_normal_(Tensor& tensor, double gain, Generator generator) {
  const auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(tensor);
  return normal_(tensor, 0.0, gain * std::sqrt(2.0 / (fan_in + fan_out)), generator);
}

Tensor& kaiming_uniform_(Tensor& tensor, double a, const std::string& mode, const std::string& nonlinearity,
                         Generator generator) {
  const double bound = calculate_gain(nonlinearity, a) * std::sqrt(3.0 / fan("kaiming_uniform_", tensor, mode));
  return uniform_(tensor, -bound, bound, generator);
}

Tensor& kaiming_normal_(Tensor& tensor, double a, const std::string& mode, const std::string& nonlinearity,
                        Generator generator) {
  return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / std::sqrt(fan("kaiming_normal_", tensor, mode)),
                 generator);
}

}  // namespace tg::nn::init
