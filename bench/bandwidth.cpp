// The machine's memory bandwidth, to put the BatchNorm kernels' GB/s in context: a STREAM-style
// scale (b = s·a) over 256 MB arrays with T threads, counting bytes read plus bytes written.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <tbb/global_control.h>
#include <tbb/parallel_for.h>

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  tbb::global_control control(tbb::global_control::max_allowed_parallelism, std::size_t(threads));
  const std::size_t n = std::size_t(64) << 20;  // 64M floats = 256 MB per array
  std::vector<float> a(n, 1.0f), b(n, 0.0f);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, 1 << 16), [&](const tbb::blocked_range<std::size_t>& r) {
      for (std::size_t i = r.begin(); i < r.end(); ++i) b[i] = 3.0f * a[i];
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, 2.0 * double(n) * sizeof(float) / seconds / 1e9);
  }
  std::printf("%.1f\n", best + 0.0 * b[n / 2]);
  return 0;
}
