#include "core/random.hpp"

#include <bit>
#include <cmath>
#include <numbers>
#include <sstream>

#include "core/error.hpp"

namespace tg {

void Generator::manual_seed(std::uint64_t seed) {
  state_->engine.seed(seed);
  state_->has_spare = false;
  state_->spare = 0.0;
}

double Generator::normal() {
  if (state_->has_spare) {
    state_->has_spare = false;
    return state_->spare;
  }
  const double u1 = 1.0 - uniform();  // (0, 1]: log stays finite
  const double u2 = uniform();
  const double radius = std::sqrt(-2.0 * std::log(u1));
  const double angle = 2.0 * std::numbers::pi * u2;
  state_->spare = radius * std::sin(angle);
  state_->has_spare = true;
  return radius * std::cos(angle);
}

std::int64_t Generator::integer(std::int64_t low, std::int64_t high) {
  TG_CHECK(low < high, "randint: expected low < high, got low=", low, ", high=", high);
  // high - low in unsigned arithmetic: exact for any pair, even INT64_MIN and INT64_MAX.
  const std::uint64_t range = std::uint64_t(high) - std::uint64_t(low);
  // Rejection sampling keeps every value equally likely.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % range;
  std::uint64_t draw = next_u64();
  while (draw >= limit) draw = next_u64();
  return std::int64_t(std::uint64_t(low) + draw % range);
}

// The engine's text form is its 312 words and its position; those 313 numbers, then the spare
// normal's flag and bits, are the 315 int64 values of the state.
Tensor Generator::get_state() const {
  std::ostringstream text;
  text << state_->engine;
  std::istringstream in(text.str());
  std::vector<std::int64_t> words;
  std::uint64_t word = 0;
  while (in >> word) words.push_back(std::int64_t(word));
  words.push_back(state_->has_spare ? 1 : 0);
  words.push_back(std::bit_cast<std::int64_t>(state_->spare));
  return Tensor(words, {words.size()});
}

void Generator::set_state(const Tensor& state) {
  constexpr std::size_t kWords = std::mt19937_64::state_size + 1 + 2;
  TG_CHECK(state.dtype() == kInt64 && state.shape() == Shape{kWords}, "set_rng_state: expected an int64 tensor of ",
           kWords, " values (from get_rng_state), got ", dtype_name(state.dtype()), " ", shape_str(state.shape()));
  const std::int64_t* words = state.data<std::int64_t>();
  const std::int64_t position = words[std::mt19937_64::state_size], spare_flag = words[kWords - 2];
  TG_CHECK(position >= 0 && position <= std::int64_t(std::mt19937_64::state_size) && (spare_flag == 0 || spare_flag == 1),
           "set_rng_state: the tensor is not a generator state (position ", position, ", spare flag ", spare_flag, ")");
  std::ostringstream text;
  for (std::size_t i = 0; i <= std::mt19937_64::state_size; ++i) text << std::uint64_t(words[i]) << ' ';
  std::istringstream in(text.str());
  std::mt19937_64 engine;
  in >> engine;
  TG_CHECK(!in.fail(), "set_rng_state: the tensor is not a generator state");
  state_->engine = engine;
  state_->has_spare = spare_flag == 1;
  state_->spare = std::bit_cast<double>(words[kWords - 1]);
}

Generator& default_generator() {
  static Generator instance;
  return instance;
}

void manual_seed(std::uint64_t seed) { default_generator().manual_seed(seed); }
Tensor get_rng_state() { return default_generator().get_state(); }
void set_rng_state(const Tensor& state) { default_generator().set_state(state); }

}  // namespace tg
