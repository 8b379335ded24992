// Datasets in memory and the loader that batches them.
//
//   tg::data::TensorDataset train(x, y);                       // x: (N, ...), y: (N, ...)
//   tg::data::DataLoader loader(train, tg::data::DataLoaderOptions(64).shuffle(true));
//   for (const tg::data::Batch& batch : loader) { ... batch.input, batch.target ... }
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>
#include <vector>

#include "../core/random.hpp"
#include "../core/tensor.hpp"
#include "sampler.hpp"

namespace tg::data {

struct Batch {
  Tensor input;
  Tensor target;
};
using Example = Batch;  // one sample: its input and target, without the batch dim

// A map-style dataset, as PyTorch's torch.utils.data.Dataset: it says its size and returns sample i.
// Derive from it and the DataLoader batches it (stacking samples along a new dim 0):
//
//   struct Squares : tg::data::Dataset {
//     std::size_t size() const override { return 100; }
//     tg::data::Example get(std::size_t i) const override {
//       return {tg::full({1}, double(i)), tg::full({1}, double(i * i))};
//     }
//   };
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual std::size_t size() const = 0;
  virtual Example get(std::size_t index) const = 0;
  // The samples at `indices` stacked along a new dim 0; datasets held in big tensors override
  // this with one gather.
  virtual Batch get_batch(const std::vector<std::size_t>& indices) const;
  // Called by the DataLoader at the start of each epoch with a seed drawn from its generator;
  // random transforms draw from it (see TransformedDataset), so that an epoch's samples depend
  // only on that seed and the sample's index, never on threads or prefetching.
  virtual void set_epoch_seed(std::uint64_t seed) { (void)seed; }
};

// Samples are the entries along dim 0 of `inputs` and `targets`.
class TensorDataset : public Dataset {
 public:
  TensorDataset(Tensor inputs, Tensor targets);
  std::size_t size() const override { return inputs_.shape()[0]; }
  Example get(std::size_t index) const override;
  Batch get_batch(const std::vector<std::size_t>& indices) const override;  // one index_select each
  Batch get(const std::vector<std::size_t>& indices) const { return get_batch(indices); }
  const Tensor& inputs() const { return inputs_; }
  const Tensor& targets() const { return targets_; }

 private:
  Tensor inputs_, targets_;
};

// A per-sample transform: takes a sample and a generator (for random transforms) and returns the
// transformed sample. Compose them in a vector; they run in order.
using Transform = std::function<Example(Example, Generator&)>;

// Input transforms, as torchvision's, for an input of (C, ...) (images: (C, H, W)):
// (x - mean_c) / std_c per channel.
Transform normalize(std::vector<double> mean, std::vector<double> std);
// A random size×size window of a (C, H, W) image zero-padded by `padding` on each side.
Transform random_crop(std::size_t size, std::size_t padding = 0);
// Mirrors a (C, H, W) image left-right with probability p.
Transform random_horizontal_flip(double p = 0.5);
// Adds N(0, std²) noise to every input value.
Transform random_noise(double std);

// A dataset whose samples go through `transforms`. Sample i of an epoch draws its randomness from
// a generator seeded by (the epoch's seed, i): the same seed gives the same samples, whatever the
// thread count or prefetching.
class TransformedDataset : public Dataset {
 public:
  TransformedDataset(std::shared_ptr<Dataset> dataset, std::vector<Transform> transforms);
  std::size_t size() const override { return dataset_->size(); }
  Example get(std::size_t index) const override;
  void set_epoch_seed(std::uint64_t seed) override;

 private:
  std::shared_ptr<Dataset> dataset_;
  std::vector<Transform> transforms_;
  std::uint64_t seed_ = 0;
};

template <class D>
  requires std::is_base_of_v<Dataset, D>
TransformedDataset transformed(D dataset, std::vector<Transform> transforms) {
  return TransformedDataset(std::make_shared<D>(std::move(dataset)), std::move(transforms));
}

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
  // Prepare the next batch on a TBB task while the current one is used (training overlaps data
  // preparation). The batches are the same with or without it.
  DataLoaderOptions& prefetch(bool on) { prefetch_ = on; return *this; }
  // The indices of each epoch come from the sampler (a DistributedSampler: this process's share);
  // shuffle must then stay off.
  DataLoaderOptions& sampler(std::shared_ptr<Sampler> s) { sampler_ = std::move(s); return *this; }
  const std::shared_ptr<Sampler>& sampler() const { return sampler_; }
  bool prefetch() const { return prefetch_; }
  const Generator& generator() const { return generator_; }
  std::size_t batch_size() const { return batch_size_; }
  bool shuffle() const { return shuffle_; }
  bool drop_last() const { return drop_last_; }

 private:
  std::size_t batch_size_;
  bool shuffle_ = false, drop_last_ = false, prefetch_ = false;
  Generator generator_ = default_generator();
  std::shared_ptr<Sampler> sampler_;
};

// Iterating over a DataLoader is one epoch. With shuffle, begin() draws a new order from the
// options' generator (the global one, seeded by tg::manual_seed, unless another is given); every
// epoch it also draws the seed that random transforms use. It takes any Dataset.
class DataLoader {
 public:
  template <class D>
    requires std::is_base_of_v<Dataset, D>
  DataLoader(D dataset, DataLoaderOptions options)
      : DataLoader(std::shared_ptr<Dataset>(std::make_shared<D>(std::move(dataset))), std::move(options)) {}
  DataLoader(std::shared_ptr<Dataset> dataset, DataLoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  class Iterator {
   public:
    Batch operator*() const;
    Iterator& operator++() { ++batch_; return *this; }
    bool operator!=(const Iterator& other) const { return batch_ != other.batch_; }

   private:
    friend class DataLoader;
    Iterator(DataLoader* loader, std::size_t batch) : loader_(loader), batch_(batch) {}
    DataLoader* loader_;
    std::size_t batch_;
  };

  Iterator begin();
  Iterator end() { return Iterator(this, size()); }
  std::size_t size() const;  // batches per epoch
  const Dataset& dataset() const { return *dataset_; }

 private:
  Batch make_batch(std::size_t batch) const;
  Batch take(std::size_t batch);  // the prefetched batch if it is that one, then starts the next

  std::shared_ptr<Dataset> dataset_;
  DataLoaderOptions options_;
  std::vector<std::size_t> order_;
  struct Prefetch;
  std::unique_ptr<Prefetch> prefetch_;
};

}  // namespace tg::data
