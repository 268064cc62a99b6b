// Mid-layer feature tap: gather the hidden rows of the latent slots into a
// contiguous block, and its backward, a scatter-add in a fixed order.
#include <cstring>
#include "../core/alignment_kernels.h"
#include "../core/thread_pool.h"

namespace valr {

ScatterPlan buildScatterPlan(const int32_t* rows, int64_t count, int64_t numRows) {
  ScatterPlan plan;
  plan.offsets.assign(size_t(numRows) + 1, 0);
  plan.sources.resize(size_t(count));
  for (int64_t i = 0; i < count; ++i) plan.offsets[size_t(rows[i]) + 1]++;
  for (int64_t r = 0; r < numRows; ++r) plan.offsets[size_t(r) + 1] += plan.offsets[size_t(r)];
  std::vector<int32_t> cursor(plan.offsets.begin(), plan.offsets.end() - 1);
  for (int64_t i = 0; i < count; ++i) plan.sources[size_t(cursor[size_t(rows[i])]++)] = int32_t(i);  // stable: i ascending
  return plan;
}

namespace cpu {

namespace {
int64_t rowGrain(int64_t D) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(D, 1)); }
}  // namespace

// hidden [numRows, D], rows [count] -> out [count, D]
void tapGather(const float* hidden, int64_t numRows, int64_t D, const int32_t* rows, int64_t count, float* out) {
  (void)numRows;
  parallelFor(count, rowGrain(D), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) std::memcpy(out + i * D, hidden + int64_t(rows[i]) * D, size_t(D) * sizeof(float));
  });
}

// grad [count, D] -> out [numRows, D]
void tapScatter(const float* grad, int64_t count, int64_t D, const ScatterPlan& plan, int64_t numRows, float* out,
                bool accumulate) {
  (void)count;
  parallelFor(numRows, rowGrain(D), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      float* dst = out + r * D;
      if (!accumulate) std::memset(dst, 0, size_t(D) * sizeof(float));
      for (int32_t k = plan.offsets[size_t(r)]; k < plan.offsets[size_t(r) + 1]; ++k) {
        const float* src = grad + int64_t(plan.sources[size_t(k)]) * D;
        for (int64_t d = 0; d < D; ++d) dst[d] += src[d];
      }
    }
  });
}

}  // namespace cpu
}  // namespace valr
