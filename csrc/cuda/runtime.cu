// Device discovery, per-device op streams and copies.
#include <mutex>
#include <sstream>
#include "check.cuh"
#include "cuda_api.h"

namespace valr {
namespace cuda {

namespace {
__global__ void probeKernel(int* out) { *out = 42; }

constexpr int kMaxDevices = 64;
std::mutex gStreamMutex;
cudaStream_t gStreams[kMaxDevices] = {};

std::string architectures() {
#ifdef __CUDA_ARCH_LIST__
  // nvcc defines the list it compiled device code for, e.g. 800,860,890,900.
  std::ostringstream s;
  int archs[] = {__CUDA_ARCH_LIST__};
  for (size_t i = 0; i < sizeof(archs) / sizeof(archs[0]); ++i) s << (i ? " " : "") << "sm_" << archs[i] / 10;
  return s.str();
#else
  return "unknown";
#endif
}
}  // namespace

void checkDevice(int device) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) throwCuda(err, "cudaGetDeviceCount", __FILE__, __LINE__);
  VALR_CHECK(device >= 0 && device < count, Device,
             "device cuda:" << device << " does not exist (" << count << " CUDA device(s) visible)");
}

cudaStream_t useDevice(int device) {
  VALR_CHECK(device >= 0 && device < kMaxDevices, Device, "device index " << device << " out of range");
  std::lock_guard<std::mutex> lk(gStreamMutex);
  if (!gStreams[device]) checkDevice(device);
  VALR_CUDA_CHECK(cudaSetDevice(device));
  if (!gStreams[device]) VALR_CUDA_CHECK(cudaStreamCreateWithFlags(&gStreams[device], cudaStreamNonBlocking));
  return gStreams[device];
}

Probe probe() {
  Probe p;
  p.built = true;
  p.compiledArchitectures = architectures();
  cudaRuntimeGetVersion(&p.runtimeVersion);
  cudaDriverGetVersion(&p.driverVersion);  // 0 when libcuda cannot be loaded
  cudaError_t err = cudaGetDeviceCount(&p.deviceCount);
  if (err != cudaSuccess) {
    p.deviceCount = 0;
    p.errorCode = static_cast<int>(err);
    p.errorName = cudaGetErrorName(err);
    p.errorString = cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky-free error so later calls report their own
    return p;
  }
  for (int i = 0; i < p.deviceCount; ++i) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    DeviceInfo d;
    d.index = i;
    d.name = prop.name;
    d.major = prop.major;
    d.minor = prop.minor;
    d.totalMemory = prop.totalGlobalMem;
    d.multiProcessors = prop.multiProcessorCount;
    p.devices.push_back(d);
  }
  if (p.deviceCount > 0) {
    int* dOut = nullptr;
    cudaError_t lerr = cudaSetDevice(0);
    if (lerr == cudaSuccess) lerr = cudaMalloc(&dOut, sizeof(int));
    if (lerr == cudaSuccess) {
      probeKernel<<<1, 1>>>(dOut);
      lerr = cudaGetLastError();
      if (lerr == cudaSuccess) lerr = cudaDeviceSynchronize();
      int host = 0;
      if (lerr == cudaSuccess) lerr = cudaMemcpy(&host, dOut, sizeof(int), cudaMemcpyDeviceToHost);
      if (lerr == cudaSuccess && host != 42) lerr = cudaErrorUnknown;
      cudaFree(dOut);
    }
    if (lerr != cudaSuccess) {
      p.launchErrorCode = static_cast<int>(lerr);
      p.launchErrorName = cudaGetErrorName(lerr);
      p.launchErrorString = cudaGetErrorString(lerr);
      cudaGetLastError();
    }
  }
  return p;
}

void copy(void* dst, int dstDevice, const void* src, int srcDevice, size_t nbytes) {
  if (nbytes == 0) return;
  int device = dstDevice >= 0 ? dstDevice : srcDevice;
  cudaStream_t s = useDevice(device);
  if (dstDevice >= 0 && srcDevice >= 0 && dstDevice != srcDevice) {
    useDevice(srcDevice);
    VALR_CUDA_CHECK(cudaDeviceSynchronize());  // the source's pending writes land first
    useDevice(dstDevice);
    VALR_CUDA_CHECK(cudaMemcpyPeerAsync(dst, dstDevice, src, srcDevice, nbytes, s));
  } else {
    VALR_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDefault, s));
  }
  VALR_CUDA_CHECK(cudaStreamSynchronize(s));
}

void* stream(int device) { return static_cast<void*>(useDevice(device)); }

int currentDevice() {
  int d = 0;
  VALR_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

void synchronize(int device) { VALR_CUDA_CHECK(cudaStreamSynchronize(useDevice(device))); }

void checkDevicePointer(int device, const void* ptr) {
  useDevice(device);
  cudaPointerAttributes attr;
  cudaError_t err = cudaPointerGetAttributes(&attr, ptr);
  if (err != cudaSuccess) {
    cudaGetLastError();
    VALR_CHECK(false, Device, "pointer 0x" << std::hex << reinterpret_cast<uintptr_t>(ptr)
                                            << " is not known to the CUDA runtime: " << cudaGetErrorString(err));
  }
  VALR_CHECK(attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged, Device,
             "pointer 0x" << std::hex << reinterpret_cast<uintptr_t>(ptr) << " is not CUDA device memory");
  VALR_CHECK(attr.device == device, Device,
             "pointer belongs to cuda:" << attr.device << ", expected cuda:" << device);
}

}  // namespace cuda
}  // namespace valr
