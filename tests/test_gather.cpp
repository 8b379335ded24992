// tg::gather (torch.gather): golden values and gradients from PyTorch, gradcheck, repeats over
// thread counts, int64 input, 0-d and empty indices, errors.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "helpers.hpp"

using tg::Tensor;
using Inputs = std::vector<Tensor>;

// Golden values: /usr/bin/python3 with torch 1.13, float64 (seq as tg_test::seq):
//   x = seq((3, 4, 5), torch.sin, 2.0); y = torch.gather(x, dim, idx) for
//   dim 0, idx (1, 2, 5) (smaller than x in dims 0 and 1); dim 1, idx (3, 3, 2) with repeats;
//   dim -1, idx (2, 1, 7) (longer than x along dim); y.backward(seq(y.shape, torch.cos)); x.grad
TEST_CASE("gather matches PyTorch: smaller and longer indices, repeats accumulate") {
  const Tensor x = tg_test::seq({3, 4, 5}, tg_test::sin_, 2.0);
  struct Golden {
    std::int64_t dim;
    tg::Shape shape;
    std::vector<std::int64_t> index;
    std::vector<double> y, dx;
  };
  const std::vector<Golden> cases{
      {0, {1, 2, 5}, {2, 0, 1, 1, 0, 1, 1, 2, 0, 2},
       {1.4902263209586977, 1.682941969615793, -0.017702618580807752, -1.6924408083503413, -1.5136049906158564, -0.26470350019554606, 1.5251169009592054, 0.247146245490448, 1.9787164932467636, -1.9075053055189437},
       {0, 0.5403023058681398, 0, 0, -0.6536436208636119, 0, 0, 0, -0.14550003380861354, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -0.4161468365471424, -0.9899924966004454, 0, 0.28366218546322625, 0.960170286650366, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0.7539022543433046, 0, -0.9111302618846769, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
      {1, {3, 3, 2}, {3, 3, 0, 3, 3, 1, 1, 1, 1, 1, 2, 0, 0, 2, 0, 2, 0, 2},
       {1.3005756803142337, -0.5758066333301306, 0, -0.5758066333301306, 1.3005756803142337, -0.5588309963978517, -0.26470350019554606, 1.5251169009592054, -0.26470350019554606, 1.5251169009592054, -1.9760632481857237, 1.6733112770721121, 1.4902263209586977, 1.3404583516867494, 1.4902263209586977, 1.3404583516867494, 1.4902263209586977, 1.3404583516867494},
       {-0.4161468365471424, 0, 0, 0, 0, 0, 0.28366218546322625, 0, 0, 0, 0, 0, 0, 0, 0, 0.34635637913638806, -0.44969019073230565, 0, 0, 0, 0, 0.004425697988050785, 0, 0, 0, 0.8146702528417524, -0.15722800754137234, 0, 0, 0, -0.8390715290764524, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.022931696616941055, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -0.12740446946022205, 0, 0, 0, 0, 0, 0, 0, 0}},
      {-1, {2, 1, 7}, {4, 4, 4, 0, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0},
       {-1.5136049906158564, -1.5136049906158564, -1.5136049906158564, 0, 1.682941969615793, 1.8185948536513634, 0.2822400161197344, 1.8258905014552553, 1.8258905014552553, 1.8258905014552553, 1.8258905014552553, 1.8258905014552553, 1.8258905014552553, 1.8258905014552553},
       {-0.9899924966004454, -0.6536436208636119, 0.28366218546322625, 0.960170286650366, 1.1241554693209974, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.6139268677443008, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}};
  for (const Golden& k : cases) {
    INFO("dim ", k.dim);
    const Tensor leaf = x.detach().set_requires_grad();
    const Tensor index(k.index, k.shape);
    const Tensor y = tg::gather(leaf, k.dim, index);
    CHECK(y.shape() == k.shape);
    y.backward(tg_test::seq(y.shape(), tg_test::cos_));
    tg_test::check_special_close(y, k.y, 1e-15);
    tg_test::check_special_close(leaf.grad(), k.dx, 1e-15);
    CHECK(tg_test::bitwise_equal(leaf.gather(k.dim, index), y));  // the method
  }
}

TEST_CASE("gather: gradcheck, thread counts, dtypes, 0-d and empty") {
  tg::manual_seed(41);
  for (std::int64_t dim : {0, 1, 2}) {
    INFO("dim ", dim);
    const Tensor index = tg::randint(0, dim == 0 ? 3 : dim == 1 ? 4 : 5, {2, 3, 4});
    CHECK_GRADCHECK([&](const Inputs& in) { return tg::gather(in[0], dim, index); }, {tg_test::uniform64({3, 4, 5})});
  }
  // Many repeats into few places, large enough to split: 1 and 2 threads give the same bits.
  Tensor big = tg::randn({64, 5000}).set_requires_grad();
  const Tensor picks = tg::randint(0, 50, {64, 20000});
  const Tensor upstream = tg::randn({64, 20000});
  tg::set_num_threads(1);
  tg::gather(big, 1, picks).backward(upstream);
  const Tensor one = big.grad();
  big.set_grad(Tensor());
  tg::set_num_threads(2);
  tg::gather(big, 1, picks).backward(upstream);
  CHECK(tg_test::bitwise_equal(one, big.grad()));
  // int64 values (no gradient), a 0-d input, an empty index.
  const Tensor counts(std::vector<std::int64_t>{10, 11, 12, 13}, {2, 2});
  CHECK(tg::gather(counts, 1, Tensor(std::vector<std::int64_t>{1, 0, 0}, {1, 3})).to_vector<std::int64_t>() ==
        std::vector<std::int64_t>{11, 10, 10});
  CHECK(tg::gather(tg::full({}, 2.5), 0, Tensor(std::vector<std::int64_t>{0}, {})).item() == 2.5);
  CHECK(tg::gather(tg::ones({2, 3}), 1, tg::zeros({2, 0}, tg::kInt64)).shape() == tg::Shape{2, 0});
}

// float32 along the last dim takes vector gathers (16 entries at a time, then 8, then single
// ones): every row length up to 40 against float64's plain loop, and an entry out of range is
// found at every position of a row, whatever its size; and the gradient against the sums in
// index order.
TEST_CASE("gather along the last dim: every row length, and a bad entry at every position") {
  // Rows of up to 64 floats take their values from registers (gather_short_row), longer ones by
  // vgather: sizes on both sides of 16, 32 and 64, index rows of 0-40 entries (whole batches of 16
  // and tails), each against float64's scalar path.
  tg::manual_seed(43);
  for (std::int64_t size : {1, 15, 16, 17, 31, 32, 33, 37, 63, 64, 65, 200}) {
    const Tensor x = tg::randn({3, std::size_t(size)});
    for (std::int64_t n = 0; n <= 40; ++n) {
      CAPTURE(size);
      CAPTURE(n);
      const Tensor index = tg::randint(0, size, {3, std::size_t(n)});
      CHECK(tg_test::bitwise_equal(tg::gather(x, 1, index), tg::gather(x.to(tg::kFloat64), 1, index).to(tg::kFloat32)));
      const Tensor leaf = x.to(tg::kFloat64).set_requires_grad(), upstream = tg::randn({3, std::size_t(n)}, tg::kFloat64);
      tg::gather(leaf, 1, index).backward(upstream);
      std::vector<double> expected(std::size_t(3 * size), 0.0);
      for (std::size_t k = 0; k < std::size_t(3 * n); ++k)
        expected[k / std::size_t(n) * std::size_t(size) + std::size_t(index.data<std::int64_t>()[k])] +=
            upstream.data<double>()[k];
      CHECK(leaf.grad().to_vector<double>() == expected);
      for (std::int64_t bad : {size, std::int64_t(-1), std::int64_t(1) << 40})
        for (std::int64_t at = 0; at < n; ++at) {
          Tensor wrong = index.clone();
          wrong.mutable_data<std::int64_t>()[2 * n + at] = bad;  // in the last row
          const std::string message = "gather: index " + std::to_string(bad) + " is out of range for dim 1 of size " +
                                      std::to_string(size) + " in [3, " + std::to_string(size) + "]";
          CHECK_THROWS_WITH_AS(tg::gather(x, 1, wrong), message.c_str(), tg::Error);
        }
    }
  }
}

namespace {

// The place in a 3-D input of shape a of entry k of a 3-D index of shape index along dim.
std::size_t place_of(const tg::Shape& a, const tg::Shape& index, std::size_t dim, std::size_t k, std::int64_t entry) {
  std::size_t c[3];
  for (std::size_t d = 3; d-- > 0; k /= index[d]) c[d] = k % index[d];
  c[dim] = std::size_t(entry);
  return (c[0] * a[1] + c[1]) * a[2] + c[2];
}

}  // namespace

// gather's gradient and the scatter ops' outputs write each slab's own run of an input over 1 MB
// (zeros, or a's values) just before the slab's entries when the index has the input's sizes in
// every dim but dim, and the whole output ahead otherwise (index smaller in another dim, runs over
// 256 KB, a smaller input): both ways along every dim, float32 and float64, 1 and 2 threads, bit
// for bit against the sums (and scatter's last writes) in index order. The allocator's cache is
// filled with 7s first, so a place that nothing wrote shows.
TEST_CASE("gather's gradient and scatter's outputs: the index covering the input or not, along every dim") {
  struct Case {
    tg::Shape a;
    std::size_t dim;
    tg::Shape index;
  };
  const std::vector<Case> cases{
      {{40, 30, 300}, 1, {40, 20, 300}}, {{40, 30, 300}, 2, {40, 30, 50}},  // covering, 1.4 MB in float32
      {{40, 30, 300}, 0, {50, 30, 300}},                                    // one slab: a run of the whole input
      {{40, 30, 300}, 1, {39, 20, 300}}, {{40, 30, 300}, 1, {40, 20, 299}},  // smaller in another dim
      {{40, 30, 300}, 2, {40, 29, 50}}, {{40, 30, 300}, 2, {1, 30, 50}},
      {{8, 40000, 1}, 1, {8, 50, 1}},  // runs of 160 KB in float32 (each its own), 320 KB in float64
      {{3, 4, 5}, 0, {6, 4, 5}}, {{3, 4, 5}, 1, {3, 2, 5}}, {{3, 4, 5}, 2, {3, 4, 7}},  // small, covering
      {{3, 4, 5}, 0, {2, 4, 4}}, {{3, 4, 5}, 2, {3, 3, 7}}};
  tg::manual_seed(45);
  for (const Case& c : cases)
    for (tg::DType dtype : {tg::kFloat32, tg::kFloat64})
      for (int threads : {1, 2}) {
        CAPTURE(tg::shape_str(c.a));
        CAPTURE(c.dim);
        CAPTURE(tg::shape_str(c.index));
        CAPTURE(threads);
        tg::set_num_threads(threads);
        const auto dim = std::int64_t(c.dim);
        const Tensor a = tg::randn(c.a, dtype), src = tg::randn(c.index, dtype);
        const Tensor index = tg::randint(0, std::int64_t(c.a[c.dim]), c.index);
        const std::vector<std::int64_t> at = index.to_vector<std::int64_t>();
        const std::vector<double> x = a.to(tg::kFloat64).to_vector<double>(), s = src.to(tg::kFloat64).to_vector<double>();
        auto expect = [&]<class T>(T, int kind) {  // 0: gather's gradient of src, 1: scatter_add, 2: scatter
          std::vector<T> out(x.size(), T(0));
          if (kind > 0) std::copy(x.begin(), x.end(), out.begin());
          for (std::size_t k = 0; k < at.size(); ++k) {
            T& place = out[place_of(c.a, c.index, c.dim, k, at[k])];
            place = kind == 2 ? T(s[k]) : T(place + T(s[k]));
          }
          return std::vector<double>(out.begin(), out.end());
        };
        auto check = [&](int kind, auto&& make) {
          CAPTURE(kind);
          (void)tg::full(c.a, 7.0, dtype);  // the cache's next block of this size holds 7s
          const std::vector<double> got = make().to(tg::kFloat64).template to_vector<double>();
          CHECK(got == (dtype == tg::kFloat32 ? expect(float(0), kind) : expect(double(0), kind)));
        };
        check(0, [&] {
          const Tensor leaf = a.detach().set_requires_grad();
          tg::gather(leaf, dim, index).backward(src);
          return leaf.grad();
        });
        check(1, [&] { return tg::scatter_add(a, dim, index, src); });
        check(2, [&] { return tg::scatter(a, dim, index, src); });
      }
  tg::set_num_threads(2);
}

TEST_CASE("gather: errors name the op, the index and the shapes") {
  const Tensor x = tg::ones({2, 3});
  CHECK_THROWS_WITH_AS(tg::gather(x, 1, tg::zeros({2, 3})), "gather: expected an int64 index, got float32 [2, 3]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::gather(x, 1, tg::zeros({6}, tg::kInt64)),
                       "gather: index [6] must have as many dims as the input [2, 3]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::gather(x, 1, tg::zeros({3, 1}, tg::kInt64)),
                       "gather: index [3, 1] is larger than the input [2, 3] in dim 0", tg::Error);
  CHECK_THROWS_WITH_AS(tg::gather(x, 1, Tensor(std::vector<std::int64_t>{0, 3}, {2, 1})),
                       "gather: index 3 is out of range for dim 1 of size 3 in [2, 3]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::gather(x, -1, Tensor(std::vector<std::int64_t>{-1, 0}, {2, 1})),
                       "gather: index -1 is out of range for dim -1 of size 3 in [2, 3]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::gather(tg::ones({2, 0}), 1, tg::zeros({2, 1}, tg::kInt64)),
                       "gather: index 0 is out of range for dim 1 of size 0 in [2, 0]", tg::Error);
  CHECK_THROWS_AS(tg::gather(x, 2, tg::zeros({2, 3}, tg::kInt64)), tg::Error);
}
