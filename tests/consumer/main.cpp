// Built against the installed package: one gradient through the public header.
#include <cstdio>

#include <tapegrad/tapegrad.hpp>

int main() {
  tg::Tensor x({1.0, 2.0, 3.0}, tg::TensorOptions().requires_grad(true));
  tg::Tensor loss = tg::sum(x * x);
  loss.backward();
  const auto& g = x.grad().values<float>();
  const bool ok = g(0) == 2.0f && g(1) == 4.0f && g(2) == 6.0f;
  std::printf("consumer: d(sum x^2)/dx = [%g, %g, %g] %s\n", g(0), g(1), g(2), ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
