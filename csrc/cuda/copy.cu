// Block copies along the sequence dim (KV cache, splicing) and row scatter.
// copyBlock: for each batch item b the T rows are one contiguous run of T * row floats in
// both tensors, so grid.y walks b and grid.x that run. scatterRows: grid.y walks source
// rows, grid.x the columns. float4 access when every row start is 16-byte aligned.
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
constexpr int64_t kMaxGridX = int64_t{1} << 16;
constexpr int64_t kMaxGridY = 65535;



__device__ __forceinline__ float add(float a, float b) { return a + b; }
__device__ __forceinline__ float4 add(float4 a, float4 b) {
  return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
}

// T = float or float4; strides and lengths in units of T.
// dst[b * dstStride + i] (=|+=) src[b * srcStride + i] for i < len, b < B.
template <typename T>
__global__ void __launch_bounds__(kThreads) copyBlockKernel(const T* __restrict__ src, int64_t srcStride,
                                                            T* __restrict__ dst, int64_t dstStride, int64_t B,
                                                            int64_t len, bool accumulate) {
  for (int64_t b = blockIdx.y; b < B; b += gridDim.y) {
    const T* s = src + b * srcStride;
    T* d = dst + b * dstStride;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < len;
         i += static_cast<int64_t>(gridDim.x) * kThreads)
      d[i] = accumulate ? add(d[i], __ldg(s + i)) : __ldg(s + i);
  }
}

// dst[rows[i], :] = src[i, :]; cols in units of T.
template <typename T>
__global__ void __launch_bounds__(kThreads) scatterRowsKernel(const T* __restrict__ src,
                                                              const int32_t* __restrict__ rows, int64_t count,
                                                              int64_t cols, T* __restrict__ dst) {
  for (int64_t i = blockIdx.y; i < count; i += gridDim.y) {
    const T* s = src + i * cols;
    T* d = dst + static_cast<int64_t>(rows[i]) * cols;
    for (int64_t c = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; c < cols;
         c += static_cast<int64_t>(gridDim.x) * kThreads)
      d[c] = __ldg(s + c);
  }
}

dim3 grid2d(int64_t inner, int64_t outer) {
  int64_t gx = (inner + kThreads - 1) / kThreads;
  if (gx > kMaxGridX) gx = kMaxGridX;
  const int64_t gy = outer < kMaxGridY ? outer : kMaxGridY;
  return dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy));
}

}  // namespace

void copyBlock(const float* src, int64_t srcT, int64_t srcOffset, float* dst, int64_t dstT, int64_t dstOffset,
               int64_t B, int64_t T, int64_t row, bool accumulate) {
  if (B <= 0 || T <= 0 || row <= 0) return;
  int dev;
  VALR_CUDA_CHECK(cudaGetDevice(&dev));
  cudaStream_t s = useDevice(dev);

  const float* s0 = src + srcOffset * row;
  float* d0 = dst + dstOffset * row;
  const int64_t srcStride = srcT * row, dstStride = dstT * row, len = T * row;
  // Every batch item's run starts 16-byte aligned when the first does and the strides are quads.
  if (aligned16(s0) && aligned16(d0) && srcStride % 4 == 0 && dstStride % 4 == 0 && len % 4 == 0) {
    copyBlockKernel<float4><<<grid2d(len / 4, B), kThreads, 0, s>>>(reinterpret_cast<const float4*>(s0),
                                                                    srcStride / 4, reinterpret_cast<float4*>(d0),
                                                                    dstStride / 4, B, len / 4, accumulate);
  } else {
    copyBlockKernel<float><<<grid2d(len, B), kThreads, 0, s>>>(s0, srcStride, d0, dstStride, B, len, accumulate);
  }
  VALR_CUDA_CHECK_LAUNCH();
}

void scatterRows(const float* src, const int32_t* rows, int64_t count, int64_t D, float* dst) {
  if (count <= 0 || D <= 0) return;
  int dev;
  VALR_CUDA_CHECK(cudaGetDevice(&dev));
  cudaStream_t s = useDevice(dev);

  Scratch dRows(dev, static_cast<size_t>(count) * sizeof(int32_t));
  VALR_CUDA_CHECK(cudaMemcpyAsync(dRows.as<int32_t>(), rows, static_cast<size_t>(count) * sizeof(int32_t),
                                  cudaMemcpyHostToDevice, s));
  if (D % 4 == 0 && aligned16(src) && aligned16(dst)) {
    scatterRowsKernel<float4><<<grid2d(D / 4, count), kThreads, 0, s>>>(
        reinterpret_cast<const float4*>(src), dRows.as<int32_t>(), count, D / 4, reinterpret_cast<float4*>(dst));
  } else {
    scatterRowsKernel<float><<<grid2d(D, count), kThreads, 0, s>>>(src, dRows.as<int32_t>(), count, D, dst);
  }
  VALR_CUDA_CHECK_LAUNCH();
}

}  // namespace cuda
}  // namespace valr
