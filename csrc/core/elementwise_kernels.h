// Small elementwise ops the autograd needs (gradient accumulation, zeroing, scaling),
// implemented for both backends like alignment_kernels.h.
#pragma once
#include <cstdint>

namespace valr {

#define VALR_ELEMENTWISE_KERNELS                                          \
  void fill(float* x, int64_t n, float value);                           \
  /* y = alpha * y */                                                     \
  void scale(float* y, int64_t n, float alpha);                          \
  /* y += alpha * x */                                                    \
  void addScaled(float* y, const float* x, int64_t n, float alpha);

namespace cpu {
VALR_ELEMENTWISE_KERNELS
}
namespace cuda {
VALR_ELEMENTWISE_KERNELS
}

}  // namespace valr
