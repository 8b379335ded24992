// Tensor creation, properties, conversion, printing and the seeded generator.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>
#include "../core/xtensor.hpp"

#include "helpers.hpp"

using tg::Tensor;
using tg_test::check_close;

TEST_CASE("construction from braces, vectors and xtensor arrays") {
  const Tensor a({{1, 2, 3}, {4, 5, 6}});
  CHECK(a.shape() == tg::Shape{2, 3});
  CHECK(a.dim() == 2);
  CHECK(a.numel() == 6);
  CHECK(a.size(-1) == 3);
  CHECK(a.dtype() == tg::kFloat32);
  CHECK(Tensor({1, 2}, tg::kFloat64).dtype() == tg::kFloat64);
  CHECK(Tensor({{{1}, {2}}, {{3}, {4}}}).shape() == tg::Shape{2, 2, 1});
  const Tensor v(std::vector<double>{1, 2, 3, 4}, {2, 2});
  CHECK(v.dtype() == tg::kFloat64);
  CHECK(v.values<double>()(1, 0) == 3.0);
  const Tensor x = tg::make_tensor<float>(xt::xarray<float>{{1.f, 2.f}});  // the opt-in xtensor side
  CHECK(x.shape() == tg::Shape{1, 2});
  CHECK_THROWS_WITH_AS(Tensor(std::vector<float>{1, 2, 3}, {2, 2}), "Tensor: 3 values do not fill shape [2, 2]",
                       tg::Error);
  CHECK_THROWS_WITH_AS(Tensor({{1, 2}, {3}}), doctest::Contains("nested initializer lists must be rectangular"), tg::Error);
}

TEST_CASE("copies are handles that share; clone is independent") {
  Tensor a({1, 2});
  Tensor b = a;
  CHECK(b.same(a));
  b.values_mut<float>()(0) = 9.0f;
  CHECK(a.values<float>()(0) == 9.0f);
  Tensor c = a.clone();
  c.values_mut<float>()(0) = 0.0f;
  CHECK(a.values<float>()(0) == 9.0f);
}

TEST_CASE("creation functions") {
  check_close(tg::zeros({2}), {0, 0});
  check_close(tg::ones({2}, tg::kFloat64), {1, 1});
  check_close(tg::full({3}, 2.5), {2.5, 2.5, 2.5});
  check_close(tg::arange(4), {0, 1, 2, 3});
  check_close(tg::arange(1, 2, 0.25), {1, 1.25, 1.5, 1.75});
  check_close(tg::linspace(0, 1, 5), {0, 0.25, 0.5, 0.75, 1});
  check_close(tg::eye(2, 3), {1, 0, 0, 0, 1, 0});
  CHECK(tg::zeros_like(tg::ones({2, 2}, tg::kFloat64)).dtype() == tg::kFloat64);
  CHECK(tg::ones({2}, tg::TensorOptions().requires_grad(true)).requires_grad());
  CHECK_THROWS_WITH_AS(tg::zeros({2}, tg::TensorOptions().dtype(tg::kInt64).requires_grad(true)),
                       "zeros: only floating-point tensors can require grad, got int64", tg::Error);
  CHECK_THROWS_WITH_AS(tg::arange(0, 1, 0), "arange: step must be non-zero", tg::Error);
}

TEST_CASE("full, zeros and clone write every value, across the parallel chunks, at 1 and 2 threads") {
  // Sizes around the chunk of 32768 values that each task fills or copies.
  for (int threads : {1, 2}) {
    tg::set_num_threads(threads);
    for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(32767), std::size_t(32768), std::size_t(32769),
                          std::size_t(100003)}) {
      CAPTURE(threads);
      CAPTURE(n);
      for (tg::DType dtype : {tg::kFloat32, tg::kFloat64, tg::kInt64}) {
        // Each op under test first gets a block of n values that held 99: the allocator's cache
        // hands back the block last freed, so a chunk the op skipped would still show 99.
        const auto poisoned = [&](auto make) {
          Tensor block = tg::empty({n}, dtype);
          tg::dispatch_all(dtype, [&]<class T>() { std::fill_n(block.mutable_data<T>(), n, T(99)); });
          block = Tensor();  // freed: its block cached
          return make();
        };
        const Tensor filled = poisoned([&] { return tg::full({n}, -7.0, dtype); });
        const Tensor zero = poisoned([&] { return tg::zeros({n}, dtype); });
        const Tensor values = tg::arange(double(n), dtype), copy = poisoned([&] { return values.clone(); });
        const Tensor f = filled.to(tg::kFloat64), z = zero.to(tg::kFloat64), c = copy.to(tg::kFloat64);
        std::size_t wrong = 0;
        for (std::size_t i = 0; i < n; ++i)
          wrong += f.data<double>()[i] != -7.0 || z.data<double>()[i] != 0.0 || c.data<double>()[i] != double(i);
        CHECK(wrong == 0);
      }
    }
  }
  tg::set_num_threads(1);
}

TEST_CASE("random functions repeat with the same seed") {
  tg::manual_seed(123);
  const Tensor a = tg::randn({100});
  const Tensor u = tg::rand({100}, tg::kFloat64);
  const Tensor i = tg::randint(-3, 3, {100});
  tg::manual_seed(123);
  CHECK(tg_test::bitwise_equal(a, tg::randn({100})));
  CHECK(tg_test::bitwise_equal(u, tg::rand({100}, tg::kFloat64)));
  CHECK(i.values<std::int64_t>() == tg::randint(-3, 3, {100}).values<std::int64_t>());
  CHECK(i.dtype() == tg::kInt64);
  CHECK(xt::amin(i.values<std::int64_t>())() >= -3);
  CHECK(xt::amax(i.values<std::int64_t>())() < 3);
  CHECK(xt::amin(u.values<double>())() >= 0.0);
  CHECK(xt::amax(u.values<double>())() < 1.0);
  // The standard normal has mean 0 and variance 1 (loosely, for 10,000 draws).
  const Tensor n = tg::randn({10000}, tg::kFloat64);
  CHECK(std::abs(tg::mean(n).item()) < 0.05);
  CHECK(std::abs(tg::var(n).item() - 1.0) < 0.05);
}

// Normals come in Box-Muller pairs, computed a batch of pairs at a time (core/random.cpp): a
// tensor's draw equals as many calls of normal() bit for bit, across chunk edges (512 values), odd
// counts (the spare normal carried to the next draw) and the SIMD tail, and leaves the stream where
// those calls would; each pair is (r·cos θ, r·sin θ) of its two uniforms, as libm computes it.
TEST_CASE("randn equals one normal() at a time, carries the spare, and is Box-Muller of its uniforms") {
  tg::Generator batched(5), single(5);
  for (const std::size_t count : {1, 2, 3, 7, 8, 9, 511, 512, 513, 1025, 3, 6}) {
    CAPTURE(count);
    const Tensor drawn = tg::randn({count}, batched, tg::kFloat64);
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < count; ++i) wrong += drawn.data<double>()[i] != single.normal();
    CHECK(wrong == 0);
  }
  CHECK(batched.next_u64() == single.next_u64());
  // float32: the same normals, rounded.
  tg::Generator wide(8), narrow(8);
  const Tensor d64 = tg::randn({1001}, wide, tg::kFloat64), d32 = tg::randn({1001}, narrow, tg::kFloat32);
  CHECK(tg_test::bitwise_equal(d64.to(tg::kFloat32), d32));

  tg::Generator normals(9), uniforms(9);
  std::size_t wrong = 0;
  for (int pair = 0; pair < 2000; ++pair) {
    const double u1 = 1.0 - uniforms.uniform(), u2 = uniforms.uniform();
    const double radius = std::sqrt(-2.0 * std::log(u1)), angle = 2.0 * std::numbers::pi * u2;
    const double first = normals.normal(), second = normals.normal();
    wrong += std::abs(first - radius * std::cos(angle)) > 1e-14 * (1 + radius);
    wrong += std::abs(second - radius * std::sin(angle)) > 1e-14 * (1 + radius);
  }
  CHECK(wrong == 0);
  // The tails: P(|z| > 3) = 0.0027 (about 540 of 200,000; the bound is 7 standard deviations).
  const Tensor z = tg::randn({200000}, tg::Generator(3), tg::kFloat64);
  const double* v = z.data<double>();
  const auto beyond = std::count_if(v, v + z.numel(), [](double x) { return std::abs(x) > 3.0; });
  CHECK(std::abs(double(beyond) - 540.0) < 7 * std::sqrt(540.0));
  CHECK(std::all_of(v, v + z.numel(), [](double x) { return std::isfinite(x); }));
}

TEST_CASE("item, to and printing") {
  CHECK(Tensor({2.5}).item() == 2.5);
  CHECK(Tensor({7}).item<int>() == 7);
  check_close(Tensor({1.7, -2.2}).to(tg::kInt64), {1, -2});
  std::ostringstream out;
  out << Tensor({{1, 2}, {3, 4}});
  CHECK(out.str() == "tensor([[1., 2.],\n        [3., 4.]])");
  out.str("");
  out << Tensor({0.5, 1.25}, tg::kFloat64);
  CHECK(out.str() == "tensor([0.5000, 1.2500], dtype=float64)");
  out.str("");
  out << (Tensor({1.0}, tg::TensorOptions().requires_grad(true)) * 2.0);
  CHECK(out.str() == "tensor([2.], grad_fn=<mul>)");
  out.str("");
  out << tg::zeros({2000});
  CHECK(out.str() == "tensor([0., 0., 0., ..., 0., 0., 0.])");
  out.str("");
  out << Tensor(std::vector<std::int64_t>{3, -1}, {2});
  CHECK(out.str() == "tensor([3, -1])");
}

TEST_CASE("a generator's state saves and restores exactly, and bad states are refused") {
  tg::manual_seed(5);
  (void)tg::randn({3});  // leaves a spare normal behind
  const Tensor state = tg::get_rng_state();
  CHECK(state.dtype() == tg::kInt64);
  const Tensor a = tg::randn({7}), b = tg::rand({4}), c = tg::randint(INT64_MIN, INT64_MAX, {5});
  tg::manual_seed(99);
  tg::set_rng_state(state);
  CHECK(tg_test::bitwise_equal(tg::randn({7}), a));
  CHECK(tg_test::bitwise_equal(tg::rand({4}), b));
  CHECK(tg::randint(INT64_MIN, INT64_MAX, {5}).values<std::int64_t>() == c.values<std::int64_t>());
  // Separate generators are separate streams.
  tg::Generator one(7), two(7);
  CHECK(one.next_u64() == two.next_u64());
  (void)one.normal();
  two.set_state(one.get_state());
  CHECK(one.normal() == two.normal());
  CHECK_THROWS_WITH_AS(tg::set_rng_state(tg::zeros({3})),
                       "set_rng_state: expected an int64 tensor of 315 values (from get_rng_state), got float32 [3]", tg::Error);
  Tensor bad = state.clone();
  bad.values_mut<std::int64_t>()(312) = 999;
  CHECK_THROWS_WITH_AS(tg::set_rng_state(bad), doctest::Contains("set_rng_state: the tensor is not a generator state (position 999"),
                       tg::Error);
}

TEST_CASE("Shape: a small vector, inline up to 4 dims and on the heap beyond") {
  tg::Shape inline_shape{2, 3, 4};
  tg::Shape heap_shape{1, 2, 3, 4, 5, 6};
  CHECK(inline_shape.size() == 3);
  CHECK(heap_shape.capacity() >= 6);
  tg::Shape copied = heap_shape;
  CHECK(copied == heap_shape);
  tg::Shape moved = std::move(copied);
  CHECK(moved == heap_shape);
  CHECK(copied.empty());  // NOLINT: a moved-from Shape is empty
  moved = inline_shape;   // heap storage reused for fewer dims
  CHECK(moved == inline_shape);
  moved.insert(moved.begin() + 1, 7);
  CHECK(moved == tg::Shape{2, 7, 3, 4});
  moved.push_back(9);
  CHECK(moved == tg::Shape{2, 7, 3, 4, 9});
  moved.erase(moved.begin(), moved.begin() + 2);
  CHECK(moved == tg::Shape{3, 4, 9});
  CHECK(tg::Shape{1, 2} < tg::Shape{1, 3});
  const std::vector<int> dims{5, 6};
  CHECK(tg::Shape(dims.begin(), dims.end()) == tg::Shape{5, 6});
  std::swap(moved, heap_shape);
  CHECK(moved.size() == 6);
  CHECK(heap_shape == tg::Shape{3, 4, 9});
  CHECK_THROWS_AS(heap_shape.at(3), std::out_of_range);

  // Six dims through xtensor's loops (the shape and the strides live on the heap).
  const Tensor x = tg::arange(720, tg::kFloat64).reshape({1, 2, 3, 4, 5, 6});
  CHECK(x.shape() == tg::Shape{1, 2, 3, 4, 5, 6});
  CHECK(tg::sum(x, {3, 5}).shape() == tg::Shape{1, 2, 3, 5});
  CHECK(tg::sum(x).item() == doctest::Approx(719.0 * 720.0 / 2));
  CHECK(x.permute({5, 4, 3, 2, 1, 0}).values<double>()(1, 0, 0, 0, 0, 0) == 1.0);
}

// cat, stack, narrow and sum(int64) each have a path for short runs (an output row under 16
// values, copied value by value) and one for long runs (memmove, vectorised adds); both are
// checked here against an element-by-element reference, for every dim, forward and backward.
TEST_CASE("cat, stack, narrow and integer sums agree with the definition on short and long rows") {
  tg::manual_seed(3);
  // Element (i, j, k) of a (d0, d1, d2) tensor's flat values.
  auto at = [](const std::vector<double>& v, const tg::Shape& s, std::size_t i, std::size_t j, std::size_t k) {
    return v[(i * s[1] + j) * s[2] + k];
  };
  for (std::size_t w : {1, 2, 3, 7, 15, 16, 17, 40}) {
    INFO("last dim ", w);
    for (std::size_t d = 0; d < 3; ++d) {
      INFO("dim ", d);
      const std::size_t d0 = w < 8 ? 97 : 4;  // short rows: 291 of them, more than a block of 256
      tg::Shape sa{d0, 3, w}, sb{d0, 3, w};
      sb[d] = d == 2 ? w + 1 : 2;  // b is shorter along dim d (along the last: one longer)
      const Tensor a = tg::randn(sa, tg::kFloat64).set_requires_grad();
      const Tensor b = tg::randn(sb, tg::kFloat64).set_requires_grad();
      const Tensor y = tg::cat({a, b, a}, std::int64_t(d));
      tg::Shape sy = sa;
      sy[d] = 2 * sa[d] + sb[d];
      REQUIRE(y.shape() == sy);
      const Tensor g = tg::randn(sy, tg::kFloat64);
      y.backward(g);
      const std::vector<double> va = tg_test::flat(a), vb = tg_test::flat(b), vy = tg_test::flat(y),
                                vg = tg_test::flat(g);
      std::vector<double> ga(va.size(), 0.0), gb(vb.size(), 0.0);
      for (std::size_t i = 0; i < sy[0]; ++i)
        for (std::size_t j = 0; j < sy[1]; ++j)
          for (std::size_t k = 0; k < sy[2]; ++k) {
            std::size_t idx[3] = {i, j, k};
            std::size_t& p = idx[d];  // the position along dim d picks the piece
            const bool in_b = p >= sa[d] && p < sa[d] + sb[d];
            if (p >= sa[d] + sb[d]) p -= sa[d] + sb[d]; else if (in_b) p -= sa[d];
            const double expected = in_b ? at(vb, sb, idx[0], idx[1], idx[2]) : at(va, sa, idx[0], idx[1], idx[2]);
            CHECK(vy[(i * sy[1] + j) * sy[2] + k] == expected);
            const double gy = vg[(i * sy[1] + j) * sy[2] + k];
            if (in_b) gb[(idx[0] * sb[1] + idx[1]) * sb[2] + idx[2]] += gy;
            else ga[(idx[0] * sa[1] + idx[1]) * sa[2] + idx[2]] += gy;
          }
      tg_test::check_close(a.grad(), ga, 1e-12);
      tg_test::check_close(b.grad(), gb, 1e-12);
    }
    // stack along the last dim, float32 and int64.
    const Tensor p = tg::randn({5, w}), q = tg::randn({5, w});
    const std::vector<double> vp = tg_test::flat(p), vq = tg_test::flat(q);
    const std::vector<double> vs = tg_test::flat(tg::stack({p, q}, -1));
    const Tensor ints = tg::stack({tg::randint(0, 1, {5, w}), tg::ones({5, w}).to(tg::kInt64)}, -1);
    const std::vector<double> vi = tg_test::flat(ints);
    for (std::size_t i = 0; i < 5 * w; ++i) {
      CHECK(vs[2 * i] == vp[i]);
      CHECK(vs[2 * i + 1] == vq[i]);
      CHECK(vi[2 * i] == 0.0);
      CHECK(vi[2 * i + 1] == 1.0);
    }
    // narrow of the last dim: its gradient scattered into zeros, then (a second narrow over the
    // same input) added into the gradient the engine holds.
    const Tensor x = tg::randn({6, w + 2}, tg::kFloat64).set_requires_grad();
    const Tensor n1 = tg::narrow(x, 1, 1, std::int64_t(w)), n2 = tg::narrow(x, 1, 0, std::int64_t(w));
    const std::vector<double> vx = tg_test::flat(x), v1 = tg_test::flat(n1), v2 = tg_test::flat(n2);
    const Tensor g1 = tg::randn({6, w}, tg::kFloat64), g2 = tg::randn({6, w}, tg::kFloat64);
    tg::sum(n1 * g1 + n2 * g2).backward();
    const std::vector<double> vg1 = tg_test::flat(g1), vg2 = tg_test::flat(g2);
    std::vector<double> gx(6 * (w + 2), 0.0);
    for (std::size_t i = 0; i < 6; ++i)
      for (std::size_t k = 0; k < w; ++k) {
        CHECK(v1[i * w + k] == vx[i * (w + 2) + k + 1]);
        CHECK(v2[i * w + k] == vx[i * (w + 2) + k]);
        gx[i * (w + 2) + k + 1] += vg1[i * w + k];
        gx[i * (w + 2) + k] += vg2[i * w + k];
      }
    tg_test::check_close(x.grad(), gx, 1e-12);
  }
  // The int64 sum of everything, past one block of values, and over some dims.
  const Tensor counts = tg::randint(-5, 6, {300, 400});
  const std::vector<double> vc = tg_test::flat(counts);
  double total = 0;
  std::vector<double> rows(300, 0.0);
  for (std::size_t i = 0; i < vc.size(); ++i) {
    total += vc[i];
    rows[i / 400] += vc[i];
  }
  CHECK(tg::sum(counts).dtype() == tg::kInt64);
  CHECK(tg::sum(counts).item() == total);
  tg_test::check_close(tg::sum(counts, 1), rows, 0.0);
}

// index_select's gather copies rows under 16 values value by value and longer ones whole; max
// walks (outer, inner) positions. Both along every dim of a 3-D tensor, values and gradients,
// against the definition.
TEST_CASE("index_select and max along every dim agree with the definition on short and long rows") {
  tg::manual_seed(4);
  for (std::size_t w : {1, 2, 4, 15, 16, 33}) {
    const tg::Shape s{5, 3, w};
    for (std::size_t d = 0; d < 3; ++d) {
      INFO("last dim ", w, ", dim ", d);
      const Tensor x = tg::randn(s, tg::kFloat64).set_requires_grad();
      const std::vector<double> vx = tg_test::flat(x);
      auto at = [&](std::size_t i, std::size_t j, std::size_t k) { return vx[(i * s[1] + j) * s[2] + k]; };
      // Repeated and out-of-order rows: the gather's copies and the scatter-add's sums.
      const std::vector<std::int64_t> picks{std::int64_t(s[d]) - 1, 0, std::int64_t(s[d]) - 1, 0};
      const Tensor y = tg::index_select(x, std::int64_t(d), Tensor(picks, {picks.size()}));
      const Tensor g = tg::randn(y.shape(), tg::kFloat64);
      const auto [best, where] = tg::max(x, std::int64_t(d));
      const Tensor gb = tg::randn(best.shape(), tg::kFloat64);
      (tg::sum(y * g) + tg::sum(best * gb)).backward();
      const std::vector<double> vy = tg_test::flat(y), vg = tg_test::flat(g), vb = tg_test::flat(best),
                                vw = tg_test::flat(where), vgb = tg_test::flat(gb);
      std::vector<double> gx(vx.size(), 0.0);
      tg::Shape sy = s;
      sy[d] = picks.size();
      for (std::size_t i = 0; i < sy[0]; ++i)
        for (std::size_t j = 0; j < sy[1]; ++j)
          for (std::size_t k = 0; k < sy[2]; ++k) {
            std::size_t idx[3] = {i, j, k};
            idx[d] = std::size_t(picks[idx[d]]);
            const std::size_t out = (i * sy[1] + j) * sy[2] + k;
            CHECK(vy[out] == at(idx[0], idx[1], idx[2]));
            gx[(idx[0] * s[1] + idx[1]) * s[2] + idx[2]] += vg[out];
          }
      // max: the first largest value along d, its index, and the gradient to that position.
      tg::Shape sb = s;
      sb[d] = 1;
      for (std::size_t i = 0; i < sb[0]; ++i)
        for (std::size_t j = 0; j < sb[1]; ++j)
          for (std::size_t k = 0; k < sb[2]; ++k) {
            std::size_t idx[3] = {i, j, k}, top = 0;
            double largest = -INFINITY;
            for (std::size_t r = 0; r < s[d]; ++r) {
              idx[d] = r;
              if (at(idx[0], idx[1], idx[2]) > largest) largest = at(idx[0], idx[1], idx[2]), top = r;
            }
            const std::size_t out = (i * sb[1] + j) * sb[2] + k;
            CHECK(vb[out] == largest);
            CHECK(vw[out] == double(top));
            idx[d] = top;
            gx[(idx[0] * s[1] + idx[1]) * s[2] + idx[2]] += vgb[out];
          }
      tg_test::check_close(x.grad(), gx, 1e-12);
    }
  }
}

// Along dim 0 with many picks (an embedding's gradient), the scatter-add cuts each row into pieces
// that the threads share, the last one shorter: every value still sums its picks in order.
TEST_CASE("index_select along dim 0 with many repeated picks: the gradient equals the sums in order") {
  tg::manual_seed(5);
  for (tg::DType dtype : {tg::kFloat32, tg::kFloat64})
    for (std::size_t width : {130, 700}) {
      CAPTURE(width);
      CAPTURE(tg::dtype_name(dtype));
      const Tensor x = tg::randn({50, width}, dtype).set_requires_grad();
      const Tensor picks = tg::randint(0, 50, {300});
      const Tensor y = tg::index_select(x, 0, picks);
      const Tensor g = tg::randn(y.shape(), dtype);
      y.backward(g);
      const std::vector<double> vx = tg_test::flat(x), vy = tg_test::flat(y), vg = tg_test::flat(g),
                                vp = tg_test::flat(picks), dx = tg_test::flat(x.grad());
      std::vector<double> want(vx.size(), 0.0);
      for (std::size_t k = 0; k < 300; ++k)
        for (std::size_t i = 0; i < width; ++i) {
          const std::size_t row = std::size_t(vp[k]);
          CHECK(vy[k * width + i] == vx[row * width + i]);
          // in order over k, rounded to the dtype at every step as the kernel does
          want[row * width + i] = dtype == tg::kFloat32 ? double(float(want[row * width + i]) + float(vg[k * width + i]))
                                                        : want[row * width + i] + vg[k * width + i];
        }
      for (std::size_t i = 0; i < want.size(); ++i) CHECK(dx[i] == want[i]);
    }
}

// permute copies rows whole when the last dim stays last (value by value under 16), transposes
// tiny matrices value by value and larger ones in tiles: every order of three dims, sizes on both
// sides of those limits, values and gradients against the definition.
TEST_CASE("permute agrees with the definition for every order, on tiny and tiled shapes") {
  tg::manual_seed(5);
  const std::vector<std::vector<std::int64_t>> orders{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  // Last dims of 1, 2 and 4 values: rows of 8 or 16 bytes that stay last are moved whole, through
  // tiles whose edges (65, 67, 70) do not fall on a tile's. Tiny matrices in a row, of sizes the
  // compiler knows (3, 4) and does not (5, 7), over more values than one task takes.
  for (const tg::Shape& s : {tg::Shape{7, 2, 3}, tg::Shape{3, 9, 2}, tg::Shape{2, 70, 5}, tg::Shape{4, 17, 66},
                             tg::Shape{67, 65, 2}, tg::Shape{5, 33, 4}, tg::Shape{33, 70, 1}, tg::Shape{6000, 3, 4},
                             tg::Shape{41, 5, 7}}) {
    for (tg::DType dtype : {tg::kFloat32, tg::kFloat64, tg::kInt64}) {
      const bool floating = dtype != tg::kInt64;
      Tensor x = floating ? tg::randn(s, dtype).set_requires_grad() : tg::randint(-1000, 1000, s);
      const std::vector<double> vx = tg_test::flat(x);
      for (const auto& order : orders) {
        INFO("shape ", tg::shape_str(s), " order ", order[0], order[1], order[2]);
        x.set_grad(Tensor());
        const Tensor y = x.permute(order);
        const Tensor g = floating ? tg::randn(y.shape(), dtype) : y;
        if (floating) y.backward(g);
        const std::vector<double> vy = tg_test::flat(y), vg = tg_test::flat(g);
        const std::vector<double> gx = floating ? tg_test::flat(x.grad()) : vx;
        const tg::Shape sy = y.shape();
        for (std::size_t i = 0; i < sy[0]; ++i)
          for (std::size_t j = 0; j < sy[1]; ++j)
            for (std::size_t k = 0; k < sy[2]; ++k) {
              std::size_t idx[3];
              idx[order[0]] = i, idx[order[1]] = j, idx[order[2]] = k;
              const std::size_t in = (idx[0] * s[1] + idx[1]) * s[2] + idx[2], out = (i * sy[1] + j) * sy[2] + k;
              CHECK(vy[out] == vx[in]);
              CHECK(gx[in] == vg[out]);
            }
      }
    }
  }
}
