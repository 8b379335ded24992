// What the harnesses share: the loaders read files, so each input is written to a scratch file
// first; a tg::Error is the expected answer to a bad file, anything else (a crash, another
// exception, a sanitizer report) is a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <unistd.h>

#include <tapegrad/tapegrad.hpp>

namespace fuzz {

// A per-process scratch path under /tmp, named for the harness.
inline std::string scratch(const char* name) {
  return "/tmp/tapegrad_fuzz_" + std::string(name) + "_" + std::to_string(::getpid());
}

inline void write(const std::string& path, const std::uint8_t* data, std::size_t size) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), std::streamsize(size));
}

// Runs body; a tg::Error is fine, any other exception escapes and libFuzzer reports it.
template <class Body>
void expect_only_tg_errors(Body&& body) {
  try {
    body();
  } catch (const tg::Error&) {
  }
}

// Same dtype, shape and bytes.
inline bool same_bits(const tg::Tensor& a, const tg::Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  if (a.numel() == 0) return true;
  return tg::dispatch_all(a.dtype(), [&]<class T>() {
    return std::memcmp(a.data<T>(), b.data<T>(), a.numel() * sizeof(T)) == 0;
  });
}

}  // namespace fuzz
