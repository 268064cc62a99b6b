// Tap gather/scatter between decoder hidden states and the latent-slot rows.
// Scatter is a CSR gather (one thread per output element), so every sum has a
// fixed order and no float atomics are needed.
#include <cstdint>
#include "../core/alignment_kernels.h"
#include "check.cuh"
#include "device_helpers.cuh"
#include "row_launch.cuh"
#include "scratch.cuh"
#include "cuda_api.h"

namespace valr {
namespace cuda {

namespace {

using namespace rows;


// out [count, cols] = hidden [numRows, cols] rows picked by `rows` [count]
template <typename T, typename Idx>
__global__ void __launch_bounds__(kThreads)
    gatherKernel(const T* __restrict__ hidden, const int32_t* __restrict__ rows, Idx count, int64_t cols,
                 int shift, int64_t chunkCols, int64_t numChunks, T* __restrict__ out) {
  const unsigned lanes = 1u << shift;
  const unsigned lane = threadIdx.x & (lanes - 1);
  const Idx first = (static_cast<Idx>(blockIdx.x) * blockDim.x + threadIdx.x) >> shift;
  const Idx stride = (static_cast<Idx>(gridDim.x) * blockDim.x) >> shift;
  for (int64_t chunk = blockIdx.y; chunk < numChunks; chunk += gridDim.y) {
    const int64_t c0 = chunk * chunkCols + lane;
    for (Idx i = first; i < count; i += stride) {
      const T* src = hidden + static_cast<int64_t>(rows[i]) * cols;
      T* dst = out + static_cast<int64_t>(i) * cols;
#pragma unroll
      for (int k = 0; k < kIters; ++k) {
        const int64_t c = c0 + static_cast<int64_t>(k) * lanes;
        if (c < cols) dst[c] = __ldg(src + c);
      }
    }
  }
}

// out [numRows, cols] (=|+=) CSR sums of grad [count, cols] rows, in source order.
template <typename T, typename Idx>
__global__ void __launch_bounds__(kThreads)
    scatterKernel(const T* __restrict__ grad, const int32_t* __restrict__ offsets,
                  const int32_t* __restrict__ sources, Idx numRows, int64_t cols, int shift, int64_t chunkCols,
                  int64_t numChunks, T* __restrict__ out, bool accumulate) {
  const unsigned lanes = 1u << shift;
  const unsigned lane = threadIdx.x & (lanes - 1);
  const Idx first = (static_cast<Idx>(blockIdx.x) * blockDim.x + threadIdx.x) >> shift;
  const Idx stride = (static_cast<Idx>(gridDim.x) * blockDim.x) >> shift;
  for (int64_t chunk = blockIdx.y; chunk < numChunks; chunk += gridDim.y) {
    const int64_t c0 = chunk * chunkCols + lane;
    for (Idx r = first; r < numRows; r += stride) {
      T* dst = out + static_cast<int64_t>(r) * cols;
      T acc[kIters];
#pragma unroll
      for (int k = 0; k < kIters; ++k) {
        const int64_t c = c0 + static_cast<int64_t>(k) * lanes;
        acc[k] = accumulate && c < cols ? dst[c] : zerov<T>();
      }
      const int32_t end = offsets[r + 1];
      // Source loop outside, columns inside: kIters independent loads in flight.
      for (int32_t j = offsets[r]; j < end; ++j) {
        const T* src = grad + static_cast<int64_t>(sources[j]) * cols;
#pragma unroll
        for (int k = 0; k < kIters; ++k) {
          const int64_t c = c0 + static_cast<int64_t>(k) * lanes;
          if (c < cols) acc[k] = addv(acc[k], __ldg(src + c));
        }
      }
#pragma unroll
      for (int k = 0; k < kIters; ++k) {
        const int64_t c = c0 + static_cast<int64_t>(k) * lanes;
        if (c < cols) dst[c] = acc[k];
      }
    }
  }
}

template <typename T>
void launchGather(const RowLaunch& l, cudaStream_t s, const float* hidden, const int32_t* rows, int64_t count,
                  int64_t cols, float* out) {
  const T* h = reinterpret_cast<const T*>(hidden);
  T* o = reinterpret_cast<T*>(out);
  if (l.wide)
    gatherKernel<T, uint64_t><<<l.grid, kThreads, 0, s>>>(h, rows, static_cast<uint64_t>(count), cols, l.shift,
                                                          l.chunkCols, l.numChunks, o);
  else
    gatherKernel<T, uint32_t><<<l.grid, kThreads, 0, s>>>(h, rows, static_cast<uint32_t>(count), cols, l.shift,
                                                          l.chunkCols, l.numChunks, o);
  VALR_CUDA_CHECK_LAUNCH();
}

template <typename T>
void launchScatter(const RowLaunch& l, cudaStream_t s, const float* grad, const int32_t* offsets,
                   const int32_t* sources, int64_t numRows, int64_t cols, float* out, bool accumulate) {
  const T* g = reinterpret_cast<const T*>(grad);
  T* o = reinterpret_cast<T*>(out);
  if (l.wide)
    scatterKernel<T, uint64_t><<<l.grid, kThreads, 0, s>>>(g, offsets, sources, static_cast<uint64_t>(numRows), cols,
                                                           l.shift, l.chunkCols, l.numChunks, o, accumulate);
  else
    scatterKernel<T, uint32_t><<<l.grid, kThreads, 0, s>>>(g, offsets, sources, static_cast<uint32_t>(numRows), cols,
                                                           l.shift, l.chunkCols, l.numChunks, o, accumulate);
  VALR_CUDA_CHECK_LAUNCH();
}

}  // namespace

void tapGather(const float* hidden, int64_t numRows, int64_t D, const int32_t* rows, int64_t count, float* out) {
  (void)numRows;  // indices were validated by the caller
  if (count <= 0 || D <= 0) return;
  int dev;
  VALR_CUDA_CHECK(cudaGetDevice(&dev));
  cudaStream_t s = useDevice(dev);

  Scratch dRows(dev, static_cast<size_t>(count) * sizeof(int32_t));
  VALR_CUDA_CHECK(cudaMemcpyAsync(dRows.as<int32_t>(), rows, static_cast<size_t>(count) * sizeof(int32_t),
                                  cudaMemcpyHostToDevice, s));
  if (D % 4 == 0 && aligned16(hidden) && aligned16(out)) {
    RowLaunch l = rowLaunch(count, D / 4);
    launchGather<float4>(l, s, hidden, dRows.as<int32_t>(), count, D / 4, out);
  } else {
    RowLaunch l = rowLaunch(count, D);
    launchGather<float>(l, s, hidden, dRows.as<int32_t>(), count, D, out);
  }
}

void tapScatter(const float* grad, int64_t count, int64_t D, const ScatterPlan& plan, int64_t numRows, float* out,
                bool accumulate) {
  if (numRows <= 0 || D <= 0) return;
  VALR_CHECK(static_cast<int64_t>(plan.offsets.size()) == numRows + 1 &&
                 static_cast<int64_t>(plan.sources.size()) == count,
             Internal, "tapScatter: plan does not match " << numRows << " rows and " << count << " sources");
  if (count <= 0 && accumulate) return;
  int dev;
  VALR_CUDA_CHECK(cudaGetDevice(&dev));
  cudaStream_t s = useDevice(dev);
  if (count <= 0) {
    VALR_CUDA_CHECK(cudaMemsetAsync(out, 0, static_cast<size_t>(numRows) * static_cast<size_t>(D) * sizeof(float), s));
    return;
  }

  // One upload: offsets [numRows + 1] then sources [count].
  const size_t offBytes = plan.offsets.size() * sizeof(int32_t);
  const size_t srcBytes = plan.sources.size() * sizeof(int32_t);
  Scratch dPlan(dev, offBytes + srcBytes);
  int32_t* dOffsets = dPlan.as<int32_t>();
  int32_t* dSources = dOffsets + plan.offsets.size();
  VALR_CUDA_CHECK(cudaMemcpyAsync(dOffsets, plan.offsets.data(), offBytes, cudaMemcpyHostToDevice, s));
  VALR_CUDA_CHECK(cudaMemcpyAsync(dSources, plan.sources.data(), srcBytes, cudaMemcpyHostToDevice, s));

  if (D % 4 == 0 && aligned16(grad) && aligned16(out)) {
    RowLaunch l = rowLaunch(numRows, D / 4);
    launchScatter<float4>(l, s, grad, dOffsets, dSources, numRows, D / 4, out, accumulate);
  } else {
    RowLaunch l = rowLaunch(numRows, D);
    launchScatter<float>(l, s, grad, dOffsets, dSources, numRows, D, out, accumulate);
  }
}

}  // namespace cuda
}  // namespace valr
