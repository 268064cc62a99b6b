// The CPU-only build's stand-in for the CUDA code: every entry reports that this
// binary was built without CUDA.
#include "cuda_api.h"
#include "../core/error.h"

namespace valr {
namespace cuda {

namespace {
[[noreturn]] void notBuilt() {
  throw Error(ErrorCode::Device,
              "this valr-node binary was built without CUDA; use device 'cpu' or install/build the CUDA binary "
              "(npm run build:native with nvcc on PATH)");
}
}  // namespace

Probe probe() { return Probe{}; }
void* allocate(int, size_t) { notBuilt(); }
void release(int, void*) noexcept {}
void emptyCache(int) { notBuilt(); }
MemoryStats memoryStats(int) { notBuilt(); }
void resetPeakStats(int) { notBuilt(); }
void copy(void*, int, const void*, int, size_t) { notBuilt(); }
void* stream(int) { notBuilt(); }
void synchronize(int) { notBuilt(); }
void checkDevicePointer(int, const void*) { notBuilt(); }

}  // namespace cuda
}  // namespace valr
