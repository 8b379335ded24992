// matmul on one GEMM entry point: OpenBLAS (through xtensor-blas's cxxblas wrappers, which pick sgemm or
// dgemm), and for float32 on AVX-512 our own kernel (sgemm.cpp).
// Backward uses GEMM's transpose flags: dA = dC·Bᵀ and dB = Aᵀ·dC, with no transposed tensors
// (one small-size exception inside gemm, below).
#include "core/ops/linalg.hpp"
#include "core/xtensor.hpp"

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include <xtensor-blas/xblas.hpp>

#include "core/autograd.hpp"
#include "core/ops/kernels.hpp"
#include "core/ops/reduce.hpp"
#include "core/ops/linalg_gemm.hpp"

extern "C" char* openblas_get_corename(void);

namespace tg {

namespace detail {

// C (rows × N) = α·op(A)·op(B) + β·C with n = N and k = K, both from 2 to 4, known to the compiler:
// op(B) sits in registers as K rows of N values and each row of C is N sums at once, each in order
// over k. BLAS packs more than such a product computes: batches of tiny matrices (op/bmm4/64, 256
// products of 4 × 4 forward and backward: 28.7 us with the sizes known at run time only, 12.1 here)
// and tall ones with few columns ((300000, 3) · (3, 3) forward and backward: 2.85 ms through
// OpenBLAS, 2.26 here; libtorch 2.46).
template <class T, std::size_t N, std::size_t K>
void narrow_product(bool trans_a, bool trans_b, std::size_t rows, T alpha, const T* a, std::size_t lda, const T* b,
                    std::size_t ldb, T beta, T* c, std::size_t ldc) {
  T rows_b[K][N];  // op(B)
  for (std::size_t p = 0; p < K; ++p)
    for (std::size_t j = 0; j < N; ++j) rows_b[p][j] = trans_b ? b[j * ldb + p] : b[p * ldb + j];
  // A's layout known to the compiler too (with it at run time, bmm4/64 took 13.7 us, not 12.1)
  auto rows_of_c = [&]<bool TransA>() {
    for (std::size_t i = 0; i < rows; ++i) {
      T sum[N] = {};
      for (std::size_t p = 0; p < K; ++p)
        for (std::size_t j = 0; j < N; ++j) sum[j] += a[TransA ? p * lda + i : i * lda + p] * rows_b[p][j];
      T* row = c + i * ldc;
      for (std::size_t j = 0; j < N; ++j)  // β = 0 does not read C (it may hold anything, NaN included)
        row[j] = beta == T(0) ? alpha * sum[j] : alpha * sum[j] + beta * row[j];
    }
  };
  if (trans_a)
    rows_of_c.template operator()<true>();
  else
    rows_of_c.template operator()<false>();
}

// Whether OpenBLAS runs its AVX-512 cores' kernels (SkylakeX, Cooperlake, SapphireRapids: the
// core it picked for the CPU, or the one OPENBLAS_CORETYPE names), whose small-matrix kernels
// (products of up to 100³ multiply-adds) read both operands where they lie. There they beat
// sgemm.cpp's kernel, which packs B, on every shape measured (Zen 4, "Cooperlake", one thread,
// p10 of 2000 calls, OpenBLAS / ours, us): 32³ 0.67 / 0.76-0.83, 64³ 4.8 / 5.4-5.8, 100³ 19 /
// 23, 128 × 64 × 64 9.6 / 10.3-11.3, 32 × 64 × 256 9.2 / 11.0-12.3, 64 × 10 × 256 3.4-5.0 /
// 6.8-7.6, A·B and Aᵀ·B alike; not A·Bᵀ (64³: 6.2 / 5.2), which OpenBLAS packs (see below).
// Under OPENBLAS_CORETYPE=Haswell (64³ A·B: 5.5 us) and on other cores our kernel stays. The
// choice depends on the machine only: the same bits for any thread count.
bool openblas_small_kernels() {
  static const bool has = [] {
    std::string core = openblas_get_corename();
    std::transform(core.begin(), core.end(), core.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
    return core == "skylakex" || core == "cooperlake" || core == "sapphirerapids";
  }();
  return has;
}

// OpenBLAS runs single-threaded (core/parallel.cpp). A product big enough to share is cut into
// at most kMaxBlocks blocks of rows of C (or columns, when C has few rows), each at least
// kGemmBlock long, that TBB runs in parallel. The cut depends only on the sizes, so the bits never
// depend on the thread count (OpenBLAS's results do depend on the cut: its edge kernels differ).
// Few, large blocks: every GEMM call packs B again, and a 512³ product cut in 64-row blocks took
// 14% longer than whole on one thread (3.02 vs 2.65 ms), four blocks 7%. Two blocks, as many as
// this project's machines have cores: against four, 1024² matmul/Linear forward and backward and
// the wide_adam step took 2-6% less time at both 1 and 2 threads. (On a machine with more cores, a
// single large product still uses two of them; batched work such as a convolution's samples
// spreads wider.)
//
// Big enough to share: 2^21 multiply-adds or more, at least 2^20 (about 9 us on one core) per
// block. A product alone in a loop gains from less (128 × 128 × 64 at two threads: 13.2 -> 8.9 us
// cut in two), but inside a model it sits among small serial ops, and each cut woke the other
// thread (TBB's sleeping worker: sched_yield and its wait loop were 20% of a GRU step's profile)
// for a few us of work: the GRU's and LSTM's per-step products (64 × 192 × 64, 64 × 256 × 64)
// split at 2^18 made two threads slower than one. Raised from 2^18 (8 runs by turns, median):
// layer/GRU/2 3.78 -> 3.17 ms, LSTM/2 4.84 -> 4.36; mlp, wide_adam, MultiheadAttention and
// TransformerEncoderLayer at two threads even.
//
// One exception to "transpose flags, never a transposed copy": OpenBLAS (0.3.21) runs a product of
// up to 100³ multiply-adds with its small-matrix kernels, which skip packing, but not a row-major
// A·Bᵀ (its column-major TN) once C has more than 1200 entries: that shape is packed like a large
// one. A Linear layer's forward x·Wᵀ is that shape. Measured on one thread (m, n, k: A·Bᵀ as is /
// Bᵀ copied in 8×8 blocks, then A·B): 64,64,64 6.2 / 5.4 us; 32,80,128 8.4 / 7.8; 128,128,32 12.2 /
// 10.2; 128,10,256 13.7 / 9.7; 64,192,64 18.0 / 16.1; 64,32,32 1.74 / 1.42. Where OpenBLAS does
// use its small kernel the copy only costs: C of 1200 entries or fewer (32,9,784, a 1-channel
// convolution's weight gradient, 4.6 / 8.7; 32,16,784 7.2 / 9.8), under 32 rows (16,64,64 1.75 /
// 2.0), and past 100³ (256,64,64 22.3 / 22.6). So only for at least 32 rows, more than 1200
// entries of C and at most 100³ multiply-adds is B transposed, into a per-thread scratch (reused:
// no allocation at steady state), and multiplied as is. The choice depends only on the sizes: the
// same bits for any thread count.
//
// One row or one column of C is a matrix-vector product, which OpenBLAS's GEMM still runs as a
// GEMM: it packs all of B for the one row (sgemm_incopy was 53% of infer_one, a 1-sample MLP,
// in perf). GEMV reads the matrix once, as it lies.
//
// An empty C is nothing to do, and an empty inner dim (k = 0) makes C = β·C, a sum of nothing:
// neither reaches BLAS, which rejects the zero leading dimensions such operands have.
template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
          std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
    return;
  }
  // C (rows × cols, one of them 1) as y = M·x, with M = op(B)ᵀ for one row (x that row of op(A)) or
  // M = op(A) for one column (x that column of op(B)); y steps by ldc down a column of C.
  auto matrix_vector = [&](std::size_t rows, std::size_t cols, const T* a_part, const T* b_part, T* c_part) {
    const bool one_row = rows == 1;
    const std::size_t length = one_row ? cols : rows, y_step = one_row ? 1 : ldc;
    // β = 0 must not read C (it may hold anything, NaN included); OpenBLAS's GEMV scales y by β.
    if (beta == T(0))
      for (std::size_t i = 0; i < length; ++i) c_part[i * y_step] = T(0);
    if (one_row)  // y = op(B)ᵀ·x: B as stored (k × n, or n × k when transposed)
      cxxblas::gemv<int>(cxxblas::RowMajor, trans_b ? cxxblas::NoTrans : cxxblas::Trans, int(trans_b ? cols : k),
                         int(trans_b ? k : cols), alpha, b_part, int(ldb), a_part, int(trans_a ? lda : 1), beta,
                         c_part, 1);
    else  // y = op(A)·x: A as stored (m × k, or k × m when transposed)
      cxxblas::gemv<int>(cxxblas::RowMajor, trans_a ? cxxblas::Trans : cxxblas::NoTrans, int(trans_a ? k : rows),
                         int(trans_a ? rows : k), alpha, a_part, int(lda), b_part, int(trans_b ? 1 : ldb), beta,
                         c_part, int(ldc));
  };
  // k = 1: C = α·a·bᵀ (+ β·C), an outer product: each row of C is b's row times α·a_i, one pass
  // over C. (The GEMM kernel packed both sides for it: a matrix-vector product's weight gradient,
  // 1024 × 1024, took twice libtorch's time.) b, strided when transposed, is gathered first.
  auto outer_product = [&](std::size_t rows, std::size_t cols, const T* a_part, const T* b_part, T* c_part) {
    thread_local std::vector<T> gathered;
    if (trans_b && ldb != 1) {
      gathered.resize(std::max(gathered.size(), cols));
      for (std::size_t j = 0; j < cols; ++j) gathered[j] = b_part[j * ldb];
      b_part = gathered.data();
    }
    using B = kernels::Batch<T>;
    for (std::size_t i = 0; i < rows; ++i) {
      const B scale(alpha * a_part[trans_a ? i : i * lda]);
      T* row = c_part + i * ldc;
      if (beta == T(0))  // C is not read: it may hold anything, NaN included
        kernels::apply(cols, row, [&](const B& x) { return scale * x; }, b_part);
      else
        kernels::apply(cols, row, [&, by = B(beta)](const B& x, const B& y) { return scale * x + by * y; }, b_part,
                       static_cast<const T*>(row));
    }
  };
  auto call = [&](std::size_t rows, std::size_t cols, const T* a_part, const T* b_part, T* c_part) {
    if (rows == 1 || cols == 1) {
      matrix_vector(rows, cols, a_part, b_part, c_part);
      return;
    }
    if (k == 1) {
      outer_product(rows, cols, a_part, b_part, c_part);
      return;
    }
    if (kernels::with_known_size<2, 4>(cols, [&]<std::size_t N>() {
          return kernels::with_known_size<2, 4>(k, [&]<std::size_t K>() {
            narrow_product<T, N, K>(trans_a, trans_b, rows, alpha, a_part, lda, b_part, ldb, beta, c_part, ldc);
          });
        }))
      return;
    // float32 on AVX-512 runs sgemm.cpp's kernel (1.5-2x OpenBLAS's AVX2 one from 32³ up, the
    // machine's OPENBLAS_CORETYPE allowing no more), but not for a C under 8 rows or columns:
    // its 8 × 32 tiles would be mostly padding (100 × 2 over k = 50: 1.64 vs 1.04 us), nor for
    // a small product OpenBLAS's AVX-512 small-matrix kernels take (openblas_small_kernels).
#if defined(__x86_64__)
    if constexpr (std::is_same_v<T, float>) {
      const bool small_for_openblas =
          (trans_a || !trans_b) && rows * cols * k <= 1'000'000 && openblas_small_kernels();
      if (rows >= 8 && cols >= 8 && !small_for_openblas && sgemm_avx512_available()) {
        sgemm_avx512(trans_a, trans_b, rows, cols, k, alpha, a_part, lda, b_part, ldb, beta, c_part, ldc);
        return;
      }
    }
#endif
    bool transposed_b = trans_b;
    std::size_t b_stride = ldb;
    if (!trans_a && trans_b && rows >= 32 && rows * cols > 1200 && rows * cols * k <= 1'000'000) {
      thread_local std::vector<T> scratch;
      scratch.resize(std::max(scratch.size(), k * cols));
      kernels::transpose_matrix(b_part, cols, k, ldb, scratch.data(), cols);
      b_part = scratch.data();
      transposed_b = false;
      b_stride = cols;
    }
    cxxblas::gemm<int>(cxxblas::RowMajor, trans_a ? cxxblas::Trans : cxxblas::NoTrans,
                       transposed_b ? cxxblas::Trans : cxxblas::NoTrans, int(rows), int(cols), int(k), alpha, a_part,
                       int(lda), b_part, int(b_stride), beta, c_part, int(ldc));
  };
  static constexpr std::size_t kGemmBlock = 64;
  static constexpr std::size_t kMaxBlocks = 2;
  constexpr std::size_t kGemmParallelWork = std::size_t(1) << 21;  // multiply-adds
  // One row or column of C, or k = 1, is a pass over one operand's m·n·k values: bound by memory,
  // not multiply-adds, so it is shared from 2^18 values (1 MB of float32, about 80 us at one
  // thread's 13 GB/s: `op/matvec/1024` took the same 0.30 ms at two threads as at one). Below
  // that the operand sits in L2 and the pass is short (a 1-sample Linear(784, 256): 200,704).
  constexpr std::size_t kVectorParallelWork = std::size_t(1) << 18;
  const bool vector_like = m == 1 || n == 1 || k == 1;
  if (m * n * k < (vector_like ? kVectorParallelWork : kGemmParallelWork) ||
      (m < 2 * kGemmBlock && n < 2 * kGemmBlock)) {
    call(m, n, a, b, c);
    return;
  }
  // The block length for `extent` rows or columns: kMaxBlocks blocks, a multiple of 16, at least
  // kGemmBlock.
  auto block_length = [](std::size_t extent) {
    const std::size_t even = (extent + kMaxBlocks - 1) / kMaxBlocks;
    return std::max(kGemmBlock, (even + 15) / 16 * 16);
  };
  if (m >= n || m >= 2 * kGemmBlock) {  // blocks of rows of C: rows of A (columns if A is transposed)
    const std::size_t length = block_length(m), blocks = (m + length - 1) / length;
    parallel::for_range(blocks, 1, [&](std::size_t first, std::size_t last) {
      for (std::size_t blk = first; blk < last; ++blk) {
        const std::size_t row = blk * length, rows = std::min(length, m - row);
        call(rows, n, trans_a ? a + row : a + row * lda, b, c + row * ldc);
      }
    });
  } else {  // blocks of columns of C: columns of B (rows if B is transposed)
    const std::size_t length = block_length(n), blocks = (n + length - 1) / length;
    parallel::for_range(blocks, 1, [&](std::size_t first, std::size_t last) {
      for (std::size_t blk = first; blk < last; ++blk) {
        const std::size_t col = blk * length, cols = std::min(length, n - col);
        call(m, cols, a, trans_b ? b + col * ldb : b + col, c + col);
      }
    });
  }
}

template <class T>
bool gemm_prefers_transposed(std::size_t m, std::size_t n) {
#if defined(__x86_64__)
  if constexpr (std::is_same_v<T, float>)
    return m >= 8 && n >= 8 && sgemm_avx512_available() &&
           (sgemm_avx512_tile_work(n, m) < sgemm_avx512_tile_work(m, n) ||
            (m <= kSgemmPanelColumns && n > kSgemmPanelColumns));
#endif
  (void)m;
  (void)n;
  return false;
}

template bool gemm_prefers_transposed<float>(std::size_t, std::size_t);
template bool gemm_prefers_transposed<double>(std::size_t, std::size_t);
template void gemm<float>(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*, std::size_t,
                          const float*, std::size_t, float, float*, std::size_t);
template void gemm<double>(bool, bool, std::size_t, std::size_t, std::size_t, double, const double*, std::size_t,
                           const double*, std::size_t, double, double*, std::size_t);

}  // namespace detail

namespace {

// PyTorch's matmul: 1-D operands are promoted to matrices ((k) is (1, k) on the left and (k, 1) on
// the right) and the dims before the last two are batch dims, broadcast against each other as in
// elementwise ops. Batch i of the output multiplies matrix a_of(i) of A by b_of(i) of B (a
// broadcast operand repeats its matrices). Any of the sizes may be 0.
struct MatmulPlan {
  std::size_t batch = 1, m = 1, k = 1, n = 1;
  std::size_t batches_a = 1, batches_b = 1;  // matrices in A and in B
  std::vector<std::size_t> matrix_a, matrix_b;  // empty for an operand with a matrix per batch
  std::size_t a_of(std::size_t i) const { return matrix_a.empty() ? i : matrix_a[i]; }
  std::size_t b_of(std::size_t i) const { return matrix_b.empty() ? i : matrix_b[i]; }
  bool a_stacked = false;  // B is one shared matrix and A's batches are distinct: one tall GEMM
  Shape out_shape;
};

MatmulPlan plan_matmul(const Shape& a, const Shape& b) {
  TG_CHECK(a.size() >= 1 && b.size() >= 1, "matmul: both arguments need at least 1 dimension, got shapes ",
           shape_str(a), " and ", shape_str(b));
  MatmulPlan p;
  const std::size_t ka = a.back();
  const std::size_t kb = b.size() == 1 ? b[0] : b[b.size() - 2];
  TG_CHECK(ka == kb, "matmul: shapes ", shape_str(a), " and ", shape_str(b), " cannot be multiplied (", ka,
           " != ", kb, ")");
  p.k = ka;
  p.m = a.size() == 1 ? 1 : a[a.size() - 2];
  p.n = b.size() == 1 ? 1 : b.back();
  // Batch dims, right-aligned and broadcast.
  const std::size_t rank_a = a.size() > 2 ? a.size() - 2 : 0, rank_b = b.size() > 2 ? b.size() - 2 : 0;
  const std::size_t rank = std::max(rank_a, rank_b);
  Shape batch_shape(rank), dims_a(rank, 1), dims_b(rank, 1);
  for (std::size_t i = 0; i < rank; ++i) {
    if (i + rank_a >= rank) dims_a[i] = a[i + rank_a - rank];
    if (i + rank_b >= rank) dims_b[i] = b[i + rank_b - rank];
    TG_CHECK(dims_a[i] == dims_b[i] || dims_a[i] == 1 || dims_b[i] == 1, "matmul: batch dims of ", shape_str(a),
             " and ", shape_str(b), " cannot be broadcast (", dims_a[i], " vs ", dims_b[i], " at batch dim ", i, ")");
    batch_shape[i] = dims_a[i] == 1 ? dims_b[i] : dims_a[i];  // 1 against 0 is 0
  }
  p.batch = 1;
  for (std::size_t d : batch_shape) p.batch *= d;
  p.batches_a = 1;
  p.batches_b = 1;
  for (std::size_t i = 0; i < rank; ++i) p.batches_a *= dims_a[i], p.batches_b *= dims_b[i];
  // The index lists only for a broadcast operand (batch i of the other is its matrix i): 100,000
  // batches of 3 × 3 had filled and copied 3.2 MB of them per step.
  const bool list_a = p.batches_a != p.batch, list_b = p.batches_b != p.batch;
  if (list_a) p.matrix_a.assign(p.batch, 0);
  if (list_b) p.matrix_b.assign(p.batch, 0);
  std::size_t stride_a = 1, stride_b = 1;  // matrices per step of batch dim i
  std::size_t repeat = 1;                  // output batches per step of dim i
  for (std::size_t i = rank; i-- > 0 && (list_a || list_b);) {
    for (std::size_t out = 0; out < p.batch; ++out) {
      const std::size_t index = (out / repeat) % batch_shape[i];
      if (list_a && dims_a[i] > 1) p.matrix_a[out] += index * stride_a;
      if (list_b && dims_b[i] > 1) p.matrix_b[out] += index * stride_b;
    }
    stride_a *= dims_a[i];
    stride_b *= dims_b[i];
    repeat *= batch_shape[i];
  }
  p.a_stacked = p.batches_b == 1 && p.batches_a == p.batch;
  p.out_shape = batch_shape;
  if (a.size() > 1) p.out_shape.push_back(p.m);
  if (b.size() > 1) p.out_shape.push_back(p.n);
  return p;
}

// One product of a batch: C (m × n) = op(A)·op(B), or C += op(A)·op(B) when `accumulate`; op(A) is
// m × k. The kernel is chosen once per batched matmul (choose_product), then called per batch.
struct ProductShape {
  bool trans_a, trans_b;
  std::size_t m, n, k;
};
template <class T>
using Product = void (*)(const ProductShape&, const T* a, const T* b, bool accumulate, T* c);

template <class T>
void gemm_product(const ProductShape& s, const T* a, const T* b, bool accumulate, T* c) {
  detail::gemm<T>(s.trans_a, s.trans_b, s.m, s.n, s.k, 1, a, s.trans_a ? s.m : s.k, b, s.trans_b ? s.k : s.n,
                  accumulate ? 1 : 0, c, s.n);
}

// A tiny product (at most kTinyProduct multiply-adds) value by value, each sum in order over k: a
// BLAS call costs more than its work (100,000 products of 3 × 3 matrices, forward and backward:
// about 110 ns a call, 34 ms against libtorch's 6). N and K, when not 0, are n and k known to the
// compiler (detail::narrow_product).
inline constexpr std::size_t kTinyProduct = 512;

template <class T, std::size_t N, std::size_t K>
void tiny_product(const ProductShape& s, const T* a, const T* b, bool accumulate, T* c) {
  if constexpr (N && K) {
    detail::narrow_product<T, N, K>(s.trans_a, s.trans_b, s.m, T(1), a, s.trans_a ? s.m : K, b, s.trans_b ? K : N,
                                    accumulate ? T(1) : T(0), c, N);
  } else {
    const std::size_t m = s.m, n = s.n, k = s.k;
    const std::size_t a_row = s.trans_a ? 1 : k, a_step = s.trans_a ? m : 1;  // A(i, p) = a[i·a_row + p·a_step]
    const std::size_t b_col = s.trans_b ? k : 1, b_step = s.trans_b ? 1 : n;  // B(p, j) = b[j·b_col + p·b_step]
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        T sum = 0;
        for (std::size_t p = 0; p < k; ++p) sum += a[i * a_row + p * a_step] * b[j * b_col + p * b_step];
        c[i * n + j] = accumulate ? c[i * n + j] + sum : sum;
      }
  }
}

template <class T>
Product<T> choose_product(const ProductShape& s) {
  if (s.m * s.n * s.k > kTinyProduct) return gemm_product<T>;
  Product<T> known = tiny_product<T, 0, 0>;
  kernels::with_known_size<2, 4>(s.n, [&]<std::size_t N>() {
    kernels::with_known_size<2, 4>(s.k, [&]<std::size_t K>() { known = tiny_product<T, N, K>; });
  });
  return known;
}

// body(i) for every batch i, where no two batches write one matrix: in parallel over batches. A
// product large enough for gemm to split runs its blocks as tasks nested in the batch's (TBB
// schedules both; gemm's thread-local scratch is never in use across a wait). Each product's split
// depends on its sizes only, so the bits do not depend on the thread count. (Batches in order
// while gemm split each product: op/bmm/1024/2 1.4-1.6 ms, slower than one thread; now 0.76.) A
// matrix shared by several batches sums them in batch order instead: the callers' serial loops.
template <class Body>
void for_batches(const MatmulPlan& p, Body&& body) {
  const std::size_t work = std::max<std::size_t>(1, p.m * p.n * p.k);  // multiply-adds: 16 take a value's time
  parallel::for_range(p.batch, std::max<std::size_t>(1, 16 * parallel::kGrain / work),
                      [&](std::size_t first, std::size_t last) {
                        for (std::size_t i = first; i < last; ++i) body(i);
                      });
}

// C_i = A_i·B_i for every batch. When only A is batched the batches are one taller matrix.
template <class T>
void forward(const MatmulPlan& p, const T* a, const T* b, T* c) {
  if (p.a_stacked) {
    detail::gemm<T>(false, false, p.batch * p.m, p.n, p.k, 1, a, p.k, b, p.n, 0, c, p.n);
    return;
  }
  const ProductShape shape{false, false, p.m, p.n, p.k};
  const Product<T> product = choose_product<T>(shape);
  for_batches(p, [&](std::size_t i) {
    product(shape, a + p.a_of(i) * p.m * p.k, b + p.b_of(i) * p.k * p.n, false, c + i * p.m * p.n);
  });
}

// dA_i = dC_i·B_iᵀ. A matrix of A used by several batches (broadcast) sums their gradients, in
// batch order: the first writes, the others add. A matrix no batch uses (the broadcast batch is
// empty) gets zeros.
template <class T>
void grad_a(const MatmulPlan& p, const T* dc, const T* b, T* da) {
  const std::size_t size_a = p.m * p.k, size_b = p.k * p.n;
  if (p.a_stacked) {
    detail::gemm<T>(false, true, p.batch * p.m, p.k, p.n, 1, dc, p.n, b, p.n, 0, da, p.k);
    return;
  }
  const ProductShape shape{false, true, p.m, p.k, p.n};
  const Product<T> product = choose_product<T>(shape);
  if (p.batches_a == p.batch) {  // each matrix of A in one batch
    for_batches(p, [&](std::size_t i) {
      product(shape, dc + i * p.m * p.n, b + p.b_of(i) * size_b, false, da + p.a_of(i) * size_a);
    });
    return;
  }
  std::vector<bool> written(p.batches_a, false);
  for (std::size_t i = 0; i < p.batch; ++i) {
    const std::size_t matrix = p.a_of(i);
    product(shape, dc + i * p.m * p.n, b + p.b_of(i) * size_b, written[matrix], da + matrix * size_a);
    written[matrix] = true;
  }
  for (std::size_t matrix = 0; matrix < p.batches_a; ++matrix)
    if (!written[matrix]) std::fill_n(da + matrix * size_a, size_a, T(0));
}

// dB_i = A_iᵀ·dC_i, summed in the same way; a shared B with a stacked A is one GEMM over the
// stacked rows.
template <class T>
void grad_b(const MatmulPlan& p, const T* a, const T* dc, T* db) {
  const std::size_t size_a = p.m * p.k, size_b = p.k * p.n;
  if (p.a_stacked) {
    detail::gemm<T>(true, false, p.k, p.n, p.batch * p.m, 1, a, p.k, dc, p.n, 0, db, p.n);
    return;
  }
  const ProductShape shape{true, false, p.k, p.n, p.m};
  const Product<T> product = choose_product<T>(shape);
  if (p.batches_b == p.batch) {  // each matrix of B in one batch
    for_batches(p, [&](std::size_t i) {
      product(shape, a + p.a_of(i) * size_a, dc + i * p.m * p.n, false, db + p.b_of(i) * size_b);
    });
    return;
  }
  std::vector<bool> written(p.batches_b, false);
  for (std::size_t i = 0; i < p.batch; ++i) {
    const std::size_t matrix = p.b_of(i);
    product(shape, a + p.a_of(i) * size_a, dc + i * p.m * p.n, written[matrix], db + matrix * size_b);
    written[matrix] = true;
  }
  for (std::size_t matrix = 0; matrix < p.batches_b; ++matrix)
    if (!written[matrix]) std::fill_n(db + matrix * size_b, size_b, T(0));
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  TG_CHECK(a.dtype() == b.dtype(), "matmul: expected both inputs to have one dtype, got ", dtype_name(a.dtype()),
           " ", shape_str(a.shape()), " and ", dtype_name(b.dtype()), " ", shape_str(b.shape()));
  const MatmulPlan p = plan_matmul(a.shape(), b.shape());
  Tensor out = dispatch_floating(a.dtype(), "matmul", [&]<class T>() {
    xt::xarray<T> c = xt::xarray<T>::from_shape(p.out_shape);
    forward<T>(p, a.data<T>(), b.data<T>(), c.data());
    return make_tensor<T>(std::move(c));
  });
  return record("matmul", out, {a, b}, {a, b}, [p, a, b](const Tensor& grad, NeedsGrad needs) -> Grads {
    return dispatch_floating(grad.dtype(), "matmul", [&]<class T>() {
      Grads grads(2);
      if (needs[0]) {
        xt::xarray<T> da = xt::xarray<T>::from_shape(a.shape());
        grad_a<T>(p, grad.data<T>(), b.data<T>(), da.data());
        grads[0] = make_tensor<T>(std::move(da));
      }
      if (needs[1]) {
        xt::xarray<T> db = xt::xarray<T>::from_shape(b.shape());
        grad_b<T>(p, a.data<T>(), grad.data<T>(), db.data());
        grads[1] = make_tensor<T>(std::move(db));
      }
      return grads;
    });
  });
}

Tensor linear(const Tensor& input, const Tensor& weight, const Tensor& bias) {
  TG_CHECK(weight.dim() == 2, "linear: expected a 2-D weight, got ", shape_str(weight.shape()));
  const std::size_t out_features = weight.shape()[0], in_features = weight.shape()[1];
  TG_CHECK(input.dim() >= 1 && input.shape().back() == in_features, "linear: input ", shape_str(input.shape()),
           " does not end in in_features = ", in_features, " (weight ", shape_str(weight.shape()), ")");
  TG_CHECK(!bias.defined() || (bias.dim() == 1 && bias.shape()[0] == out_features), "linear: bias ",
           bias.defined() ? shape_str(bias.shape()) : "", " does not match out_features = ", out_features);
  TG_CHECK(input.dtype() == weight.dtype() && (!bias.defined() || bias.dtype() == weight.dtype()),
           "linear: expected one dtype, got input ", dtype_name(input.dtype()), " and weight ",
           dtype_name(weight.dtype()));
  std::size_t rows = 1;  // the input's leading dims (not numel / in_features: in_features may be 0)
  for (std::size_t d = 0; d + 1 < input.dim(); ++d) rows *= input.shape()[d];
  Shape out_shape = input.shape();
  out_shape.back() = out_features;
  Tensor out = dispatch_floating(input.dtype(), "linear", [&]<class T>() {
    xt::xarray<T> y = xt::xarray<T>::from_shape(out_shape);
    if (bias.defined()) {  // every row starts as the bias; GEMM adds x·Wᵀ to it (beta = 1)
      const T* b = bias.data<T>();
      for (std::size_t r = 0; r < rows; ++r) std::copy_n(b, out_features, y.data() + r * out_features);
    }
    detail::gemm<T>(false, true, rows, out_features, in_features, 1, input.data<T>(), in_features,
                    weight.data<T>(), in_features, bias.defined() ? 1 : 0, y.data(), out_features);
    return make_tensor<T>(std::move(y));
  });
  return record("linear", out, {input, weight, bias}, {input, weight},
                [input, weight, rows, in_features, out_features](const Tensor& grad, NeedsGrad needs) -> Grads {
                  return dispatch_floating(grad.dtype(), "linear", [&]<class T>() {
                    Grads grads(3);
                    const T* g = grad.data<T>();
                    if (needs[0]) {  // dx = g·W
                      xt::xarray<T> dx = xt::xarray<T>::from_shape(input.shape());
                      detail::gemm<T>(false, false, rows, in_features, out_features, 1, g, out_features,
                                      weight.data<T>(), in_features, 0, dx.data(), in_features);
                      grads[0] = make_tensor<T>(std::move(dx));
                    }
                    if (needs[1]) {  // dW = gᵀ·x
                      xt::xarray<T> dw = xt::xarray<T>::from_shape(weight.shape());
                      detail::gemm<T>(true, false, out_features, in_features, rows, 1, g, out_features,
                                      input.data<T>(), in_features, 0, dw.data(), in_features);
                      grads[1] = make_tensor<T>(std::move(dw));
                    }
                    if (needs[2]) grads[2] = sum_to(grad, Shape{out_features});  // db = Σ_rows g
                    return grads;
                  });
                });
}

}  // namespace tg
