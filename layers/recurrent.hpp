// RNN (Elman: tanh or relu), GRU and LSTM with PyTorch's options, gate order, parameter names (weight_ih_l0,
// weight_hh_l0_reverse, ...) and initialisation U(-1/√hidden_size, 1/√hidden_size), so that a
// PyTorch state_dict loads by key. One GEMM for the input projection of every time step, then per
// step one small GEMM and a fused cell op (tg::rnn_cell, tg::gru_cell, tg::lstm_cell) with its own
// backward.
//
//   tg::nn::GRU gru(tg::nn::GRUOptions(16, 32).num_layers(2).batch_first(true));
//   auto [output, h_n] = gru.forward(x, tg::Tensor());   // x (N, L, 16) → output (N, L, 32)
//   tg::Tensor output_only = gru(x);
#pragma once

#include <cstdint>
#include <string>
#include <tuple>

#include "module.hpp"

namespace tg::nn {

class RNNOptions {
 public:
  RNNOptions(std::int64_t input_size, std::int64_t hidden_size) : input_size_(input_size), hidden_size_(hidden_size) {}
  RNNOptions& num_layers(std::int64_t v) { num_layers_ = v; return *this; }
  RNNOptions& bias(bool on) { bias_ = on; return *this; }
  RNNOptions& batch_first(bool on) { batch_first_ = on; return *this; }  // (N, L, H) instead of (L, N, H)
  RNNOptions& dropout(double p) { dropout_ = p; return *this; }          // between layers, in training
  RNNOptions& bidirectional(bool on) { bidirectional_ = on; return *this; }
  // RNN only: "tanh" (PyTorch's default) or "relu"; GRU and LSTM reject anything but "tanh".
  RNNOptions& nonlinearity(std::string v) { nonlinearity_ = std::move(v); return *this; }
  std::int64_t input_size() const { return input_size_; }
  std::int64_t hidden_size() const { return hidden_size_; }
  std::int64_t num_layers() const { return num_layers_; }
  bool bias() const { return bias_; }
  bool batch_first() const { return batch_first_; }
  double dropout() const { return dropout_; }
  bool bidirectional() const { return bidirectional_; }
  const std::string& nonlinearity() const { return nonlinearity_; }

 private:
  std::int64_t input_size_, hidden_size_, num_layers_ = 1;
  bool bias_ = true, batch_first_ = false;
  double dropout_ = 0.0;
  bool bidirectional_ = false;
  std::string nonlinearity_ = "tanh";
};

using GRUOptions = RNNOptions;
using LSTMOptions = RNNOptions;

// What RNN, GRU and LSTM share: the options, the parameters per layer and direction, the sequence
// loop; Cell is the one step (below in recurrent.cpp).
class Recurrent : public Module {
 public:
  void print_options(std::ostream& out) const override;
  const RNNOptions options;

 protected:
  Recurrent(std::string type_name, const RNNOptions& options, std::int64_t gates);
  // The whole stack over input (L, N, H_in) or (N, L, H_in) (or unbatched (L, H_in)), from the
  // initial states (h0 and, for the LSTM, c0; undefined: zeros). Returns output, h_n, c_n.
  std::tuple<Tensor, Tensor, Tensor> run(const Tensor& input, const Tensor& h0, const Tensor& c0);
  const std::int64_t gates_;  // 1 (RNN), 3 (GRU: r, z, n) or 4 (LSTM: i, f, g, o)
};

// h' = tanh(x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh) per layer and direction (relu with
// RNNOptions::nonlinearity("relu")), as torch.nn.RNN.
class RNN : public Recurrent {
 public:
  explicit RNN(const RNNOptions& options) : Recurrent("RNN", options, 1) {}
  RNN(std::int64_t input_size, std::int64_t hidden_size) : RNN(RNNOptions(input_size, hidden_size)) {}
  Tensor forward(const Tensor& input) override { return std::get<0>(forward(input, Tensor())); }
  // (output, h_n): output (L, N, D·H) (batch_first: (N, L, D·H)), h_n (D·num_layers, N, H).
  std::tuple<Tensor, Tensor> forward(const Tensor& input, const Tensor& h0);
  std::shared_ptr<Module> fresh() const override { return std::make_shared<RNN>(options); }
};

class GRU : public Recurrent {
 public:
  explicit GRU(const GRUOptions& options) : Recurrent("GRU", options, 3) {}
  GRU(std::int64_t input_size, std::int64_t hidden_size) : GRU(GRUOptions(input_size, hidden_size)) {}
  Tensor forward(const Tensor& input) override { return std::get<0>(forward(input, Tensor())); }
  // (output, h_n): output (L, N, D·H) (batch_first: (N, L, D·H)), h_n (D·num_layers, N, H).
  std::tuple<Tensor, Tensor> forward(const Tensor& input, const Tensor& h0);
  std::shared_ptr<Module> fresh() const override { return std::make_shared<GRU>(options); }
};

class LSTM : public Recurrent {
 public:
  explicit LSTM(const LSTMOptions& options) : Recurrent("LSTM", options, 4) {}
  LSTM(std::int64_t input_size, std::int64_t hidden_size) : LSTM(LSTMOptions(input_size, hidden_size)) {}
  Tensor forward(const Tensor& input) override { return std::get<0>(forward(input, {Tensor(), Tensor()})); }
  // (output, (h_n, c_n)), as PyTorch's.
  std::tuple<Tensor, std::tuple<Tensor, Tensor>> forward(const Tensor& input, const std::tuple<Tensor, Tensor>& state);
  std::shared_ptr<Module> fresh() const override { return std::make_shared<LSTM>(options); }
};

}  // namespace tg::nn
