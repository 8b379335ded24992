#include "layers/safetensors.hpp"
#include "../core/xtensor.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cerrno>
#include <cstring>
#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace tg {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

using nlohmann::json;

constexpr std::uint64_t kMaxHeader = 100u << 20;  // 100 MB, as the reference implementation

// ---- half precision ----
// Published PyTorch checkpoints are often float16 or bfloat16. Both widen to float32 exactly on
// load; on save (when asked) floats are rounded to nearest, ties to even, as PyTorch's .half() and
// .bfloat16() do.

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16, exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa·2^-24
    const float magnitude = std::ldexp(float(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));  // inf, NaN
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

std::uint16_t float_to_half(float value) {
  std::uint32_t x = std::bit_cast<std::uint32_t>(value);
  const std::uint16_t sign = std::uint16_t((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) return sign | (x > 0x7f800000u ? 0x7e00 : 0x7c00);  // NaN, inf
  if (x >= 0x477ff000u) return sign | 0x7c00;                                // rounds past 65504
  if (x < 0x38800000u)  // below 2^-14: a subnormal half, mantissa = round(|value|·2^24)
    return sign | std::uint16_t(std::nearbyint(std::bit_cast<float>(x) * 16777216.0f));
  x += 0xfffu + ((x >> 13) & 1u);  // round the 13 dropped bits to nearest even
  return sign | std::uint16_t((x >> 13) - (112u << 10));
}

float bfloat16_to_float(std::uint16_t b) { return std::bit_cast<float>(std::uint32_t(b) << 16); }

std::uint16_t float_to_bfloat16(float value) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(value);
  if ((x & 0x7fffffffu) > 0x7f800000u) return std::uint16_t((x >> 16) | 0x40u);  // NaN stays NaN
  return std::uint16_t((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

// The dtype codes of a file; F16 and BF16 are read into float32.
enum class FileDtype { F32, F64, I64, F16, BF16 };

const char* code_of(FileDtype dtype) {
  switch (dtype) {
    case FileDtype::F32: return "F32";
    case FileDtype::F64: return "F64";
    case FileDtype::I64: return "I64";
    case FileDtype::F16: return "F16";
    default: return "BF16";
  }
}

std::size_t size_of(FileDtype dtype) {
  switch (dtype) {
    case FileDtype::F64:
    case FileDtype::I64: return 8;
    case FileDtype::F32: return 4;
    default: return 2;
  }
}

FileDtype file_dtype(DType dtype, FloatFormat format) {
  if (dtype == kInt64) return FileDtype::I64;
  if (format == FloatFormat::F16) return FileDtype::F16;
  if (format == FloatFormat::BF16) return FileDtype::BF16;
  return dtype == kFloat32 ? FileDtype::F32 : FileDtype::F64;
}

// ---- writing ----

std::string build_file(const nn::StateDict& state, const std::map<std::string, std::string>& metadata,
                       FloatFormat format) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : state) {
    TG_CHECK(name != "__metadata__", "save: \"__metadata__\" cannot be a tensor name");
    const FileDtype dtype = file_dtype(tensor.dtype(), format);
    const std::uint64_t bytes = tensor.numel() * size_of(dtype);
    header[name] = {{"dtype", code_of(dtype)},
                    {"shape", std::vector<std::size_t>(tensor.shape().begin(), tensor.shape().end())},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // pad so the data starts 8-byte aligned
  std::string file(8, '\0');
  const std::uint64_t length = text.size();
  std::memcpy(file.data(), &length, 8);
  file += text;
  for (const auto& item : state) {
    const Tensor& tensor = item.second;
    const FileDtype dtype = file_dtype(tensor.dtype(), format);
    if (dtype == FileDtype::F16 || dtype == FileDtype::BF16) {
      const Tensor as_float = tensor.to(kFloat32);
      for (float v : as_float.values<float>()) {
        const std::uint16_t bits = dtype == FileDtype::F16 ? float_to_half(v) : float_to_bfloat16(v);
        file.append(reinterpret_cast<const char*>(&bits), 2);
      }
      continue;
    }
    if (tensor.numel() == 0) continue;
    dispatch_all(tensor.dtype(), [&]<class T>() {
      file.append(reinterpret_cast<const char*>(tensor.data<T>()), tensor.numel() * sizeof(T));
    });
  }
  return file;
}

[[noreturn]] void fail_io(const std::string& path, const char* what) {
  fail("save: ", path, ": ", what, " (", std::strerror(errno), ")");
}

// A save writes "<name>.tmp.<pid>.<n>" and renames it over <name>. A save killed midway leaves its
// temporary behind; the next save of the same target removes those whose process is gone.
void remove_stale_temporaries(const std::filesystem::path& dir, const std::string& name) {
  const std::string prefix = name + ".tmp.";
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    const std::string file = entry.path().filename().string();
    if (file.rfind(prefix, 0) != 0) continue;
    const std::string rest = file.substr(prefix.size());
    const std::size_t dot = rest.find('.');
    if (dot == 0 || dot == std::string::npos || rest.find_first_not_of("0123456789.") != std::string::npos) continue;
    const long pid = std::strtol(rest.substr(0, dot).c_str(), nullptr, 10);
    if (pid > 0 && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH) std::filesystem::remove(entry.path(), error);
  }
}

void write_atomically(const std::string& path, const std::string& bytes) {
  const std::filesystem::path target(path);
  const std::filesystem::path dir = target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  std::error_code error;
  if (std::filesystem::is_directory(target, error)) fail("save: ", path, ": is a directory, not a file");
  remove_stale_temporaries(dir, target.filename().string());
  static std::atomic<std::uint64_t> counter{0};
  const std::string temp = (dir / (target.filename().string() + ".tmp." + std::to_string(::getpid()) + "." +
                                   std::to_string(counter.fetch_add(1)))).string();
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) fail_io(path, "cannot create a temporary file in its directory");
  auto give_up = [&](const char* what) {
    const int saved = errno;
    ::close(fd);
    ::unlink(temp.c_str());
    errno = saved;
    fail_io(path, what);
  };
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) give_up("write failed");
    written += std::size_t(n);
  }
  if (::fsync(fd) != 0) give_up("fsync failed");
  if (::close(fd) != 0) {
    ::unlink(temp.c_str());
    fail_io(path, "close failed");
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(temp.c_str());
    errno = saved;
    fail_io(path, "rename over the target failed");
  }
  // The rename itself is made durable by syncing the directory.
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

// ---- reading ----

struct Entry {
  std::string name;
  FileDtype dtype;
  Shape shape;
  std::uint64_t begin, end;
};

struct ParsedFile {
  std::vector<Entry> entries;  // in header order
  std::map<std::string, std::string> metadata;
  std::string data;            // the data section
};

// How deep a header may nest: {"name": {"shape": [...]}} is 3 levels. Deeper is rejected while
// parsing, before anything recursive (printing, destroying) could overflow the stack.
constexpr int kMaxHeaderDepth = 4;

ParsedFile parse_file(const std::string& path) {
  auto bad = [&](const auto&... what) { fail("load: ", path, ": ", what...); };
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) bad("is a directory, not a safetensors file");
  std::ifstream in(path, std::ios::binary);
  if (!in) bad("cannot open the file (", std::strerror(errno), ")");
  std::string bytes;
  try {
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } catch (const std::exception& e) {
    bad("cannot read the file (", e.what(), ")");
  }
  if (in.bad()) bad("cannot read the file");
  if (bytes.size() < 8) bad("the file has ", bytes.size(), " bytes, too few for a safetensors header length");
  std::uint64_t header_length = 0;
  std::memcpy(&header_length, bytes.data(), 8);
  if (header_length > kMaxHeader) bad("header length ", header_length, " is above the limit of ", kMaxHeader, " bytes");
  if (header_length > bytes.size() - 8)
    bad("header length ", header_length, " runs past the end of the file (", bytes.size(), " bytes)");

  // Duplicate names are caught while parsing: the JSON library would otherwise keep the last one.
  // Nothing from the header is ever printed whole: names are quoted, values described.
  std::set<std::string> names;
  std::string duplicate;
  bool too_deep = false;
  json header;
  try {
    header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + std::ptrdiff_t(header_length),
                         [&](int depth, json::parse_event_t event, json& parsed) {
                           if (depth > kMaxHeaderDepth) {
                             too_deep = true;
                             throw std::runtime_error("too deep");  // stops the parser at once
                           }
                           if (event == json::parse_event_t::key && depth == 1 &&
                               !names.insert(parsed.get<std::string>()).second && duplicate.empty())
                             duplicate = parsed.get<std::string>();
                           return true;
                         });
  } catch (const json::exception& e) {
    bad("invalid JSON header (", e.what(), ")");
  } catch (const std::runtime_error&) {
    if (!too_deep) throw;
    bad("the JSON header nests deeper than ", kMaxHeaderDepth, " levels");
  }
  if (!duplicate.empty()) bad("tensor name \"", duplicate, "\" appears twice in the header");
  if (!header.is_object()) bad("the JSON header is not an object");

  ParsedFile file;
  file.data = bytes.substr(8 + header_length);
  for (const auto& item : header.items()) {
    const std::string& name = item.key();  // not a structured binding: clang 14 cannot capture those
    const json& value = item.value();
    if (name == "__metadata__") {
      if (!value.is_object()) bad("\"__metadata__\" is not an object");
      for (const auto& [key, text] : value.items()) {
        if (!text.is_string()) bad("metadata \"", key, "\" is not a string");
        file.metadata[key] = text.get<std::string>();
      }
      continue;
    }
    auto bad_tensor = [&](const auto&... what) { bad("tensor \"", name, "\": ", what...); };
    if (!value.is_object() || !value.contains("dtype") || !value.contains("shape") || !value.contains("data_offsets"))
      bad_tensor("expected an object with dtype, shape and data_offsets");
    Entry entry{name, FileDtype::F32, {}, 0, 0};
    const json& dtype = value["dtype"];
    if (!dtype.is_string()) bad_tensor("dtype is not a string");
    const std::string code = dtype.get<std::string>().substr(0, 16);
    if (code == "F32") entry.dtype = FileDtype::F32;
    else if (code == "F64") entry.dtype = FileDtype::F64;
    else if (code == "I64") entry.dtype = FileDtype::I64;
    else if (code == "F16") entry.dtype = FileDtype::F16;
    else if (code == "BF16") entry.dtype = FileDtype::BF16;
    else bad_tensor("unknown dtype \"", code, "\" (tapegrad reads F32, F64, I64, F16 and BF16)");
    const json& shape = value["shape"];
    if (!shape.is_array()) bad_tensor("shape is not an array");
    if (shape.size() > 64) bad_tensor("shape has ", shape.size(), " dims (at most 64)");
    for (std::size_t i = 0; i < shape.size(); ++i) {
      if (!shape[i].is_number_unsigned()) bad_tensor("shape entry ", i, " is not a non-negative integer");
      entry.shape.push_back(shape[i].get<std::size_t>());
    }
    const std::string what = "load: " + path + ": tensor \"" + name + "\"";
    const std::uint64_t expected_bytes = checked_bytes(what.c_str(), entry.shape, size_of(entry.dtype));
    const json& offsets = value["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
      bad_tensor("data_offsets must be two non-negative integers");
    entry.begin = offsets[0].get<std::uint64_t>();
    entry.end = offsets[1].get<std::uint64_t>();
    if (entry.begin > entry.end) bad_tensor("data_offsets [", entry.begin, ", ", entry.end, "] are reversed");
    if (entry.end > file.data.size())
      bad_tensor("data_offsets [", entry.begin, ", ", entry.end, "] run past the data section (", file.data.size(),
                 " bytes)");
    if (entry.end - entry.begin != expected_bytes)
      bad_tensor("data_offsets [", entry.begin, ", ", entry.end, "] hold ", entry.end - entry.begin, " bytes but ", code,
                 " ", shape_str(entry.shape), " needs ", expected_bytes);
    file.entries.push_back(std::move(entry));
  }

  // The tensors must tile the data section exactly: sorted by offset, each starts where the last ended.
  std::vector<const Entry*> by_offset;
  for (const Entry& e : file.entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  std::uint64_t expected = 0;
  std::string previous = "the start of the data";
  for (const Entry* e : by_offset) {
    if (e->begin != expected)
      bad("tensor \"", e->name, "\": data_offsets [", e->begin, ", ", e->end, "] ",
          e->begin < expected ? "overlap" : "leave a gap after", " ", previous, " (which ends at ", expected, ")");
    expected = e->end;
    previous = "\"" + e->name + "\"";
  }
  if (expected != file.data.size())
    bad("the data section has ", file.data.size(), " bytes but the tensors cover ", expected);
  // File order (the order the tensors were saved in), not the JSON library's key order.
  std::stable_sort(file.entries.begin(), file.entries.end(),
                   [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  return file;
}

// The tensor of one entry; half precision widens to float32.
Tensor read_tensor(const ParsedFile& file, const Entry& e) {
  const char* bytes = file.data.data() + e.begin;
  if (e.dtype == FileDtype::F16 || e.dtype == FileDtype::BF16) {
    xt::xarray<float> values = xt::xarray<float>::from_shape(e.shape);
    for (std::size_t i = 0; i < values.size(); ++i) {
      std::uint16_t bits;
      std::memcpy(&bits, bytes + 2 * i, 2);
      values.data()[i] = e.dtype == FileDtype::F16 ? half_to_float(bits) : bfloat16_to_float(bits);
    }
    return make_tensor<float>(std::move(values));
  }
  const DType dtype = e.dtype == FileDtype::F32 ? kFloat32 : e.dtype == FileDtype::F64 ? kFloat64 : kInt64;
  return dispatch_all(dtype, [&]<class T>() {
    xt::xarray<T> values = xt::xarray<T>::from_shape(e.shape);
    if (values.size() != 0) std::memcpy(values.data(), bytes, e.end - e.begin);
    return make_tensor<T>(std::move(values));
  });
}

}  // namespace

void save(const nn::StateDict& state, const std::string& path, const std::map<std::string, std::string>& metadata,
          FloatFormat format) {
  write_atomically(path, build_file(state, metadata, format));
}

void save(const nn::Module& module, const std::string& path, const std::map<std::string, std::string>& metadata,
          FloatFormat format) {
  save(module.state_dict(), path, metadata, format);
}

nn::StateDict load_state_dict(const std::string& path) {
  const ParsedFile file = parse_file(path);
  nn::StateDict state;
  for (const Entry& e : file.entries) state.insert(e.name, read_tensor(file, e));
  return state;
}

std::map<std::string, std::string> load_metadata(const std::string& path) { return parse_file(path).metadata; }

void load(nn::Module& module, const std::string& path, bool strict) {
  const ParsedFile file = parse_file(path);
  const nn::StateDict own = module.state_dict();
  nn::StateDict state;
  for (const Entry& e : file.entries) {
    Tensor tensor = read_tensor(file, e);
    // Half-precision values take the dtype of the model's tensor (float32 or float64).
    const Tensor* target = own.find(e.name);
    if ((e.dtype == FileDtype::F16 || e.dtype == FileDtype::BF16) && target && is_floating(target->dtype()))
      tensor = tensor.to(target->dtype());
    state.insert(e.name, std::move(tensor));
  }
  try {
    module.load_state_dict(state, strict);
  } catch (const Error& e) {
    fail("load: ", path, ": ", e.what());
  }
}

}  // namespace tg
