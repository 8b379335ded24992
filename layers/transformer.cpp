// Transformer layers, as torch.nn's (PyTorch 1.13's transformer.py): the same submodules in the
// same order, the same residual and normalisation order, dropout where PyTorch has it.
#include "layers/transformer.hpp"

#include <tuple>

#include "core/ops/activation.hpp"
#include "core/ops/elementwise.hpp"
#include "layers/init.hpp"

namespace tg::nn {

namespace {

const TransformerLayerOptions& checked(const char* name, const TransformerLayerOptions& o) {
  TG_CHECK(o.d_model() > 0 && o.nhead() > 0 && o.dim_feedforward() > 0, name,
           ": d_model, nhead and dim_feedforward must be positive, got ", o.d_model(), ", ", o.nhead(), " and ",
           o.dim_feedforward());
  TG_CHECK(o.activation() == "relu" || o.activation() == "gelu", name, ": activation must be \"relu\" or \"gelu\", got \"",
           o.activation(), "\"");
  TG_CHECK(o.dropout() >= 0 && o.dropout() <= 1, name, ": dropout must be in [0, 1], got ", o.dropout());
  return o;
}

MultiheadAttention attention_layer(const TransformerLayerOptions& o) {
  return MultiheadAttention(MultiheadAttentionOptions(o.d_model(), o.nhead()).dropout(o.dropout()).batch_first(o.batch_first()));
}

LayerNorm norm_layer(const TransformerLayerOptions& o) {
  return LayerNorm(LayerNormOptions({o.d_model()}).eps(o.layer_norm_eps()));
}

// The feed-forward block: linear2(dropout(activation(linear1(x)))).
Tensor feed_forward(Linear& linear1, Dropout& dropout, Linear& linear2, const std::string& activation, const Tensor& x) {
  const Tensor hidden = linear1(x);
  return linear2(dropout(activation == "gelu" ? gelu(hidden) : relu(hidden)));
}

}  // namespace

// ---- TransformerEncoderLayer ----

TransformerEncoderLayer::TransformerEncoderLayer(const TransformerLayerOptions& options_in)
    : Module("TransformerEncoderLayer"),
      options(checked("TransformerEncoderLayer", options_in)),
      self_attn(register_module("self_attn", attention_layer(options))),
      linear1(register_module("linear1", Linear(options.d_model(), options.dim_feedforward()))),
      dropout(register_module("dropout", Dropout(options.dropout()))),
      linear2(register_module("linear2", Linear(options.dim_feedforward(), options.d_model()))),
      norm1(register_module("norm1", norm_layer(options))),
      norm2(register_module("norm2", norm_layer(options))),
      dropout1(register_module("dropout1", Dropout(options.dropout()))),
      dropout2(register_module("dropout2", Dropout(options.dropout()))) {}

Tensor TransformerEncoderLayer::forward(const Tensor& src, const Tensor& src_mask, const Tensor& src_key_padding_mask) {
  auto self_attention = [&](const Tensor& x) {
    return dropout1(std::get<0>(self_attn.forward(x, x, x, src_key_padding_mask, false, src_mask)));
  };
  auto ff = [&](const Tensor& x) { return dropout2(feed_forward(linear1, dropout, linear2, options.activation(), x)); };
  Tensor x = src;
  if (options.norm_first()) {
    x = x + self_attention(norm1(x));
    x = x + ff(norm2(x));
  } else {
    x = norm1(x + self_attention(x));
    x = norm2(x + ff(x));
  }
  return x;
}

// ---- TransformerDecoderLayer ----

TransformerDecoderLayer::TransformerDecoderLayer(const TransformerLayerOptions& options_in)
    : Module("TransformerDecoderLayer"),
      options(checked("TransformerDecoderLayer", options_in)),
      self_attn(register_module("self_attn", attention_layer(options))),
      multihead_attn(register_module("multihead_attn", attention_layer(options))),
      linear1(register_module("linear1", Linear(options.d_model(), options.dim_feedforward()))),
      dropout(register_module("dropout", Dropout(options.dropout()))),
      linear2(register_module("linear2", Linear(options.dim_feedforward(), options.d_model()))),
      norm1(register_module("norm1", norm_layer(options))),
      norm2(register_module("norm2", norm_layer(options))),
      norm3(register_module("norm3", norm_layer(options))),
      dropout1(register_module("dropout1", Dropout(options.dropout()))),
      dropout2(register_module("dropout2", Dropout(options.dropout()))),
      dropout3(register_module("dropout3", Dropout(options.dropout()))) {}

Tensor TransformerDecoderLayer::forward(const Tensor& tgt, const Tensor& memory, const Tensor& tgt_mask,
                                        const Tensor& memory_mask, const Tensor& tgt_key_padding_mask,
                                        const Tensor& memory_key_padding_mask) {
  auto self_attention = [&](const Tensor& x) {
    return dropout1(std::get<0>(self_attn.forward(x, x, x, tgt_key_padding_mask, false, tgt_mask)));
  };
  auto memory_attention = [&](const Tensor& x) {
    return dropout2(std::get<0>(multihead_attn.forward(x, memory, memory, memory_key_padding_mask, false, memory_mask)));
  };
  auto ff = [&](const Tensor& x) { return dropout3(feed_forward(linear1, dropout, linear2, options.activation(), x)); };
  Tensor x = tgt;
  if (options.norm_first()) {
    x = x + self_attention(norm1(x));
    x = x + memory_attention(norm2(x));
    x = x + ff(norm3(x));
  } else {
    x = norm1(x + self_attention(x));
    x = norm2(x + memory_attention(x));
    x = norm3(x + ff(x));
  }
  return x;
}

// ---- TransformerEncoder and TransformerDecoder: copies of one layer ----

namespace {

template <class Layer>
void copies(Sequential& layers, const Layer& layer, std::int64_t num_layers, const char* name) {
  TG_CHECK(num_layers >= 0, name, ": num_layers must be at least 0, got ", num_layers);
  for (std::int64_t i = 0; i < num_layers; ++i) layers.push_back(std::shared_ptr<Module>(clone(layer)));
}

}  // namespace

TransformerEncoder::TransformerEncoder(const TransformerEncoderLayer& layer, std::int64_t num_layers_in,
                                       std::optional<LayerNormOptions> norm_in)
    : Module("TransformerEncoder"),
      layer_options(layer.options),
      num_layers(num_layers_in),
      norm_options(std::move(norm_in)),
      layers(register_module("layers", Sequential())) {
  copies(layers, layer, num_layers, "TransformerEncoder");
  if (norm_options) norm = register_module("norm", std::make_shared<LayerNorm>(*norm_options));
}

Tensor TransformerEncoder::forward(const Tensor& src, const Tensor& mask, const Tensor& src_key_padding_mask) {
  Tensor output = src;
  for (std::size_t i = 0; i < layers.size(); ++i)
    output = layers.at<TransformerEncoderLayer>(i)->forward(output, mask, src_key_padding_mask);
  return norm ? norm->forward(output) : output;
}

std::shared_ptr<Module> TransformerEncoder::fresh() const {
  return std::make_shared<TransformerEncoder>(TransformerEncoderLayer(layer_options), num_layers, norm_options);
}

TransformerDecoder::TransformerDecoder(const TransformerDecoderLayer& layer, std::int64_t num_layers_in,
                                       std::optional<LayerNormOptions> norm_in)
    : Module("TransformerDecoder"),
      layer_options(layer.options),
      num_layers(num_layers_in),
      norm_options(std::move(norm_in)),
      layers(register_module("layers", Sequential())) {
  copies(layers, layer, num_layers, "TransformerDecoder");
  if (norm_options) norm = register_module("norm", std::make_shared<LayerNorm>(*norm_options));
}

Tensor TransformerDecoder::forward(const Tensor& tgt, const Tensor& memory, const Tensor& tgt_mask,
                                   const Tensor& memory_mask, const Tensor& tgt_key_padding_mask,
                                   const Tensor& memory_key_padding_mask) {
  Tensor output = tgt;
  for (std::size_t i = 0; i < layers.size(); ++i)
    output = layers.at<TransformerDecoderLayer>(i)->forward(output, memory, tgt_mask, memory_mask, tgt_key_padding_mask,
                                                            memory_key_padding_mask);
  return norm ? norm->forward(output) : output;
}

std::shared_ptr<Module> TransformerDecoder::fresh() const {
  return std::make_shared<TransformerDecoder>(TransformerDecoderLayer(layer_options), num_layers, norm_options);
}

// ---- Transformer ----

namespace {

LayerNormOptions final_norm(const TransformerOptions& o) {
  return LayerNormOptions({o.layer().d_model()}).eps(o.layer().layer_norm_eps());
}

}  // namespace

Transformer::Transformer(const TransformerOptions& options_in)
    : Module("Transformer"),
      options(options_in),
      encoder(register_module("encoder", TransformerEncoder(TransformerEncoderLayer(options.layer()),
                                                            options.num_encoder_layers(), final_norm(options)))),
      decoder(register_module("decoder", TransformerDecoder(TransformerDecoderLayer(options.layer()),
                                                            options.num_decoder_layers(), final_norm(options)))) {
  for (Tensor& p : parameters())
    if (p.dim() > 1) init::xavier_uniform_(p);
}

Tensor Transformer::forward(const Tensor& src, const Tensor& tgt, const Tensor& src_mask, const Tensor& tgt_mask,
                            const Tensor& memory_mask, const Tensor& src_key_padding_mask,
                            const Tensor& tgt_key_padding_mask, const Tensor& memory_key_padding_mask) {
  const auto d_model = std::size_t(options.layer().d_model());
  TG_CHECK(src.dim() == tgt.dim() && (src.dim() == 2 || src.dim() == 3), "Transformer: expected src and tgt both "
           "batched (3-D) or both unbatched (2-D), got src ", shape_str(src.shape()), " and tgt ", shape_str(tgt.shape()));
  const std::size_t batch_dim = options.layer().batch_first() ? 0 : 1;
  TG_CHECK(src.dim() == 2 || src.shape()[batch_dim] == tgt.shape()[batch_dim],
           "Transformer: the batch number of src and tgt must be equal, got src ", shape_str(src.shape()), " and tgt ",
           shape_str(tgt.shape()));
  TG_CHECK(src.shape().back() == d_model && tgt.shape().back() == d_model, "Transformer: the feature number of src "
           "and tgt must be equal to d_model (", d_model, "), got src ", shape_str(src.shape()), " and tgt ",
           shape_str(tgt.shape()));
  const Tensor memory = encoder.forward(src, src_mask, src_key_padding_mask);
  return decoder.forward(tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask);
}

}  // namespace tg::nn
