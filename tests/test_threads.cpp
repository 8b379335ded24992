// Same program, same seed, same bits with 1 thread and with 2.
#include "helpers.hpp"

using tg::Tensor;

namespace {

struct Results {
  std::vector<Tensor> tensors;
};

// A computation big enough that every parallel path splits: large elementwise maps, row
// broadcasts, whole and per-dim sums, softmax, a GEMM that is cut into blocks, and their backward.
Results run_model() {
  tg::manual_seed(7);
  Tensor x = tg::randn({512, 300});
  Tensor w = tg::randn({300, 200}).set_requires_grad();
  Tensor b = tg::randn({200}).set_requires_grad();
  Tensor h = tg::tanh(tg::matmul(x, w) + b);
  Tensor p = tg::log_softmax(h * 3.0, 1);
  Tensor loss = tg::mean(p * p) + tg::sum(tg::var(h, {0})) + tg::sum(tg::mean(h, {1}));
  loss.backward();
  Tensor big = tg::randn({3000000});
  // The row kernels (softmax, cross-entropy, layer_norm) and the fused activation backwards.
  Tensor logits = tg::randn({600, 1000}).set_requires_grad();
  Tensor ln_weight = tg::randn({1000}).set_requires_grad();
  Tensor rows = tg::layer_norm(logits, {1000}, ln_weight, Tensor(), 1e-5);
  Tensor row_loss = tg::cross_entropy(rows, tg::randint(0, 1000, {600})) + tg::mean(tg::softmax(rows, 1) * rows) +
                    tg::mean(tg::gelu(rows) + tg::sigmoid(rows) * tg::relu(rows));
  row_loss.backward();
  return {{loss, h, p, w.grad(), b.grad(), tg::sum(big), tg::sum(tg::reshape(big, {3000, 1000}), {0}),
           tg::sum(tg::reshape(big, {1000, 3000}), {1}), row_loss, rows, logits.grad(), ln_weight.grad()}};
}

}  // namespace

TEST_CASE("results are bitwise identical with 1 and 2 threads") {
  tg::set_num_threads(1);
  CHECK(tg::get_num_threads() == 1);
  const Results one = run_model();
  tg::set_num_threads(2);
  CHECK(tg::get_num_threads() == 2);
  const Results two = run_model();
  REQUIRE(one.tensors.size() == two.tensors.size());
  for (std::size_t i = 0; i < one.tensors.size(); ++i) {
    INFO("result ", i);
    CHECK(tg_test::bitwise_equal(one.tensors[i], two.tensors[i]));
  }
  CHECK_THROWS_WITH_AS(tg::set_num_threads(0), "set_num_threads: expected at least 1 thread, got 0", tg::Error);
}
