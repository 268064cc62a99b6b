#include "../core/elementwise_kernels.h"
#include "check.cuh"

namespace valr {
namespace cuda {

namespace {
__global__ void fillKernel(float* x, int64_t n, float v) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) x[i] = v;
}
__global__ void scaleKernel(float* y, int64_t n, float a) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) y[i] *= a;
}
__global__ void addScaledKernel(float* y, const float* x, int64_t n, float a) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] += a * x[i];
}

// Grid-stride launch shape: enough blocks to fill the GPU, capped for tiny inputs.
dim3 gridFor(int64_t n) { return dim3(unsigned(std::min<int64_t>((n + 255) / 256, 65535))); }
}  // namespace

void fill(float* x, int64_t n, float value) {
  if (n <= 0) return;
  fillKernel<<<gridFor(n), 256, 0, currentStream()>>>(x, n, value);
  VALR_CUDA_CHECK_LAUNCH();
}

void scale(float* y, int64_t n, float alpha) {
  if (n <= 0) return;
  scaleKernel<<<gridFor(n), 256, 0, currentStream()>>>(y, n, alpha);
  VALR_CUDA_CHECK_LAUNCH();
}

void addScaled(float* y, const float* x, int64_t n, float alpha) {
  if (n <= 0) return;
  addScaledKernel<<<gridFor(n), 256, 0, currentStream()>>>(y, x, n, alpha);
  VALR_CUDA_CHECK_LAUNCH();
}

}  // namespace cuda
}  // namespace valr
