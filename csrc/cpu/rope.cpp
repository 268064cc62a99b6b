// Rotary position embedding in Hugging Face's rotate-half layout: for each head
// vector, element i pairs with i + Dh/2. The angle is computed in float32 as
// transformers does (inv_freq and pos * inv_freq in float), then cos/sin in double.
#include <cmath>
#include <vector>
#include "../core/model_kernels.h"
#include "../core/thread_pool.h"

namespace valr {
namespace cpu {

void rope(const float* x, float* y, const int32_t* positions, int64_t rows, int64_t H, int64_t Dh, float theta,
          bool inverse) {
  const int64_t half = Dh / 2;
  std::vector<float> invFreq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) invFreq[size_t(i)] = 1.0f / std::pow(theta, float(2 * i) / float(Dh));
  parallelFor(rows, std::max<int64_t>(1, 2048 / std::max<int64_t>(H * Dh, 1)), [&](int64_t b, int64_t e) {
    std::vector<float> c(static_cast<size_t>(half)), s(static_cast<size_t>(half));
    for (int64_t r = b; r < e; ++r) {
      const float pos = float(positions[r]);
      for (int64_t i = 0; i < half; ++i) {
        const float angle = pos * invFreq[size_t(i)];
        c[size_t(i)] = float(std::cos(double(angle)));
        s[size_t(i)] = inverse ? -float(std::sin(double(angle))) : float(std::sin(double(angle)));
      }
      for (int64_t h = 0; h < H; ++h) {
        const float* xv = x + (r * H + h) * Dh;
        float* yv = y + (r * H + h) * Dh;
        for (int64_t i = 0; i < half; ++i) {
          const float a = xv[i], bb = xv[i + half];  // read both before writing: y may be x
          yv[i] = a * c[size_t(i)] - bb * s[size_t(i)];
          yv[i + half] = bb * c[size_t(i)] + a * s[size_t(i)];
        }
        if (Dh % 2) yv[Dh - 1] = xv[Dh - 1];  // an odd last element is not rotated
      }
    }
  });
}

}  // namespace cpu
}  // namespace valr
