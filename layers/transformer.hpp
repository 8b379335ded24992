// Transformer layers as torch.nn's: TransformerEncoderLayer and TransformerDecoderLayer (post-norm
// by default, pre-norm with norm_first), TransformerEncoder and TransformerDecoder (deep copies of
// one layer, an optional final LayerNorm) and Transformer (both, with PyTorch's Xavier
// initialisation). Submodule and parameter names are PyTorch's (self_attn.in_proj_weight,
// linear1.weight, norm2.bias, layers.0.…, encoder.norm.weight), so a PyTorch state_dict loads by key.
//
//   tg::nn::TransformerEncoderLayer layer(tg::nn::TransformerLayerOptions(64, 4).dim_feedforward(256).batch_first(true));
//   tg::nn::TransformerEncoder encoder(layer, 3);
//   tg::Tensor y = encoder.forward(x, tg::nn::generate_square_subsequent_mask(L), padding);  // x (N, L, 64)
//
// Masks are MultiheadAttention's (layers/attention.hpp): floating-point masks are added to the
// scores, int64 masks are PyTorch's bool masks (non-zero: do not attend).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attention.hpp"
#include "dropout.hpp"
#include "layernorm.hpp"
#include "linear.hpp"
#include "module.hpp"
#include "sequential.hpp"

namespace tg::nn {

// The options of an encoder or decoder layer, with PyTorch's defaults.
class TransformerLayerOptions {
 public:
  TransformerLayerOptions(std::int64_t d_model, std::int64_t nhead) : d_model_(d_model), nhead_(nhead) {}
  TransformerLayerOptions& dim_feedforward(std::int64_t v) { dim_feedforward_ = v; return *this; }
  TransformerLayerOptions& dropout(double p) { dropout_ = p; return *this; }
  TransformerLayerOptions& activation(std::string v) { activation_ = std::move(v); return *this; }  // "relu" or "gelu"
  TransformerLayerOptions& layer_norm_eps(double v) { layer_norm_eps_ = v; return *this; }
  TransformerLayerOptions& batch_first(bool on) { batch_first_ = on; return *this; }
  TransformerLayerOptions& norm_first(bool on) { norm_first_ = on; return *this; }  // pre-norm
  std::int64_t d_model() const { return d_model_; }
  std::int64_t nhead() const { return nhead_; }
  std::int64_t dim_feedforward() const { return dim_feedforward_; }
  double dropout() const { return dropout_; }
  const std::string& activation() const { return activation_; }
  double layer_norm_eps() const { return layer_norm_eps_; }
  bool batch_first() const { return batch_first_; }
  bool norm_first() const { return norm_first_; }

 private:
  std::int64_t d_model_, nhead_, dim_feedforward_ = 2048;
  double dropout_ = 0.1;
  std::string activation_ = "relu";
  double layer_norm_eps_ = 1e-5;
  bool batch_first_ = false, norm_first_ = false;
};
using TransformerEncoderLayerOptions = TransformerLayerOptions;
using TransformerDecoderLayerOptions = TransformerLayerOptions;

// Self-attention and a feed-forward block, each with a residual connection and a LayerNorm:
//   post-norm: x = norm1(x + dropout1(self_attn(x))),   x = norm2(x + dropout2(ff(x)))
//   norm_first: x = x + dropout1(self_attn(norm1(x))),  x = x + dropout2(ff(norm2(x)))
// with ff(x) = linear2(dropout(activation(linear1(x)))).
class TransformerEncoderLayer : public Module {
 public:
  explicit TransformerEncoderLayer(const TransformerLayerOptions& options);
  TransformerEncoderLayer(std::int64_t d_model, std::int64_t nhead)
      : TransformerEncoderLayer(TransformerLayerOptions(d_model, nhead)) {}
  Tensor forward(const Tensor& src) override { return forward(src, Tensor(), Tensor()); }
  Tensor forward(const Tensor& src, const Tensor& src_mask, const Tensor& src_key_padding_mask);
  std::shared_ptr<Module> fresh() const override { return std::make_shared<TransformerEncoderLayer>(options); }

  const TransformerLayerOptions options;
  MultiheadAttention& self_attn;
  Linear& linear1;
  Dropout& dropout;
  Linear& linear2;
  LayerNorm& norm1;
  LayerNorm& norm2;
  Dropout& dropout1;
  Dropout& dropout2;
};

// Self-attention over the target, attention to the encoder's output (memory), and a feed-forward
// block, each with a residual connection and a LayerNorm (norm1-3, dropout1-3), as the encoder's.
class TransformerDecoderLayer : public Module {
 public:
  explicit TransformerDecoderLayer(const TransformerLayerOptions& options);
  TransformerDecoderLayer(std::int64_t d_model, std::int64_t nhead)
      : TransformerDecoderLayer(TransformerLayerOptions(d_model, nhead)) {}
  using Module::forward;  // the one-input form stays visible (it throws: this layer takes two inputs)
  Tensor forward(const Tensor& tgt, const Tensor& memory, const Tensor& tgt_mask = Tensor(),
                 const Tensor& memory_mask = Tensor(), const Tensor& tgt_key_padding_mask = Tensor(),
                 const Tensor& memory_key_padding_mask = Tensor());
  std::shared_ptr<Module> fresh() const override { return std::make_shared<TransformerDecoderLayer>(options); }

  const TransformerLayerOptions options;
  MultiheadAttention& self_attn;
  MultiheadAttention& multihead_attn;
  Linear& linear1;
  Dropout& dropout;
  Linear& linear2;
  LayerNorm& norm1;
  LayerNorm& norm2;
  LayerNorm& norm3;
  Dropout& dropout1;
  Dropout& dropout2;
  Dropout& dropout3;
};

// num_layers deep copies of `layer` (the same starting values, as PyTorch's), run in turn, then
// the optional final LayerNorm (PyTorch's `norm`, e.g. LayerNormOptions({d_model})).
class TransformerEncoder : public Module {
 public:
  TransformerEncoder(const TransformerEncoderLayer& layer, std::int64_t num_layers,
                     std::optional<LayerNormOptions> norm = std::nullopt);
  Tensor forward(const Tensor& src) override { return forward(src, Tensor(), Tensor()); }
  Tensor forward(const Tensor& src, const Tensor& mask, const Tensor& src_key_padding_mask);
  std::shared_ptr<Module> fresh() const override;

  const TransformerLayerOptions layer_options;
  const std::int64_t num_layers;
  const std::optional<LayerNormOptions> norm_options;
  Sequential& layers;               // "layers.0", "layers.1", ...: PyTorch's ModuleList keys
  std::shared_ptr<LayerNorm> norm;  // null without a final norm
};

class TransformerDecoder : public Module {
 public:
  TransformerDecoder(const TransformerDecoderLayer& layer, std::int64_t num_layers,
                     std::optional<LayerNormOptions> norm = std::nullopt);
  using Module::forward;  // the one-input form stays visible (it throws: this layer takes two inputs)
  Tensor forward(const Tensor& tgt, const Tensor& memory, const Tensor& tgt_mask = Tensor(),
                 const Tensor& memory_mask = Tensor(), const Tensor& tgt_key_padding_mask = Tensor(),
                 const Tensor& memory_key_padding_mask = Tensor());
  std::shared_ptr<Module> fresh() const override;

  const TransformerLayerOptions layer_options;
  const std::int64_t num_layers;
  const std::optional<LayerNormOptions> norm_options;
  Sequential& layers;
  std::shared_ptr<LayerNorm> norm;
};

class TransformerOptions {
 public:
  TransformerOptions() = default;  // PyTorch's defaults: 512, 8 heads, 6 + 6 layers, 2048
  TransformerOptions(std::int64_t d_model, std::int64_t nhead) : layer_(d_model, nhead) {}
  TransformerOptions& num_encoder_layers(std::int64_t v) { num_encoder_layers_ = v; return *this; }
  TransformerOptions& num_decoder_layers(std::int64_t v) { num_decoder_layers_ = v; return *this; }
  TransformerOptions& dim_feedforward(std::int64_t v) { layer_.dim_feedforward(v); return *this; }
  TransformerOptions& dropout(double p) { layer_.dropout(p); return *this; }
  TransformerOptions& activation(std::string v) { layer_.activation(std::move(v)); return *this; }
  TransformerOptions& layer_norm_eps(double v) { layer_.layer_norm_eps(v); return *this; }
  TransformerOptions& batch_first(bool on) { layer_.batch_first(on); return *this; }
  TransformerOptions& norm_first(bool on) { layer_.norm_first(on); return *this; }
  std::int64_t num_encoder_layers() const { return num_encoder_layers_; }
  std::int64_t num_decoder_layers() const { return num_decoder_layers_; }
  const TransformerLayerOptions& layer() const { return layer_; }

 private:
  TransformerLayerOptions layer_{512, 8};
  std::int64_t num_encoder_layers_ = 6, num_decoder_layers_ = 6;
};

// An encoder and a decoder, each with a final LayerNorm; every parameter of two or more dims
// Xavier-uniform, as PyTorch's _reset_parameters.
class Transformer : public Module {
 public:
  explicit Transformer(const TransformerOptions& options = TransformerOptions());
  using Module::forward;  // the one-input form stays visible (it throws: this layer takes two inputs)
  Tensor forward(const Tensor& src, const Tensor& tgt, const Tensor& src_mask = Tensor(),
                 const Tensor& tgt_mask = Tensor(), const Tensor& memory_mask = Tensor(),
                 const Tensor& src_key_padding_mask = Tensor(), const Tensor& tgt_key_padding_mask = Tensor(),
                 const Tensor& memory_key_padding_mask = Tensor());
  std::shared_ptr<Module> fresh() const override { return std::make_shared<Transformer>(options); }

  const TransformerOptions options;
  TransformerEncoder& encoder;
  TransformerDecoder& decoder;
};

}  // namespace tg::nn
