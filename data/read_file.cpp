#include "data/read_file.hpp"

#include <cerrno>
#include <cstring>
#include <zlib.h>

#include "core/error.hpp"

namespace tg::data::detail {

std::string read_file(const std::string& path, const char* op) {
  gzFile file = gzopen(path.c_str(), "rb");
  TG_CHECK(file != nullptr, op, ": cannot open ", path, " (", std::strerror(errno), ")");
  std::string bytes;
  char buffer[1 << 16];
  int n = 0;
  while ((n = gzread(file, buffer, sizeof buffer)) > 0) bytes.append(buffer, std::size_t(n));
  int error = Z_OK;
  const char* message = gzerror(file, &error);
  const std::string what = message ? message : "";
  gzclose(file);
  TG_CHECK(n == 0 && (error == Z_OK || error == Z_STREAM_END), op, ": ", path, " is corrupt or truncated (", what, ")");
  return bytes;
}

}  // namespace tg::data::detail
