// Matrix products on OpenBLAS GEMM. Backward passes use GEMM's transpose flags and never build a
// transposed tensor (detail::gemm copies a small B into a scratch where OpenBLAS's own kernels
// would pack it anyway: see linalg.cpp).
#pragma once

#include "../tensor.hpp"

namespace tg {

// PyTorch's matmul: (k)·(k) -> scalar, (m,k)·(k) -> (m), (k)·(k,n) -> (n), (m,k)·(k,n) -> (m,n),
// and batched (*a, m, k)·(*b, k, n) -> (*batch, m, n) with any number of batch dims, broadcast
// against each other (*batch = broadcast(*a, *b)); a 1-D operand is promoted and its dim removed.
Tensor matmul(const Tensor& a, const Tensor& b);

// input·weightᵀ + bias, fused: one GEMM with the bias as its initial C. input is (*, in_features),
// weight (out_features, in_features), bias (out_features) or undefined.
Tensor linear(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace tg
