// Bilinear upsampling (PyTorch align_corners=False) on channels-last grids and its
// deterministic backward. The per-axis coefficients are computed on the host with
// bilinearAxisCoeff and uploaded: in device code --use_fast_math turns its float
// division into an approximate one and nvcc contracts its mul+add into an FMA, so
// only the host copy gives the CPU kernel's bits.
#include <cstdint>
#include <cstring>
#include <vector>
#include "../core/alignment_kernels.h"
#include "../core/bilinear_coeffs.h"
#include "check.cuh"
#include "device_helpers.cuh"
#include "row_launch.cuh"
#include "scratch.cuh"
#include "cuda_api.h"

namespace valr {
namespace cuda {

namespace {

using namespace rows;

// One (output index, weight) pair of the backward's per-axis CSR lists.
struct Tap {
  int32_t out;
  float w;
};

// Round-to-nearest intrinsics are never contracted into FMAs: the same bits as the
// CPU's l0h*(l0w*a + l1w*b) + l1h*(l0w*c + l1w*d).
__device__ __forceinline__ float blend(const AxisCoeff& h, const AxisCoeff& w, float a, float b, float c, float d) {
  const float top = __fadd_rn(__fmul_rn(w.l0, a), __fmul_rn(w.l1, b));
  const float bot = __fadd_rn(__fmul_rn(w.l0, c), __fmul_rn(w.l1, d));
  return __fadd_rn(__fmul_rn(h.l0, top), __fmul_rn(h.l1, bot));
}
__device__ __forceinline__ float4 blend(const AxisCoeff& h, const AxisCoeff& w, float4 a, float4 b, float4 c,
                                        float4 d) {
  return make_float4(blend(h, w, a.x, b.x, c.x, d.x), blend(h, w, a.y, b.y, c.y, d.y),
                     blend(h, w, a.z, b.z, c.z, d.z), blend(h, w, a.w, b.w, c.w, d.w));
}

__device__ __forceinline__ float fmav(float w, float x, float acc) { return fmaf(w, x, acc); }
__device__ __forceinline__ float4 fmav(float w, float4 x, float4 acc) {
  return make_float4(fmaf(w, x.x, acc.x), fmaf(w, x.y, acc.y), fmaf(w, x.z, acc.z), fmaf(w, x.w, acc.w));
}

// y [S, Gh, Gw, cols] from x [S, gh, gw, cols]; ch [Gh], cw [Gw]
template <typename T, typename Idx>
__global__ void __launch_bounds__(kThreads)
    upsampleKernel(const T* __restrict__ x, T* __restrict__ y, const AxisCoeff* __restrict__ ch,
                   const AxisCoeff* __restrict__ cw, Idx pixels, Idx Gh, Idx Gw, int64_t gh, int64_t gw,
                   int64_t cols, int shift, int64_t chunkCols, int64_t numChunks) {
  const unsigned lanes = 1u << shift;
  const unsigned lane = threadIdx.x & (lanes - 1);
  const Idx first = (static_cast<Idx>(blockIdx.x) * blockDim.x + threadIdx.x) >> shift;
  const Idx stride = (static_cast<Idx>(gridDim.x) * blockDim.x) >> shift;
  for (int64_t chunk = blockIdx.y; chunk < numChunks; chunk += gridDim.y) {
    const int64_t c0 = chunk * chunkCols + lane;
    for (Idx pix = first; pix < pixels; pix += stride) {
      const Idx q = pix % Gw;
      const Idx sp = pix / Gw;
      const Idx p = sp % Gh;
      const Idx s = sp / Gh;
      const AxisCoeff h = ch[p], w = cw[q];
      const T* xs = x + static_cast<int64_t>(s) * gh * gw * cols;
      const T* r00 = xs + (h.i0 * gw + w.i0) * cols;
      const T* r01 = xs + (h.i0 * gw + w.i1) * cols;
      const T* r10 = xs + (h.i1 * gw + w.i0) * cols;
      const T* r11 = xs + (h.i1 * gw + w.i1) * cols;
      T* dst = y + static_cast<int64_t>(pix) * cols;
#pragma unroll
      for (int k = 0; k < kIters; ++k) {
        const int64_t c = c0 + static_cast<int64_t>(k) * lanes;
        if (c < cols) dst[c] = blend(h, w, __ldg(r00 + c), __ldg(r01 + c), __ldg(r10 + c), __ldg(r11 + c));
      }
    }
  }
}

// Backward pass 1, reduce along columns: tmp [S, Gh, gw, cols] from dy [S, Gh, Gw, cols].
// tmp[s,p,j] = sum over colTaps of input column j, in increasing output column q.
template <typename T, typename Idx>
__global__ void __launch_bounds__(kThreads)
    reduceColsKernel(const T* __restrict__ dy, T* __restrict__ tmp, const int32_t* __restrict__ colOff,
                     const Tap* __restrict__ colTaps, Idx pixels, Idx gw, int64_t Gw, int64_t cols, int shift,
                     int64_t chunkCols, int64_t numChunks) {
  const unsigned lanes = 1u << shift;
  const unsigned lane = threadIdx.x & (lanes - 1);
  const Idx first = (static_cast<Idx>(blockIdx.x) * blockDim.x + threadIdx.x) >> shift;
  const Idx stride = (static_cast<Idx>(gridDim.x) * blockDim.x) >> shift;
  for (int64_t chunk = blockIdx.y; chunk < numChunks; chunk += gridDim.y) {
    const int64_t c0 = chunk * chunkCols + lane;
    for (Idx pix = first; pix < pixels; pix += stride) {
      const Idx j = pix % gw;
      const Idx sp = pix / gw;  // s * Gh + p
      const T* src = dy + static_cast<int64_t>(sp) * Gw * cols;
      T acc[kIters];
#pragma unroll
      for (int k = 0; k < kIters; ++k) acc[k] = zerov<T>();
      const int32_t end = colOff[j + 1];
      for (int32_t t = colOff[j]; t < end; ++t) {
        const Tap tap = colTaps[t];
        const T* r = src + static_cast<int64_t>(tap.out) * cols;
#pragma unroll
        for (int k = 0; k < kIters; ++k) {
          const int64_t c = c0 + static_cast<int64_t>(k) * lanes;
          if (c < cols) acc[k] = fmav(tap.w, __ldg(r + c), acc[k]);
        }
      }
      T* dst = tmp + static_cast<int64_t>(pix) * cols;
#pragma unroll
      for (int k = 0; k < kIters; ++k) {
        const int64_t c = c0 + static_cast<int64_t>(k) * lanes;
        if (c < cols) dst[c] = acc[k];
      }
    }
  }
}

// Backward pass 2, reduce along rows: dx [S, gh, gw, cols] (=|+=) from tmp [S, Gh, gw, cols].
template <typename T, typename Idx>
__global__ void __launch_bounds__(kThreads)
    reduceRowsKernel(const T* __restrict__ tmp, T* __restrict__ dx, const int32_t* __restrict__ rowOff,
                     const Tap* __restrict__ rowTaps, Idx pixels, Idx gh, Idx gw, int64_t Gh, int64_t cols,
                     int shift, int64_t chunkCols, int64_t numChunks, bool accumulate) {
  const unsigned lanes = 1u << shift;
  const unsigned lane = threadIdx.x & (lanes - 1);
  const Idx first = (static_cast<Idx>(blockIdx.x) * blockDim.x + threadIdx.x) >> shift;
  const Idx stride = (static_cast<Idx>(gridDim.x) * blockDim.x) >> shift;
  const int64_t rowPitch = static_cast<int64_t>(gw) * cols;  // one p step in tmp
  for (int64_t chunk = blockIdx.y; chunk < numChunks; chunk += gridDim.y) {
    const int64_t c0 = chunk * chunkCols + lane;
    for (Idx pix = first; pix < pixels; pix += stride) {
      const Idx j = pix % gw;
      const Idx si = pix / gw;
      const Idx i = si % gh;
      const Idx s = si / gh;
      const T* src = tmp + (static_cast<int64_t>(s) * Gh * gw + j) * cols;
      T acc[kIters];
#pragma unroll
      for (int k = 0; k < kIters; ++k) acc[k] = zerov<T>();
      const int32_t end = rowOff[i + 1];
      for (int32_t t = rowOff[i]; t < end; ++t) {
        const Tap tap = rowTaps[t];
        const T* r = src + static_cast<int64_t>(tap.out) * rowPitch;
#pragma unroll
        for (int k = 0; k < kIters; ++k) {
          const int64_t c = c0 + static_cast<int64_t>(k) * lanes;
          if (c < cols) acc[k] = fmav(tap.w, __ldg(r + c), acc[k]);
        }
      }
      T* dst = dx + static_cast<int64_t>(pix) * cols;
#pragma unroll
      for (int k = 0; k < kIters; ++k) {
        const int64_t c = c0 + static_cast<int64_t>(k) * lanes;
        if (c < cols) dst[c] = accumulate ? addv(dst[c], acc[k]) : acc[k];
      }
    }
  }
}

template <typename T>
void launchForward(cudaStream_t st, const float* x, float* y, const AxisCoeff* ch, const AxisCoeff* cw,
                   const UpsampleDims& d, int64_t cols) {
  const int64_t pixels = d.S * d.Gh * d.Gw;
  const RowLaunch l = rowLaunch(pixels, cols);
  const T* xv = reinterpret_cast<const T*>(x);
  T* yv = reinterpret_cast<T*>(y);
  if (l.wide)
    upsampleKernel<T, uint64_t><<<l.grid, kThreads, 0, st>>>(xv, yv, ch, cw, static_cast<uint64_t>(pixels),
                                                             static_cast<uint64_t>(d.Gh), static_cast<uint64_t>(d.Gw),
                                                             d.gh, d.gw, cols, l.shift, l.chunkCols, l.numChunks);
  else
    upsampleKernel<T, uint32_t><<<l.grid, kThreads, 0, st>>>(xv, yv, ch, cw, static_cast<uint32_t>(pixels),
                                                             static_cast<uint32_t>(d.Gh), static_cast<uint32_t>(d.Gw),
                                                             d.gh, d.gw, cols, l.shift, l.chunkCols, l.numChunks);
  VALR_CUDA_CHECK_LAUNCH();
}

template <typename T>
void launchBackward(cudaStream_t st, const float* dy, float* tmp, float* dx, const int32_t* rowOff,
                    const Tap* rowTaps, const int32_t* colOff, const Tap* colTaps, const UpsampleDims& d,
                    int64_t cols, bool accumulate) {
  const T* dyv = reinterpret_cast<const T*>(dy);
  T* tv = reinterpret_cast<T*>(tmp);
  T* dxv = reinterpret_cast<T*>(dx);

  const int64_t midPixels = d.S * d.Gh * d.gw;
  const RowLaunch l1 = rowLaunch(midPixels, cols);
  if (l1.wide)
    reduceColsKernel<T, uint64_t><<<l1.grid, kThreads, 0, st>>>(dyv, tv, colOff, colTaps,
                                                                 static_cast<uint64_t>(midPixels),
                                                                 static_cast<uint64_t>(d.gw), d.Gw, cols, l1.shift,
                                                                 l1.chunkCols, l1.numChunks);
  else
    reduceColsKernel<T, uint32_t><<<l1.grid, kThreads, 0, st>>>(dyv, tv, colOff, colTaps,
                                                                 static_cast<uint32_t>(midPixels),
                                                                 static_cast<uint32_t>(d.gw), d.Gw, cols, l1.shift,
                                                                 l1.chunkCols, l1.numChunks);
  VALR_CUDA_CHECK_LAUNCH();

  const int64_t inPixels = d.S * d.gh * d.gw;
  const RowLaunch l2 = rowLaunch(inPixels, cols);
  if (l2.wide)
    reduceRowsKernel<T, uint64_t><<<l2.grid, kThreads, 0, st>>>(
        tv, dxv, rowOff, rowTaps, static_cast<uint64_t>(inPixels), static_cast<uint64_t>(d.gh),
        static_cast<uint64_t>(d.gw), d.Gh, cols, l2.shift, l2.chunkCols, l2.numChunks, accumulate);
  else
    reduceRowsKernel<T, uint32_t><<<l2.grid, kThreads, 0, st>>>(
        tv, dxv, rowOff, rowTaps, static_cast<uint32_t>(inPixels), static_cast<uint32_t>(d.gh),
        static_cast<uint32_t>(d.gw), d.Gh, cols, l2.shift, l2.chunkCols, l2.numChunks, accumulate);
  VALR_CUDA_CHECK_LAUNCH();
}

// For each input index of one axis, the (output index, weight) pairs that read it,
// in increasing output index. A border output with i0 == i1 lists both of its
// weights (l0 then l1), as the forward reads that input twice.
void buildAxisTaps(int64_t in, int64_t out, std::vector<int32_t>& offsets, std::vector<Tap>& taps) {
  std::vector<AxisCoeff> coeff(static_cast<size_t>(out));
  offsets.assign(static_cast<size_t>(in) + 1, 0);
  for (int64_t o = 0; o < out; ++o) {
    coeff[o] = bilinearAxisCoeff(o, in, out);
    offsets[coeff[o].i0 + 1]++;
    offsets[coeff[o].i1 + 1]++;
  }
  for (int64_t i = 0; i < in; ++i) offsets[i + 1] += offsets[i];
  taps.resize(static_cast<size_t>(2 * out));
  std::vector<int32_t> fill(offsets.begin(), offsets.end() - 1);
  for (int64_t o = 0; o < out; ++o) {
    taps[fill[coeff[o].i0]++] = Tap{static_cast<int32_t>(o), coeff[o].l0};
    taps[fill[coeff[o].i1]++] = Tap{static_cast<int32_t>(o), coeff[o].l1};
  }
}

}  // namespace

void upsampleBilinear(const float* x, float* y, const UpsampleDims& d) {
  if (d.S <= 0 || d.Gh <= 0 || d.Gw <= 0 || d.D <= 0) return;
  VALR_CHECK(d.gh > 0 && d.gw > 0, Argument, "upsampleBilinear: empty input grid " << d.gh << "x" << d.gw);
  int dev;
  VALR_CUDA_CHECK(cudaGetDevice(&dev));
  cudaStream_t s = useDevice(dev);

  std::vector<AxisCoeff> coeff(static_cast<size_t>(d.Gh + d.Gw));  // rows [Gh] then columns [Gw]
  for (int64_t p = 0; p < d.Gh; ++p) coeff[p] = bilinearAxisCoeff(p, d.gh, d.Gh);
  for (int64_t q = 0; q < d.Gw; ++q) coeff[d.Gh + q] = bilinearAxisCoeff(q, d.gw, d.Gw);
  const size_t bytes = coeff.size() * sizeof(AxisCoeff);
  Scratch dCoeff(dev, bytes);
  VALR_CUDA_CHECK(cudaMemcpyAsync(dCoeff.as<AxisCoeff>(), coeff.data(), bytes, cudaMemcpyHostToDevice, s));
  const AxisCoeff* ch = dCoeff.as<AxisCoeff>();
  const AxisCoeff* cw = ch + d.Gh;

  if (d.D % 4 == 0 && aligned16(x) && aligned16(y))
    launchForward<float4>(s, x, y, ch, cw, d, d.D / 4);
  else
    launchForward<float>(s, x, y, ch, cw, d, d.D);
}

void upsampleBilinearBackward(const float* dy, float* dx, const UpsampleDims& d, bool accumulate) {
  if (d.S <= 0 || d.gh <= 0 || d.gw <= 0 || d.D <= 0) return;
  int dev;
  VALR_CUDA_CHECK(cudaGetDevice(&dev));
  cudaStream_t s = useDevice(dev);
  if (d.Gh <= 0 || d.Gw <= 0) {  // nothing reads x: its gradient is 0
    if (!accumulate)
      VALR_CUDA_CHECK(cudaMemsetAsync(dx, 0, static_cast<size_t>(d.S * d.gh * d.gw * d.D) * sizeof(float), s));
    return;
  }

  std::vector<int32_t> rowOff, colOff;
  std::vector<Tap> rowTaps, colTaps;
  buildAxisTaps(d.gh, d.Gh, rowOff, rowTaps);
  buildAxisTaps(d.gw, d.Gw, colOff, colTaps);
  // One upload, 4-byte words: rowOff [gh+1], colOff [gw+1], rowTaps [2 Gh], colTaps [2 Gw].
  std::vector<int32_t> blob;
  blob.reserve(rowOff.size() + colOff.size() + 2 * (rowTaps.size() + colTaps.size()));
  blob.insert(blob.end(), rowOff.begin(), rowOff.end());
  blob.insert(blob.end(), colOff.begin(), colOff.end());
  const size_t rowTapAt = blob.size();
  blob.resize(rowTapAt + 2 * rowTaps.size());
  std::memcpy(blob.data() + rowTapAt, rowTaps.data(), rowTaps.size() * sizeof(Tap));
  const size_t colTapAt = blob.size();
  blob.resize(colTapAt + 2 * colTaps.size());
  std::memcpy(blob.data() + colTapAt, colTaps.data(), colTaps.size() * sizeof(Tap));

  const size_t blobBytes = blob.size() * sizeof(int32_t);
  Scratch dBlob(dev, blobBytes);
  VALR_CUDA_CHECK(cudaMemcpyAsync(dBlob.as<int32_t>(), blob.data(), blobBytes, cudaMemcpyHostToDevice, s));
  const int32_t* base = dBlob.as<int32_t>();
  const int32_t* dRowOff = base;
  const int32_t* dColOff = base + rowOff.size();
  const Tap* dRowTaps = reinterpret_cast<const Tap*>(base + rowTapAt);
  const Tap* dColTaps = reinterpret_cast<const Tap*>(base + colTapAt);

  Scratch tmp(dev, static_cast<size_t>(d.S * d.Gh * d.gw * d.D) * sizeof(float));  // [S, Gh, gw, D]
  // tmp comes from the allocator (512-byte aligned), so only dy and dx decide.
  if (d.D % 4 == 0 && aligned16(dy) && aligned16(dx))
    launchBackward<float4>(s, dy, tmp.as<float>(), dx, dRowOff, dRowTaps, dColOff, dColTaps, d, d.D / 4, accumulate);
  else
    launchBackward<float>(s, dy, tmp.as<float>(), dx, dRowOff, dRowTaps, dColOff, dColTaps, d, d.D, accumulate);
}

}  // namespace cuda
}  // namespace valr
