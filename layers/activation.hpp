// Activation layers: ReLU, LeakyReLU, PReLU, Sigmoid, Tanh, GELU, SiLU, Mish, ELU, SELU, CELU,
// Hardtanh, ReLU6, Hardsigmoid, Hardswish, Softplus, LogSigmoid, Softsign, Tanhshrink, Hardshrink,
// Softshrink, Threshold, GLU, Softmax, LogSoftmax, Softmin, Softmax2d. Each calls the op of the same
// name in core/ops/activation.hpp (Softmax2d: softmax over the channels, dim -3).
#pragma once

#include <cstdint>
#include <string>

#include "module.hpp"

namespace tg::nn {

class ReLU : public Module {
 public:
  ReLU() : Module("ReLU") {}
  Tensor forward(const Tensor& input) override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<ReLU>(); }
};

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double negative_slope = 0.01) : Module("LeakyReLU"), negative_slope(negative_slope) {}
  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<LeakyReLU>(negative_slope); }
  const double negative_slope;
};

// A learned slope for the negative side: one (num_parameters 1) or one per channel (dim 1), each
// starting at `init`; the parameter is "weight", as PyTorch's.
class PReLU : public Module {
 public:
  explicit PReLU(std::int64_t num_parameters = 1, double init = 0.25);
  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<PReLU>(num_parameters, init); }
  const std::int64_t num_parameters;
  const double init;
  Tensor weight;  // (num_parameters), filled with init
};

class Sigmoid : public Module {
 public:
  Sigmoid() : Module("Sigmoid") {}
  Tensor forward(const Tensor& input) override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<Sigmoid>(); }
};

class Tanh : public Module {
 public:
  Tanh() : Module("Tanh") {}
  Tensor forward(const Tensor& input) override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<Tanh>(); }
};

class GELU : public Module {
 public:
  explicit GELU(std::string approximate = "none");  // "none" or "tanh"
  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<GELU>(approximate); }
  const std::string approximate;
};

class SiLU : public Module {
 public:
  SiLU() : Module("SiLU") {}
  Tensor forward(const Tensor& input) override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<SiLU>(); }
};

class Mish : public Module {
 public:
  Mish() : Module("Mish") {}
  Tensor forward(const Tensor& input) override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<Mish>(); }
};

class ELU : public Module {
 public:
  explicit ELU(double alpha = 1.0) : Module("ELU"), alpha(alpha) {}
  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<ELU>(alpha); }
  const double alpha;
};

class SELU : public Module {
 public:
  SELU() : Module("SELU") {}
  Tensor forward(const Tensor& input) override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<SELU>(); }
};

class CELU : public Module {
 public:
  explicit CELU(double alpha = 1.0);  // alpha != 0
  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<CELU>(alpha); }
  const double alpha;
};

class Hardtanh : public Module {
 public:
  explicit Hardtanh(double min_val = -1.0, double max_val = 1.0);
  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<Hardtanh>(min_val, max_val); }
  const double min_val, max_val;
};

class ReLU6 : public Module {
 public:
  ReLU6() : Module("ReLU6") {}
  Tensor forward(const Tensor& input) override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<ReLU6>(); }
};

class Hardsigmoid : public Module {
 public:
  Hardsigmoid() : Module("Hardsigmoid") {}
  Tensor forward(const Tensor& input) override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<Hardsigmoid>(); }
};

class Hardswish : public Module {
 public:
  Hardswish() : Module("Hardswish") {}
  Tensor forward(const Tensor& input) override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<Hardswish>(); }
};

class Softplus : public Module {
 public:
  explicit Softplus(double beta = 1.0, double threshold = 20.0)
      : Module("Softplus"), beta(beta), threshold(threshold) {}
  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<Softplus>(beta, threshold); }
  const double beta, threshold;
};

class LogSigmoid : public Module {
 public:
  LogSigmoid() : Module("LogSigmoid") {}
  Tensor forward(const Tensor& input) override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<LogSigmoid>(); }
};

class Softsign : public Module {
 public:
  Softsign() : Module("Softsign") {}
  Tensor forward(const Tensor& input) override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<Softsign>(); }
};

class Tanhshrink : public Module {
 public:
  Tanhshrink() : Module("Tanhshrink") {}
  Tensor forward(const Tensor& input) override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<Tanhshrink>(); }
};

class Hardshrink : public Module {
 public:
  explicit Hardshrink(double lambd = 0.5) : Module("Hardshrink"), lambd(lambd) {}
  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;  // "Hardshrink(0.5)", as PyTorch's
  std::shared_ptr<Module> fresh() const override { return std::make_shared<Hardshrink>(lambd); }
  const double lambd;
};

class Softshrink : public Module {
 public:
  explicit Softshrink(double lambd = 0.5);  // lambd >= 0
  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;  // "Softshrink(0.5)", as PyTorch's
  std::shared_ptr<Module> fresh() const override { return std::make_shared<Softshrink>(lambd); }
  const double lambd;
};

// value where the input <= threshold, else the input (no defaults, as PyTorch's).
class Threshold : public Module {
 public:
  Threshold(double threshold, double value) : Module("Threshold"), threshold(threshold), value(value) {}
  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<Threshold>(threshold, value); }
  const double threshold, value;
};

// The gated linear unit over dim (whose size must be even): first half · σ(second half).
class GLU : public Module {
 public:
  explicit GLU(std::int64_t dim = -1) : Module("GLU"), dim(dim) {}
  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<GLU>(dim); }
  const std::int64_t dim;
};

class Softmax : public Module {
 public:
  explicit Softmax(std::int64_t dim) : Module("Softmax"), dim(dim) {}
  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<Softmax>(dim); }
  const std::int64_t dim;
};

class LogSoftmax : public Module {
 public:
  explicit LogSoftmax(std::int64_t dim) : Module("LogSoftmax"), dim(dim) {}
  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<LogSoftmax>(dim); }
  const std::int64_t dim;
};

class Softmin : public Module {
 public:
  explicit Softmin(std::int64_t dim) : Module("Softmin"), dim(dim) {}
  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<Softmin>(dim); }
  const std::int64_t dim;
};

// Softmax over the channels of (N, C, H, W) or (C, H, W): dim -3.
class Softmax2d : public Module {
 public:
  Softmax2d() : Module("Softmax2d") {}
  Tensor forward(const Tensor& input) override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<Softmax2d>(); }
};

}  // namespace tg::nn
