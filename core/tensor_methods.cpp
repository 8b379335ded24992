// The Tensor methods PyTorch users type without thinking (x.sum(1), x.t(), x[i], x += y), each a
// one-line call of the free function of the same name in core/ops/, and the in-place arithmetic.
#include "core/autograd.hpp"
#include "core/xtensor.hpp"
#include "core/ops/activation.hpp"
#include "core/ops/elementwise.hpp"
#include "core/ops/linalg.hpp"
#include "core/ops/reduce.hpp"
#include "core/ops/shape.hpp"

namespace tg {

template <class T>
std::vector<T> Tensor::to_vector() const {
  std::vector<T> out;
  out.reserve(numel());
  std::visit([&](const auto& array) { for (const auto& v : array.storage()) out.push_back(static_cast<T>(v)); },
             flat_values(*this));
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<std::int64_t> Tensor::to_vector<std::int64_t>() const;
template std::vector<int> Tensor::to_vector<int>() const;

Tensor Tensor::abs() const { return tg::abs(*this); }
Tensor Tensor::exp() const { return tg::exp(*this); }
Tensor Tensor::log() const { return tg::log(*this); }
Tensor Tensor::sqrt() const { return tg::sqrt(*this); }
Tensor Tensor::neg() const { return tg::neg(*this); }
Tensor Tensor::log1p() const { return tg::log1p(*this); }
Tensor Tensor::expm1() const { return tg::expm1(*this); }
Tensor Tensor::reciprocal() const { return tg::reciprocal(*this); }
Tensor Tensor::square() const { return tg::square(*this); }
Tensor Tensor::sin() const { return tg::sin(*this); }
Tensor Tensor::cos() const { return tg::cos(*this); }
Tensor Tensor::floor() const { return tg::floor(*this); }
Tensor Tensor::ceil() const { return tg::ceil(*this); }
Tensor Tensor::trunc() const { return tg::trunc(*this); }
Tensor Tensor::round(std::int64_t decimals) const { return tg::round(*this, decimals); }
Tensor Tensor::sign() const { return tg::sign(*this); }
Tensor Tensor::pow(double exponent) const { return tg::pow(*this, exponent); }
Tensor Tensor::pow(const Tensor& exponent) const { return tg::pow(*this, exponent); }
Tensor Tensor::clamp(std::optional<double> min, std::optional<double> max) const { return tg::clamp(*this, min, max); }
Tensor Tensor::relu() const { return tg::relu(*this); }
Tensor Tensor::sigmoid() const { return tg::sigmoid(*this); }
Tensor Tensor::tanh() const { return tg::tanh(*this); }
Tensor Tensor::softmax(std::int64_t dim) const { return tg::softmax(*this, dim); }
Tensor Tensor::log_softmax(std::int64_t dim) const { return tg::log_softmax(*this, dim); }

Tensor Tensor::sum() const { return tg::sum(*this); }
Tensor Tensor::sum(std::int64_t dim, bool keepdim) const { return tg::sum(*this, {dim}, keepdim); }
Tensor Tensor::sum(const std::vector<std::int64_t>& dims, bool keepdim) const { return tg::sum(*this, dims, keepdim); }
Tensor Tensor::mean() const { return tg::mean(*this); }
Tensor Tensor::mean(std::int64_t dim, bool keepdim) const { return tg::mean(*this, {dim}, keepdim); }
Tensor Tensor::mean(const std::vector<std::int64_t>& dims, bool keepdim) const { return tg::mean(*this, dims, keepdim); }
Tensor Tensor::var(std::int64_t dim, bool unbiased, bool keepdim) const { return tg::var(*this, {dim}, unbiased, keepdim); }
Tensor Tensor::std(std::int64_t dim, bool unbiased, bool keepdim) const { return tg::std(*this, {dim}, unbiased, keepdim); }
Tensor Tensor::logsumexp(std::int64_t dim, bool keepdim) const { return tg::logsumexp(*this, {dim}, keepdim); }
Tensor Tensor::norm(double p, const std::vector<std::int64_t>& dims, bool keepdim) const {
  return tg::norm(*this, p, dims, keepdim);
}
Tensor Tensor::norm(double p, std::int64_t dim, bool keepdim) const { return tg::norm(*this, p, {dim}, keepdim); }
Tensor Tensor::max() const { return tg::max(*this); }
Tensor Tensor::min() const { return tg::min(*this); }
std::tuple<Tensor, Tensor> Tensor::max(std::int64_t dim, bool keepdim) const { return tg::max(*this, dim, keepdim); }
std::tuple<Tensor, Tensor> Tensor::min(std::int64_t dim, bool keepdim) const { return tg::min(*this, dim, keepdim); }
Tensor Tensor::argmax(std::optional<std::int64_t> dim, bool keepdim) const { return tg::argmax(*this, dim, keepdim); }
Tensor Tensor::argmin(std::optional<std::int64_t> dim, bool keepdim) const { return tg::argmin(*this, dim, keepdim); }

Tensor Tensor::eq(const Tensor& other) const { return tg::eq(*this, other); }
Tensor Tensor::ne(const Tensor& other) const { return tg::ne(*this, other); }
Tensor Tensor::lt(const Tensor& other) const { return tg::lt(*this, other); }
Tensor Tensor::le(const Tensor& other) const { return tg::le(*this, other); }
Tensor Tensor::gt(const Tensor& other) const { return tg::gt(*this, other); }
Tensor Tensor::ge(const Tensor& other) const { return tg::ge(*this, other); }
Tensor Tensor::eq(double other) const { return tg::eq(*this, other); }
Tensor Tensor::ne(double other) const { return tg::ne(*this, other); }
Tensor Tensor::lt(double other) const { return tg::lt(*this, other); }
Tensor Tensor::le(double other) const { return tg::le(*this, other); }
Tensor Tensor::gt(double other) const { return tg::gt(*this, other); }
Tensor Tensor::ge(double other) const { return tg::ge(*this, other); }

Tensor Tensor::reshape(const std::vector<std::int64_t>& shape) const { return tg::reshape(*this, shape); }
Tensor Tensor::view(const std::vector<std::int64_t>& shape) const { return tg::reshape(*this, shape); }
Tensor Tensor::flatten(std::int64_t start_dim, std::int64_t end_dim) const { return tg::flatten(*this, start_dim, end_dim); }
Tensor Tensor::squeeze(std::optional<std::int64_t> dim) const { return tg::squeeze(*this, dim); }
Tensor Tensor::unsqueeze(std::int64_t dim) const { return tg::unsqueeze(*this, dim); }
Tensor Tensor::permute(const std::vector<std::int64_t>& dims) const { return tg::permute(*this, dims); }
Tensor Tensor::transpose(std::int64_t dim0, std::int64_t dim1) const { return tg::transpose(*this, dim0, dim1); }
Tensor Tensor::t() const {
  TG_CHECK(dim() <= 2, "t: expects a tensor with at most 2 dims, got ", shape_str(shape()));
  return dim() < 2 ? *this : tg::transpose(*this, 0, 1);
}
Tensor Tensor::expand(const std::vector<std::int64_t>& shape) const { return tg::expand(*this, shape); }
Tensor Tensor::matmul(const Tensor& other) const { return tg::matmul(*this, other); }

Tensor Tensor::operator[](std::int64_t index) const { return tg::select(*this, 0, index); }
Tensor Tensor::select(std::int64_t dim, std::int64_t index) const { return tg::select(*this, dim, index); }
Tensor Tensor::slice(std::int64_t dim, std::optional<std::int64_t> start, std::optional<std::int64_t> end,
                     std::int64_t step) const {
  return tg::slice(*this, dim, start, end, step);
}
Tensor Tensor::narrow(std::int64_t dim, std::int64_t start, std::int64_t length) const {
  return tg::narrow(*this, dim, start, length);
}
Tensor Tensor::index_select(std::int64_t dim, const Tensor& index) const { return tg::index_select(*this, dim, index); }
Tensor Tensor::gather(std::int64_t dim, const Tensor& index) const { return tg::gather(*this, dim, index); }
Tensor Tensor::scatter(std::int64_t dim, const Tensor& index, const Tensor& src) const {
  return tg::scatter(*this, dim, index, src);
}
Tensor Tensor::scatter(std::int64_t dim, const Tensor& index, double value) const {
  return tg::scatter(*this, dim, index, value);
}
Tensor Tensor::scatter_add(std::int64_t dim, const Tensor& index, const Tensor& src) const {
  return tg::scatter_add(*this, dim, index, src);
}
Tensor Tensor::index_add(std::int64_t dim, const Tensor& index, const Tensor& source, double alpha) const {
  return tg::index_add(*this, dim, index, source, alpha);
}
Tensor Tensor::tril(std::int64_t diagonal) const { return tg::tril(*this, diagonal); }
Tensor Tensor::triu(std::int64_t diagonal) const { return tg::triu(*this, diagonal); }
Tensor Tensor::cumsum(std::int64_t dim) const { return tg::cumsum(*this, dim); }
Tensor Tensor::masked_select(const Tensor& mask) const { return tg::masked_select(*this, mask); }
Tensor Tensor::masked_fill(const Tensor& mask, double value) const { return tg::masked_fill(*this, mask, value); }
std::vector<Tensor> Tensor::split(std::int64_t split_size, std::int64_t dim) const { return tg::split(*this, split_size, dim); }
std::vector<Tensor> Tensor::chunk(std::int64_t chunks, std::int64_t dim) const { return tg::chunk(*this, chunks, dim); }

// ---- in place ------------------------------------------------------------------------------------
//
// x op= y computes op(x, y) as usual, then writes the result into x's own storage and gives x's
// handle the result's history (PyTorch's in-place semantics). When x's history is recorded, the
// op runs on a clone of x, so whatever the op saves for its backward is not the storage being
// overwritten; any earlier op that saved x itself sees the version bump and refuses to run a
// wrong backward.
namespace {

template <class Op>
Tensor& in_place(const char* op, Tensor& self, Op&& compute) {
  TG_CHECK(self.defined(), op, ": the tensor is undefined");
  const bool recording = GradMode::is_enabled();
  TG_CHECK(!(recording && self.is_leaf() && self.requires_grad()), op, ": a leaf tensor that requires grad (",
           dtype_name(self.dtype()), " ", shape_str(self.shape()),
           ") cannot be changed in place while gradients are recorded (use NoGradGuard, or an out-of-place op)");
  const Tensor result = compute(recording && self.requires_grad() ? self.clone() : self.detach());
  TG_CHECK(result.shape() == self.shape() && result.dtype() == self.dtype(), op, ": the result is ",
           dtype_name(result.dtype()), " ", shape_str(result.shape()), " but the tensor is ", dtype_name(self.dtype()),
           " ", shape_str(self.shape()), " (an in-place op cannot change the shape or dtype)");
  if (result.requires_grad()) {
    // Another live handle on these values through reshape would keep its old history while its
    // values change (PyTorch rewrites the histories of views; tapegrad does not).
    const std::lock_guard<std::mutex> lock(self.impl()->storage->aliases_mutex);
    for (const auto& weak : self.impl()->storage->reshape_aliases) {
      const auto alias = weak.lock();
      TG_CHECK(!alias || alias == self.impl(), op, ": the tensor ", dtype_name(self.dtype()), " ",
               shape_str(self.shape()), " shares its values with a reshape of shape ", shape_str(alias->shape),
               " (one made from the other), and an in-place op in a graph would leave that one's gradient "
               "history wrong; use the out-of-place op, or clone() before the reshape");
    }
  }
  dispatch_all(self.dtype(), [&]<class T>() {
    auto& target = std::get<xt::xarray<T>>(self.impl()->storage->values);
    std::copy_n(result.data<T>(), result.numel(), target.data());
  });
  self.bump_version();
  if (result.requires_grad()) {  // the new history: x is now the result
    self.impl()->grad_fn = result.grad_fn();
    self.impl()->requires_grad = true;
  }
  return self;
}

}  // namespace

Tensor& Tensor::operator+=(const Tensor& other) { return in_place("add_", *this, [&](const Tensor& x) { return tg::add(x, other); }); }
Tensor& Tensor::operator-=(const Tensor& other) { return in_place("sub_", *this, [&](const Tensor& x) { return tg::sub(x, other); }); }
Tensor& Tensor::operator*=(const Tensor& other) { return in_place("mul_", *this, [&](const Tensor& x) { return tg::mul(x, other); }); }
Tensor& Tensor::operator/=(const Tensor& other) { return in_place("div_", *this, [&](const Tensor& x) { return tg::div(x, other); }); }
Tensor& Tensor::operator+=(double other) { return in_place("add_", *this, [&](const Tensor& x) { return tg::add(x, other); }); }
Tensor& Tensor::operator-=(double other) { return in_place("sub_", *this, [&](const Tensor& x) { return tg::sub(x, other); }); }
Tensor& Tensor::operator*=(double other) { return in_place("mul_", *this, [&](const Tensor& x) { return tg::mul(x, other); }); }
Tensor& Tensor::operator/=(double other) { return in_place("div_", *this, [&](const Tensor& x) { return tg::div(x, other); }); }

}  // namespace tg
