// RMSNorm (decoder) and LayerNorm (vision tower), forward and backward, over the
// last dim. Parameter gradients are summed over rows in fixed chunks of rows and
// then chunk by chunk, so the bits do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <vector>
#include "../core/model_kernels.h"
#include "../core/thread_pool.h"

namespace valr {
namespace cpu {

namespace {
constexpr int64_t kRowsPerChunk = 32;

int64_t rowGrain(int64_t D) { return std::max<int64_t>(1, 8192 / std::max<int64_t>(D, 1)); }

// dst[d] += sum over chunks c of partial[c][d], chunks in order.
void sumChunks(const std::vector<float>& partial, int64_t chunks, int64_t D, float* dst) {
  parallelFor(D, 256, [&](int64_t b, int64_t e) {
    for (int64_t d = b; d < e; ++d) {
      float s = 0.f;
      for (int64_t c = 0; c < chunks; ++c) s += partial[size_t(c * D + d)];
      dst[d] += s;
    }
  });
}
}  // namespace

void rmsNormForward(const float* x, const float* w, float* y, float* rstd, int64_t rows, int64_t D, float eps) {
  parallelFor(rows, rowGrain(D), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * D;
      double ss = 0;
      for (int64_t d = 0; d < D; ++d) ss += double(xr[d]) * xr[d];
      const float rs = float(1.0 / std::sqrt(ss / double(D) + double(eps)));
      rstd[r] = rs;
      float* yr = y + r * D;
      for (int64_t d = 0; d < D; ++d) yr[d] = (xr[d] * rs) * w[d];
    }
  });
}

// y = x * rs * w, rs = (mean(x^2) + eps)^-1/2:
// dx = rs * (dy*w) - x * rs^3 * mean(dy*w*x);  dw += sum_rows dy * x * rs
void rmsNormBackward(const float* dy, const float* x, const float* w, const float* rstd, float* dx, float* dw,
                     int64_t rows, int64_t D) {
  const int64_t chunks = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
  std::vector<float> partial(dw ? size_t(chunks * D) : 0, 0.f);
  parallelFor(chunks, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) {
      float* pw = dw ? partial.data() + c * D : nullptr;
      for (int64_t r = c * kRowsPerChunk; r < std::min(rows, (c + 1) * kRowsPerChunk); ++r) {
        const float* xr = x + r * D;
        const float* gr = dy + r * D;
        const float rs = rstd[r];
        double dot = 0;
        for (int64_t d = 0; d < D; ++d) dot += double(gr[d]) * w[d] * xr[d];
        const float k = float(dot / double(D)) * rs * rs * rs;
        float* dxr = dx + r * D;
        for (int64_t d = 0; d < D; ++d) dxr[d] = rs * gr[d] * w[d] - xr[d] * k;
        if (pw)
          for (int64_t d = 0; d < D; ++d) pw[d] += gr[d] * xr[d] * rs;
      }
    }
  });
  if (dw) sumChunks(partial, chunks, D, dw);
}

void layerNormForward(const float* x, const float* w, const float* b, float* y, float* mean, float* rstd,
                      int64_t rows, int64_t D, float eps) {
  parallelFor(rows, rowGrain(D), [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) {
      const float* xr = x + r * D;
      double s = 0;
      for (int64_t d = 0; d < D; ++d) s += xr[d];
      const double mu = s / double(D);
      double v = 0;
      for (int64_t d = 0; d < D; ++d) v += (xr[d] - mu) * (xr[d] - mu);
      const float rs = float(1.0 / std::sqrt(v / double(D) + double(eps)));
      const float m = float(mu);
      mean[r] = m;
      rstd[r] = rs;
      float* yr = y + r * D;
      for (int64_t d = 0; d < D; ++d) yr[d] = (xr[d] - m) * rs * w[d] + (b ? b[d] : 0.f);
    }
  });
}

// xhat = (x - mean) * rs, g = dy * w:
// dx = rs * (g - mean(g) - xhat * mean(g * xhat));  dw += sum dy * xhat;  db += sum dy
void layerNormBackward(const float* dy, const float* x, const float* w, const float* mean, const float* rstd,
                       float* dx, float* dw, float* db, int64_t rows, int64_t D) {
  const int64_t chunks = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
  std::vector<float> pw(dw ? size_t(chunks * D) : 0, 0.f), pb(db ? size_t(chunks * D) : 0, 0.f);
  parallelFor(chunks, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) {
      for (int64_t r = c * kRowsPerChunk; r < std::min(rows, (c + 1) * kRowsPerChunk); ++r) {
        const float* xr = x + r * D;
        const float* gr = dy + r * D;
        const float m = mean[r], rs = rstd[r];
        double sg = 0, sgx = 0;
        for (int64_t d = 0; d < D; ++d) {
          const double g = double(gr[d]) * w[d];
          sg += g;
          sgx += g * (xr[d] - m) * rs;
        }
        const float mg = float(sg / double(D)), mgx = float(sgx / double(D));
        float* dxr = dx + r * D;
        for (int64_t d = 0; d < D; ++d) dxr[d] = rs * (gr[d] * w[d] - mg - (xr[d] - m) * rs * mgx);
        if (dw)
          for (int64_t d = 0; d < D; ++d) pw[size_t(c * D + d)] += gr[d] * (xr[d] - m) * rs;
        if (db)
          for (int64_t d = 0; d < D; ++d) pb[size_t(c * D + d)] += gr[d];
      }
    }
  });
  if (dw) sumChunks(pw, chunks, D, dw);
  if (db) sumChunks(pb, chunks, D, db);
}

}  // namespace cpu
}  // namespace valr
