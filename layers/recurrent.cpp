// RNN, GRU and LSTM. Per layer and direction, PyTorch's equations (gates in PyTorch's order):
//   RNN:  h' = tanh(x·W_ih + b_ih + h·W_hh + b_hh)   (or relu)
//   GRU:  r = σ(x·W_ir + b_ir + h·W_hr + b_hr)      z = σ(x·W_iz + b_iz + h·W_hz + b_hz)
//         n = tanh(x·W_in + b_in + r ⊙ (h·W_hn + b_hn))      h' = (1 − z) ⊙ n + z ⊙ h
//   LSTM: i, f, g, o = σ, σ, tanh, σ of (x·W_ih + b_ih + h·W_hh + b_hh) split in four
//         c' = f ⊙ c + i ⊙ g      h' = o ⊙ tanh(c')
// The input projection x·W_ihᵀ + b_ih of every step is one GEMM; each step then computes h·W_hhᵀ
// + b_hh and runs the fused cell (core/ops/recurrent.cpp): one pass forward, one backward.
#include "layers/recurrent.hpp"

#include <cmath>
#include <ostream>
#include <string>

#include "core/creation.hpp"
#include "core/ops/activation.hpp"
#include "core/ops/elementwise.hpp"
#include "core/ops/linalg.hpp"
#include "core/ops/recurrent.hpp"
#include "core/ops/shape.hpp"
#include "layers/init.hpp"

namespace tg::nn {

Recurrent::Recurrent(std::string type_name, const RNNOptions& options_in, std::int64_t gates)
    : Module(std::move(type_name)), options(options_in), gates_(gates) {
  const std::string& name = this->type_name();
  TG_CHECK(options.input_size() > 0 && options.hidden_size() > 0 && options.num_layers() > 0, name,
           ": input_size, hidden_size and num_layers must be positive, got ", options.input_size(), ", ",
           options.hidden_size(), " and ", options.num_layers());
  TG_CHECK(options.dropout() >= 0 && options.dropout() <= 1, name, ": dropout must be in [0, 1], got ",
           options.dropout());
  if (gates == 1)
    TG_CHECK(options.nonlinearity() == "tanh" || options.nonlinearity() == "relu", name,
             ": nonlinearity must be \"tanh\" or \"relu\", got \"", options.nonlinearity(), "\"");
  else
    TG_CHECK(options.nonlinearity() == "tanh", name, ": nonlinearity is an option of RNN only, got \"",
             options.nonlinearity(), "\"");
  const auto hidden = std::size_t(options.hidden_size()), rows = std::size_t(gates) * hidden;
  const double bound = 1.0 / std::sqrt(double(hidden));
  for (std::int64_t layer = 0; layer < options.num_layers(); ++layer)
    for (int direction = 0; direction < (options.bidirectional() ? 2 : 1); ++direction) {
      const std::string suffix = "_l" + std::to_string(layer) + (direction ? "_reverse" : "");
      const std::size_t in = layer == 0 ? std::size_t(options.input_size())
                                        : hidden * (options.bidirectional() ? 2 : 1);
      // PyTorch's order: weight_ih, weight_hh, bias_ih, bias_hh per layer and direction.
      init::uniform_(register_parameter("weight_ih" + suffix, empty({rows, in})), -bound, bound);
      init::uniform_(register_parameter("weight_hh" + suffix, empty({rows, hidden})), -bound, bound);
      if (options.bias()) {
        init::uniform_(register_parameter("bias_ih" + suffix, empty({rows})), -bound, bound);
        init::uniform_(register_parameter("bias_hh" + suffix, empty({rows})), -bound, bound);
      }
    }
}

std::tuple<Tensor, Tensor, Tensor> Recurrent::run(const Tensor& input_in, const Tensor& h0_in, const Tensor& c0_in) {
  const std::string& name = type_name();
  const bool lstm = gates_ == 4;
  TG_CHECK(input_in.dim() == 2 || input_in.dim() == 3, name, ": expected input (L, N, H_in), (N, L, H_in) with "
           "batch_first, or (L, H_in), got ", shape_str(input_in.shape()));
  TG_CHECK(std::int64_t(input_in.shape().back()) == options.input_size(), name, ": expected input_size ",
           options.input_size(), " as the last dim, got input ", shape_str(input_in.shape()));
  const bool unbatched = input_in.dim() == 2;
  // Work in (L, N, H) throughout.
  Tensor x = unbatched ? unsqueeze(input_in, 1) : options.batch_first() ? transpose(input_in, 0, 1) : input_in;
  const std::size_t steps = x.shape()[0], batch = x.shape()[1];
  TG_CHECK(steps > 0, name, ": expected a sequence length larger than 0 (as PyTorch's), got input ",
           shape_str(input_in.shape()));
  const auto hidden = std::size_t(options.hidden_size());
  const std::size_t directions = options.bidirectional() ? 2 : 1;
  const std::size_t states = directions * std::size_t(options.num_layers());
  auto initial = [&](const Tensor& given, const char* what) {
    if (!given.defined()) return zeros({states, batch, hidden}, x.dtype());
    const Tensor state = unbatched && given.dim() == 2 ? unsqueeze(given, 1) : given;
    TG_CHECK((state.shape() == Shape{states, batch, hidden}), name, ": expected ", what, " of shape [", states, ", ",
             batch, ", ", hidden, "], got ", shape_str(given.shape()));
    return state;
  };
  const Tensor h0 = initial(h0_in, "h0"), c0 = lstm ? initial(c0_in, "c0") : Tensor();

  std::vector<Tensor> h_n, c_n;
  for (std::int64_t layer = 0; layer < options.num_layers(); ++layer) {
    std::vector<std::vector<Tensor>> outputs(directions, std::vector<Tensor>(steps));
    for (std::size_t direction = 0; direction < directions; ++direction) {
      const std::string suffix = "_l" + std::to_string(layer) + (direction ? "_reverse" : "");
      const Tensor w_ih = named_parameters().at("weight_ih" + suffix);  // a copy: named_parameters() is a temporary
      const Tensor w_hh = named_parameters().at("weight_hh" + suffix);
      const Tensor b_ih = options.bias() ? named_parameters().at("bias_ih" + suffix) : Tensor();
      const Tensor b_hh = options.bias() ? named_parameters().at("bias_hh" + suffix) : Tensor();
      const auto state_index = std::int64_t(std::size_t(layer) * directions + direction);
      Tensor h = select(h0, 0, state_index);
      Tensor c = lstm ? select(c0, 0, state_index) : Tensor();
      // Every step's input part in one GEMM, (L, N, G·H). Each step selects its rows, and select's
      // backward adds them into one gradient of the whole product (no scatter per step).
      const Tensor in_parts = linear(x, w_ih, b_ih);
      for (std::size_t k = 0; k < steps; ++k) {
        const std::size_t t = direction ? steps - 1 - k : k;
        const Tensor in_part = select(in_parts, 0, std::int64_t(t));
        const Tensor hidden_part = linear(h, w_hh, b_hh);
        if (gates_ == 1) {
          h = rnn_cell(in_part, hidden_part, options.nonlinearity());
        } else if (lstm) {
          const Tensor hc = lstm_cell(in_part, hidden_part, c);  // (N, 2H): h', c'
          h = narrow(hc, 1, 0, std::int64_t(hidden));
          c = narrow(hc, 1, std::int64_t(hidden), std::int64_t(hidden));
        } else {
          h = gru_cell(in_part, hidden_part, h);
        }
        outputs[direction][t] = h;
      }
      h_n.push_back(h);
      if (lstm) c_n.push_back(c);
    }
    // (L, N, D·H), the next layer's input
    x = directions == 1 ? stack(outputs[0], 0) : cat({stack(outputs[0], 0), stack(outputs[1], 0)}, 2);
    if (options.dropout() > 0 && is_training() && layer + 1 < options.num_layers())
      x = dropout(x, options.dropout(), true);
  }
  Tensor output = unbatched ? squeeze(x, 1) : options.batch_first() ? transpose(x, 0, 1) : x;
  Tensor h_last = stack(h_n, 0), c_last = lstm ? stack(c_n, 0) : Tensor();
  if (unbatched) {
    h_last = squeeze(h_last, 1);
    if (lstm) c_last = squeeze(c_last, 1);
  }
  return {output, h_last, c_last};
}

// As PyTorch's repr (which leaves out an RNN's nonlinearity).
void Recurrent::print_options(std::ostream& out) const {
  out << options.input_size() << ", " << options.hidden_size();
  if (options.num_layers() != 1) out << ", num_layers=" << options.num_layers();
  if (!options.bias()) out << ", bias=false";
  if (options.batch_first()) out << ", batch_first=true";
  if (options.dropout() > 0) out << ", dropout=" << options.dropout();
  if (options.bidirectional()) out << ", bidirectional=true";
}

std::tuple<Tensor, Tensor> RNN::forward(const Tensor& input, const Tensor& h0) {
  auto [output, h_n, unused] = run(input, h0, Tensor());
  return {output, h_n};
}

std::tuple<Tensor, Tensor> GRU::forward(const Tensor& input, const Tensor& h0) {
  auto [output, h_n, unused] = run(input, h0, Tensor());
  return {output, h_n};
}

std::tuple<Tensor, std::tuple<Tensor, Tensor>> LSTM::forward(const Tensor& input, const std::tuple<Tensor, Tensor>& state) {
  auto [output, h_n, c_n] = run(input, std::get<0>(state), std::get<1>(state));
  return {output, {h_n, c_n}};
}

}  // namespace tg::nn
