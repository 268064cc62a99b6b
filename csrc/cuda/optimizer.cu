// AdamW step (torch.optim.AdamW semantics) and the sum of squares for global-norm clipping.
// AdamW: bias corrections and the step size are formed on the host in double, then
// rounded once; the device uses round-to-nearest intrinsics (no FMA contraction, IEEE
// sqrt and divide despite --use_fast_math) in the CPU kernel's order of operations.
// sumSquares: thread t of block b takes quads b * 256 + t + k * (blocks * 256), with a
// block count that depends only on n, sums x*x in double, then fixed shared-memory
// trees; a second kernel adds the block sums.
#include <cmath>
#include <cstdint>
#include "../core/model_kernels.h"
#include "check.cuh"
#include "device_helpers.cuh"
#include "scratch.cuh"
#include "cuda_api.h"

namespace valr {
namespace cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t{1} << 16;
constexpr int64_t kMaxSumBlocks = 1024;
constexpr int64_t kQuadsPerSumBlock = 4 * kThreads;  // at least 4 quads per thread before more blocks



struct AdamScalars {
  float decay;      // 1 - lr * weightDecay (in float, as the CPU kernel)
  float beta1, oneMinusBeta1;
  float beta2, oneMinusBeta2;
  float stepSize;   // lr / (1 - beta1^step)
  float bc2Sqrt;    // sqrt(1 - beta2^step)
  float eps;
};

// As torch: p *= decay; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
// p -= stepSize * m / (sqrt(v) / bc2Sqrt + eps), in the CPU kernel's order.
__device__ __forceinline__ void adamElement(const AdamScalars& a, float& p, float g, float& m, float& v) {
  m = __fadd_rn(__fmul_rn(a.beta1, m), __fmul_rn(a.oneMinusBeta1, g));
  v = __fadd_rn(__fmul_rn(a.beta2, v), __fmul_rn(__fmul_rn(a.oneMinusBeta2, g), g));
  const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(v), a.bc2Sqrt), a.eps);
  p = __fmul_rn(p, a.decay);
  p = __fsub_rn(p, __fdiv_rn(__fmul_rn(a.stepSize, m), denom));
}

__global__ void __launch_bounds__(kThreads) adamwKernel(float* __restrict__ param, const float* __restrict__ grad,
                                                        float* __restrict__ m, float* __restrict__ v, int64_t n,
                                                        const AdamScalars a, bool vec) {
  const int64_t nq = (n + 3) / 4;
  for (int64_t q = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; q < nq;
       q += static_cast<int64_t>(gridDim.x) * kThreads) {
    if (vec && 4 * q + 3 < n) {
      float4 p = reinterpret_cast<float4*>(param)[q];
      const float4 g = __ldg(reinterpret_cast<const float4*>(grad) + q);
      float4 mm = reinterpret_cast<float4*>(m)[q];
      float4 vv = reinterpret_cast<float4*>(v)[q];
      adamElement(a, p.x, g.x, mm.x, vv.x);
      adamElement(a, p.y, g.y, mm.y, vv.y);
      adamElement(a, p.z, g.z, mm.z, vv.z);
      adamElement(a, p.w, g.w, mm.w, vv.w);
      reinterpret_cast<float4*>(param)[q] = p;
      reinterpret_cast<float4*>(m)[q] = mm;
      reinterpret_cast<float4*>(v)[q] = vv;
    } else {
      for (int64_t i = 4 * q; i < n && i < 4 * q + 4; ++i) adamElement(a, param[i], grad[i], m[i], v[i]);
    }
  }
}

// Fixed tree over kThreads doubles; the result is in part[0].
__device__ __forceinline__ void blockTree(double* part) {
#pragma unroll
  for (int half = kThreads / 2; half > 0; half >>= 1) {
    if (static_cast<int>(threadIdx.x) < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
}

// blockSums [gridDim.x]: each thread sums its quads' squares in element order (the scalar
// path reads the same quads), then the block tree.
__global__ void __launch_bounds__(kThreads) sumSquaresKernel(const float* __restrict__ x, int64_t n, bool vec,
                                                             double* __restrict__ blockSums) {
  __shared__ double part[kThreads];
  const int64_t nq = (n + 3) / 4;
  double acc = 0.0;
  for (int64_t q = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; q < nq;
       q += static_cast<int64_t>(gridDim.x) * kThreads) {
    float e[4] = {0.f, 0.f, 0.f, 0.f};
    if (vec && 4 * q + 3 < n) {
      const float4 t = __ldg(reinterpret_cast<const float4*>(x) + q);
      e[0] = t.x, e[1] = t.y, e[2] = t.z, e[3] = t.w;
    } else {
      for (int k = 0; k < 4; ++k)
        if (4 * q + k < n) e[k] = __ldg(x + 4 * q + k);
    }
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const double d = e[k];
      acc = fma(d, d, acc);
    }
  }
  part[threadIdx.x] = acc;
  __syncthreads();
  blockTree(part);
  if (threadIdx.x == 0) blockSums[blockIdx.x] = part[0];
}

// out = sum of blockSums [count] (count <= kMaxSumBlocks), in a fixed order.
__global__ void __launch_bounds__(kThreads) sumBlocksKernel(const double* __restrict__ blockSums, int64_t count,
                                                            double* __restrict__ out) {
  __shared__ double part[kThreads];
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += kThreads) acc += blockSums[i];
  part[threadIdx.x] = acc;
  __syncthreads();
  blockTree(part);
  if (threadIdx.x == 0) *out = part[0];
}

}  // namespace

void adamw(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
           float eps, float weightDecay, int64_t step) {
  VALR_CHECK(step >= 1, Argument, "adamw: step " << step << " (1-based) must be >= 1");
  if (n <= 0) return;
  int dev;
  VALR_CUDA_CHECK(cudaGetDevice(&dev));
  cudaStream_t s = useDevice(dev);

  const double lrd = lr, b1 = beta1, b2 = beta2;
  const double bias1 = 1.0 - std::pow(b1, static_cast<double>(step));
  const double bias2 = 1.0 - std::pow(b2, static_cast<double>(step));
  AdamScalars a;
  a.decay = 1.f - lr * weightDecay;
  a.beta1 = beta1;
  a.oneMinusBeta1 = static_cast<float>(1.0 - b1);
  a.beta2 = beta2;
  a.oneMinusBeta2 = static_cast<float>(1.0 - b2);
  a.stepSize = static_cast<float>(lrd / bias1);
  a.bc2Sqrt = static_cast<float>(std::sqrt(bias2));
  a.eps = eps;

  const bool vec = aligned16(param) && aligned16(grad) && aligned16(m) && aligned16(v);
  int64_t blocks = ((n + 3) / 4 + kThreads - 1) / kThreads;
  if (blocks > kMaxBlocks) blocks = kMaxBlocks;
  adamwKernel<<<static_cast<unsigned>(blocks), kThreads, 0, s>>>(param, grad, m, v, n, a, vec);
  VALR_CUDA_CHECK_LAUNCH();
}

double sumSquares(const float* x, int64_t n) {
  if (n <= 0) return 0.0;
  int dev;
  VALR_CUDA_CHECK(cudaGetDevice(&dev));
  cudaStream_t s = useDevice(dev);

  // The block count (hence the summation order) depends on n only, not on the GPU.
  int64_t blocks = ((n + 3) / 4 + kQuadsPerSumBlock - 1) / kQuadsPerSumBlock;
  if (blocks > kMaxSumBlocks) blocks = kMaxSumBlocks;
  Scratch buf(dev, static_cast<size_t>(blocks + 1) * sizeof(double));  // block sums, then the total
  double* blockSums = buf.as<double>();
  sumSquaresKernel<<<static_cast<unsigned>(blocks), kThreads, 0, s>>>(x, n, aligned16(x), blockSums);
  VALR_CUDA_CHECK_LAUNCH();
  sumBlocksKernel<<<1, kThreads, 0, s>>>(blockSums, blocks, blockSums + blocks);
  VALR_CUDA_CHECK_LAUNCH();

  double host = 0.0;
  VALR_CUDA_CHECK(cudaMemcpyAsync(&host, blockSums + blocks, sizeof(double), cudaMemcpyDeviceToHost, s));
  VALR_CUDA_CHECK(cudaStreamSynchronize(s));
  return host;
}

}  // namespace cuda
}  // namespace valr
