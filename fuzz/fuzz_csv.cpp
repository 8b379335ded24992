// bytes -> load_csv (features and class labels, and float targets): a tg::Error or a dataset.
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = fuzz::scratch("csv") + ".csv";
  fuzz::write(path, data, size);
  fuzz::expect_only_tg_errors([&] { (void)tg::data::load_csv(path, tg::data::CsvOptions().class_labels(true)); });
  fuzz::expect_only_tg_errors([&] {
    (void)tg::data::load_csv(path, tg::data::CsvOptions().header(true).label_column(0).class_labels(false));
  });
  return 0;
}
