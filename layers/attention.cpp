// MultiheadAttention, as PyTorch's multi_head_attention_forward computes it:
//   q, k, v = query·W_qᵀ + b_q, key·W_kᵀ + b_k, value·W_vᵀ + b_v     (one GEMM for self-attention)
//   [add_bias_kv: bias_k and bias_v appended to k and v as one more source position]
//   split into num_heads heads of head_dim = E / num_heads: (N·heads, L, head_dim)
//   [add_zero_attn: a zero key and value appended]
//   weights = softmax(q / √head_dim · kᵀ + mask), dropout in training
//   output = (weights · v, heads joined) · W_outᵀ + b_out
// Every step is a tapegrad op (linear, matmul, softmax, ...) with its own backward.
#include "layers/attention.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "core/creation.hpp"
#include "core/ops/activation.hpp"
#include "core/ops/elementwise.hpp"
#include "core/ops/linalg.hpp"
#include "core/ops/pad.hpp"
#include "core/ops/reduce.hpp"
#include "core/ops/shape.hpp"
#include "layers/init.hpp"

namespace tg::nn {

namespace {

constexpr const char* kName = "MultiheadAttention";

// A mask as scores to add: floating-point as given, int64 (PyTorch's bool) -inf where non-zero.
Tensor additive(const Tensor& mask, DType dtype, const char* what) {
  TG_CHECK(mask.dtype() == kInt64 || mask.dtype() == dtype, kName, ": expected ", what, " of the query's dtype (",
           dtype_name(dtype), ", added to the scores) or int64 (non-zero: do not attend), got ",
           dtype_name(mask.dtype()), " ", shape_str(mask.shape()));
  if (mask.dtype() != kInt64) return mask;
  const std::vector<std::int64_t> flags = mask.to_vector<std::int64_t>();
  std::vector<double> scores(flags.size());
  for (std::size_t i = 0; i < flags.size(); ++i)
    scores[i] = flags[i] != 0 ? -std::numeric_limits<double>::infinity() : 0.0;
  return Tensor(scores, mask.shape()).to(dtype);
}

}  // namespace

MultiheadAttention::MultiheadAttention(const MultiheadAttentionOptions& options_in)
    : Module(kName),
      options(options_in),
      out_proj(register_module("out_proj", Linear(LinearOptions(std::max<std::int64_t>(options_in.embed_dim(), 1),
                                                                std::max<std::int64_t>(options_in.embed_dim(), 1))
                                                      .bias(options_in.bias())))) {
  const std::int64_t E = options.embed_dim(), heads = options.num_heads();
  TG_CHECK(E > 0 && heads > 0 && options.kdim() > 0 && options.vdim() > 0, kName,
           ": embed_dim, num_heads, kdim and vdim must be positive, got ", E, ", ", heads, ", ", options.kdim(),
           " and ", options.vdim());
  TG_CHECK(E % heads == 0, kName, ": embed_dim must be divisible by num_heads, got ", E, " and ", heads);
  TG_CHECK(options.dropout() >= 0 && options.dropout() <= 1, kName, ": dropout must be in [0, 1], got ",
           options.dropout());
  const auto e = std::size_t(E);
  if (options.kdim() == E && options.vdim() == E) {
    init::xavier_uniform_(in_proj_weight = register_parameter("in_proj_weight", empty({3 * e, e})));
  } else {
    init::xavier_uniform_(q_proj_weight = register_parameter("q_proj_weight", empty({e, e})));
    init::xavier_uniform_(k_proj_weight = register_parameter("k_proj_weight", empty({e, std::size_t(options.kdim())})));
    init::xavier_uniform_(v_proj_weight = register_parameter("v_proj_weight", empty({e, std::size_t(options.vdim())})));
  }
  if (options.bias()) {
    in_proj_bias = register_parameter("in_proj_bias", zeros({3 * e}));
    init::zeros_(out_proj.bias);
  }
  if (options.add_bias_kv()) {
    init::xavier_normal_(bias_k = register_parameter("bias_k", empty({1, 1, e})));
    init::xavier_normal_(bias_v = register_parameter("bias_v", empty({1, 1, e})));
  }
}

Tensor MultiheadAttention::forward(const Tensor& x) {
  return std::get<0>(forward(x, x, x, Tensor(), false));
}

std::tuple<Tensor, Tensor> MultiheadAttention::forward(const Tensor& query_in, const Tensor& key_in,
                                                       const Tensor& value_in, const Tensor& key_padding_mask_in,
                                                       bool need_weights, const Tensor& attn_mask_in,
                                                       bool average_attn_weights) {
  // ---- shapes: everything in (L, N, E) from here on ----
  TG_CHECK(query_in.dim() == 2 || query_in.dim() == 3, kName, ": expected query (L, N, E), (N, L, E) with "
           "batch_first, or unbatched (L, E), got ", shape_str(query_in.shape()));
  const bool batched = query_in.dim() == 3;
  TG_CHECK(key_in.dim() == query_in.dim() && value_in.dim() == query_in.dim(), kName, ": expected key and value of ",
           query_in.dim(), " dims as the query ", shape_str(query_in.shape()), ", got ", shape_str(key_in.shape()),
           " and ", shape_str(value_in.shape()));
  const DType dtype = query_in.dtype();
  const Tensor& parameter = in_proj_weight.defined() ? in_proj_weight : q_proj_weight;
  TG_CHECK(key_in.dtype() == dtype && value_in.dtype() == dtype && parameter.dtype() == dtype, kName,
           ": expected query, key and value of the parameters' dtype ", dtype_name(parameter.dtype()), ", got ",
           dtype_name(dtype), ", ", dtype_name(key_in.dtype()), " and ", dtype_name(value_in.dtype()));
  // Self-attention projects once; which inputs are one tensor is known before any transpose.
  const bool self_attention = query_in.same(key_in) && key_in.same(value_in);
  auto to_lne = [&](const Tensor& t) {
    return !batched ? unsqueeze(t, 1) : options.batch_first() ? transpose(t, 0, 1) : t;
  };
  const Tensor query = to_lne(query_in);
  const Tensor key = self_attention ? query : to_lne(key_in), value = self_attention ? query : to_lne(value_in);
  const auto E = std::size_t(options.embed_dim()), heads = std::size_t(options.num_heads()), head_dim = E / heads;
  const std::size_t L = query.shape()[0], N = query.shape()[1], S = key.shape()[0];
  TG_CHECK(query.shape()[2] == E && key.shape()[2] == std::size_t(options.kdim()) &&
               value.shape()[2] == std::size_t(options.vdim()),
           kName, ": expected query, key and value features ", E, ", ", options.kdim(), " and ", options.vdim(),
           " (embed_dim, kdim, vdim), got query ", shape_str(query_in.shape()), ", key ", shape_str(key_in.shape()),
           " and value ", shape_str(value_in.shape()));
  TG_CHECK(key.shape()[1] == N && value.shape()[0] == S && value.shape()[1] == N, kName,
           ": expected key and value with the query's batch and one source length, got query ",
           shape_str(query_in.shape()), ", key ", shape_str(key_in.shape()), " and value ", shape_str(value_in.shape()));

  // ---- projections ----
  Tensor q, k, v;
  auto bias_part = [&](std::size_t i) {
    return in_proj_bias.defined() ? narrow(in_proj_bias, 0, std::int64_t(i * E), std::int64_t(E)) : Tensor();
  };
  if (self_attention && in_proj_weight.defined()) {
    const Tensor qkv = linear(query, in_proj_weight, in_proj_bias);  // (L, N, 3E)
    q = narrow(qkv, 2, 0, std::int64_t(E));
    k = narrow(qkv, 2, std::int64_t(E), std::int64_t(E));
    v = narrow(qkv, 2, std::int64_t(2 * E), std::int64_t(E));
  } else {
    auto weight_part = [&](std::size_t i) { return narrow(in_proj_weight, 0, std::int64_t(i * E), std::int64_t(E)); };
    q = linear(query, in_proj_weight.defined() ? weight_part(0) : q_proj_weight, bias_part(0));
    k = linear(key, in_proj_weight.defined() ? weight_part(1) : k_proj_weight, bias_part(1));
    v = linear(value, in_proj_weight.defined() ? weight_part(2) : v_proj_weight, bias_part(2));
  }

  // ---- masks, as scores added: (1 or N·heads, L, S) and (N·heads, 1, S) ----
  Tensor attn_mask, padding_mask;
  if (attn_mask_in.defined()) {
    const bool fits = (attn_mask_in.dim() == 2 && attn_mask_in.shape() == Shape{L, S}) ||
                      (attn_mask_in.dim() == 3 && attn_mask_in.shape() == Shape{N * heads, L, S});
    TG_CHECK(fits, kName, ": expected attn_mask (L, S) = [", L, ", ", S, "] or (N·num_heads, L, S) = [", N * heads,
             ", ", L, ", ", S, "], got ", shape_str(attn_mask_in.shape()));
    attn_mask = additive(attn_mask_in, dtype, "attn_mask");
    if (attn_mask.dim() == 2) attn_mask = unsqueeze(attn_mask, 0);
  }
  if (key_padding_mask_in.defined()) {
    const Shape expected = batched ? Shape{N, S} : Shape{S};
    TG_CHECK(key_padding_mask_in.shape() == expected, kName, ": expected key_padding_mask ", shape_str(expected),
             " (batch, source length), got ", shape_str(key_padding_mask_in.shape()));
    padding_mask = reshape(additive(key_padding_mask_in, dtype, "key_padding_mask"), {std::int64_t(N), 1, 1, std::int64_t(S)});
  }
  // One more source position (a learned or a zero key and value) that every query may attend to.
  auto one_more_source = [&] {
    if (attn_mask.defined()) attn_mask = pad(attn_mask, {0, 1});
    if (padding_mask.defined()) padding_mask = pad(padding_mask, {0, 1});
  };
  if (bias_k.defined()) {
    k = cat({k, expand(bias_k, {1, std::int64_t(N), std::int64_t(E)})}, 0);
    v = cat({v, expand(bias_v, {1, std::int64_t(N), std::int64_t(E)})}, 0);
    one_more_source();
  }

  // ---- heads: (N·heads, length, head_dim) ----
  auto split_heads = [&](const Tensor& t) {
    return transpose(reshape(t, {std::int64_t(t.shape()[0]), std::int64_t(N * heads), std::int64_t(head_dim)}), 0, 1);
  };
  q = split_heads(q);
  k = split_heads(k);
  v = split_heads(v);
  if (options.add_zero_attn()) {
    const Tensor zero = zeros({N * heads, 1, head_dim}, dtype);
    k = cat({k, zero}, 1);
    v = cat({v, zero}, 1);
    one_more_source();
  }
  const std::size_t sources = k.shape()[1];

  // ---- attention ----
  Tensor scores = matmul(div(q, std::sqrt(double(head_dim))), transpose(k, 1, 2));  // (N·heads, L, sources)
  if (attn_mask.defined()) scores = add(attn_mask, scores);
  if (padding_mask.defined()) {
    const auto rows = std::int64_t(N * heads), columns = std::int64_t(sources);
    scores = add(scores, reshape(expand(padding_mask, {std::int64_t(N), std::int64_t(heads), 1, columns}), {rows, 1, columns}));
  }
  Tensor weights = softmax(scores, -1);
  if (is_training() && options.dropout() > 0) weights = dropout(weights, options.dropout(), true);
  const Tensor joined = reshape(transpose(matmul(weights, v), 0, 1), {std::int64_t(L), std::int64_t(N), std::int64_t(E)});
  Tensor output = linear(joined, out_proj.weight, out_proj.bias);

  // ---- back to the caller's layout ----
  output = !batched ? squeeze(output, 1) : options.batch_first() ? transpose(output, 0, 1) : output;
  if (!need_weights) return {output, Tensor()};
  weights = reshape(weights, {std::int64_t(N), std::int64_t(heads), std::int64_t(L), std::int64_t(sources)});
  if (average_attn_weights) weights = div(sum(weights, 1), double(heads));
  if (!batched) weights = squeeze(weights, 0);
  return {output, weights};
}

Tensor generate_square_subsequent_mask(std::int64_t size, DType dtype) {
  TG_CHECK(size >= 0, "generate_square_subsequent_mask: expected a size of at least 0, got ", size);
  const auto n = std::size_t(size);
  std::vector<double> mask(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = i + 1; j < n; ++j) mask[i * n + j] = -std::numeric_limits<double>::infinity();
  return Tensor(mask, {n, n}).to(dtype);
}

}  // namespace tg::nn
