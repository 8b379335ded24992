#include "core/tensor.hpp"
#include "core/xtensor.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <sstream>

#include "core/autograd.hpp"
#include "core/ops/reduce.hpp"
#include "core/ops/linalg.hpp"
#include "core/ops/shape.hpp"
#include "core/parallel.hpp"

namespace tg {

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case kFloat32: return "float32";
    case kFloat64: return "float64";
    default: return "int64";
  }
}

std::size_t dtype_size(DType dtype) { return dtype == kFloat32 ? 4 : 8; }

std::string shape_str(const Shape& shape) { return detail::concat(shape); }

// ---- construction -------------------------------------------------------------------------

namespace {

template <class T>
Tensor from_flat(const std::vector<double>& flat, const Shape& shape) {
  xt::xarray<T> values = xt::xarray<T>::from_shape(shape);
  std::transform(flat.begin(), flat.end(), values.data(), [](double v) { return static_cast<T>(v); });
  return make_tensor<T>(std::move(values));
}

Tensor from_nested(const std::vector<double>& flat, const Shape& shape, const TensorOptions& options) {
  Tensor t = dispatch_all(options.dtype(), [&]<class T>() { return from_flat<T>(flat, shape); });
  if (options.requires_grad()) t.set_requires_grad(true);
  return t;
}

}  // namespace

namespace {

// Walks a nested list depth-first, recording the shape from the first path and checking that
// every other list at the same depth has the same length.
void flatten_nested(const NestedList& list, std::size_t depth, Shape& shape, std::vector<double>& flat) {
  if (!list.is_list()) {
    TG_CHECK(depth == shape.size(), "Tensor: nested initializer lists must be rectangular (a number at depth ",
             depth, " where the shape ", shape_str(shape), " expects ", shape.size() > depth ? "a list" : "a number", ")");
    flat.push_back(list.value());
    return;
  }
  if (depth == shape.size()) {
    TG_CHECK(flat.empty(), "Tensor: nested initializer lists must be rectangular (a list at depth ", depth,
             " where the shape ", shape_str(shape), " expects a number)");
    shape.push_back(list.items().size());
  }
  TG_CHECK(depth < shape.size() && shape[depth] == list.items().size(),
           "Tensor: nested initializer lists must be rectangular (rows of lengths ",
           depth < shape.size() ? shape[depth] : 0, " and ", list.items().size(), " at depth ", depth, ")");
  for (const NestedList& item : list.items()) flatten_nested(item, depth + 1, shape, flat);
}

}  // namespace

Tensor::Tensor(std::initializer_list<NestedList> values, TensorOptions options) {
  Shape shape;
  std::vector<double> flat;
  flatten_nested(NestedList(values), 0, shape, flat);
  *this = from_nested(flat, shape, options);
}

namespace {

template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, bool requires_grad) {
  const std::size_t count = checked_numel("Tensor", shape);
  TG_CHECK(count == values.size(), "Tensor: ", values.size(), " values do not fill shape ", shape_str(shape));
  xt::xarray<T> array = xt::xarray<T>::from_shape(shape);
  std::copy(values.begin(), values.end(), array.data());
  return make_tensor<T>(std::move(array), requires_grad);
}

}  // namespace

Tensor::Tensor(const std::vector<float>& values, const Shape& shape, bool requires_grad)
    : Tensor(from_vector(values, shape, requires_grad)) {}
Tensor::Tensor(const std::vector<double>& values, const Shape& shape, bool requires_grad)
    : Tensor(from_vector(values, shape, requires_grad)) {}
Tensor::Tensor(const std::vector<std::int64_t>& values, const Shape& shape)
    : Tensor(from_vector(values, shape, false)) {}

// ---- properties ---------------------------------------------------------------------------

std::size_t checked_numel(const char* op, const Shape& shape) {
  // The product of the non-zero dims is bounded too: a zero dim makes the tensor empty, but the
  // strides are still products of the other dims (a fuzzer found [0, 4278255871, 4294967295]).
  constexpr std::size_t kLimit = std::size_t(1) << 62;
  std::size_t count = 1;
  bool zero = false;
  for (std::size_t d : shape) {
    if (d == 0) {
      zero = true;
      continue;
    }
    TG_CHECK(!__builtin_mul_overflow(count, d, &count) && count <= kLimit, op, ": the shape ", shape_str(shape),
             " has more elements than fit in memory (the product overflows)");
  }
  return zero ? 0 : count;
}

std::size_t checked_bytes(const char* op, const Shape& shape, std::size_t element_size) {
  std::size_t bytes = 0;
  TG_CHECK(!__builtin_mul_overflow(checked_numel(op, shape), element_size, &bytes), op, ": the shape ", shape_str(shape),
           " has more bytes than fit in memory");
  return bytes;
}

const TensorImpl& Tensor::checked(const char* what) const {
  TG_CHECK(impl_ != nullptr, what, ": the tensor is undefined");
  return *impl_;
}

const Shape& Tensor::shape() const { return checked("shape").shape; }

std::size_t Tensor::size(std::int64_t d) const { return shape()[wrap_sized_dim("size", d, shape())]; }

std::size_t Tensor::numel() const {
  return std::visit([](const auto& array) { return array.size(); }, checked("numel").storage->values);
}

DType Tensor::dtype() const {
  return static_cast<DType>(checked("dtype").storage->values.index());
}

namespace {

// A storage's array and a handle on it. Handles that share a storage through reshape have their
// own shapes and the array has one at a time: the one of the handle that last asked for the array
// through values<T>() or values_mut<T>() (same size, so only its shape and strides change).
// data<T>(), flat_values and every kernel (kernels::input) need no array shape and never reshape
// it (safe from several threads). An array resized through values_mut() is refused, never read
// past its end.
template <class Array>
Array& check_size(const TensorImpl& impl, Array& array, const char* what) {
  TG_CHECK(array.shape() == impl.shape || array.size() == checked_numel(what, impl.shape), what,
           ": the values were resized through values_mut() to ", shape_str(array.shape()), " but the tensor is ",
           shape_str(impl.shape), " (values_mut() must keep the shape; make a new tensor instead)");
  return array;
}

template <class Array>
Array& shaped(const TensorImpl& impl, Array& array, const char* what) {
  if (check_size(impl, array, what).shape() != impl.shape) array.reshape(impl.shape);
  return array;
}

// The array of dtype T, checked against the handle's dtype and size, not reshaped.
template <class T>
xt::xarray<T>& checked_array(const TensorImpl& impl, const char* what) {
  TG_CHECK(static_cast<DType>(impl.storage->values.index()) == dtype_of<T>(), what, ": the tensor is ",
           dtype_name(static_cast<DType>(impl.storage->values.index())), ", not ", dtype_name(dtype_of<T>()));
  return check_size(impl, std::get<xt::xarray<T>>(impl.storage->values), what);
}

template <class T>
xt::xarray<T>& array_of(const TensorImpl& impl, const char* what) {
  return shaped(impl, checked_array<T>(impl, what), what);
}

}  // namespace

const Values& flat_values(const Tensor& tensor) {
  TG_CHECK(tensor.defined(), "values: the tensor is undefined");
  const TensorImpl& impl = *tensor.impl();
  std::visit([&](auto& array) { check_size(impl, array, "values"); }, impl.storage->values);
  return impl.storage->values;
}

template <class T>
const typename ArrayOf<T>::type& Tensor::values() const {
  return array_of<T>(checked("values"), "values");
}

template <class T>
typename ArrayOf<T>::type& Tensor::values_mut() {
  const TensorImpl& impl = checked("values_mut");
  TG_CHECK(!(impl.requires_grad && GradMode::is_enabled()),
           "values_mut: a tensor that requires grad can only be changed in place under NoGradGuard");
  auto& array = array_of<T>(impl, "values_mut");
  ++impl.storage->version;
  return array;
}

std::uint64_t Tensor::version() const { return checked("version").storage->version; }
void Tensor::bump_version() { ++checked("bump_version").storage->version; }

// The pointers do not depend on the array's shape, so data() never reshapes the shared array: it is
// safe from several threads at once, whatever other handles share the storage.
template <class T>
const T* Tensor::data() const {
  const TensorImpl& impl = checked("data");
  return checked_array<T>(impl, "data").data();
}

template <class T>
T* Tensor::mutable_data() {
  const TensorImpl& impl = checked("mutable_data");
  TG_CHECK(!(impl.requires_grad && GradMode::is_enabled()),
           "mutable_data: a tensor that requires grad can only be changed in place under NoGradGuard");
  auto& array = checked_array<T>(impl, "mutable_data");
  ++impl.storage->version;
  return array.data();
}

#define TG_INSTANTIATE_ACCESSORS(T)                                   \
  template const xt::xarray<T>& Tensor::values<T>() const;            \
  template xt::xarray<T>& Tensor::values_mut<T>();                    \
  template const T* Tensor::data<T>() const;                          \
  template T* Tensor::mutable_data<T>();
TG_INSTANTIATE_ACCESSORS(float)
TG_INSTANTIATE_ACCESSORS(double)
TG_INSTANTIATE_ACCESSORS(std::int64_t)
#undef TG_INSTANTIATE_ACCESSORS

double Tensor::item() const {
  TG_CHECK(numel() == 1, "item: only a tensor with one element can be converted to a number, got shape ",
           shape_str(shape()));
  return std::visit([](const auto& array) { return static_cast<double>(array.data()[0]); }, flat_values(*this));
}

// ---- copies and conversions ---------------------------------------------------------------

Tensor Tensor::to(DType target) const {
  const DType source = dtype();
  if (source == target) return *this;
  Tensor out = dispatch_all(target, [&]<class To>() {
    return std::visit(
        [&](const auto& array) {
          xt::xarray<To> converted = xt::xarray<To>::from_shape(shape());
          std::transform(array.data(), array.data() + array.size(), converted.data(),
                         [](auto v) { return static_cast<To>(v); });
          return make_tensor<To>(std::move(converted));
        },
        flat_values(*this));
  });
  if (!is_floating(source) || !is_floating(target)) return out;  // integer casts carry no gradient
  return record("to", out, {*this}, [source](const Tensor& grad) -> Grads { return {grad.to(source)}; });
}

Tensor Tensor::clone() const {
  checked("clone");
  Tensor out = std::visit(
      [&](const auto& array) {
        using T = typename std::decay_t<decltype(array)>::value_type;
        xt::xarray<T> copy = xt::xarray<T>::from_shape(shape());
        parallel::copy(array.data(), array.size(), copy.data());
        return make_tensor(std::move(copy));
      },
      flat_values(*this));
  return record("clone", out, {*this}, [](const Tensor& grad) -> Grads { return {grad}; });
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = checked("detach").storage;
  impl->shape = impl_->shape;
  return Tensor(std::move(impl));
}

// ---- autograd -----------------------------------------------------------------------------

bool Tensor::requires_grad() const { return checked("requires_grad").requires_grad; }

Tensor& Tensor::set_requires_grad(bool on) {
  TG_CHECK(is_leaf(), "set_requires_grad: only leaf tensors can change requires_grad; use detach() first");
  TG_CHECK(!on || is_floating(dtype()), "set_requires_grad: only floating-point tensors can require grad, got ",
           dtype_name(dtype()));
  impl_->requires_grad = on;
  return *this;
}

bool Tensor::is_leaf() const { return checked("is_leaf").grad_fn == nullptr; }

Tensor Tensor::grad() const {
  const TensorImpl& impl = checked("grad");
  return impl.grad ? Tensor(impl.grad) : Tensor();
}

void Tensor::set_grad(const Tensor& grad) {
  checked("set_grad");
  if (grad.defined()) {
    TG_CHECK(grad.shape() == shape() && grad.dtype() == dtype(), "set_grad: gradient ",
             shape_str(grad.shape()), " ", dtype_name(grad.dtype()), " does not match the tensor ",
             shape_str(shape()), " ", dtype_name(dtype()));
  }
  impl_->grad = grad.defined() ? grad.impl() : nullptr;
}

void Tensor::retain_grad() {
  TG_CHECK(requires_grad(), "retain_grad: the tensor does not require grad");
  if (is_leaf()) return;  // leaves keep their gradient anyway
  impl_->retains_grad = true;
  impl_->grad_fn->retained_output_ = impl_;
}

std::uint64_t Tensor::register_post_accumulate_grad_hook(std::function<void(Tensor&)> hook) {
  TG_CHECK(is_leaf() && requires_grad(), "register_post_accumulate_grad_hook: only a leaf that requires grad "
           "accumulates a gradient (got ", requires_grad() ? "a non-leaf" : "a tensor that does not require grad", ")");
  TG_CHECK(hook != nullptr, "register_post_accumulate_grad_hook: the hook is empty");
  if (!impl_->grad_hooks) impl_->grad_hooks = std::make_shared<GradHooks>();
  const std::uint64_t id = impl_->grad_hooks->next_id++;
  impl_->grad_hooks->hooks.emplace_back(id, std::move(hook));
  return id;
}

void Tensor::remove_post_accumulate_grad_hook(std::uint64_t id) {
  if (!impl_ || !impl_->grad_hooks) return;
  std::erase_if(impl_->grad_hooks->hooks, [id](const auto& entry) { return entry.first == id; });
}

const std::shared_ptr<Node>& Tensor::grad_fn() const { return checked("grad_fn").grad_fn; }

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  Engine::backward(*this, grad, retain_graph);
}


// ---- printing -----------------------------------------------------------------------------

namespace {

// PyTorch's layout: nested brackets, rows aligned under "tensor(", large tensors summarised.
class Printer {
 public:
  Printer(const Tensor& t, std::ostream& out) : tensor_(t), out_(out) {
    summarise_ = t.numel() > 1000;
    std::visit([&](const auto& array) { choose_format(array); }, flat_values(t));
  }

  void print() {
    out_ << "tensor(";
    if (tensor_.dim() == 0)
      out_ << format(0);
    else
      print_dim(0, 0, 7);
  }

 private:
  template <class A>
  void choose_format(const A& array) {
    using T = typename A::value_type;
    integral_ = std::is_integral_v<T>;
    if (integral_) return;
    double largest = 0, smallest = INFINITY;
    bool whole = true;
    for (auto v : array) {
      const double a = std::fabs(static_cast<double>(v));
      if (!std::isfinite(a)) continue;
      largest = std::max(largest, a);
      if (a > 0) smallest = std::min(smallest, a);
      whole = whole && std::floor(a) == a;
    }
    whole_ = whole && largest < 1e8;
    scientific_ = !whole_ && (largest >= 1e8 || (smallest < 1e-4 && largest > 0));
  }

  std::string format(std::size_t flat) const {
    return std::visit(
        [&](const auto& array) {
          char buffer[64];
          const double v = static_cast<double>(array.data()[flat]);
          if (integral_)
            std::snprintf(buffer, sizeof buffer, "%lld", static_cast<long long>(array.data()[flat]));
          else if (whole_)
            std::snprintf(buffer, sizeof buffer, "%.0f.", v);
          else if (scientific_)
            std::snprintf(buffer, sizeof buffer, "%.4e", v);
          else
            std::snprintf(buffer, sizeof buffer, "%.4f", v);
          return std::string(buffer);
        },
        tensor_.impl()->storage->values);  // flat positions: any shape of the shared array will do
  }

  void print_dim(std::size_t d, std::size_t offset, std::size_t indent) {
    const Shape& shape = tensor_.shape();
    std::size_t stride = 1;
    for (std::size_t k = d + 1; k < shape.size(); ++k) stride *= shape[k];
    out_ << '[';
    const std::size_t n = shape[d];
    for (std::size_t i = 0; i < n; ++i) {
      if (summarise_ && n > 6 && i == 3) {
        if (d + 1 == shape.size()) out_ << "..., ";
        else out_ << "...,\n" << std::string(indent + 1, ' ');
        i = n - 3;
      }
      if (d + 1 == shape.size())
        out_ << format(offset + i);
      else
        print_dim(d + 1, offset + i * stride, indent + 1);
      if (i + 1 < n && d + 1 == shape.size()) out_ << ", ";
      else if (i + 1 < n) out_ << ',' << std::string(shape.size() - d - 1, '\n') << std::string(indent + 1, ' ');
    }
    out_ << ']';
  }

  const Tensor& tensor_;
  std::ostream& out_;
  bool summarise_ = false, integral_ = false, whole_ = false, scientific_ = false;
};

}  // namespace

std::ostream& operator<<(std::ostream& out, const Tensor& tensor) {
  if (!tensor.defined()) return out << "tensor(undefined)";
  Printer(tensor, out).print();
  if (tensor.dtype() == kFloat64) out << ", dtype=float64";
  if (tensor.grad_fn())
    out << ", grad_fn=<" << tensor.grad_fn()->name() << ">";
  else if (tensor.requires_grad())
    out << ", requires_grad=true";
  return out << ')';
}

}  // namespace tg
