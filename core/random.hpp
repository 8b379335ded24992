// Random numbers. A tg::Generator is one reproducible stream (a 64-bit Mersenne Twister). It is a
// handle, as torch.Generator objects are passed around: copies share one stream. The global one,
// default_generator(), is what rand, randn, randint, dropout masks, layer initialisation and data
// shuffling draw from unless they are given another, and manual_seed(s) seeds it. Give each
// thread its own generator (DataLoaderOptions::generator, the init functions, Dropout, randn...)
// and every thread trains reproducibly. A generator's whole
// state can be saved and restored (get_rng_state / set_rng_state, as PyTorch's), so a resumed
// training run draws exactly the numbers it would have drawn.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <utility>

#include "tensor.hpp"

namespace tg {

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : state_(std::make_shared<State>()) { manual_seed(seed); }
  void manual_seed(std::uint64_t seed);

  std::uint64_t next_u64() { return state_->engine(); }
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }  // [0, 1), 53 bits
  double normal();  // standard normal (Box-Muller, so it does not depend on the C++ library)
  // n standard normals: the values of n calls of normal(), a batch of pairs computed together.
  void normal(double* out, std::size_t n);
  std::int64_t integer(std::int64_t low, std::int64_t high);  // [low, high), every value equally likely

  // The state as an int64 tensor (the engine's words, its position, and the spare normal), and
  // back; set_state checks the tensor and changes nothing when it is not a generator state.
  Tensor get_state() const;
  void set_state(const Tensor& state);

 private:
  struct State {
    std::mt19937_64 engine;
    bool has_spare = false;  // Box-Muller makes normals in pairs
    double spare = 0.0;
  };
  std::shared_ptr<State> state_;
};

// normal() one value at a time, for a fill that takes values in order, drawn `total` at most
// (the generator ends where `total` calls of normal() would leave it) a chunk at a time.
class NormalDraws {
 public:
  NormalDraws(Generator generator, std::size_t total) : generator_(std::move(generator)), remaining_(total) {}
  double next() {
    if (next_ == filled_) {
      filled_ = std::min(remaining_, kChunk);
      remaining_ -= filled_;
      next_ = 0;
      generator_.normal(values_, filled_);
    }
    return values_[next_++];
  }

 private:
  static constexpr std::size_t kChunk = 512;
  Generator generator_;
  std::size_t remaining_, next_ = 0, filled_ = 0;
  double values_[kChunk];
};

// The global generator. Not thread-safe: draw from one thread, as tapegrad itself does.
Generator& default_generator();
void manual_seed(std::uint64_t seed);
Tensor get_rng_state();
void set_rng_state(const Tensor& state);

// Draws from the global generator.
namespace random {
inline std::uint64_t next_u64() { return default_generator().next_u64(); }
inline double uniform() { return default_generator().uniform(); }
inline double normal() { return default_generator().normal(); }
inline std::int64_t integer(std::int64_t low, std::int64_t high) { return default_generator().integer(low, high); }
}  // namespace random

}  // namespace tg
