#include "core/parallel.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

#include <tbb/global_control.h>

#include "core/error.hpp"

extern "C" void openblas_set_num_threads(int num_threads);

namespace tg {

namespace {

int default_threads() {
  const unsigned hardware = std::thread::hardware_concurrency();
  return hardware == 0 ? 1 : static_cast<int>(hardware);
}

struct ThreadState {
  std::mutex mutex;
  std::atomic<int> threads{default_threads()};
  std::unique_ptr<tbb::global_control> control;
};

ThreadState& state() {
  static ThreadState instance;
  return instance;
}

// OpenBLAS gets one thread as soon as the library is loaded, before any GEMM runs.
const bool openblas_single_threaded = [] {
  openblas_set_num_threads(1);
  return true;
}();

}  // namespace

void set_num_threads(int num_threads) {
  TG_CHECK(num_threads >= 1, "set_num_threads: expected at least 1 thread, got ", num_threads);
  ThreadState& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.control.reset();
  s.control = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                    static_cast<std::size_t>(num_threads));
  s.threads = num_threads;
  (void)openblas_single_threaded;
}

int get_num_threads() { return state().threads.load(std::memory_order_relaxed); }

}  // namespace tg
