// Embedding: options checked, N(0, 1) initialisation with the padding row zeroed, and forward
// through tg::embedding (core/ops/shape.cpp: an index_select whose padding rows pass no gradient).
#include "layers/embedding.hpp"

#include <ostream>

#include "core/autograd.hpp"
#include "core/creation.hpp"
#include "core/ops/shape.hpp"
#include "layers/init.hpp"

namespace tg::nn {

Embedding::Embedding(const EmbeddingOptions& options_in) : Module("Embedding"), options(options_in) {
  TG_CHECK(options.num_embeddings() > 0 && options.embedding_dim() > 0,
           "Embedding: num_embeddings and embedding_dim must be positive, got ", options.num_embeddings(), " and ",
           options.embedding_dim());
  const std::int64_t n = options.num_embeddings();
  if (const auto pad = options.padding_idx())
    TG_CHECK(*pad >= -n && *pad < n, "Embedding: padding_idx must be within num_embeddings (", n, "), got ", *pad);
  weight = register_parameter("weight", empty({std::size_t(n), std::size_t(options.embedding_dim())}));
  init::normal_(weight, 0.0, 1.0);
  if (const auto pad = options.padding_idx()) {
    NoGradGuard no_grad;
    float* row = weight.mutable_data<float>() + std::size_t(*pad < 0 ? *pad + n : *pad) * std::size_t(options.embedding_dim());
    std::fill(row, row + options.embedding_dim(), 0.0f);
  }
}

Tensor Embedding::forward(const Tensor& indices) {
  return embedding(indices, weight, options.padding_idx());  // a negative padding_idx counts from the end
}

void Embedding::print_options(std::ostream& out) const {
  out << options.num_embeddings() << ", " << options.embedding_dim();
  if (options.padding_idx()) out << ", padding_idx=" << *options.padding_idx();
}

}  // namespace tg::nn
