// IDX files (MNIST, Fashion-MNIST), raw or gzip-compressed.
#pragma once

#include <string>

#include "dataset.hpp"

namespace tg::data {

// Images: magic 2051, unsigned bytes → float32 (N, rows, cols) scaled to [0, 1].
Tensor load_idx_images(const std::string& path);
// Labels: magic 2049, unsigned bytes → int64 (N).
Tensor load_idx_labels(const std::string& path);
// MNIST's four files from `dir` ("train-images-idx3-ubyte" etc., each raw or with ".gz"):
// inputs (N, 784) float32, targets (N) int64. Missing files, bad magic numbers, wrong sizes or
// image and label counts that differ throw and say which file.
TensorDataset load_mnist(const std::string& dir, bool train);

}  // namespace tg::data
