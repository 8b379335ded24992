// pad: PyTorch's torch.nn.functional.pad (constant, reflect, replicate and circular padding).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "../tensor.hpp"

namespace tg {

enum class PadMode { Constant, Reflect, Replicate, Circular };

// `padding` holds (left, right) pairs from the last dim backwards, as PyTorch's: {1, 2} pads the
// last dim with 1 value before and 2 after, {1, 1, 2, 2} also the second-to-last with 2 and 2.
//  - Constant: any rank, as many pairs as dims; the new values are `value` (0 by default). A
//    negative entry cuts values off instead.
//  - Reflect (the values mirrored about the edge, the edge not repeated: 2 1 | 0 1 2 | 1 0),
//    Replicate (the edge value repeated) and Circular (the values wrapped around): 1, 2 or 3
//    pairs, on an input with one or two dims before them (unbatched or batched, as PyTorch 2's);
//    they take no value. Reflect needs each entry below its dim's size, Circular at most the
//    length left after any negative entries of the dim cut it (PyTorch's "wrapping around more
//    than once"); a negative entry cuts values off, as PyTorch's.
Tensor pad(const Tensor& input, const std::vector<std::int64_t>& padding, PadMode mode = PadMode::Constant,
           std::optional<double> value = std::nullopt);

const char* pad_mode_name(PadMode mode);  // "constant", "reflect", "replicate", "circular"

}  // namespace tg
