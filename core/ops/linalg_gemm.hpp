// Internal: the one GEMM entry point (row-major, C = alpha·op(A)·op(B) + beta·C) that matmul and
// the fused linear layer share. Defined in linalg.cpp for float and double.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tg::detail {

template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
          std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc);

// Whether C = A·Bᵀ, m × n (B given as n rows), runs faster computed as Cᵀ = B·Aᵀ, for a caller
// that can keep Cᵀ: on the float32 AVX-512 kernel, where that takes less padding (its 8 × 32 tiles
// fill 32 × 80 as 32 × 96 and 80 × 32 exactly), or where Cᵀ's columns fit one panel and C's do
// not (m <= 32 < n): the kernel then reads B where it lies and packs only Aᵀ, the smaller, where
// C = A·Bᵀ packs all of Bᵀ, transposing it. False for double and where gemm takes OpenBLAS.
template <class T>
bool gemm_prefers_transposed(std::size_t m, std::size_t n);

// The AVX-512 kernel's panel width (sgemm.cpp): C's columns are computed 32 at a time.
inline constexpr std::size_t kSgemmPanelColumns = 32;

// The same for float32 on one thread with AVX-512 (sgemm.cpp), which gemm<float> uses where the
// CPU has it (both are built on x86-64 only).
bool sgemm_avx512_available();
void sgemm_avx512(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                  const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
                  std::size_t ldc);
// The multiply-adds per inner step of its tiles for an m × n C, padding included.
std::size_t sgemm_avx512_tile_work(std::size_t m, std::size_t n);

// A k × n matrix B given row by row, for products whose B is gathered from elsewhere (a
// convolution's shifted input rows, with no im2col matrix): B[p][j] is the float at address
// rows[p] + 4·j where bit j % 32 of masks[p][j / 32] is set, and 0 where it is clear (that
// address is then never read; it may lie outside any array). Bits past n are ignored.
struct MaskedRows {
  const std::uintptr_t* rows;
  const std::uint32_t* const* masks;
};
// C = α·op(A)·B + β·C with that B, on one thread (sgemm_avx512's kernel), op(A) packed once
// beforehand (an m × k A used by several products: a convolution's weight against each sample's
// rows): sgemm_avx512_pack_a writes sgemm_avx512_packed_a_floats(m, k) floats into an array
// aligned to 64 bytes.
std::size_t sgemm_avx512_packed_a_floats(std::size_t m, std::size_t k);
void sgemm_avx512_pack_a(bool trans_a, std::size_t m, std::size_t k, const float* a, std::size_t lda, float* packed);
void sgemm_avx512_rows(std::size_t m, std::size_t n, std::size_t k, float alpha, const float* packed_a,
                       const MaskedRows& b, float beta, float* c, std::size_t ldc);

}  // namespace tg::detail
