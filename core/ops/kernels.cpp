#include "core/ops/kernels.hpp"

#include <algorithm>
#include <type_traits>
#include <vector>
#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace tg::kernels {

Shape broadcast_shape(const char* op, const Shape& a, const Shape& b) {
  const std::size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (std::size_t i = 0; i < rank; ++i) {
    const std::size_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const std::size_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    TG_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ", shape_str(b),
             " cannot be broadcast together (dim ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

BroadcastRows broadcast_rows(const Shape& shape, const Shape& a, const Shape& b) {
  const Shape* operands[2] = {&a, &b};
  BroadcastRows l;  // the merged dims, the row's among them until the end
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    std::size_t at[2];  // each operand's stride along output dim d: 0 where it is broadcast
    for (int k = 0; k < 2; ++k) {
      const Shape& s = *operands[k];
      const std::size_t lead = shape.size() - s.size();
      at[k] = 0;
      if (d >= lead && s[d - lead] != 1) {
        at[k] = 1;
        for (std::size_t e = d - lead + 1; e < s.size(); ++e) at[k] *= s[e];
      }
    }
    // Dim d continues the previous one when, for both operands, a step there is shape[d] steps here.
    if (!l.sizes.empty() && l.stride[0].back() == at[0] * shape[d] && l.stride[1].back() == at[1] * shape[d]) {
      l.sizes.back() *= shape[d];
      l.stride[0].back() = at[0];
      l.stride[1].back() = at[1];
      continue;
    }
    l.sizes.push_back(shape[d]);
    l.stride[0].push_back(at[0]);
    l.stride[1].push_back(at[1]);
  }
  if (l.sizes.empty()) return l;  // one value
  // The innermost merged dim is an operand's innermost non-broadcast dim (stride 1) or broadcast.
  l.row = l.sizes.back();
  l.sizes.pop_back();
  for (int k = 0; k < 2; ++k) {
    l.walks[k] = l.stride[k].back() != 0;
    l.stride[k].pop_back();
  }
  return l;
}

template <class T>
xt::xarray<T> broadcast_to(const Input<T>& in, const Shape& shape) {
  xt::xarray<T> out = xt::xarray<T>::from_shape(shape);
  if (out.size() == 0) return out;
  if (in.size() == 1) {  // one value everywhere (the gradient of a full sum or mean), in parallel chunks
    const T value = in.data()[0];
    parallel::for_range(out.size(), parallel::kGrain, [&](std::size_t begin, std::size_t end) {
      std::fill(out.data() + begin, out.data() + end, value);
    });
    return out;
  }
  const BroadcastRows l = broadcast_rows(shape, in.shape(), in.shape());
  const T* src = in.data();
  T* dst = out.data();
  // Rows of 2 to 8 copied values ((3) to (N, 3): the gradient of a sum over dim 0) by a loop the
  // compiler unrolls: a copy call per row cost more than the copy (2.1 ms for 300,000 rows of 3).
  auto short_rows = [&]<std::size_t N>() {
    for_broadcast_rows(l, [src, dst](std::size_t r, std::size_t offset, std::size_t) {
      for (std::size_t j = 0; j < N; ++j) dst[r * N + j] = src[offset + j];
    });
  };
  if (l.walks[0] && with_known_size<2, 8>(l.row, short_rows)) return out;
  for_broadcast_rows(l, [&](std::size_t r, std::size_t offset, std::size_t) {
    if (l.walks[0])
      std::copy_n(src + offset, l.row, dst + r * l.row);
    else
      std::fill_n(dst + r * l.row, l.row, src[offset]);
  });
  return out;
}

template xt::xarray<float> broadcast_to(const Input<float>&, const Shape&);
template xt::xarray<double> broadcast_to(const Input<double>&, const Shape&);
template xt::xarray<std::int64_t> broadcast_to(const Input<std::int64_t>&, const Shape&);

ReduceLayout reduce_layout(const Shape& shape, std::size_t dim) {
  ReduceLayout layout;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (d < dim) layout.outer *= shape[d];
    else if (d == dim) layout.reduced = shape[d];
    else layout.inner *= shape[d];
  }
  return layout;
}

#if defined(__AVX__) && !defined(__AVX512F__)
// dst[j·dst_stride + i] = src[i·src_stride + j] for i, j < 8: eight rows loaded, transposed in
// registers (unpack pairs, shuffle quads, swap 128-bit halves), eight rows stored.
static void transpose8x8(const float* src, std::size_t src_stride, float* dst, std::size_t dst_stride) {
  __m256 r[8], t[8];
  for (std::size_t i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * src_stride);
  for (std::size_t i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (std::size_t i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (std::size_t i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * dst_stride, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * dst_stride, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}
#endif

#if defined(__AVX512F__)
// The same for 16×16 with 512-bit rows: unpack and shuffle as above leave 4×4 blocks transposed
// within each 128-bit lane; then, for each k < 4, rows k, 4+k, 8+k and 12+k hold those blocks as a
// 4×4 matrix of lanes, transposed by two rounds of lane shuffles (op/transpose/1024/1: 0.48 ms
// with 8×8 blocks, 0.32 ms with these, in a loop of 4 MB transposes). An edge block (kEdge) has
// h ≤ 16 rows of w ≤ 16 values: masked loads (the lanes past w and the rows past h are zeros, never
// read) and masked stores of its w output rows of h values. Scalar copies for the edges were 86%
// of transpose_matrix in `Conv2d_groups4/1`, whose pieces are 14 × 16.
template <bool kEdge>
static void transpose16x16(const float* src, std::size_t src_stride, float* dst, std::size_t dst_stride,
                           std::size_t h = 16, std::size_t w = 16) {
  __m512 r[16], t[16];
  const __mmask16 load = first_lanes16(w), store = first_lanes16(h);
  for (std::size_t i = 0; i < 16; ++i)
    r[i] = !kEdge ? _mm512_loadu_ps(src + i * src_stride)
                  : i < h ? _mm512_maskz_loadu_ps(load, src + i * src_stride) : _mm512_setzero_ps();
  for (std::size_t i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (std::size_t i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  // r[4g + k], lane L: column 4L + k of rows 4g..4g+3. Output row 4L + k is lane L of r[k],
  // r[4 + k], r[8 + k], r[12 + k].
  const auto put = [&](std::size_t row, __m512 v) {
    if (!kEdge) _mm512_storeu_ps(dst + row * dst_stride, v);
    else if (row < w) _mm512_mask_storeu_ps(dst + row * dst_stride, store, v);
  };
  for (std::size_t k = 0; k < 4; ++k) {
    const __m512 ab_even = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x88);  // lanes 0, 2 of each
    const __m512 ab_odd = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xdd);   // lanes 1, 3
    const __m512 cd_even = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x88);
    const __m512 cd_odd = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xdd);
    put(k, _mm512_shuffle_f32x4(ab_even, cd_even, 0x88));
    put(4 + k, _mm512_shuffle_f32x4(ab_odd, cd_odd, 0x88));
    put(8 + k, _mm512_shuffle_f32x4(ab_even, cd_even, 0xdd));
    put(12 + k, _mm512_shuffle_f32x4(ab_odd, cd_odd, 0xdd));
  }
}

// The same for 8×8 64-bit values (double, or pairs of float moved as one value): unpack pairs of
// rows, then the 128-bit lanes of four registers shuffled as the 16×16's last step. (A float64
// transpose was a scalar loop; the pairs of `op/transpose_pairs` went through a tile buffer, a
// memmove call per 64 values, 27% of the step.)
template <bool kEdge>
static void transpose8x8_64(const double* src, std::size_t src_stride, double* dst, std::size_t dst_stride,
                            std::size_t h = 8, std::size_t w = 8) {
  __m512d r[8], t[8];
  const auto load = __mmask8(first_lanes16(w)), store = __mmask8(first_lanes16(h));
  for (std::size_t i = 0; i < 8; ++i)
    r[i] = !kEdge ? _mm512_loadu_pd(src + i * src_stride)
                  : i < h ? _mm512_maskz_loadu_pd(load, src + i * src_stride) : _mm512_setzero_pd();
  for (std::size_t i = 0; i < 8; i += 2) {  // t[i], lane L: values 2L (+1 for odd i) of rows i, i + 1
    t[i] = _mm512_unpacklo_pd(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_pd(r[i], r[i + 1]);
  }
  const auto put = [&](std::size_t row, __m512d v) {
    if (!kEdge) _mm512_storeu_pd(dst + row * dst_stride, v);
    else if (row < w) _mm512_mask_storeu_pd(dst + row * dst_stride, store, v);
  };
  for (std::size_t k = 0; k < 2; ++k) {  // output row 2L + k is lane L of t[k], t[2 + k], t[4 + k], t[6 + k]
    const __m512d ab_even = _mm512_shuffle_f64x2(t[k], t[2 + k], 0x88);  // lanes 0, 2 of each
    const __m512d ab_odd = _mm512_shuffle_f64x2(t[k], t[2 + k], 0xdd);   // lanes 1, 3
    const __m512d cd_even = _mm512_shuffle_f64x2(t[4 + k], t[6 + k], 0x88);
    const __m512d cd_odd = _mm512_shuffle_f64x2(t[4 + k], t[6 + k], 0xdd);
    put(k, _mm512_shuffle_f64x2(ab_even, cd_even, 0x88));
    put(2 + k, _mm512_shuffle_f64x2(ab_odd, cd_odd, 0x88));
    put(4 + k, _mm512_shuffle_f64x2(ab_even, cd_even, 0xdd));
    put(6 + k, _mm512_shuffle_f64x2(ab_odd, cd_odd, 0xdd));
  }
}

// Every block of a transpose through `block` (whole ones) or `edge` (the last of each way, masked),
// along a row of dst at a time: the writes go along dst's rows (faster than the other order:
// op/transpose/1024/1 1.3 against 1.6 ms).
template <std::size_t kSize, class T, class Block, class Edge>
static void transpose_blocks(const T* src, std::size_t rows, std::size_t cols, std::size_t src_stride, T* dst,
                             std::size_t dst_stride, Block block, Edge edge) {
  for (std::size_t j = 0; j < cols; j += kSize)
    for (std::size_t i = 0; i < rows; i += kSize) {
      const T* from = src + i * src_stride + j;
      T* to = dst + j * dst_stride + i;
      if (i + kSize <= rows && j + kSize <= cols) block(from, src_stride, to, dst_stride, kSize, kSize);
      else edge(from, src_stride, to, dst_stride, std::min(kSize, rows - i), std::min(kSize, cols - j));
    }
}
#endif

template <class T>
void transpose_matrix(const T* src, std::size_t rows, std::size_t cols, std::size_t src_stride, T* dst,
                      std::size_t dst_stride) {
  std::size_t rows_whole = 0, cols_whole = 0;  // the part covered by whole register blocks
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    transpose_blocks<16>(src, rows, cols, src_stride, dst, dst_stride, transpose16x16<false>, transpose16x16<true>);
    return;
  } else {
    transpose_blocks<8>(src, rows, cols, src_stride, dst, dst_stride, transpose8x8_64<false>, transpose8x8_64<true>);
    return;
  }
#elif defined(__AVX__)
  if constexpr (std::is_same_v<T, float>) {
    for (std::size_t j = 0; j + 8 <= cols; j += 8)  // along dst's rows, as above
      for (std::size_t i = 0; i + 8 <= rows; i += 8)
        transpose8x8(src + i * src_stride + j, src_stride, dst + j * dst_stride + i, dst_stride);
    rows_whole = rows / 8 * 8;
    cols_whole = cols / 8 * 8;
  }
#endif
  // The rest (past the last whole 8×8 block, or all of it for other types) one value at a time.
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = i < rows_whole ? cols_whole : 0; j < cols; ++j)
      dst[j * dst_stride + i] = src[i * src_stride + j];
}

template void transpose_matrix(const float*, std::size_t, std::size_t, std::size_t, float*, std::size_t);
template void transpose_matrix(const double*, std::size_t, std::size_t, std::size_t, double*, std::size_t);

}  // namespace tg::kernels
