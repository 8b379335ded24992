// Datasets, the loader, random_split, CSV and IDX files (written here, raw and gzip), and the
// mnist example run for one short epoch on generated IDX files.
#include <cstdlib>
#include "../core/xtensor.hpp"
#include <filesystem>
#include <fstream>
#include <set>
#include <zlib.h>

#include "helpers.hpp"

using tg::Tensor;
using tg_test::check_close;
namespace data = tg::data;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("tapegrad_data_" + std::to_string(::getpid()) + "_" + std::to_string(std::rand()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

void write_gzip(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  gzwrite(f, bytes.data(), unsigned(bytes.size()));
  gzclose(f);
}

std::string big_endian(std::uint32_t v) {
  return {char(v >> 24), char(v >> 16 & 0xff), char(v >> 8 & 0xff), char(v & 0xff)};
}

// IDX bytes: magic, dims, then one byte per value.
std::string idx_images(std::size_t n, const std::vector<int>& labels) {
  std::string out = big_endian(2051) + big_endian(std::uint32_t(n)) + big_endian(28) + big_endian(28);
  for (std::size_t i = 0; i < n; ++i)
    for (int p = 0; p < 28 * 28; ++p) {
      // Class k lights up rows 2k..2k+5: an easy, learnable pattern.
      const int row = p / 28;
      const bool lit = row >= 2 * labels[i] && row < 2 * labels[i] + 6;
      out += char(lit ? 200 + int(i % 50) : int(i * 7 % 30));
    }
  return out;
}

std::string idx_labels(const std::vector<int>& labels) {
  std::string out = big_endian(2049) + big_endian(std::uint32_t(labels.size()));
  for (int label : labels) out += char(label);
  return out;
}

std::vector<int> labels_for(std::size_t n) {
  std::vector<int> labels;
  for (std::size_t i = 0; i < n; ++i) labels.push_back(int(i * 7 % 10));
  return labels;
}

}  // namespace

TEST_CASE("TensorDataset and DataLoader: batches, drop_last, shuffle by seed, every sample once") {
  const Tensor x = tg::reshape(tg::arange(20), {10, 2});
  const Tensor y = tg::arange(10);
  data::TensorDataset dataset(x, y);
  CHECK(dataset.size() == 10);
  data::DataLoader plain(dataset, data::DataLoaderOptions(4));
  CHECK(plain.size() == 3);
  std::vector<std::size_t> sizes;
  for (const data::Batch& batch : plain) sizes.push_back(batch.input.shape()[0]);
  CHECK(sizes == std::vector<std::size_t>{4, 4, 2});
  CHECK(data::DataLoader(dataset, data::DataLoaderOptions(4).drop_last(true)).size() == 2);

  auto epoch_order = [&](std::uint64_t seed) {
    tg::manual_seed(seed);
    data::DataLoader loader(dataset, data::DataLoaderOptions(3).shuffle(true));
    std::vector<double> order;
    for (const data::Batch& batch : loader) {
      for (double v : tg_test::flat(batch.target)) order.push_back(v);
      // inputs stay paired with their targets
      for (std::size_t i = 0; i < batch.target.numel(); ++i)
        CHECK(batch.input.values<float>()(i, 0) == 2 * batch.target.values<float>()(i));
    }
    return order;
  };
  const auto a = epoch_order(5), b = epoch_order(5), c = epoch_order(6);
  CHECK(a == b);
  CHECK(a != c);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == tg_test::flat(y));
  CHECK_THROWS_WITH_AS(data::TensorDataset(x, tg::arange(9)), "TensorDataset: 10 inputs [10, 2] but 9 targets [9]",
                       tg::Error);
}

TEST_CASE("random_split is a seeded partition") {
  data::TensorDataset dataset(tg::arange(10), tg::arange(10));
  tg::manual_seed(1);
  const auto parts = data::random_split(dataset, {7, 3});
  CHECK(parts[0].size() == 7);
  CHECK(parts[1].size() == 3);
  std::vector<double> all = tg_test::flat(parts[0].inputs());
  for (double v : tg_test::flat(parts[1].inputs())) all.push_back(v);
  std::sort(all.begin(), all.end());
  CHECK(all == tg_test::flat(tg::arange(10)));
  tg::manual_seed(1);
  CHECK(tg_test::flat(data::random_split(dataset, {7, 3})[1].inputs()) == tg_test::flat(parts[1].inputs()));
  CHECK_THROWS_WITH_AS(data::random_split(dataset, {7, 2}), "random_split: lengths [7, 2] add up to 9, not the dataset size 10",
                       tg::Error);
}

TEST_CASE("CSV files: header, label column, gzip, and bad rows with line numbers") {
  TempDir dir;
  write_text(dir.file("a.csv"), "label,x,y\n1,0.5,2\n0,-1.5,3e2\r\n\n2, 4 ,5\n");
  const data::TensorDataset a = data::load_csv(dir.file("a.csv"), data::CsvOptions().header(true).label_column(0));
  tg_test::check_close(a.inputs(), {0.5, 2, -1.5, 300, 4, 5});
  CHECK(a.targets().dtype() == tg::kInt64);
  tg_test::check_close(a.targets(), {1, 0, 2});
  write_gzip(dir.file("b.csv.gz"), "0.5,1,0.25\n2,3,1.5\n");
  const data::TensorDataset b = data::load_csv(dir.file("b.csv.gz"), data::CsvOptions().class_labels(false));
  CHECK(b.targets().shape() == tg::Shape{2, 1});
  tg_test::check_close(b.targets(), {0.25, 1.5});

  write_text(dir.file("bad.csv"), "1,2,3\n4,5\n");
  CHECK_THROWS_WITH_AS(data::load_csv(dir.file("bad.csv")), doctest::Contains("bad.csv line 2: expected 3 fields, got 2"),
                       tg::Error);
  write_text(dir.file("nan.csv"), "1,2,3\n4,x5,6\n");
  CHECK_THROWS_WITH_AS(data::load_csv(dir.file("nan.csv")),
                       doctest::Contains("nan.csv line 2: field 2 \"x5\" is not a number"), tg::Error);
  write_text(dir.file("label.csv"), "1,2,0.5\n");
  CHECK_THROWS_WITH_AS(data::load_csv(dir.file("label.csv")),
                       doctest::Contains("line 1: label 0.5 is not a class index"), tg::Error);
  CHECK_THROWS_WITH_AS(data::load_csv(dir.file("missing.csv")), doctest::Contains("load_csv: cannot open"), tg::Error);
}

TEST_CASE("IDX files read back, raw or gzip, and bad files say what is wrong") {
  TempDir dir;
  const std::vector<int> labels = labels_for(5);
  write_text(dir.file("train-images-idx3-ubyte"), idx_images(5, labels));
  write_gzip(dir.file("train-labels-idx1-ubyte.gz"), idx_labels(labels));
  const Tensor images = data::load_idx_images(dir.file("train-images-idx3-ubyte"));
  CHECK(images.shape() == tg::Shape{5, 28, 28});
  CHECK(images.values<float>()(1, 0, 0) == doctest::Approx(7.0 / 255.0));
  const Tensor read_labels = data::load_idx_labels(dir.file("train-labels-idx1-ubyte.gz"));
  tg_test::check_close(read_labels, {0, 7, 4, 1, 8});

  const std::string full = idx_images(5, labels);
  write_text(dir.file("short"), full.substr(0, full.size() - 10));
  CHECK_THROWS_WITH_AS(data::load_idx_images(dir.file("short")),
                       doctest::Contains("has 3910 data bytes but its header [5, 28, 28] needs 3920 (truncated?)"), tg::Error);
  CHECK_THROWS_WITH_AS(data::load_idx_images(dir.file("train-labels-idx1-ubyte.gz")),
                       doctest::Contains("has magic number 2049, expected 2051"), tg::Error);
  write_gzip(dir.file("broken.gz"), full);
  std::string gz;
  {
    std::ifstream in(dir.file("broken.gz"), std::ios::binary);
    gz.assign(std::istreambuf_iterator<char>(in), {});
  }
  write_text(dir.file("broken.gz"), gz.substr(0, gz.size() / 2));
  CHECK_THROWS_WITH_AS(data::load_idx_images(dir.file("broken.gz")), doctest::Contains("is corrupt or truncated"), tg::Error);

  // Mislabelled: more labels than images.
  write_text(dir.file("t10k-images-idx3-ubyte"), idx_images(5, labels));
  write_text(dir.file("t10k-labels-idx1-ubyte"), idx_labels(labels_for(6)));
  CHECK_THROWS_WITH_AS(data::load_mnist(dir.path.string(), false), doctest::Contains("has 5 images but"), tg::Error);
  const data::TensorDataset train = data::load_mnist(dir.path.string(), true);
  CHECK(train.inputs().shape() == tg::Shape{5, 784});
}

#ifdef TAPEGRAD_MNIST_EXAMPLE
TEST_CASE("the mnist example trains one short epoch on generated IDX files") {
  TempDir dir;
  write_gzip(dir.file("train-images-idx3-ubyte.gz"), idx_images(600, labels_for(600)));
  write_gzip(dir.file("train-labels-idx1-ubyte.gz"), idx_labels(labels_for(600)));
  write_text(dir.file("t10k-images-idx3-ubyte"), idx_images(100, labels_for(100)));
  write_text(dir.file("t10k-labels-idx1-ubyte"), idx_labels(labels_for(100)));
  const std::string log = dir.file("log.txt");
  const std::string command = std::string(TAPEGRAD_MNIST_EXAMPLE) + " --data " + dir.path.string() +
                              " --epochs 1 --batch-size 32 > " + log + " 2>&1";
  REQUIRE(std::system(command.c_str()) == 0);
  std::ifstream in(log);
  const std::string output((std::istreambuf_iterator<char>(in)), {});
  INFO(output);
  CHECK(output.find("epoch   1/1") != std::string::npos);
  CHECK(output.find("test accuracy 100.0%") != std::string::npos);  // the pattern is easy
  CHECK(std::system((std::string(TAPEGRAD_MNIST_EXAMPLE) + " --data " + dir.path.string() + " --epochs 1 --batch-size 32 --save "
                     + dir.file("a.safetensors") + " > /dev/null").c_str()) == 0);
  // A true resume: 1 epoch then 1 more resumed writes the checkpoint of 2 straight, byte for byte.
  const std::string base = std::string(TAPEGRAD_MNIST_EXAMPLE) + " --data " + dir.path.string() + " --batch-size 32 ";
  REQUIRE(std::system((base + "--epochs 2 --save " + dir.file("straight.safetensors") + " > /dev/null").c_str()) == 0);
  REQUIRE(std::system((base + "--epochs 2 --resume " + dir.file("a.safetensors") + " --save " + dir.file("b.safetensors") +
                       " > /dev/null").c_str()) == 0);
  std::ifstream straight(dir.file("straight.safetensors"), std::ios::binary), resumed(dir.file("b.safetensors"), std::ios::binary);
  const std::string straight_bytes((std::istreambuf_iterator<char>(straight)), {});
  const std::string resumed_bytes((std::istreambuf_iterator<char>(resumed)), {});
  CHECK(!straight_bytes.empty());
  CHECK(straight_bytes == resumed_bytes);
  CHECK(std::system((std::string(TAPEGRAD_MNIST_EXAMPLE) + " --data /nonexistent > /dev/null 2>&1").c_str()) != 0);
}
#endif

// ---- datasets of your own, transforms, prefetching ------------------------------------------------

namespace {

struct Squares : tg::data::Dataset {
  std::size_t size() const override { return 10; }
  tg::data::Example get(std::size_t i) const override {
    return {tg::full({1}, double(i)), Tensor(std::vector<std::int64_t>{std::int64_t(i * i)}, {})};
  }
};

// Random 2x4x4 "images" whose label is their index.
struct Images : tg::data::Dataset {
  std::size_t size() const override { return 12; }
  tg::data::Example get(std::size_t i) const override {
    return {tg::arange(32).reshape({2, 4, 4}) + double(i), Tensor(std::vector<std::int64_t>{std::int64_t(i)}, {})};
  }
};

std::vector<std::vector<double>> epoch_of(tg::data::DataLoader& loader) {
  std::vector<std::vector<double>> out;
  for (const tg::data::Batch& batch : loader) {
    out.push_back(batch.input.to_vector<double>());
    out.push_back(batch.target.to_vector<double>());
  }
  return out;
}

}  // namespace

TEST_CASE("a dataset of your own: size and get(i), batched by the DataLoader") {
  tg::data::DataLoader loader(Squares(), tg::data::DataLoaderOptions(4));
  std::vector<tg::data::Batch> batches;
  for (const tg::data::Batch& batch : loader) batches.push_back(batch);
  REQUIRE(batches.size() == 3);
  CHECK(batches[0].input.shape() == tg::Shape{4, 1});
  CHECK(batches[0].target.dtype() == tg::kInt64);
  CHECK(batches[2].target.to_vector<std::int64_t>() == std::vector<std::int64_t>{64, 81});
  // TensorDataset is one such dataset: get(i) drops the batch dim.
  const tg::data::TensorDataset tensors(tg::arange(6).reshape({3, 2}), tg::arange(3));
  CHECK(tensors.get(std::size_t{1}).input.shape() == tg::Shape{2});
  CHECK_THROWS_WITH_AS(tensors.get(std::size_t{3}), "TensorDataset: index 3 is out of range for 3 samples", tg::Error);
}

TEST_CASE("transforms: normalize, random crop, random flip, random noise") {
  tg::Generator generator(1);
  tg::data::Example image{tg::arange(8).reshape({2, 2, 2}), Tensor()};
  const auto normalized = tg::data::normalize({1.0, 5.0}, {2.0, 0.5})(image, generator);
  check_close(normalized.input, {-0.5, 0, 0.5, 1, -2, 0, 2, 4});
  // A flip with p = 1 mirrors each row; p = 0 keeps it.
  check_close(tg::data::random_horizontal_flip(1.0)(image, generator).input, {1, 0, 3, 2, 5, 4, 7, 6});
  check_close(tg::data::random_horizontal_flip(0.0)(image, generator).input, {0, 1, 2, 3, 4, 5, 6, 7});
  // A 2x2 crop of a 2x2 image padded by 1 is one of 9 windows; every value comes from the image or padding.
  for (int i = 0; i < 20; ++i) {
    const Tensor crop = tg::data::random_crop(2, 1)(image, generator).input;
    CHECK(crop.shape() == tg::Shape{2, 2, 2});
    for (double v : crop.to_vector<double>()) CHECK((v == 0 || (v >= 0 && v <= 7 && v == std::floor(v))));
  }
  const Tensor noisy = tg::data::random_noise(0.1)(image, generator).input;
  CHECK_FALSE(tg_test::bitwise_equal(noisy, image.input));
  CHECK(std::abs(tg::mean(noisy - image.input).item()) < 0.2);
  CHECK_THROWS_WITH_AS(tg::data::random_crop(5)(image, generator), doctest::Contains("random_crop: a 5x5 crop does not fit"),
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::data::normalize({0.0}, {1.0})(image, generator),
                       "normalize: expects 1 channels at dim 0, got [2, 2, 2]", tg::Error);
}

TEST_CASE("the same seed gives the same batches with or without prefetching, with 1 or 2 threads") {
  auto run = [](bool prefetch, int threads) {
    tg::set_num_threads(threads);
    auto data = tg::data::transformed(Images(), {tg::data::random_crop(4, 1), tg::data::random_horizontal_flip(),
                                                 tg::data::random_noise(0.05), tg::data::normalize({0, 0}, {1, 2})});
    tg::data::DataLoader loader(std::move(data),
                                tg::data::DataLoaderOptions(5).shuffle(true).prefetch(prefetch).generator(tg::Generator(7)));
    std::vector<std::vector<double>> two_epochs = epoch_of(loader);
    for (auto& values : epoch_of(loader)) two_epochs.push_back(values);
    return two_epochs;
  };
  const auto reference = run(false, 1);
  CHECK(run(true, 1) == reference);
  CHECK(run(true, 2) == reference);
  CHECK(run(false, 2) == reference);
  tg::set_num_threads(2);
  // Two epochs differ (new order and new random transforms), and breaking off an epoch early is fine.
  CHECK(std::vector<std::vector<double>>(reference.begin(), reference.begin() + 6) !=
        std::vector<std::vector<double>>(reference.begin() + 6, reference.end()));
  tg::data::DataLoader loader(Images(), tg::data::DataLoaderOptions(2).prefetch(true));
  for (const tg::data::Batch& batch : loader) {
    CHECK(batch.input.shape()[0] == 2);
    break;
  }
  CHECK(epoch_of(loader).size() == 12);
}

TEST_CASE("DistributedSampler: PyTorch's partition over ranks, padded or dropped, reshuffled per epoch") {
  using tg::data::DistributedSampler;
  using tg::data::DistributedSamplerOptions;
  for (std::size_t replicas : {1, 2, 3, 4}) {
    for (std::size_t n : {0, 1, 5, 10, 11}) {
      for (bool drop_last : {false, true}) {
        for (bool shuffle : {false, true}) {
          INFO("replicas " << replicas << " n " << n << " drop_last " << drop_last << " shuffle " << shuffle);
          std::vector<std::size_t> seen;
          const std::size_t per = drop_last ? n / replicas : (n + replicas - 1) / replicas;
          for (std::size_t rank = 0; rank < replicas; ++rank) {
            DistributedSampler sampler(replicas, rank, DistributedSamplerOptions().shuffle(shuffle).drop_last(drop_last).seed(4));
            sampler.set_epoch(2);
            const std::vector<std::size_t> mine = sampler.indices(n);
            CHECK(mine.size() == per);
            CHECK(sampler.size(n) == per);
            seen.insert(seen.end(), mine.begin(), mine.end());
            if (!shuffle && n > 0)  // every replicas-th index from position rank, wrapping to pad
              for (std::size_t k = 0; k < mine.size(); ++k) CHECK(mine[k] == (rank + k * replicas) % n);
          }
          std::sort(seen.begin(), seen.end());
          std::set<std::size_t> distinct(seen.begin(), seen.end());
          for (std::size_t i : seen) CHECK(i < n);
          // Without drop_last every sample is visited (a few twice, as padding); with it, none twice.
          if (!drop_last) CHECK(distinct.size() == n);
          else CHECK(distinct.size() == seen.size());
        }
      }
    }
  }
  // The same epoch gives the same order on every rank's sampler; another epoch another order.
  DistributedSampler a(2, 0), b(2, 1);
  auto merged = [&] {
    std::vector<std::size_t> v = a.indices(20), w = b.indices(20);
    v.insert(v.end(), w.begin(), w.end());
    return v;
  };
  const std::vector<std::size_t> epoch0 = merged();
  a.set_epoch(1);
  b.set_epoch(1);
  CHECK(merged() != epoch0);
  a.set_epoch(0);
  b.set_epoch(0);
  CHECK(merged() == epoch0);
  CHECK_THROWS_WITH_AS(DistributedSampler(2, 2), "DistributedSampler: rank 2 is out of range for 2 replicas (ranks 0..1)",
                       tg::Error);
  CHECK_THROWS_WITH_AS(DistributedSampler(0, 0), "DistributedSampler: num_replicas must be positive, got 0", tg::Error);
}

TEST_CASE("DataLoader with a sampler: its indices, its length; shuffle excluded") {
  const tg::data::TensorDataset data(tg::arange(0, 10).reshape({10, 1}), tg::arange(0, 10));
  auto sampler = std::make_shared<tg::data::DistributedSampler>(3, 1, tg::data::DistributedSamplerOptions().shuffle(false));
  tg::data::DataLoader loader(data, tg::data::DataLoaderOptions(2).sampler(sampler));
  CHECK(loader.size() == 2);  // 4 samples: 1, 4, 7, and 0 as padding
  std::vector<double> targets;
  for (const tg::data::Batch& batch : loader)
    for (double v : batch.target.to_vector<double>()) targets.push_back(v);
  CHECK(targets == std::vector<double>{1, 4, 7, 0});
  CHECK_THROWS_WITH_AS(tg::data::DataLoader(data, tg::data::DataLoaderOptions(2).sampler(sampler).shuffle(true)),
                       "DataLoader: a sampler and shuffle(true) exclude each other (the sampler decides the order)",
                       tg::Error);
}
