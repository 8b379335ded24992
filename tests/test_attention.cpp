// MultiheadAttention and the Transformer layers: values and gradients against PyTorch, every
// configuration of MultiheadAttention against its definition head by head in both dtypes,
// gradcheck, dropout, clones, errors.
#include "helpers.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <tuple>

using tg::Tensor;
using tg_test::check_close;
using tg_test::check_near;
using tg_test::fill;
using tg_test::cos_;
using tg_test::first;
using tg_test::seq;
using tg_test::sin_;
using tg_test::sum_of_squares;
using tg_test::uniform64;
using Inputs = std::vector<Tensor>;
namespace nn = tg::nn;

namespace {

// MultiheadAttention by its definition, one (sample, head) at a time with 2-D products: what the
// layer's batched products, joined projections and mask broadcasts must equal. Inputs (L, N, E),
// masks additive (L, S) and (N, S) or undefined. Returns the output (L, N, E) and the weights
// (N, heads, L, S').
std::tuple<Tensor, Tensor> attention_by_definition(const nn::MultiheadAttention& m, const Tensor& query,
                                                   const Tensor& key, const Tensor& value, const Tensor& attn_mask,
                                                   const Tensor& padding) {
  const auto& o = m.options;
  const std::int64_t E = o.embed_dim(), heads = o.num_heads(), d = E / heads;
  const std::size_t N = query.shape()[1];
  const bool joined = m.in_proj_weight.defined();
  auto weight = [&](int i) { return joined ? tg::narrow(m.in_proj_weight, 0, i * E, E) : i == 0 ? m.q_proj_weight : i == 1 ? m.k_proj_weight : m.v_proj_weight; };
  std::vector<Tensor> outputs, all_weights;
  for (std::size_t n = 0; n < N; ++n) {
    const auto sample = std::int64_t(n);
    std::vector<Tensor> head_outputs, head_weights;
    for (std::int64_t h = 0; h < heads; ++h) {
      auto project = [&](const Tensor& x, int i) {
        Tensor p = tg::matmul(tg::select(x, 1, sample), tg::transpose(tg::narrow(weight(i), 0, h * d, d), 0, 1));
        if (m.in_proj_bias.defined()) p = p + tg::narrow(m.in_proj_bias, 0, i * E + h * d, d);
        return p;  // (length, d)
      };
      const Tensor q = project(query, 0);
      Tensor k = project(key, 1), v = project(value, 2);
      if (m.bias_k.defined()) {
        k = tg::cat({k, tg::narrow(tg::reshape(m.bias_k, {1, E}), 1, h * d, d)}, 0);
        v = tg::cat({v, tg::narrow(tg::reshape(m.bias_v, {1, E}), 1, h * d, d)}, 0);
      }
      if (o.add_zero_attn()) {
        k = tg::cat({k, tg::zeros({1, std::size_t(d)}, q.dtype())}, 0);
        v = tg::cat({v, tg::zeros({1, std::size_t(d)}, q.dtype())}, 0);
      }
      const std::int64_t extra = std::int64_t(k.shape()[0] - key.shape()[0]);
      Tensor scores = tg::matmul(q, tg::transpose(k, 0, 1)) / std::sqrt(double(d));
      if (attn_mask.defined()) scores = scores + (extra ? tg::pad(attn_mask, {0, extra}) : attn_mask);
      if (padding.defined()) {
        const Tensor row = tg::select(padding, 0, sample);
        scores = scores + (extra ? tg::pad(row, {0, extra}) : row);
      }
      const Tensor w = tg::softmax(scores, 1);
      head_weights.push_back(w);
      head_outputs.push_back(tg::matmul(w, v));
    }
    outputs.push_back(tg::linear(tg::cat(head_outputs, 1), m.out_proj.weight, m.out_proj.bias));  // (L, E)
    all_weights.push_back(tg::stack(head_weights, 0));
  }
  return {tg::stack(outputs, 1), tg::stack(all_weights, 0)};
}

}  // namespace

// PyTorch 1.13 (/usr/bin/python3). fill as in tests/test_recurrent.cpp; seq(shape, f, s) is
// f(arange(numel)) * s reshaped; show(name, t, n) prints t.flatten()[:n].
//   mha = fill(torch.nn.MultiheadAttention(6, 2).double())
//   x = seq((3, 2, 6), torch.cos, 0.5).requires_grad_()
//   mask = torch.nn.Transformer.generate_square_subsequent_mask(3).double()
//   out, w = mha(x, x, x, attn_mask=mask)
//   show("a_out", out); print("a_out_sq =", (out * out).sum().item()); show("a_w", w, 9)
//   (out.sum() + (w * w).sum()).backward()
//   show("a_dx", x.grad); show("a_dw", mha.in_proj_weight.grad, 4); show("a_db", mha.out_proj.bias.grad, 4)
//   mhb = fill(torch.nn.MultiheadAttention(4, 2, kdim=3, vdim=5, add_bias_kv=True, add_zero_attn=True,
//                                          batch_first=True).double())
//   q = seq((2, 3, 4), torch.sin, 0.7).requires_grad_()
//   k = seq((2, 5, 3), torch.cos, 0.6).requires_grad_()
//   v = seq((2, 5, 5), torch.sin, 0.4).requires_grad_()
//   kpm = torch.tensor([[False, False, True, False, True], [False, False, False, False, False]])
//   out, w = mhb(q, k, v, key_padding_mask=kpm, average_attn_weights=False)
//   show("b_out", out); print("b_out_sq =", (out * out).sum().item()); show("b_w", w, 7)
//   (out.sum() + (w * w).sum()).backward()
//   show("b_dq", q.grad); show("b_dk", k.grad); show("b_dv", v.grad)
//   show("b_dbias_k", mhb.bias_k.grad, 4); show("b_dkw", mhb.k_proj_weight.grad, 4)
//   mhc = fill(torch.nn.MultiheadAttention(4, 4, bias=False).double())
//   u = seq((3, 4), torch.cos, 0.8)
//   am = torch.tensor([[False, True, False], [False, False, True], [True, False, False]])
//   out, w = mhc(u, u, u, attn_mask=am); show("c_out", out, 12); show("c_w", w, 9)
TEST_CASE("MultiheadAttention matches PyTorch: self and cross attention, masks, kdim/vdim, bias_kv, zero_attn, unbatched") {
  nn::MultiheadAttention a(6, 2);
  CHECK(a.named_parameters().keys() == std::vector<std::string>{"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"});
  fill(a);
  const Tensor x = seq({3, 2, 6}, cos_, 0.5).set_requires_grad();
  auto [a_out, a_w] = a.forward(x, x, x, Tensor(), true, nn::generate_square_subsequent_mask(3, tg::kFloat64));
  CHECK(a_out.shape() == tg::Shape{3, 2, 6});
  CHECK(a_w.shape() == tg::Shape{2, 3, 3});
  check_close(first(a_out, 6), {0.11410232751982122, -0.22943904129310716, -0.09655914021842935, -0.5216322864118229, -0.08769067183371218, -0.49865020487524025}, 1e-12);
  CHECK(sum_of_squares(a_out) == doctest::Approx(3.1972158940479023).epsilon(1e-12));
  check_close(first(a_w, 9), {1.0, 0.0, 0.0, 0.48152386320934903, 0.518476136790651, 0.0, 0.32019224796741713, 0.33819558052605314, 0.3416121715065298}, 1e-12);
  (tg::sum(a_out) + tg::sum(a_w * a_w)).backward();
  check_close(first(x.grad(), 6), {-0.016698299653751005, -0.01975670048101504, -0.017977971991508863, -0.011797608954788378, -0.00272877978993913, 0.007008149837009472}, 1e-12);
  check_close(first(a.in_proj_weight.grad(), 4), {-0.0004204884437860698, -0.0005593988267571776, -0.00018400050820760035, 0.0003605670290262256}, 1e-12);
  check_close(first(a.out_proj.bias.grad(), 4), {6.0, 6.0, 6.0, 6.0}, 1e-12);

  nn::MultiheadAttention b(nn::MultiheadAttentionOptions(4, 2).kdim(3).vdim(5).add_bias_kv(true).add_zero_attn(true).batch_first(true));
  CHECK(b.named_parameters().keys() == std::vector<std::string>{"q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias", "bias_k", "bias_v", "out_proj.weight", "out_proj.bias"});
  fill(b);
  const Tensor q = seq({2, 3, 4}, sin_, 0.7).set_requires_grad();
  const Tensor k = seq({2, 5, 3}, cos_, 0.6).set_requires_grad();
  const Tensor v = seq({2, 5, 5}, sin_, 0.4).set_requires_grad();
  const Tensor padding(std::vector<std::int64_t>{0, 0, 1, 0, 1, 0, 0, 0, 0, 0}, {2, 5});  // PyTorch's bool mask
  auto [b_out, b_w] = b.forward(q, k, v, padding, true, Tensor(), false);
  CHECK(b_out.shape() == tg::Shape{2, 3, 4});
  CHECK(b_w.shape() == tg::Shape{2, 2, 3, 7});
  check_close(first(b_out, 6), {0.3095130658204003, 0.3886757662950273, 0.17600665013196637, 0.318142911873126, 0.31300590797398375, 0.39203824623562444}, 1e-12);
  CHECK(sum_of_squares(b_out) == doctest::Approx(2.373946594811474).epsilon(1e-12));
  check_close(first(b_w, 7), {0.21003754830254587, 0.1871367376863135, 0.0, 0.18375179391953192, 0.0, 0.2024930142013069, 0.21658090589030177}, 1e-12);
  (tg::sum(b_out) + tg::sum(b_w * b_w)).backward();
  check_close(first(q.grad(), 6), {0.001629099001461675, 0.0021026339825567925, 0.002061370832798219, 0.0015154122103495126, -0.0017838169939966692, -0.0015528668639329171}, 1e-12);
  check_close(first(k.grad(), 6), {0.007277135608279104, 0.005934055863967592, 0.003138112286723434, -0.0029574571074585778, -0.002438854635140549, -0.0013231354901111286}, 1e-12);
  check_close(first(v.grad(), 6), {-0.007966373164178043, -0.017005222597887254, -0.02188060046176188, -0.021398844219978064, -0.015677904602360803, -0.010999057908733902}, 1e-12);
  check_close(first(b.bias_k.grad(), 4), {0.0026155916234159695, -0.004277368538163292, 0.005479302256022169, 0.007440758584020998}, 1e-12);
  check_close(first(b.k_proj_weight.grad(), 4), {0.005105946262244957, 0.007202980746984873, 0.0026776279511945287, 0.0018563756466652749}, 1e-12);

  nn::MultiheadAttention c(nn::MultiheadAttentionOptions(4, 4).bias(false));
  CHECK(c.named_parameters().keys() == std::vector<std::string>{"in_proj_weight", "out_proj.weight"});
  fill(c);
  const Tensor u = seq({3, 4}, cos_, 0.8);
  const Tensor blocked(std::vector<std::int64_t>{0, 1, 0, 0, 0, 1, 1, 0, 0}, {3, 3});
  auto [c_out, c_w] = c.forward(u, u, u, Tensor(), true, blocked);
  CHECK(c_out.shape() == tg::Shape{3, 4});
  CHECK(c_w.shape() == tg::Shape{3, 3});
  check_close(c_out, {0.049147363813326836, -0.02826229962394676, -0.025624830649220966, 0.04958968404740588, -0.0072330636258045025, -0.022701058565034665, 0.026127011042025677, 0.000955712577892183, 0.02211037623014831, 0.017926735335346947, -0.037030684628993324, 0.012893669191713976}, 1e-12);
  check_close(c_w, {0.4637046420445698, 0.0, 0.5362953579554302, 0.5263203925641478, 0.4736796074358523, 0.0, 0.0, 0.5120132594798938, 0.48798674052010604}, 1e-12);
}

TEST_CASE("MultiheadAttention equals its definition head by head in every configuration, both dtypes") {
  // 1, 2 or 4 heads; self-attention (one tensor: one joined projection) or separate query, key
  // and value; kdim/vdim; bias or none; add_bias_kv; add_zero_attn; batch_first; a float mask, an
  // int64 mask, a key padding mask; weights averaged or per head.
  for (int combo = 0; combo < 24; ++combo) {
    const std::int64_t heads = combo % 3 == 0 ? 1 : combo % 3 == 1 ? 2 : 4, E = 8;
    const bool self = combo % 4 == 0, separate_dims = !self && combo % 4 == 3, bias = combo % 5 != 4,
               bias_kv = combo % 6 >= 4, zero_attn = combo % 7 >= 5, batch_first = combo % 2 == 1,
               float_mask = combo % 8 == 1 || combo % 8 == 6, int_mask = combo % 8 == 3,
               padding = combo % 3 == 2, average = combo % 4 != 1;
    for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
      const std::size_t L = 3, S = self ? 3 : 5, N = 2;
      const std::int64_t kdim = separate_dims ? 5 : E, vdim = separate_dims ? 3 : E;
      const std::string what = "combo " + std::to_string(combo) + " " + tg::dtype_name(dtype);
      tg::manual_seed(std::uint64_t(combo) + 100);
      nn::MultiheadAttention m(nn::MultiheadAttentionOptions(E, heads).kdim(kdim).vdim(vdim).bias(bias)
                                   .add_bias_kv(bias_kv).add_zero_attn(zero_attn).batch_first(batch_first));
      m.to(dtype);
      if (bias) nn::init::normal_(m.in_proj_bias);  // PyTorch starts it at zero; make it count
      const Tensor query = tg::randn({L, N, std::size_t(E)}, dtype);
      const Tensor key = self ? query : tg::randn({S, N, std::size_t(kdim)}, dtype);
      const Tensor value = self ? query : tg::randn({S, N, std::size_t(vdim)}, dtype);
      Tensor mask, mask_scores, pad_mask, pad_scores;
      if (float_mask) mask = mask_scores = tg::randn({L, S}, dtype);
      if (int_mask) {  // row i may not attend to column (i + 1) % S
        std::vector<std::int64_t> flags(L * S, 0);
        std::vector<double> scores(L * S, 0.0);
        for (std::size_t i = 0; i < L; ++i) {
          flags[i * S + (i + 1) % S] = 1;
          scores[i * S + (i + 1) % S] = -std::numeric_limits<double>::infinity();
        }
        mask = Tensor(flags, {L, S});
        mask_scores = Tensor(scores, {L, S}).to(dtype);
      }
      if (padding) {  // sample 0 ignores its last source position
        std::vector<std::int64_t> flags(N * S, 0);
        std::vector<double> scores(N * S, 0.0);
        flags[S - 1] = 1;
        scores[S - 1] = -std::numeric_limits<double>::infinity();
        pad_mask = Tensor(flags, {N, S});
        pad_scores = Tensor(scores, {N, S}).to(dtype);
      }
      auto run = [&](bool definition) {
        m.zero_grad();
        const Tensor ql = query.detach().set_requires_grad();
        const Tensor kl = self ? ql : key.detach().set_requires_grad();
        const Tensor vl = self ? ql : value.detach().set_requires_grad();
        Tensor out, weights;
        if (definition) {
          std::tie(out, weights) = attention_by_definition(m, ql, kl, vl, mask_scores, pad_scores);
          if (average) weights = tg::mean(weights, 1);
        } else {
          auto t = [&](const Tensor& x) { return batch_first ? tg::transpose(x, 0, 1) : x; };
          const Tensor qi = t(ql), ki = self ? qi : t(kl), vi = self ? qi : t(vl);
          std::tie(out, weights) = m.forward(qi, ki, vi, pad_mask, true, mask, average);
          out = t(out);
        }
        const Tensor w = tg::cos(tg::arange(double(out.numel()), dtype)).reshape(out.shape());
        (tg::sum(out * w) + tg::sum(weights * weights)).backward();
        std::vector<Tensor> results{out.detach(), weights.detach(), ql.grad()};
        if (!self) {
          results.push_back(kl.grad());
          results.push_back(vl.grad());
        }
        for (const Tensor& p : m.parameters()) results.push_back(p.grad());
        return results;
      };
      const std::vector<Tensor> got = run(false), expected = run(true);
      const double tol = dtype == tg::kFloat64 ? 1e-12 : 3e-5;
      REQUIRE(got.size() == expected.size());
      for (std::size_t i = 0; i < got.size(); ++i) check_near(got[i], expected[i], tol, what + " result " + std::to_string(i));
    }
  }
}

TEST_CASE("gradcheck: MultiheadAttention, self and cross, with masks and every option") {
  tg::manual_seed(21);
  nn::MultiheadAttention self(nn::MultiheadAttentionOptions(4, 2).add_bias_kv(true));
  tg_test::check_module(self, uniform64({3, 2, 4}));
  nn::MultiheadAttention cross(nn::MultiheadAttentionOptions(4, 2).kdim(3).vdim(2).add_zero_attn(true).batch_first(true));
  cross.to(tg::kFloat64);
  Inputs inputs{uniform64({2, 3, 4}), uniform64({2, 4, 3}), uniform64({2, 4, 2}), uniform64({3, 4})};  // the last: a float mask
  for (const Tensor& p : cross.parameters()) inputs.push_back(p);
  const Tensor padding(std::vector<std::int64_t>{0, 1, 0, 0, 0, 0, 0, 1}, {2, 4});
  CHECK_GRADCHECK([&](const Inputs& in) {
    auto [out, weights] = cross.forward(in[0], in[1], in[2], padding, true, in[3], false);
    return tg::sum(out * out) + tg::sum(weights * weights);
  }, inputs);
}

// PyTorch 1.13, continued:
//   enc = fill(torch.nn.TransformerEncoderLayer(6, 2, dim_feedforward=8, dropout=0.0).double())
//   xe = seq((4, 2, 6), torch.sin, 0.9).requires_grad_()
//   y = enc(xe, src_mask=torch.nn.Transformer.generate_square_subsequent_mask(4).double())
//   show("enc_y", y); print("enc_y_sq =", (y * y).sum().item())
//   (y * seq((4, 2, 6), torch.cos, 1.0)).sum().backward()
//   show("enc_dx", xe.grad); show("enc_dl1", enc.linear1.weight.grad, 4)
//   xe.grad = None
//   pre = fill(torch.nn.TransformerEncoderLayer(6, 3, dim_feedforward=5, dropout=0.0, activation="gelu",
//                                               norm_first=True, batch_first=True, layer_norm_eps=1e-3).double())
//   y = pre(xe.transpose(0, 1), src_key_padding_mask=torch.tensor([[False, False, True, False], [False, True, False, False]]))
//   show("pre_y", y); print("pre_y_sq =", (y * y).sum().item())
//   (y * y).sum().backward(); show("pre_dx", xe.grad)
//   stack = torch.nn.TransformerEncoder(fill(torch.nn.TransformerEncoderLayer(6, 2, dim_feedforward=8,
//                                       dropout=0.0).double()), 2, norm=torch.nn.LayerNorm(6).double())
//   y = stack(xe.detach()); show("stack_y", y); print("stack_y_sq =", (y * y).sum().item())
//   dec = fill(torch.nn.TransformerDecoderLayer(6, 2, dim_feedforward=7, dropout=0.0).double())
//   tgt = seq((3, 2, 6), torch.cos, 0.7).requires_grad_(); mem = seq((4, 2, 6), torch.sin, 0.5).requires_grad_()
//   y = dec(tgt, mem, tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(3).double())
//   show("dec_y", y); print("dec_y_sq =", (y * y).sum().item())
//   (y * y).sum().backward(); show("dec_dt", tgt.grad); show("dec_dm", mem.grad)
//   tr = fill(torch.nn.Transformer(6, 2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=5,
//                                  dropout=0.0).double())
//   y = tr(mem.detach(), tgt.detach(), tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(3).double())
//   show("tr_y", y); print("tr_y_sq =", (y * y).sum().item())
TEST_CASE("Transformer layers match PyTorch: post-norm and pre-norm encoder layers, encoder, decoder layer, Transformer") {
  nn::TransformerEncoderLayer enc(nn::TransformerLayerOptions(6, 2).dim_feedforward(8).dropout(0.0));
  CHECK(enc.named_parameters().keys() == std::vector<std::string>{"self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight", "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias", "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"});
  fill(enc);
  const Tensor xe = seq({4, 2, 6}, sin_, 0.9).set_requires_grad();
  const Tensor y = enc.forward(xe, nn::generate_square_subsequent_mask(4, tg::kFloat64), Tensor());
  check_close(first(y, 6), {-0.5610008907304056, -0.6801988513031813, 0.046669058396417995, -0.06493631678998618, 0.3609198344897293, 0.28595209568935087}, 1e-12);
  CHECK(sum_of_squares(y) == doctest::Approx(7.260757333014354).epsilon(1e-12));
  tg::sum(y * seq({4, 2, 6}, cos_, 1.0)).backward();
  check_close(first(xe.grad(), 6), {-0.11246278825566018, 0.009408341423804234, 0.0797010898676221, -0.03850774301999037, -0.030530936186901864, 0.07440976464317722}, 1e-12);
  check_close(first(enc.linear1.weight.grad(), 4), {0.0168163529405559, 0.04769347619883296, 0.017799425211305585, 0.03762551514742197}, 1e-12);

  nn::TransformerEncoderLayer pre(nn::TransformerLayerOptions(6, 3).dim_feedforward(5).dropout(0.0).activation("gelu")
                                      .norm_first(true).batch_first(true).layer_norm_eps(1e-3));
  fill(pre);
  const Tensor xb = seq({4, 2, 6}, sin_, 0.9).set_requires_grad();
  const Tensor padding(std::vector<std::int64_t>{0, 0, 1, 0, 0, 1, 0, 0}, {2, 4});
  const Tensor y_pre = pre.forward(tg::transpose(xb, 0, 1), Tensor(), padding);
  check_close(first(y_pre, 6), {0.47307519897600236, 0.7095512679182098, 1.1406485005335494, -0.15912221904767843, -0.652936922594816, -1.3391493003757766}, 1e-12);
  CHECK(sum_of_squares(y_pre) == doctest::Approx(24.44555155361386).epsilon(1e-12));
  tg::sum(y_pre * y_pre).backward();
  check_close(first(xb.grad(), 6), {0.8637154363284071, 1.36210726503184, 2.316425132655157, -0.24319064433702314, -1.2425845930206878, -2.7123395458387125}, 1e-12);

  nn::TransformerEncoderLayer one(nn::TransformerLayerOptions(6, 2).dim_feedforward(8).dropout(0.0));
  fill(one);
  nn::TransformerEncoder stack(one, 2, nn::LayerNormOptions({6}));
  stack.to(tg::kFloat64);
  const std::vector<std::string> keys = stack.named_parameters().keys();
  CHECK(keys.size() == 26);
  CHECK(keys.front() == "layers.0.self_attn.in_proj_weight");
  CHECK(keys[12] == "layers.1.self_attn.in_proj_weight");
  CHECK(keys.back() == "norm.bias");
  const Tensor y_stack = stack(xe.detach());
  check_close(first(y_stack, 6), {-1.4668834007962073, -0.2854470210816143, -0.3086695981873025, -0.5196408215885211, 1.478893217952594, 1.1017476237010506}, 1e-12);
  CHECK(sum_of_squares(y_stack) == doctest::Approx(47.99610902428312).epsilon(1e-12));

  nn::TransformerDecoderLayer dec(nn::TransformerLayerOptions(6, 2).dim_feedforward(7).dropout(0.0));
  CHECK(dec.named_parameters().keys() == std::vector<std::string>{"self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight", "self_attn.out_proj.bias", "multihead_attn.in_proj_weight", "multihead_attn.in_proj_bias", "multihead_attn.out_proj.weight", "multihead_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias", "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias", "norm3.weight", "norm3.bias"});
  fill(dec);
  const Tensor tgt = seq({3, 2, 6}, cos_, 0.7).set_requires_grad();
  const Tensor mem = seq({4, 2, 6}, sin_, 0.5).set_requires_grad();
  const Tensor y_dec = dec.forward(tgt, mem, nn::generate_square_subsequent_mask(3, tg::kFloat64));
  check_close(first(y_dec, 6), {-0.2333513793629568, -0.4452227593469279, -0.29821226545553914, 0.061337736616378674, 0.31751372314519594, -0.010600787440442044}, 1e-12);
  CHECK(sum_of_squares(y_dec) == doctest::Approx(2.3055478142741195).epsilon(1e-12));
  tg::sum(y_dec * y_dec).backward();
  check_close(first(tgt.grad(), 6), {-0.025520755979900035, -0.015039042830979333, 0.02401455867637549, -0.03714427801380963, -0.03964601867282085, 0.11298284344686088}, 1e-12);
  check_close(first(mem.grad(), 6), {0.012106745787038376, 0.009015703356294032, 0.0037173023102819217, -0.002491223986737612, -0.008089811767329804, -0.011707731485230738}, 1e-12);

  nn::Transformer tr(nn::TransformerOptions(6, 2).num_encoder_layers(1).num_decoder_layers(1).dim_feedforward(5).dropout(0.0));
  const std::vector<std::string> tr_keys = tr.named_parameters().keys();
  CHECK(tr_keys.size() == 34);
  CHECK(std::vector<std::string>(tr_keys.begin(), tr_keys.begin() + 2) == std::vector<std::string>{"encoder.layers.0.self_attn.in_proj_weight", "encoder.layers.0.self_attn.in_proj_bias"});
  CHECK(std::vector<std::string>(tr_keys.end() - 2, tr_keys.end()) == std::vector<std::string>{"decoder.norm.weight", "decoder.norm.bias"});
  fill(tr);
  const Tensor y_tr = tr.forward(mem.detach(), tgt.detach(), Tensor(), nn::generate_square_subsequent_mask(3, tg::kFloat64));
  check_close(first(y_tr, 6), {0.08981934214563402, 0.2512330858537348, 0.028691260186409075, -0.06895583784809481, -0.10154471625949492, -0.23191275496487507}, 1e-12);
  CHECK(sum_of_squares(y_tr) == doctest::Approx(0.7294026280713928).epsilon(1e-12));
}

TEST_CASE("gradcheck: Transformer encoder and decoder layers, post-norm and pre-norm") {
  tg::manual_seed(22);
  nn::TransformerEncoderLayer post(nn::TransformerLayerOptions(4, 2).dim_feedforward(6).dropout(0.0));
  tg_test::check_module(post, uniform64({3, 2, 4}));
  nn::TransformerEncoderLayer pre(nn::TransformerLayerOptions(4, 2).dim_feedforward(5).dropout(0.0).norm_first(true).activation("gelu"));
  tg_test::check_module(pre, uniform64({3, 4}));  // unbatched
  nn::TransformerDecoderLayer dec(nn::TransformerLayerOptions(4, 1).dim_feedforward(3).dropout(0.0).batch_first(true));
  dec.to(tg::kFloat64);
  Inputs inputs{uniform64({2, 3, 4}), uniform64({2, 2, 4})};
  for (const Tensor& p : dec.parameters()) inputs.push_back(p);
  const Tensor causal = nn::generate_square_subsequent_mask(3, tg::kFloat64);
  CHECK_GRADCHECK([&](const Inputs& in) { return dec.forward(in[0], in[1], causal); }, inputs);
}

TEST_CASE("Transformer layers: dropout in training only, deep copies, clone, state_dict, causal mask") {
  // Dropout on the attention weights: in training some weights are 0 and the rest grow by 1/(1-p);
  // in eval the layer equals one without dropout.
  tg::manual_seed(3);
  nn::MultiheadAttention dropping(nn::MultiheadAttentionOptions(8, 2).dropout(0.5));
  const Tensor x = tg::randn({5, 3, 8});
  auto [train_out, train_w] = dropping.forward(x, x, x, Tensor(), true, Tensor(), false);
  const std::vector<float> w = train_w.to_vector<float>();
  CHECK(std::count(w.begin(), w.end(), 0.0f) > 0);
  dropping.eval();
  auto [eval_out, eval_w] = dropping.forward(x, x, x);
  nn::MultiheadAttention plain(nn::MultiheadAttentionOptions(8, 2));
  plain.load_state_dict(dropping.state_dict());
  CHECK(tg_test::bitwise_equal(eval_out, std::get<0>(plain.forward(x, x, x))));
  CHECK(tg::sum(eval_w).item() == doctest::Approx(15.0));  // 3 samples × 5 rows of weights that sum to 1

  // The encoder's layers start equal (deep copies of one layer, as PyTorch's) and train apart.
  nn::TransformerEncoderLayer layer(nn::TransformerLayerOptions(8, 2).dim_feedforward(16));
  nn::TransformerEncoder encoder(layer, 2);
  const auto params = encoder.named_parameters();
  CHECK(tg_test::bitwise_equal(params.at("layers.0.linear1.weight"), params.at("layers.1.linear1.weight")));
  CHECK(tg_test::bitwise_equal(params.at("layers.0.linear1.weight"), layer.linear1.weight));
  CHECK(!params.at("layers.0.linear1.weight").same(layer.linear1.weight));
  encoder.eval();
  const auto copy = nn::clone(encoder);
  CHECK(tg_test::bitwise_equal(copy->forward(x), encoder.forward(x)));
  nn::TransformerEncoder other(nn::TransformerEncoderLayer(nn::TransformerLayerOptions(8, 2).dim_feedforward(16)), 2);
  other.eval();
  other.load_state_dict(encoder.state_dict());
  CHECK(tg_test::bitwise_equal(other.forward(x), encoder.forward(x)));

  const float inf = std::numeric_limits<float>::infinity();
  CHECK(nn::generate_square_subsequent_mask(3).to_vector<float>() == std::vector<float>{0, -inf, -inf, 0, 0, -inf, 0, 0, 0});
  CHECK(nn::generate_square_subsequent_mask(0).shape() == tg::Shape{0, 0});
  std::ostringstream printed;
  printed << nn::MultiheadAttention(4, 2);
  CHECK(printed.str() == "MultiheadAttention(\n  (out_proj): Linear(in_features=4, out_features=4, bias=true)\n)");
}

TEST_CASE("MultiheadAttention and the Transformer layers: errors name the layer and the shapes") {
  CHECK_THROWS_WITH_AS(nn::MultiheadAttention(6, 4), "MultiheadAttention: embed_dim must be divisible by num_heads, got 6 and 4", tg::Error);
  CHECK_THROWS_WITH_AS(nn::MultiheadAttention(0, 1), "MultiheadAttention: embed_dim, num_heads, kdim and vdim must be positive, got 0, 1, 0 and 0", tg::Error);
  nn::MultiheadAttention m(4, 2);
  const Tensor x = tg::zeros({3, 2, 4});
  CHECK_THROWS_WITH_AS(m.forward(tg::zeros({3, 2, 5}), x, x),
                       "MultiheadAttention: expected query, key and value features 4, 4 and 4 (embed_dim, kdim, vdim), got query [3, 2, 5], key [3, 2, 4] and value [3, 2, 4]", tg::Error);
  CHECK_THROWS_WITH_AS(m.forward(x, tg::zeros({3, 4}), x),
                       "MultiheadAttention: expected key and value of 3 dims as the query [3, 2, 4], got [3, 4] and [3, 2, 4]", tg::Error);
  CHECK_THROWS_WITH_AS(m.forward(x, tg::zeros({5, 2, 4}), tg::zeros({4, 2, 4})),
                       "MultiheadAttention: expected key and value with the query's batch and one source length, got query [3, 2, 4], key [5, 2, 4] and value [4, 2, 4]", tg::Error);
  CHECK_THROWS_WITH_AS(m.forward(x, x, x, Tensor(), true, tg::zeros({3, 4})),
                       "MultiheadAttention: expected attn_mask (L, S) = [3, 3] or (N·num_heads, L, S) = [4, 3, 3], got [3, 4]", tg::Error);
  CHECK_THROWS_WITH_AS(m.forward(x, x, x, tg::zeros({3, 2})),
                       "MultiheadAttention: expected key_padding_mask [2, 3] (batch, source length), got [3, 2]", tg::Error);
  CHECK_THROWS_WITH_AS(m.forward(x, x, x, Tensor(), true, tg::zeros({3, 3}, tg::kFloat64)),
                       "MultiheadAttention: expected attn_mask of the query's dtype (float32, added to the scores) or int64 (non-zero: do not attend), got float64 [3, 3]", tg::Error);
  CHECK_THROWS_WITH_AS(m.forward(tg::zeros({3, 2, 4}, tg::kFloat64), tg::zeros({3, 2, 4}, tg::kFloat64), tg::zeros({3, 2, 4}, tg::kFloat64)),
                       "MultiheadAttention: expected query, key and value of the parameters' dtype float32, got float64, float64 and float64", tg::Error);
  CHECK_THROWS_WITH_AS(m.forward(tg::zeros({2, 3, 2, 4}), x, x),
                       "MultiheadAttention: expected query (L, N, E), (N, L, E) with batch_first, or unbatched (L, E), got [2, 3, 2, 4]", tg::Error);
  CHECK_THROWS_WITH_AS(nn::TransformerEncoderLayer(nn::TransformerLayerOptions(4, 2).activation("tanh")),
                       "TransformerEncoderLayer: activation must be \"relu\" or \"gelu\", got \"tanh\"", tg::Error);
  CHECK_THROWS_WITH_AS(nn::TransformerDecoderLayer(nn::TransformerLayerOptions(4, 2).dropout(1.5)),
                       "TransformerDecoderLayer: dropout must be in [0, 1], got 1.5", tg::Error);
  nn::Transformer tr(nn::TransformerOptions(4, 2).num_encoder_layers(1).num_decoder_layers(1).dim_feedforward(8));
  CHECK_THROWS_WITH_AS(tr.forward(tg::zeros({3, 2, 4}), tg::zeros({3, 5, 4})),
                       "Transformer: the batch number of src and tgt must be equal, got src [3, 2, 4] and tgt [3, 5, 4]", tg::Error);
  CHECK_THROWS_WITH_AS(tr(tg::zeros({3, 2, 4})), "Transformer: this module has no forward(input)", tg::Error);
  CHECK_THROWS_WITH_AS(tr.forward(tg::zeros({3, 2, 4}), tg::zeros({3, 2, 6})),
                       "Transformer: the feature number of src and tgt must be equal to d_model (4), got src [3, 2, 4] and tgt [3, 2, 6]", tg::Error);
}
