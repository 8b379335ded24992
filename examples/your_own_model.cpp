// Your own model: a residual MLP with BatchNorm1d, written as a PyTorch user would, then trained,
// saved, reloaded and cloned. The README's "Your own model", compiled and run in CI.
#include <cstdio>
#include <sstream>

#include <tapegrad/tapegrad.hpp>

namespace nn = tg::nn;

// y = relu(x + fc2(relu(bn(fc1(x))))): the shape of x is kept.
struct ResidualBlock : nn::Module {
  explicit ResidualBlock(std::int64_t width = 32) : width(width) {}
  std::int64_t width;
  nn::Linear& fc1 = register_module("fc1", nn::Linear(width, width));
  nn::BatchNorm1d& bn = register_module("bn", nn::BatchNorm1d(width));
  nn::Linear& fc2 = register_module("fc2", nn::Linear(width, width));

  tg::Tensor forward(const tg::Tensor& x) override { return tg::relu(x + fc2(tg::relu(bn(fc1(x))))); }
};

struct Net : nn::Module {
  nn::Linear& input = register_module("input", nn::Linear(2, 32));
  ResidualBlock& block1 = register_module("block1", ResidualBlock(32));
  ResidualBlock& block2 = register_module("block2", ResidualBlock(32));
  nn::Linear& head = register_module("head", nn::Linear(32, 2));
  tg::Tensor scale = register_parameter("scale", tg::ones({1}));  // a parameter of its own

  tg::Tensor forward(const tg::Tensor& x) override { return head(block2(block1(input(x)))) * scale; }
};

int main() {
  tg::manual_seed(0);
  tg::Tensor x = tg::rand({512, 2}) * 4.0 - 2.0;
  tg::Tensor y = tg::gt(tg::sum(x * x, {1}), 1.0).to(tg::kInt64);  // inside or outside the circle
  tg::data::DataLoader loader(tg::data::TensorDataset(x, y), tg::data::DataLoaderOptions(32).shuffle(true));

  Net net;
  std::printf("%zu parameters in %zu tensors\n", [&] {
    std::size_t n = 0;
    for (const tg::Tensor& p : net.parameters()) n += p.numel();
    return n;
  }(), net.parameters().size());
  tg::optim::Adam optimizer(net.parameters(), tg::optim::AdamOptions(0.01));
  for (int epoch = 1; epoch <= 15; ++epoch)
    for (const tg::data::Batch& batch : loader) {
      optimizer.zero_grad();
      tg::cross_entropy(net(batch.input), batch.target).backward();
      optimizer.step();
    }

  net.eval();
  auto accuracy = [&](Net& model) {
    tg::NoGradGuard no_grad;
    return tg::mean(tg::eq(tg::argmax(model(x), 1), y).to(tg::kFloat64)).item();
  };
  std::printf("accuracy %.1f%%\n", 100.0 * accuracy(net));

  tg::save(net, "your_own_model.safetensors");  // keys: input.weight, block1.bn.running_mean, ..., scale
  Net reloaded;
  tg::load(reloaded, "your_own_model.safetensors");
  reloaded.eval();
  std::shared_ptr<Net> copy = tg::nn::clone(net);  // a deep copy, as its own type
  std::printf("reloaded %.1f%%, cloned %.1f%%\n", 100.0 * accuracy(reloaded), 100.0 * accuracy(*copy));
  std::printf("%s\n", [&] {
    std::ostringstream out;
    out << net;
    return out.str();
  }().c_str());
  return 0;
}
