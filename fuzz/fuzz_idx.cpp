// bytes -> load_idx_images and load_idx_labels (raw or gzip): a tg::Error or a tensor of the
// header's shape.
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = fuzz::scratch("idx");
  fuzz::write(path, data, size);
  fuzz::expect_only_tg_errors([&] {
    const tg::Tensor images = tg::data::load_idx_images(path);
    if (images.dim() != 3) __builtin_trap();
  });
  fuzz::expect_only_tg_errors([&] {
    const tg::Tensor labels = tg::data::load_idx_labels(path);
    if (labels.dim() != 1) __builtin_trap();
  });
  return 0;
}
