// batchnorm_styles: the two code examples of the seed documents (MindSpore's "differences with
// torch.nn.BatchNorm1d" notes) run in tapegrad, PyTorch style and MindSpore style side by side.
#include <cstdio>
#include <string>

#include <tapegrad/tapegrad.hpp>

namespace nn = tg::nn;

namespace {

void print(const std::string& label, const tg::Tensor& t) {
  std::printf("  %-16s", label.c_str());
  const float* v = t.data<float>();
  const std::size_t cols = t.dim() == 2 ? t.shape()[1] : t.numel();
  for (std::size_t i = 0; i < t.numel(); ++i) {
    if (i > 0 && i % cols == 0) std::printf("\n  %-16s", "");
    std::printf(" %11.7f", v[i]);
  }
  std::printf("\n");
}

}  // namespace

int main() {
  const tg::Tensor x({{0.7, 0.5, 0.5, 0.6}, {0.5, 0.4, 0.6, 0.9}});

  std::printf("Example 1: affine=False, training\n");
  std::printf(" PyTorch:   nn.BatchNorm1d(4, affine=False, momentum=0.1); net(x)\n");
  nn::BatchNorm1d torch_net(nn::BatchNorm1dOptions(4).affine(false).momentum(0.1));
  print("output", torch_net(x));
  print("running_mean", torch_net.running_mean);
  print("running_var", torch_net.running_var);
  std::printf("  %-16s %lld\n", "num_batches_tracked", static_cast<long long>(torch_net.num_batches_tracked.item()));

  std::printf(" MindSpore: nn.BatchNorm1d(num_features=4, affine=False, momentum=0.9); net.set_train(); net(x)\n");
  nn::BatchNorm1d ms_net(nn::BatchNorm1dOptions::mindspore(4).affine(false).momentum(0.9));
  ms_net.set_train();
  print("output", ms_net(x));
  print("moving_mean", ms_net.moving_mean());
  print("moving_variance", ms_net.moving_variance());

  std::printf("\nExample 2: momentum 0.8 (MindSpore) = 0.2 (PyTorch), default modes\n");
  std::printf(" MindSpore: nn.BatchNorm1d(num_features=4, momentum=0.8); net(x)   (inference: no set_train)\n");
  nn::BatchNorm1d ms_default(nn::BatchNorm1dOptions::mindspore(4).momentum(0.8));
  print("output", ms_default(x));
  print("moving_mean", ms_default.moving_mean());
  print("moving_variance", ms_default.moving_variance());

  std::printf(" PyTorch:   nn.BatchNorm1d(4, momentum=0.2); m(x)   (training by default)\n");
  nn::BatchNorm1d torch_default(nn::BatchNorm1dOptions(4).momentum(0.2));
  print("output", torch_default(x));
  print("running_mean", torch_default.running_mean);
  print("running_var", torch_default.running_var);
  return 0;
}
