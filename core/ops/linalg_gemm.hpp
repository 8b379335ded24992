// Internal: the one GEMM entry point (row-major, C = alpha·op(A)·op(B) + beta·C) that matmul and
// the fused linear layer share. Defined in linalg.cpp for float and double.
#pragma once

#include <cstddef>

namespace tg::detail {

template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
          std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc);

// The same for float32 on one thread with AVX-512 (sgemm.cpp), which gemm<float> uses where the
// CPU has it (both are built on x86-64 only).
bool sgemm_avx512_available();
void sgemm_avx512(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                  const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
                  std::size_t ldc);

}  // namespace tg::detail
