#include "data/idx.hpp"
#include "../core/xtensor.hpp"

#include <filesystem>

#include "data/read_file.hpp"

namespace tg::data {

namespace {

struct Idx {
  std::vector<std::size_t> dims;
  std::string bytes;  // the whole file
  std::size_t data_offset = 0;
};

std::uint32_t big_endian(const std::string& bytes, std::size_t at) {
  const auto b = [&](std::size_t i) { return std::uint32_t(static_cast<unsigned char>(bytes[at + i])); };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

Idx read_idx(const std::string& path, std::uint32_t magic, std::size_t rank, const char* op) {
  Idx idx;
  idx.bytes = detail::read_file(path, op);
  TG_CHECK(idx.bytes.size() >= 4, op, ": ", path, " is too short for an IDX file (", idx.bytes.size(), " bytes)");
  const std::uint32_t found = big_endian(idx.bytes, 0);
  TG_CHECK(found == magic, op, ": ", path, " has magic number ", found, ", expected ", magic,
           magic == 2051 ? " (an IDX image file)" : " (an IDX label file)");
  TG_CHECK(idx.bytes.size() >= 4 + 4 * rank, op, ": ", path, " is too short for an IDX header (", idx.bytes.size(),
           " bytes)");
  Shape dims;
  for (std::size_t d = 0; d < rank; ++d) {
    idx.dims.push_back(big_endian(idx.bytes, 4 + 4 * d));
    dims.push_back(idx.dims.back());
  }
  const std::size_t count = checked_numel(op, dims);
  idx.data_offset = 4 + 4 * rank;
  TG_CHECK(idx.bytes.size() == idx.data_offset + count, op, ": ", path, " has ", idx.bytes.size() - idx.data_offset,
           " data bytes but its header ", idx.dims, " needs ", count, " (truncated?)");
  return idx;
}

}  // namespace

Tensor load_idx_images(const std::string& path) {
  const Idx idx = read_idx(path, 2051, 3, "load_idx_images");
  xt::xarray<float> images = xt::xarray<float>::from_shape({idx.dims[0], idx.dims[1], idx.dims[2]});
  for (std::size_t i = 0; i < images.size(); ++i)
    images.data()[i] = float(static_cast<unsigned char>(idx.bytes[idx.data_offset + i])) / 255.0f;
  return make_tensor<float>(std::move(images));
}

Tensor load_idx_labels(const std::string& path) {
  const Idx idx = read_idx(path, 2049, 1, "load_idx_labels");
  std::vector<std::int64_t> labels(idx.dims[0]);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<unsigned char>(idx.bytes[idx.data_offset + i]);
  return Tensor(labels, {labels.size()});
}

TensorDataset load_mnist(const std::string& dir, bool train) {
  const std::string prefix = train ? "train" : "t10k";
  auto find = [&](const std::string& name) {
    for (const std::string& candidate : {name, name + ".gz"}) {
      const std::filesystem::path p = std::filesystem::path(dir) / candidate;
      if (std::filesystem::exists(p)) return p.string();
    }
    fail("load_mnist: ", dir, " has no ", name, " (or ", name, ".gz)");
  };
  const std::string images_path = find(prefix + "-images-idx3-ubyte");
  const std::string labels_path = find(prefix + "-labels-idx1-ubyte");
  const Tensor images = load_idx_images(images_path);
  const Tensor labels = load_idx_labels(labels_path);
  TG_CHECK(images.shape()[0] == labels.shape()[0], "load_mnist: ", images_path, " has ", images.shape()[0],
           " images but ", labels_path, " has ", labels.shape()[0], " labels");
  const std::size_t n = images.shape()[0], pixels = images.shape()[1] * images.shape()[2];
  xt::xarray<float> flat = images.values<float>();
  flat.reshape({n, pixels});
  return TensorDataset(make_tensor<float>(std::move(flat)), labels);
}

}  // namespace tg::data
