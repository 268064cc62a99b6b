// Moving blocks of rows along the sequence dim (KV-cache concatenation and slicing)
// and overwriting rows at given indices (splicing image features into a sequence).
#include <cstring>
#include "../core/model_kernels.h"
#include "../core/thread_pool.h"

namespace valr {
namespace cpu {

void copyBlock(const float* src, int64_t srcT, int64_t srcOffset, float* dst, int64_t dstT, int64_t dstOffset,
               int64_t B, int64_t T, int64_t row, bool accumulate) {
  parallelFor(B * T, std::max<int64_t>(1, 16384 / std::max<int64_t>(row, 1)), [&](int64_t b, int64_t e) {
    for (int64_t bt = b; bt < e; ++bt) {
      const int64_t bi = bt / T, t = bt % T;
      const float* s = src + (bi * srcT + srcOffset + t) * row;
      float* d = dst + (bi * dstT + dstOffset + t) * row;
      if (accumulate)
        for (int64_t k = 0; k < row; ++k) d[k] += s[k];
      else
        std::memcpy(d, s, size_t(row) * sizeof(float));
    }
  });
}

void scatterRows(const float* src, const int32_t* rows, int64_t count, int64_t D, float* dst) {
  parallelFor(count, std::max<int64_t>(1, 16384 / std::max<int64_t>(D, 1)), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) std::memcpy(dst + int64_t(rows[i]) * D, src + i * D, size_t(D) * sizeof(float));
  });
}

}  // namespace cpu
}  // namespace valr
