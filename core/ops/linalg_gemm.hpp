// Internal: the one GEMM entry point (row-major, C = alpha·op(A)·op(B) + beta·C) that matmul and
// the fused linear layer share. Defined in linalg.cpp for float and double.
#pragma once

#include <cstddef>

namespace tg::detail {

template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
          std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc);

// Whether C = op(A)·op(B), m × n, takes less padding computed as Cᵀ = op(B)ᵀ·op(A)ᵀ, for a caller
// that can keep Cᵀ: the float32 AVX-512 kernel's 8 × 32 tiles fill 32 × 80 as 32 × 96 and 80 × 32
// exactly. False for double and where gemm takes OpenBLAS.
template <class T>
bool gemm_prefers_transposed(std::size_t m, std::size_t n);

// The same for float32 on one thread with AVX-512 (sgemm.cpp), which gemm<float> uses where the
// CPU has it (both are built on x86-64 only).
bool sgemm_avx512_available();
void sgemm_avx512(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                  const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
                  std::size_t ldc);
// The multiply-adds per inner step of its tiles for an m × n C, padding included.
std::size_t sgemm_avx512_tile_work(std::size_t m, std::size_t n);

}  // namespace tg::detail
