#include "core/ops/kernels.hpp"

#include <algorithm>

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
