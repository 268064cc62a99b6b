// Scaled dot-product attention on the CPU, flash-attention style: queries in blocks of
// kBQ, keys in blocks of kBK, a running max and sum per query (online softmax), so no
// [Tq, Tk] score matrix is ever held; per thread only one kBQ x kBK tile of scores.
//
// Forward:  tasks (b, h, query block); for each visible key block
//             S = Q K^T (tile), mask, online softmax, O += P V.
// Backward: D_i = dout_i . out_i (pre-pass), then two passes that recompute
//           p_ij = exp(scale q_i.k_j - lse_i):
//             dq pass, tasks (b, h, query block):  dS = P (dO V^T - D),  dQ += dS K
//             dk/dv pass, tasks (b, kv head, key block), looping over the group's
//               query heads and then the query blocks in a fixed order:
//               dV += P^T dO,  dK += dS^T Q.
// Every output element is owned by one task and summed in a fixed order (block sizes
// are constants), so results are bit-identical for any number of threads.
//
// The small matrix products run through one register-tiled kernel (kMR rows x kNR
// columns of accumulators, plain loops the compiler vectorises); the exponentials
// through a polynomial exp the compiler also vectorises.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>
#include "../core/model_kernels.h"
#include "../core/thread_pool.h"

namespace valr {
namespace cpu {

namespace {

constexpr int64_t kBQ = 32;  // queries per block
constexpr int64_t kBK = 64;  // keys per block
constexpr int64_t kNR = 8;   // padded widths (Dh, key counts) are multiples of this
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

inline int64_t roundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// exp(x) to about 2 ulp for x in [-87, 88] (Cephes expf: 2^n times a degree-7
// polynomial on [-ln2/2, ln2/2]); 0 below -87 (so exp(-inf) = 0), written so that
// loops over it vectorise. Only ever called with x <= ~0 here.
inline float fastExp(float x) {
  float xc = x < -87.f ? -87.f : x;
  xc = xc > 88.f ? 88.f : xc;
  const float n = (xc * 1.44269504088896341f + 12582912.f) - 12582912.f;  // round to nearest
  float r = xc - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  const float y = p * scale;
  return x < -87.f ? 0.f : y;
}

// Sum with eight partial sums (fixed order, vectorisable).
inline float sum8(const float* x, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (int j = 0; j < 8; ++j) acc[j] += x[k + j];
  for (int j = 0; k < n; ++k, ++j) acc[j] += x[k];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// C [M, N] (= or +=) A [M, K] B [K, N], with A read as A[r rsA + k csA] (so a
// transposed tile is read in place) and B, C row-major. The inner loops run over
// contiguous columns of B and C (the compiler vectorises them at any SIMD width);
// two rows of C are updated from four rows of B per sweep. Every element sums over k
// in order, c = (((c + a0 b0) + a1 b1) + a2 b2) + a3 b3, so its value does not depend
// on how the product is tiled.
template <bool ACC>
void matmul(int64_t M, int64_t N, int64_t K, const float* A, int64_t rsA, int64_t csA, const float* B, int64_t ldb,
            float* C, int64_t ldc) {
  int64_t r = 0;
  for (; r + 2 <= M; r += 2) {
    float* __restrict c0 = C + r * ldc;
    float* __restrict c1 = c0 + ldc;
    if (!ACC) {
      std::fill(c0, c0 + N, 0.f);
      std::fill(c1, c1 + N, 0.f);
    }
    const float* a = A + r * rsA;
    const float* e = a + rsA;
    int64_t k = 0;
    for (; k + 4 <= K; k += 4) {
      const float a0 = a[k * csA], a1 = a[(k + 1) * csA], a2 = a[(k + 2) * csA], a3 = a[(k + 3) * csA];
      const float e0 = e[k * csA], e1 = e[(k + 1) * csA], e2 = e[(k + 2) * csA], e3 = e[(k + 3) * csA];
      const float* __restrict b0 = B + k * ldb;
      const float* __restrict b1 = b0 + ldb;
      const float* __restrict b2 = b1 + ldb;
      const float* __restrict b3 = b2 + ldb;
      for (int64_t j = 0; j < N; ++j) {
        const float x0 = b0[j], x1 = b1[j], x2 = b2[j], x3 = b3[j];
        c0[j] = (((c0[j] + a0 * x0) + a1 * x1) + a2 * x2) + a3 * x3;
        c1[j] = (((c1[j] + e0 * x0) + e1 * x1) + e2 * x2) + e3 * x3;
      }
    }
    for (; k < K; ++k) {
      const float a0 = a[k * csA], e0 = e[k * csA];
      const float* __restrict b0 = B + k * ldb;
      for (int64_t j = 0; j < N; ++j) {
        c0[j] += a0 * b0[j];
        c1[j] += e0 * b0[j];
      }
    }
  }
  if (r < M) {  // the last odd row
    float* __restrict c0 = C + r * ldc;
    if (!ACC) std::fill(c0, c0 + N, 0.f);
    const float* a = A + r * rsA;
    int64_t k = 0;
    for (; k + 4 <= K; k += 4) {
      const float a0 = a[k * csA], a1 = a[(k + 1) * csA], a2 = a[(k + 2) * csA], a3 = a[(k + 3) * csA];
      const float* __restrict b0 = B + k * ldb;
      const float* __restrict b1 = b0 + ldb;
      const float* __restrict b2 = b1 + ldb;
      const float* __restrict b3 = b2 + ldb;
      for (int64_t j = 0; j < N; ++j) c0[j] = (((c0[j] + a0 * b0[j]) + a1 * b1[j]) + a2 * b2[j]) + a3 * b3[j];
    }
    for (; k < K; ++k) {
      const float a0 = a[k * csA];
      const float* __restrict b0 = B + k * ldb;
      for (int64_t j = 0; j < N; ++j) c0[j] += a0 * b0[j];
    }
  }
}

// Per-task scratch, 64-byte aligned so that vectorised loops split the same way on
// every thread.
class Scratch {
 public:
  explicit Scratch(int64_t n) : buf_(size_t(n) + 16) {
    const uintptr_t addr = reinterpret_cast<uintptr_t>(buf_.data());
    data_ = buf_.data() + ((64 - addr % 64) % 64) / sizeof(float);
  }
  float* data() { return data_; }

 private:
  std::vector<float> buf_;
  float* data_;
};

// Shapes and index helpers shared by the passes.
struct Geometry {
  int64_t B, Tq, Tk, Hq, Hkv, Dh, group, DP, nQB, nKB, off, kvStride;
  float scale;
  bool causal;

  explicit Geometry(const AttentionDims& d)
      : B(d.B), Tq(d.Tq), Tk(d.Tk), Hq(d.Hq), Hkv(d.Hkv), Dh(d.Dh), kvStride(d.kvStride()), scale(d.scale),
        causal(d.causal) {
    group = Hkv > 0 ? std::max<int64_t>(1, Hq / Hkv) : 1;
    DP = roundUp(std::max<int64_t>(Dh, 1), kNR);
    nQB = (Tq + kBQ - 1) / kBQ;
    nKB = (Tk + kBK - 1) / kBK;
    off = Tk - Tq;  // query i sits at absolute position off + i
  }
  // Row pointers: q-like [B, Tq, Hq, Dh], k-like [B, Tk, Hkv, Dh].
  int64_t qRow(int64_t b, int64_t i, int64_t h) const { return ((b * Tq + i) * Hq + h) * Dh; }
  int64_t kRow(int64_t b, int64_t j, int64_t g) const { return ((b * Tk + j) * Hkv + g) * Dh; }  // dk, dv (dense)
  int64_t kvRow(int64_t b, int64_t j, int64_t g) const { return b * kvStride + (j * Hkv + g) * Dh; }  // k, v (maybe a cache)
  // Keys visible to some query of [i0, i0 + mq) end before this (exclusive).
  int64_t keyEnd(int64_t i0, int64_t mq) const {
    return causal ? std::max<int64_t>(0, std::min(Tk, off + i0 + mq)) : Tk;
  }
  // Keys of the block at j0 that query i may see (causal limit), as a count from j0.
  int64_t causalLimit(int64_t i, int64_t j0, int64_t nk) const {
    return causal ? std::max<int64_t>(0, std::min(nk, off + i - j0 + 1)) : nk;
  }
};

// Copies rows [j0, j0 + nk) of a k-like tensor transposed into dst [Dh][kBK]; the
// columns [nk, nkP) are zeroed.
void loadTransposed(const float* src, const Geometry& g, int64_t b, int64_t kvh, int64_t j0, int64_t nk, int64_t nkP,
                    float* dst) {
  for (int64_t jj = 0; jj < nk; ++jj) {
    const float* s = src + g.kvRow(b, j0 + jj, kvh);
    for (int64_t dd = 0; dd < g.Dh; ++dd) dst[dd * kBK + jj] = s[dd];
  }
  if (nkP > nk)
    for (int64_t dd = 0; dd < g.Dh; ++dd) std::fill(dst + dd * kBK + nk, dst + dd * kBK + nkP, 0.f);
}

// Copies n rows (row stride `stride`) into dst [n][DP] with the columns [Dh, DP) zeroed.
void loadRows(const float* src, int64_t stride, int64_t n, const Geometry& g, float* dst) {
  for (int64_t r = 0; r < n; ++r) {
    std::copy(src + r * stride, src + r * stride + g.Dh, dst + r * g.DP);
    std::fill(dst + r * g.DP + g.Dh, dst + (r + 1) * g.DP, 0.f);
  }
}

// ok[jj] = 1 where key j0 + jj may be attended (key mask); returns whether any may.
bool loadKeyMask(const int32_t* keyMask, const Geometry& g, int64_t b, int64_t j0, int64_t nk, float* ok) {
  if (!keyMask) {
    std::fill(ok, ok + nk, 1.f);
    return nk > 0;
  }
  const int32_t* m = keyMask + b * g.Tk + j0;
  bool any = false;
  for (int64_t jj = 0; jj < nk; ++jj) {
    ok[jj] = m[jj] != 0 ? 1.f : 0.f;
    any = any || m[jj] != 0;
  }
  return any;
}

}  // namespace

void attentionForward(const float* q, const float* k, const float* v, const int32_t* keyMask, float* out, float* lse,
                      const AttentionDims& d) {
  const Geometry g(d);
  if (g.B <= 0 || g.Tq <= 0 || g.Hq <= 0) return;
  const int64_t DP = g.DP, Dh = g.Dh;
  const int64_t tasks = g.B * g.Hq * g.nQB;

  parallelFor(tasks, 1, [&](int64_t t0, int64_t t1) {
    // Scratch: Q [kBQ][DP], K^T [Dh][kBK], V [kBK][DP], S [kBQ][kBK], O [kBQ][DP], key mask.
    Scratch buf(kBQ * DP + Dh * kBK + kBK * DP + kBQ * kBK + kBQ * DP + kBK);
    float* Qs = buf.data();
    float* Kt = Qs + kBQ * DP;
    float* Vs = Kt + Dh * kBK;
    float* S = Vs + kBK * DP;
    float* O = S + kBQ * kBK;
    float* ok = O + kBQ * DP;
    float m[kBQ], l[kBQ];

    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / (g.Hq * g.nQB), h = (t / g.nQB) % g.Hq, qb = t % g.nQB;
      const int64_t kvh = h / g.group;
      const int64_t i0 = qb * kBQ, mq = std::min(kBQ, g.Tq - i0);
      loadRows(q + g.qRow(b, i0, h), g.Hq * Dh, mq, g, Qs);
      std::fill(O, O + mq * DP, 0.f);
      std::fill(m, m + mq, kNegInf);
      std::fill(l, l + mq, 0.f);

      const int64_t jEnd = g.keyEnd(i0, mq);
      for (int64_t j0 = 0; j0 < jEnd; j0 += kBK) {
        const int64_t nk = std::min(kBK, jEnd - j0), nkP = roundUp(nk, kNR);
        if (!loadKeyMask(keyMask, g, b, j0, nk, ok)) continue;
        loadTransposed(k, g, b, kvh, j0, nk, nkP, Kt);
        loadRows(v + g.kvRow(b, j0, kvh), g.Hkv * Dh, nk, g, Vs);
        matmul<false>(mq, nkP, Dh, Qs, DP, 1, Kt, kBK, S, kBK);

        for (int64_t r = 0; r < mq; ++r) {
          float* s = S + r * kBK;
          const int64_t lim = g.causalLimit(i0 + r, j0, nk);
          for (int64_t jj = 0; jj < nk; ++jj) s[jj] = (jj < lim && ok[jj] != 0.f) ? s[jj] * g.scale : kNegInf;
          float mx = kNegInf;
          for (int64_t jj = 0; jj < nk; ++jj) mx = s[jj] > mx ? s[jj] : mx;
          const float mNew = std::max(m[r], mx);
          if (mNew == kNegInf) {  // nothing visible yet: this row adds nothing
            std::fill(s, s + nk, 0.f);
            continue;
          }
          for (int64_t jj = 0; jj < nk; ++jj) s[jj] = fastExp(s[jj] - mNew);
          const float alpha = m[r] == kNegInf ? 0.f : std::exp(m[r] - mNew);
          l[r] = l[r] * alpha + sum8(s, nk);
          m[r] = mNew;
          if (alpha != 1.f) {
            float* o = O + r * DP;
            for (int64_t dd = 0; dd < DP; ++dd) o[dd] *= alpha;
          }
        }
        matmul<true>(mq, DP, nk, S, kBK, 1, Vs, DP, O, DP);
      }

      for (int64_t r = 0; r < mq; ++r) {
        float* o = out + g.qRow(b, i0 + r, h);
        float* L = lse + (b * g.Hq + h) * g.Tq + i0 + r;
        if (l[r] > 0.f) {
          const float inv = 1.f / l[r];
          const float* src = O + r * DP;
          for (int64_t dd = 0; dd < Dh; ++dd) o[dd] = src[dd] * inv;
          *L = m[r] + std::log(l[r]);
        } else {
          std::fill(o, o + Dh, 0.f);
          *L = kNegInf;
        }
      }
    }
  });
}

void attentionBackward(const float* dout, const float* q, const float* k, const float* v, const float* out,
                       const float* lse, const int32_t* keyMask, float* dq, float* dk, float* dv,
                       const AttentionDims& d) {
  const Geometry g(d);
  if (g.B <= 0 || g.Hq <= 0 || g.Hkv <= 0) return;
  const int64_t DP = g.DP, Dh = g.Dh;

  // D [B, Hq, Tq] = dout . out per query (double sums).
  std::vector<float> Dsum(size_t(g.B * g.Hq * g.Tq));
  parallelFor(g.B * g.Tq, std::max<int64_t>(1, 8192 / std::max<int64_t>(1, g.Hq * Dh)), [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t b = row / g.Tq, i = row % g.Tq;
      for (int64_t h = 0; h < g.Hq; ++h) {
        const float* x = dout + g.qRow(b, i, h);
        const float* y = out + g.qRow(b, i, h);
        double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t c = 0;
        for (; c + 8 <= Dh; c += 8)
          for (int j = 0; j < 8; ++j) acc[j] += double(x[c + j]) * double(y[c + j]);
        for (int j = 0; c < Dh; ++c, ++j) acc[j] += double(x[c]) * double(y[c]);
        Dsum[size_t((b * g.Hq + h) * g.Tq + i)] =
            float(((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])));
      }
    }
  });

  // P and dS of one [mq, nk] tile from S = Q K^T and dP = dO V^T (in place: S -> P,
  // dP -> dS). Rows with lse = -inf (no visible key) get zeros.
  auto softmaxGrad = [&](float* S, float* dP, int64_t b, int64_t h, int64_t i0, int64_t mq, int64_t j0, int64_t nk,
                         const float* ok) {
    for (int64_t r = 0; r < mq; ++r) {
      float* s = S + r * kBK;
      float* dp = dP + r * kBK;
      const int64_t idx = (b * g.Hq + h) * g.Tq + i0 + r;
      const float L = lse[idx], Di = Dsum[size_t(idx)];
      if (!(L > kNegInf)) {
        std::fill(s, s + nk, 0.f);
        std::fill(dp, dp + nk, 0.f);
        continue;
      }
      const int64_t lim = g.causalLimit(i0 + r, j0, nk);
      for (int64_t jj = 0; jj < nk; ++jj) {
        const float p = (jj < lim && ok[jj] != 0.f) ? fastExp(s[jj] * g.scale - L) : 0.f;
        s[jj] = p;
        dp[jj] = p * (dp[jj] - Di);
      }
    }
  };

  // Pass 1: dq, tasks (b, h, query block), key blocks in order.
  parallelFor(g.B * g.Hq * g.nQB, 1, [&](int64_t t0, int64_t t1) {
    // Q [kBQ][DP], dO [kBQ][DP], K^T, V^T [Dh][kBK], K [kBK][DP], S, dP [kBQ][kBK], dQ [kBQ][DP], mask.
    Scratch buf(2 * kBQ * DP + 2 * Dh * kBK + kBK * DP + 2 * kBQ * kBK + kBQ * DP + kBK);
    float* Qs = buf.data();
    float* dOs = Qs + kBQ * DP;
    float* Kt = dOs + kBQ * DP;
    float* Vt = Kt + Dh * kBK;
    float* Ks = Vt + Dh * kBK;
    float* S = Ks + kBK * DP;
    float* dP = S + kBQ * kBK;
    float* dQ = dP + kBQ * kBK;
    float* ok = dQ + kBQ * DP;

    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / (g.Hq * g.nQB), h = (t / g.nQB) % g.Hq, qb = t % g.nQB;
      const int64_t kvh = h / g.group;
      const int64_t i0 = qb * kBQ, mq = std::min(kBQ, g.Tq - i0);
      loadRows(q + g.qRow(b, i0, h), g.Hq * Dh, mq, g, Qs);
      loadRows(dout + g.qRow(b, i0, h), g.Hq * Dh, mq, g, dOs);
      std::fill(dQ, dQ + mq * DP, 0.f);

      const int64_t jEnd = g.keyEnd(i0, mq);
      for (int64_t j0 = 0; j0 < jEnd; j0 += kBK) {
        const int64_t nk = std::min(kBK, jEnd - j0), nkP = roundUp(nk, kNR);
        if (!loadKeyMask(keyMask, g, b, j0, nk, ok)) continue;
        loadTransposed(k, g, b, kvh, j0, nk, nkP, Kt);
        loadTransposed(v, g, b, kvh, j0, nk, nkP, Vt);
        loadRows(k + g.kvRow(b, j0, kvh), g.Hkv * Dh, nk, g, Ks);
        matmul<false>(mq, nkP, Dh, Qs, DP, 1, Kt, kBK, S, kBK);
        matmul<false>(mq, nkP, Dh, dOs, DP, 1, Vt, kBK, dP, kBK);
        softmaxGrad(S, dP, b, h, i0, mq, j0, nk, ok);
        matmul<true>(mq, DP, nk, dP, kBK, 1, Ks, DP, dQ, DP);
      }

      for (int64_t r = 0; r < mq; ++r) {
        float* o = dq + g.qRow(b, i0 + r, h);
        const float* src = dQ + r * DP;
        for (int64_t dd = 0; dd < Dh; ++dd) o[dd] = src[dd] * g.scale;
      }
    }
  });

  // Pass 2: dk, dv, tasks (b, kv head, key block); the group's query heads, then the
  // query blocks, in order.
  parallelFor(g.B * g.Hkv * g.nKB, 1, [&](int64_t t0, int64_t t1) {
    // K^T, V^T [Dh][kBK], dK, dV [kBK][DP], Q, dO [kBQ][DP], S, dP [kBQ][kBK], mask.
    Scratch buf(2 * Dh * kBK + 2 * kBK * DP + 2 * kBQ * DP + 2 * kBQ * kBK + kBK);
    float* Kt = buf.data();
    float* Vt = Kt + Dh * kBK;
    float* dK = Vt + Dh * kBK;
    float* dV = dK + kBK * DP;
    float* Qs = dV + kBK * DP;
    float* dOs = Qs + kBQ * DP;
    float* S = dOs + kBQ * DP;
    float* dP = S + kBQ * kBK;
    float* ok = dP + kBQ * kBK;

    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / (g.Hkv * g.nKB), kvh = (t / g.nKB) % g.Hkv, kb = t % g.nKB;
      const int64_t j0 = kb * kBK, nk = std::min(kBK, g.Tk - j0), nkP = roundUp(nk, kNR);
      std::fill(dK, dK + nk * DP, 0.f);
      std::fill(dV, dV + nk * DP, 0.f);

      if (loadKeyMask(keyMask, g, b, j0, nk, ok)) {
        loadTransposed(k, g, b, kvh, j0, nk, nkP, Kt);
        loadTransposed(v, g, b, kvh, j0, nk, nkP, Vt);
        // First query that sees key j0: off + i >= j0.
        const int64_t iStart = g.causal ? std::max<int64_t>(0, j0 - g.off) : 0;
        for (int64_t hh = 0; hh < g.group; ++hh) {
          const int64_t h = kvh * g.group + hh;
          for (int64_t i0 = iStart / kBQ * kBQ; i0 < g.Tq; i0 += kBQ) {
            const int64_t mq = std::min(kBQ, g.Tq - i0);
            loadRows(q + g.qRow(b, i0, h), g.Hq * Dh, mq, g, Qs);
            loadRows(dout + g.qRow(b, i0, h), g.Hq * Dh, mq, g, dOs);
            matmul<false>(mq, nkP, Dh, Qs, DP, 1, Kt, kBK, S, kBK);
            matmul<false>(mq, nkP, Dh, dOs, DP, 1, Vt, kBK, dP, kBK);
            softmaxGrad(S, dP, b, h, i0, mq, j0, nk, ok);
            matmul<true>(nk, DP, mq, S, 1, kBK, dOs, DP, dV, DP);  // dV += P^T dO
            matmul<true>(nk, DP, mq, dP, 1, kBK, Qs, DP, dK, DP);  // dK += dS^T Q
          }
        }
      }

      for (int64_t jj = 0; jj < nk; ++jj) {
        float* odk = dk + g.kRow(b, j0 + jj, kvh);
        float* ov = dv + g.kRow(b, j0 + jj, kvh);
        const float* sk = dK + jj * DP;
        const float* sv = dV + jj * DP;
        for (int64_t dd = 0; dd < Dh; ++dd) {
          odk[dd] = sk[dd] * g.scale;
          ov[dd] = sv[dd];
        }
      }
    }
  });
}

}  // namespace cpu
}  // namespace valr
