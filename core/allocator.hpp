// Where tensor values live: a caching allocator, so that a training step at steady state takes its
// memory from blocks freed by the previous step instead of from the kernel (no page faults, no
// system calls). xt::xarray uses it through core/xtensor.hpp.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace tg {

namespace memory {
// 64-byte aligned blocks of at least `bytes` (tbbmalloc; see allocator.cpp). Under
// AddressSanitizer the cache is off, so every allocation stays visible to the sanitizer.
void* allocate(std::size_t bytes);
void deallocate(void* block, std::size_t bytes) noexcept;
// Returns the cached free blocks to the system (e.g. after a large one-off computation).
void release_cached();
}  // namespace memory

// A standard allocator over memory::allocate, for xtensor's containers.
template <class T>
struct Allocator {
  using value_type = T;
  Allocator() = default;
  template <class U>
  Allocator(const Allocator<U>&) noexcept {}  // NOLINT: converting, as std::allocator
  T* allocate(std::size_t n) {
    if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(memory::allocate(n * sizeof(T)));
  }
  void deallocate(T* block, std::size_t n) noexcept { memory::deallocate(block, n * sizeof(T)); }
  template <class U>
  bool operator==(const Allocator<U>&) const noexcept { return true; }
};

// A std::vector on that cache, for scratch arrays that grow with the data (per-row statistics,
// per-sample losses): with std::allocator, glibc serves arrays past its mmap threshold (128 KB at
// first) from the kernel afresh each step, a page fault per 4 KB.
template <class T>
using Buffer = std::vector<T, Allocator<T>>;

}  // namespace tg
