// Your first model in C++: the README's tutorial, compiled and run in CI.
#include <cstdio>

#include <tapegrad/tapegrad.hpp>

namespace nn = tg::nn;

int main() {
  tg::manual_seed(0);
  // Data: points in the plane, labelled by which side of the circle of radius 1 they fall.
  tg::Tensor x = tg::rand({512, 2}) * 4.0 - 2.0;
  tg::Tensor y = tg::gt(tg::sum(x * x, {1}), 1.0).to(tg::kInt64);
  tg::data::DataLoader loader(tg::data::TensorDataset(x, y), tg::data::DataLoaderOptions(32).shuffle(true));

  // Model, loss and optimizer.
  nn::Sequential model(nn::Linear(2, 32), nn::BatchNorm1d(32), nn::ReLU(), nn::Linear(32, 2));
  tg::optim::Adam optimizer(model.parameters(), tg::optim::AdamOptions(0.01));

  // The training loop.
  for (int epoch = 1; epoch <= 20; ++epoch) {
    for (const tg::data::Batch& batch : loader) {
      optimizer.zero_grad();
      tg::Tensor loss = tg::cross_entropy(model(batch.input), batch.target);
      loss.backward();
      optimizer.step();
    }
  }

  // Evaluate without recording, in eval mode, then save.
  model.eval();
  tg::NoGradGuard no_grad;
  tg::Tensor correct = tg::eq(tg::argmax(model(x), 1), y).to(tg::kFloat32);
  std::printf("accuracy %.1f%%\n", 100.0 * tg::mean(correct).item());
  tg::save(model, "first_model.safetensors");
}
