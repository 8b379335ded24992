// safetensors checkpoints: PyTorch interop, round trips, atomic saves, and corrupt files.
#include <cstring>
#include <filesystem>
#include <fstream>

#include "helpers.hpp"

using tg::Tensor;
namespace nn = tg::nn;
namespace fs = std::filesystem;

#ifndef TAPEGRAD_TEST_DATA
#error "TAPEGRAD_TEST_DATA must point at tests/data"
#endif

namespace {

std::shared_ptr<nn::Sequential> make_mlp() {
  return std::make_shared<nn::Sequential>(nn::Linear(3, 4), nn::ReLU(), nn::LayerNorm(nn::LayerNormOptions({4})),
                                          nn::Linear(4, 2));
}

// A scratch directory per test, removed at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("tapegrad_test_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(std::rand()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A file from a JSON header and a data section.
std::string make_file(const std::string& header, std::size_t data_bytes) {
  std::string out(8, '\0');
  const std::uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + std::string(data_bytes, '\0');
}

}  // namespace

TEST_CASE("a checkpoint written from PyTorch loads and reproduces PyTorch's outputs") {
  // tests/data/mlp_torch.safetensors and these numbers come from tests/data/make_torch_checkpoint.py:
  // Sequential(Linear(3, 4), ReLU(), LayerNorm(4), Linear(4, 2)), torch.manual_seed(0), applied to
  // x = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]].
  auto model = make_mlp();
  tg::load(*model, std::string(TAPEGRAD_TEST_DATA) + "/mlp_torch.safetensors");
  CHECK(tg::load_metadata(std::string(TAPEGRAD_TEST_DATA) + "/mlp_torch.safetensors").at("format") == "pt");
  const Tensor y = model->forward(Tensor({{0.5, -1.0, 2.0}, {1.5, 0.25, -0.75}}));
  tg_test::check_close(y, {-1.414851427078247, 0.9044892191886902, -1.4298804998397827, 0.9164299964904785}, 1e-6);
}

TEST_CASE("save then load gives bit-identical outputs, and the file follows the format") {
  TempDir dir;
  tg::manual_seed(4);
  auto a = make_mlp();
  tg::save(*a, dir.file("model.safetensors"));
  tg::manual_seed(5);
  auto b = make_mlp();
  tg::load(*b, dir.file("model.safetensors"));
  const Tensor x = tg::randn({5, 3});
  CHECK(tg_test::bitwise_equal(a->forward(x), b->forward(x)));

  // Read back by the same rules: header length, JSON, then data in state_dict order.
  const std::string bytes = read_bytes(dir.file("model.safetensors"));
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);
  const std::string header = bytes.substr(8, n);
  CHECK(header.find("\"0.weight\":{\"data_offsets\":[0,48],\"dtype\":\"F32\",\"shape\":[4,3]}") != std::string::npos);
  const nn::StateDict state = tg::load_state_dict(dir.file("model.safetensors"));
  CHECK(state.keys() == a->state_dict().keys());
  CHECK(tg_test::bitwise_equal(state.at("3.weight"), a->at<nn::Linear>(3)->weight));
}

TEST_CASE("F64 and I64 tensors round trip") {
  TempDir dir;
  nn::StateDict state;
  state.insert("double", Tensor({1.5, -2.25}, tg::kFloat64));
  state.insert("count", Tensor(std::vector<std::int64_t>{7}, {}));
  tg::save(state, dir.file("s.safetensors"));
  const nn::StateDict back = tg::load_state_dict(dir.file("s.safetensors"));
  CHECK(back.at("double").dtype() == tg::kFloat64);
  CHECK(tg_test::bitwise_equal(back.at("double"), state.at("double")));
  CHECK(back.at("count").dtype() == tg::kInt64);
  CHECK(back.at("count").shape() == tg::Shape{});
  CHECK(back.at("count").item() == 7);
}

TEST_CASE("saving is atomic: a failed save leaves the old file") {
  TempDir dir;
  auto model = make_mlp();
  tg::save(*model, dir.file("m.safetensors"));
  const std::string before = read_bytes(dir.file("m.safetensors"));
  CHECK_THROWS_WITH_AS(tg::save(*model, dir.file("missing_dir/m.safetensors")),
                       doctest::Contains("cannot create a temporary file in its directory"), tg::Error);
  nn::StateDict bad;
  bad.insert("__metadata__", tg::zeros({1}));
  CHECK_THROWS_AS(tg::save(bad, dir.file("m.safetensors")), tg::Error);
  CHECK(read_bytes(dir.file("m.safetensors")) == before);
  // No temporary files are left behind.
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir.path)) ++files;
  CHECK(files == 1);
}

TEST_CASE("corrupt files give clear errors and leave the model unchanged") {
  TempDir dir;
  tg::manual_seed(8);
  auto model = make_mlp();
  const Tensor x = tg::randn({2, 3});
  const Tensor before = model->forward(x);
  tg::save(*model, dir.file("good.safetensors"));
  const std::string good = read_bytes(dir.file("good.safetensors"));

  auto expect = [&](const std::string& bytes, const std::string& message) {
    write_bytes(dir.file("bad.safetensors"), bytes);
    INFO("expected: ", message);
    CHECK_THROWS_WITH_AS(tg::load(*model, dir.file("bad.safetensors")), doctest::Contains(message.c_str()), tg::Error);
    CHECK(tg_test::bitwise_equal(model->forward(x), before));
  };
  expect(good.substr(0, good.size() - 4), "run past the data section");                  // truncated data
  expect(good + "xxxx", "the data section has 140 bytes but the tensors cover 136");        // trailing bytes
  expect(good.substr(0, 5), "the file has 5 bytes, too few");                             // truncated length
  std::string long_header = good;
  const std::uint64_t huge = good.size();
  std::memcpy(long_header.data(), &huge, 8);
  expect(long_header, "runs past the end of the file");
  const std::uint64_t enormous = std::uint64_t(1) << 40;
  std::memcpy(long_header.data(), &enormous, 8);
  expect(long_header, "is above the limit");
  expect(make_file("{\"a\": {\"dtype\": \"F32\"", 0), "invalid JSON header");
  expect(make_file("[1, 2]", 0), "the JSON header is not an object");
  expect(make_file("{\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4), "unknown dtype \"BF16\"");
  expect(make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12),
         "tensor \"b\": data_offsets [4, 12] overlap \"a\"");
  expect(make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4), "run past the data section");
  expect(make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8),
         "hold 8 bytes but F32 [3] needs 12");
  expect(make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16),
         "tensor name \"a\" appears twice");
  expect(make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16), "leave a gap after");

  // Well-formed files that do not fit the model.
  nn::StateDict wrong_shape = model->state_dict();
  nn::StateDict reshaped;
  for (const auto& [key, value] : wrong_shape) reshaped.insert(key, key == "0.bias" ? tg::zeros({5}) : value);
  tg::save(reshaped, dir.file("shape.safetensors"));
  expect(read_bytes(dir.file("shape.safetensors")), "mismatched keys [0.bias: expected float32 [4], got float32 [5]]");
  nn::StateDict partial;
  for (const auto& [key, value] : wrong_shape)
    if (key != "3.bias") partial.insert(key, value);
  tg::save(partial, dir.file("partial.safetensors"));
  expect(read_bytes(dir.file("partial.safetensors")), "missing keys [3.bias]");
  CHECK_THROWS_WITH_AS(tg::load(*model, dir.file("nothing_here.safetensors")), doctest::Contains("cannot open the file"),
                       tg::Error);
}
