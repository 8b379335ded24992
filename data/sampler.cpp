#include "data/sampler.hpp"

#include <numeric>

#include "core/error.hpp"

namespace tg::data {

std::vector<std::size_t> random_permutation(std::size_t n, Generator& generator) {
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[std::size_t(generator.integer(0, std::int64_t(i)))]);
  return order;
}

DistributedSampler::DistributedSampler(std::size_t num_replicas, std::size_t rank, DistributedSamplerOptions options)
    : num_replicas_(num_replicas), rank_(rank), options_(options) {
  TG_CHECK(num_replicas > 0, "DistributedSampler: num_replicas must be positive, got 0");
  TG_CHECK(rank < num_replicas, "DistributedSampler: rank ", rank, " is out of range for ", num_replicas,
           " replicas (ranks 0..", num_replicas - 1, ")");
}

std::size_t DistributedSampler::size(std::size_t n) const {
  if (options_.drop_last()) return n / num_replicas_;                 // ceil((n - R) / R) for n % R != 0
  return (n + num_replicas_ - 1) / num_replicas_;                     // ceil(n / R)
}

std::vector<std::size_t> DistributedSampler::indices(std::size_t n) const {
  std::vector<std::size_t> order(n);
  if (options_.shuffle()) {
    Generator generator(options_.seed() + epoch_);
    order = random_permutation(n, generator);
  } else {
    std::iota(order.begin(), order.end(), std::size_t{0});
  }
  const std::size_t per_replica = size(n), total = per_replica * num_replicas_;
  if (total > n) {  // pad by repeating from the start (as often as needed)
    for (std::size_t i = n; i < total; ++i) order.push_back(order[(i - n) % n]);
  }
  order.resize(total);
  std::vector<std::size_t> mine;
  mine.reserve(per_replica);
  for (std::size_t i = rank_; i < total; i += num_replicas_) mine.push_back(order[i]);
  return mine;
}

}  // namespace tg::data
