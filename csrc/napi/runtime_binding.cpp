// What the loader and `valr doctor` ask the binary: was CUDA built in, which devices
// and versions are there, thread count, GPU memory statistics.
#include "bindings.h"
#include <chrono>
#include <cstring>
#include <vector>
#include "../core/host_allocator.h"
#include "../core/thread_pool.h"
#include "../cuda/cuda_api.h"
#include "args.h"
#include "js_errors.h"

namespace valr {
namespace js {
namespace {

Napi::Value ProbeCuda(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  cuda::Probe p = cuda::probe();
  Napi::Object o = Napi::Object::New(env);
  o.Set("built", p.built);
  o.Set("runtimeVersion", p.runtimeVersion);
  o.Set("driverVersion", p.driverVersion);
  o.Set("deviceCount", p.deviceCount);
  o.Set("errorCode", p.errorCode);
  o.Set("errorName", p.errorName);
  o.Set("errorString", p.errorString);
  o.Set("launchErrorCode", p.launchErrorCode);
  o.Set("launchErrorName", p.launchErrorName);
  o.Set("launchErrorString", p.launchErrorString);
  o.Set("compiledArchitectures", p.compiledArchitectures);
  Napi::Array devs = Napi::Array::New(env, p.devices.size());
  for (size_t i = 0; i < p.devices.size(); ++i) {
    const auto& d = p.devices[i];
    Napi::Object dv = Napi::Object::New(env);
    dv.Set("index", d.index);
    dv.Set("name", d.name);
    dv.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
    dv.Set("totalMemory", double(d.totalMemory));
    dv.Set("multiProcessors", d.multiProcessors);
    devs.Set(uint32_t(i), dv);
  }
  o.Set("devices", devs);
  return o;
}

Napi::Value NumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), numThreads()); }

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  setNumThreads(int(argInt(info, 0, "threads", 1, 1024)));
  return info.Env().Undefined();
}

Napi::Value CudaMemoryStats(const Napi::CallbackInfo& info) {
  int device = int(argInt(info, 0, "device", 0, 63));
  cuda::MemoryStats s = cuda::memoryStats(device);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("inUse", double(s.inUse));
  o.Set("peakInUse", double(s.peakInUse));
  o.Set("reserved", double(s.reserved));
  o.Set("allocations", double(s.allocations));
  o.Set("cacheHits", double(s.cacheHits));
  return o;
}

Napi::Value CudaEmptyCache(const Napi::CallbackInfo& info) {
  cuda::emptyCache(int(argInt(info, 0, "device", 0, 63)));
  return info.Env().Undefined();
}

Napi::Value CudaResetPeak(const Napi::CallbackInfo& info) {
  cuda::resetPeakStats(int(argInt(info, 0, "device", 0, 63)));
  return info.Env().Undefined();
}

Napi::Value CudaSynchronize(const Napi::CallbackInfo& info) {
  cuda::synchronize(int(argInt(info, 0, "device", 0, 63)));
  return info.Env().Undefined();
}

Napi::Value HostMemoryStats(const Napi::CallbackInfo& info) {
  host::MemoryStats s = host::memoryStats();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("inUse", double(s.inUse));
  o.Set("peakInUse", double(s.peakInUse));
  o.Set("cached", double(s.cached));
  o.Set("cacheHits", double(s.cacheHits));
  return o;
}

Napi::Value HostEmptyCache(const Napi::CallbackInfo& info) {
  host::emptyCache();
  return info.Env().Undefined();
}

// copyBandwidth(bytes, iterations) -> GB/s of a multithreaded memcpy between two
// host buffers (read + write counted), the ceiling benchmarks compare against.
Napi::Value CopyBandwidth(const Napi::CallbackInfo& info) {
  const int64_t bytes = argInt(info, 0, "bytes", 1 << 20, int64_t(1) << 34);
  const int64_t iters = argInt(info, 1, "iterations", 1, 10000);
  std::vector<char> a(size_t(bytes), 1), b(size_t(bytes), 2);
  const int64_t chunk = 1 << 16;
  auto copyOnce = [&] {
    parallelFor((bytes + chunk - 1) / chunk, 1, [&](int64_t s, int64_t e) {
      int64_t lo = s * chunk, hi = std::min(bytes, e * chunk);
      std::memcpy(b.data() + lo, a.data() + lo, size_t(hi - lo));
    });
  };
  copyOnce();  // fault the pages in before timing
  double best = 1e30;
  for (int64_t i = 0; i < iters; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    copyOnce();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return Napi::Number::New(info.Env(), 2.0 * double(bytes) / best / 1e9);
}

}  // namespace

void initRuntime(Napi::Env env, Napi::Object exports) {
  exports.Set("probeCuda", Napi::Function::New<guarded<ProbeCuda>>(env, "probeCuda"));
  exports.Set("hostMemoryStats", Napi::Function::New<guarded<HostMemoryStats>>(env, "hostMemoryStats"));
  exports.Set("hostEmptyCache", Napi::Function::New<guarded<HostEmptyCache>>(env, "hostEmptyCache"));
  exports.Set("copyBandwidth", Napi::Function::New<guarded<CopyBandwidth>>(env, "copyBandwidth"));
  exports.Set("numThreads", Napi::Function::New<guarded<NumThreads>>(env, "numThreads"));
  exports.Set("setNumThreads", Napi::Function::New<guarded<SetNumThreads>>(env, "setNumThreads"));
  exports.Set("cudaMemoryStats", Napi::Function::New<guarded<CudaMemoryStats>>(env, "cudaMemoryStats"));
  exports.Set("cudaEmptyCache", Napi::Function::New<guarded<CudaEmptyCache>>(env, "cudaEmptyCache"));
  exports.Set("cudaResetPeakStats", Napi::Function::New<guarded<CudaResetPeak>>(env, "cudaResetPeakStats"));
  exports.Set("cudaSynchronize", Napi::Function::New<guarded<CudaSynchronize>>(env, "cudaSynchronize"));
}

}  // namespace js
}  // namespace valr
