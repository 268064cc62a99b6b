// SwiGLU (decoder MLP) and exact GELU (vision tower, projector), forward and backward.
#include <cmath>
#include "../core/model_kernels.h"
#include "../core/thread_pool.h"

namespace valr {
namespace cpu {

namespace {
constexpr int64_t kGrain = 1 << 14;
inline float sigmoid(float g) { return 1.f / (1.f + std::exp(-g)); }
}  // namespace

void swigluForward(const float* gate, const float* up, float* y, int64_t n) {
  parallelFor(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = gate[i] * sigmoid(gate[i]) * up[i];
  });
}

// d silu(g)/dg = s * (1 + g * (1 - s)), s = sigmoid(g)
void swigluBackward(const float* dy, const float* gate, const float* up, float* dgate, float* dup, int64_t n) {
  parallelFor(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float g = gate[i], s = sigmoid(g);
      dgate[i] = dy[i] * up[i] * s * (1.f + g * (1.f - s));
      dup[i] = dy[i] * g * s;
    }
  });
}

void geluForward(const float* x, float* y, int64_t n) {
  parallelFor(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = 0.5f * x[i] * (1.f + std::erf(x[i] * float(M_SQRT1_2)));
  });
}

// d/dx x*Phi(x) = Phi(x) + x * phi(x)
void geluBackward(const float* dy, const float* x, float* dx, int64_t n) {
  const float invSqrt2Pi = float(0.5 * M_2_SQRTPI * M_SQRT1_2);
  parallelFor(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float v = x[i];
      const float cdf = 0.5f * (1.f + std::erf(v * float(M_SQRT1_2)));
      const float pdf = invSqrt2Pi * std::exp(-0.5f * v * v);
      dx[i] = dy[i] * (cdf + v * pdf);
    }
  });
}

}  // namespace cpu
}  // namespace valr
