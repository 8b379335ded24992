// A float32 GEMM on AVX-512, for the products OpenBLAS would run on its AVX2 kernels.
//
// Why: the machines this project runs on set OPENBLAS_CORETYPE=Haswell (older OpenBLAS builds
// compute wrong results or crash on their CPU), so OpenBLAS's sgemm runs 8-wide FMAs at about 120
// GFLOP/s on one core where the CPU does 16-wide ones; oneDNN, which libtorch's convolutions run,
// generates AVX-512 code and led every convolution row of the benchmark by up to 2x. This file is
// the textbook blocked GEMM (Goto's, as BLIS and OpenBLAS lay it out), in a few functions:
//
//   for each block of NC columns of C, and each block of KC of the inner dim:
//     pack that KC × NC block of op(B) into panels of NR = 32 columns (zero-padded), which stay
//     in L3/L2 while
//     for each block of MC rows: pack that MC × KC block of op(A) into panels of MR = 8 rows,
//       which stay in L2, and run the 8 × 32 micro-kernel over every (row panel, column panel):
//       16 accumulators of 16 floats, one 32-float row of B and 8 broadcast A values per step.
//
// Packing reads A and B through their transpose flags, so op(A) and op(B) are never copied whole;
// a small A that is not transposed (one MC × KC block) is not packed at all, and B may be given as
// masked rows gathered from elsewhere (sgemm_avx512_rows: a convolution's input, no im2col, against
// its weight packed once for all samples by sgemm_avx512_pack_a), packed like any B.
// Edge tiles use masked loads and stores (no scalar clean-up loop), and a last panel of 16 columns
// or fewer runs half the kernel (a convolution's 196 output positions end in a panel of 4); a C
// with few columns and many rows is computed transposed (sgemm_avx512, at the end), and a tiny
// C from A·Bᵀ by dot products of rows (dot_rows). Each element
// of C is the sum over its KC blocks in order, each block's sum in order: the bits depend only on
// the sizes, never on the thread count (linalg.cpp's gemm cuts the work by sizes alone and calls
// this per block).
// β = 0 never reads C (it may hold anything, NaN included), as BLAS promises.
//
// The code is compiled for AVX-512 whatever the build's flags, and runs only where the CPU has it
// (checked once at run time); elsewhere linalg.cpp keeps OpenBLAS.
#include "core/ops/linalg_gemm.hpp"

#include "core/ops/kernels.hpp"

#include <algorithm>
#include <cstdint>
#include <memory>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace tg::detail {

#if defined(__x86_64__)

namespace {

constexpr std::size_t kMR = 8, kNR = kSgemmPanelColumns;
// KC × NR floats of B (32 KB) fit the 48 KB L1 beside the A values; MC × KC of A (144 KB) sits in
// L2; KC × NC of B (2 MB) in L3. On this machine KC 256 / MC 144 / NC 2048 ran 512³ at 205-215
// GFLOP/s on one core (OpenBLAS's AVX2 kernels: 115-120).
constexpr std::size_t kKC = 256, kMC = 144, kNC = 2048;
// sgemm_avx512_rows packs B's masked rows like any B. (With A of at most 64 rows the micro-kernel
// had read them where they lie, by unaligned masked loads: on the Intel Xeon this project ran on
// that beat packing by 4-15%; on the AMD Zen 5 of session 35, where it now runs, packing ran
// `Conv2d_stride2/1` 30 -> 19-25 ms, `Conv2d_down_s2/1` 8.0-9.4 -> 6.0-6.9, `ConvTranspose2d/1`
// 22-25 -> 16 and `ConvTranspose1d/1` 1.0 -> 0.73, and no row slower.)

// A 64-byte aligned scratch array per thread, grown to the largest size asked and kept: no
// allocation once the sizes repeat. (Plain new[] rather than tg::Buffer: these live as long as
// their thread, and a TBB worker can end after the caching allocator's statics are gone.)
float* scratch(std::unique_ptr<float[]>& storage, std::size_t& capacity, std::size_t floats) {
  if (floats > capacity) {
    storage.reset(new float[floats + 16]);
    capacity = floats;
  }
  const auto address = reinterpret_cast<std::uintptr_t>(storage.get());
  return reinterpret_cast<float*>((address + 63) & ~std::uintptr_t(63));
}

std::size_t padded_rows(std::size_t m) { return (m + kMR - 1) / kMR * kMR; }

// Packs rows [0, rows) and inner indices [0, depth) of op(A) (from `a`, already offset to the
// block's corner) into panels of kMR rows: panel[p * kMR + i] = op(A)[i][p], zero past `rows`.
// (The micro-kernel never stores the padding's results; zeros keep whatever a fresh scratch held,
// denormals or NaNs, out of its arithmetic.)
__attribute__((target("avx512f"))) void pack_a(bool trans, std::size_t rows, std::size_t depth, const float* a,
                                               std::size_t lda, float* out) {
  for (std::size_t i0 = 0; i0 < rows; i0 += kMR, out += kMR * depth) {
    const std::size_t h = std::min(kMR, rows - i0);
    if (trans) {  // op(A)[i][p] = a[p * lda + i]: kMR contiguous values per p, one masked load
      const __mmask16 lanes = kernels::first_lanes16(h);
      for (std::size_t p = 0; p < depth; ++p)
        _mm256_store_ps(out + p * kMR, _mm512_castps512_ps256(_mm512_maskz_loadu_ps(lanes, a + p * lda + i0)));
    } else {  // op(A)[i][p] = a[i * lda + p]: the panel's rows, transposed in register blocks
      kernels::transpose_matrix(a + i0 * lda, h, depth, lda, out, kMR);
      for (std::size_t p = 0; p < depth; ++p)
        for (std::size_t i = h; i < kMR; ++i) out[p * kMR + i] = 0.0f;
    }
  }
}

// Packs inner indices [0, depth) and columns [0, cols) of op(B) into panels of kNR columns:
// panel[p * kNR + j] = op(B)[p][j], zero past `cols`.
__attribute__((target("avx512f"))) void pack_b(bool trans, std::size_t depth, std::size_t cols, const float* b,
                                               std::size_t ldb, float* out) {
  for (std::size_t j0 = 0; j0 < cols; j0 += kNR, out += kNR * depth) {
    const std::size_t w = std::min(kNR, cols - j0);
    if (trans) {  // op(B)[p][j] = b[j * ldb + p]: the panel's columns, transposed in register blocks
      kernels::transpose_matrix(b + j0 * ldb, w, depth, ldb, out, kNR);
      for (std::size_t p = 0; p < depth; ++p)
        for (std::size_t j = w; j < kNR; ++j) out[p * kNR + j] = 0.0f;
    } else {  // op(B)[p][j] = b[p * ldb + j]: 32 contiguous values per p, masked at the edge
      const __mmask16 low = kernels::first_lanes16(w), high = kernels::first_lanes16(w > 16 ? w - 16 : 0);
      for (std::size_t p = 0; p < depth; ++p) {
        const float* src = b + p * ldb + j0;
        _mm512_store_ps(out + p * kNR, _mm512_maskz_loadu_ps(low, src));
        _mm512_store_ps(out + p * kNR + 16, _mm512_maskz_loadu_ps(high, src + 16));
      }
    }
  }
}

// C[0..rows)[0..cols) (rows ≤ 8, cols ≤ 32) = α·(A panel · B panel) + β·C for the first KC
// block (`first`), += α·(…) for the later ones. The B panel is packed (bp[p·32 + j]); the A panel
// is packed (kPackedA: ap[p·8 + i]) or read where it lies, rows lda apart (ap[i·lda + p]; a row
// past `rows` reads the last one, whose results are not stored). kHalves = 1 for a panel of at most 16 columns (the last of a 196-column
// C: 4 of its 32): half the multiply-adds, each C value computed as with 2.
template <bool kPackedA, std::size_t kHalves>
__attribute__((target("avx512f"))) void micro_kernel(std::size_t depth, const float* ap, std::size_t lda,
                                                     const float* bp, float* c, std::size_t ldc, std::size_t rows,
                                                     std::size_t cols, float alpha, float beta, bool first) {
  // C's tile is read or written only after the loop: fetch its lines now, or the kernel waits on
  // them (C of a 1024² product is out of L2: 1024³ ran at 155 GFLOP/s without this, 180-200 with).
  for (std::size_t i = 0; i < rows; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + cols - 1), _MM_HINT_T0);
  }
  __m512 acc[kMR][kHalves];
#pragma GCC unroll 8
  for (std::size_t i = 0; i < kMR; ++i)
    for (std::size_t h = 0; h < kHalves; ++h) acc[i][h] = _mm512_setzero_ps();
  const float* row[kMR];  // A's rows where it lies (!kPackedA)
#pragma GCC unroll 8
  for (std::size_t i = 0; i < kMR; ++i) row[i] = ap + std::min(i, rows - 1) * lda;
  for (std::size_t p = 0; p < depth; ++p) {
    __m512 b[kHalves];
    for (std::size_t h = 0; h < kHalves; ++h) b[h] = _mm512_load_ps(bp + p * kNR + 16 * h);
#pragma GCC unroll 8
    for (std::size_t i = 0; i < kMR; ++i) {
      const __m512 ai = _mm512_set1_ps(kPackedA ? ap[p * kMR + i] : row[i][p]);
      for (std::size_t h = 0; h < kHalves; ++h) acc[i][h] = _mm512_fmadd_ps(ai, b[h], acc[i][h]);
    }
  }
  const __m512 a_scale = _mm512_set1_ps(alpha), b_scale = _mm512_set1_ps(beta);
  const bool read_c = !first || beta != 0.0f;
  const bool scale_c = first && beta != 1.0f;
#pragma GCC unroll 8
  for (std::size_t i = 0; i < kMR; ++i) {
    if (i >= rows) break;
    for (std::size_t h = 0; h < kHalves; ++h) {
      float* out = c + i * ldc + 16 * h;
      const __mmask16 lanes = kernels::first_lanes16(cols > 16 * h ? cols - 16 * h : 0);
      __m512 v = _mm512_mul_ps(a_scale, acc[i][h]);
      if (read_c) {
        const __m512 old = _mm512_maskz_loadu_ps(lanes, out);
        v = _mm512_add_ps(v, scale_c ? _mm512_mul_ps(b_scale, old) : old);
      }
      _mm512_mask_storeu_ps(out, lanes, v);
    }
  }
}

// One tile: the micro-kernel for its width.
template <bool kPackedA>
void tile(std::size_t depth, const float* ap, std::size_t lda, const float* bp, float* c, std::size_t ldc,
          std::size_t rows, std::size_t cols, float alpha, float beta, bool first) {
  if (cols <= 16)
    micro_kernel<kPackedA, 1>(depth, ap, lda, bp, c, ldc, rows, cols, alpha, beta, first);
  else
    micro_kernel<kPackedA, 2>(depth, ap, lda, bp, c, ldc, rows, cols, alpha, beta, first);
}

// Packs inner indices [pc, pc + depth) and columns [jc, jc + cols) of a B given by masked rows (see
// sgemm_avx512_rows) into panels as pack_b does: two masked loads per row and panel, nothing read
// where the mask is clear.
__attribute__((target("avx512f"))) void pack_rows(const MaskedRows& b, std::size_t pc, std::size_t depth,
                                                  std::size_t jc, std::size_t cols, float* out) {
  for (std::size_t j0 = 0; j0 < cols; j0 += kNR, out += kNR * depth) {
    const std::size_t column = jc + j0;  // a multiple of 32: one mask word per row
    const std::uint32_t edge = cols - j0 >= 32 ? ~std::uint32_t(0) : (std::uint32_t(1) << (cols - j0)) - 1u;
    for (std::size_t p = 0; p < depth; ++p) {
      const std::uint32_t word = b.masks[pc + p][column / 32] & edge;
      // (an address, not a pointer: the row's start may lie before its array; masked lanes are not read)
      const auto* src = reinterpret_cast<const float*>(b.rows[pc + p] + column * sizeof(float));
      _mm512_store_ps(out + p * kNR, _mm512_maskz_loadu_ps(__mmask16(word & 0xFFFFu), src));
      _mm512_store_ps(out + p * kNR + 16, _mm512_maskz_loadu_ps(__mmask16(word >> 16), src + 16));
    }
  }
}

// Where B comes from: a matrix (op(B) through its transpose flag) or masked rows, packed block by
// block into panels. (Reading a plain B in place measured the same as packing it: matmul/64 8.9 us
// either way.)
struct PackedMatrix {
  bool trans;
  const float* b;
  std::size_t ldb;
  void pack(std::size_t pc, std::size_t kc, std::size_t jc, std::size_t nc, float* out) const {
    pack_b(trans, kc, nc, trans ? b + jc * ldb + pc : b + pc * ldb + jc, ldb, out);
  }
};
struct PackedRows {
  MaskedRows b;
  void pack(std::size_t pc, std::size_t kc, std::size_t jc, std::size_t nc, float* out) const {
    pack_rows(b, pc, kc, jc, nc, out);
  }
};

// C = α·op(A)·op(B) + β·C by the loops in the comment at the top, B from `source`; A packed
// already (sgemm_avx512_pack_a) where `prepacked` is given, `a` then unread.
template <class Source>
void blocked(bool trans_a, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a, std::size_t lda,
             const Source& source, float beta, float* c, std::size_t ldc, const float* prepacked = nullptr) {
  thread_local std::unique_ptr<float[]> a_storage, b_storage;
  thread_local std::size_t a_capacity = 0, b_capacity = 0;
  // A small A as it lies (not transposed: its packing would transpose it) is read in place by the
  // micro-kernel: a single block of it stays in L1/L2 anyway (matmul/64: packing was 7%); so is
  // any A beside a single panel of columns, which the kernel reads once, so packing it was a pass
  // for nothing (4096 × 32 × 1024: 1.6 → 1.2 ms; 1024 × 24 × 512: 185 → 146 us).
  const bool direct_a = !prepacked && !trans_a && ((m <= kMC && k <= kKC) || n <= kNR);
  for (std::size_t jc = 0; jc < n; jc += kNC) {
    const std::size_t nc = std::min(kNC, n - jc);
    for (std::size_t pc = 0; pc < k; pc += kKC) {
      const std::size_t kc = std::min(kKC, k - pc);
      float* packed_b = scratch(b_storage, b_capacity, (nc + kNR - 1) / kNR * kNR * kc);
      source.pack(pc, kc, jc, nc, packed_b);
      auto panel = [&](std::size_t jr) { return packed_b + jr * kc; };
      for (std::size_t ic = 0; ic < m; ic += kMC) {
        const std::size_t mc = std::min(kMC, m - ic);
        if (direct_a) {
          for (std::size_t jr = 0; jr < nc; jr += kNR)
            for (std::size_t ir = 0; ir < mc; ir += kMR)
              tile<false>(kc, a + (ic + ir) * lda + pc, lda, panel(jr), c + (ic + ir) * ldc + jc + jr, ldc,
                          std::min(kMR, mc - ir), std::min(kNR, nc - jr), alpha, beta, pc == 0);
          continue;
        }
        const float* packed_a = nullptr;
        if (prepacked) {
          packed_a = prepacked + pc * padded_rows(m) + ic * kc;
        } else {
          float* to = scratch(a_storage, a_capacity, padded_rows(mc) * kc);
          pack_a(trans_a, mc, kc, trans_a ? a + pc * lda + ic : a + ic * lda + pc, lda, to);
          packed_a = to;
        }
        for (std::size_t jr = 0; jr < nc; jr += kNR)
          for (std::size_t ir = 0; ir < mc; ir += kMR)
            tile<true>(kc, packed_a + ir * kc, kMR, panel(jr), c + (ic + ir) * ldc + jc + jr, ldc,
                       std::min(kMR, mc - ir), std::min(kNR, nc - jr), alpha, beta, pc == 0);
      }
    }
  }
}

void blocked(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
             std::size_t lda, const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc) {
  blocked(trans_a, m, n, k, alpha, a, lda, PackedMatrix{trans_b, b, ldb}, beta, c, ldc);
}

// Multiply-adds the tiles compute for an m × n product, padding included.
std::size_t padded_work(std::size_t m, std::size_t n) {
  return (m + kMR - 1) / kMR * kMR * ((n + kNR - 1) / kNR * kNR);
}

// A·Bᵀ (neither operand's flag set but B's: both read along their rows) for a C of at most
// kDotValues values: each C value is the dot product of a row of A and a row of B, 16 products
// at a time in a register per (row of A, row of B) pair, two rows of A against four of B per
// pass (six loads for eight multiply-adds), the 16 lanes added in a fixed order at the end. The
// blocked loops would transpose all of B into 32-wide panels (mostly padding) for as few
// multiply-adds: Winograd's weight gradient at 8 channels, 16 products of 8 × 8 over 256 tiles,
// spent more time packing B than multiplying.
constexpr std::size_t kDotValues = 128;

__attribute__((target("avx512f"))) void dot_rows(std::size_t m, std::size_t n, std::size_t k, float alpha,
                                                 const float* a, std::size_t lda, const float* b, std::size_t ldb,
                                                 float beta, float* c, std::size_t ldc) {
  constexpr std::size_t kRowsA = 2, kRowsB = 4;
  for (std::size_t i0 = 0; i0 < m; i0 += kRowsA)
    for (std::size_t j0 = 0; j0 < n; j0 += kRowsB) {
      const std::size_t rows = std::min(kRowsA, m - i0), cols = std::min(kRowsB, n - j0);
      const float* ra[kRowsA];
      const float* rb[kRowsB];
      // (rows past the end repeat the last one; their results are not stored)
      for (std::size_t i = 0; i < kRowsA; ++i) ra[i] = a + (i0 + std::min(i, rows - 1)) * lda;
      for (std::size_t j = 0; j < kRowsB; ++j) rb[j] = b + (j0 + std::min(j, cols - 1)) * ldb;
      __m512 acc[kRowsA][kRowsB];
      for (auto& row : acc)
        for (__m512& v : row) v = _mm512_setzero_ps();
      for (std::size_t p = 0; p < k; p += 16) {
        const __mmask16 lanes = kernels::first_lanes16(k - p);
        __m512 va[kRowsA], vb[kRowsB];
        for (std::size_t i = 0; i < kRowsA; ++i) va[i] = _mm512_maskz_loadu_ps(lanes, ra[i] + p);
        for (std::size_t j = 0; j < kRowsB; ++j) vb[j] = _mm512_maskz_loadu_ps(lanes, rb[j] + p);
        for (std::size_t i = 0; i < kRowsA; ++i)
          for (std::size_t j = 0; j < kRowsB; ++j) acc[i][j] = _mm512_fmadd_ps(va[i], vb[j], acc[i][j]);
      }
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < cols; ++j) {
          float* out = c + (i0 + i) * ldc + j0 + j;
          const float dot = alpha * _mm512_reduce_add_ps(acc[i][j]);
          *out = beta == 0.0f ? dot : dot + beta * *out;  // β = 0 never reads C
        }
    }
}

}  // namespace

std::size_t sgemm_avx512_tile_work(std::size_t m, std::size_t n) { return padded_work(m, n); }

bool sgemm_avx512_available() {
  static const bool available = __builtin_cpu_supports("avx512f");
  return available;
}

// A C with few columns and more rows (a convolution's weight gradient: 32 × 9 over k = 784) would
// fill 32-wide tiles with padding: it is computed as Cᵀ = op(B)ᵀ·op(A)ᵀ into a scratch and
// transposed into C when that pads at most half as much (32 × 9: 1024 → 512 multiply-adds per
// step; 20.9 → 8.1 us, OpenBLAS 9.0-10.0), kTransposedRows rows of C at a time so that the
// scratch stays small however tall C is. The scratch goes back into C in 16 × 16 register blocks
// (kernels::transpose_matrix), straight into C when β = 0 and through a second scratch, then
// added row by row, when not: a scalar loop reading Cᵀ down its columns was 19% of `op/bmm/1024`
// (64 products of 16 × 1024 · 1024 × 16, forward and backward; dB = Aᵀ·dC is 1024 × 16).
void sgemm_avx512(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                  const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
                  std::size_t ldc) {
  if (trans_b && !trans_a && m * n <= kDotValues) {  // a tiny C: dot products (dot_rows)
    dot_rows(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  // A·Bᵀ with few rows and a large B (a Linear layer's forward on a batch of up to 32, a matmul's
  // dA = dC·Bᵀ): packing op(B) transposes all of B, out of L2, for a few rows' work; Cᵀ = B·Aᵀ reads
  // B where it lies and packs only Aᵀ (m = 10, n = k = 1000: 256 -> 158 us; 32, 1024: 493 -> 332;
  // with B in L2 the packing costs little and the padded transposed tiles more: 8, 256: 11 -> 23).
  const bool large_b_few_rows = trans_b && !trans_a && m <= kNR && n > kNR && n * k >= (std::size_t(1) << 18);
  if (!large_b_few_rows && 2 * padded_work(n, m) > padded_work(m, n)) {
    blocked(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  constexpr std::size_t kTransposedRows = 4096;
  thread_local std::unique_ptr<float[]> storage;
  thread_local std::size_t capacity = 0;
  const std::size_t block = n * std::min(m, kTransposedRows);
  float* ct = scratch(storage, capacity, beta == 0.0f ? block : 2 * block);
  for (std::size_t i0 = 0; i0 < m; i0 += kTransposedRows) {
    const std::size_t rows = std::min(kTransposedRows, m - i0);
    blocked(!trans_b, !trans_a, n, rows, k, alpha, b, ldb, trans_a ? a + i0 : a + i0 * lda, lda, 0.0f, ct, rows);
    if (beta == 0.0f) {
      kernels::transpose_matrix(ct, n, rows, rows, c + i0 * ldc, ldc);
      continue;
    }
    float* product = ct + block;  // C's rows [i0, i0 + rows), n values each
    kernels::transpose_matrix(ct, n, rows, rows, product, n);
    for (std::size_t i = 0; i < rows; ++i) {
      float* row = c + (i0 + i) * ldc;
      for (std::size_t j = 0; j < n; ++j) row[j] = product[i * n + j] + beta * row[j];
    }
  }
}

// op(A) in blocked()'s layout: for each block of kKC inner indices (from pc), all of its rows'
// panels, padded_rows(m) · kc floats from pc · padded_rows(m) on.
std::size_t sgemm_avx512_packed_a_floats(std::size_t m, std::size_t k) { return padded_rows(m) * k; }

void sgemm_avx512_pack_a(bool trans_a, std::size_t m, std::size_t k, const float* a, std::size_t lda, float* packed) {
  for (std::size_t pc = 0; pc < k; pc += kKC)
    pack_a(trans_a, m, std::min(kKC, k - pc), trans_a ? a + pc * lda : a + pc, lda, packed + pc * padded_rows(m));
}

void sgemm_avx512_rows(std::size_t m, std::size_t n, std::size_t k, float alpha, const float* packed_a,
                       const MaskedRows& b, float beta, float* c, std::size_t ldc) {
  blocked(false, m, n, k, alpha, nullptr, 0, PackedRows{b}, beta, c, ldc, packed_a);
}

#endif

}  // namespace tg::detail
