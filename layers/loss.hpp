// Loss modules: MSELoss, L1Loss, SmoothL1Loss, HuberLoss, CrossEntropyLoss, NLLLoss, BCELoss,
// BCEWithLogitsLoss, KLDivLoss, SoftMarginLoss, PoissonNLLLoss, MultiLabelSoftMarginLoss,
// HingeEmbeddingLoss, and over three inputs CosineEmbeddingLoss, MarginRankingLoss, TripletMarginLoss.
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

class HingeEmbeddingLoss : public Loss {
 public:
  explicit HingeEmbeddingLoss(double margin = 1.0, Reduction reduction = Reduction::Mean)
      : Loss("HingeEmbeddingLoss", reduction), margin(margin) {}
  Tensor forward(const Tensor& input, const Tensor& target) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<HingeEmbeddingLoss>(margin, reduction); }
  const double margin;
};

// The shared shape of the three-input losses: loss(a, b, c).
class Loss3 : public Module {
 public:
  virtual Tensor forward(const Tensor& a, const Tensor& b, const Tensor& c) = 0;
  using Module::forward;  // (the one-input form throws: these take three)
  Tensor operator()(const Tensor& a, const Tensor& b, const Tensor& c) { return forward(a, b, c); }
  void print_options(std::ostream& out) const override;  // "margin=..., reduction=..."
  const double margin;
  const Reduction reduction;

 protected:
  Loss3(std::string name, double margin, Reduction reduction);
};

// forward(x1, x2, y), y = ±1 per pair.
class CosineEmbeddingLoss : public Loss3 {
 public:
  explicit CosineEmbeddingLoss(double margin = 0.0, Reduction reduction = Reduction::Mean)
      : Loss3("CosineEmbeddingLoss", margin, reduction) {}
  Tensor forward(const Tensor& x1, const Tensor& x2, const Tensor& y) override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<CosineEmbeddingLoss>(margin, reduction); }
};

// forward(x1, x2, y), y = ±1: x1 should rank above x2 where y = 1.
class MarginRankingLoss : public Loss3 {
 public:
  explicit MarginRankingLoss(double margin = 0.0, Reduction reduction = Reduction::Mean)
      : Loss3("MarginRankingLoss", margin, reduction) {}
  Tensor forward(const Tensor& x1, const Tensor& x2, const Tensor& y) override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<MarginRankingLoss>(margin, reduction); }
};

// forward(anchor, positive, negative); PyTorch's argument order: margin, p, eps, swap, reduction.
class TripletMarginLoss : public Loss3 {
 public:
  explicit TripletMarginLoss(double margin = 1.0, double p = 2.0, double eps = 1e-6, bool swap = false,
                             Reduction reduction = Reduction::Mean);
  Tensor forward(const Tensor& anchor, const Tensor& positive, const Tensor& negative) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override {
    return std::make_shared<TripletMarginLoss>(margin, p, eps, swap, reduction);
  }
  const double p, eps;
  const bool swap;
};

}  // namespace tg::nn
