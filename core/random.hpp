// The one global random generator. manual_seed(s) makes every random function (rand, randn,
// randint, dropout masks, layer initialisation, data shuffling) repeat the same numbers.
#pragma once

#include <cstdint>

namespace tg {

void manual_seed(std::uint64_t seed);

// Draws from the global generator. Not thread-safe: draw from one thread, as tapegrad itself does.
namespace random {
std::uint64_t next_u64();
double uniform();      // [0, 1) with 53 random bits
double normal();       // standard normal (Box-Muller, so it does not depend on the C++ library)
std::int64_t integer(std::int64_t low, std::int64_t high);  // [low, high)
}  // namespace random

}  // namespace tg
