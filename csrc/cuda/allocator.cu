// A caching allocator: freed blocks go to per-size free lists and are handed out
// again without cudaMalloc/cudaFree (both synchronise the device). All ops of a
// device run on its one stream, so a block freed by one op and reused by the next
// is ordered by the stream.
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>
#include "check.cuh"
#include "cuda_api.h"

namespace valr {
namespace cuda {

namespace {

constexpr size_t kSmallRound = 512;              // bytes
constexpr size_t kLargeThreshold = 1 << 20;      // 1 MiB
constexpr size_t kLargeRound = 2 << 20;          // 2 MiB

size_t roundSize(size_t n) {
  if (n == 0) n = 1;
  size_t r = n < kLargeThreshold ? kSmallRound : kLargeRound;
  return (n + r - 1) / r * r;
}

struct DeviceCache {
  std::multimap<size_t, void*> freeBlocks;       // size -> block
  std::unordered_map<void*, size_t> liveBlocks;  // block -> size
  MemoryStats stats;
};

std::mutex gMutex;
std::map<int, DeviceCache> gCaches;

void freeCached(int device, DeviceCache& c) {
  if (c.freeBlocks.empty()) return;
  useDevice(device);
  VALR_CUDA_CHECK(cudaDeviceSynchronize());
  for (auto& kv : c.freeBlocks) {
    cudaFree(kv.second);
    c.stats.reserved -= kv.first;
  }
  c.freeBlocks.clear();
}

}  // namespace

void* allocate(int device, size_t nbytes) {
  size_t size = roundSize(nbytes);
  std::lock_guard<std::mutex> lk(gMutex);
  useDevice(device);
  DeviceCache& c = gCaches[device];
  void* ptr = nullptr;
  auto it = c.freeBlocks.find(size);
  if (it != c.freeBlocks.end()) {
    ptr = it->second;
    c.freeBlocks.erase(it);
    c.stats.cacheHits++;
  } else {
    cudaError_t err = cudaMalloc(&ptr, size);
    if (err == cudaErrorMemoryAllocation) {  // give the cache back and try once more
      cudaGetLastError();
      freeCached(device, c);
      err = cudaMalloc(&ptr, size);
    }
    if (err != cudaSuccess) {
      cudaGetLastError();
      std::ostringstream s;
      s << "CUDA out of memory on cuda:" << device << " allocating " << nbytes << " bytes (" << c.stats.inUse
        << " bytes in use, " << c.stats.reserved << " reserved): " << cudaGetErrorString(err);
      throw Error(err == cudaErrorMemoryAllocation ? ErrorCode::Oom : ErrorCode::Cuda, s.str());
    }
    c.stats.reserved += size;
  }
  c.liveBlocks[ptr] = size;
  c.stats.inUse += size;
  c.stats.allocations++;
  if (c.stats.inUse > c.stats.peakInUse) c.stats.peakInUse = c.stats.inUse;
  return ptr;
}

void release(int device, void* ptr) noexcept {
  std::lock_guard<std::mutex> lk(gMutex);
  auto cit = gCaches.find(device);
  if (cit == gCaches.end()) return;
  DeviceCache& c = cit->second;
  auto it = c.liveBlocks.find(ptr);
  if (it == c.liveBlocks.end()) return;
  c.stats.inUse -= it->second;
  c.freeBlocks.emplace(it->second, ptr);
  c.liveBlocks.erase(it);
}

void emptyCache(int device) {
  std::lock_guard<std::mutex> lk(gMutex);
  freeCached(device, gCaches[device]);
}

MemoryStats memoryStats(int device) {
  useDevice(device);
  std::lock_guard<std::mutex> lk(gMutex);
  return gCaches[device].stats;
}

void resetPeakStats(int device) {
  std::lock_guard<std::mutex> lk(gMutex);
  MemoryStats& s = gCaches[device].stats;
  s.peakInUse = s.inUse;
}

}  // namespace cuda
}  // namespace valr
