// Internal: a whole file as bytes, through zlib, so gzip-compressed and plain files read alike.
#pragma once

#include <string>

namespace tg::data::detail {

std::string read_file(const std::string& path, const char* op);

}  // namespace tg::data::detail
