#include "core/ops/kernels.hpp"

#include <algorithm>
#include <vector>

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

bool is_row_broadcast(const Shape& big, const Shape& small) {
  // Strip leading ones from `small`; the rest must match the tail of `big` exactly.
  std::size_t first = 0;
  while (first < small.size() && small[first] == 1) ++first;
  const std::size_t tail = small.size() - first;
  if (tail == 0 || tail > big.size()) return false;
  return std::equal(small.begin() + first, small.end(), big.end() - tail);
}

bool is_column_broadcast(const Shape& big, const Shape& small, std::size_t& middle, std::size_t& run) {
  if (small.size() > big.size()) return false;
  const std::size_t pad = big.size() - small.size();
  auto small_at = [&](std::size_t d) { return d < pad ? std::size_t(1) : small[d - pad]; };
  // Dims [first, last] are where small is not 1; it must match big there, and be 1 elsewhere.
  std::size_t first = big.size(), last = 0;
  for (std::size_t d = 0; d < big.size(); ++d)
    if (small_at(d) != 1) {
      first = std::min(first, d);
      last = d;
    }
  if (first == big.size()) return false;  // a single value: handled before
  middle = 1;
  for (std::size_t d = first; d <= last; ++d) {
    if (small_at(d) != big[d]) return false;
    middle *= big[d];
  }
  run = 1;
  for (std::size_t d = last + 1; d < big.size(); ++d) run *= big[d];
  return run > 1;
}

template <class T>
xt::xarray<T> broadcast_to(const Input<T>& in, const Shape& shape) {
  const std::size_t rank = shape.size();
  // The input's stride for each output dim: 0 where the input has size 1 (or no such dim).
  std::vector<std::size_t> stride(rank, 0);
  std::size_t step = 1;
  for (std::size_t i = 0; i < in.dimension(); ++i) {
    const std::size_t d = in.dimension() - 1 - i;
    if (in.shape()[d] != 1) stride[rank - 1 - i] = step;
    step *= in.shape()[d];
  }
  xt::xarray<T> out = xt::xarray<T>::from_shape(shape);
  if (out.size() == 0) return out;
  if (in.size() == 1) {  // one value everywhere (the gradient of a full sum or mean)
    const T value = in.data()[0];
    T* dst = out.data();
    parallel::for_range(out.size(), parallel::kGrain, [&](std::size_t begin, std::size_t end) {
      std::fill(dst + begin, dst + end, value);
    });
    return out;
  }
  const std::size_t row = rank == 0 ? 1 : shape[rank - 1];
  const std::size_t inner_stride = rank == 0 ? 0 : stride[rank - 1];
  const T* src = in.data();
  T* dst = out.data();
  parallel::for_range(out.size() / row, std::max<std::size_t>(1, parallel::kGrain / row),
                      [&](std::size_t first, std::size_t last) {
                        for (std::size_t r = first; r < last; ++r) {
                          // The input offset of row r: its multi-index over the leading dims.
                          std::size_t offset = 0, rest = r;
                          for (std::size_t d = rank - 1; d-- > 0;) {
                            offset += (rest % shape[d]) * stride[d];
                            rest /= shape[d];
                          }
                          T* out_row = dst + r * row;
                          if (inner_stride == 1) std::copy(src + offset, src + offset + row, out_row);
                          else if (inner_stride == 0) std::fill(out_row, out_row + row, src[offset]);
                          else for (std::size_t j = 0; j < row; ++j) out_row[j] = src[offset + j * inner_stride];
                        }
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

}  // namespace tg::kernels
