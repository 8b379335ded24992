#include "data/dataset.hpp"
#include "core/xtensor.hpp"

#include <exception>
#include <tbb/task_group.h>

#include <numeric>

#include "core/autograd.hpp"
#include "core/creation.hpp"
#include "core/ops/elementwise.hpp"
#include "core/ops/shape.hpp"
#include "core/random.hpp"

namespace tg::data {

namespace {

Tensor index_tensor(const std::vector<std::size_t>& indices) {
  return Tensor(std::vector<std::int64_t>(indices.begin(), indices.end()), {indices.size()});
}

std::vector<std::size_t> permutation(std::size_t n, Generator& generator) { return random_permutation(n, generator); }

}  // namespace

Batch Dataset::get_batch(const std::vector<std::size_t>& indices) const {
  std::vector<Tensor> inputs, targets;
  for (std::size_t i : indices) {
    TG_CHECK(i < size(), "Dataset: index ", i, " is out of range for ", size(), " samples");
    Example example = get(i);
    inputs.push_back(std::move(example.input));
    targets.push_back(std::move(example.target));
  }
  return {stack(inputs, 0), stack(targets, 0)};
}

TensorDataset::TensorDataset(Tensor inputs, Tensor targets) : inputs_(std::move(inputs)), targets_(std::move(targets)) {
  TG_CHECK(inputs_.defined() && targets_.defined() && inputs_.dim() >= 1 && targets_.dim() >= 1,
           "TensorDataset: inputs and targets need at least one dim (the samples)");
  TG_CHECK(inputs_.shape()[0] == targets_.shape()[0], "TensorDataset: ", inputs_.shape()[0], " inputs ",
           shape_str(inputs_.shape()), " but ", targets_.shape()[0], " targets ", shape_str(targets_.shape()));
}

Example TensorDataset::get(std::size_t index) const {
  TG_CHECK(index < size(), "TensorDataset: index ", index, " is out of range for ", size(), " samples");
  return {select(inputs_, 0, std::int64_t(index)), select(targets_, 0, std::int64_t(index))};
}

Batch TensorDataset::get_batch(const std::vector<std::size_t>& indices) const {
  const Tensor index = index_tensor(indices);
  return {index_select(inputs_, 0, index), index_select(targets_, 0, index)};
}

// ---- transforms ------------------------------------------------------------------------------------

namespace {

// The input's shape checked for an image transform: (C, H, W).
void check_image(const char* op, const Tensor& input) {
  TG_CHECK(input.dim() == 3, op, ": expects a (C, H, W) image, got ", shape_str(input.shape()));
}

}  // namespace

Transform normalize(std::vector<double> mean, std::vector<double> std) {
  TG_CHECK(mean.size() == std.size() && !mean.empty(), "normalize: expects one mean and one std per channel, got ",
           mean.size(), " and ", std.size());
  for (double s : std) TG_CHECK(s > 0, "normalize: std must be positive, got ", s);
  return [mean = std::move(mean), std = std::move(std)](Example example, Generator&) {
    const Tensor& x = example.input;
    TG_CHECK(x.dim() >= 1 && x.shape()[0] == mean.size(), "normalize: expects ", mean.size(),
             " channels at dim 0, got ", shape_str(x.shape()));
    std::vector<std::int64_t> along(x.dim(), 1);
    along[0] = std::int64_t(mean.size());
    const Tensor m = reshape(Tensor(mean, {mean.size()}).to(x.dtype()), along);
    const Tensor s = reshape(Tensor(std, {std.size()}).to(x.dtype()), along);
    example.input = (x - m) / s;
    return example;
  };
}

Transform random_crop(std::size_t size, std::size_t padding) {
  TG_CHECK(size > 0, "random_crop: size must be positive");
  return [size, padding](Example example, Generator& generator) {
    const Tensor& x = example.input;
    check_image("random_crop", x);
    const std::size_t c = x.shape()[0], h = x.shape()[1] + 2 * padding, w = x.shape()[2] + 2 * padding;
    TG_CHECK(size <= h && size <= w, "random_crop: a ", size, "x", size, " crop does not fit the padded image ",
             shape_str(x.shape()), " (padding ", padding, ")");
    const std::size_t top = std::size_t(generator.integer(0, std::int64_t(h - size + 1)));
    const std::size_t left = std::size_t(generator.integer(0, std::int64_t(w - size + 1)));
    example.input = dispatch_floating(x.dtype(), "random_crop", [&]<class T>() {
      xt::xarray<T> out = xt::zeros<T>({c, size, size});
      const T* in = x.data<T>();
      const std::size_t in_h = x.shape()[1], in_w = x.shape()[2];
      for (std::size_t ch = 0; ch < c; ++ch)
        for (std::size_t i = 0; i < size; ++i) {
          const std::ptrdiff_t row = std::ptrdiff_t(top + i) - std::ptrdiff_t(padding);
          if (row < 0 || row >= std::ptrdiff_t(in_h)) continue;
          for (std::size_t j = 0; j < size; ++j) {
            const std::ptrdiff_t col = std::ptrdiff_t(left + j) - std::ptrdiff_t(padding);
            if (col >= 0 && col < std::ptrdiff_t(in_w))
              out(ch, i, j) = in[(ch * in_h + std::size_t(row)) * in_w + std::size_t(col)];
          }
        }
      return make_tensor<T>(std::move(out));
    });
    return example;
  };
}

Transform random_horizontal_flip(double p) {
  TG_CHECK(p >= 0 && p <= 1, "random_horizontal_flip: p must be in [0, 1], got ", p);
  return [p](Example example, Generator& generator) {
    check_image("random_horizontal_flip", example.input);
    if (generator.uniform() < p) {
      const std::int64_t w = std::int64_t(example.input.shape()[2]);
      std::vector<std::int64_t> reversed(static_cast<std::size_t>(w));
      for (std::int64_t j = 0; j < w; ++j) reversed[std::size_t(j)] = w - 1 - j;
      example.input = index_select(example.input, 2, Tensor(reversed, {reversed.size()}));
    }
    return example;
  };
}

Transform random_noise(double std) {
  TG_CHECK(std >= 0, "random_noise: std must be non-negative, got ", std);
  return [std](Example example, Generator& generator) {
    example.input = example.input + randn(example.input.shape(), generator, example.input.dtype()) * std;
    return example;
  };
}

TransformedDataset::TransformedDataset(std::shared_ptr<Dataset> dataset, std::vector<Transform> transforms)
    : dataset_(std::move(dataset)), transforms_(std::move(transforms)) {
  TG_CHECK(dataset_ != nullptr, "TransformedDataset: the dataset is null");
}

void TransformedDataset::set_epoch_seed(std::uint64_t seed) {
  seed_ = seed;
  dataset_->set_epoch_seed(seed);
}

Example TransformedDataset::get(std::size_t index) const {
  // A generator per (epoch seed, index): splitmix64 of both, so nearby indices are unrelated.
  std::uint64_t z = seed_ + 0x9e3779b97f4a7c15ull * (index + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  Generator generator(z ^ (z >> 31));
  NoGradGuard no_grad;
  Example example = dataset_->get(index);
  for (const Transform& transform : transforms_) example = transform(std::move(example), generator);
  return example;
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

// The batch being prepared on a TBB task, when prefetching.
struct DataLoader::Prefetch {
  tbb::task_group tasks;
  std::size_t batch = 0;
  Batch result;
  std::exception_ptr error;
  bool running = false;
};

DataLoader::DataLoader(std::shared_ptr<Dataset> dataset, DataLoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
  TG_CHECK(dataset_ != nullptr, "DataLoader: the dataset is null");
  TG_CHECK(options_.batch_size() > 0, "DataLoader: batch_size must be positive");
  TG_CHECK(!(options_.sampler() && options_.shuffle()),
           "DataLoader: a sampler and shuffle(true) exclude each other (the sampler decides the order)");
  if (options_.sampler()) {
    order_ = options_.sampler()->indices(dataset_->size());
  } else {
    order_.resize(dataset_->size());
    std::iota(order_.begin(), order_.end(), std::size_t{0});
  }
}

DataLoader::~DataLoader() {
  if (prefetch_ && prefetch_->running) prefetch_->tasks.wait();
}

DataLoader::Iterator DataLoader::begin() {
  if (prefetch_ && prefetch_->running) {  // a batch of the last epoch nobody took
    prefetch_->tasks.wait();
    prefetch_->running = false;
  }
  Generator generator = options_.generator();
  if (options_.sampler()) order_ = options_.sampler()->indices(dataset_->size());
  else if (options_.shuffle()) order_ = permutation(dataset_->size(), generator);
  dataset_->set_epoch_seed(generator.next_u64());
  return Iterator(this, 0);
}

std::size_t DataLoader::size() const {
  const std::size_t b = options_.batch_size();
  const std::size_t n = options_.sampler() ? options_.sampler()->size(dataset_->size()) : dataset_->size();
  return options_.drop_last() ? n / b : (n + b - 1) / b;
}

Batch DataLoader::make_batch(std::size_t batch) const {
  const std::size_t b = options_.batch_size();
  const std::size_t first = batch * b, last = std::min(first + b, order_.size());
  NoGradGuard no_grad;
  return dataset_->get_batch(std::vector<std::size_t>(order_.begin() + std::ptrdiff_t(first),
                                                      order_.begin() + std::ptrdiff_t(last)));
}

Batch DataLoader::take(std::size_t batch) {
  if (!options_.prefetch()) return make_batch(batch);
  if (!prefetch_) prefetch_ = std::make_unique<Prefetch>();
  Prefetch& p = *prefetch_;
  Batch result;
  if (p.running && p.batch == batch) {
    p.tasks.wait();
    p.running = false;
    if (p.error) std::rethrow_exception(std::exchange(p.error, nullptr));
    result = std::move(p.result);
  } else {
    if (p.running) {
      p.tasks.wait();
      p.running = false;
    }
    result = make_batch(batch);
  }
  if (batch + 1 < size()) {  // start the next one while this one is used
    p.batch = batch + 1;
    p.running = true;
    p.tasks.run([this, &p] {
      try {
        p.result = make_batch(p.batch);
      } catch (...) {
        p.error = std::current_exception();
      }
    });
  }
  return result;
}

Batch DataLoader::Iterator::operator*() const { return loader_->take(batch_); }

}  // namespace tg::data
