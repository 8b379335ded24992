// Samplers: which dataset indices a DataLoader's epoch visits, and in what order (PyTorch's
// torch.utils.data.Sampler). DistributedSampler gives each process of a data-parallel job its own
// share of the dataset:
//
//   auto sampler = std::make_shared<tg::data::DistributedSampler>(world_size, rank);
//   tg::data::DataLoader loader(train, tg::data::DataLoaderOptions(64).sampler(sampler));
//   for (int epoch = 0; epoch < epochs; ++epoch) { sampler->set_epoch(epoch); for (auto& batch : loader) ... }
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../core/random.hpp"

namespace tg::data {

class Sampler {
 public:
  virtual ~Sampler() = default;
  // The indices of one epoch, for a dataset of `dataset_size` samples.
  virtual std::vector<std::size_t> indices(std::size_t dataset_size) const = 0;
  virtual std::size_t size(std::size_t dataset_size) const = 0;  // how many indices() returns
};

class DistributedSamplerOptions {
 public:
  DistributedSamplerOptions& shuffle(bool on) { shuffle_ = on; return *this; }
  DistributedSamplerOptions& seed(std::uint64_t v) { seed_ = v; return *this; }
  DistributedSamplerOptions& drop_last(bool on) { drop_last_ = on; return *this; }
  bool shuffle() const { return shuffle_; }
  std::uint64_t seed() const { return seed_; }
  bool drop_last() const { return drop_last_; }

 private:
  bool shuffle_ = true;
  std::uint64_t seed_ = 0;
  bool drop_last_ = false;
};

// PyTorch's partition: the indices (shuffled by a generator seeded with seed + epoch, the same on
// every process, when shuffle) are padded by repeating them from the start to a multiple of
// num_replicas (or cut down to one, with drop_last), and process `rank` takes every
// num_replicas-th from position rank. Every process gets the same number of samples, and
// together they cover the dataset. The shuffled order comes from tapegrad's generator, so it is
// not the one PyTorch's randperm draws.
class DistributedSampler : public Sampler {
 public:
  DistributedSampler(std::size_t num_replicas, std::size_t rank, DistributedSamplerOptions options = {});
  // A new order for each epoch; call it with the epoch number before iterating.
  void set_epoch(std::uint64_t epoch) { epoch_ = epoch; }
  std::uint64_t epoch() const { return epoch_; }
  std::vector<std::size_t> indices(std::size_t dataset_size) const override;
  std::size_t size(std::size_t dataset_size) const override;

 private:
  std::size_t num_replicas_, rank_;
  DistributedSamplerOptions options_;
  std::uint64_t epoch_ = 0;
};

// A random order of 0..n-1 (Fisher-Yates) drawn from `generator`.
std::vector<std::size_t> random_permutation(std::size_t n, Generator& generator);

}  // namespace tg::data
