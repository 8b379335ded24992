// Checkpoints in the safetensors format, so weights move between PyTorch and tapegrad both ways:
// 8-byte little-endian header length, a JSON header
// {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}},
// then the raw little-endian data. Dtypes F32, F64 and I64, and F16 and BF16 (half precision, as
// many published PyTorch checkpoints are): read into float32 (exactly), and into a model's float32
// or float64 tensors by load(module, ...). Saving keeps each tensor's dtype unless asked for half.
#pragma once

#include <map>
#include <string>

#include "module.hpp"

namespace tg {

// How save() writes floating-point tensors: as they are, or rounded to float16 / bfloat16 (nearest,
// ties to even, as PyTorch's .half() and .bfloat16()). int64 tensors are always written as I64.
enum class FloatFormat { Native, F16, BF16 };

// Writes atomically: a temporary file in the same directory, flushed and fsynced, then renamed
// over `path`. A failure never leaves a truncated file where a good one was.
void save(const nn::StateDict& state, const std::string& path,
          const std::map<std::string, std::string>& metadata = {{"format", "pt"}},
          FloatFormat format = FloatFormat::Native);
void save(const nn::Module& module, const std::string& path,
          const std::map<std::string, std::string>& metadata = {{"format", "pt"}},
          FloatFormat format = FloatFormat::Native);

// Reads and validates a whole file: sizes, JSON, dtypes, offsets (in order, contiguous, inside the
// file, matching each shape), no duplicate names. Throws tg::Error naming the file and the problem.
nn::StateDict load_state_dict(const std::string& path);
// The metadata of a file (the "__metadata__" object), after the same validation.
std::map<std::string, std::string> load_metadata(const std::string& path);

// load_state_dict(path) into the module: everything is checked before the module changes. F16 and
// BF16 tensors are converted to the dtype of the model's tensor of that name.
void load(nn::Module& module, const std::string& path, bool strict = true);

}  // namespace tg
