#include "core/random.hpp"

#include <cmath>
#include <numbers>
#include <random>

#include "core/error.hpp"

namespace tg {

namespace {

struct Generator {
  std::mt19937_64 engine{0};
  bool has_spare = false;  // Box-Muller makes normals in pairs
  double spare = 0.0;
};

Generator& generator() {
  static Generator instance;
  return instance;
}

}  // namespace

void manual_seed(std::uint64_t seed) {
  Generator& g = generator();
  g.engine.seed(seed);
  g.has_spare = false;
}

namespace random {

std::uint64_t next_u64() { return generator().engine(); }

double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double normal() {
  Generator& g = generator();
  if (g.has_spare) {
    g.has_spare = false;
    return g.spare;
  }
  const double u1 = 1.0 - uniform();  // (0, 1]: log stays finite
  const double u2 = uniform();
  const double radius = std::sqrt(-2.0 * std::log(u1));
  const double angle = 2.0 * std::numbers::pi * u2;
  g.spare = radius * std::sin(angle);
  g.has_spare = true;
  return radius * std::cos(angle);
}

std::int64_t integer(std::int64_t low, std::int64_t high) {
  TG_CHECK(low < high, "randint: expected low < high, got low=", low, ", high=", high);
  const auto range = static_cast<std::uint64_t>(high - low);
  // Rejection sampling keeps every value equally likely.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % range;
  std::uint64_t draw = next_u64();
  while (draw >= limit) draw = next_u64();
  return low + static_cast<std::int64_t>(draw % range);
}

}  // namespace random
}  // namespace tg
