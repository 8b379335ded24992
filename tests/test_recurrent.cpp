// Recurrent layers (RNN, GRU, LSTM), their fused cells, and embeddings: values and gradients
// against PyTorch, every configuration against the definition, gradcheck, errors.
#include "helpers.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <tuple>

using tg::Tensor;
using tg_test::check_close;
using tg_test::check_near;
using tg_test::fill;
using tg_test::first;
using tg_test::sum_of_squares;
using tg_test::uniform64;
using Inputs = std::vector<Tensor>;
namespace nn = tg::nn;

namespace {

// nn::RNN by its definition, one step at a time with tg's general ops (matmul, +, tanh or relu,
// stack, cat): what the layer's one input GEMM per layer and fused cells must equal.
std::tuple<Tensor, Tensor> rnn_by_definition(const nn::RNN& rnn, const Tensor& input, const Tensor& h0) {
  const nn::RNNOptions& o = rnn.options;
  const auto params = rnn.named_parameters();
  const std::size_t directions = o.bidirectional() ? 2 : 1;
  Tensor x = o.batch_first() ? tg::transpose(input, 0, 1) : input;  // (L, N, H_in)
  const std::size_t steps = x.shape()[0];
  std::vector<Tensor> last;
  for (std::int64_t layer = 0; layer < o.num_layers(); ++layer) {
    std::vector<Tensor> per_direction;
    for (std::size_t d = 0; d < directions; ++d) {
      const std::string suffix = "_l" + std::to_string(layer) + (d ? "_reverse" : "");
      const Tensor w_ih = tg::transpose(params.at("weight_ih" + suffix), 0, 1);
      const Tensor w_hh = tg::transpose(params.at("weight_hh" + suffix), 0, 1);
      Tensor h = tg::select(h0, 0, std::int64_t(std::size_t(layer) * directions + d));
      std::vector<Tensor> outputs(steps);
      for (std::size_t k = 0; k < steps; ++k) {
        const std::size_t t = d ? steps - 1 - k : k;
        Tensor pre = tg::matmul(tg::select(x, 0, std::int64_t(t)), w_ih) + tg::matmul(h, w_hh);
        if (o.bias()) pre = pre + params.at("bias_ih" + suffix) + params.at("bias_hh" + suffix);
        h = o.nonlinearity() == "relu" ? tg::relu(pre) : tg::tanh(pre);
        outputs[t] = h;
      }
      per_direction.push_back(tg::stack(outputs, 0));
      last.push_back(h);
    }
    x = directions == 1 ? per_direction[0] : tg::cat(per_direction, 2);
  }
  return {o.batch_first() ? tg::transpose(x, 0, 1) : x, tg::stack(last, 0)};
}

}  // namespace

// PyTorch 1.13 (/usr/bin/python3):
//   import torch, math
//   # Every parameter p (in named_parameters order) is set to sin(k + 0.5 * i) / 3 over its flattened
//   # values, k the parameter's position; x[i] = cos(i) / 2; h0[i] = sin(i) / 4 (float64).
//   def fill(module):
//       with torch.no_grad():
//           for k, (name, p) in enumerate(module.named_parameters()):
//               p.copy_((torch.sin(k + 0.5 * torch.arange(p.numel(), dtype=torch.float64)) / 3).reshape(p.shape))
//       return module
//   x = (torch.cos(torch.arange(2 * 5 * 3, dtype=torch.float64)) / 2).reshape(2, 5, 3).requires_grad_()
//   gru = fill(torch.nn.GRU(3, 4, num_layers=2, batch_first=True, bidirectional=True).double())
//   h0 = (torch.sin(torch.arange(4 * 2 * 4, dtype=torch.float64)) / 4).reshape(4, 2, 4)
//   out, hn = gru(x, h0)
//   print("gru_names =", [n for n, _ in gru.named_parameters()])
//   print("gru_out =", out.flatten()[:6].tolist(), "gru_out_sq =", (out * out).sum().item())
//   print("gru_hn =", hn.flatten()[:6].tolist())
//   (out.sum() + (hn * hn).sum()).backward()
//   print("gru_dx =", x.grad.flatten()[:6].tolist())
//   print("gru_dw =", gru.weight_hh_l1_reverse.grad.flatten()[:4].tolist())
//   x.grad = None
//   lstm = fill(torch.nn.LSTM(3, 4, num_layers=1).double())
//   out, (hn, cn) = lstm(x)   # (L=2, N=5, 3), zero initial state
//   print("lstm_out =", out.flatten()[:6].tolist(), "lstm_cn =", cn.flatten()[:4].tolist())
//   (out.sum() + cn.sum()).backward()
//   print("lstm_dx =", x.grad.flatten()[:6].tolist())
//   emb = torch.nn.Embedding(5, 3, padding_idx=1).double()
//   fill(emb)
//   idx = torch.tensor([[0, 1, 4], [1, 2, 0]])
//   e = emb(idx); (e * torch.arange(18, dtype=torch.float64).reshape(2, 3, 3)).sum().backward()
//   print("emb_out =", e.flatten().tolist()); print("emb_dw =", emb.weight.grad.flatten().tolist())
TEST_CASE("GRU and LSTM match PyTorch: names, layers, directions, batch_first, states, gradients") {
  nn::GRU gru(nn::GRUOptions(3, 4).num_layers(2).batch_first(true).bidirectional(true));
  CHECK(gru.named_parameters().keys() == std::vector<std::string>{"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse", "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1", "weight_ih_l1_reverse", "weight_hh_l1_reverse", "bias_ih_l1_reverse", "bias_hh_l1_reverse"});
  fill(gru);
  std::vector<double> xs(30), hs(32);
  for (std::size_t i = 0; i < 30; ++i) xs[i] = std::cos(double(i)) / 2;
  for (std::size_t i = 0; i < 32; ++i) hs[i] = std::sin(double(i)) / 4;
  const Tensor x = Tensor(xs, {2, 5, 3}).set_requires_grad();
  auto [out, hn] = gru.forward(x, Tensor(hs, {4, 2, 4}));
  CHECK(out.shape() == tg::Shape{2, 5, 8});
  check_close(first(out, 6), {0.3553308123681817, 0.015490461747721063, -0.19501911057487054, 0.21281124213438954, -0.1923577808372479, -0.3551827179926061}, 1e-12);
  CHECK(sum_of_squares(out) == doctest::Approx(9.412309408568207).epsilon(1e-12));
  check_close(first(hn, 6), {-0.0918763619277598, 0.3900109491221526, 0.36555650182608046, 0.17295977486101982, -0.07833748030553914, 0.07685860381087323}, 1e-12);
  (tg::sum(out) + tg::sum(hn * hn)).backward();
  check_close(first(x.grad(), 6), {-0.048092467508317825, -0.0638235059820615, -0.06392832426880832, 0.07856644548748488, 0.016507675507878905, -0.04959274916136626}, 1e-12);
  check_close(first(gru.named_parameters().at("weight_hh_l1_reverse").grad(), 4), {0.010732384471885419, 0.0070242524503345985, -0.03733948902099455, -0.015273933615954333}, 1e-12);

  nn::LSTM lstm(3, 4);
  fill(lstm);
  const Tensor x2 = Tensor(xs, {2, 5, 3}).set_requires_grad();  // (L, N, H_in)
  auto [lstm_out, state] = lstm.forward(x2, {Tensor(), Tensor()});
  check_close(first(lstm_out, 6), {0.00044018503137182555, 0.16209009053332285, 0.14425083437937736, 0.056735339975260035, 0.08981165901304772, 0.04471519032371696}, 1e-12);
  check_close(first(std::get<1>(state), 4), {0.05259645082295792, 0.15402111594206147, 0.3131725340922922, 0.3929716112377109}, 1e-12);
  (tg::sum(lstm_out) + tg::sum(std::get<1>(state))).backward();
  check_close(first(x2.grad(), 6), {0.007824965481630412, 0.016746488301998604, 0.02156788673183976, 0.010500669805484142, 0.044448742606118294, 0.06751421301268197}, 1e-12);

  CHECK(lstm(tg::randn({7, 3}, tg::kFloat64)).shape() == tg::Shape{7, 4});  // unbatched (L, H_in)
  CHECK_THROWS_WITH_AS(gru.forward(tg::randn({2, 5, 4}, tg::kFloat64), Tensor()),
                       "GRU: expected input_size 3 as the last dim, got input [2, 5, 4]", tg::Error);
  // An empty sequence is PyTorch's error too (it was "stack: expected at least one tensor"); an
  // empty batch passes.
  CHECK_THROWS_WITH_AS(gru.forward(tg::randn({2, 0, 3}, tg::kFloat64), Tensor()),
                       "GRU: expected a sequence length larger than 0 (as PyTorch's), got input [2, 0, 3]", tg::Error);
  CHECK_THROWS_WITH_AS(lstm(tg::randn({0, 3}, tg::kFloat64)),
                       "LSTM: expected a sequence length larger than 0 (as PyTorch's), got input [0, 3]", tg::Error);
  CHECK(std::get<0>(gru.forward(tg::randn({0, 5, 3}, tg::kFloat64), Tensor())).shape() == tg::Shape{0, 5, 8});
  CHECK_THROWS_WITH_AS(gru.forward(x.detach(), tg::zeros({2, 2, 4}, tg::kFloat64)),
                       "GRU: expected h0 of shape [4, 2, 4], got [2, 2, 4]", tg::Error);
  std::ostringstream printed;
  printed << gru;
  CHECK(printed.str() == "GRU(3, 4, num_layers=2, batch_first=true, bidirectional=true)");
}

TEST_CASE("gradcheck: GRU and LSTM with every parameter") {
  tg::manual_seed(8);
  nn::GRU gru(nn::GRUOptions(2, 3).bidirectional(true));
  tg_test::check_module(gru, uniform64({3, 2, 2}));
  nn::LSTM lstm(nn::LSTMOptions(2, 3).num_layers(2).batch_first(true));
  tg_test::check_module(lstm, uniform64({2, 3, 2}));
}

TEST_CASE("Embedding matches PyTorch: lookup, padding_idx gets no gradient, errors") {
  nn::Embedding embed(nn::EmbeddingOptions(5, 3).padding_idx(1));
  tg::manual_seed(0);
  nn::Embedding fresh_one(nn::EmbeddingOptions(5, 3).padding_idx(-4));
  CHECK(fresh_one.weight.to_vector<float>()[3] == 0.0f);  // row 1 (= -4) starts at zero
  fill(embed);
  const Tensor idx(std::vector<std::int64_t>{0, 1, 4, 1, 2, 0}, {2, 3});
  const Tensor e = embed(idx);
  CHECK(e.shape() == tg::Shape{2, 3, 3});
  check_close(e, {0.0, 0.15980851286806766, 0.2804903282692988, 0.33249832886801817, 0.3030991422752272, 0.19949071470131882, -0.09313849939964196, 0.0717066626959385, 0.21899553290626303, 0.33249832886801817, 0.3030991422752272, 0.19949071470131882, 0.0470400026866224, -0.11692774256320661, -0.25226749843597607, 0.0, 0.15980851286806766, 0.2804903282692988}, 1e-12);
  tg::sum(e * tg::arange(18, tg::kFloat64).reshape({2, 3, 3})).backward();
  check_close(embed.weight.grad(), {15.0, 17.0, 19.0, 0.0, 0.0, 0.0, 12.0, 13.0, 14.0, 0.0, 0.0, 0.0, 6.0, 7.0, 8.0}, 1e-12);
  CHECK_THROWS_WITH_AS(embed(Tensor(std::vector<std::int64_t>{5}, {1})),
                       "embedding: index 5 is out of range for 5 embeddings", tg::Error);
  CHECK_THROWS_WITH_AS(embed(tg::zeros({2})), "embedding: indices must be int64, got float32 [2]", tg::Error);
  CHECK_THROWS_WITH_AS(nn::Embedding(nn::EmbeddingOptions(5, 3).padding_idx(5)),
                       "Embedding: padding_idx must be within num_embeddings (5), got 5", tg::Error);
}

TEST_CASE("gradcheck: the fused GRU and LSTM cells, every input; errors") {
  tg::manual_seed(12);
  CHECK_GRADCHECK([](const Inputs& x) { return tg::gru_cell(x[0], x[1], x[2]); },
                  Inputs{uniform64({3, 12}), uniform64({3, 12}), uniform64({3, 4})});
  CHECK_GRADCHECK([](const Inputs& x) { return tg::lstm_cell(x[0], x[1], x[2]); },
                  Inputs{uniform64({2, 20}), uniform64({2, 20}), uniform64({2, 5})});
  // Widths across the SIMD tail (H = 1 and 17).
  CHECK_GRADCHECK([](const Inputs& x) { return tg::gru_cell(x[0], x[1], x[2]); },
                  Inputs{uniform64({2, 51}), uniform64({2, 51}), uniform64({2, 17})});
  CHECK_GRADCHECK([](const Inputs& x) { return tg::lstm_cell(x[0], x[1], x[2]); },
                  Inputs{uniform64({2, 4}), uniform64({2, 4}), uniform64({2, 1})});
  CHECK_THROWS_WITH_AS(tg::gru_cell(tg::zeros({3, 12}), tg::zeros({3, 9}), tg::zeros({3, 4})),
                       "gru_cell: expected parts of shape [3, 12] for state [3, 4], got [3, 12] and [3, 9]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::lstm_cell(tg::zeros({2, 8}), tg::zeros({2, 8}), tg::zeros({2, 2}, tg::kFloat64)),
                       "lstm_cell: expected one floating-point dtype, got float32, float32 and float64", tg::Error);
}

// PyTorch 1.13 (/usr/bin/python3), with fill, x and h0 as in the GRU's script above:
//   rnn = fill(torch.nn.RNN(3, 4, num_layers=2, batch_first=True, bidirectional=True).double())
//   out, hn = rnn(x, h0)
//   print("rnn_out =", out.flatten()[:6].tolist(), "rnn_out_sq =", (out * out).sum().item())
//   print("rnn_hn =", hn.flatten()[:6].tolist())
//   (out.sum() + (hn * hn).sum()).backward()
//   print("rnn_dx =", x.grad.flatten()[:6].tolist())
//   print("rnn_dw =", rnn.weight_hh_l1_reverse.grad.flatten()[:4].tolist())
//   x.grad = None
//   relu = fill(torch.nn.RNN(3, 4, num_layers=2, nonlinearity='relu', bias=False).double())
//   out, hn = relu(x)   # (L=2, N=5, 3), zero initial state
//   print("relu_out =", out.flatten()[:8].tolist(), "relu_hn =", hn.flatten()[:8].tolist())
//   (out.sum() + (hn * hn).sum()).backward()
//   print("relu_dx =", x.grad.flatten()[:6].tolist())
//   print("relu_dw =", relu.weight_ih_l0.grad.flatten()[:6].tolist())
//   u = (torch.cos(torch.arange(7 * 3, dtype=torch.float64)) / 2).reshape(7, 3)
//   out, hn = fill(torch.nn.RNN(3, 4).double())(u)  # unbatched
//   print("unbatched_out =", out[-1].tolist(), "unbatched_hn =", hn.flatten().tolist())
TEST_CASE("RNN matches PyTorch: names, tanh and relu, layers, directions, batch_first, states, gradients") {
  nn::RNN rnn(nn::RNNOptions(3, 4).num_layers(2).batch_first(true).bidirectional(true));
  CHECK(rnn.named_parameters().keys() == std::vector<std::string>{"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse", "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1", "weight_ih_l1_reverse", "weight_hh_l1_reverse", "bias_ih_l1_reverse", "bias_hh_l1_reverse"});
  CHECK(rnn.named_parameters().at("weight_ih_l1").shape() == tg::Shape{4, 8});
  fill(rnn);
  std::vector<double> xs(30), hs(32);
  for (std::size_t i = 0; i < 30; ++i) xs[i] = std::cos(double(i)) / 2;
  for (std::size_t i = 0; i < 32; ++i) hs[i] = std::sin(double(i)) / 4;
  const Tensor x = Tensor(xs, {2, 5, 3}).set_requires_grad();
  auto [out, hn] = rnn.forward(x, Tensor(hs, {4, 2, 4}));
  CHECK(out.shape() == tg::Shape{2, 5, 8});
  CHECK(hn.shape() == tg::Shape{4, 2, 4});
  check_close(first(out, 6), {-0.6205849881427469, -0.4375002164496097, -0.37322734356996223, -0.5689821809798534, 0.6004306279513283, 0.6751805160609073}, 1e-12);
  CHECK(sum_of_squares(out) == doctest::Approx(19.462856807330667).epsilon(1e-12));
  check_close(first(hn, 6), {0.36596667072131406, 0.5004401439735194, -0.33103985722213064, -0.6877820817014686, 0.19277447304149153, 0.09739668179349335}, 1e-12);
  (tg::sum(out) + tg::sum(hn * hn)).backward();
  check_close(first(x.grad(), 6), {0.12315495540829088, 0.22324437411531944, 0.2686757841191788, -0.27231866260190335, -0.31867486671879575, -0.2870083492884044}, 1e-12);
  check_close(first(rnn.named_parameters().at("weight_hh_l1_reverse").grad(), 4), {4.001873906226956, 3.8555636578680668, -2.5639808188190947, 0.6758262660550711}, 1e-12);

  nn::RNN relu(nn::RNNOptions(3, 4).num_layers(2).nonlinearity("relu").bias(false));
  CHECK(relu.named_parameters().keys() == std::vector<std::string>{"weight_ih_l0", "weight_hh_l0", "weight_ih_l1", "weight_hh_l1"});
  fill(relu);
  const Tensor x2 = Tensor(xs, {2, 5, 3}).set_requires_grad();  // (L, N, H_in)
  auto [relu_out, relu_hn] = relu.forward(x2, Tensor());
  check_close(first(relu_out, 8), {0.04330898726394686, 0.0, 0.024544467115757654, 0.06109765159521043, 0.0, 0.0, 0.072664101837285, 0.0}, 1e-12);
  check_close(first(relu_hn, 8), {0.0, 0.0, 0.02009697798910077, 0.3884338177867068, 0.18259512144962978, 0.2245927672687192, 0.0, 0.0}, 1e-12);
  (tg::sum(relu_out) + tg::sum(relu_hn * relu_hn)).backward();
  check_close(first(x2.grad(), 6), {0.3805790899314287, 0.1995659398023218, -0.030307912495865712, -0.03644822774818082, -0.0357544895288387, -0.02630680529142072}, 1e-12);
  check_close(first(relu.named_parameters().at("weight_ih_l0").grad(), 6), {1.3468462468309748, 1.773184660276238, 0.5692652745235561, 1.9962047169407526, 2.1528371402674953, 0.33016102514944573}, 1e-12);

  nn::RNN single(3, 4);
  fill(single);
  std::vector<double> us(21);
  for (std::size_t i = 0; i < 21; ++i) us[i] = std::cos(double(i)) / 2;
  auto [unbatched_out, unbatched_hn] = single.forward(Tensor(us, {7, 3}), Tensor());
  CHECK(unbatched_out.shape() == tg::Shape{7, 4});
  CHECK(unbatched_hn.shape() == tg::Shape{1, 4});
  check_close(tg::select(unbatched_out, 0, 6), {0.40308351140613596, 0.49520263423485245, -0.3567289592401392, -0.6935055554491738}, 1e-12);
  check_close(unbatched_hn, {0.40308351140613596, 0.49520263423485245, -0.3567289592401392, -0.6935055554491738}, 1e-12);
}

TEST_CASE("RNN equals its definition in every configuration, in both dtypes: outputs, h_n and every gradient") {
  // Both nonlinearities, one or two directions, batch_first or not, with and without biases; 1-3
  // layers; hidden sizes 4 and 17 (across the SIMD width); a given h0 or zeros.
  int combo = 0;
  for (const char* nonlinearity : {"tanh", "relu"})
    for (bool bidirectional : {false, true})
      for (bool batch_first : {false, true})
        for (bool bias : {false, true}) {
          ++combo;
          const std::int64_t layers = 1 + combo % 3, hidden = combo % 2 ? 17 : 4;
          const std::size_t states = std::size_t(layers) * (bidirectional ? 2 : 1), steps = 4, batch = 3;
          for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
            const std::string what = std::string(nonlinearity) + (bidirectional ? " bidirectional" : "") +
                                     (batch_first ? " batch_first" : "") + (bias ? " bias" : "") + " layers " +
                                     std::to_string(layers) + " hidden " + std::to_string(hidden) + " " +
                                     tg::dtype_name(dtype);
            tg::manual_seed(std::uint64_t(combo));
            nn::RNN rnn(nn::RNNOptions(3, hidden).num_layers(layers).nonlinearity(nonlinearity)
                            .bidirectional(bidirectional).batch_first(batch_first).bias(bias));
            rnn.to(dtype);
            const Tensor x = tg::randn(batch_first ? tg::Shape{batch, steps, 3} : tg::Shape{steps, batch, 3}, dtype);
            const Tensor h0 = combo % 4 == 0 ? tg::zeros({states, batch, std::size_t(hidden)}, dtype)
                                             : tg::randn({states, batch, std::size_t(hidden)}, dtype);
            // Each run from fresh leaves; a loss that weighs every output differently, and h_n.
            auto run = [&](bool definition) {
              rnn.zero_grad();
              const Tensor xl = x.detach().set_requires_grad(), hl = h0.detach().set_requires_grad();
              auto [out, hn] = definition ? rnn_by_definition(rnn, xl, hl) : rnn.forward(xl, hl);
              const Tensor weights = tg::cos(tg::arange(double(out.numel()), dtype)).reshape(out.shape());
              (tg::sum(out * weights) + tg::sum(hn * hn)).backward();
              std::vector<Tensor> results{out.detach(), hn.detach(), xl.grad(), hl.grad()};
              for (const Tensor& p : rnn.parameters()) results.push_back(p.grad());
              return results;
            };
            const std::vector<Tensor> got = run(false), expected = run(true);
            const double tol = dtype == tg::kFloat64 ? 1e-12 : 2e-5;
            for (std::size_t i = 0; i < got.size(); ++i) check_near(got[i], expected[i], tol, what + " result " + std::to_string(i));
          }
        }
}

TEST_CASE("gradcheck: RNN with every parameter, both nonlinearities; the fused RNN cell") {
  tg::manual_seed(9);
  nn::RNN tanh_rnn(nn::RNNOptions(2, 3).num_layers(2).bidirectional(true));
  tg_test::check_module(tanh_rnn, uniform64({3, 2, 2}));
  nn::RNN relu_rnn(nn::RNNOptions(2, 3).nonlinearity("relu").batch_first(true));
  tg_test::check_module(relu_rnn, uniform64({2, 3, 2}));
  for (const char* nonlinearity : {"tanh", "relu"})
    for (std::size_t width : {1, 5, 17}) {
      CAPTURE(nonlinearity);
      CAPTURE(width);
      CHECK_GRADCHECK([&](const Inputs& x) { return tg::rnn_cell(x[0], x[1], nonlinearity); },
                      Inputs{tg_test::away_from_zero64({3, width}), uniform64({3, width}, 0.0, 0.1)});
    }
}

TEST_CASE("RNN: printing, options and errors") {
  std::ostringstream printed;
  printed << nn::RNN(nn::RNNOptions(3, 4).num_layers(2).nonlinearity("relu").bias(false).batch_first(true).dropout(0.5)) << " "
          << nn::RNN(3, 4);
  CHECK(printed.str() == "RNN(3, 4, num_layers=2, bias=false, batch_first=true, dropout=0.5) RNN(3, 4)");
  CHECK_THROWS_WITH_AS(nn::RNN(nn::RNNOptions(3, 4).nonlinearity("sigmoid")),
                       "RNN: nonlinearity must be \"tanh\" or \"relu\", got \"sigmoid\"", tg::Error);
  CHECK_THROWS_WITH_AS(nn::GRU(nn::GRUOptions(3, 4).nonlinearity("relu")),
                       "GRU: nonlinearity is an option of RNN only, got \"relu\"", tg::Error);
  nn::RNN rnn(3, 4);
  CHECK_THROWS_WITH_AS(rnn(tg::zeros({2, 5, 4})), "RNN: expected input_size 3 as the last dim, got input [2, 5, 4]",
                       tg::Error);
  CHECK_THROWS_WITH_AS(rnn.forward(tg::zeros({2, 5, 3}), tg::zeros({2, 5, 4})),
                       "RNN: expected h0 of shape [1, 5, 4], got [2, 5, 4]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::rnn_cell(tg::zeros({3, 4}), tg::zeros({3, 5})),
                       "rnn_cell: expected two 2-D parts of one shape, got [3, 4] and [3, 5]", tg::Error);
  CHECK_THROWS_WITH_AS(tg::rnn_cell(tg::zeros({3, 4}), tg::zeros({3, 4}, tg::kFloat64)),
                       "rnn_cell: expected one floating-point dtype, got float32 and float64", tg::Error);
  CHECK_THROWS_WITH_AS(tg::rnn_cell(tg::zeros({3, 4}), tg::zeros({3, 4}), "gelu"),
                       "rnn_cell: nonlinearity must be \"tanh\" or \"relu\", got \"gelu\"", tg::Error);
}
