#include "core/random.hpp"
#include "core/xtensor.hpp"

#include <algorithm>
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

namespace {

// Box-Muller on n pairs of uniforms (u1 in (0, 1], u2 in [0, 1)): radius sqrt(-2 log u1) at angle
// 2π·u2, its cosine and sine, a batch of pairs at a time with xsimd's log and sincos. Each lane is
// computed alone (a pair gets the same bits wherever it sits in a batch), so one normal() at a
// time and a whole tensor's draw give the same values. (One pair at a time through libm's log and
// sincos, randn of 256,000 values took 3.9 ms, libtorch 0.8.)
void box_muller(const double* u1, const double* u2, double* cosines, double* sines, std::size_t n) {
  using B = xsimd::batch<double>;
  constexpr std::size_t kWidth = B::size;
  alignas(64) double a[kWidth], b[kWidth];
  for (std::size_t i = 0; i < n; i += kWidth) {
    const std::size_t lanes = std::min(kWidth, n - i);
    for (std::size_t j = 0; j < kWidth; ++j) {  // the tail padded with u1 = 1, u2 = 0
      a[j] = j < lanes ? u1[i + j] : 1.0;
      b[j] = j < lanes ? u2[i + j] : 0.0;
    }
    const B radius = xsimd::sqrt(B(-2.0) * xsimd::log(B::load_aligned(a)));
    const auto [sine, cosine] = xsimd::sincos(B(2.0 * std::numbers::pi) * B::load_aligned(b));
    (radius * cosine).store_aligned(a);
    (radius * sine).store_aligned(b);
    std::copy_n(a, lanes, cosines + i);
    std::copy_n(b, lanes, sines + i);
  }
}

}  // namespace

double Generator::normal() {
  double value;
  normal(&value, 1);
  return value;
}

void Generator::normal(double* out, std::size_t n) {
  std::size_t i = 0;
  if (n > 0 && state_->has_spare) {
    state_->has_spare = false;
    out[i++] = state_->spare;
  }
  constexpr std::size_t kPairs = 256;
  double u1[kPairs], u2[kPairs], cosines[kPairs], sines[kPairs];
  while (i < n) {
    const std::size_t pairs = std::min(kPairs, (n - i + 1) / 2);
    for (std::size_t p = 0; p < pairs; ++p) {
      u1[p] = 1.0 - uniform();  // (0, 1]: log stays finite
      u2[p] = uniform();
    }
    box_muller(u1, u2, cosines, sines, pairs);
    for (std::size_t p = 0; p < pairs; ++p) {
      out[i++] = cosines[p];
      if (i < n) {
        out[i++] = sines[p];
      } else {  // an odd count: the pair's second normal is the next call's first
        state_->spare = sines[p];
        state_->has_spare = true;
      }
    }
  }
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
