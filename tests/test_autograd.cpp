// The engine: accumulation, unused inputs, seeds, retain_graph, retain_grad, NoGradGuard, long
// chains, and a graph that is dropped without backward being freed.
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <numeric>
#include <sstream>
#include "../core/xtensor.hpp"
#include <unistd.h>

#include "helpers.hpp"
#include "../core/allocator.hpp"

using tg::Tensor;
using tg_test::check_close;

TEST_CASE("a value used twice accumulates both contributions") {
  Tensor x({2.0, 3.0}, tg::TensorOptions().requires_grad(true));
  Tensor y = x * x + x;  // dy/dx = 2x + 1
  tg::sum(y).backward();
  check_close(x.grad(), {5, 7});
}

TEST_CASE("a leaf that is several inputs of one op gets their sum once, hooks fire once, the seed stays the user's") {
  for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
    INFO(tg::dtype_name(dtype));
    const std::vector<std::pair<std::function<Tensor(const Tensor&)>, std::vector<double>>> cases{
        {[](const Tensor& x) { return x + x; }, {2, 20, 200}},
        {[](const Tensor& x) { return x - x; }, {0, 0, 0}},
        {[](const Tensor& x) { return x * x; }, {2, -40, 600}},                        // 2x·g
        {[](const Tensor& x) { return tg::where(tg::gt(x, 0.0), x, x); }, {1, 10, 100}},
        {[](const Tensor& x) { return x * x + x; }, {3, -30, 700}},
    };
    for (const auto& [op, expected] : cases) {
      Tensor x = Tensor({1.0, -2.0, 3.0}, dtype).set_requires_grad();
      int calls = 0;
      std::vector<double> seen;
      x.register_post_accumulate_grad_hook([&](Tensor& t) {
        ++calls;
        seen = t.grad().to_vector<double>();
      });
      Tensor seed = Tensor({1.0, 10.0, 100.0}, dtype);
      op(x).backward(seed);
      CHECK(x.grad().to_vector<double>() == expected);
      CHECK(calls == 1);
      CHECK(seen == expected);
      {
        tg::NoGradGuard no_grad;
        seed *= 0.0;  // the user's seed changed afterwards: the gradient is not affected
      }
      CHECK(x.grad().to_vector<double>() == expected);
    }
  }
}

// mul makes x·x's gradient once, doubled (t + t for t = grad·x): the bits of the two equal
// products the engine used to add, for a leaf and for an intermediate result.
TEST_CASE("x * x: the gradient is grad·x doubled, the same bits as two products added") {
  tg::manual_seed(5);
  const Tensor x0 = tg::randn({1000}), g = tg::randn({1000});
  const std::vector<float> vx = x0.to_vector<float>(), vg = g.to_vector<float>();
  Tensor x = x0.detach().set_requires_grad();
  (x * x).backward(g);
  Tensor w = x0.detach().set_requires_grad();
  const Tensor y = w * 1.5;
  (y * y).backward(g);
  Tensor u = x0.detach().set_requires_grad();
  const Tensor v = u * 1.5;
  (v * v + v).backward(g);  // v gets g from the sum too
  const std::vector<float> gx = x.grad().to_vector<float>(), gw = w.grad().to_vector<float>();
  const std::vector<float> gu = u.grad().to_vector<float>();
  for (std::size_t i = 0; i < vx.size(); ++i) {
    const float t = vg[i] * vx[i], y_i = vx[i] * 1.5f, ty = vg[i] * y_i;
    CHECK(gx[i] == t + t);
    CHECK(gw[i] == (ty + ty) * 1.5f);
    CHECK(gu[i] == doctest::Approx((ty + ty + vg[i]) * 1.5f).epsilon(1e-6));
  }
}

TEST_CASE("gradients accumulate across backward calls until cleared") {
  Tensor x({1.0}, tg::TensorOptions().requires_grad(true));
  (x * 3.0).sum().backward();
  (x * 3.0).sum().backward();
  check_close(x.grad(), {6});
  x.set_grad(Tensor());
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("an input that does not reach the output gets no gradient") {
  Tensor a({1.0}, tg::TensorOptions().requires_grad(true));
  Tensor b({1.0}, tg::TensorOptions().requires_grad(true));
  Tensor unused = b * 2.0;
  (a * 2.0).sum().backward();
  CHECK(a.grad().defined());
  CHECK_FALSE(b.grad().defined());
}

TEST_CASE("requires_grad propagates and constants get no gradient") {
  Tensor w({1.0, 2.0}, tg::TensorOptions().requires_grad(true));
  Tensor c({3.0, 4.0});
  Tensor y = w * c;
  CHECK(y.requires_grad());
  CHECK_FALSE(y.is_leaf());
  CHECK_FALSE((c * 2.0).requires_grad());
  y.sum().backward();
  check_close(w.grad(), {3, 4});
  CHECK_FALSE(c.grad().defined());
}

TEST_CASE("backward of a non-scalar needs a gradient of its shape") {
  Tensor x({1.0, 2.0}, tg::TensorOptions().requires_grad(true));
  Tensor y = x * 2.0;
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("backward: grad can be implicitly created only for scalar outputs, got shape [2]"),
                       tg::Error);
  CHECK_THROWS_WITH_AS(y.backward(tg::ones({3})), "backward: gradient shape [3] does not match the output shape [2]",
                       tg::Error);
  y.backward(Tensor({1.0, 10.0}));
  check_close(x.grad(), {2, 20});
}

TEST_CASE("backward on a tensor that does not require grad is an error") {
  CHECK_THROWS_WITH_AS(tg::ones({1}).sum().backward(), "backward: the tensor does not require grad and has no grad_fn",
                       tg::Error);
}

TEST_CASE("a second backward needs retain_graph") {
  Tensor x({2.0}, tg::TensorOptions().requires_grad(true));
  Tensor y = tg::exp(x).sum();
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();  // allowed: the first kept the graph
  check_close(x.grad(), {2 * std::exp(2.0)}, 1e-4);
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("backward through the graph a second time"), tg::Error);
  // The failed call changed nothing.
  check_close(x.grad(), {2 * std::exp(2.0)}, 1e-4);
}

TEST_CASE("retain_grad keeps a non-leaf's gradient") {
  Tensor x({1.0, 2.0}, tg::TensorOptions().requires_grad(true));
  Tensor h = x * 3.0;
  h.retain_grad();
  Tensor other = x * 5.0;
  (h * h).sum().backward();
  check_close(h.grad(), {6, 12});
  CHECK_FALSE(other.grad().defined());
}

TEST_CASE("NoGradGuard stops recording, and nests") {
  Tensor x({1.0}, tg::TensorOptions().requires_grad(true));
  {
    tg::NoGradGuard outer;
    {
      tg::NoGradGuard inner;
    }
    CHECK_FALSE((x * 2.0).requires_grad());
    CHECK_FALSE(tg::GradMode::is_enabled());
  }
  CHECK(tg::GradMode::is_enabled());
  CHECK((x * 2.0).requires_grad());
}

TEST_CASE("detach shares values but not the graph; clone copies") {
  Tensor x({1.0, 2.0}, tg::TensorOptions().requires_grad(true));
  Tensor d = x.detach();
  CHECK_FALSE(d.requires_grad());
  Tensor c = x.clone();
  {
    tg::NoGradGuard no_grad;
    d.values_mut<float>()(0) = 7.0f;
  }
  CHECK(x.values<float>()(0) == 7.0f);
  CHECK(c.values<float>()(0) == 1.0f);
  CHECK_THROWS_WITH_AS(x.values_mut<float>(), doctest::Contains("values_mut: a tensor that requires grad"), tg::Error);
}

TEST_CASE("to() converts dtypes and sends the gradient back in the source dtype") {
  Tensor x({1.5, 2.5}, tg::TensorOptions().requires_grad(true));
  Tensor y = x.to(tg::kFloat64);
  CHECK(y.dtype() == tg::kFloat64);
  (y * y).sum().backward();
  CHECK(x.grad().dtype() == tg::kFloat32);
  check_close(x.grad(), {3, 5});
  CHECK(x.to(tg::kInt64).dtype() == tg::kInt64);
  CHECK_FALSE(x.to(tg::kInt64).requires_grad());
}

TEST_CASE("leaf gradients never share values with each other") {
  Tensor a({1.0}, tg::TensorOptions().requires_grad(true));
  Tensor b({1.0}, tg::TensorOptions().requires_grad(true));
  (a + b).sum().backward();  // add sends the same gradient tensor to both inputs
  {
    tg::NoGradGuard no_grad;
    a.grad().values_mut<float>()(0) = 100.0f;  // what in-place clipping does
  }
  check_close(b.grad(), {1});
}

TEST_CASE("a chain of 100,000 ops runs backward and is freed without recursion") {
  Tensor x({1.0}, tg::TensorOptions().requires_grad(true).dtype(tg::kFloat64));
  Tensor y = x;
  for (int i = 0; i < 100000; ++i) y = y * 1.00001;
  y.sum().backward();
  check_close(x.grad(), {std::pow(1.00001, 100000)}, 1e-9);

  // Built again and dropped without backward: the destructor must not recurse 100,000 deep.
  Tensor z = x;
  for (int i = 0; i < 100000; ++i) z = z + 1.0;
  z = Tensor();
  CHECK(x.requires_grad());
}

namespace {

// Resident set size in bytes, from /proc.
std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace

// Under AddressSanitizer freed memory stays in its quarantine, so resident size says nothing;
// there LeakSanitizer checks the same thing at exit.
constexpr bool kMeasurableMemory = !tg_test::kSanitized;

TEST_CASE("forward passes whose graphs are dropped without backward do not grow memory" * doctest::skip(!kMeasurableMemory)) {
  tg::manual_seed(0);
  Tensor w = tg::randn({32, 32}).set_requires_grad();
  Tensor x = tg::randn({8, 32});
  auto step = [&] { return tg::sum(tg::tanh(tg::matmul(x, w)) * 2.0 + 1.0); };
  for (int i = 0; i < 2000; ++i) step();  // warm up allocator pools
  const std::size_t before = resident_bytes();
  // Each graph holds about 8 KB of saved values: 20,000 leaked graphs would be 160 MB.
  for (int i = 0; i < 20000; ++i) step();
  const std::size_t after = resident_bytes();
  INFO("resident before ", before / 1024, " KiB, after ", after / 1024, " KiB");
  CHECK(after < before + 8 * 1024 * 1024);
}

TEST_CASE("a freed large block goes to the next request of about its size; release_cached empties the cache" *
          doctest::skip(!kMeasurableMemory)) {
  // (Under AddressSanitizer every block comes from the system allocator, unreused.)
  const std::size_t size = 3 << 20;
  void* a = tg::memory::allocate(size);
  std::memset(a, 1, size);
  tg::memory::deallocate(a, size);
  // A block comes back at another offset ("colour", below 4 KiB) in the same memory.
  auto distance = [](const void* x, const void* y) {
    const auto p = reinterpret_cast<std::uintptr_t>(x), q = reinterpret_cast<std::uintptr_t>(y);
    return p > q ? p - q : q - p;
  };
  void* larger = tg::memory::allocate(size + size / 8 + 64);  // more than 1/8 larger: not a's memory
  CHECK(distance(larger, a) >= size);
  void* smaller = tg::memory::allocate(size - 4096);  // a's, at most 1/8 larger than asked
  CHECK(distance(smaller, a) < 4096);
  std::memset(smaller, 2, size - 4096);
  tg::memory::deallocate(larger, size + size / 8 + 64);
  tg::memory::deallocate(smaller, size - 4096);
  tg::memory::release_cached();
  void* fresh = tg::memory::allocate(size);
  std::memset(fresh, 3, size);
  tg::memory::deallocate(fresh, size);
}

TEST_CASE("every recorded node carries its op name") {
  Tensor x({1.0}, tg::TensorOptions().requires_grad(true));
  CHECK(std::string(tg::matmul(tg::reshape(x, {1, 1}), tg::ones({1, 1})).grad_fn()->name()) == "matmul");
  CHECK(std::string(tg::softmax(x, 0).grad_fn()->name()) == "softmax");
}

// ---- version counters: a tensor saved for backward and then changed in place -----------------

namespace {
// Changes t in place the way a user would: under NoGradGuard, through a detached handle.
void overwrite(const Tensor& t, float value) {
  tg::NoGradGuard no_grad;
  t.detach().values_mut<float>().fill(value);
}
}  // namespace

TEST_CASE("backward throws when an input it saved was changed in place (PyTorch's version counter)") {
  Tensor w({1.0, 2.0}, tg::TensorOptions().requires_grad(true));
  Tensor x({3.0, 4.0});
  Tensor loss = (w * x).sum();  // dw = x: mul saved x
  overwrite(x, 0.0f);
  CHECK_THROWS_WITH_AS(loss.backward(),
                       doctest::Contains("backward of mul: input 1 (float32 [2]) was modified in place after mul "
                                         "saved it (version 0, now 1)"),
                       tg::Error);
}

TEST_CASE("version checks cover saved outputs, matmul, linear and batch_norm, and only what was saved") {
  SUBCASE("exp saves its output") {
    Tensor x({0.5, 1.0}, tg::TensorOptions().requires_grad(true));
    Tensor y = tg::exp(x);
    Tensor loss = y.sum();
    overwrite(y, 1.0f);
    CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("backward of exp: its output"), tg::Error);
  }
  SUBCASE("matmul saves both operands") {
    Tensor a = tg::randn({3, 4}).set_requires_grad(true);
    Tensor b = tg::randn({4, 2});
    Tensor loss = tg::matmul(a, b).sum();
    overwrite(b, 0.0f);
    CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("backward of matmul: input 1 (float32 [4, 2])"),
                         tg::Error);
  }
  SUBCASE("linear saves input and weight") {
    Tensor x = tg::randn({5, 3});
    Tensor w = tg::randn({2, 3}).set_requires_grad(true);
    Tensor loss = tg::linear(x, w).sum();
    overwrite(x, 1.0f);
    CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("backward of linear: input 0"), tg::Error);
  }
  SUBCASE("batch_norm saves its input") {
    Tensor x = tg::randn({4, 3}).set_requires_grad(true);
    Tensor loss = (tg::nn::functional::batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true) *
                   tg::randn({4, 3})).sum();
    {
      tg::NoGradGuard no_grad;
      x.values_mut<float>()(0, 0) = 5.0f;  // the leaf itself, changed in place
    }
    CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("backward of batch_norm: input 0"), tg::Error);
  }
  SUBCASE("add saves nothing, so changing its input is fine (as in PyTorch)") {
    Tensor w({1.0, 2.0}, tg::TensorOptions().requires_grad(true));
    Tensor x({3.0, 4.0});
    Tensor loss = (w + x).sum();
    overwrite(x, 0.0f);
    loss.backward();
    check_close(w.grad(), {1, 1});
  }
  SUBCASE("replacing a parameter's storage (Module::to) is caught too") {
    tg::nn::Linear layer(3, 2);
    Tensor loss = layer(tg::randn({4, 3})).sum();
    layer.to(tg::kFloat64);
    CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("backward of linear: input 1"), tg::Error);
  }
  SUBCASE("an unchanged graph runs backward twice with retain_graph; a change in between is caught") {
    Tensor w({1.0, 2.0}, tg::TensorOptions().requires_grad(true));
    Tensor x({3.0, 4.0});
    Tensor loss = (w * x).sum();
    loss.backward(Tensor(), true);
    loss.backward(Tensor(), true);
    check_close(w.grad(), {6, 8});
    overwrite(x, 2.0f);
    CHECK_THROWS_AS(loss.backward(), tg::Error);
  }
}

TEST_CASE("every in-place write bumps the version; reads and detach do not") {
  Tensor x({1.0, 2.0});
  CHECK(x.version() == 0);
  (void)x.values<float>();
  Tensor d = x.detach();
  CHECK(x.version() == 0);
  d.values_mut<float>();
  CHECK(x.version() == 1);  // one counter per storage, shared with detached handles
  CHECK(x.clone().version() == 0);
}

// ---- reshape shares the values (PyTorch's view of a contiguous tensor) ---------------------------

namespace {
// Every reshape-like op on a tensor of `shape`, each with the shape it must give.
std::vector<std::pair<std::function<Tensor(const Tensor&)>, tg::Shape>> reshapes_of(const tg::Shape& shape) {
  const std::size_t n = std::accumulate(shape.begin(), shape.end(), std::size_t(1), std::multiplies<>());
  std::vector<std::pair<std::function<Tensor(const Tensor&)>, tg::Shape>> cases{
      {[](const Tensor& t) { return t.reshape({-1}); }, {n}},
      {[](const Tensor& t) { return t.view({1, -1, 1}); }, {1, n, 1}},
      {[](const Tensor& t) { return t.flatten(); }, {n}},
      {[](const Tensor& t) { return t.unsqueeze(0); }, [&] { tg::Shape s{1}; s.insert(s.end(), shape.begin(), shape.end()); return s; }()},
      {[](const Tensor& t) { return t.unsqueeze(-1).squeeze(); }, [&] { tg::Shape s; for (auto d : shape) if (d != 1) s.push_back(d); return s; }()},
  };
  if (!shape.empty()) cases.push_back({[](const Tensor& t) { return t.flatten(0, -1).reshape({1, -1}).squeeze(0); }, {n}});
  return cases;
}
}  // namespace

TEST_CASE("reshape, view, flatten, squeeze and unsqueeze share the values of every dtype and rank") {
  for (const tg::Shape& shape : {tg::Shape{}, tg::Shape{1}, tg::Shape{5}, tg::Shape{2, 3}, tg::Shape{2, 1, 3},
                                 tg::Shape{2, 3, 1, 2}, tg::Shape{1, 2, 1, 2, 3}, tg::Shape{0, 3}}) {
    for (tg::DType dtype : {tg::kFloat32, tg::kFloat64, tg::kInt64}) {
      for (const auto& [op, expected] : reshapes_of(shape)) {
        INFO("shape ", tg::shape_str(shape), " ", tg::dtype_name(dtype), " -> ", tg::shape_str(expected));
        Tensor x = tg::arange(double(std::max<std::size_t>(1, tg::checked_numel("test", shape))), dtype);
        if (tg::checked_numel("test", shape) == 0) x = tg::zeros(shape, dtype);
        x = x.reshape(shape);
        const std::vector<double> before = x.to_vector<double>();
        const Tensor y = op(x);
        CHECK(y.shape() == expected);
        CHECK(y.dtype() == dtype);
        CHECK(y.version() == x.version());
        tg::dispatch_all(dtype, [&]<class T>() {
          CHECK(y.data<T>() == x.data<T>());  // no copy
          // Each handle sees its own shape, whichever asked last.
          CHECK(y.values<T>().shape() == expected);
          CHECK(x.values<T>().shape() == shape);
          CHECK(y.values<T>().shape() == expected);
          CHECK(x.shape() == shape);
          // Copies and conversions of either handle come out at that handle's shape.
          CHECK(x.clone().shape() == shape);
          CHECK(y.to(tg::kFloat64).shape() == expected);
          CHECK(x.to_vector<double>() == before);
          CHECK(y.to_vector<double>() == before);
          if (x.numel() == 0) return;
          // A write through one handle (not recorded) is seen through the other.
          Tensor writer = y;
          writer.mutable_data<T>()[0] = T(42);
          CHECK(x.version() == 1);
          CHECK(x.data<T>()[0] == T(42));
          std::ostringstream printed;
          printed << x;
          CHECK(printed.str().find("42") != std::string::npos);
        });
      }
    }
  }
}

TEST_CASE("a reshape's gradient flows back to its source, alongside the source itself") {
  const Tensor x = tg_test::uniform64({2, 3, 4});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) {
    const Tensor v = in[0].reshape({6, 4});
    return (v * tg::sin(in[0].flatten(0, 1)) + in[0].view({6, -1}).exp()).reshape({4, 6}).sum({1}) *
           in[0].unsqueeze(0).squeeze().reshape({-1}).slice(0, 0, 4);
  }, {x});
  // The leaf's gradient never shares values with the seed it came from.
  Tensor seed = tg::ones({24}, tg::kFloat64);
  x.reshape({24}).backward(seed);
  seed.values_mut<double>().fill(5.0);
  CHECK(tg_test::flat(x.grad()) == std::vector<double>(24, 1.0));
  CHECK(x.grad().shape() == tg::Shape{2, 3, 4});
}

TEST_CASE("ops on a tensor and a reshape of it read each at its own shape") {
  const Tensor x = tg::arange(6.0, tg::kFloat64).reshape({2, 3});
  const Tensor column = x.reshape({6, 1});
  const Tensor row = x.reshape({6});
  const Tensor xc = x.clone(), cc = column.clone(), rc = row.clone();
  CHECK(tg_test::bitwise_equal(column + row, cc + rc));  // broadcast (6, 1) with (6): 6 x 6
  CHECK(tg_test::bitwise_equal(row * column, rc * cc));
  CHECK(tg_test::bitwise_equal(tg::maximum(column, row), tg::maximum(cc, rc)));
  CHECK(tg_test::bitwise_equal(tg::lt(column, row), tg::lt(cc, rc)));
  CHECK(tg_test::bitwise_equal(tg::where(tg::gt(cc, 2.0), column, row), tg::where(tg::gt(cc, 2.0), cc, rc)));
  CHECK(tg_test::bitwise_equal(tg::where(tg::gt(rc, 2.0), row, column), tg::where(tg::gt(rc, 2.0), rc, cc)));
  const Tensor condition = tg::gt(rc, 2.0);  // (6), and read as (6, 1) through a reshape
  CHECK(tg_test::bitwise_equal(tg::where(condition.reshape({6, 1}), row, condition),
                               tg::where(condition.clone().reshape({6, 1}), rc, condition.clone())));
  CHECK(tg_test::bitwise_equal(tg::masked_select(column, condition.reshape({6, 1})), tg::masked_select(cc, condition.clone().reshape({6, 1}))));
  CHECK(tg_test::bitwise_equal(x.reshape({3, 2}).t(), xc.reshape({3, 2}).t()));
  CHECK(tg_test::bitwise_equal(column.expand({6, 4}) + row.reshape({1, 6}).t(), cc.expand({6, 4}) + rc.reshape({6, 1})));
  CHECK(tg_test::bitwise_equal(tg::matmul(column, row.reshape({1, 6})), tg::matmul(cc, rc.reshape({1, 6}))));
  CHECK(tg_test::bitwise_equal(tg::cat({x.reshape({3, 2}), x.reshape({3, 2})}, 0), tg::cat({xc.reshape({3, 2}), xc.reshape({3, 2})}, 0)));
}

TEST_CASE("an in-place op in a graph on a tensor that shares its values through reshape is refused") {
  const Tensor w = tg_test::uniform64({2, 3});
  SUBCASE("on the reshape") {
    Tensor h = w * 2.0;
    Tensor v = h.reshape({6});
    CHECK_THROWS_WITH_AS(v *= 3.0, "mul_: the tensor float64 [6] shares its values with a reshape of shape [2, 3] "
                         "(one made from the other), and an in-place op in a graph would leave that one's gradient "
                         "history wrong; use the out-of-place op, or clone() before the reshape", tg::Error);
    CHECK(h.version() == 0);  // nothing was written
  }
  SUBCASE("on the source") {
    Tensor h = w * 2.0;
    const Tensor v = h.reshape({3, 2});
    CHECK_THROWS_WITH_AS(h += 1.0, doctest::Contains("add_: the tensor float64 [2, 3] shares its values with a "
                                                     "reshape of shape [3, 2]"), tg::Error);
  }
  SUBCASE("a constant's reshape would take a history the constant does not get") {
    Tensor c = tg::ones({2, 3}, tg::kFloat64);
    Tensor v = c.reshape({2, 3});
    CHECK_THROWS_WITH_AS(v *= w, doctest::Contains("mul_: the tensor float64 [2, 3] shares its values"), tg::Error);
    v *= 2.0;  // no graph: allowed, and seen through the source (PyTorch's views)
    CHECK(tg_test::flat(c) == std::vector<double>(6, 2.0));
  }
  SUBCASE("once the other handle is gone, in place is allowed again") {
    Tensor h = w * 2.0;
    { const Tensor v = h.reshape({6}); }
    h *= 3.0;
    h.sum().backward();
    CHECK(tg_test::flat(w.grad()) == std::vector<double>(6, 6.0));
  }
  SUBCASE("without recording, writes through a reshape are seen by the source and checked by backward") {
    Tensor x = tg::ones({2, 3}, tg::kFloat64).set_requires_grad();
    Tensor y = (x.reshape({6}) * tg::arange(6.0, tg::kFloat64)).sum();  // mul saved the reshape
    Tensor saved_source = tg::exp(x);
    {
      tg::NoGradGuard no_grad;
      Tensor v = x.reshape({3, 2});
      v *= 2.0;
    }
    CHECK(tg_test::flat(x) == std::vector<double>(6, 2.0));
    CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("was modified in place after mul saved it"), tg::Error);
    (void)saved_source;
  }
}

TEST_CASE("values_mut() must keep the shape: a resized array is refused at the next access") {
  Tensor x = tg::zeros({2, 3});
  x.values_mut<float>() = xt::xarray<float>{1.f, 2.f};
  CHECK_THROWS_WITH_AS(x.data<float>(), "data: the values were resized through values_mut() to [2] but the tensor "
                       "is [2, 3] (values_mut() must keep the shape; make a new tensor instead)", tg::Error);
  CHECK_THROWS_WITH_AS(x + 1.0, doctest::Contains("the values were resized through values_mut()"), tg::Error);
  CHECK_THROWS_WITH_AS(x.clone(), doctest::Contains("values: the values were resized"), tg::Error);
}

TEST_CASE("gradients accumulate in place only into buffers nobody else holds") {
  Tensor x = Tensor({1.0, 2.0, 3.0}).set_requires_grad();
  (x * 2.0).sum().backward();
  const Tensor held = x.grad();  // a user's handle on the gradient
  (x * 3.0).sum().backward();
  CHECK(held.to_vector<float>() == std::vector<float>{2, 2, 2});  // not changed behind the user's back
  CHECK(x.grad().to_vector<float>() == std::vector<float>{5, 5, 5});
  // Unheld, the sum is written in place (the same storage, a new version).
  x.set_grad(Tensor());
  (x * 2.0).sum().backward();
  const std::uint64_t version = x.grad().version();
  const float* before = x.grad().data<float>();
  (x * 3.0).sum().backward();
  CHECK(x.grad().data<float>() == before);
  CHECK(x.grad().version() > version);
  CHECK(x.grad().to_vector<float>() == std::vector<float>{5, 5, 5});
  // x + x: the seed is the user's, so it is copied before it is summed into.
  Tensor seed({1.0, 1.0, 1.0});
  x.set_grad(Tensor());
  (x + x).backward(seed);
  CHECK(seed.to_vector<float>() == std::vector<float>{1, 1, 1});
  CHECK(x.grad().to_vector<float>() == std::vector<float>{2, 2, 2});
}

// narrow, select, slice and index_select add their rows into the gradient their input has gathered
// so far, when nothing else holds it, instead of a zero tensor of the input's shape each (a
// sequence cut into steps would cost a whole-sequence tensor per step). Values: gradcheck, with
// the slices of a non-leaf and of a leaf, repeated rows and overlapping selections; ownership: a
// held gradient is never written; storage: the leaf's own gradient takes the rows in place.
TEST_CASE("row selections add into an unshared input gradient in place") {
  tg::manual_seed(31);
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        const Tensor y = in[0] * 1.5;  // a non-leaf: its node's buffer takes the rows
        Tensor total = tg::zeros({4, 3}, tg::kFloat64);
        for (std::int64_t t = 0; t < 5; ++t) total = total + tg::select(y, 0, t) * double(t + 1);
        // Each selected row weighted differently, so that a row added at the wrong place shows.
        auto weighted = [](const Tensor& rows) {
          return (rows * tg::arange(1.0, double(rows.size(0)) + 1.0).to(tg::kFloat64).reshape({-1, 1, 1})).sum(0);
        };
        total = total + weighted(tg::narrow(y, 0, 1, 2)) + weighted(tg::slice(y, 0, 0, 5, 2));
        total = total + weighted(tg::index_select(y, 0, Tensor(std::vector<std::int64_t>{3, 3, 0}, {3})));
        for (std::int64_t t = 0; t < 5; ++t) total = total + tg::select(in[0], 0, t) * double(t);  // the leaf
        return total;
      },
      {tg_test::uniform64({5, 4, 3})});

  Tensor x = tg::zeros({4, 2}).set_requires_grad();
  (tg::select(x, 0, 0) * 2.0).sum().backward();
  const Tensor held = x.grad();
  (tg::select(x, 0, 0) + tg::select(x, 0, 3)).sum().backward();
  CHECK(held.to_vector<float>() == std::vector<float>{2, 2, 0, 0, 0, 0, 0, 0});  // not written behind the user's back
  CHECK(x.grad().to_vector<float>() == std::vector<float>{3, 3, 0, 0, 0, 0, 1, 1});
  x.set_grad(Tensor());
  (tg::select(x, 0, 1) * 2.0).sum().backward();
  const float* storage = x.grad().data<float>();
  (tg::select(x, 0, 2) * 3.0).sum().backward();
  CHECK(x.grad().data<float>() == storage);  // the rows went into the leaf's gradient itself
  CHECK(x.grad().to_vector<float>() == std::vector<float>{0, 0, 2, 2, 3, 3, 0, 0});
}

// sum's gradient, the kept values spread over the input's shape, is added into the gradient its
// input has gathered so far when nothing else holds that, one pass with no expanded copy. Values
// for a family of shapes and reduced dims (one and two runs, the first and the last dim, every dim,
// keepdim or not), float64 and float32, on a leaf and on a non-leaf, against c + w spread (the same
// single addition: equal bits); gradcheck; a held gradient is never written; the leaf's own
// gradient takes the sum in place.
TEST_CASE("sum adds its spread gradient into an unshared input gradient in place") {
  tg::manual_seed(32);
  const std::vector<std::pair<tg::Shape, std::vector<std::int64_t>>> cases = {
      {{4, 3, 5}, {0}},    {{4, 3, 5}, {1}},       {{4, 3, 5}, {-1}},       {{4, 3, 5}, {0, 2}},
      {{4, 3, 5}, {0, 1, 2}}, {{2, 3, 4, 5}, {1, 3}}, {{2, 3, 4, 5}, {0, 1}}, {{7, 1, 33}, {2}},
      {{64, 40}, {0}},     {{64, 40}, {1}}};
  for (const auto& [shape, dims] : cases)
    for (const bool keepdim : {true, false})
      for (const tg::DType dtype : {tg::kFloat64, tg::kFloat32})
        for (const bool leaf : {true, false}) {
          CAPTURE(tg::shape_str(shape));
          CAPTURE(std::vector<std::int64_t>(dims));
          CAPTURE(keepdim);
          CAPTURE(tg::dtype_name(dtype));
          CAPTURE(leaf);
          const Tensor x = tg::randn(shape, dtype).set_requires_grad();
          const Tensor c = tg::randn(shape, dtype);
          const Tensor w = tg::randn(tg::sum(x.detach(), dims, keepdim).shape(), dtype);
          const Tensor y = leaf ? x : x * 1.0;
          const Tensor s = tg::sum(y.detach(), dims, true);  // the kept shape
          auto as_signed = [](const tg::Shape& d) { return std::vector<std::int64_t>(d.begin(), d.end()); };
          const Tensor kept_w = w.reshape(as_signed(s.shape()));
          // sum(y, dims) recorded first: its backward runs after y * c's, whose gradient it adds into.
          (tg::sum(tg::sum(y, dims, keepdim) * w) + tg::sum(y * c)).backward();
          const Tensor want = c + kept_w.expand(as_signed(shape));
          const std::vector<double> got = tg_test::flat(x.grad()), expected = tg_test::flat(want);
          REQUIRE(got.size() == expected.size());
          for (std::size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == expected[i]);
        }
  CHECK_GRADCHECK(
      [](const std::vector<Tensor>& in) {
        const Tensor y = in[0] * 1.5;
        return tg::sum(y, {1}, true) * tg::sum(y, {0, 2}, true) + y * tg::sum(in[0], {2}, false).unsqueeze(2);
      },
      {tg_test::uniform64({3, 4, 5})});

  Tensor x = tg::zeros({3, 2}).set_requires_grad();
  (x * 2.0).sum().backward();
  const Tensor held = x.grad();
  (tg::sum(x, {1}) * Tensor({1.0, 2.0, 3.0})).sum().backward();
  CHECK(held.to_vector<float>() == std::vector<float>{2, 2, 2, 2, 2, 2});  // not written behind the user's back
  CHECK(x.grad().to_vector<float>() == std::vector<float>{3, 3, 4, 4, 5, 5});
  x.set_grad(Tensor());
  (x * 2.0).sum().backward();
  const float* storage = x.grad().data<float>();
  (tg::sum(x, {0}, true) * Tensor({1.0, 2.0}).reshape({1, 2})).sum().backward();
  CHECK(x.grad().data<float>() == storage);  // the spread went into the leaf's gradient itself
  CHECK(x.grad().to_vector<float>() == std::vector<float>{3, 4, 3, 4, 3, 4});
}

TEST_CASE("post-accumulate-grad hooks fire once per backward, after a leaf's last contribution") {
  Tensor w = Tensor({1.0, 2.0}).set_requires_grad();
  Tensor unused = Tensor({1.0}).set_requires_grad();
  std::vector<std::vector<float>> seen;
  std::vector<std::string> events;
  const std::uint64_t id = w.register_post_accumulate_grad_hook([&](Tensor& leaf) {
    seen.push_back(leaf.grad().to_vector<float>());
    events.push_back("hook");
    tg::Engine::queue_callback([&] { events.push_back("end"); });
  });
  unused.register_post_accumulate_grad_hook([&](Tensor&) { events.push_back("unused"); });
  // w is used three times, on branches that run at different tape positions.
  Tensor y = (w * 3.0).sum() + (w * w).sum() + tg::exp(w.sum() * 0.0);
  y.backward();
  // d/dw: 3 + 2w + 0 (exp(0)·0), all of it seen by the one call.
  CHECK(seen == std::vector<std::vector<float>>{{5, 7}});
  CHECK(events == std::vector<std::string>{"hook", "end"});  // unused got no gradient: no call
  // Once per backward, with the accumulated gradient.
  (w * 2.0).sum().backward();
  CHECK(seen.back() == std::vector<float>{7, 9});
  // Removed: no more calls. A hook on a leaf that is the root itself fires too.
  w.remove_post_accumulate_grad_hook(id);
  (w * 2.0).sum().backward();
  CHECK(seen.size() == 2);
  Tensor s = Tensor({1.0}).set_requires_grad();
  int calls = 0;
  s.register_post_accumulate_grad_hook([&](Tensor&) { ++calls; });
  s.backward(Tensor({1.0}));
  CHECK(calls == 1);
}

TEST_CASE("hooks and queue_callback: misuse is an error") {
  CHECK_THROWS_WITH_AS(tg::Engine::queue_callback([] {}),
                       "queue_callback: only during a backward (from a hook or a node's backward)", tg::Error);
  Tensor x = Tensor({1.0}).set_requires_grad();
  CHECK_THROWS_WITH_AS((x * 2.0).register_post_accumulate_grad_hook([](Tensor&) {}),
                       "register_post_accumulate_grad_hook: only a leaf that requires grad accumulates a gradient "
                       "(got a non-leaf)",
                       tg::Error);
  Tensor plain({1.0});
  CHECK_THROWS_WITH_AS(plain.register_post_accumulate_grad_hook([](Tensor&) {}),
                       "register_post_accumulate_grad_hook: only a leaf that requires grad accumulates a gradient "
                       "(got a tensor that does not require grad)",
                       tg::Error);
  // A hook that throws stops the backward with its error; the next backward is clean.
  x.register_post_accumulate_grad_hook([](Tensor&) { tg::fail("hook: refused"); });
  CHECK_THROWS_WITH_AS((x * 2.0).sum().backward(), "hook: refused", tg::Error);
  CHECK_THROWS_WITH_AS(tg::Engine::queue_callback([] {}),
                       "queue_callback: only during a backward (from a hook or a node's backward)", tg::Error);
}
