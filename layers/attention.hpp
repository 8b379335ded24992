// MultiheadAttention as torch.nn.MultiheadAttention: PyTorch's options, parameter names
// (in_proj_weight, in_proj_bias, out_proj.weight, ...; q/k/v_proj_weight when kdim or vdim differ
// from embed_dim), initialisation and masks, so that a PyTorch state_dict loads by key.
//
//   tg::nn::MultiheadAttention attention(tg::nn::MultiheadAttentionOptions(64, 4).batch_first(true));
//   auto [out, weights] = attention.forward(x, x, x);          // x (N, L, 64): out (N, L, 64), weights (N, L, L)
//   auto [out2, none] = attention.forward(q, k, v, padding, false, tg::nn::generate_square_subsequent_mask(L));
//
// Masks, as PyTorch's: attn_mask (L, S) or (N·num_heads, L, S), key_padding_mask (N, S) (unbatched:
// (S)). A floating-point mask is added to the attention scores (it may require grad); tapegrad has
// no bool dtype, so an int64 mask plays PyTorch's bool mask: non-zero means "do not attend" (-inf).
#pragma once

#include <cstdint>
#include <tuple>

#include "linear.hpp"
#include "module.hpp"

namespace tg::nn {

class MultiheadAttentionOptions {
 public:
  MultiheadAttentionOptions(std::int64_t embed_dim, std::int64_t num_heads) : embed_dim_(embed_dim), num_heads_(num_heads) {}
  MultiheadAttentionOptions& dropout(double p) { dropout_ = p; return *this; }  // on the attention weights, in training
  MultiheadAttentionOptions& bias(bool on) { bias_ = on; return *this; }
  MultiheadAttentionOptions& add_bias_kv(bool on) { add_bias_kv_ = on; return *this; }      // a learned key and value appended
  MultiheadAttentionOptions& add_zero_attn(bool on) { add_zero_attn_ = on; return *this; }  // a zero key and value appended
  MultiheadAttentionOptions& kdim(std::int64_t v) { kdim_ = v; return *this; }  // key features (default embed_dim)
  MultiheadAttentionOptions& vdim(std::int64_t v) { vdim_ = v; return *this; }  // value features (default embed_dim)
  MultiheadAttentionOptions& batch_first(bool on) { batch_first_ = on; return *this; }  // (N, L, E) instead of (L, N, E)
  std::int64_t embed_dim() const { return embed_dim_; }
  std::int64_t num_heads() const { return num_heads_; }
  double dropout() const { return dropout_; }
  bool bias() const { return bias_; }
  bool add_bias_kv() const { return add_bias_kv_; }
  bool add_zero_attn() const { return add_zero_attn_; }
  std::int64_t kdim() const { return kdim_ ? kdim_ : embed_dim_; }
  std::int64_t vdim() const { return vdim_ ? vdim_ : embed_dim_; }
  bool batch_first() const { return batch_first_; }

 private:
  std::int64_t embed_dim_, num_heads_, kdim_ = 0, vdim_ = 0;
  double dropout_ = 0.0;
  bool bias_ = true, add_bias_kv_ = false, add_zero_attn_ = false, batch_first_ = false;
};

class MultiheadAttention : public Module {
 public:
  // PyTorch's initialisation: in_proj_weight (or q/k/v_proj_weight) Xavier-uniform, in_proj_bias
  // and out_proj.bias zero, out_proj.weight as a Linear's, bias_k and bias_v Xavier-normal.
  explicit MultiheadAttention(const MultiheadAttentionOptions& options);
  MultiheadAttention(std::int64_t embed_dim, std::int64_t num_heads)
      : MultiheadAttention(MultiheadAttentionOptions(embed_dim, num_heads)) {}

  // Self-attention's output alone, forward(x, x, x) without the weights (for Sequential).
  Tensor forward(const Tensor& x) override;
  // (output, weights): output as the query, (L, N, E) (batch_first: (N, L, E); unbatched (L, E));
  // weights (N, L, S) averaged over the heads or (N, num_heads, L, S), after dropout, as
  // PyTorch's; undefined when need_weights is false. Undefined masks are no masks.
  std::tuple<Tensor, Tensor> forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                     const Tensor& key_padding_mask = Tensor(), bool need_weights = true,
                                     const Tensor& attn_mask = Tensor(), bool average_attn_weights = true);
  std::shared_ptr<Module> fresh() const override { return std::make_shared<MultiheadAttention>(options); }

  const MultiheadAttentionOptions options;
  Tensor in_proj_weight;                               // (3E, E): W_q, W_k, W_v stacked
  Tensor q_proj_weight, k_proj_weight, v_proj_weight;  // (E, E), (E, kdim), (E, vdim) instead, when kdim or vdim ≠ E
  Tensor in_proj_bias;                                 // (3E), undefined without bias
  Tensor bias_k, bias_v;                               // (1, 1, E) with add_bias_kv
  Linear& out_proj;                                    // E → E
};

// A causal mask for a sequence of `size`: 0 on and below the diagonal, -inf above (position i
// attends to positions up to i), as torch.nn.Transformer.generate_square_subsequent_mask.
Tensor generate_square_subsequent_mask(std::int64_t size, DType dtype = kFloat32);

}  // namespace tg::nn
