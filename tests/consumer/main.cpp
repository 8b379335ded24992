// Built against the installed package: one gradient through the public header, which needs no
// xtensor (the consumer's CMake project does not look for it); then the opt-in xtensor view.
#include <cstdio>
#include <vector>

#include <tapegrad/tapegrad.hpp>

#if defined(XTENSOR_VERSION_MAJOR) || defined(XSIMD_VERSION_MAJOR)
#error "tapegrad's public header pulled in xtensor or xsimd"
#endif
#if defined(__AVX2__) || defined(__AVX512F__)
#error "the consumer was built with the library's -march=native"
#endif

int main() {
  tg::Tensor x({1.0, 2.0, 3.0}, tg::TensorOptions().requires_grad(true));
  tg::Tensor loss = tg::sum(x * x);
  loss.backward();
  const std::vector<float> g = x.grad().to_vector<float>();
  const bool ok = g == std::vector<float>{2.0f, 4.0f, 6.0f} && x.grad().shape() == tg::Shape{3};
  std::printf("consumer: d(sum x^2)/dx = [%g, %g, %g] %s\n", g[0], g[1], g[2], ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
