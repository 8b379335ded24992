// BatchNorm1d: options and validation, the registered state per convention, then forward, which
// decides from the mode and the convention which statistics to use and update, and calls the
// stateless tg::batch_norm (core/ops/normalization.cpp) for the math.
#include "layers/batchnorm.hpp"
#include "core/xtensor.hpp"

#include <ostream>
#include <sstream>

#include "core/autograd.hpp"
#include "core/creation.hpp"
#include "core/ops/normalization.hpp"
#include "core/ops/shape.hpp"
#include "layers/init.hpp"

namespace tg::nn {

// ---- Init ---------------------------------------------------------------------------------------

Tensor Init::make(std::size_t channels, const char* what) const {
  if (const double* constant = std::get_if<double>(&value_)) return full({channels}, *constant);
  if (const Tensor* tensor = std::get_if<Tensor>(&value_)) {
    TG_CHECK(tensor->defined() && tensor->shape() == Shape{channels}, "BatchNorm1d: ", what, " tensor has shape ",
             tensor->defined() ? shape_str(tensor->shape()) : "undefined", ", expected [", channels, "]");
    return tensor->detach().to(kFloat32).clone();
  }
  const std::string& name = std::get<std::string>(value_);
  Tensor out = empty({channels});
  if (name == "ones") return init::ones_(out);
  if (name == "zeros") return init::zeros_(out);
  if (name == "normal") return init::normal_(out, 0.0, 0.01);      // MindSpore's Normal(sigma=0.01)
  if (name == "uniform") return init::uniform_(out, -0.07, 0.07);  // MindSpore's Uniform(scale=0.07)
  fail("BatchNorm1d: ", what, " must be \"ones\", \"zeros\", \"normal\", \"uniform\", a number or a tensor, got \"",
       name, "\"");
}

std::string Init::str() const {
  if (const double* constant = std::get_if<double>(&value_)) return detail::concat(*constant);
  if (std::holds_alternative<Tensor>(value_)) return "Tensor";
  return std::get<std::string>(value_);
}

// ---- construction -------------------------------------------------------------------------------

namespace {

void validate(const BatchNorm1dOptions& o, const std::string& name) {
  const bool ms = o.convention() == BatchNorm1dOptions::Convention::MindSpore;
  TG_CHECK(o.num_features() > 0, name, ": num_features must be a positive integer, got ", o.num_features());
  if (ms) {
    TG_CHECK(o.eps() > 0 && o.eps() <= 1, name, ": eps must be in (0, 1], got ", o.eps());
    TG_CHECK(o.momentum().has_value() && *o.momentum() >= 0 && *o.momentum() <= 1,
             name, ": momentum must be in [0, 1] (MindSpore: the weight of the old moving statistic), got ",
             o.momentum() ? detail::concat(*o.momentum()) : "None");
    TG_CHECK(o.data_format() == "NCHW" || o.data_format() == "NHWC",
             name, ": data_format must be \"NCHW\" or \"NHWC\", got \"", o.data_format(), "\"");
  } else {
    TG_CHECK(o.eps() > 0, name, ": eps must be positive, got ", o.eps());
    TG_CHECK(!o.momentum() || (*o.momentum() >= 0 && *o.momentum() <= 1),
             name, ": momentum must be in [0, 1] or nullopt (PyTorch: the weight of the new statistic), got ",
             o.momentum().value_or(0));
  }
}

}  // namespace

namespace {

// The layer's name by its spatial dims (a literal: the name outlives this layer in the graph's nodes).
const char* layer_name(std::size_t spatial_dims) {
  return spatial_dims == 3 ? "BatchNorm3d" : spatial_dims == 2 ? "BatchNorm2d" : "BatchNorm1d";
}

}  // namespace

BatchNorm1d::BatchNorm1d(const BatchNorm1dOptions& options_in, std::string type_name, std::size_t spatial_dims)
    : Module(std::move(type_name)), options(options_in), spatial_dims_(spatial_dims) {
  validate(options, this->type_name());
  const auto channels = std::size_t(options.num_features());
  if (options.convention() == BatchNorm1dOptions::Convention::PyTorch) {
    if (options.affine()) {
      weight = register_parameter("weight", ones({channels}));
      bias = register_parameter("bias", zeros({channels}));
    }
    if (options.track_running_stats()) {
      running_mean = register_buffer("running_mean", zeros({channels}));
      running_var = register_buffer("running_var", ones({channels}));
      num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, kInt64));
    }
    return;
  }
  // MindSpore: gamma and beta always exist; affine(false) freezes them (no gradient) but they are
  // still applied. The moving statistics always exist. A Cell starts in inference mode.
  weight = register_parameter("gamma", options.gamma_init().make(channels, "gamma_init"), options.affine());
  bias = register_parameter("beta", options.beta_init().make(channels, "beta_init"), options.affine());
  running_mean = register_buffer("moving_mean", options.moving_mean_init().make(channels, "moving_mean_init"));
  running_var = register_buffer("moving_variance", options.moving_var_init().make(channels, "moving_var_init"));
  train(false);
}

// ---- forward ------------------------------------------------------------------------------------

void BatchNorm1d::set_sync(std::shared_ptr<const BatchNormSync> sync) {
  sync_ = std::move(sync);
  if (spatial_dims_ != 0) set_type_name(sync_ ? "SyncBatchNorm" : layer_name(spatial_dims_));
}

Tensor BatchNorm1d::forward(const Tensor& input) {
  const Shape& shape = input.shape();
  const std::string& name = type_name();
  if (spatial_dims_ == 0)
    TG_CHECK(input.dim() >= 2, name, ": expected at least 2D input (got ", input.dim(), "D input ", shape_str(shape),
             ")");
  else if (spatial_dims_ == 1)
    TG_CHECK(input.dim() == 2 || input.dim() == 3, name, ": expected 2D or 3D input (got ", input.dim(), "D input ",
             shape_str(shape), ")");
  else
    TG_CHECK(input.dim() == spatial_dims_ + 2, name, ": expected ", spatial_dims_ + 2, "D input (got ", input.dim(),
             "D input ", shape_str(shape), ")");
  const bool channels_last = options.data_format() == "NHWC";
  const std::size_t channel_dim = channels_last && input.dim() >= 3 ? input.dim() - 1 : 1;
  TG_CHECK(std::int64_t(shape[channel_dim]) == options.num_features(), name, ": expected ",
           options.num_features(), " channels (num_features) at dim ", channel_dim, ", got input ", shape_str(shape));
  if (channels_last && input.dim() >= 4) {
    // (N, H, W, C) is the (N, H·W, C) case of the kernel.
    const auto n = std::int64_t(shape[0]), c = std::int64_t(shape[input.dim() - 1]);
    const auto positions = std::int64_t(input.numel()) / std::max<std::int64_t>(1, n * c);
    return reshape(forward_3d(reshape(input, {n, positions, c})), shape);
  }
  return forward_3d(input);
}

Tensor BatchNorm1d::forward_3d(const Tensor& input) {
  const bool channels_last = options.data_format() == "NHWC";
  BatchNormConfig config;
  // A literal: the name outlives this layer in the graph's nodes.
  config.name = sync_ ? "SyncBatchNorm" : layer_name(std::max<std::size_t>(1, spatial_dims_));
  config.sync = sync_;
  config.eps = options.eps();
  config.channels_last = channels_last;
  config.unbiased_running_var = options.running_var_unbiased();
  Tensor mean_in, var_in;  // the running statistics handed to the kernel, if any

  if (options.convention() == BatchNorm1dOptions::Convention::PyTorch) {
    // training | track_running_stats | statistics used | running statistics
    //  true    |  true               | batch           | updated
    //  true    |  false              | batch           | none exist
    //  false   |  true               | running         | unchanged
    //  false   |  false              | batch           | none exist
    const bool track = options.track_running_stats();
    config.use_batch_stats = is_training() || !track;
    config.update_running = is_training() && track;
    if (track) {
      mean_in = running_mean;
      var_in = running_var;
    }
    if (config.update_running) {
      // num_batches_tracked counts training batches; with momentum nullopt it drives a cumulative
      // moving average (momentum = 1/count). It is bumped only after the input was checked above,
      // and batch_norm's own checks come before any statistic changes.
      const std::int64_t count = num_batches_tracked.values<std::int64_t>()() + 1;
      config.momentum = options.momentum() ? *options.momentum() : 1.0 / double(count);
      Tensor out = batch_norm(input, mean_in, var_in, weight, bias, config);
      NoGradGuard no_grad;
      num_batches_tracked.values_mut<std::int64_t>()() = count;
      return out;
    }
  } else {
    // use_batch_statistics | statistics used        | moving statistics
    //  true                | batch                  | updated
    //  false               | moving                 | unchanged
    //  nullopt             | batch when set_train() | updated when set_train()
    //                      | moving otherwise       | unchanged otherwise
    config.use_batch_stats = options.use_batch_statistics().value_or(is_training());
    config.update_running = config.use_batch_stats;
    config.momentum = 1.0 - *options.momentum();  // MindSpore weighs the old statistic
    mean_in = running_mean;
    var_in = running_var;
  }
  return batch_norm(input, mean_in, var_in, weight, bias, config);
}

void BatchNorm1d::print_options(std::ostream& out) const {
  const auto bool_str = [](bool b) { return b ? "true" : "false"; };
  if (options.convention() == BatchNorm1dOptions::Convention::PyTorch) {
    out << options.num_features() << ", eps=" << options.eps() << ", momentum="
        << (options.momentum() ? detail::concat(*options.momentum()) : "None") << ", affine=" << bool_str(options.affine())
        << ", track_running_stats=" << bool_str(options.track_running_stats());
  } else {
    const auto ubs = options.use_batch_statistics();
    out << "num_features=" << options.num_features() << ", eps=" << options.eps()
        << ", momentum=" << *options.momentum() << ", affine=" << bool_str(options.affine())
        << ", gamma_init=" << options.gamma_init().str() << ", beta_init=" << options.beta_init().str()
        << ", moving_mean_init=" << options.moving_mean_init().str()
        << ", moving_var_init=" << options.moving_var_init().str()
        << ", use_batch_statistics=" << (ubs ? bool_str(*ubs) : "None") << ", data_format=" << options.data_format();
  }
  if (!options.running_var_unbiased()) out << ", running_var_unbiased=false";
}

}  // namespace tg::nn
