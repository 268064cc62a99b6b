// RMSNorm and LayerNorm over the last dim D, forward and backward.
// Row kernels: one warp per row; lane l takes quads (4 floats) l, l + 32, ... in that
// order and sums in double (as the CPU kernels; cheap next to the memory traffic), then
// a butterfly gives every lane the same total. The scalar path (unaligned pointers,
// D % 4 != 0) reads the same quads element by element, so alignment never changes the
// bits. rstd is finished in double: --use_fast_math makes float sqrt and divide approximate.
// Parameter gradients: a column kernel sums fixed chunks of rows per column into a
// [numChunks, D] buffer, a second kernel adds the chunks in order into dw / db. No atomics.
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
constexpr int kWarps = kThreads / 32;
constexpr int kCacheQuads = 8;  // quads a lane keeps in registers: rows up to D = 1024 read once
constexpr int64_t kMaxBlocks = int64_t{1} << 20;
constexpr int kColThreads = 256;
constexpr int kSumThreads = 64;  // the chunk sum has only D threads: small blocks spread them over more SMs
constexpr int64_t kMinChunkRows = 32;



// Quad q = elements 4q..4q+3 of a row; past D (and for a null row) it reads `fill`.
__device__ __forceinline__ float4 loadQuad(const float* row, int64_t q, int64_t D, bool vec, float fill = 0.f) {
  if (row == nullptr) return make_float4(fill, fill, fill, fill);
  if (vec) return __ldg(reinterpret_cast<const float4*>(row) + q);
  const int64_t e = 4 * q;
  float4 v = make_float4(fill, fill, fill, fill);
  if (e < D) v.x = __ldg(row + e);
  if (e + 1 < D) v.y = __ldg(row + e + 1);
  if (e + 2 < D) v.z = __ldg(row + e + 2);
  if (e + 3 < D) v.w = __ldg(row + e + 3);
  return v;
}


// Per-quad terms added into a double accumulator in element order, only elements < D.
template <typename F>
__device__ __forceinline__ void addQuad(double& acc, int64_t q, int64_t D, F term) {
  const int64_t e = 4 * q;
  acc += term(0);
  if (e + 1 < D) acc += term(1);
  if (e + 2 < D) acc += term(2);
  if (e + 3 < D) acc += term(3);
}

__device__ __forceinline__ float at(float4 v, int k) { return k == 0 ? v.x : k == 1 ? v.y : k == 2 ? v.z : v.w; }

// Butterfly: lanes l and l ^ m add the same two values, so every lane ends with the same bits.
__device__ __forceinline__ double warpSum(double v) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
  return v;
}

// Every row loop below: warp `w` of the grid takes rows w, w + numWarps, ...
__device__ __forceinline__ int64_t firstWarp() {
  return (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
}
__device__ __forceinline__ int64_t warpStride() { return (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5; }

// y [rows, D] = (x * rstd) * w; rstd [rows] = 1 / sqrt(mean(x^2) + eps), the sum in double.
__global__ void __launch_bounds__(kThreads) rmsForwardKernel(const float* __restrict__ x, const float* __restrict__ w,
                                                             float* __restrict__ y, float* __restrict__ rstd,
                                                             int64_t rows, int64_t D, float eps, bool vec) {
  const int lane = threadIdx.x & 31;
  const int64_t nq = (D + 3) / 4;
  const bool cached = nq <= 32 * kCacheQuads;
  for (int64_t row = firstWarp(); row < rows; row += warpStride()) {
    const float* xr = x + row * D;
    float* yr = y + row * D;
    float4 c[kCacheQuads];
    double ss = 0.0;
    auto sq = [](float4 v) {
      return [v](int k) {
        const double t = at(v, k);
        return t * t;
      };
    };
    if (cached) {
#pragma unroll
      for (int k = 0; k < kCacheQuads; ++k) {
        const int64_t q = lane + 32 * k;
        c[k] = q < nq ? loadQuad(xr, q, D, vec) : make_float4(0.f, 0.f, 0.f, 0.f);
      }
#pragma unroll
      for (int k = 0; k < kCacheQuads; ++k)
        if (lane + 32 * k < nq) addQuad(ss, lane + 32 * k, D, sq(c[k]));
    } else {
      for (int64_t q = lane; q < nq; q += 32) addQuad(ss, q, D, sq(loadQuad(xr, q, D, vec)));
    }
    ss = warpSum(ss);
    const float r = static_cast<float>(1.0 / sqrt(ss / static_cast<double>(D) + static_cast<double>(eps)));
    if (lane == 0) rstd[row] = r;
    auto out = [&](float4 v, int64_t q) {
      const float4 wv = loadQuad(w, q, D, vec, 1.f);
      storeQuad(yr, q, D, vec,
                make_float4(__fmul_rn(v.x * r, wv.x), __fmul_rn(v.y * r, wv.y), __fmul_rn(v.z * r, wv.z),
                            __fmul_rn(v.w * r, wv.w)));
    };
    if (cached) {
#pragma unroll
      for (int k = 0; k < kCacheQuads; ++k)
        if (lane + 32 * k < nq) out(c[k], lane + 32 * k);
    } else {
      for (int64_t q = lane; q < nq; q += 32) out(loadQuad(xr, q, D, vec), q);
    }
  }
}

// dx = rstd * dy * w - x * k, k = mean(dy * w * x) * rstd^3 (the mean in double)
__global__ void __launch_bounds__(kThreads) rmsBackwardKernel(const float* __restrict__ dy, const float* __restrict__ x,
                                                              const float* __restrict__ w,
                                                              const float* __restrict__ rstd, float* __restrict__ dx,
                                                              int64_t rows, int64_t D, bool vec) {
  const int lane = threadIdx.x & 31;
  const int64_t nq = (D + 3) / 4;
  for (int64_t row = firstWarp(); row < rows; row += warpStride()) {
    const float* xr = x + row * D;
    const float* gr = dy + row * D;
    float* dr = dx + row * D;
    double dot = 0.0;
    for (int64_t q = lane; q < nq; q += 32) {
      const float4 g = loadQuad(gr, q, D, vec), wv = loadQuad(w, q, D, vec, 1.f), v = loadQuad(xr, q, D, vec);
      addQuad(dot, q, D, [&](int k) {
        return static_cast<double>(at(g, k)) * static_cast<double>(at(wv, k)) * static_cast<double>(at(v, k));
      });
    }
    dot = warpSum(dot);
    const float r = rstd[row];
    const float k = static_cast<float>(dot / static_cast<double>(D)) * r * r * r;
    auto grad = [&](float g, float wj, float v) { return __fmul_rn(r * g, wj) - v * k; };
    for (int64_t q = lane; q < nq; q += 32) {
      const float4 g = loadQuad(gr, q, D, vec), wv = loadQuad(w, q, D, vec, 1.f), v = loadQuad(xr, q, D, vec);
      storeQuad(dr, q, D, vec,
                make_float4(grad(g.x, wv.x, v.x), grad(g.y, wv.y, v.y), grad(g.z, wv.z, v.z), grad(g.w, wv.w, v.w)));
    }
  }
}

// y = (x - mean) * rstd * w + b; mean, rstd [rows]. Mean and the centred variance in double.
__global__ void __launch_bounds__(kThreads) lnForwardKernel(const float* __restrict__ x, const float* __restrict__ w,
                                                            const float* __restrict__ b, float* __restrict__ y,
                                                            float* __restrict__ mean, float* __restrict__ rstd,
                                                            int64_t rows, int64_t D, float eps, bool vec) {
  const int lane = threadIdx.x & 31;
  const int64_t nq = (D + 3) / 4;
  const bool cached = nq <= 32 * kCacheQuads;
  for (int64_t row = firstWarp(); row < rows; row += warpStride()) {
    const float* xr = x + row * D;
    float* yr = y + row * D;
    float4 c[kCacheQuads];
    double s = 0.0;
    auto val = [](float4 v) { return [v](int k) { return static_cast<double>(at(v, k)); }; };
    if (cached) {
#pragma unroll
      for (int k = 0; k < kCacheQuads; ++k) {
        const int64_t q = lane + 32 * k;
        c[k] = q < nq ? loadQuad(xr, q, D, vec) : make_float4(0.f, 0.f, 0.f, 0.f);
      }
#pragma unroll
      for (int k = 0; k < kCacheQuads; ++k)
        if (lane + 32 * k < nq) addQuad(s, lane + 32 * k, D, val(c[k]));
    } else {
      for (int64_t q = lane; q < nq; q += 32) addQuad(s, q, D, val(loadQuad(xr, q, D, vec)));
    }
    const double mu = warpSum(s) / static_cast<double>(D);
    auto sq = [mu](float4 v) {
      return [v, mu](int k) {
        const double d = static_cast<double>(at(v, k)) - mu;
        return d * d;
      };
    };
    double ss = 0.0;
    if (cached) {
#pragma unroll
      for (int k = 0; k < kCacheQuads; ++k)
        if (lane + 32 * k < nq) addQuad(ss, lane + 32 * k, D, sq(c[k]));
    } else {
      for (int64_t q = lane; q < nq; q += 32) addQuad(ss, q, D, sq(loadQuad(xr, q, D, vec)));
    }
    ss = warpSum(ss);
    const float r = static_cast<float>(1.0 / sqrt(ss / static_cast<double>(D) + static_cast<double>(eps)));
    const float m = static_cast<float>(mu);
    if (lane == 0) {
      mean[row] = m;
      rstd[row] = r;
    }
    auto one = [&](float v, float wj, float bj) { return __fmul_rn((v - m) * r, wj) + bj; };
    auto out = [&](float4 v, int64_t q) {
      const float4 wv = loadQuad(w, q, D, vec, 1.f);
      const float4 bv = loadQuad(b, q, D, vec, 0.f);
      storeQuad(yr, q, D, vec,
                make_float4(one(v.x, wv.x, bv.x), one(v.y, wv.y, bv.y), one(v.z, wv.z, bv.z), one(v.w, wv.w, bv.w)));
    };
    if (cached) {
#pragma unroll
      for (int k = 0; k < kCacheQuads; ++k)
        if (lane + 32 * k < nq) out(c[k], lane + 32 * k);
    } else {
      for (int64_t q = lane; q < nq; q += 32) out(loadQuad(xr, q, D, vec), q);
    }
  }
}

// xhat = (x - mean) * rstd, g = dy * w: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),
// the means in double.
__global__ void __launch_bounds__(kThreads) lnBackwardKernel(const float* __restrict__ dy, const float* __restrict__ x,
                                                             const float* __restrict__ w,
                                                             const float* __restrict__ mean,
                                                             const float* __restrict__ rstd, float* __restrict__ dx,
                                                             int64_t rows, int64_t D, bool vec) {
  const int lane = threadIdx.x & 31;
  const int64_t nq = (D + 3) / 4;
  for (int64_t row = firstWarp(); row < rows; row += warpStride()) {
    const float* xr = x + row * D;
    const float* gr = dy + row * D;
    float* dr = dx + row * D;
    const float m = mean[row], r = rstd[row];
    double sg = 0.0, sgx = 0.0;
    for (int64_t q = lane; q < nq; q += 32) {
      const float4 g = loadQuad(gr, q, D, vec), wv = loadQuad(w, q, D, vec, 1.f), v = loadQuad(xr, q, D, vec);
      auto gw = [&](int k) { return static_cast<double>(at(g, k)) * static_cast<double>(at(wv, k)); };
      addQuad(sg, q, D, gw);
      addQuad(sgx, q, D, [&](int k) { return gw(k) * static_cast<double>(at(v, k) - m) * static_cast<double>(r); });
    }
    sg = warpSum(sg);
    sgx = warpSum(sgx);
    const float mg = static_cast<float>(sg / static_cast<double>(D));
    const float mgx = static_cast<float>(sgx / static_cast<double>(D));
    auto grad = [&](float g, float wj, float v) { return r * (__fmul_rn(g, wj) - mg - (v - m) * r * mgx); };
    for (int64_t q = lane; q < nq; q += 32) {
      const float4 g = loadQuad(gr, q, D, vec), wv = loadQuad(w, q, D, vec, 1.f), v = loadQuad(xr, q, D, vec);
      storeQuad(dr, q, D, vec,
                make_float4(grad(g.x, wv.x, v.x), grad(g.y, wv.y, v.y), grad(g.z, wv.z, v.z), grad(g.w, wv.w, v.w)));
    }
  }
}

// Column sums over the rows of chunk blockIdx.y, in row order:
// dw_j: dy * xhat (xhat = (x - mean) * rstd, mean = 0 for RMSNorm), db_j: dy.
// With one chunk the sums go straight into dw / db (+=), else into part [numChunks, D] (x2).
template <bool LN>
__global__ void __launch_bounds__(kColThreads) paramGradKernel(const float* __restrict__ dy,
                                                               const float* __restrict__ x,
                                                               const float* __restrict__ mean,
                                                               const float* __restrict__ rstd, int64_t rows,
                                                               int64_t D, int64_t chunkRows, float* __restrict__ dw,
                                                               float* __restrict__ db, float* __restrict__ part,
                                                               bool direct) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kColThreads + threadIdx.x;
  if (j >= D) return;
  const int64_t chunk = blockIdx.y;
  const int64_t r0 = chunk * chunkRows;
  const int64_t r1 = r0 + chunkRows < rows ? r0 + chunkRows : rows;
  float sw = 0.f, sb = 0.f;
#pragma unroll 4
  for (int64_t r = r0; r < r1; ++r) {
    const float g = __ldg(dy + r * D + j);
    const float xc = LN ? __ldg(x + r * D + j) - __ldg(mean + r) : __ldg(x + r * D + j);
    sw += __fmul_rn(g, xc) * __ldg(rstd + r);  // (dy * xc) * rstd as the CPU kernel
    if (LN) sb += g;
  }
  const int64_t numChunks = gridDim.y;
  if (direct) {
    if (dw) dw[j] += sw;
    if (LN && db) db[j] += sb;
  } else {
    part[chunk * D + j] = sw;
    if (LN) part[(numChunks + chunk) * D + j] = sb;
  }
}

// dw[j] += sum over chunks of part[c, j], chunk 0 first (db from the second half).
__global__ void __launch_bounds__(kSumThreads) sumChunksKernel(const float* __restrict__ part, int64_t numChunks,
                                                               int64_t D, float* __restrict__ dw,
                                                               float* __restrict__ db) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kSumThreads + threadIdx.x;
  if (j >= D) return;
  float* out = blockIdx.y == 0 ? dw : db;
  if (out == nullptr) return;
  const float* p = part + static_cast<int64_t>(blockIdx.y) * numChunks * D + j;
  float s = p[0];
#pragma unroll 8
  for (int64_t c = 1; c < numChunks; ++c) s += p[c * D];
  out[j] += s;
}

dim3 rowGrid(int64_t rows) {
  int64_t blocks = (rows + kWarps - 1) / kWarps;
  if (blocks > kMaxBlocks) blocks = kMaxBlocks;
  return dim3(static_cast<unsigned>(blocks));
}

cudaStream_t currentStream(int* dev) {
  VALR_CUDA_CHECK(cudaGetDevice(dev));
  return useDevice(*dev);
}

// dw (+ db) += column sums; the chunking depends only on `rows`, so do the bits.
// Chunks of >= 32 rows, about sqrt(rows) of them: both passes get short loops.
template <bool LN>
void paramGrads(int dev, cudaStream_t s, const float* dy, const float* x, const float* mean, const float* rstd,
                int64_t rows, int64_t D, float* dw, float* db) {
  if (dw == nullptr && db == nullptr) return;
  int64_t chunkRows = kMinChunkRows;
  while ((rows + chunkRows - 1) / chunkRows > 2 * chunkRows) chunkRows *= 2;
  const int64_t numChunks = (rows + chunkRows - 1) / chunkRows;
  const int64_t colBlocks = (D + kColThreads - 1) / kColThreads;
  VALR_CHECK(colBlocks <= 0x7fffffff && numChunks <= 65535, Argument,
             "norm backward: " << rows << " x " << D << " is too large");
  const int outs = LN ? 2 : 1;
  Scratch part(dev, numChunks > 1 ? static_cast<size_t>(outs * numChunks * D) * sizeof(float) : 0);
  paramGradKernel<LN><<<dim3(static_cast<unsigned>(colBlocks), static_cast<unsigned>(numChunks)), kColThreads, 0, s>>>(
      dy, x, mean, rstd, rows, D, chunkRows, dw, db, part.as<float>(), numChunks == 1);
  VALR_CUDA_CHECK_LAUNCH();
  if (numChunks > 1) {
    const int64_t sumBlocks = (D + kSumThreads - 1) / kSumThreads;
    sumChunksKernel<<<dim3(static_cast<unsigned>(sumBlocks), outs), kSumThreads, 0, s>>>(part.as<float>(), numChunks,
                                                                                         D, dw, db);
    VALR_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace

void rmsNormForward(const float* x, const float* w, float* y, float* rstd, int64_t rows, int64_t D, float eps) {
  if (rows <= 0 || D <= 0) return;
  int dev;
  cudaStream_t s = currentStream(&dev);
  const bool vec = D % 4 == 0 && aligned16(x) && aligned16(w) && aligned16(y);
  rmsForwardKernel<<<rowGrid(rows), kThreads, 0, s>>>(x, w, y, rstd, rows, D, eps, vec);
  VALR_CUDA_CHECK_LAUNCH();
}

void rmsNormBackward(const float* dy, const float* x, const float* w, const float* rstd, float* dx, float* dw,
                     int64_t rows, int64_t D) {
  if (rows <= 0 || D <= 0) return;
  int dev;
  cudaStream_t s = currentStream(&dev);
  const bool vec = D % 4 == 0 && aligned16(dy) && aligned16(x) && aligned16(w) && aligned16(dx);
  if (dx) {
    rmsBackwardKernel<<<rowGrid(rows), kThreads, 0, s>>>(dy, x, w, rstd, dx, rows, D, vec);
    VALR_CUDA_CHECK_LAUNCH();
  }
  paramGrads<false>(dev, s, dy, x, nullptr, rstd, rows, D, dw, nullptr);
}

void layerNormForward(const float* x, const float* w, const float* b, float* y, float* mean, float* rstd,
                      int64_t rows, int64_t D, float eps) {
  if (rows <= 0 || D <= 0) return;
  int dev;
  cudaStream_t s = currentStream(&dev);
  const bool vec = D % 4 == 0 && aligned16(x) && aligned16(w) && aligned16(b) && aligned16(y);
  lnForwardKernel<<<rowGrid(rows), kThreads, 0, s>>>(x, w, b, y, mean, rstd, rows, D, eps, vec);
  VALR_CUDA_CHECK_LAUNCH();
}

void layerNormBackward(const float* dy, const float* x, const float* w, const float* mean, const float* rstd,
                       float* dx, float* dw, float* db, int64_t rows, int64_t D) {
  if (rows <= 0 || D <= 0) return;
  int dev;
  cudaStream_t s = currentStream(&dev);
  const bool vec = D % 4 == 0 && aligned16(dy) && aligned16(x) && aligned16(w) && aligned16(dx);
  if (dx) {
    lnBackwardKernel<<<rowGrid(rows), kThreads, 0, s>>>(dy, x, w, mean, rstd, dx, rows, D, vec);
    VALR_CUDA_CHECK_LAUNCH();
  }
  paramGrads<true>(dev, s, dy, x, mean, rstd, rows, D, dw, db);
}

}  // namespace cuda
}  // namespace valr
