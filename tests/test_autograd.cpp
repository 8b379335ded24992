// The engine: accumulation, unused inputs, seeds, retain_graph, retain_grad, NoGradGuard, long
// chains, and a graph that is dropped without backward being freed.
#include <fstream>
#include "../core/xtensor.hpp"
#include <unistd.h>

#include "helpers.hpp"

using tg::Tensor;
using tg_test::check_close;

TEST_CASE("a value used twice accumulates both contributions") {
  Tensor x({2.0, 3.0}, tg::TensorOptions().requires_grad(true));
  Tensor y = x * x + x;  // dy/dx = 2x + 1
  tg::sum(y).backward();
  check_close(x.grad(), {5, 7});
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
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kMeasurableMemory = false;
#else
constexpr bool kMeasurableMemory = true;
#endif

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
