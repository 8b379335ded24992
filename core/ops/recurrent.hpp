// The cells of the recurrent layers as fused ops: one pass forward, one backward, instead of a
// dozen small ops per time step. Gate order and equations are PyTorch's (layers/recurrent.cpp).
#pragma once

#include <string>

#include "../tensor.hpp"

namespace tg {

// One step of an Elman RNN (nn::RNN): input_part = x·W_ihᵀ + b_ih and hidden_part = h·W_hhᵀ + b_hh,
// both (N, H). Returns h' = tanh(input_part + hidden_part), or relu of it with nonlinearity
// "relu". The backward uses h' alone (1 − h'² or h' > 0); both parts get the same gradient.
Tensor rnn_cell(const Tensor& input_part, const Tensor& hidden_part, const std::string& nonlinearity = "tanh");

// One GRU step for a batch: input_part = x·W_ihᵀ + b_ih and hidden_part = h·W_hhᵀ + b_hh, both
// (N, 3H) in the order r, z, n; h (N, H). Returns h' = (1 − z) ⊙ n + z ⊙ h with
// r = σ(x_r + h_r), z = σ(x_z + h_z), n = tanh(x_n + r ⊙ h_n).
Tensor gru_cell(const Tensor& input_part, const Tensor& hidden_part, const Tensor& h);

// One LSTM step: input_part and hidden_part (N, 4H) in the order i, f, g, o; c (N, H). Returns
// (N, 2H): h' = o ⊙ tanh(c') in the first H columns and c' = f ⊙ c + i ⊙ g in the last H, with
// i, f, o = σ(...), g = tanh(...) of input_part + hidden_part.
Tensor lstm_cell(const Tensor& input_part, const Tensor& hidden_part, const Tensor& c);

}  // namespace tg
