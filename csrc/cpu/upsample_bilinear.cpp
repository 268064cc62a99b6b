// Bilinear upsampling of a gh x gw token grid to the teacher's Gh x Gw patch grid,
// channels last, with PyTorch's align_corners=False coefficients (bilinear_coeffs.h).
#include <algorithm>
#include <cstring>
#include <vector>
#include "../core/alignment_kernels.h"
#include "../core/bilinear_coeffs.h"
#include "../core/thread_pool.h"

namespace valr {
namespace cpu {

namespace {
std::vector<AxisCoeff> axisCoeffs(int64_t in, int64_t out) {
  std::vector<AxisCoeff> c(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) c[size_t(o)] = bilinearAxisCoeff(o, in, out);
  return c;
}
}  // namespace

// x [S, gh, gw, D] -> y [S, Gh, Gw, D]; one task per output row (s, p).
void upsampleBilinear(const float* x, float* y, const UpsampleDims& d) {
  const auto ch = axisCoeffs(d.gh, d.Gh), cw = axisCoeffs(d.gw, d.Gw);
  const int64_t D = d.D;
  parallelFor(d.S * d.Gh, std::max<int64_t>(1, 8192 / std::max<int64_t>(d.Gw * D, 1)), [&](int64_t b, int64_t e) {
    for (int64_t sp = b; sp < e; ++sp) {
      const int64_t s = sp / d.Gh, p = sp % d.Gh;
      const AxisCoeff h = ch[size_t(p)];
      const float* r0 = x + ((s * d.gh + h.i0) * d.gw) * D;
      const float* r1 = x + ((s * d.gh + h.i1) * d.gw) * D;
      float* out = y + (sp * d.Gw) * D;
      for (int64_t q = 0; q < d.Gw; ++q) {
        const AxisCoeff w = cw[size_t(q)];
        const float* a = r0 + w.i0 * D;
        const float* bb = r0 + w.i1 * D;
        const float* c = r1 + w.i0 * D;
        const float* dd = r1 + w.i1 * D;
        float* o = out + q * D;
        for (int64_t k = 0; k < D; ++k) o[k] = h.l0 * (w.l0 * a[k] + w.l1 * bb[k]) + h.l1 * (w.l0 * c[k] + w.l1 * dd[k]);
      }
    }
  });
}

// dy [S, Gh, Gw, D] -> dx [S, gh, gw, D]. Each task owns one segment and one block
// of channels and walks the output rows in order, so every sum has a fixed order
// (deterministic) and dy is read once: first along q into a row buffer, then that
// row is added into the two input rows it came from.
void upsampleBilinearBackward(const float* dy, float* dx, const UpsampleDims& d, bool accumulate) {
  const auto ch = axisCoeffs(d.gh, d.Gh), cw = axisCoeffs(d.gw, d.Gw);
  const int64_t D = d.D;
  // Channel blocks: enough tasks for every thread, blocks of whole cache lines.
  const int64_t wantTasks = int64_t(numThreads()) * 4;
  int64_t blocks = std::max<int64_t>(1, std::min<int64_t>((wantTasks + d.S - 1) / std::max<int64_t>(d.S, 1), D / 16));
  int64_t blockD = (D + blocks - 1) / blocks;
  blockD = (blockD + 15) / 16 * 16;
  blocks = (D + blockD - 1) / blockD;
  parallelFor(d.S * blocks, 1, [&](int64_t b, int64_t e) {
    std::vector<float> row(size_t(d.gw * blockD));
    for (int64_t task = b; task < e; ++task) {
      const int64_t s = task / blocks, d0 = (task % blocks) * blockD, n = std::min(blockD, D - d0);
      float* seg = dx + s * d.gh * d.gw * D;
      if (!accumulate)
        for (int64_t ij = 0; ij < d.gh * d.gw; ++ij) std::memset(seg + ij * D + d0, 0, size_t(n) * sizeof(float));
      for (int64_t p = 0; p < d.Gh; ++p) {
        std::fill(row.begin(), row.end(), 0.f);
        const float* src = dy + ((s * d.Gh + p) * d.Gw) * D + d0;
        for (int64_t q = 0; q < d.Gw; ++q) {
          const AxisCoeff w = cw[size_t(q)];
          float* t0 = row.data() + w.i0 * blockD;
          float* t1 = row.data() + w.i1 * blockD;
          const float* g = src + q * D;
          for (int64_t k = 0; k < n; ++k) {
            t0[k] += w.l0 * g[k];
            t1[k] += w.l1 * g[k];
          }
        }
        const AxisCoeff h = ch[size_t(p)];
        float* x0 = seg + h.i0 * d.gw * D + d0;
        float* x1 = seg + h.i1 * d.gw * D + d0;
        for (int64_t j = 0; j < d.gw; ++j) {
          const float* t = row.data() + j * blockD;
          for (int64_t k = 0; k < n; ++k) x0[j * D + k] += h.l0 * t[k];
          for (int64_t k = 0; k < n; ++k) x1[j * D + k] += h.l1 * t[k];
        }
      }
    }
  });
}

}  // namespace cpu
}  // namespace valr
