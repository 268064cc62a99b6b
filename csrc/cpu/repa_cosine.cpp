// Batched cosine REPA loss for several teachers in one pass per row: norms, dot
// product and gradient, with sums in double so zero rows and values near the float
// range never give inf or NaN. Matches F.cosine_similarity(dim=-1, eps=1e-8):
//   cos = x.y / (max(|x|, eps) max(|y|, eps))
//   dcos/dx = y / (c1 c2) - cos x / (|x| c1)   (second term 0 when |x| = 0)
#include <algorithm>
#include <cmath>
#include "../core/alignment_kernels.h"
#include "../core/thread_pool.h"

namespace valr {
namespace cpu {

namespace {

struct RowSums {
  double dot, xx, yy;
};

// Eight independent accumulators per sum: the compiler vectorises them, and the
// order of additions is fixed, so results do not depend on threads.
RowSums rowSums(const float* x, const float* y, int64_t D) {
  double dot[8] = {0}, xx[8] = {0}, yy[8] = {0};
  int64_t k = 0;
  for (; k + 8 <= D; k += 8) {
    for (int j = 0; j < 8; ++j) {
      double a = x[k + j], b = y[k + j];
      dot[j] += a * b;
      xx[j] += a * a;
      yy[j] += b * b;
    }
  }
  for (int j = 0; k < D; ++k, ++j) {
    double a = x[k], b = y[k];
    dot[j] += a * b;
    xx[j] += a * a;
    yy[j] += b * b;
  }
  RowSums r{0, 0, 0};
  for (int j = 0; j < 8; ++j) {
    r.dot += dot[j];
    r.xx += xx[j];
    r.yy += yy[j];
  }
  return r;
}

}  // namespace

RepaResult repaCosineLoss(const std::vector<RepaTeacher>& teachers, int64_t S, const float* weights,
                          double gradScale) {
  const int64_t M = int64_t(teachers.size());
  RepaResult result;
  result.perTeacher.assign(size_t(M), 0.0);
  double W = 0;
  for (int64_t s = 0; s < S; ++s) W += weights ? double(weights[s]) : 1.0;

  // Rows of all teachers in one index space: teacher m owns [rowStart[m], rowStart[m+1]).
  std::vector<int64_t> rowStart(size_t(M) + 1, 0);
  int64_t maxD = 1;
  for (int64_t m = 0; m < M; ++m) {
    rowStart[size_t(m) + 1] = rowStart[size_t(m)] + S * teachers[size_t(m)].P;
    maxD = std::max(maxD, teachers[size_t(m)].D);
  }
  const int64_t totalRows = rowStart[size_t(M)];
  std::vector<double> rowCos(static_cast<size_t>(totalRows));  // w_s * cos for each row

  parallelFor(totalRows, std::max<int64_t>(1, 4096 / maxD), [&](int64_t b, int64_t e) {
    int64_t m = int64_t(std::upper_bound(rowStart.begin(), rowStart.end(), b) - rowStart.begin()) - 1;
    for (int64_t r = b; r < e; ++r) {
      while (r >= rowStart[size_t(m) + 1]) ++m;
      const RepaTeacher& t = teachers[size_t(m)];
      const int64_t local = r - rowStart[size_t(m)], s = local / t.P, D = t.D;
      const float* x = t.pred + local * D;
      const float* y = t.target + local * D;
      float* g = t.gradPred + local * D;
      const double w = weights ? double(weights[s]) : 1.0;
      if (W == 0 || w == 0) {
        std::fill(g, g + D, 0.f);
        rowCos[size_t(r)] = 0;
        continue;
      }
      RowSums rs = rowSums(x, y, D);
      const double n1 = std::sqrt(rs.xx), n2 = std::sqrt(rs.yy);
      const double c1 = std::max(n1, kCosineEps), c2 = std::max(n2, kCosineEps);
      const double cos = rs.dot / (c1 * c2);
      rowCos[size_t(r)] = w * cos;
      // d(total)/d(cos) for this row: total = (1/M) sum_m L_m, L_m = -(1/(W P_m)) sum w cos.
      const double coef = -gradScale * w / (double(M) * W * double(t.P));
      const double a = coef / (c1 * c2);
      const double bcoef = n1 > 0 ? -coef * cos / (n1 * c1) : 0.0;
      for (int64_t k = 0; k < D; ++k) g[k] = float(a * double(y[k]) + bcoef * double(x[k]));
    }
  });

  for (int64_t m = 0; m < M; ++m) {
    double sum = 0;
    for (int64_t r = rowStart[size_t(m)]; r < rowStart[size_t(m) + 1]; ++r) sum += rowCos[size_t(r)];
    result.perTeacher[size_t(m)] = W == 0 ? 0.0 : -sum / (W * double(teachers[size_t(m)].P));
    result.total += result.perTeacher[size_t(m)];
  }
  if (M > 0) result.total /= double(M);
  return result;
}

}  // namespace cpu
}  // namespace valr
