#include "data/dataset.hpp"

#include <numeric>

#include "core/ops/shape.hpp"
#include "core/random.hpp"

namespace tg::data {

namespace {

Tensor index_tensor(const std::vector<std::size_t>& indices) {
  return Tensor(std::vector<std::int64_t>(indices.begin(), indices.end()), {indices.size()});
}

// Fisher-Yates.
std::vector<std::size_t> permutation(std::size_t n, Generator& generator) {
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[std::size_t(generator.integer(0, std::int64_t(i)))]);
  return order;
}

}  // namespace

TensorDataset::TensorDataset(Tensor inputs, Tensor targets) : inputs_(std::move(inputs)), targets_(std::move(targets)) {
  TG_CHECK(inputs_.defined() && targets_.defined() && inputs_.dim() >= 1 && targets_.dim() >= 1,
           "TensorDataset: inputs and targets need at least one dim (the samples)");
  TG_CHECK(inputs_.shape()[0] == targets_.shape()[0], "TensorDataset: ", inputs_.shape()[0], " inputs ",
           shape_str(inputs_.shape()), " but ", targets_.shape()[0], " targets ", shape_str(targets_.shape()));
}

Batch TensorDataset::get(const std::vector<std::size_t>& indices) const {
  const Tensor index = index_tensor(indices);
  return {index_select(inputs_, 0, index), index_select(targets_, 0, index)};
}

std::vector<TensorDataset> random_split(const TensorDataset& dataset, const std::vector<std::size_t>& lengths,
                                        Generator generator) {
  const std::size_t total = std::accumulate(lengths.begin(), lengths.end(), std::size_t{0});
  TG_CHECK(total == dataset.size(), "random_split: lengths ", lengths, " add up to ", total, ", not the dataset size ",
           dataset.size());
  const std::vector<std::size_t> order = permutation(dataset.size(), generator);
  std::vector<TensorDataset> parts;
  std::size_t start = 0;
  for (std::size_t length : lengths) {
    const Batch part = dataset.get(std::vector<std::size_t>(order.begin() + std::ptrdiff_t(start),
                                                            order.begin() + std::ptrdiff_t(start + length)));
    parts.emplace_back(part.input, part.target);
    start += length;
  }
  return parts;
}

DataLoader::DataLoader(TensorDataset dataset, DataLoaderOptions options)
    : dataset_(std::move(dataset)), options_(options) {
  TG_CHECK(options_.batch_size() > 0, "DataLoader: batch_size must be positive");
  order_.resize(dataset_.size());
  std::iota(order_.begin(), order_.end(), std::size_t{0});
}

DataLoader::Iterator DataLoader::begin() {
  if (options_.shuffle()) {
    Generator generator = options_.generator();
    order_ = permutation(dataset_.size(), generator);
  }
  return Iterator(this, 0);
}

std::size_t DataLoader::size() const {
  const std::size_t n = dataset_.size(), b = options_.batch_size();
  return options_.drop_last() ? n / b : (n + b - 1) / b;
}

Batch DataLoader::Iterator::operator*() const {
  const std::size_t b = loader_->options_.batch_size();
  const std::size_t first = batch_ * b, last = std::min(first + b, loader_->order_.size());
  return loader_->dataset_.get(std::vector<std::size_t>(loader_->order_.begin() + std::ptrdiff_t(first),
                                                        loader_->order_.begin() + std::ptrdiff_t(last)));
}

}  // namespace tg::data
