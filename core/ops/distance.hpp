// Distances between vectors, as torch.nn.functional's: cosine_similarity and pairwise_distance.
// Composed from ops (each with its own backward); the inputs broadcast against each other.
#pragma once

#include <cstdint>

#include "../tensor.hpp"

namespace tg {

// Σ x1·x2 / sqrt(max(Σ x1² · Σ x2², eps²)) along dim (PyTorch 1.13's formula): 0 for a zero vector.
Tensor cosine_similarity(const Tensor& x1, const Tensor& x2, std::int64_t dim = 1, double eps = 1e-8);
// The p-norm of x1 - x2 + eps along the last dim (tg::norm; p > 0, or infinity for the largest
// |difference|).
Tensor pairwise_distance(const Tensor& x1, const Tensor& x2, double p = 2.0, double eps = 1e-6, bool keepdim = false);

}  // namespace tg
