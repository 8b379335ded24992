// Datasets in memory and the loader that batches them.
//
//   tg::data::TensorDataset train(x, y);                       // x: (N, ...), y: (N, ...)
//   tg::data::DataLoader loader(train, tg::data::DataLoaderOptions(64).shuffle(true));
//   for (const tg::data::Batch& batch : loader) { ... batch.input, batch.target ... }
#pragma once

#include <cstddef>
#include <vector>

#include "core/random.hpp"
#include "core/tensor.hpp"

namespace tg::data {

struct Batch {
  Tensor input;
  Tensor target;
};

// Samples are the entries along dim 0 of `inputs` and `targets`.
class TensorDataset {
 public:
  TensorDataset(Tensor inputs, Tensor targets);
  std::size_t size() const { return inputs_.shape()[0]; }
  // The samples at `indices`, stacked along dim 0.
  Batch get(const std::vector<std::size_t>& indices) const;
  const Tensor& inputs() const { return inputs_; }
  const Tensor& targets() const { return targets_; }

 private:
  Tensor inputs_, targets_;
};

// Splits a dataset into parts of the given lengths (which must add up to its size), after a
// random permutation from the global generator: the same seed gives the same split.
std::vector<TensorDataset> random_split(const TensorDataset& dataset, const std::vector<std::size_t>& lengths,
                                        Generator generator = default_generator());

class DataLoaderOptions {
 public:
  explicit DataLoaderOptions(std::size_t batch_size = 1) : batch_size_(batch_size) {}
  DataLoaderOptions& batch_size(std::size_t v) { batch_size_ = v; return *this; }
  DataLoaderOptions& shuffle(bool on) { shuffle_ = on; return *this; }      // new order every epoch
  DataLoaderOptions& drop_last(bool on) { drop_last_ = on; return *this; }  // drop a short last batch
  // Where shuffled orders come from (default: the global generator); a handle, shared.
  DataLoaderOptions& generator(Generator g) { generator_ = std::move(g); return *this; }
  const Generator& generator() const { return generator_; }
  std::size_t batch_size() const { return batch_size_; }
  bool shuffle() const { return shuffle_; }
  bool drop_last() const { return drop_last_; }

 private:
  std::size_t batch_size_;
  bool shuffle_ = false, drop_last_ = false;
  Generator generator_ = default_generator();
};

// Iterating over a DataLoader is one epoch. With shuffle, begin() draws a new order from the
// options' generator (the global one, seeded by tg::manual_seed, unless another is given).
class DataLoader {
 public:
  DataLoader(TensorDataset dataset, DataLoaderOptions options);

  class Iterator {
   public:
    Batch operator*() const;
    Iterator& operator++() { ++batch_; return *this; }
    bool operator!=(const Iterator& other) const { return batch_ != other.batch_; }

   private:
    friend class DataLoader;
    Iterator(const DataLoader* loader, std::size_t batch) : loader_(loader), batch_(batch) {}
    const DataLoader* loader_;
    std::size_t batch_;
  };

  Iterator begin();
  Iterator end() const { return Iterator(this, size()); }
  std::size_t size() const;  // batches per epoch
  const TensorDataset& dataset() const { return dataset_; }

 private:
  TensorDataset dataset_;
  DataLoaderOptions options_;
  std::vector<std::size_t> order_;
};

}  // namespace tg::data
