// Rotary position embedding, rotate-half layout (Hugging Face Llama/Qwen2).
// inv_freq is computed on the host like HF (float32 pow, then 1/x) and uploaded with the
// positions. One thread per (row, i < Dh/2): it forms the angle once, takes cos/sin in
// double (--use_fast_math would turn cosf/sinf into the coarse __cosf/__sinf) and
// rotates that pair in every head. Each thread reads its two elements before writing
// them and no other thread touches them, so y may alias x. An odd last element (odd Dh)
// is copied unrotated, as the CPU kernel does.
#include <cmath>
#include <cstdint>
#include <vector>
#include "../core/model_kernels.h"
#include "check.cuh"
#include "scratch.cuh"
#include "cuda_api.h"

namespace valr {
namespace cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t{1} << 20;


// x, y [rows, H, Dh]; positions [rows]; invFreq [half]. No __restrict__: y may be x.
// Round-to-nearest intrinsics keep HF's separately rounded x*cos + rotate_half(x)*sin.
__global__ void __launch_bounds__(kThreads) ropeKernel(const float* x, float* y, const int32_t* __restrict__ positions,
                                                       const float* __restrict__ invFreq, int64_t rows, int64_t H,
                                                       int64_t Dh, int64_t half, bool inverse) {
  const int64_t total = rows * half;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t row = idx / half;
    const int64_t i = idx - row * half;
    const float angle = __fmul_rn(static_cast<float>(positions[row]), invFreq[i]);
    double sd, cd;
    sincos(static_cast<double>(angle), &sd, &cd);
    const float c = static_cast<float>(cd);
    const float s = inverse ? -static_cast<float>(sd) : static_cast<float>(sd);
    const float* xr = x + row * H * Dh + i;
    float* yr = y + row * H * Dh + i;
    const bool odd = i == 0 && Dh % 2 != 0;
    for (int64_t h = 0; h < H; ++h) {
      const float x1 = xr[h * Dh], x2 = xr[h * Dh + half];
      yr[h * Dh] = __fadd_rn(__fmul_rn(x1, c), -__fmul_rn(x2, s));
      yr[h * Dh + half] = __fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, s));
      if (odd) yr[h * Dh + Dh - 1] = xr[h * Dh + Dh - 1];
    }
  }
}

}  // namespace

void rope(const float* x, float* y, const int32_t* positions, int64_t rows, int64_t H, int64_t Dh, float theta,
          bool inverse) {
  if (rows <= 0 || H <= 0 || Dh <= 0) return;
  int dev;
  VALR_CUDA_CHECK(cudaGetDevice(&dev));
  cudaStream_t s = useDevice(dev);

  const int64_t half = Dh / 2;
  if (half == 0) {  // Dh == 1: nothing rotates
    if (y != x)
      VALR_CUDA_CHECK(cudaMemcpyAsync(y, x, static_cast<size_t>(rows * H) * sizeof(float), cudaMemcpyDeviceToDevice, s));
    return;
  }
  // HF: 1.0 / (theta ** (arange(0, Dh, 2).float() / Dh)), all in float32.
  std::vector<float> invFreq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    const float e = static_cast<float>(2 * i) / static_cast<float>(Dh);
    invFreq[i] = 1.0f / std::pow(theta, e);
  }

  // One upload: positions [rows] then invFreq [half].
  const size_t posBytes = static_cast<size_t>(rows) * sizeof(int32_t);
  const size_t freqBytes = static_cast<size_t>(half) * sizeof(float);
  const size_t freqOffset = (posBytes + 15) / 16 * 16;
  Scratch buf(dev, freqOffset + freqBytes);
  int32_t* dPos = buf.as<int32_t>();
  float* dFreq = reinterpret_cast<float*>(buf.as<char>() + freqOffset);
  VALR_CUDA_CHECK(cudaMemcpyAsync(dPos, positions, posBytes, cudaMemcpyHostToDevice, s));
  VALR_CUDA_CHECK(cudaMemcpyAsync(dFreq, invFreq.data(), freqBytes, cudaMemcpyHostToDevice, s));

  int64_t blocks = (rows * half + kThreads - 1) / kThreads;
  if (blocks > kMaxBlocks) blocks = kMaxBlocks;
  ropeKernel<<<static_cast<unsigned>(blocks), kThreads, 0, s>>>(x, y, dPos, dFreq, rows, H, Dh, half, inverse);
  VALR_CUDA_CHECK_LAUNCH();
}

}  // namespace cuda
}  // namespace valr
