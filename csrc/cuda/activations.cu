// SwiGLU and exact (erf) GELU, forward and backward, elementwise.
// --use_fast_math maps expf to the coarse __expf and `/` to an approximate divide, so
// exp is computed by expAccurate below (~1 ulp) and reciprocals with __frcp_rn; erff is
// not remapped by fast math (only flushes denormals). Thread t takes quads (4 floats)
// t, t + stride, ...; float4 access when every pointer is 16-byte aligned, else scalar
// (the tail quad is always scalar).
#include <cstdint>
#include "../core/model_kernels.h"
#include "check.cuh"
#include "device_helpers.cuh"
#include "cuda_api.h"

namespace valr {
namespace cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t{1} << 16;



__device__ __forceinline__ float sigmoid(float g) { return __frcp_rn(1.f + expAccurate(-g)); }

constexpr float kSqrtHalf = 0.707106781186547524f;  // 1/sqrt(2)
constexpr float kInvSqrt2Pi = 0.398942280401432678f;  // 1/sqrt(2 pi)

struct SwigluFwd {
  __device__ __forceinline__ float operator()(float g, float u) const { return g * sigmoid(g) * u; }
};
struct GeluFwd {
  __device__ __forceinline__ float operator()(float x) const { return 0.5f * x * (1.f + erff(x * kSqrtHalf)); }
};
// dx = dy * (Phi(x) + x * phi(x))
struct GeluBwd {
  __device__ __forceinline__ float operator()(float dy, float x) const {
    const float cdf = 0.5f * (1.f + erff(x * kSqrtHalf));
    const float pdf = kInvSqrt2Pi * expAccurate(-0.5f * x * x);
    return dy * (cdf + x * pdf);
  }
};

__device__ __forceinline__ float4 ld4(const float* p, int64_t q) { return __ldg(reinterpret_cast<const float4*>(p) + q); }
__device__ __forceinline__ void st4(float* p, int64_t q, float4 v) { reinterpret_cast<float4*>(p)[q] = v; }
__device__ __forceinline__ int64_t firstIndex() { return static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; }
__device__ __forceinline__ int64_t gridStride() { return static_cast<int64_t>(gridDim.x) * kThreads; }

// out[i] = op(a[i]) or op(a[i], b[i]) (b == nullptr: unary)
template <typename Op, bool Binary>
__global__ void __launch_bounds__(kThreads) mapKernel(Op op, const float* __restrict__ a, const float* __restrict__ b,
                                                      float* __restrict__ out, int64_t n, bool vec) {
  auto f = [&](float x, float y) {
    if constexpr (Binary)
      return op(x, y);
    else
      return op(x);
  };
  const int64_t nq = (n + 3) / 4;
  for (int64_t q = firstIndex(); q < nq; q += gridStride()) {
    if (vec && 4 * q + 3 < n) {
      const float4 x = ld4(a, q);
      const float4 y = Binary ? ld4(b, q) : x;
      st4(out, q, make_float4(f(x.x, y.x), f(x.y, y.y), f(x.z, y.z), f(x.w, y.w)));
    } else {
      for (int64_t i = 4 * q; i < n && i < 4 * q + 4; ++i) out[i] = f(a[i], Binary ? b[i] : 0.f);
    }
  }
}

// dgate = dy * up * sig * (1 + g * (1 - sig)), dup = dy * silu(g)
__device__ __forceinline__ void swigluGrad(float dy, float g, float u, float& dg, float& du) {
  const float sg = sigmoid(g);
  dg = dy * u * sg * (1.f + g * (1.f - sg));
  du = dy * g * sg;
}

__global__ void __launch_bounds__(kThreads) swigluBackwardKernel(const float* __restrict__ dy,
                                                                 const float* __restrict__ gate,
                                                                 const float* __restrict__ up,
                                                                 float* __restrict__ dgate, float* __restrict__ dup,
                                                                 int64_t n, bool vec) {
  const int64_t nq = (n + 3) / 4;
  for (int64_t q = firstIndex(); q < nq; q += gridStride()) {
    if (vec && 4 * q + 3 < n) {
      const float4 d = ld4(dy, q), g = ld4(gate, q), u = ld4(up, q);
      float4 dg, du;
      swigluGrad(d.x, g.x, u.x, dg.x, du.x);
      swigluGrad(d.y, g.y, u.y, dg.y, du.y);
      swigluGrad(d.z, g.z, u.z, dg.z, du.z);
      swigluGrad(d.w, g.w, u.w, dg.w, du.w);
      st4(dgate, q, dg);
      st4(dup, q, du);
    } else {
      for (int64_t i = 4 * q; i < n && i < 4 * q + 4; ++i) {
        float dg, du;
        swigluGrad(dy[i], gate[i], up[i], dg, du);
        dgate[i] = dg;
        dup[i] = du;
      }
    }
  }
}

unsigned blocksFor(int64_t n) {
  int64_t b = ((n + 3) / 4 + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < kMaxBlocks ? b : kMaxBlocks);
}

template <typename Op, bool Binary>
void map(Op op, const float* a, const float* b, float* out, int64_t n) {
  if (n <= 0) return;
  cudaStream_t s = currentStream();
  const bool vec = aligned16(a) && (!Binary || aligned16(b)) && aligned16(out);
  mapKernel<Op, Binary><<<blocksFor(n), kThreads, 0, s>>>(op, a, b, out, n, vec);
  VALR_CUDA_CHECK_LAUNCH();
}

}  // namespace

void swigluForward(const float* gate, const float* up, float* y, int64_t n) {
  map<SwigluFwd, true>(SwigluFwd{}, gate, up, y, n);
}

void swigluBackward(const float* dy, const float* gate, const float* up, float* dgate, float* dup, int64_t n) {
  if (n <= 0) return;
  cudaStream_t s = currentStream();
  const bool vec = aligned16(dy) && aligned16(gate) && aligned16(up) && aligned16(dgate) && aligned16(dup);
  swigluBackwardKernel<<<blocksFor(n), kThreads, 0, s>>>(dy, gate, up, dgate, dup, n, vec);
  VALR_CUDA_CHECK_LAUNCH();
}

void geluForward(const float* x, float* y, int64_t n) { map<GeluFwd, false>(GeluFwd{}, x, nullptr, y, n); }

void geluBackward(const float* dy, const float* x, float* dx, int64_t n) {
  map<GeluBwd, true>(GeluBwd{}, dy, x, dx, n);
}

}  // namespace cuda
}  // namespace valr
