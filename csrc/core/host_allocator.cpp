#include "host_allocator.h"
#include <cstdlib>
#include <map>
#include <mutex>
#include "error.h"

namespace valr {
namespace host {

namespace {
constexpr size_t kAlignment = 64;                 // cache line; AVX-512 loads
constexpr size_t kCacheThreshold = 1 << 20;       // blocks from 1 MiB up are cached
constexpr size_t kCacheRound = 64 << 10;          // sizes rounded to 64 KiB so steps match
constexpr size_t kCacheLimit = size_t(2) << 30;   // at most 2 GiB held idle

size_t roundSize(size_t n) {
  size_t r = n >= kCacheThreshold ? kCacheRound : kAlignment;
  size_t s = (n + r - 1) / r * r;
  return s == 0 ? kAlignment : s;
}

std::mutex gMutex;
std::multimap<size_t, void*> gFree;
MemoryStats gStats;
}  // namespace

void* allocate(size_t nbytes) {
  const size_t size = roundSize(nbytes);
  {
    std::lock_guard<std::mutex> lk(gMutex);
    if (size >= kCacheThreshold) {
      auto it = gFree.find(size);
      if (it != gFree.end()) {
        void* p = it->second;
        gFree.erase(it);
        gStats.cached -= size;
        gStats.cacheHits++;
        gStats.inUse += size;
        if (gStats.inUse > gStats.peakInUse) gStats.peakInUse = gStats.inUse;
        return p;
      }
    }
  }
  void* p = std::aligned_alloc(kAlignment, size);
  if (!p && size >= kCacheThreshold) {  // give the cache back and try once more
    emptyCache();
    p = std::aligned_alloc(kAlignment, size);
  }
  VALR_CHECK(p != nullptr, Oom, "out of host memory allocating " << nbytes << " bytes");
  std::lock_guard<std::mutex> lk(gMutex);
  gStats.inUse += size;
  if (gStats.inUse > gStats.peakInUse) gStats.peakInUse = gStats.inUse;
  return p;
}

void release(void* ptr, size_t nbytes) noexcept {
  if (!ptr) return;
  const size_t size = roundSize(nbytes);
  std::lock_guard<std::mutex> lk(gMutex);
  gStats.inUse -= size;
  if (size >= kCacheThreshold && gStats.cached + size <= kCacheLimit) {
    gFree.emplace(size, ptr);
    gStats.cached += size;
    return;
  }
  std::free(ptr);
}

void emptyCache() noexcept {
  std::lock_guard<std::mutex> lk(gMutex);
  for (auto& kv : gFree) std::free(kv.second);
  gFree.clear();
  gStats.cached = 0;
}

MemoryStats memoryStats() {
  std::lock_guard<std::mutex> lk(gMutex);
  return gStats;
}

}  // namespace host
}  // namespace valr
