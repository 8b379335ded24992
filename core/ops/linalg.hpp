// Matrix products on OpenBLAS GEMM. Backward passes use GEMM's transpose flags and never build a
// transposed copy.
#pragma once

#include "core/tensor.hpp"

namespace tg {

// PyTorch's matmul for 1-D, 2-D and 3-D operands: (k)·(k) -> scalar, (m,k)·(k) -> (m),
// (k)·(k,n) -> (n), (m,k)·(k,n) -> (m,n), and batched (b,m,k)·(b,k,n) -> (b,m,n), where either
// side may also be a plain matrix shared by every batch.
Tensor matmul(const Tensor& a, const Tensor& b);

// input·weightᵀ + bias, fused: one GEMM with the bias as its initial C. input is (*, in_features),
// weight (out_features, in_features), bias (out_features) or undefined.
Tensor linear(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace tg
