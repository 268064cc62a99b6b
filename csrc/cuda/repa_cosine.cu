// Batched negative-cosine REPA loss and its gradient for all teachers in one launch.
// Pass 1: one warp per (teacher, s, p) row reads pred and target once, reduces
// dot/norms in double (no overflow for |x| ~ 1e30, no NaN for zero rows), stores the
// row's weighted cosine and writes the gradient row. Pass 2: one block per teacher
// sums its rows in a fixed order. No atomics anywhere, so the bits are reproducible.
#include <cstdint>
#include <vector>
#include "../core/alignment_kernels.h"
#include "check.cuh"
#include "device_helpers.cuh"
#include "scratch.cuh"
#include "cuda_api.h"

namespace valr {
namespace cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / 32;
constexpr int kCacheQuads = 8;  // quads of 4 floats a lane keeps in registers: rows up to D = 1024 read once
constexpr int kReduceThreads = 256;
constexpr int64_t kMaxBlocks = int64_t{1} << 20;


struct TeacherDesc {
  const float* pred;    // [S, P, D]
  const float* target;  // [S, P, D]
  float* grad;          // [S, P, D]
  int64_t P, D;
  int64_t rowStart;     // first row of this teacher in the global row space
  double WP;            // sum(w) * P
  int vec;              // float4 loads and stores are legal
};

struct RepaParams {
  TeacherDesc t[kMaxTeachers];
  int M;
  int64_t totalRows;
  const float* weights;  // device [S], nullptr: all 1
  double scale;          // gradScale * (1 / M)
};

struct ReduceParams {
  int64_t rowStart[kMaxTeachers];
  int64_t rows[kMaxTeachers];
};


// Quad q = elements 4q..4q+3 of a row, zero past D. The scalar path hands every lane
// the same elements in the same order as the float4 path, so alignment never
// changes the sums' bits.
__device__ __forceinline__ float4 loadQuad(const float* row, int64_t q, int64_t D, bool vec, bool stream) {
  if (vec) {
    const float4* p = reinterpret_cast<const float4*>(row) + q;
    return stream ? __ldcs(p) : __ldg(p);
  }
  const int64_t e = 4 * q;
  float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
  if (e < D) v.x = __ldg(row + e);
  if (e + 1 < D) v.y = __ldg(row + e + 1);
  if (e + 2 < D) v.z = __ldg(row + e + 2);
  if (e + 3 < D) v.w = __ldg(row + e + 3);
  return v;
}


struct Sums {
  double dot, xx, yy;
};

__device__ __forceinline__ void accumulate(Sums& a, float4 x, float4 y) {
  const double x0 = x.x, x1 = x.y, x2 = x.z, x3 = x.w;
  const double y0 = y.x, y1 = y.y, y2 = y.z, y3 = y.w;
  a.dot = fma(x0, y0, a.dot);
  a.xx = fma(x0, x0, a.xx);
  a.yy = fma(y0, y0, a.yy);
  a.dot = fma(x1, y1, a.dot);
  a.xx = fma(x1, x1, a.xx);
  a.yy = fma(y1, y1, a.yy);
  a.dot = fma(x2, y2, a.dot);
  a.xx = fma(x2, x2, a.xx);
  a.yy = fma(y2, y2, a.yy);
  a.dot = fma(x3, y3, a.dot);
  a.xx = fma(x3, x3, a.xx);
  a.yy = fma(y3, y3, a.yy);
}

// Butterfly: lanes l and l^m add the same two values, so every lane ends with the
// same bits.
__device__ __forceinline__ void warpAllReduce(Sums& a) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) {
    a.dot += __shfl_xor_sync(0xffffffffu, a.dot, m);
    a.xx += __shfl_xor_sync(0xffffffffu, a.xx, m);
    a.yy += __shfl_xor_sync(0xffffffffu, a.yy, m);
  }
}

// g = a * y - b * x, the scaled d cos / d x of one quad (in double, stored as float).
__device__ __forceinline__ float4 gradQuad(double a, double b, float4 x, float4 y) {
  return make_float4(static_cast<float>(a * static_cast<double>(y.x) - b * static_cast<double>(x.x)),
                     static_cast<float>(a * static_cast<double>(y.y) - b * static_cast<double>(x.y)),
                     static_cast<float>(a * static_cast<double>(y.z) - b * static_cast<double>(x.z)),
                     static_cast<float>(a * static_cast<double>(y.w) - b * static_cast<double>(x.w)));
}

// rowVals [totalRows] = w_s * cos of every row; grad rows written.
// Two blocks per SM (<= 128 registers): 16 warps with 8 KiB of loads each in flight.
__global__ void __launch_bounds__(kThreads, 2) repaRowsKernel(const __grid_constant__ RepaParams prm,
                                                              double* __restrict__ rowVals) {
  const int lane = threadIdx.x & 31;
  const int64_t firstWarp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t warpStride = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (int64_t row = firstWarp; row < prm.totalRows; row += warpStride) {
    int m = 0;
    while (m + 1 < prm.M && row >= prm.t[m + 1].rowStart) ++m;  // warp-uniform, M <= 16
    const TeacherDesc& td = prm.t[m];
    const int64_t local = row - td.rowStart;
    const int64_t D = td.D;
    const int64_t nq = (D + 3) / 4;
    const bool vec = td.vec != 0;
    const double w = prm.weights ? static_cast<double>(prm.weights[local / td.P]) : 1.0;
    const float* x = td.pred + local * D;
    const float* y = td.target + local * D;
    float* g = td.grad + local * D;

    if (w == 0.0) {  // masked sample: no reads, +0 gradient
      for (int64_t q = lane; q < nq; q += 32) storeQuad(g, q, D, vec, make_float4(0.f, 0.f, 0.f, 0.f));
      if (lane == 0) rowVals[row] = 0.0;
      continue;
    }

    // Both paths give each lane quads lane, lane+32, ... in that order: same bits.
    const bool cached = nq <= 32 * kCacheQuads;
    float4 xc[kCacheQuads], yc[kCacheQuads];
    Sums sums{0.0, 0.0, 0.0};
    if (cached) {
#pragma unroll
      for (int k = 0; k < kCacheQuads; ++k) {
        const int64_t q = lane + 32 * k;
        xc[k] = q < nq ? loadQuad(x, q, D, vec, true) : make_float4(0.f, 0.f, 0.f, 0.f);
        yc[k] = q < nq ? loadQuad(y, q, D, vec, true) : make_float4(0.f, 0.f, 0.f, 0.f);
      }
#pragma unroll
      for (int k = 0; k < kCacheQuads; ++k)
        if (lane + 32 * k < nq) accumulate(sums, xc[k], yc[k]);
    } else {
#pragma unroll 4
      for (int64_t q = lane; q < nq; q += 32)
        accumulate(sums, loadQuad(x, q, D, vec, false), loadQuad(y, q, D, vec, false));  // kept in L2 for the re-read
    }
    warpAllReduce(sums);

    // F.cosine_similarity(eps = 1e-8): the norms are clamped separately.
    const double n1 = sqrt(sums.xx), n2 = sqrt(sums.yy);
    const double c1 = n1 < kCosineEps ? kCosineEps : n1;
    const double c2 = n2 < kCosineEps ? kCosineEps : n2;
    const double cosv = sums.dot / (c1 * c2);
    if (lane == 0) rowVals[row] = w * cosv;

    // d cos/dx = y/(c1 c2) - cos x/(n1 c1); the x term vanishes with n1 = 0.
    const double coef = prm.scale * (-(w / td.WP));
    const double a = coef / (c1 * c2);
    const double b = n1 > 0.0 ? coef * cosv / (n1 * c1) : 0.0;
    if (cached) {
#pragma unroll
      for (int k = 0; k < kCacheQuads; ++k) {
        const int64_t q = lane + 32 * k;
        if (q < nq) storeQuad(g, q, D, vec, gradQuad(a, b, xc[k], yc[k]));
      }
    } else {
#pragma unroll 4
      for (int64_t q = lane; q < nq; q += 32)
        storeQuad(g, q, D, vec, gradQuad(a, b, loadQuad(x, q, D, vec, true), loadQuad(y, q, D, vec, true)));
    }
  }
}

// sums [M]: one block per teacher; each thread walks a fixed stride of rows, then
// a fixed shared-memory tree, so the order never depends on scheduling.
__global__ void __launch_bounds__(kReduceThreads) repaReduceKernel(const double* __restrict__ rowVals,
                                                                   const ReduceParams prm, double* __restrict__ sums) {
  __shared__ double part[kReduceThreads];
  const int m = blockIdx.x;
  const double* v = rowVals + prm.rowStart[m];
  const int64_t n = prm.rows[m];
  double acc = 0.0;
  for (int64_t r = threadIdx.x; r < n; r += kReduceThreads) acc += v[r];
  part[threadIdx.x] = acc;
  __syncthreads();
#pragma unroll
  for (int half = kReduceThreads / 2; half > 0; half >>= 1) {
    if (static_cast<int>(threadIdx.x) < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) sums[m] = part[0];
}

}  // namespace

RepaResult repaCosineLoss(const std::vector<RepaTeacher>& teachers, int64_t S, const float* weights,
                          double gradScale) {
  const int M = static_cast<int>(teachers.size());
  VALR_CHECK(teachers.size() <= static_cast<size_t>(kMaxTeachers), Argument,
             "repaCosineLoss: " << teachers.size() << " teachers, at most " << kMaxTeachers);
  RepaResult res;
  res.perTeacher.assign(static_cast<size_t>(M), 0.0);
  if (M == 0 || S <= 0) return res;  // no rows: nothing to write

  int dev;
  VALR_CUDA_CHECK(cudaGetDevice(&dev));
  cudaStream_t s = useDevice(dev);

  double W = 0.0;
  for (int64_t i = 0; i < S; ++i) W += weights ? static_cast<double>(weights[i]) : 1.0;
  if (W == 0.0) {  // every loss and every gradient is 0
    for (const RepaTeacher& t : teachers) {
      const size_t n = static_cast<size_t>(S * t.P * t.D);
      if (n) VALR_CUDA_CHECK(cudaMemsetAsync(t.gradPred, 0, n * sizeof(float), s));
    }
    return res;
  }

  RepaParams prm{};
  ReduceParams red{};
  int64_t totalRows = 0;
  for (int m = 0; m < M; ++m) {
    const RepaTeacher& t = teachers[m];
    TeacherDesc& d = prm.t[m];
    d.pred = t.pred;
    d.target = t.target;
    d.grad = t.gradPred;
    d.P = t.P;
    d.D = t.D;
    d.rowStart = totalRows;
    d.WP = W * static_cast<double>(t.P);
    d.vec = t.D % 4 == 0 && aligned16(t.pred) && aligned16(t.target) && aligned16(t.gradPred);
    red.rowStart[m] = totalRows;
    red.rows[m] = S * t.P;
    totalRows += S * t.P;
  }
  // Rows past the last teacher never match a later rowStart.
  for (int m = M; m < kMaxTeachers; ++m) prm.t[m].rowStart = totalRows;
  prm.M = M;
  prm.totalRows = totalRows;
  prm.scale = gradScale * (1.0 / M);
  if (totalRows == 0) return res;

  Scratch dWeights(dev, weights ? static_cast<size_t>(S) * sizeof(float) : 0);
  if (weights) {
    VALR_CUDA_CHECK(cudaMemcpyAsync(dWeights.as<float>(), weights, static_cast<size_t>(S) * sizeof(float),
                                    cudaMemcpyHostToDevice, s));
    prm.weights = dWeights.as<float>();
  }
  Scratch rowVals(dev, static_cast<size_t>(totalRows) * sizeof(double));  // [totalRows]
  Scratch sums(dev, static_cast<size_t>(M) * sizeof(double));             // [M]

  int64_t blocks = (totalRows + kWarpsPerBlock - 1) / kWarpsPerBlock;
  if (blocks > kMaxBlocks) blocks = kMaxBlocks;
  repaRowsKernel<<<static_cast<unsigned>(blocks), kThreads, 0, s>>>(prm, rowVals.as<double>());
  VALR_CUDA_CHECK_LAUNCH();
  repaReduceKernel<<<M, kReduceThreads, 0, s>>>(rowVals.as<double>(), red, sums.as<double>());
  VALR_CUDA_CHECK_LAUNCH();

  std::vector<double> host(static_cast<size_t>(M));
  VALR_CUDA_CHECK(cudaMemcpyAsync(host.data(), sums.as<double>(), host.size() * sizeof(double),
                                  cudaMemcpyDeviceToHost, s));
  VALR_CUDA_CHECK(cudaStreamSynchronize(s));

  double total = 0.0;
  for (int m = 0; m < M; ++m) {
    const int64_t P = teachers[m].P;
    res.perTeacher[m] = P > 0 ? -(1.0 / (W * static_cast<double>(P))) * host[m] : 0.0;
    total += res.perTeacher[m];
  }
  res.total = total / M;
  return res;
}

}  // namespace cuda
}  // namespace valr
