// Softmax cross-entropy with ignored targets, loss and gradient in one pass per row.
#include <algorithm>
#include <cmath>
#include <vector>
#include "../core/model_kernels.h"
#include "../core/thread_pool.h"

namespace valr {
namespace cpu {

double crossEntropy(const float* logits, const int32_t* targets, int64_t N, int64_t V, int32_t ignoreIndex,
                    double divisor, float* dlogits, double gradScale, int64_t* count) {
  std::vector<double> rowLoss(static_cast<size_t>(N), 0.0);
  parallelFor(N, std::max<int64_t>(1, 8192 / std::max<int64_t>(V, 1)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* z = logits + r * V;
      float* g = dlogits ? dlogits + r * V : nullptr;
      if (targets[r] == ignoreIndex) {
        if (g) std::fill(g, g + V, 0.f);
        continue;
      }
      float mx = z[0];
      for (int64_t v = 1; v < V; ++v) mx = std::max(mx, z[v]);
      double sum = 0;
      for (int64_t v = 0; v < V; ++v) sum += std::exp(double(z[v] - mx));
      const double lse = double(mx) + std::log(sum);
      rowLoss[size_t(r)] = lse - double(z[targets[r]]);
      if (g) {
        const double scale = gradScale / divisor;
        for (int64_t v = 0; v < V; ++v) g[v] = float(std::exp(double(z[v]) - lse) * scale);
        g[targets[r]] -= float(scale);
      }
    }
  });
  double total = 0;
  int64_t counted = 0;
  for (int64_t r = 0; r < N; ++r) {
    if (targets[r] == ignoreIndex) continue;
    total += rowLoss[size_t(r)];
    ++counted;
  }
  if (count) *count = counted;
  return total;
}

}  // namespace cpu
}  // namespace valr
