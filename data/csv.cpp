#include "data/csv.hpp"

#include <cmath>

#include <charconv>
#include <sstream>

#include "data/read_file.hpp"

namespace tg::data {

TensorDataset load_csv(const std::string& path, const CsvOptions& options) {
  const std::string text = detail::read_file(path, "load_csv");
  std::vector<float> features;
  std::vector<double> labels;
  std::size_t columns = 0, rows = 0, line_number = 0, label = 0;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line_number == 1 && options.header()) continue;
    if (line.empty()) continue;
    std::vector<double> fields;
    std::size_t start = 0;
    while (true) {
      const std::size_t end = std::min(line.find(options.delimiter(), start), line.size());
      std::string field = line.substr(start, end - start);
      field.erase(0, field.find_first_not_of(" \t"));
      field.erase(field.find_last_not_of(" \t") + 1);
      double value = 0;
      const auto [ptr, error] = std::from_chars(field.data(), field.data() + field.size(), value);
      TG_CHECK(!field.empty() && error == std::errc() && ptr == field.data() + field.size(), "load_csv: ", path,
               " line ", line_number, ": field ", fields.size() + 1, " \"", field, "\" is not a number");
      fields.push_back(value);
      if (end == line.size()) break;
      start = end + 1;
    }
    if (columns == 0) {
      columns = fields.size();
      TG_CHECK(columns >= 2, "load_csv: ", path, " line ", line_number, ": expected at least 2 columns, got ", columns);
      const auto c = std::int64_t(columns);
      TG_CHECK(options.label_column() >= -c && options.label_column() < c, "load_csv: label_column ",
               options.label_column(), " is out of range for ", columns, " columns");
      label = std::size_t(options.label_column() < 0 ? options.label_column() + c : options.label_column());
    }
    TG_CHECK(fields.size() == columns, "load_csv: ", path, " line ", line_number, ": expected ", columns,
             " fields, got ", fields.size());
    for (std::size_t i = 0; i < columns; ++i) {
      if (i == label) labels.push_back(fields[i]);
      else features.push_back(float(fields[i]));
    }
    if (options.class_labels())
      // The range is checked before the cast: casting inf or 2^63 to int64 is undefined.
      TG_CHECK(fields[label] >= 0 && fields[label] < 9007199254740992.0 && fields[label] == std::floor(fields[label]),
               "load_csv: ", path, " line ",
               line_number, ": label ", fields[label], " is not a class index (a non-negative integer)");
    ++rows;
  }
  TG_CHECK(rows > 0, "load_csv: ", path, " has no data rows");
  Tensor inputs(features, {rows, columns - 1});
  if (options.class_labels())
    return TensorDataset(inputs, Tensor(std::vector<std::int64_t>(labels.begin(), labels.end()), {rows}));
  return TensorDataset(inputs, Tensor(std::vector<float>(labels.begin(), labels.end()), {rows, 1}));
}

}  // namespace tg::data
