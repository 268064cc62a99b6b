// What the CUDA code offers the rest of the addon: plain C++ declarations, so neither
// Node headers reach nvcc nor CUDA headers reach the N-API glue. In a CPU-only build
// these are implemented by cuda_stub.cpp, which reports that CUDA was not built.
// Every function throws valr::Error(ErrorCode::Cuda / Oom / Device) on failure;
// nothing here exits or aborts.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace valr {
namespace cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int major = 0, minor = 0;          // compute capability
  size_t totalMemory = 0;
  int multiProcessors = 0;
};

struct Probe {
  bool built = false;                // false: this binary has no CUDA code
  int runtimeVersion = 0;            // e.g. 13000 for 13.0
  int driverVersion = 0;             // 0 when no driver is installed
  int deviceCount = 0;
  int errorCode = 0;                 // cudaError_t from the first failing call, 0 = none
  std::string errorName, errorString;
  std::vector<DeviceInfo> devices;
  // Result of launching a trivial kernel on device 0 (no kernel image for this GPU
  // shows up here, not in cudaGetDeviceCount).
  int launchErrorCode = 0;
  std::string launchErrorName, launchErrorString;
  std::string compiledArchitectures;  // e.g. "sm_80 sm_86 sm_89 sm_90 compute_90"
};

// Never throws: failures are reported in the fields.
Probe probe();

struct MemoryStats {
  size_t inUse = 0;      // bytes handed out to live buffers
  size_t peakInUse = 0;  // high-water mark of inUse since the last reset
  size_t reserved = 0;   // bytes held from cudaMalloc (in use + cached)
  size_t allocations = 0;
  size_t cacheHits = 0;
};

void* allocate(int device, size_t nbytes);
void release(int device, void* ptr) noexcept;   // back to the cache
void emptyCache(int device);                    // cached blocks back to the driver
MemoryStats memoryStats(int device);
void resetPeakStats(int device);

// device -1 means host memory. Synchronous with respect to the host.
void copy(void* dst, int dstDevice, const void* src, int srcDevice, size_t nbytes);
// The stream every op of this device runs on (a cudaStream_t).
void* stream(int device);
void synchronize(int device);
// The device made current on this thread by the last op (cudaGetDevice).
int currentDevice();
// Checks that `ptr` is device memory on `device` (for wrapped foreign pointers).
void checkDevicePointer(int device, const void* ptr);

}  // namespace cuda
}  // namespace valr
