// Turning CUDA errors into valr::Error (thrown, never exit/abort).
#pragma once
#include <cuda_runtime.h>
#include "../core/error.h"

namespace valr {
namespace cuda {

inline void throwCuda(cudaError_t err, const char* what, const char* file, int line) {
  ErrorCode code = err == cudaErrorMemoryAllocation ? ErrorCode::Oom : ErrorCode::Cuda;
  std::ostringstream s;
  s << what << " failed: " << cudaGetErrorName(err) << " (" << cudaGetErrorString(err) << ") at " << file << ":"
    << line;
  throw Error(code, s.str());
}

// Validates a device index against the devices present.
void checkDevice(int device);
// Makes `device` current on this thread and returns its op stream.
cudaStream_t useDevice(int device);


}  // namespace cuda
}  // namespace valr

#define VALR_CUDA_CHECK(expr)                                                        \
  do {                                                                               \
    cudaError_t valr_err_ = (expr);                                                  \
    if (valr_err_ != cudaSuccess) ::valr::cuda::throwCuda(valr_err_, #expr, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: launch-configuration errors surface here, asynchronous
// faults at the next synchronising call.
#define VALR_CUDA_CHECK_LAUNCH() VALR_CUDA_CHECK(cudaGetLastError())

namespace valr {
namespace cuda {
// The op stream of the device the caller (the N-API glue) made current.
inline cudaStream_t currentStream() {
  int dev = 0;
  VALR_CUDA_CHECK(cudaGetDevice(&dev));
  return useDevice(dev);
}
}  // namespace cuda
}  // namespace valr
