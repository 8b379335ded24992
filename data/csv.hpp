// Numeric CSV files (plain or gzip-compressed) as a TensorDataset.
#pragma once

#include <cstdint>
#include <string>

#include "dataset.hpp"

namespace tg::data {

class CsvOptions {
 public:
  CsvOptions& header(bool on) { header_ = on; return *this; }               // skip the first line
  CsvOptions& label_column(std::int64_t v) { label_column_ = v; return *this; }  // negative: from the end
  CsvOptions& class_labels(bool on) { class_labels_ = on; return *this; }  // int64 (N) labels, else float32 (N, 1)
  CsvOptions& delimiter(char v) { delimiter_ = v; return *this; }
  bool header() const { return header_; }
  std::int64_t label_column() const { return label_column_; }
  bool class_labels() const { return class_labels_; }
  char delimiter() const { return delimiter_; }

 private:
  bool header_ = false;
  std::int64_t label_column_ = -1;
  bool class_labels_ = true;
  char delimiter_ = ',';
};

// Every other column becomes a float32 feature: inputs are (N, columns - 1). A bad row throws
// with the file, the line number and the problem.
TensorDataset load_csv(const std::string& path, const CsvOptions& options = {});

}  // namespace tg::data
