#include <algorithm>
#include "../core/elementwise_kernels.h"
#include "../core/thread_pool.h"

namespace valr {
namespace cpu {

namespace {
constexpr int64_t kGrain = 1 << 15;
}

void fill(float* x, int64_t n, float value) {
  parallelFor(n, kGrain, [&](int64_t b, int64_t e) { std::fill(x + b, x + e, value); });
}

void scale(float* y, int64_t n, float alpha) {
  parallelFor(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] *= alpha;
  });
}

void addScaled(float* y, const float* x, int64_t n, float alpha) {
  parallelFor(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] += alpha * x[i];
  });
}

}  // namespace cpu
}  // namespace valr
