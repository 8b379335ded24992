// bytes -> tg::load into a model -> save -> load again: a file either loads whole (and then saves
// and reloads to the same values) or gives a tg::Error and leaves the model as it was.
#include "fuzz_common.hpp"

namespace nn = tg::nn;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = fuzz::scratch("safetensors");
  fuzz::write(path, data, size);
  nn::Sequential model(nn::Linear(3, 4), nn::BatchNorm1d(4), nn::ReLU(), nn::Linear(4, 2));
  const nn::StateDict before = model.state_dict();
  std::vector<tg::Tensor> copies;
  for (const auto& item : before) copies.push_back(item.second.clone());
  fuzz::expect_only_tg_errors([&] { (void)tg::load_metadata(path); });
  fuzz::expect_only_tg_errors([&] { (void)tg::load_state_dict(path); });
  try {
    tg::load(model, path);
  } catch (const tg::Error&) {
    std::size_t i = 0;  // a failed load changes nothing
    for (const auto& item : model.state_dict())
      if (!fuzz::same_bits(item.second, copies[i++])) __builtin_trap();
    return 0;
  }
  tg::save(model, path);
  nn::Sequential again(nn::Linear(3, 4), nn::BatchNorm1d(4), nn::ReLU(), nn::Linear(4, 2));
  tg::load(again, path);
  return 0;
}
