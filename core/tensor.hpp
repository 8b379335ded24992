// tg::Tensor: a cheap handle over a contiguous row-major n-d array with a runtime dtype.
//
// Copying a Tensor copies a pointer: both copies share the same values, the same gradient and the
// same place in the autograd graph (like torch::Tensor). Use clone() for an independent copy and
// detach() for a handle that shares the values but is cut from the graph. reshape, view, flatten,
// squeeze and unsqueeze return a handle on the same values under the new shape (no copy), as
// PyTorch's views of a contiguous tensor do; every other op returns new values.
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "dtype.hpp"
#include "error.hpp"

namespace tg {

class Node;
class Tensor;

// The values and their version counter, defined with xtensor in core/xtensor.hpp (the public
// headers do not need it).
struct Storage;
// ArrayOf<T>::type is xt::xarray<T>, also from core/xtensor.hpp.
template <class T>
struct ArrayOf;

// Functions a backward calls once it has finished accumulating a leaf's gradient (see
// Tensor::register_post_accumulate_grad_hook), with the ids that remove them.
struct GradHooks {
  std::vector<std::pair<std::uint64_t, std::function<void(Tensor&)>>> hooks;
  std::uint64_t next_id = 0;
  // The engine's count of edges still to run into this leaf, for the backward numbered `pass`.
  std::uint64_t pass = 0;
  std::size_t pending_edges = 0;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;  // shared with detach()ed handles and with reshapes
  Shape shape;                       // this handle's shape (a reshape shares the storage under another)
  bool requires_grad = false;
  bool retains_grad = false;          // a non-leaf that keeps its gradient (retain_grad())
  std::shared_ptr<Node> grad_fn;      // the tape node that made this tensor; null for leaves
  std::shared_ptr<TensorImpl> grad;   // accumulated gradient (leaves and retained non-leaves)
  std::shared_ptr<GradHooks> grad_hooks;  // leaves only; null when none was registered
};

// dtype and requires_grad for the creation functions: zeros({2, 3}, kFloat64) or
// zeros({2, 3}, TensorOptions().dtype(kFloat64).requires_grad(true)).
class TensorOptions {
 public:
  TensorOptions() = default;
  TensorOptions(DType dtype) : dtype_(dtype) {}  // NOLINT: implicit, so a DType can stand in
  TensorOptions& dtype(DType dtype) { dtype_ = dtype; return *this; }
  TensorOptions& requires_grad(bool on) { requires_grad_ = on; return *this; }
  DType dtype() const { return dtype_; }
  bool requires_grad() const { return requires_grad_; }

 private:
  DType dtype_ = kFloat32;
  bool requires_grad_ = false;
};

// One level of a nested braced list of numbers: {1, 2}, {{1, 2}, {3, 4}}, {{0}, {1}}, ...
// (an inner {x} is always a list of one, never the number x).
class NestedList {
 public:
  NestedList(double value) : value_(value) {}  // NOLINT: implicit, so numbers fit in braces
  NestedList(std::initializer_list<NestedList> items) : items_(items), is_list_(true) {}
  bool is_list() const { return is_list_; }
  double value() const { return value_; }
  const std::vector<NestedList>& items() const { return items_; }

 private:
  double value_ = 0.0;
  std::vector<NestedList> items_;
  bool is_list_ = false;
};

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor: defined() is false
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // From nested braces of any depth: Tensor({{1, 2}, {3, 4}}). float32 unless a dtype is given.
  Tensor(std::initializer_list<NestedList> values, TensorOptions options = {});
  // From a flat vector and a shape.
  Tensor(const std::vector<float>& values, const Shape& shape, bool requires_grad = false);
  Tensor(const std::vector<double>& values, const Shape& shape, bool requires_grad = false);
  Tensor(const std::vector<std::int64_t>& values, const Shape& shape);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  std::size_t size(std::int64_t dim) const;  // negative dims count from the end
  std::size_t dim() const { return shape().size(); }
  std::size_t numel() const;
  DType dtype() const;

  // The values as xtensor arrays (needs core/xtensor.hpp). values<T>() is read-only;
  // values_mut<T>() is for updates that must not be recorded (optimizer steps, initialisation) and
  // throws on a tensor that requires grad while recording is on; it must not change the shape
  // (assign values of the same shape). T must match dtype(). A tensor and its reshapes share one
  // array, which takes the shape of the handle that asked last: do not hold the arrays of two of
  // them at once (data<T>() pointers are always safe).
  template <class T> const typename ArrayOf<T>::type& values() const;
  template <class T> typename ArrayOf<T>::type& values_mut();
  // How many times the values were changed in place (see Storage).
  std::uint64_t version() const;
  void bump_version();
  // The values as a flat row-major array (T must match dtype()); mutable_data has values_mut's rules.
  template <class T> const T* data() const;
  template <class T> T* mutable_data();

  double item() const;  // the single value of a one-element tensor
  template <class T> T item() const { return static_cast<T>(item()); }

  Tensor to(DType dtype) const;  // differentiable between float types
  Tensor clone() const;          // a copy of the values, differentiable
  Tensor detach() const;         // shares the values, no graph, requires_grad false

  // Autograd.
  bool requires_grad() const;
  Tensor& set_requires_grad(bool on = true);  // leaves only
  bool is_leaf() const;
  Tensor grad() const;                 // undefined until a backward reaches this tensor
  void set_grad(const Tensor& grad);   // undefined clears it (what zero_grad does)
  void retain_grad();                  // keep the gradient of a non-leaf
  const std::shared_ptr<Node>& grad_fn() const;
  // PyTorch's register_post_accumulate_grad_hook, for leaves: each backward that reaches this
  // tensor calls hook(tensor) once, right after it added the last contribution to grad() (the
  // rest of the backward may still be running; DistributedDataParallel starts its all-reduce
  // there). A hook must not capture this tensor itself (that would keep it alive forever).
  // Returns an id for remove_post_accumulate_grad_hook.
  std::uint64_t register_post_accumulate_grad_hook(std::function<void(Tensor&)> hook);
  void remove_post_accumulate_grad_hook(std::uint64_t id);
  // Replays the tape from this tensor. A scalar needs no seed; anything else needs `grad` of its
  // shape. Without retain_graph the saved values are freed and a second backward throws.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;

  // The values as a flat std::vector (PyTorch's tolist), converted to T.
  template <class T> std::vector<T> to_vector() const;

  // ---- the ops as methods, as PyTorch users type them; each is also a free function in tg:: ----
  // (defined in core/tensor_methods.cpp). Dims may be negative.
  Tensor abs() const;
  Tensor exp() const;
  Tensor log() const;
  Tensor sqrt() const;
  Tensor neg() const;
  Tensor log1p() const;
  Tensor expm1() const;
  Tensor reciprocal() const;
  Tensor square() const;
  Tensor sin() const;
  Tensor cos() const;
  Tensor floor() const;
  Tensor ceil() const;
  Tensor trunc() const;
  Tensor round(std::int64_t decimals = 0) const;
  Tensor sign() const;
  Tensor pow(double exponent) const;
  Tensor pow(const Tensor& exponent) const;
  Tensor clamp(std::optional<double> min, std::optional<double> max) const;
  Tensor relu() const;
  Tensor sigmoid() const;
  Tensor tanh() const;
  Tensor softmax(std::int64_t dim) const;
  Tensor log_softmax(std::int64_t dim) const;

  Tensor sum() const;
  Tensor sum(std::int64_t dim, bool keepdim = false) const;
  Tensor sum(const std::vector<std::int64_t>& dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(std::int64_t dim, bool keepdim = false) const;
  Tensor mean(const std::vector<std::int64_t>& dims, bool keepdim = false) const;
  Tensor var(std::int64_t dim, bool unbiased = true, bool keepdim = false) const;
  Tensor std(std::int64_t dim, bool unbiased = true, bool keepdim = false) const;
  Tensor logsumexp(std::int64_t dim, bool keepdim = false) const;
  Tensor norm(double p = 2.0, const std::vector<std::int64_t>& dims = {}, bool keepdim = false) const;
  Tensor norm(double p, std::int64_t dim, bool keepdim = false) const;
  Tensor max() const;
  Tensor min() const;
  std::tuple<Tensor, Tensor> max(std::int64_t dim, bool keepdim = false) const;  // (values, indices)
  std::tuple<Tensor, Tensor> min(std::int64_t dim, bool keepdim = false) const;
  Tensor argmax(std::optional<std::int64_t> dim = std::nullopt, bool keepdim = false) const;
  Tensor argmin(std::optional<std::int64_t> dim = std::nullopt, bool keepdim = false) const;

  Tensor eq(const Tensor& other) const;
  Tensor ne(const Tensor& other) const;
  Tensor lt(const Tensor& other) const;
  Tensor le(const Tensor& other) const;
  Tensor gt(const Tensor& other) const;
  Tensor ge(const Tensor& other) const;
  Tensor eq(double other) const;
  Tensor ne(double other) const;
  Tensor lt(double other) const;
  Tensor le(double other) const;
  Tensor gt(double other) const;
  Tensor ge(double other) const;

  Tensor reshape(const std::vector<std::int64_t>& shape) const;
  template <std::same_as<Shape> S>
  Tensor reshape(const S& shape) const { return reshape(std::vector<std::int64_t>(shape.begin(), shape.end())); }
  Tensor view(const std::vector<std::int64_t>& shape) const;  // reshape (every tensor is contiguous)
  template <std::same_as<Shape> S>
  Tensor view(const S& shape) const { return reshape(std::vector<std::int64_t>(shape.begin(), shape.end())); }
  Tensor flatten(std::int64_t start_dim = 0, std::int64_t end_dim = -1) const;
  Tensor squeeze(std::optional<std::int64_t> dim = std::nullopt) const;
  Tensor unsqueeze(std::int64_t dim) const;
  Tensor permute(const std::vector<std::int64_t>& dims) const;
  Tensor transpose(std::int64_t dim0, std::int64_t dim1) const;
  Tensor t() const;  // transpose of a 2-D tensor (a 0-D or 1-D tensor as it is)
  Tensor expand(const std::vector<std::int64_t>& shape) const;
  Tensor matmul(const Tensor& other) const;

  // Indexing: x[i] is x.select(0, i); slice is Python's x[start:end:step] along dim.
  Tensor operator[](std::int64_t index) const;
  Tensor select(std::int64_t dim, std::int64_t index) const;
  Tensor slice(std::int64_t dim, std::optional<std::int64_t> start, std::optional<std::int64_t> end,
               std::int64_t step = 1) const;
  Tensor narrow(std::int64_t dim, std::int64_t start, std::int64_t length) const;
  Tensor index_select(std::int64_t dim, const Tensor& index) const;
  Tensor gather(std::int64_t dim, const Tensor& index) const;
  Tensor scatter(std::int64_t dim, const Tensor& index, const Tensor& src) const;
  Tensor scatter(std::int64_t dim, const Tensor& index, double value) const;
  Tensor scatter_add(std::int64_t dim, const Tensor& index, const Tensor& src) const;
  Tensor index_add(std::int64_t dim, const Tensor& index, const Tensor& source, double alpha = 1.0) const;
  Tensor tril(std::int64_t diagonal = 0) const;
  Tensor triu(std::int64_t diagonal = 0) const;
  Tensor cumsum(std::int64_t dim) const;
  Tensor masked_select(const Tensor& mask) const;  // 1-D: the values where mask is non-zero
  Tensor masked_fill(const Tensor& mask, double value) const;
  std::vector<Tensor> split(std::int64_t split_size, std::int64_t dim = 0) const;
  std::vector<Tensor> chunk(std::int64_t chunks, std::int64_t dim = 0) const;

  // In place, as PyTorch's x += y: the values are overwritten (the version counter is bumped, so
  // a backward that saved the old values throws), and a tensor in a graph gets the new history.
  // A leaf that requires grad cannot be changed in place while recording.
  Tensor& operator+=(const Tensor& other);
  Tensor& operator-=(const Tensor& other);
  Tensor& operator*=(const Tensor& other);
  Tensor& operator/=(const Tensor& other);
  Tensor& operator+=(double other);
  Tensor& operator-=(double other);
  Tensor& operator*=(double other);
  Tensor& operator/=(double other);

  const std::shared_ptr<TensorImpl>& impl() const { return impl_; }
  bool same(const Tensor& other) const { return impl_ == other.impl_; }  // same handle target

 private:
  const TensorImpl& checked(const char* what) const;
  std::shared_ptr<TensorImpl> impl_;
};

// The number of elements of `shape`, or a tg::Error naming `op` and the shape when the product does
// not fit in 62 bits (no shape product is computed unchecked: a wrapped count would make a tensor
// whose size lies).
std::size_t checked_numel(const char* op, const Shape& shape);
// count × element_size, checked the same way (the bytes of a tensor).
std::size_t checked_bytes(const char* op, const Shape& shape, std::size_t element_size);

// Prints like PyTorch: tensor([[1.0000, 2.0000]], dtype=float64, requires_grad=true).
std::ostream& operator<<(std::ostream& out, const Tensor& tensor);
// Prints a shape as [2, 3].
std::string shape_str(const Shape& shape);

}  // namespace tg
