// Cross-entropy of softmax(logits [N, V]) with its gradient, one block per row.
// Pass 1 keeps a running (max, sum of exp) per thread, the sum in double, then a fixed
// butterfly + in-order merge of the 8 warps; pass 2 (only with dlogits) writes
// gradScale / divisor * (softmax - onehot). Row losses go to a buffer that one block sums
// in a fixed order. exp is computed by expAccurate (--use_fast_math maps expf to the
// coarse __expf). Rows whose target is ignoreIndex (or outside [0, V)) are not read.
#include <cmath>
#include <cstdint>
#include <vector>
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
constexpr int64_t kMaxBlocks = int64_t{1} << 20;
constexpr int kReduceThreads = 1024;




// Running softmax statistics: m = max seen, s = sum of exp(v - m).
struct Stats {
  float m;
  double s;
};

__device__ __forceinline__ void push(Stats& a, float v) {
  if (v > a.m) {
    a.s = a.s * static_cast<double>(expAccurate(a.m - v)) + 1.0;  // m = -inf at first: 0 * 0 + 1
    a.m = v;
  } else if (v != -INFINITY) {  // exp(-inf) = 0; also keeps -inf - -inf out
    a.s += static_cast<double>(expAccurate(v - a.m));
  }
}

// Commutative (the same bits either way round), so a butterfly leaves every lane equal.
__device__ __forceinline__ Stats merge(Stats a, Stats b) {
  const float m = fmaxf(a.m, b.m);
  if (m == -INFINITY) return Stats{m, 0.0};
  const double sa = a.s == 0.0 ? 0.0 : a.s * exp(static_cast<double>(a.m) - static_cast<double>(m));
  const double sb = b.s == 0.0 ? 0.0 : b.s * exp(static_cast<double>(b.m) - static_cast<double>(m));
  return Stats{m, sa + sb};
}

// Elements 4q..4q+3 of a row (past V: -inf, which push ignores).
__device__ __forceinline__ float4 loadQuad(const float* row, int64_t q, int64_t V, bool vec) {
  if (vec) return __ldg(reinterpret_cast<const float4*>(row) + q);
  const int64_t e = 4 * q;
  float4 v = make_float4(-INFINITY, -INFINITY, -INFINITY, -INFINITY);
  if (e < V) v.x = __ldg(row + e);
  if (e + 1 < V) v.y = __ldg(row + e + 1);
  if (e + 2 < V) v.z = __ldg(row + e + 2);
  if (e + 3 < V) v.w = __ldg(row + e + 3);
  return v;
}

// rowLoss [N] (0 for skipped rows); dlogits [N, V] or nullptr.
__global__ void __launch_bounds__(kThreads) crossEntropyKernel(const float* __restrict__ logits,
                                                               const int32_t* __restrict__ targets, int64_t N,
                                                               int64_t V, int32_t ignoreIndex, float coef,
                                                               float* __restrict__ dlogits,
                                                               double* __restrict__ rowLoss, bool vec) {
  __shared__ Stats warpStats[kWarps];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t nq = (V + 3) / 4;
  for (int64_t row = blockIdx.x; row < N; row += gridDim.x) {
    const int32_t t = targets[row];
    float* drow = dlogits ? dlogits + row * V : nullptr;
    if (t == ignoreIndex || t < 0 || t >= V) {  // block-uniform
      if (drow)
        for (int64_t i = threadIdx.x; i < V; i += kThreads) drow[i] = 0.f;
      if (threadIdx.x == 0) rowLoss[row] = 0.0;
      continue;
    }
    const float* lrow = logits + row * V;
    Stats st{-INFINITY, 0.0};
    for (int64_t q = threadIdx.x; q < nq; q += kThreads) {
      const float4 v = loadQuad(lrow, q, V, vec);
      push(st, v.x);
      push(st, v.y);
      push(st, v.z);
      push(st, v.w);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      Stats other;
      other.m = __shfl_xor_sync(0xffffffffu, st.m, o);
      other.s = __shfl_xor_sync(0xffffffffu, st.s, o);
      st = merge(st, other);
    }
    if (lane == 0) warpStats[warp] = st;
    __syncthreads();
    Stats tot = warpStats[0];
#pragma unroll
    for (int w = 1; w < kWarps; ++w) tot = merge(tot, warpStats[w]);
    __syncthreads();  // warpStats is rewritten by the next row
    const double lse = static_cast<double>(tot.m) + log(tot.s);
    if (threadIdx.x == 0) rowLoss[row] = lse - static_cast<double>(__ldg(lrow + t));
    if (drow) {
      const float inv = static_cast<float>(1.0 / tot.s);
      for (int64_t q = threadIdx.x; q < nq; q += kThreads) {
        const float4 v = loadQuad(lrow, q, V, vec);
        const int64_t e = 4 * q;
        float g[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          const float p = expAccurate(g[k] - tot.m) * inv;
          g[k] = p * coef;
          if (e + k == t) g[k] -= coef;
        }
        if (vec) {
          reinterpret_cast<float4*>(drow)[q] = make_float4(g[0], g[1], g[2], g[3]);
        } else {
#pragma unroll
          for (int k = 0; k < 4; ++k)
            if (e + k < V) drow[e + k] = g[k];
        }
      }
    }
  }
}

// out[0] = sum of v [n]: thread-strided partial sums, then a fixed tree.
__global__ void __launch_bounds__(kReduceThreads) sumKernel(const double* __restrict__ v, int64_t n,
                                                            double* __restrict__ out) {
  __shared__ double part[kReduceThreads];
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += kReduceThreads) acc += v[i];
  part[threadIdx.x] = acc;
  __syncthreads();
#pragma unroll
  for (int half = kReduceThreads / 2; half > 0; half >>= 1) {
    if (static_cast<int>(threadIdx.x) < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = part[0];
}

}  // namespace

double crossEntropy(const float* logits, const int32_t* targets, int64_t N, int64_t V, int32_t ignoreIndex,
                    double divisor, float* dlogits, double gradScale, int64_t* count) {
  int64_t counted = 0;
  for (int64_t i = 0; i < N; ++i)
    if (targets[i] != ignoreIndex && targets[i] >= 0 && targets[i] < V) ++counted;
  if (count) *count = counted;
  if (N <= 0 || V <= 0) return 0.0;
  int dev;
  VALR_CUDA_CHECK(cudaGetDevice(&dev));
  cudaStream_t s = useDevice(dev);

  // One buffer: rowLoss [N] doubles, the total, then targets [N].
  const size_t lossBytes = static_cast<size_t>(N + 1) * sizeof(double);
  Scratch buf(dev, lossBytes + static_cast<size_t>(N) * sizeof(int32_t));
  double* rowLoss = buf.as<double>();
  double* total = rowLoss + N;
  int32_t* dTargets = reinterpret_cast<int32_t*>(buf.as<char>() + lossBytes);
  VALR_CUDA_CHECK(cudaMemcpyAsync(dTargets, targets, static_cast<size_t>(N) * sizeof(int32_t),
                                  cudaMemcpyHostToDevice, s));

  const bool vec = V % 4 == 0 && aligned16(logits) && (dlogits == nullptr || aligned16(dlogits));
  const float coef = static_cast<float>(gradScale / divisor);
  const unsigned blocks = static_cast<unsigned>(N < kMaxBlocks ? N : kMaxBlocks);
  crossEntropyKernel<<<blocks, kThreads, 0, s>>>(logits, dTargets, N, V, ignoreIndex, coef, dlogits, rowLoss, vec);
  VALR_CUDA_CHECK_LAUNCH();
  sumKernel<<<1, kReduceThreads, 0, s>>>(rowLoss, N, total);
  VALR_CUDA_CHECK_LAUNCH();

  double host = 0.0;
  VALR_CUDA_CHECK(cudaMemcpyAsync(&host, total, sizeof(double), cudaMemcpyDeviceToHost, s));
  VALR_CUDA_CHECK(cudaStreamSynchronize(s));
  return host;
}

}  // namespace cuda
}  // namespace valr
