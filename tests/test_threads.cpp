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
  // layer_norm over long rows: its weight gradient in blocks of several rows.
  Tensor long_rows = tg::randn({40, 8, 50, 50}).set_requires_grad();
  Tensor long_weight = tg::randn({8, 50, 50}).set_requires_grad();
  tg::sum(tg::layer_norm(long_rows, {8, 50, 50}, long_weight, Tensor(), 1e-5) * long_rows).backward();
  Tensor row_loss = tg::cross_entropy(rows, tg::randint(0, 1000, {600})) + tg::mean(tg::softmax(rows, 1) * rows) +
                    tg::mean(tg::gelu(rows) + tg::sigmoid(rows) * tg::relu(rows));
  row_loss.backward();
  // cross_entropy with class probabilities over rows and down columns (the target's and a weight's
  // gradients too), and with class indices and label smoothing down columns: slabs split.
  Tensor soft_logits = tg::randn({600, 1000}).set_requires_grad();
  Tensor soft_target = tg::softmax(tg::randn({600, 1000}), 1).detach().set_requires_grad();
  Tensor columns = tg::randn({6, 40, 2100}).set_requires_grad();
  Tensor column_target = tg::softmax(tg::randn({6, 40, 2100}), 1).detach().set_requires_grad();
  Tensor class_weight = (tg::rand({40}) + 0.5).detach().set_requires_grad();
  tg::ClassLossOptions smoothed;
  smoothed.weight = class_weight;
  smoothed.label_smoothing = 0.1;
  Tensor soft_loss = tg::cross_entropy(soft_logits, soft_target) + tg::cross_entropy(columns, column_target, smoothed) +
                     tg::cross_entropy(columns, tg::randint(0, 40, {6, 2100}), smoothed);
  soft_loss.backward();
  // Convolution (16 output channels directly: 3×3, 5×5 and the "valid" 5×5, each input gradient
  // but the first as a direct forward of dy; depthwise; by phases (the unpadded stride 2); 8 and
  // 12 output channels in a block of 16 lanes),
  // pooling, BatchNorm2d, a GRU and an RNN, big enough that their sample, block and row loops split.
  tg::nn::Sequential cnn(tg::nn::Conv2d(tg::nn::Conv2dOptions(3, 16, 3).padding(1)), tg::nn::BatchNorm2d(16),
                         tg::nn::ReLU(), tg::nn::MaxPool2d(2), tg::nn::Conv2d(tg::nn::Conv2dOptions(16, 16, 3).padding(1)),
                         tg::nn::Conv2d(tg::nn::Conv2dOptions(16, 16, 5).padding(2)),
                         tg::nn::Conv2d(tg::nn::Conv2dOptions(16, 16, 3).padding(1).groups(16)),
                         tg::nn::Conv2d(tg::nn::Conv2dOptions(16, 16, 5)),
                         tg::nn::Conv2d(tg::nn::Conv2dOptions(16, 8, 3).stride(2)),
                         tg::nn::Conv2d(tg::nn::Conv2dOptions(8, 12, 3).padding(1)), tg::nn::AvgPool2d(2));
  Tensor images = tg::randn({32, 3, 32, 32}).set_requires_grad();
  Tensor cnn_out = cnn(images);
  tg::sum(cnn_out * cnn_out).backward();
  // One image: the forward's GEMM cut into blocks of columns that the threads share, then a direct
  // 3×3 (16 channels) whose rows are cut between tasks.
  tg::nn::Sequential stem(tg::nn::Conv2d(tg::nn::Conv2dOptions(3, 16, 7).stride(2).padding(3)),
                          tg::nn::Conv2d(tg::nn::Conv2dOptions(16, 16, 3).padding(1)));
  Tensor image = tg::randn({1, 3, 96, 96}).set_requires_grad();
  Tensor stem_out = stem(image);
  tg::sum(stem_out * stem_out).backward();
  // A grouped 3×3 with 32 channels a group: Winograd, a group's GEMMs at a time; and with 16, direct.
  tg::nn::Sequential grouped(tg::nn::Conv2d(tg::nn::Conv2dOptions(64, 64, 3).padding(1).groups(2)),
                             tg::nn::Conv2d(tg::nn::Conv2dOptions(64, 64, 3).padding(1).groups(4)));
  Tensor planes = tg::randn({9, 64, 14, 14}).set_requires_grad();
  Tensor grouped_out = grouped(planes);
  tg::sum(grouped_out * grouped_out).backward();
  // Winograd over 4×4 planes: all 16 samples in one block, each block's 16 GEMMs shared.
  tg::nn::Conv2d small_planes(tg::nn::Conv2dOptions(64, 64, 3).padding(1));
  Tensor small = tg::randn({16, 64, 4, 4}).set_requires_grad();
  Tensor small_out = small_planes(small);
  tg::sum(small_out * small_out).backward();
  // softplus and the logistic loss (the polynomial log1p), pow with a general exponent (double
  // lanes), and a step-2 slice of the last dim (permutes forward, a spread backward).
  Tensor odd = tg::randn({700, 1001}).set_requires_grad();
  Tensor odd_loss = tg::sum(tg::softplus(odd, 1.5)) + tg::binary_cross_entropy_with_logits(odd, tg::sigmoid(odd.detach())) +
                    tg::sum(tg::pow(tg::abs(odd) + 0.5, 2.5)) + tg::sum(tg::slice(odd, 1, 1, std::nullopt, 2) * 3.0);
  odd_loss.backward();
  tg::nn::GRU gru(tg::nn::GRUOptions(8, 64).batch_first(true));
  Tensor sequence = tg::randn({128, 20, 8}).set_requires_grad();
  Tensor gru_out = gru(sequence);
  tg::sum(gru_out * gru_out).backward();
  tg::nn::RNN rnn(tg::nn::RNNOptions(8, 64).nonlinearity("relu").bidirectional(true));
  Tensor rnn_sequence = tg::randn({20, 128, 8}).set_requires_grad();
  Tensor rnn_out = rnn(rnn_sequence);
  tg::sum(rnn_out * rnn_out).backward();
  // A Transformer encoder layer with dropout: attention's batched products and softmax rows split.
  tg::nn::TransformerEncoderLayer encoder_layer(tg::nn::TransformerLayerOptions(64, 4).dim_feedforward(128));
  Tensor tokens = tg::randn({16, 32, 64}).set_requires_grad();
  Tensor encoded = encoder_layer.forward(tokens, tg::nn::generate_square_subsequent_mask(16), Tensor());
  tg::sum(encoded * encoded).backward();
  // Matrix-vector products past 2^18 values (cut into blocks of rows or columns) and their
  // gradients (outer products, cut likewise).
  Tensor mat = tg::randn({600, 700}).set_requires_grad();
  Tensor right = tg::randn({700}).set_requires_grad(), left = tg::randn({600}).set_requires_grad();
  Tensor mv = tg::matmul(mat, right), vm = tg::matmul(left, mat);
  (tg::sum(mv * mv) + tg::sum(vm * vm)).backward();
  // index_select along dim 0 with repeated picks: its gradient's rows cut into pieces.
  Tensor table = tg::randn({300, 500}).set_requires_grad();
  Tensor picked = tg::index_select(table, 0, tg::randint(0, 300, {2000}));
  tg::sum(picked * picked).backward();
  Results results{{mv, vm, mat.grad(), right.grad(), left.grad(), picked, table.grad(), loss, h, p, w.grad(), b.grad(),
           tg::sum(big), tg::sum(tg::reshape(big, {3000, 1000}), {0}), tg::sum(tg::reshape(big, {1000, 3000}), {1}),
           row_loss, rows, logits.grad(), ln_weight.grad(), cnn_out,
           images.grad(), cnn.parameters()[0].grad(), gru_out, sequence.grad(), gru.parameters()[1].grad(),
           long_rows.grad(), long_weight.grad(), stem_out, image.grad(), stem.parameters()[0].grad(),
           stem.parameters()[2].grad(),
           // Sums over two separate runs of dims (one pass): rows of the (a, c) outputs split.
           tg::sum(tg::reshape(big, {30, 100, 1000}), {0, 2}), tg::sum(tg::reshape(big, {4, 30, 50, 25, 20}), {1, 3}),
           tg::sum(tg::reshape(big, {30, 100, 1000}), {0, 1}), odd_loss, odd.grad(), rnn_out, rnn_sequence.grad(),
           rnn.parameters()[1].grad(), encoded, tokens.grad(), encoder_layer.self_attn.in_proj_weight.grad(), soft_loss,
           soft_logits.grad(), soft_target.grad(), columns.grad(), column_target.grad(), class_weight.grad()}};
  for (const Tensor& parameter : cnn.parameters()) results.tensors.push_back(parameter.grad());
  for (const Tensor& t : {grouped_out, planes.grad(), grouped.parameters()[0].grad(), grouped.parameters()[2].grad(),
                          small_out, small.grad(), small_planes.parameters()[0].grad()})
    results.tensors.push_back(t);
  return results;
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
