// pad: every mode is one table per padded dim, the input index each output index reads (or -1
// for the constant). The forward copies rows through those tables; the backward gathers, for each
// input row, the output rows that read it, in order: each input gradient value is summed by one
// task in a fixed order, so the bits do not depend on the thread count.
#include "core/ops/pad.hpp"
#include "core/xtensor.hpp"

#include <algorithm>
#include <memory>
#include <sstream>

#include "core/autograd.hpp"
#include "core/ops/kernels.hpp"
#include "core/parallel.hpp"

namespace tg {

const char* pad_mode_name(PadMode mode) {
  switch (mode) {
    case PadMode::Constant: return "constant";
    case PadMode::Reflect: return "reflect";
    case PadMode::Replicate: return "replicate";
    default: return "circular";
  }
}

namespace {

// One padded dim: `in` values become `out`; output index o reads input index source[o] (-1: the
// constant). Outputs [middle_begin, middle_end) read o - left, a contiguous run.
struct PaddedDim {
  std::size_t in = 0, out = 0;
  std::ptrdiff_t left = 0;
  std::vector<std::ptrdiff_t> source;
  std::size_t middle_begin = 0, middle_end = 0;
};

// A plane is the padded dims of one index of the dims before them (`outer` planes); its rows run
// along the last padded dim.
struct PadPlan {
  std::size_t outer = 1;        // the values of the dims before the padded ones
  std::vector<PaddedDim> dims;  // the padded dims, outermost first (at least one)
  Shape out_shape;
  std::size_t in_rows = 1, out_rows = 1;  // rows of an input plane and of an output plane
  std::vector<std::ptrdiff_t> row_source;  // per output row: the input row it reads, or -1
  // Per input row, the output rows that read it, in order: readers[first[i] .. first[i + 1]).
  std::vector<std::size_t> first, readers;
};

std::string pair_str(std::int64_t left, std::int64_t right) {
  std::ostringstream s;
  s << '(' << left << ", " << right << ')';
  return s.str();
}

// The input index output index o of a dim reads, by mode (the checks in pad_plan keep it in range).
std::ptrdiff_t source_index(PadMode mode, const PaddedDim& d, std::ptrdiff_t o) {
  const auto n = std::ptrdiff_t(d.in);
  const std::ptrdiff_t c = o - d.left;  // the input coordinate, outside [0, n) in the padding
  switch (mode) {
    case PadMode::Constant: return c >= 0 && c < n ? c : -1;
    case PadMode::Reflect: return c < 0 ? -c : c >= n ? 2 * (n - 1) - c : c;
    case PadMode::Replicate: return std::clamp<std::ptrdiff_t>(c, 0, n - 1);
    default: {
      // PyTorch's circular padding cuts first (negative entries), then wraps what is left: the
      // period is the middle run, not the whole input.
      const auto period = std::ptrdiff_t(d.middle_end - d.middle_begin);
      const std::ptrdiff_t q = (o - std::ptrdiff_t(d.middle_begin)) % period;
      return std::max<std::ptrdiff_t>(-d.left, 0) + (q < 0 ? q + period : q);
    }
  }
}

PadPlan pad_plan(const Tensor& input, const std::vector<std::int64_t>& padding, PadMode mode, bool has_value) {
  const Shape& shape = input.shape();
  const std::size_t rank = shape.size(), pairs = padding.size() / 2;
  const char* name = pad_mode_name(mode);
  TG_CHECK(padding.size() % 2 == 0, "pad: padding holds (left, right) pairs, got ", padding.size(), " values");
  TG_CHECK(pairs <= rank, "pad: ", pairs, " (left, right) pairs of padding for an input of ", rank, " dims ",
           shape_str(shape));
  if (mode != PadMode::Constant) {
    TG_CHECK(!has_value, "pad: ", name, " padding takes no value (only constant padding does)");
    TG_CHECK(pairs >= 1 && pairs <= 3, "pad: ", name, " padding takes 1, 2 or 3 (left, right) pairs, got ", pairs);
    TG_CHECK(rank == pairs + 1 || rank == pairs + 2, "pad: ", name, " padding of the last ", pairs, " dims takes a ",
             pairs + 1, "-D or ", pairs + 2, "-D input (unbatched or batched), got ", shape_str(shape));
  }
  PadPlan p;
  const std::size_t padded = std::max<std::size_t>(pairs, 1);  // no pairs: the last dim, as (0, 0)
  p.out_shape = shape;
  for (std::size_t d = 0; d + padded < rank; ++d) p.outer *= shape[d];
  p.dims.resize(padded);
  for (std::size_t k = 0; k < padded; ++k) {
    const std::size_t dim = rank - padded + k, pair = padded - 1 - k;  // pairs run from the last dim
    const std::int64_t left = pairs ? padding[2 * pair] : 0, right = pairs ? padding[2 * pair + 1] : 0;
    const auto n = std::int64_t(shape[dim]);
    std::int64_t out = 0;
    TG_CHECK(!__builtin_add_overflow(n, left, &out) && !__builtin_add_overflow(out, right, &out), "pad: padding ",
             pair_str(left, right), " of dim ", dim, " of input ", shape_str(shape), " is out of range");
    TG_CHECK(n > 0 || mode == PadMode::Constant || mode == PadMode::Circular, "pad: ", name,
             " padding needs values to repeat, but dim ", dim, " of input ", shape_str(shape), " is empty");
    const std::int64_t fewest = mode == PadMode::Reflect || mode == PadMode::Replicate ? 1 : 0;
    TG_CHECK(out >= fewest, "pad: ", name, " padding ", pair_str(left, right), " leaves dim ", dim, " of input ",
             shape_str(shape), " with ", out, " values", fewest ? " (at least 1 needed)" : "");
    TG_CHECK(mode != PadMode::Reflect || (left < n && right < n), "pad: reflect padding ", pair_str(left, right),
             " must be less than the size of dim ", dim, " of input ", shape_str(shape));
    PaddedDim& d = p.dims[k];
    d.in = std::size_t(n);
    d.out = std::size_t(out);
    d.left = std::ptrdiff_t(left);
    d.middle_begin = std::size_t(std::clamp<std::int64_t>(left, 0, out));
    d.middle_end = std::size_t(std::clamp<std::int64_t>(n + left, std::int64_t(d.middle_begin), out));
    if (mode == PadMode::Circular) {
      const auto kept = std::int64_t(d.middle_end - d.middle_begin);
      TG_CHECK(left <= kept && right <= kept, "pad: circular padding ", pair_str(left, right), " of dim ", dim,
               " of input ", shape_str(shape), " wraps around more than once (", kept, " values to wrap)");
    }
    p.out_shape[dim] = d.out;
  }
  checked_numel("pad", p.out_shape);
  for (PaddedDim& d : p.dims) {
    d.source.resize(d.out);
    for (std::size_t o = 0; o < d.out; ++o) d.source[o] = source_index(mode, d, std::ptrdiff_t(o));
  }
  // The rows: an odometer over the output plane's rows, each dim's table giving the input row.
  for (std::size_t k = 0; k + 1 < padded; ++k) {
    p.in_rows *= p.dims[k].in;
    p.out_rows *= p.dims[k].out;
  }
  p.row_source.resize(p.out_rows);
  std::vector<std::size_t> at(padded - 1, 0);
  for (std::ptrdiff_t& row : p.row_source) {
    std::ptrdiff_t in_row = 0;
    for (std::size_t k = 0; k + 1 < padded; ++k) {
      const std::ptrdiff_t s = p.dims[k].source[at[k]];
      in_row = in_row < 0 || s < 0 ? -1 : in_row * std::ptrdiff_t(p.dims[k].in) + s;
    }
    row = in_row;
    for (std::size_t k = padded - 1; k-- > 0;) {
      if (++at[k] < p.dims[k].out) break;
      at[k] = 0;
    }
  }
  p.first.assign(p.in_rows + 1, 0);
  for (std::ptrdiff_t row : p.row_source)
    if (row >= 0) ++p.first[std::size_t(row) + 1];
  for (std::size_t i = 0; i < p.in_rows; ++i) p.first[i + 1] += p.first[i];
  p.readers.resize(p.first[p.in_rows]);
  std::vector<std::size_t> next(p.first.begin(), p.first.end() - 1);
  for (std::size_t o = 0; o < p.out_rows; ++o)
    if (p.row_source[o] >= 0) p.readers[next[std::size_t(p.row_source[o])]++] = o;
  return p;
}

std::size_t row_grain(std::size_t row) { return std::max<std::size_t>(1, parallel::kGrain / std::max<std::size_t>(1, row)); }

// Where a row's middle run starts in its input row (0 when the run is empty: the padding may then
// start past the input's end).
std::size_t run_start(const PaddedDim& d) {
  return d.middle_end > d.middle_begin ? std::size_t(std::ptrdiff_t(d.middle_begin) - d.left) : 0;
}

// dst[0, n) = src[0, n), whole batches: a run that is not a multiple of the batch ends with the
// batch that ends at its last value, overlapping the one before (a masked tail, per row of 28 or
// 56 values, was slower: ZeroPad2d(1) forward and backward over (128, 32, 28, 28), one thread,
// 1.98-2.04 -> 1.41-1.72 ms, two threads 0.81 -> 0.70).
template <class T>
void copy_run(T* dst, const T* src, std::size_t n) {
  using B = kernels::Batch<T>;
  if (n < B::size) {
    kernels::apply(n, dst, [](auto v) { return v; }, src);
    return;
  }
  for (std::size_t i = 0; i + B::size <= n; i += B::size) B::load_unaligned(src + i).store_unaligned(dst + i);
  if (n % B::size) B::load_unaligned(src + n - B::size).store_unaligned(dst + n - B::size);
}

// y = x padded: each output row is the constant or an input row read through the last dim's
// table, its middle run a batch at a time (a memmove call per 14-value row cost more than the copy).
template <class T>
void pad_rows(const T* x, const PadPlan& p, T fill, T* y) {
  const PaddedDim& last = p.dims.back();
  const std::size_t in_plane = p.in_rows * last.in, middle = last.middle_end - last.middle_begin;
  const std::ptrdiff_t* edge = last.source.data();
  const std::size_t shift = run_start(last);
  parallel::for_range(p.outer * p.out_rows, row_grain(last.out), [&](std::size_t begin, std::size_t end) {
    std::size_t plane = begin / p.out_rows, row = begin % p.out_rows;
    for (std::size_t r = begin; r < end; ++r) {
      T* out = y + r * last.out;
      const std::ptrdiff_t source = p.row_source[row];
      if (source < 0) {
        std::fill_n(out, last.out, fill);
      } else {
        const T* in = x + plane * in_plane + std::size_t(source) * last.in;
        for (std::size_t o = 0; o < last.middle_begin; ++o) out[o] = edge[o] < 0 ? fill : in[edge[o]];
        copy_run(out + last.middle_begin, in + shift, middle);
        for (std::size_t o = last.middle_end; o < last.out; ++o) out[o] = edge[o] < 0 ? fill : in[edge[o]];
      }
      if (++row == p.out_rows) {
        row = 0;
        ++plane;
      }
    }
  });
}

// dx = the adjoint of pad_rows: each input row gathers the gradient of the output rows that read
// it, in order: the first one's middle run written (zeros around it), the others' added, then
// their edges through the last dim's table (constant padding has none to add).
template <class T>
void pad_rows_backward(const T* dy, const PadPlan& p, T* dx) {
  const PaddedDim& last = p.dims.back();
  const std::size_t out_plane = p.out_rows * last.out, middle = last.middle_end - last.middle_begin;
  const std::size_t shift = run_start(last);  // where the run lands in its input row
  const std::ptrdiff_t* edge = last.source.data();
  const bool edges = std::any_of(edge, edge + last.middle_begin, [](std::ptrdiff_t s) { return s >= 0; }) ||
                     std::any_of(edge + last.middle_end, edge + last.out, [](std::ptrdiff_t s) { return s >= 0; });
  parallel::for_range(p.outer * p.in_rows, row_grain(last.in), [&](std::size_t begin, std::size_t end) {
    std::size_t plane = begin / p.in_rows, row = begin % p.in_rows;
    for (std::size_t r = begin; r < end; ++r) {
      T* in = dx + r * last.in;
      const T* outs = dy + plane * out_plane;
      const std::size_t from = p.first[row], to = p.first[row + 1];
      if (++row == p.in_rows) {
        row = 0;
        ++plane;
      }
      if (from == to) {
        std::fill_n(in, last.in, T(0));
        continue;
      }
      // (The zeros around the run are a few values: loops, not memset calls.)
      for (std::size_t i = 0; i < shift; ++i) in[i] = T(0);
      copy_run(in + shift, outs + p.readers[from] * last.out + last.middle_begin, middle);
      for (std::size_t i = shift + middle; i < last.in; ++i) in[i] = T(0);
      for (std::size_t q = from + 1; q < to; ++q)
        kernels::apply(middle, in + shift, [](auto a, auto b) { return a + b; }, static_cast<const T*>(in + shift),
                       outs + p.readers[q] * last.out + last.middle_begin);
      if (!edges) continue;
      for (std::size_t q = from; q < to; ++q) {
        const T* out = outs + p.readers[q] * last.out;
        for (std::size_t o = 0; o < last.middle_begin; ++o)
          if (edge[o] >= 0) in[edge[o]] += out[o];
        for (std::size_t o = last.middle_end; o < last.out; ++o)
          if (edge[o] >= 0) in[edge[o]] += out[o];
      }
    }
  });
}

}  // namespace

Tensor pad(const Tensor& input, const std::vector<std::int64_t>& padding, PadMode mode, std::optional<double> value) {
  if (input.dim() == 0 && padding.empty()) return input.clone();  // nothing to pad, as PyTorch's (a copy)
  TG_CHECK(input.dtype() != kInt64 || !value || (*value >= -0x1p63 && *value < 0x1p63), "pad: value ", *value,
           " does not fit an int64 input");
  auto plan = std::make_shared<const PadPlan>(pad_plan(input, padding, mode, value.has_value()));
  Tensor out = dispatch_all(input.dtype(), [&]<class T>() {
    xt::xarray<T> y = xt::xarray<T>::from_shape(plan->out_shape);
    pad_rows(input.data<T>(), *plan, static_cast<T>(value.value_or(0.0)), y.data());
    return make_tensor<T>(std::move(y));
  });
  return record("pad", out, {input}, [plan, shape = input.shape()](const Tensor& grad) -> Grads {
    return {dispatch_floating(grad.dtype(), "pad backward", [&]<class T>() {
      xt::xarray<T> dx = xt::xarray<T>::from_shape(shape);
      pad_rows_backward(grad.data<T>(), *plan, dx.data());
      return make_tensor<T>(std::move(dx));
    })};
  });
}

}  // namespace tg
