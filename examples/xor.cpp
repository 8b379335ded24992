// xor: a 2-8-1 network learns XOR with plain tensors, autograd and a hand-written SGD step.
#include <cstdio>

#include <tapegrad/tapegrad.hpp>

int main() {
  tg::manual_seed(0);
  const tg::Tensor x({{0, 0}, {0, 1}, {1, 0}, {1, 1}});
  const tg::Tensor y({{0}, {1}, {1}, {0}});

  std::vector<tg::Tensor> params = {
      (tg::randn({2, 8}) * 1.0).detach().set_requires_grad(), tg::zeros({8}, tg::TensorOptions().requires_grad(true)),
      (tg::randn({8, 1}) * 1.0).detach().set_requires_grad(), tg::zeros({1}, tg::TensorOptions().requires_grad(true))};

  const double lr = 0.5;
  for (int epoch = 1; epoch <= 2000; ++epoch) {
    const tg::Tensor hidden = tg::tanh(tg::matmul(x, params[0]) + params[1]);
    const tg::Tensor prediction = tg::sigmoid(tg::matmul(hidden, params[2]) + params[3]);
    const tg::Tensor loss = tg::mean((prediction - y) * (prediction - y));
    for (tg::Tensor& p : params) p.set_grad(tg::Tensor());
    loss.backward();
    {
      tg::NoGradGuard no_grad;
      for (tg::Tensor& p : params) p.values_mut<float>() -= float(lr) * p.grad().values<float>();
    }
    if (epoch % 500 == 0) {
      int correct = 0;
      for (std::size_t i = 0; i < 4; ++i)
        correct += (prediction.values<float>()(i, 0) > 0.5f) == (y.values<float>()(i, 0) > 0.5f);
      std::printf("epoch %4d  loss %.5f  accuracy %d/4\n", epoch, loss.item(), correct);
    }
  }
  return 0;
}
