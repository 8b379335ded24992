// Embedding: a lookup table of num_embeddings vectors of embedding_dim values, PyTorch's options,
// parameter name (weight) and initialisation (N(0, 1), the padding_idx row zero).
//
//   tg::nn::Embedding embed(tg::nn::EmbeddingOptions(1000, 64).padding_idx(0));
//   tg::Tensor vectors = embed(token_ids);  // int64 (*) → (*, 64)
#pragma once

#include <cstdint>
#include <optional>

#include "module.hpp"

namespace tg::nn {

class EmbeddingOptions {
 public:
  EmbeddingOptions(std::int64_t num_embeddings, std::int64_t embedding_dim)
      : num_embeddings_(num_embeddings), embedding_dim_(embedding_dim) {}
  // The row that gets no gradient (and starts at zero); negative counts from the end, as PyTorch's.
  EmbeddingOptions& padding_idx(std::optional<std::int64_t> v) { padding_idx_ = v; return *this; }
  std::int64_t num_embeddings() const { return num_embeddings_; }
  std::int64_t embedding_dim() const { return embedding_dim_; }
  std::optional<std::int64_t> padding_idx() const { return padding_idx_; }

 private:
  std::int64_t num_embeddings_, embedding_dim_;
  std::optional<std::int64_t> padding_idx_;
};

class Embedding : public Module {
 public:
  explicit Embedding(const EmbeddingOptions& options);
  Embedding(std::int64_t num_embeddings, std::int64_t embedding_dim)
      : Embedding(EmbeddingOptions(num_embeddings, embedding_dim)) {}

  Tensor forward(const Tensor& indices) override;  // int64 indices of any shape
  void print_options(std::ostream& out) const override;
  std::shared_ptr<Module> fresh() const override { return std::make_shared<Embedding>(options); }

  const EmbeddingOptions options;
  Tensor weight;  // (num_embeddings, embedding_dim)
};

}  // namespace tg::nn
