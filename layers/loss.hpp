// Loss modules: MSELoss, L1Loss, SmoothL1Loss, HuberLoss, CrossEntropyLoss, NLLLoss, BCELoss,
// BCEWithLogitsLoss, KLDivLoss, SoftMarginLoss, PoissonNLLLoss, MultiLabelSoftMarginLoss.
// Each holds its options and calls the function of the same name in core/ops/loss.hpp;
// loss(input, target) computes it.
#pragma once

#include "../core/ops/loss.hpp"
#include "module.hpp"

namespace tg::nn {

using tg::Reduction;

// The shared shape of the loss modules: options, forward(input, target), printing.
class Loss : public Module {
 public:
  virtual Tensor forward(const Tensor& input, const Tensor& target) = 0;
  using Module::forward;  // the one-input form stays visible (it throws: a loss needs a target)
  Tensor operator()(const Tensor& input, const Tensor& target) { return forward(input, target); }
  void print_options(std::ostream& out) const override;
  const Reduction reduction;

 protected:
  Loss(std::string name, Reduction reduction);  // BatchMean is KLDivLoss's only
};

class MSELoss : public Loss {
 public:
  explicit MSELoss(Reduction reduction = Reduction::Mean) : Loss("MSELoss", reduction) {}
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<MSELoss>(reduction); }
};

class L1Loss : public Loss {
 public:
  explicit L1Loss(Reduction reduction = Reduction::Mean) : Loss("L1Loss", reduction) {}
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<L1Loss>(reduction); }
};

class SmoothL1Loss : public Loss {
 public:
  explicit SmoothL1Loss(Reduction reduction = Reduction::Mean, double beta = 1.0);
  Tensor forward(const Tensor& input, const Tensor& target) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<SmoothL1Loss>(reduction, beta); }
  const double beta;
};

class HuberLoss : public Loss {
 public:
  explicit HuberLoss(Reduction reduction = Reduction::Mean, double delta = 1.0);
  Tensor forward(const Tensor& input, const Tensor& target) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<HuberLoss>(reduction, delta); }
  const double delta;
};

// Class-index losses take tg::ClassLossOptions: weight, ignore_index, reduction, label_smoothing.
class CrossEntropyLoss : public Loss {
 public:
  explicit CrossEntropyLoss(ClassLossOptions options = {});
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<CrossEntropyLoss>(options); }
  const ClassLossOptions options;
};

class NLLLoss : public Loss {
 public:
  explicit NLLLoss(ClassLossOptions options = {});
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<NLLLoss>(options); }
  const ClassLossOptions options;
};

class BCELoss : public Loss {
 public:
  explicit BCELoss(Reduction reduction = Reduction::Mean, Tensor weight = Tensor());
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<BCELoss>(reduction, weight); }
  const Tensor weight;
};

class BCEWithLogitsLoss : public Loss {
 public:
  explicit BCEWithLogitsLoss(Reduction reduction = Reduction::Mean, Tensor weight = Tensor(),
                             Tensor pos_weight = Tensor());
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::shared_ptr<Module> fresh() const override {
    return std::make_shared<BCEWithLogitsLoss>(reduction, weight, pos_weight);
  }
  const Tensor weight, pos_weight;
};

// input holds log-probabilities; Reduction::BatchMean is the divergence per sample.
class KLDivLoss : public Loss {
 public:
  explicit KLDivLoss(Reduction reduction = Reduction::Mean, bool log_target = false)
      : Loss("KLDivLoss", reduction), log_target(log_target) {}
  Tensor forward(const Tensor& input, const Tensor& target) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<KLDivLoss>(reduction, log_target); }
  const bool log_target;
};

class SoftMarginLoss : public Loss {
 public:
  explicit SoftMarginLoss(Reduction reduction = Reduction::Mean);
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<SoftMarginLoss>(reduction); }
};

// PyTorch's argument order: log_input, full, eps, reduction.
class PoissonNLLLoss : public Loss {
 public:
  explicit PoissonNLLLoss(bool log_input = true, bool full = false, double eps = 1e-8,
                          Reduction reduction = Reduction::Mean);
  Tensor forward(const Tensor& input, const Tensor& target) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override {
    return std::make_shared<PoissonNLLLoss>(log_input, full, eps, reduction);
  }
  const bool log_input, full;
  const double eps;
};

class MultiLabelSoftMarginLoss : public Loss {
 public:
  explicit MultiLabelSoftMarginLoss(Tensor weight = Tensor(), Reduction reduction = Reduction::Mean);
  Tensor forward(const Tensor& input, const Tensor& target) override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<MultiLabelSoftMarginLoss>(weight, reduction); }
  const Tensor weight;
};

}  // namespace tg::nn
