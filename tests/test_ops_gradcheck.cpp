// float64 finite-difference gradcheck of every op, driven from tables of ops and shapes that
// include broadcast shapes and every input of multi-input ops.
#include <functional>

#include "helpers.hpp"

using tg::Tensor;
using tg_test::away_from_zero64;
using tg_test::uniform64;
using Inputs = std::vector<Tensor>;

namespace {

struct Case {
  std::string name;
  std::function<Tensor(const Inputs&)> fn;
  Inputs inputs;
};

void run(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    INFO("op case: ", c.name);
    CHECK_GRADCHECK(c.fn, c.inputs);
  }
}

Tensor positive64(const tg::Shape& shape) { return uniform64(shape, 0.5, 1.5); }

}  // namespace

TEST_CASE("gradcheck: elementwise arithmetic, with broadcasting") {
  tg::manual_seed(1);
  run({
      {"add", [](const Inputs& x) { return x[0] + x[1]; }, {uniform64({2, 3}), uniform64({2, 3})}},
      {"add (2,3)+(3)", [](const Inputs& x) { return x[0] + x[1]; }, {uniform64({2, 3}), uniform64({3})}},
      {"add (2,1,3)+(4,1)", [](const Inputs& x) { return x[0] + x[1]; }, {uniform64({2, 1, 3}), uniform64({4, 1})}},
      {"add (2,3)+()", [](const Inputs& x) { return x[0] + x[1]; }, {uniform64({2, 3}), uniform64({})}},
      {"sub (3,1)-(1,4)", [](const Inputs& x) { return x[0] - x[1]; }, {uniform64({3, 1}), uniform64({1, 4})}},
      {"sub (2,3,4)-(3,1)", [](const Inputs& x) { return x[0] - x[1]; }, {uniform64({2, 3, 4}), uniform64({3, 1})}},
      {"mul", [](const Inputs& x) { return x[0] * x[1]; }, {uniform64({2, 3}), uniform64({2, 3})}},
      {"mul (4,3)*(3)", [](const Inputs& x) { return x[0] * x[1]; }, {uniform64({4, 3}), uniform64({3})}},
      {"mul ()*(2,3)", [](const Inputs& x) { return x[0] * x[1]; }, {uniform64({}), uniform64({2, 3})}},
      {"div", [](const Inputs& x) { return x[0] / x[1]; }, {uniform64({2, 3}), away_from_zero64({2, 3})}},
      {"div (2,3)/(3)", [](const Inputs& x) { return x[0] / x[1]; }, {uniform64({2, 3}), away_from_zero64({3})}},
      {"div (2,1,3)/(4,1)", [](const Inputs& x) { return x[0] / x[1]; }, {uniform64({2, 1, 3}), away_from_zero64({4, 1})}},
      {"div (4,1)/(1,3)", [](const Inputs& x) { return x[0] / x[1]; }, {uniform64({4, 1}), away_from_zero64({1, 3})}},
      {"add scalar", [](const Inputs& x) { return x[0] + 2.0; }, {uniform64({5})}},
      {"sub scalar-tensor", [](const Inputs& x) { return 3.0 - x[0]; }, {uniform64({5})}},
      {"mul scalar", [](const Inputs& x) { return x[0] * -1.5; }, {uniform64({2, 2})}},
      {"div by scalar", [](const Inputs& x) { return x[0] / 2.0; }, {uniform64({2, 2})}},
      {"div scalar by tensor", [](const Inputs& x) { return 2.0 / x[0]; }, {away_from_zero64({2, 2})}},
      {"neg", [](const Inputs& x) { return -x[0]; }, {uniform64({3, 2})}},
  });
}

TEST_CASE("gradcheck: powers, exponentials and comparisons") {
  tg::manual_seed(2);
  run({
      {"pow tensor", [](const Inputs& x) { return tg::pow(x[0], x[1]); }, {positive64({2, 3}), uniform64({2, 3})}},
      {"pow (2,3)^(3)", [](const Inputs& x) { return tg::pow(x[0], x[1]); }, {positive64({2, 3}), uniform64({3})}},
      {"pow scalar 3", [](const Inputs& x) { return tg::pow(x[0], 3.0); }, {uniform64({4})}},
      {"pow scalar 0.5", [](const Inputs& x) { return tg::pow(x[0], 0.5); }, {positive64({4})}},
      {"pow scalar 0", [](const Inputs& x) { return tg::pow(x[0], 0.0); }, {uniform64({4})}},
      {"exp", [](const Inputs& x) { return tg::exp(x[0]); }, {uniform64({2, 3})}},
      {"log", [](const Inputs& x) { return tg::log(x[0]); }, {positive64({2, 3})}},
      {"sqrt", [](const Inputs& x) { return tg::sqrt(x[0]); }, {positive64({2, 3})}},
      {"rsqrt", [](const Inputs& x) { return tg::rsqrt(x[0]); }, {positive64({2, 3})}},
      {"abs", [](const Inputs& x) { return tg::abs(x[0]); }, {away_from_zero64({2, 3})}},
      {"sin", [](const Inputs& x) { return tg::sin(x[0]); }, {uniform64({2, 3}, -3, 3)}},
      {"cos", [](const Inputs& x) { return tg::cos(x[0]); }, {uniform64({2, 3}, -3, 3)}},
      {"clamp both", [](const Inputs& x) { return tg::clamp(x[0], -0.7, 0.7); }, {away_from_zero64({3, 4})}},
      {"clamp min", [](const Inputs& x) { return tg::clamp(x[0], 0.0, std::nullopt); }, {away_from_zero64({6})}},
      {"maximum", [](const Inputs& x) { return tg::maximum(x[0], x[1]); }, {uniform64({2, 3}), uniform64({2, 3})}},
      {"maximum (2,3),(3)", [](const Inputs& x) { return tg::maximum(x[0], x[1]); }, {uniform64({2, 3}), uniform64({3})}},
      {"minimum", [](const Inputs& x) { return tg::minimum(x[0], x[1]); }, {uniform64({2, 3}), uniform64({1, 3})}},
      {"where (2,3),(2,3),(3)",
       [](const Inputs& x) { return tg::where(tg::Tensor({{1, 0, 1}, {0, 0, 1}}), x[0], x[1]); },
       {uniform64({2, 3}), uniform64({3})}},
  });
}

TEST_CASE("gradcheck: reductions") {
  tg::manual_seed(3);
  run({
      {"sum all", [](const Inputs& x) { return tg::sum(x[0]); }, {uniform64({2, 3, 4})}},
      {"sum dim 0", [](const Inputs& x) { return tg::sum(x[0], {0}); }, {uniform64({3, 4})}},
      {"sum dims {0,2} keepdim", [](const Inputs& x) { return tg::sum(x[0], {0, 2}, true); }, {uniform64({2, 3, 4})}},
      {"sum dim -1", [](const Inputs& x) { return tg::sum(x[0], {-1}); }, {uniform64({2, 3, 4})}},
      {"mean all", [](const Inputs& x) { return tg::mean(x[0]); }, {uniform64({3, 4})}},
      {"mean dim 1 keepdim", [](const Inputs& x) { return tg::mean(x[0], {1}, true); }, {uniform64({3, 4})}},
      {"var unbiased dim 1", [](const Inputs& x) { return tg::var(x[0], {1}); }, {uniform64({3, 4})}},
      {"var biased all", [](const Inputs& x) { return tg::var(x[0], {}, false); }, {uniform64({3, 4})}},
      {"std dim 0", [](const Inputs& x) { return tg::std(x[0], {0}); }, {uniform64({3, 4})}},
      {"std biased keepdim", [](const Inputs& x) { return tg::std(x[0], {1}, false, true); }, {uniform64({3, 4})}},
      {"max all", [](const Inputs& x) { return tg::max(x[0]); }, {uniform64({3, 4})}},
      {"min all", [](const Inputs& x) { return tg::min(x[0]); }, {uniform64({3, 4})}},
      {"max dim 1", [](const Inputs& x) { return std::get<0>(tg::max(x[0], 1)); }, {uniform64({3, 4})}},
      {"min dim 0 keepdim", [](const Inputs& x) { return std::get<0>(tg::min(x[0], 0, true)); }, {uniform64({3, 4, 2})}},
  });
}

TEST_CASE("gradcheck: matmul in every supported rank") {
  tg::manual_seed(4);
  auto mm = [](const Inputs& x) { return tg::matmul(x[0], x[1]); };
  run({
      {"(4)·(4)", mm, {uniform64({4}), uniform64({4})}},
      {"(3,4)·(4)", mm, {uniform64({3, 4}), uniform64({4})}},
      {"(4)·(4,2)", mm, {uniform64({4}), uniform64({4, 2})}},
      {"(3,4)·(4,2)", mm, {uniform64({3, 4}), uniform64({4, 2})}},
      {"(2,3,4)·(2,4,5)", mm, {uniform64({2, 3, 4}), uniform64({2, 4, 5})}},
      {"(2,3,4)·(4,5)", mm, {uniform64({2, 3, 4}), uniform64({4, 5})}},
      {"(3,4)·(2,4,5)", mm, {uniform64({3, 4}), uniform64({2, 4, 5})}},
      {"(1,3,4)·(2,4,5)", mm, {uniform64({1, 3, 4}), uniform64({2, 4, 5})}},
      {"(2,3,4)·(4)", mm, {uniform64({2, 3, 4}), uniform64({4})}},
      {"(2,1,3,4)·(3,4,2) broadcast", mm, {uniform64({2, 1, 3, 4}), uniform64({3, 4, 2})}},
      {"(3,1,2,3)·(1,2,3,2) both broadcast", mm, {uniform64({3, 1, 2, 3}), uniform64({1, 2, 3, 2})}},
      {"(4)·(2,2,4,3)", mm, {uniform64({4}), uniform64({2, 2, 4, 3})}},
      {"(2,2,3,4)·(4)", mm, {uniform64({2, 2, 3, 4}), uniform64({4})}},
      {"(2,1,2,3,2)·(2,2,3)", mm, {uniform64({2, 1, 2, 3, 2}), uniform64({2, 2, 3})}},
      // products past 512 multiply-adds (gemm, not the tiny loop), each operand shared by batches
      {"(2,1,9,10)·(3,10,11) broadcast", mm, {uniform64({2, 1, 9, 10}), uniform64({3, 10, 11})}},
      {"(2,3,1,2,3)·(3,4,3,2) broadcast", mm, {uniform64({2, 3, 1, 2, 3}), uniform64({3, 4, 3, 2})}},
  });
}

TEST_CASE("gradcheck: shape ops") {
  tg::manual_seed(5);
  run({
      {"transpose", [](const Inputs& x) { return tg::transpose(x[0], 0, 2); }, {uniform64({2, 3, 4})}},
      {"permute", [](const Inputs& x) { return tg::permute(x[0], {2, 0, 1}); }, {uniform64({2, 3, 4})}},
      {"reshape -1", [](const Inputs& x) { return tg::reshape(x[0], {4, -1}); }, {uniform64({2, 3, 4})}},
      {"flatten 1", [](const Inputs& x) { return tg::flatten(x[0], 1); }, {uniform64({2, 3, 4})}},
      {"squeeze", [](const Inputs& x) { return tg::squeeze(x[0]); }, {uniform64({2, 1, 3, 1})}},
      {"squeeze dim", [](const Inputs& x) { return tg::squeeze(x[0], 1); }, {uniform64({2, 1, 3, 1})}},
      {"unsqueeze", [](const Inputs& x) { return tg::unsqueeze(x[0], -1); }, {uniform64({2, 3})}},
      {"expand", [](const Inputs& x) { return tg::expand(x[0], {2, 3, 4}); }, {uniform64({3, 1})}},
      {"cat dim 1", [](const Inputs& x) { return tg::cat({x[0], x[1], x[2]}, 1); },
       {uniform64({2, 1, 3}), uniform64({2, 2, 3}), uniform64({2, 3, 3})}},
      // An input given more than once: its gradient is the sum of its slices, in one pass.
      {"cat repeated dim 0", [](const Inputs& x) { return tg::cat({x[0], x[1], x[0], x[0]}, 0); },
       {uniform64({2, 3, 2}), uniform64({1, 3, 2})}},
      {"cat repeated dim 1", [](const Inputs& x) { return tg::cat({x[0], x[0], x[1]}, 1); },
       {uniform64({2, 2, 3}), uniform64({2, 1, 3})}},
      {"cat repeated dim 2, not a leaf", [](const Inputs& x) {
         const tg::Tensor y = x[0] * 2.0;
         return tg::cat({y, x[1], y}, 2);
       },
       {uniform64({2, 3, 1}), uniform64({2, 3, 2})}},
      {"stack dim 1", [](const Inputs& x) { return tg::stack({x[0], x[1]}, 1); }, {uniform64({2, 3}), uniform64({2, 3})}},
      {"stack repeated dim 0", [](const Inputs& x) { return tg::stack({x[0], x[0], x[0]}, 0); }, {uniform64({2, 3})}},
      {"narrow", [](const Inputs& x) { return tg::narrow(x[0], 1, 1, 2); }, {uniform64({3, 4})}},
      {"slice step 2", [](const Inputs& x) { return tg::slice(x[0], 0, 1, std::nullopt, 2); }, {uniform64({5, 2})}},
      {"select", [](const Inputs& x) { return tg::select(x[0], 1, -1); }, {uniform64({3, 4})}},
      {"index_select repeats", [](const Inputs& x) { return tg::index_select(x[0], 0, tg::Tensor(std::vector<std::int64_t>{2, 0, 2}, {3})); },
       {uniform64({3, 4})}},
      {"clone", [](const Inputs& x) { return x[0].clone() * 2.0; }, {uniform64({3})}},
  });
}

TEST_CASE("gradcheck: activations and softmax") {
  tg::manual_seed(6);
  run({
      {"relu", [](const Inputs& x) { return tg::relu(x[0]); }, {away_from_zero64({3, 4})}},
      {"leaky_relu", [](const Inputs& x) { return tg::leaky_relu(x[0], 0.1); }, {away_from_zero64({3, 4})}},
      {"sigmoid", [](const Inputs& x) { return tg::sigmoid(x[0]); }, {uniform64({3, 4}, -4, 4)}},
      {"tanh", [](const Inputs& x) { return tg::tanh(x[0]); }, {uniform64({3, 4}, -2, 2)}},
      {"gelu", [](const Inputs& x) { return tg::gelu(x[0]); }, {uniform64({3, 4}, -3, 3)}},
      {"gelu tanh", [](const Inputs& x) { return tg::gelu(x[0], "tanh"); }, {uniform64({3, 4}, -3, 3)}},
      {"softplus", [](const Inputs& x) { return tg::softplus(x[0]); }, {uniform64({3, 4}, -5, 5)}},
      {"softplus beta 2", [](const Inputs& x) { return tg::softplus(x[0], 2.0); }, {uniform64({3, 4}, -5, 5)}},
      {"softplus at 0", [](const Inputs& x) { return tg::softplus(x[0]); }, {tg::zeros({2}, tg::kFloat64).set_requires_grad()}},
      {"softmax dim 1", [](const Inputs& x) { return tg::softmax(x[0], 1); }, {uniform64({3, 4}, -2, 2)}},
      {"softmax dim 0 of 3-D", [](const Inputs& x) { return tg::softmax(x[0], 0); }, {uniform64({3, 2, 2}, -2, 2)}},
      {"log_softmax dim -1", [](const Inputs& x) { return tg::log_softmax(x[0], -1); }, {uniform64({3, 4}, -2, 2)}},
      {"log_softmax dim 1 of 3-D", [](const Inputs& x) { return tg::log_softmax(x[0], 1); }, {uniform64({2, 3, 2}, -2, 2)}},
      {"dropout training (fixed mask)",
       [](const Inputs& x) {
         tg::manual_seed(42);  // the same mask on every call
         return tg::dropout(x[0], 0.3, true);
       },
       {uniform64({4, 5})}},
      {"dropout eval", [](const Inputs& x) { return tg::dropout(x[0], 0.3, false) * 1.0; }, {uniform64({4})}},
  });
}

TEST_CASE("gradcheck: dtype conversion") {
  // Through float32 the function is only exact to ~1e-7, so the finite-difference step is larger.
  tg::manual_seed(7);
  CHECK_GRADCHECK([](const Inputs& x) { return x[0].to(tg::kFloat32).to(tg::kFloat64) * 3.0; }, {uniform64({5})},
                  tg::GradcheckOptions().eps(1e-2).atol(1e-4));
}

TEST_CASE("gradcheck reports the worst element when a gradient is wrong") {
  // A deliberately wrong backward: the analytical gradient of this fake op is 0, the true one 1.
  auto wrong = [](const Inputs& x) {
    Tensor out = x[0].detach() + 0.0;
    return tg::record("wrong", out, {x[0]}, [](const Tensor& g) -> tg::Grads { return {g * 0.0}; });
  };
  const tg::GradcheckResult result = tg::gradcheck(wrong, {uniform64({2, 2})});
  CHECK_FALSE(result.ok);
  CHECK(result.message.find("input 0") != std::string::npos);
  CHECK(result.message.find("analytical 0 vs numerical 1") != std::string::npos);

  CHECK_THROWS_WITH_AS(tg::gradcheck([](const Inputs& x) { return x[0] * 2.0; },
                                     {tg::rand({2}).set_requires_grad()}),
                       doctest::Contains("gradcheck: input 0 is float32"), tg::Error);
}
