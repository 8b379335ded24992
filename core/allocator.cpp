// The caching allocator behind tensor values: TBB's scalable allocator (tbbmalloc), which keeps
// freed blocks, large ones included, in per-thread caches and hands them back to the next request
// of their size. A training step allocates the same sizes every step, so at steady state it takes
// no page faults and makes no system calls.
//
// Measured against a size-class cache of our own (free lists in four classes per power of two,
// one mutex) on this 2-core machine: relu forward + backward on 1M floats took 0.36 ms per step
// with either (4.8 ms and 2,016 page faults per step with glibc's malloc before); the chain of
// small ops in bench/ took 401 ns per op with tbbmalloc and 440 ns with our cache (the mutex).
// tbbmalloc is faster and already a dependency, so it is the one in use.
//
// Blocks of 1 MiB and more (activations, their gradients) are kept in a cache of our own in front
// of tbbmalloc: tbbmalloc returns some freed large blocks to the kernel, and the next step's first
// writes into them then fault (perf -e page-faults on fashion_cnn_step: the first writes into
// relu's, batch_norm's and zeros' outputs; 6 faults per step with one thread, up to 83 with two).
// A request takes the smallest cached block that is at least as large and at most 1/8 larger (of
// several of that size, the one freed last); a freed block is kept while the cache holds at most
// kMaxCachedBytes, else returned to tbbmalloc.
// The mutex is taken a few dozen times per training step, only for large blocks.
#include "core/allocator.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <new>

#include <tbb/scalable_allocator.h>

// Under AddressSanitizer every allocation goes to the system allocator, which the sanitizer
// intercepts (tbbmalloc's reuse would hide use-after-free and overflows).
#if defined(__SANITIZE_ADDRESS__)
#define TG_SYSTEM_ALLOCATOR 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TG_SYSTEM_ALLOCATOR 1
#endif
#endif

namespace tg::memory {

namespace {
constexpr std::size_t kAlignment = 64;

#ifndef TG_SYSTEM_ALLOCATOR
constexpr std::size_t kLargeBytes = std::size_t(1) << 20;
constexpr std::size_t kMaxCachedBytes = std::size_t(1) << 30;
// A large block starts at a varying offset ("colour", a multiple of 64 below 4096) inside the
// memory that holds it, a different one at every hand-out, as tbbmalloc does: tensors whose
// addresses agree in their low 12 bits make a streaming kernel's stores and loads alias
// (`op/add/1024/1` 12% slower with fixed offsets). The memory's own address is kept in the 8
// bytes before the block.
constexpr std::size_t kColours = 64;
constexpr std::size_t kLargeExtra = kAlignment + kColours * kAlignment;

// The free large blocks' memory, by the size they were last used for (a lower bound of what they
// hold).
struct LargeCache {
  std::mutex mutex;
  std::multimap<std::size_t, void*> blocks;
  std::size_t bytes = 0;
};

LargeCache& large_cache() {
  static LargeCache* cache = new LargeCache;  // never destroyed: tensors may be freed at exit
  return *cache;
}

// The block in `memory` at the next colour.
void* coloured(void* memory) {
  static std::atomic<std::size_t> next{0};
  const std::size_t colour = next.fetch_add(1, std::memory_order_relaxed) % kColours;
  char* block = static_cast<char*>(memory) + kAlignment + colour * kAlignment;
  std::memcpy(block - sizeof(void*), &memory, sizeof(void*));
  return block;
}

void* memory_of(void* block) {
  void* memory;
  std::memcpy(&memory, static_cast<char*>(block) - sizeof(void*), sizeof(void*));
  return memory;
}

void* allocate_large(std::size_t bytes) {
  LargeCache& cache = large_cache();
  void* memory = nullptr;
  {
    const std::lock_guard<std::mutex> lock(cache.mutex);
    const auto fit = cache.blocks.lower_bound(bytes);
    if (fit != cache.blocks.end() && fit->first <= bytes + bytes / 8) {
      // Of the blocks of that size, the one freed last: it may still be in the CPU's caches.
      const auto it = std::prev(cache.blocks.upper_bound(fit->first));
      memory = it->second;
      cache.bytes -= it->first;
      cache.blocks.erase(it);
    }
  }
  if (memory == nullptr) memory = scalable_aligned_malloc(bytes + kLargeExtra, kAlignment);
  return memory == nullptr ? nullptr : coloured(memory);
}

void deallocate_large(void* block, std::size_t bytes) {
  void* memory = memory_of(block);
  LargeCache& cache = large_cache();
  {
    const std::lock_guard<std::mutex> lock(cache.mutex);
    if (cache.bytes + bytes <= kMaxCachedBytes) {
      try {
        cache.blocks.emplace(bytes, memory);
        cache.bytes += bytes;
        return;
      } catch (const std::bad_alloc&) {
        // (no memory for the map's node: the block goes back to tbbmalloc)
      }
    }
  }
  scalable_aligned_free(memory);
}
#endif
}  // namespace

void* allocate(std::size_t bytes) {
  if (bytes == 0) bytes = 1;
#ifdef TG_SYSTEM_ALLOCATOR
  void* block = std::aligned_alloc(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
#else
  void* block = bytes >= kLargeBytes ? allocate_large(bytes) : scalable_aligned_malloc(bytes, kAlignment);
#endif
  if (block == nullptr) throw std::bad_alloc();
  return block;
}

void deallocate(void* block, std::size_t bytes) noexcept {
#ifdef TG_SYSTEM_ALLOCATOR
  (void)bytes;
  std::free(block);
#else
  if (block == nullptr) return;
  if (bytes >= kLargeBytes) {
    deallocate_large(block, bytes);
    return;
  }
  scalable_aligned_free(block);
#endif
}

void release_cached() {
#ifndef TG_SYSTEM_ALLOCATOR
  LargeCache& cache = large_cache();
  {
    const std::lock_guard<std::mutex> lock(cache.mutex);
    for (const auto& [bytes, block] : cache.blocks) scalable_aligned_free(block);
    cache.blocks.clear();
    cache.bytes = 0;
  }
  scalable_allocation_command(TBBMALLOC_CLEAN_ALL_BUFFERS, nullptr);
#endif
}

}  // namespace tg::memory
