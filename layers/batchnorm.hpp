// BatchNorm1d, BatchNorm2d and BatchNorm3d, in PyTorch's convention or MindSpore's, over tg::batch_norm.
//
//   PyTorch:   BatchNorm1d bn(BatchNorm1dOptions(4).momentum(0.1));   // training mode; train()/eval()
//   MindSpore: BatchNorm1d bn(BatchNorm1dOptions::mindspore(4).momentum(0.9));  // inference mode;
//              bn.set_train() switches to training, use_batch_statistics overrides the mode.
//
// The two conventions differ in defaults, names and in what momentum means:
//   momentum_pytorch = 1 - momentum_mindspore  (PyTorch weighs the new statistic, MindSpore the old).
// See the README section "BatchNorm1d: PyTorch and MindSpore styles".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "module.hpp"

namespace tg {
class BatchNormSync;  // core/ops/normalization.hpp
}

namespace tg::nn {

// How a MindSpore-style tensor starts: "ones", "zeros", "normal" (N(0, 0.01²), MindSpore's
// Normal()), "uniform" (U(-0.07, 0.07), MindSpore's Uniform()), a number, or a tensor of shape [C].
class Init {
 public:
  Init(const char* name) : value_(std::string(name)) {}  // NOLINT: implicit, like MindSpore's strings
  Init(std::string name) : value_(std::move(name)) {}    // NOLINT
  Init(double constant) : value_(constant) {}            // NOLINT
  Init(Tensor tensor) : value_(std::move(tensor)) {}     // NOLINT
  // A tensor of [channels] values (float32), or an error naming `what`.
  Tensor make(std::size_t channels, const char* what) const;
  std::string str() const;  // for printing

 private:
  std::variant<std::string, double, Tensor> value_;
};

class MindSporeBatchNorm1dOptions;

// The options of either convention. Each convention's setters live on its own class: PyTorch's
// here, MindSpore's on MindSporeBatchNorm1dOptions (from BatchNorm1dOptions::mindspore), so that
// setting an option of the other convention does not compile. The layer reads every option
// through the getters below, whichever class set them.
class BatchNorm1dOptions {
 public:
  enum class Convention { PyTorch, MindSpore };

  // PyTorch's convention: momentum 0.1 (weight of the new statistic), affine, track_running_stats.
  explicit BatchNorm1dOptions(std::int64_t num_features) : num_features_(num_features) {}
  // MindSpore's convention: momentum 0.9 (weight of the old statistic), gamma/beta/moving_* names,
  // inference mode until set_train(), use_batch_statistics, data_format.
  static MindSporeBatchNorm1dOptions mindspore(std::int64_t num_features);

  // Both conventions.
  BatchNorm1dOptions& eps(double v) { eps_ = v; return *this; }
  // PyTorch: weight of the new statistic, std::nullopt for a cumulative average (1/num_batches_tracked).
  // MindSpore: weight of the old statistic, in [0, 1].
  BatchNorm1dOptions& momentum(std::optional<double> v) { momentum_ = v; return *this; }
  BatchNorm1dOptions& affine(bool on) { affine_ = on; return *this; }
  // true (PyTorch, MindSpore on GPU/Ascend): running_var gets the unbiased batch variance n/(n-1);
  // false: the biased one, as MindSpore on CPU does.
  BatchNorm1dOptions& running_var_unbiased(bool on) { running_var_unbiased_ = on; return *this; }
  // PyTorch only.
  BatchNorm1dOptions& track_running_stats(bool on) { track_running_stats_ = on; return *this; }

  Convention convention() const { return convention_; }
  std::int64_t num_features() const { return num_features_; }
  double eps() const { return eps_; }
  std::optional<double> momentum() const { return momentum_; }
  bool affine() const { return affine_; }
  bool running_var_unbiased() const { return running_var_unbiased_; }
  bool track_running_stats() const { return track_running_stats_; }
  const Init& gamma_init() const { return gamma_init_; }
  const Init& beta_init() const { return beta_init_; }
  const Init& moving_mean_init() const { return moving_mean_init_; }
  const Init& moving_var_init() const { return moving_var_init_; }
  std::optional<bool> use_batch_statistics() const { return use_batch_statistics_; }
  const std::string& data_format() const { return data_format_; }

 private:
  friend class MindSporeBatchNorm1dOptions;
  Convention convention_ = Convention::PyTorch;
  std::int64_t num_features_;
  double eps_ = 1e-5;
  std::optional<double> momentum_ = 0.1;
  bool affine_ = true;
  bool running_var_unbiased_ = true;
  bool track_running_stats_ = true;
  Init gamma_init_ = "ones", beta_init_ = "zeros", moving_mean_init_ = "zeros", moving_var_init_ = "ones";
  std::optional<bool> use_batch_statistics_;
  std::string data_format_ = "NCHW";
};

// MindSpore's convention, with MindSpore's names and defaults; it has no track_running_stats.
class MindSporeBatchNorm1dOptions {
 public:
  explicit MindSporeBatchNorm1dOptions(std::int64_t num_features) : options_(num_features) {
    options_.convention_ = BatchNorm1dOptions::Convention::MindSpore;
    options_.momentum_ = 0.9;
  }
  MindSporeBatchNorm1dOptions& eps(double v) { options_.eps_ = v; return *this; }
  // The weight of the old statistic, in [0, 1]: momentum_pytorch = 1 - momentum_mindspore.
  MindSporeBatchNorm1dOptions& momentum(double v) { options_.momentum_ = v; return *this; }
  MindSporeBatchNorm1dOptions& affine(bool on) { options_.affine_ = on; return *this; }
  MindSporeBatchNorm1dOptions& running_var_unbiased(bool on) { options_.running_var_unbiased_ = on; return *this; }
  MindSporeBatchNorm1dOptions& gamma_init(Init init) { options_.gamma_init_ = std::move(init); return *this; }
  MindSporeBatchNorm1dOptions& beta_init(Init init) { options_.beta_init_ = std::move(init); return *this; }
  MindSporeBatchNorm1dOptions& moving_mean_init(Init init) { options_.moving_mean_init_ = std::move(init); return *this; }
  MindSporeBatchNorm1dOptions& moving_var_init(Init init) { options_.moving_var_init_ = std::move(init); return *this; }
  MindSporeBatchNorm1dOptions& use_batch_statistics(std::optional<bool> v) { options_.use_batch_statistics_ = v; return *this; }
  MindSporeBatchNorm1dOptions& data_format(std::string v) { options_.data_format_ = std::move(v); return *this; }
  // The layer takes these as BatchNorm1dOptions (read through its getters).
  operator const BatchNorm1dOptions&() const { return options_; }  // NOLINT: implicit on purpose

 private:
  BatchNorm1dOptions options_;
};

inline MindSporeBatchNorm1dOptions BatchNorm1dOptions::mindspore(std::int64_t num_features) {
  return MindSporeBatchNorm1dOptions(num_features);
}

class BatchNorm1d : public Module {
 public:
  explicit BatchNorm1d(const BatchNorm1dOptions& options) : BatchNorm1d(options, "BatchNorm1d", 1) {}
  explicit BatchNorm1d(std::int64_t num_features) : BatchNorm1d(BatchNorm1dOptions(num_features)) {}

  // BatchNorm1d: (N, C) or (N, C, L); (N, L, C) with data_format "NHWC".
  // BatchNorm2d: (N, C, H, W); (N, H, W, C) with data_format "NHWC".
  // BatchNorm3d: (N, C, D, H, W); (N, D, H, W, C) with data_format "NHWC".
  Tensor forward(const Tensor& input) override;
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<BatchNorm1d>(options); }

  const BatchNorm1dOptions options;

  // The same tensors under both conventions' names; undefined where the configuration has none.
  Tensor weight, bias;                  // MindSpore: gamma, beta
  Tensor running_mean, running_var;     // MindSpore: moving_mean, moving_variance
  Tensor num_batches_tracked;           // int64 scalar, PyTorch with track_running_stats only
  const Tensor& gamma() const { return weight; }
  const Tensor& beta() const { return bias; }
  const Tensor& moving_mean() const { return running_mean; }
  const Tensor& moving_variance() const { return running_var; }

  // Batch statistics over every process of a data-parallel job instead of this process's batch
  // alone (what SyncBatchNorm and tg::distributed::convert_sync_batchnorm set; the layer then
  // prints as SyncBatchNorm). Null: this process's batch only.
  void set_sync(std::shared_ptr<const BatchNormSync> sync);
  bool is_sync() const { return sync_ != nullptr; }

 protected:
  // The 2-d layer is this one over (N, C, H·W): the same state, conventions and kernel.
  // spatial_dims 0 takes input of any rank >= 2 (SyncBatchNorm).
  BatchNorm1d(const BatchNorm1dOptions& options, std::string type_name, std::size_t spatial_dims);

 private:
  Tensor forward_3d(const Tensor& input);  // (N, C, ...) or (N, L, C): the statistics and the kernel
  const std::size_t spatial_dims_;
  std::shared_ptr<const BatchNormSync> sync_;
};

// BatchNorm2d, in either convention (the options are BatchNorm1d's: BatchNorm2dOptions(C) or
// BatchNorm2dOptions::mindspore(C)); statistics per channel over N·H·W values.
using BatchNorm2dOptions = BatchNorm1dOptions;

class BatchNorm2d : public BatchNorm1d {
 public:
  explicit BatchNorm2d(const BatchNorm2dOptions& options) : BatchNorm1d(options, "BatchNorm2d", 2) {}
  explicit BatchNorm2d(std::int64_t num_features) : BatchNorm2d(BatchNorm2dOptions(num_features)) {}
  std::shared_ptr<Module> fresh() const override { return std::make_shared<BatchNorm2d>(options); }
};

// BatchNorm3d over (N, C, D, H, W) (volumes, video), in either convention; statistics per channel
// over N·D·H·W values, the same kernel; (N, D, H, W, C) with data_format "NHWC".
using BatchNorm3dOptions = BatchNorm1dOptions;

class BatchNorm3d : public BatchNorm1d {
 public:
  explicit BatchNorm3d(const BatchNorm3dOptions& options) : BatchNorm1d(options, "BatchNorm3d", 3) {}
  explicit BatchNorm3d(std::int64_t num_features) : BatchNorm3d(BatchNorm3dOptions(num_features)) {}
  std::shared_ptr<Module> fresh() const override { return std::make_shared<BatchNorm3d>(options); }
};

}  // namespace tg::nn
