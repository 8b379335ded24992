// Hostile files and odd inputs: overflowing shapes, empty dimensions, deeply nested headers,
// leftovers of killed saves, and a table of misuses, each checked for tg::Error and its words.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "helpers.hpp"

using tg::Tensor;
namespace nn = tg::nn;
namespace optim = tg::optim;
namespace fs = std::filesystem;

namespace {

struct ScratchDir {
  fs::path path = fs::temp_directory_path() / ("tapegrad_hostile_" + std::to_string(::getpid()));
  ScratchDir() { fs::create_directories(path); }
  ~ScratchDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A safetensors file: the 8-byte length, the header text, then `data`.
std::string safetensors(const std::string& header, const std::string& data = "") {
  std::string file(8, '\0');
  const std::uint64_t length = header.size();
  std::memcpy(file.data(), &length, 8);
  return file + header + data;
}

std::string big_endian(std::uint32_t v) {
  return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
}

}  // namespace

TEST_CASE("hostile safetensors files load to a clear tg::Error and nothing else") {
  ScratchDir dir;
  const std::string path = dir.file("hostile.safetensors");
  auto expect = [&](const std::string& bytes, const std::string& words) {
    write(path, bytes);
    CHECK_THROWS_WITH_AS(tg::load_state_dict(path), doctest::Contains(words.c_str()), tg::Error);
    nn::Linear layer(2, 2);
    const Tensor before = layer.weight.clone();
    CHECK_THROWS_AS(tg::load(layer, path), tg::Error);
    CHECK(tg_test::bitwise_equal(layer.weight, before));  // a failed load leaves the model as it was
  };
  // The 82-byte file: [2^32, 2^32] elements and no data.
  expect(safetensors(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})"),
         "the shape [4294967296, 4294967296] has more elements than fit in memory");
  // count × dtype size overflows although the count fits.
  expect(safetensors(R"({"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}})"),
         "has more bytes than fit in memory");
  // A shape nested 80,000 levels deep: rejected while parsing, never printed.
  expect(safetensors(R"({"w":{"dtype":"F32","shape":)" + std::string(80000, '[') + std::string(80000, ']') +
                     R"(,"data_offsets":[0,0]}})"),
         "the JSON header nests deeper than 4 levels");
  // Untrusted values are described, not dumped.
  write(path, safetensors(R"({"w":{"dtype":"F32","shape":[1,"x"],"data_offsets":[0,4]}})", "abcd"));
  CHECK_THROWS_WITH_AS(tg::load_state_dict(path), doctest::Contains("tensor \"w\": shape entry 1 is not a non-negative integer"),
                       tg::Error);
  expect(safetensors(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,{"a":1}]}})", "abcd"),
         "tensor \"w\": data_offsets must be two non-negative integers");
  expect(safetensors(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "ab"), "run past the data section");
  expect(std::string(5, '\0'), "too few for a safetensors header length");
  expect(safetensors("{not json"), "invalid JSON header");
  // A directory is not a file.
  CHECK_THROWS_WITH_AS(tg::load_state_dict(dir.path.string()), doctest::Contains("is a directory, not a safetensors file"),
                       tg::Error);
  nn::Linear layer(2, 2);
  CHECK_THROWS_WITH_AS(tg::load(layer, dir.path.string()), doctest::Contains(dir.path.string().c_str()), tg::Error);
  CHECK_THROWS_WITH_AS(tg::save(layer, dir.path.string()), doctest::Contains("is a directory, not a file"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::load_state_dict(dir.file("missing.safetensors")), doctest::Contains("cannot open the file"),
                       tg::Error);
}

TEST_CASE("zero-element tensors save and load; a killed save's temporary is cleaned by the next save") {
  ScratchDir dir;
  nn::StateDict state;
  state.insert("empty", tg::zeros({0, 3}));
  state.insert("scalar", tg::full({}, 2.0));
  state.insert("none", Tensor(std::vector<std::int64_t>{}, {0}));
  tg::save(state, dir.file("e.safetensors"));
  const nn::StateDict back = tg::load_state_dict(dir.file("e.safetensors"));
  CHECK(back.at("empty").shape() == tg::Shape{0, 3});
  CHECK(back.at("none").dtype() == tg::kInt64);
  CHECK(back.at("scalar").item() == 2.0);

  // A temporary of a process that is gone (a child that has exited), and one of a live process.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  const std::string stale = dir.file("e.safetensors.tmp." + std::to_string(child) + ".0");
  const std::string live = dir.file("e.safetensors.tmp." + std::to_string(::getpid()) + ".999");
  const std::string other = dir.file("f.safetensors.tmp." + std::to_string(child) + ".0");
  for (const std::string& p : {stale, live, other}) write(p, "partial");
  tg::save(state, dir.file("e.safetensors"));
  CHECK_FALSE(fs::exists(stale));
  CHECK(fs::exists(live));   // another save may still be writing it
  CHECK(fs::exists(other));  // another target's
}

TEST_CASE("hostile IDX and CSV files give clear errors") {
  ScratchDir dir;
  // 16 bytes: an image file claiming 2^32-1 × 2^32-1 × 2^32-1 images with no data.
  write(dir.file("huge-idx3"), big_endian(2051) + big_endian(0xffffffffu) + big_endian(0xffffffffu) + big_endian(0xffffffffu));
  CHECK_THROWS_WITH_AS(tg::data::load_idx_images(dir.file("huge-idx3")),
                       doctest::Contains("load_idx_images: the shape [4294967295, 4294967295, 4294967295] has more elements"),
                       tg::Error);
  // Found by fuzz_idx: a zero dim beside two huge ones (xtensor's strides would overflow).
  write(dir.file("zero-idx3"), big_endian(2051) + big_endian(0) + big_endian(0xff0100ffu) + big_endian(0xffffffffu));
  CHECK_THROWS_WITH_AS(tg::data::load_idx_images(dir.file("zero-idx3")),
                       doctest::Contains("the shape [0, 4278255871, 4294967295] has more elements than fit in memory"),
                       tg::Error);
  write(dir.file("labels-idx1"), big_endian(2049) + big_endian(5) + "ab");
  CHECK_THROWS_WITH_AS(tg::data::load_idx_labels(dir.file("labels-idx1")), doctest::Contains("truncated"), tg::Error);
  for (const std::string& label : {"inf", "1e300", "9223372036854775808", "-1", "1.5", "nan"}) {
    write(dir.file("data.csv"), "1,2," + label + "\n");
    INFO("label ", label);
    CHECK_THROWS_WITH_AS(tg::data::load_csv(dir.file("data.csv"), tg::data::CsvOptions().class_labels(true)),
                         doctest::Contains("is not a class index"), tg::Error);
  }
}

TEST_CASE("shapes whose element count overflows are refused everywhere") {
  const tg::Shape huge{std::size_t(1) << 32, std::size_t(1) << 32};
  CHECK_THROWS_WITH_AS(tg::zeros(huge), "zeros: the shape [4294967296, 4294967296] has more elements than fit in memory "
                                        "(the product overflows)",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::randn(huge), doctest::Contains("randn: the shape"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::empty(huge), doctest::Contains("empty: the shape"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::full(huge, 1.0), doctest::Contains("full: the shape"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::zeros({std::size_t(1) << 61}, tg::kFloat64), doctest::Contains("zeros: the shape [2305843009213693952] has more bytes"),
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::reshape(tg::zeros({4}), {std::int64_t(1) << 32, std::int64_t(1) << 32, 0, -1}),
                       doctest::Contains("reshape"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::reshape(tg::zeros({4}), {std::int64_t(1) << 62, 4}), doctest::Contains("reshape: the shape"),
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::expand(tg::zeros({1, 1}), {std::int64_t(1) << 40, std::int64_t(1) << 40}),
                       doctest::Contains("expand: the shape"), tg::Error);
  CHECK_THROWS_WITH_AS(Tensor(std::vector<float>{1.0f}, huge), doctest::Contains("Tensor: the shape"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::narrow(tg::zeros({4}), 0, 2, INT64_MAX), doctest::Contains("narrow: start 2 and length"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::narrow(tg::zeros({4}), 0, INT64_MAX, 2), doctest::Contains("out of range"), tg::Error);
  // A shape with a zero is fine when the other dims' product fits (their strides must).
  CHECK(tg::zeros({0, std::size_t(1) << 40}).numel() == 0);
  CHECK_THROWS_WITH_AS(tg::zeros({0, std::size_t(1) << 40, std::size_t(1) << 40}), doctest::Contains("zeros: the shape"),
                       tg::Error);
}

TEST_CASE("empty dimensions: reductions give PyTorch's values, and an empty batch passes every layer and loss") {
  CHECK(tg_test::flat(tg::sum(tg::zeros({0, 3}), {0})) == std::vector<double>{0, 0, 0});
  CHECK(tg::sum(tg::zeros({0, 3})).item() == 0.0);
  CHECK(std::isnan(tg::mean(tg::zeros({0, 3})).item()));
  for (double v : tg_test::flat(tg::mean(tg::zeros({0, 3}), {0}))) CHECK(std::isnan(v));
  CHECK(tg::sum(tg::zeros({3, 0}), {1}).shape() == tg::Shape{3});
  CHECK(std::get<0>(tg::max(tg::zeros({0, 3}), 1)).shape() == tg::Shape{0});
  CHECK_THROWS_WITH_AS(tg::max(tg::zeros({0, 3}), 0), "max: cannot reduce over dim 0 of size 0 in [0, 3] (there is no identity for max)",
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::argmax(tg::zeros({0})), doctest::Contains("argmax: cannot reduce over an empty tensor"), tg::Error);

  // Every layer, forward and backward, on a batch of 0.
  std::vector<std::pair<std::string, std::shared_ptr<nn::Module>>> layers = {
      {"Linear", std::make_shared<nn::Linear>(4, 3)},
      {"LayerNorm", std::make_shared<nn::LayerNorm>(nn::LayerNormOptions({4}))},
      {"Dropout", std::make_shared<nn::Dropout>(0.5)},
      {"ReLU", std::make_shared<nn::ReLU>()},
      {"LeakyReLU", std::make_shared<nn::LeakyReLU>()},
      {"Sigmoid", std::make_shared<nn::Sigmoid>()},
      {"Tanh", std::make_shared<nn::Tanh>()},
      {"GELU", std::make_shared<nn::GELU>()},
      {"Softmax", std::make_shared<nn::Softmax>(1)},
      {"LogSoftmax", std::make_shared<nn::LogSoftmax>(1)},
      {"Flatten", std::make_shared<nn::Flatten>()},
      {"Identity", std::make_shared<nn::Identity>()},
      {"Sequential", std::make_shared<nn::Sequential>(nn::Linear(4, 5), nn::ReLU(), nn::Linear(5, 2))},
  };
  for (auto& [name, layer] : layers) {
    INFO(name);
    const Tensor x = tg::zeros({0, 4}).set_requires_grad();
    const Tensor y = (*layer)(x);
    CHECK(y.shape()[0] == 0);
    tg::sum(y).backward();
    CHECK(x.grad().shape() == tg::Shape{0, 4});
    for (const Tensor& p : layer->parameters())
      if (p.grad().defined())
        for (double g : tg_test::flat(p.grad())) CHECK(g == 0.0);
  }
  // BatchNorm1d takes an empty batch in both modes, as PyTorch's: in training the running statistics
  // stay as they were and num_batches_tracked still counts the batch (torch.nn.BatchNorm1d(4) on
  // torch.zeros(0, 4): running_mean zeros, running_var ones, num_batches_tracked 1).
  nn::BatchNorm1d bn(4);
  for (bool training : {true, false}) {
    bn.train(training);
    const Tensor x = tg::zeros({0, 4}).set_requires_grad();
    tg::sum(bn(x)).backward();
    CHECK(x.grad().shape() == tg::Shape{0, 4});
  }
  for (double v : tg_test::flat(bn.running_mean)) CHECK(v == 0.0);
  for (double v : tg_test::flat(bn.running_var)) CHECK(v == 1.0);
  CHECK(bn.num_batches_tracked.item<std::int64_t>() == 1);

  // Every loss: sum is 0, mean is NaN (0/0), none is empty; backward gives empty gradients.
  Tensor input = tg::zeros({0, 3}).set_requires_grad();
  const Tensor target = tg::zeros({0, 3}), labels = Tensor(std::vector<std::int64_t>{}, {0});
  const std::vector<std::pair<std::string, std::function<Tensor(tg::Reduction)>>> losses = {
      {"mse", [&](tg::Reduction r) { return tg::mse_loss(input, target, r); }},
      {"l1", [&](tg::Reduction r) { return tg::l1_loss(input, target, r); }},
      {"smooth_l1", [&](tg::Reduction r) { return tg::smooth_l1_loss(input, target, r); }},
      {"huber", [&](tg::Reduction r) { return tg::huber_loss(input, target, r); }},
      {"bce", [&](tg::Reduction r) { return tg::binary_cross_entropy(tg::sigmoid(input), target, r); }},
      {"bce_logits", [&](tg::Reduction r) { return tg::binary_cross_entropy_with_logits(input, target, r); }},
      {"cross_entropy", [&](tg::Reduction r) { tg::ClassLossOptions o; o.reduction = r; return tg::cross_entropy(input, labels, o); }},
      {"cross_entropy probs", [&](tg::Reduction r) { tg::ClassLossOptions o; o.reduction = r; return tg::cross_entropy(input, target, o); }},
      {"nll", [&](tg::Reduction r) { tg::ClassLossOptions o; o.reduction = r; return tg::nll_loss(input, labels, o); }},
  };
  for (const auto& [name, loss] : losses) {
    INFO(name);
    CHECK(loss(tg::Reduction::Sum).item() == 0.0);
    CHECK(std::isnan(loss(tg::Reduction::Mean).item()));
    CHECK(loss(tg::Reduction::None).numel() == 0);
    input.set_grad(Tensor());
    loss(tg::Reduction::Sum).backward();
    CHECK(input.grad().shape() == tg::Shape{0, 3});
  }
}

TEST_CASE("per-object generators: two threads each train reproducibly, whatever the other does") {
  // A small model trained on one thread with its own generator for data, init, shuffling and
  // dropout. Layers are built first (their default initialisation draws from the global
  // generator, which is not thread-safe), then initialised again from the thread's generator.
  struct Model {
    nn::Linear first{3, 8}, second{8, 2};
  };
  auto train = [](Model& m, std::uint64_t seed) {
    tg::Generator generator(seed);
    const Tensor x = tg::randn({64, 3}, generator), y = tg::randint(0, 2, {64}, generator);
    nn::init::kaiming_uniform_(m.first.weight, std::sqrt(5.0), "fan_in", "leaky_relu", generator);
    nn::init::uniform_(m.first.bias, -0.1, 0.1, generator);
    nn::init::xavier_normal_(m.second.weight, 1.0, generator);
    nn::init::zeros_(m.second.bias);
    nn::Dropout dropout(0.3, generator);
    optim::SGD opt({m.first.weight, m.first.bias, m.second.weight, m.second.bias}, optim::SGDOptions(0.1));
    tg::data::DataLoader loader(tg::data::TensorDataset(x, y), tg::data::DataLoaderOptions(16).shuffle(true).generator(generator));
    for (int epoch = 0; epoch < 3; ++epoch)
      for (const tg::data::Batch& batch : loader) {
        opt.zero_grad();
        tg::cross_entropy(m.second(dropout(tg::relu(m.first(batch.input)))), batch.target).backward();
        opt.step();
      }
    return m.second.weight.clone();
  };
  Model a1, b1, a2, b2;
  tg::manual_seed(3);
  const Tensor g1 = tg::rand({2});
  tg::manual_seed(3);
  const Tensor alone_a = train(a1, 1), alone_b = train(b1, 2);
  CHECK(tg_test::bitwise_equal(g1, tg::rand({2})));  // the global generator was not drawn from
  Tensor together_a, together_b;
  std::thread ta([&] { together_a = train(a2, 1); });
  std::thread tb([&] { together_b = train(b2, 2); });
  ta.join();
  tb.join();
  CHECK(tg_test::bitwise_equal(alone_a, together_a));
  CHECK(tg_test::bitwise_equal(alone_b, together_b));
  CHECK_FALSE(tg_test::bitwise_equal(alone_a, alone_b));
}
