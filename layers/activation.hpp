// Activation layers: ReLU, LeakyReLU, PReLU, Sigmoid, Tanh, GELU, SiLU, Mish, ELU, SELU, Hardtanh,
// ReLU6, Hardsigmoid, Hardswish, Softmax, LogSoftmax. Each calls the op of the same name in
// core/ops/activation.hpp.
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

}  // namespace tg::nn
