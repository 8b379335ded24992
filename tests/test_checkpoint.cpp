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
  expect(make_file("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2), "unknown dtype \"U8\"");
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

// ---- half precision ------------------------------------------------------------------------------
// Bits and values from PyTorch 1.13 (/usr/bin/python3):
//   vals = [0.0, -0.0, 1.0, -2.5, 65504.0, 65520.0, 6e-8, 3e-5, 1e-9, inf, -inf, nan, 0.1, 1 + 2**-11 * 3 - 2**-11,
//           1 + 3 * 2**-11, 3.3e38, 1e-40, -7.77]
//   t = torch.tensor(vals, dtype=torch.float32)
//   t.half().view(torch.int16), t.half().float(), t.bfloat16().view(torch.int16), t.bfloat16().float()
namespace {

const std::vector<float> kHalfInputs = {0.0f,  -0.0f,  1.0f, -2.5f,    65504.0f, 65520.0f, 6e-8f,   3e-5f,  1e-9f,
                                        INFINITY, -INFINITY, NAN, 0.1f, 1.00146484375f, 1.00146484375f, 3.3e38f,
                                        1e-40f, -7.77f};
const std::vector<std::uint16_t> kF16Bits = {0x0,    0x8000, 0x3c00, 0xc100, 0x7bff, 0x7c00, 0x1,    0x1f7,  0x0,
                                             0x7c00, 0xfc00, 0x7e00, 0x2e66, 0x3c02, 0x3c02, 0x7c00, 0x0,    0xc7c5};
const std::vector<double> kF16Values = {0.0, -0.0, 1.0, -2.5, 65504.0, INFINITY, 5.960464477539063e-08,
                                        2.9981136322021484e-05, 0.0, INFINITY, -INFINITY, NAN, 0.0999755859375,
                                        1.001953125, 1.001953125, INFINITY, 0.0, -7.76953125};
const std::vector<std::uint16_t> kBF16Bits = {0x0,    0x8000, 0x3f80, 0xc020, 0x4780, 0x4780, 0x3381, 0x37fc, 0x3089,
                                              0x7f80, 0xff80, 0x7fc0, 0x3dcd, 0x3f80, 0x3f80, 0x7f78, 0x1,    0xc0f9};
const std::vector<double> kBF16Values = {0.0, -0.0, 1.0, -2.5, 65536.0, 65536.0, 6.007030606269836e-08,
                                         3.0040740966796875e-05, 9.968061931431293e-10, INFINITY, -INFINITY, NAN,
                                         0.10009765625, 1.0, 1.0, 3.2964854295465914e+38, 9.183549615799121e-41,
                                         -7.78125};

// A safetensors file with one 2-byte-per-value tensor "w" of the given code and bits.
std::string half_file(const std::string& code, const std::vector<std::uint16_t>& bits, const std::string& shape) {
  std::string header = "{\"w\":{\"dtype\":\"" + code + "\",\"shape\":" + shape + ",\"data_offsets\":[0," +
                       std::to_string(2 * bits.size()) + "]}}";
  std::string file(8, '\0');
  const std::uint64_t length = header.size();
  std::memcpy(file.data(), &length, 8);
  file += header;
  file.append(reinterpret_cast<const char*>(bits.data()), 2 * bits.size());
  return file;
}

void check_same_values(const Tensor& t, const std::vector<double>& expected) {
  const std::vector<double> got = tg_test::flat(t);
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element ", i, ": got ", got[i], ", expected ", expected[i]);
    if (std::isnan(expected[i])) CHECK(std::isnan(got[i]));
    else CHECK((got[i] == expected[i] && std::signbit(got[i]) == std::signbit(expected[i])));
  }
}

}  // namespace

TEST_CASE("F16 and BF16 tensors load exactly into float32, and into a model's float32 or float64 tensors") {
  TempDir dir;
  const std::string shape = "[" + std::to_string(kF16Bits.size()) + "]";
  for (bool bf16 : {false, true}) {
    const std::string path = dir.file(bf16 ? "bf16.safetensors" : "f16.safetensors");
    write_bytes(path, half_file(bf16 ? "BF16" : "F16", bf16 ? kBF16Bits : kF16Bits, shape));
    const nn::StateDict state = tg::load_state_dict(path);
    CHECK(state.at("w").dtype() == tg::kFloat32);
    check_same_values(state.at("w"), bf16 ? kBF16Values : kF16Values);
  }
  // Into a layer: a Linear(3, 2)'s weight and bias from a half-precision checkpoint, in both dtypes.
  const std::vector<std::uint16_t> weight_bits = {0x3c00, 0xc100, 0x2e66, 0x0, 0x8000, 0xc7c5}, bias_bits = {0x3c02, 0x7bff};
  std::string header = R"({"weight":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]},)"
                       R"("bias":{"dtype":"BF16","shape":[2],"data_offsets":[12,16]}})";
  std::string file(8, '\0');
  const std::uint64_t length = header.size();
  std::memcpy(file.data(), &length, 8);
  file += header;
  file.append(reinterpret_cast<const char*>(weight_bits.data()), 12);
  file.append(reinterpret_cast<const char*>(bias_bits.data()), 4);
  write_bytes(dir.file("linear.safetensors"), file);
  for (tg::DType dtype : {tg::kFloat32, tg::kFloat64}) {
    nn::Linear layer(3, 2);
    layer.to(dtype);
    tg::load(layer, dir.file("linear.safetensors"));
    CHECK(layer.weight.dtype() == dtype);
    check_same_values(layer.weight, {1.0, -2.5, 0.0999755859375, 0.0, -0.0, -7.76953125});
    check_same_values(layer.bias, {std::bit_cast<float>(std::uint32_t(0x3c02) << 16), std::bit_cast<float>(std::uint32_t(0x7bff) << 16)});
  }
}

TEST_CASE("save rounds to F16 or BF16 only when asked, bit for bit as PyTorch") {
  TempDir dir;
  nn::StateDict state;
  state.insert("w", Tensor(kHalfInputs, {kHalfInputs.size()}));
  state.insert("steps", Tensor(std::vector<std::int64_t>{7}, {1}));
  state.insert("empty", tg::zeros({0, 3}));
  for (auto format : {tg::FloatFormat::F16, tg::FloatFormat::BF16}) {
    const std::string path = dir.file("half.safetensors");
    tg::save(state, path, {}, format);
    const nn::StateDict back = tg::load_state_dict(path);
    CHECK(back.at("steps").dtype() == tg::kInt64);
    CHECK(back.at("empty").shape() == tg::Shape{0, 3});
    check_same_values(back.at("w"), format == tg::FloatFormat::F16 ? kF16Values : kBF16Values);
    // The bits in the file are PyTorch's (NaN: any quiet NaN).
    const std::string bytes = read_bytes(path);
    std::uint64_t header = 0;
    std::memcpy(&header, bytes.data(), 8);
    CHECK(bytes.find(format == tg::FloatFormat::F16 ? "\"F16\"" : "\"BF16\"") != std::string::npos);
    const std::vector<std::uint16_t>& expected = format == tg::FloatFormat::F16 ? kF16Bits : kBF16Bits;
    const std::size_t w_begin = bytes.size() - 8 - 2 * expected.size();  // w is first: steps (8 bytes) follow it
    for (std::size_t i = 0; i < expected.size(); ++i) {
      std::uint16_t bits;
      std::memcpy(&bits, bytes.data() + w_begin + 2 * i, 2);
      if (i == 11) continue;  // NaN
      INFO("element ", i);
      CHECK(bits == expected[i]);
    }
  }
  tg::save(state, dir.file("native.safetensors"));
  CHECK(tg::load_state_dict(dir.file("native.safetensors")).at("w").dtype() == tg::kFloat32);
  write_bytes(dir.file("bad.safetensors"), half_file("F8", {0x3c00}, "[1]"));
  CHECK_THROWS_WITH_AS(tg::load_state_dict(dir.file("bad.safetensors")),
                       doctest::Contains("tensor \"w\": unknown dtype \"F8\" (tapegrad reads F32, F64, I64, F16 and BF16)"),
                       tg::Error);
  write_bytes(dir.file("short.safetensors"), half_file("F16", {0x3c00}, "[2]"));
  CHECK_THROWS_WITH_AS(tg::load_state_dict(dir.file("short.safetensors")),
                       doctest::Contains("hold 2 bytes but F16 [2] needs 4"), tg::Error);
}
