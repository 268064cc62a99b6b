// AdamW as torch.optim.AdamW (decoupled weight decay), and the sum of squares used
// for global-norm gradient clipping.
#include <algorithm>
#include <cmath>
#include <vector>
#include "../core/model_kernels.h"
#include "../core/thread_pool.h"

namespace valr {
namespace cpu {

namespace {
constexpr int64_t kChunk = 1 << 14;
}

void adamw(float* param, const float* grad, float* m, float* v, int64_t n, float lr, float beta1, float beta2,
           float eps, float weightDecay, int64_t step) {
  const double bias1 = 1.0 - std::pow(double(beta1), double(step));
  const double bias2 = 1.0 - std::pow(double(beta2), double(step));
  const float stepSize = float(double(lr) / bias1);
  const float bias2Sqrt = float(std::sqrt(bias2));
  const float decay = 1.f - lr * weightDecay;
  parallelFor(n, kChunk, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float g = grad[i];
      param[i] *= decay;
      m[i] = beta1 * m[i] + (1.f - beta1) * g;
      v[i] = beta2 * v[i] + (1.f - beta2) * g * g;
      param[i] -= stepSize * m[i] / (std::sqrt(v[i]) / bias2Sqrt + eps);
    }
  });
}

// Fixed chunks summed in order: the same bits for any thread count.
double sumSquares(const float* x, int64_t n) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
  parallelFor(chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      double s = 0;
      for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) s += double(x[i]) * x[i];
      partial[size_t(c)] = s;
    }
  });
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

}  // namespace cpu
}  // namespace valr
