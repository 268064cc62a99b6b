// Source indices and weights of PyTorch's bilinear interpolation with
// align_corners=False along one axis, shared by the CPU and CUDA kernels so both
// compute the same bits. PyTorch (UpSample.h, area_pixel_compute_source_index):
//   scale = in / out;  src = max(scale * (dst + 0.5) - 0.5, 0)
//   i0 = floor(src);   i1 = min(i0 + 1, in - 1);  l1 = src - i0;  l0 = 1 - l1
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define VALR_HOST_DEVICE __host__ __device__
#else
#define VALR_HOST_DEVICE
#endif

namespace valr {

struct AxisCoeff {
  int32_t i0, i1;
  float l0, l1;
};

VALR_HOST_DEVICE inline AxisCoeff bilinearAxisCoeff(int64_t dst, int64_t inSize, int64_t outSize) {
  float scale = static_cast<float>(inSize) / static_cast<float>(outSize);
  float src = scale * (static_cast<float>(dst) + 0.5f) - 0.5f;
  if (src < 0.f) src = 0.f;
  int32_t i0 = static_cast<int32_t>(src);  // src >= 0, so truncation is floor
  if (i0 > inSize - 1) i0 = static_cast<int32_t>(inSize - 1);
  int32_t i1 = i0 + 1 < inSize ? i0 + 1 : i0;
  float l1 = src - static_cast<float>(i0);
  if (l1 > 1.f) l1 = 1.f;
  return AxisCoeff{i0, i1, 1.f - l1, l1};
}

}  // namespace valr
