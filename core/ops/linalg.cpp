// matmul on OpenBLAS GEMM (through xtensor-blas's cxxblas wrappers, which pick sgemm or dgemm).
// Backward uses GEMM's transpose flags: dA = dC·Bᵀ and dB = Aᵀ·dC, with no transposed copies.
#include "core/ops/linalg.hpp"

#include <xtensor-blas/xblas.hpp>

#include "core/autograd.hpp"
#include "core/ops/kernels.hpp"
#include "core/ops/reduce.hpp"
#include "core/ops/linalg_gemm.hpp"

namespace tg {

namespace detail {

// OpenBLAS runs single-threaded (core/parallel.cpp). A product big enough to share is cut into
// fixed blocks of kGemmBlock rows of C (or columns, when C has few rows) that TBB runs in
// parallel; the cut depends only on the sizes, so the bits never depend on the thread count.
template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
          std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
  auto call = [&](std::size_t rows, std::size_t cols, const T* a_part, const T* b_part, T* c_part) {
    cxxblas::gemm<int>(cxxblas::RowMajor, trans_a ? cxxblas::Trans : cxxblas::NoTrans,
                       trans_b ? cxxblas::Trans : cxxblas::NoTrans, int(rows), int(cols), int(k), alpha, a_part,
                       int(lda), b_part, int(ldb), beta, c_part, int(ldc));
  };
  constexpr std::size_t kGemmBlock = 64;
  constexpr std::size_t kGemmParallelWork = std::size_t(1) << 18;  // multiply-adds
  if (m * n * k < kGemmParallelWork || (m < 2 * kGemmBlock && n < 2 * kGemmBlock)) {
    call(m, n, a, b, c);
    return;
  }
  if (m >= n || m >= 2 * kGemmBlock) {  // blocks of rows of C: rows of A (columns if A is transposed)
    const std::size_t blocks = (m + kGemmBlock - 1) / kGemmBlock;
    parallel::for_range(blocks, 1, [&](std::size_t first, std::size_t last) {
      for (std::size_t blk = first; blk < last; ++blk) {
        const std::size_t row = blk * kGemmBlock, rows = std::min(kGemmBlock, m - row);
        call(rows, n, trans_a ? a + row : a + row * lda, b, c + row * ldc);
      }
    });
  } else {  // blocks of columns of C: columns of B (rows if B is transposed)
    const std::size_t blocks = (n + kGemmBlock - 1) / kGemmBlock;
    parallel::for_range(blocks, 1, [&](std::size_t first, std::size_t last) {
      for (std::size_t blk = first; blk < last; ++blk) {
        const std::size_t col = blk * kGemmBlock, cols = std::min(kGemmBlock, n - col);
        call(m, cols, a, trans_b ? b + col * ldb : b + col, c + col);
      }
    });
  }
}

template void gemm<float>(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*, std::size_t,
                          const float*, std::size_t, float, float*, std::size_t);
template void gemm<double>(bool, bool, std::size_t, std::size_t, std::size_t, double, const double*, std::size_t,
                           const double*, std::size_t, double, double*, std::size_t);

}  // namespace detail

namespace {

// (batch, m, k)·(batch, k, n) after 1-D operands are promoted; a stride of 0 is a matrix shared
// by every batch.
struct MatmulPlan {
  std::size_t batch = 1, m = 1, k = 1, n = 1;
  std::size_t stride_a = 0, stride_b = 0;
  Shape out_shape;
};

MatmulPlan plan_matmul(const Shape& a, const Shape& b) {
  TG_CHECK(a.size() >= 1 && a.size() <= 3 && b.size() >= 1 && b.size() <= 3,
           "matmul: expected 1-D, 2-D or 3-D operands, got shapes ", shape_str(a), " and ", shape_str(b));
  MatmulPlan p;
  const std::size_t ka = a.back();
  const std::size_t kb = b.size() == 1 ? b[0] : b[b.size() - 2];
  TG_CHECK(ka == kb, "matmul: shapes ", shape_str(a), " and ", shape_str(b), " cannot be multiplied (", ka,
           " != ", kb, ")");
  p.k = ka;
  p.m = a.size() == 1 ? 1 : a[a.size() - 2];
  p.n = b.size() == 1 ? 1 : b.back();
  const std::size_t batch_a = a.size() == 3 ? a[0] : 1, batch_b = b.size() == 3 ? b[0] : 1;
  TG_CHECK(batch_a == batch_b || batch_a == 1 || batch_b == 1, "matmul: batch sizes of ", shape_str(a), " and ",
           shape_str(b), " do not match");
  p.batch = std::max(batch_a, batch_b);
  p.stride_a = batch_a > 1 ? p.m * p.k : 0;
  p.stride_b = batch_b > 1 ? p.k * p.n : 0;
  if (a.size() == 3 || b.size() == 3) p.out_shape.push_back(p.batch);
  if (a.size() > 1) p.out_shape.push_back(p.m);
  if (b.size() > 1) p.out_shape.push_back(p.n);
  return p;
}

// C_i = A_i·B_i for every batch. When only A is batched the batches are one taller matrix.
template <class T>
void forward(const MatmulPlan& p, const T* a, const T* b, T* c) {
  if (p.stride_b == 0 && p.stride_a != 0) {
    detail::gemm<T>(false, false, p.batch * p.m, p.n, p.k, 1, a, p.k, b, p.n, 0, c, p.n);
    return;
  }
  for (std::size_t i = 0; i < p.batch; ++i)
    detail::gemm<T>(false, false, p.m, p.n, p.k, 1, a + i * p.stride_a, p.k, b + i * p.stride_b, p.n, 0,
                    c + i * p.m * p.n, p.n);
}

// dA_i = dC_i·B_iᵀ; a shared A sums over batches (in batch order).
template <class T>
void grad_a(const MatmulPlan& p, const T* dc, const T* b, T* da) {
  if (p.stride_b == 0 && p.stride_a != 0) {
    detail::gemm<T>(false, true, p.batch * p.m, p.k, p.n, 1, dc, p.n, b, p.n, 0, da, p.k);
    return;
  }
  for (std::size_t i = 0; i < p.batch; ++i)
    detail::gemm<T>(false, true, p.m, p.k, p.n, 1, dc + i * p.m * p.n, p.n, b + i * p.stride_b, p.n,
                    p.stride_a == 0 && i > 0 ? 1 : 0, da + i * p.stride_a, p.k);
}

// dB_i = A_iᵀ·dC_i; a shared B sums over batches, which for a batched A is one GEMM over the
// stacked rows.
template <class T>
void grad_b(const MatmulPlan& p, const T* a, const T* dc, T* db) {
  if (p.stride_b == 0 && p.stride_a != 0) {
    detail::gemm<T>(true, false, p.k, p.n, p.batch * p.m, 1, a, p.k, dc, p.n, 0, db, p.n);
    return;
  }
  for (std::size_t i = 0; i < p.batch; ++i)
    detail::gemm<T>(true, false, p.k, p.n, p.m, 1, a + i * p.stride_a, p.k, dc + i * p.m * p.n, p.n,
                    p.stride_b == 0 && i > 0 ? 1 : 0, db + i * p.stride_b, p.n);
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
  const std::size_t rows = input.numel() / in_features;
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
