// Checkpoints in the safetensors format, so weights move between PyTorch and tapegrad both ways:
// 8-byte little-endian header length, a JSON header
// {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}},
// then the raw little-endian data. Dtypes F32, F64 and I64.
#pragma once

#include <map>
#include <string>

#include "layers/module.hpp"

namespace tg {

// Writes atomically: a temporary file in the same directory, flushed and fsynced, then renamed
// over `path`. A failure never leaves a truncated file where a good one was.
void save(const nn::StateDict& state, const std::string& path,
          const std::map<std::string, std::string>& metadata = {{"format", "pt"}});
void save(const nn::Module& module, const std::string& path,
          const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// Reads and validates a whole file: sizes, JSON, dtypes, offsets (in order, contiguous, inside the
// file, matching each shape), no duplicate names. Throws tg::Error naming the file and the problem.
nn::StateDict load_state_dict(const std::string& path);
// The metadata of a file (the "__metadata__" object), after the same validation.
std::map<std::string, std::string> load_metadata(const std::string& path);

// load_state_dict(path) into the module: everything is checked before the module changes.
void load(nn::Module& module, const std::string& path, bool strict = true);

}  // namespace tg
